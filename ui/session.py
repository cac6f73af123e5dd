"""The signed cookie that keeps a password sign-in across reloads and new tabs of one browser.

The cookie holds the time it was issued, a random nonce and an HMAC-SHA256 over both; nothing else, so it
says nothing about the password. The HMAC key is derived from a per-deployment secret *and* the password:
changing the password ends every session at once. The secret is ``[auth] cookie_secret`` from
``.streamlit/secrets.toml`` when that is set, otherwise a random key created once in ``data_dir`` and
readable by its owner only. A cookie is good for the configured lifetime counted from its issue, so
shortening ``auth_session_hours`` also shortens the sessions already handed out.

``safe_next`` is the one check of where a sign-in may send the browser: a path on this site, never a URL.
``client_address`` says who is signing in, as the sign-in lockout counts them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

COOKIE_NAME = "activation_monitor_session"
KEY_FILE_NAME = "dashboard-session.key"
_VERSION = "v1"
_KEY_LABEL = b"activation-monitor dashboard sign-in\x00"
_CLOCK_SKEW_S = 60
_MAX_NEXT_CHARS = 4096

_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
_IPV6_PREFIX = 64

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_log = logging.getLogger(__name__)
_secrets_lock = threading.Lock()
_secrets_by_dir: dict[Path, bytes] = {}


def signing_key(secret: bytes, password: SecretStr) -> bytes:
    """The HMAC key of this deployment's cookies for this password."""
    return hmac.new(secret, _KEY_LABEL + password.get_secret_value().encode(), hashlib.sha256).digest()


def issue(key: bytes, now: float) -> str:
    """A new cookie value issued at ``now`` (seconds since the epoch)."""
    body = f"{_VERSION}.{int(now)}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(key, body)}"


def is_valid(value: str | None, key: bytes, lifetime_s: float, now: float) -> bool:
    """``True`` for a cookie this key signed, issued less than ``lifetime_s`` ago."""
    if not value or len(value) > 256:
        return False
    body, _, mac = value.rpartition(".")
    version, _, rest = body.partition(".")
    issued_text, _, nonce = rest.partition(".")
    if version != _VERSION or not (issued_text.isascii() and issued_text.isdigit()) or not nonce:
        return False
    if not hmac.compare_digest(mac.encode("ascii", "replace"), _mac(key, body).encode("ascii")):
        return False
    issued = int(issued_text)
    return issued <= now + _CLOCK_SKEW_S and now - issued < lifetime_s


def _mac(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode("ascii", "replace"), hashlib.sha256).hexdigest()


def secret(data_dir: Path, configured: str | None = None) -> bytes:
    """The deployment's secret: ``configured`` when given, else the key file in ``data_dir`` (created once)."""
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE_NAME
    with _secrets_lock:
        if path not in _secrets_by_dir:
            _secrets_by_dir[path] = _load_or_create(path)
        return _secrets_by_dir[path]


def _load_or_create(path: Path) -> bytes:
    try:
        kept = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        kept = ""
    except (OSError, UnicodeDecodeError) as exc:
        return _process_only(path, exc)
    if len(kept) >= 32:
        return kept.encode()
    fresh = secrets.token_hex(32)
    spare = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 where the file system has POSIX modes; on Windows the folder's ACL applies.
        handle = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(fresh)
        spare.replace(path)
        return path.read_text(encoding="ascii").strip().encode()
    except OSError as exc:
        spare.unlink(missing_ok=True)
        return _process_only(path, exc)


def _process_only(path: Path, exc: OSError | UnicodeDecodeError) -> bytes:
    _log.warning(
        "cannot keep the dashboard sign-in key in %s (%s); sign-ins end when the dashboard restarts. "
        "Set [auth] cookie_secret in .streamlit/secrets.toml to keep them.",
        path,
        type(exc).__name__,
    )
    return secrets.token_hex(32).encode()


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a path on this site (``/hosts?code=...``), else ``None``.

    Refused: anything with a scheme or a host, ``//`` (another host to a browser), a backslash (some browsers
    read it as a slash), control characters, and very long values.
    """
    if not value or len(value) > _MAX_NEXT_CHARS or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted_proxies: Sequence[str]) -> str:
    """Who is signing in, as the lockout counts them.

    That is the address the connection comes from (``peer``; ``None`` means loopback, as Streamlit reports it),
    unless that is one of ``trusted_proxies``: then the ``X-Forwarded-For`` values (``forwarded_for``, every
    header in order) are read from the right, each trusted proxy handing over to the address before it, and the
    first address that is no trusted proxy is the client. Without a trusted peer the header is never read, so a
    client cannot name itself. Every loopback address counts as one, an IPv4-mapped IPv6 address as its IPv4
    address, and an IPv6 client by its /64 network (what one subscriber usually gets). A peer that is no IP
    address is counted as it is.
    """
    trusted = _networks(trusted_proxies)
    client = _LOOPBACK if peer is None else _address(peer)
    if client is None:
        return str(peer)
    if _trusts(trusted, client):
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _address(_without_port(hop))
            if address is None:
                break  # not an address: the trusted hop that passed it on is the last one known
            client = address
            if not _trusts(trusted, client):
                break
    if isinstance(client, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((client, _IPV6_PREFIX), strict=False))
    return str(client)


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return _LOOPBACK if address.is_loopback else address


def _without_port(hop: str) -> str:
    """``[v6]:port`` and ``v4:port`` without the port; anything else as it is."""
    if hop.startswith("[") and "]" in hop:
        return hop[1 : hop.index("]")]
    host, colon, port = hop.partition(":")
    return host if colon and port.isdigit() and ":" not in port else hop


def _networks(entries: Sequence[str]) -> list[IPNetwork]:
    networks: list[IPNetwork] = []
    for entry in entries:
        network = ipaddress.ip_network(entry, strict=False)
        networks.append(network)
        if network.network_address.is_loopback:  # loopback peers are all reported as 127.0.0.1
            networks.append(ipaddress.IPv4Network(_LOOPBACK))
    return networks


def _trusts(networks: Sequence[IPNetwork], address: IPAddress) -> bool:
    return any(address in network for network in networks)
