"""Signing in to a WinRM listener as Windows clients do: schemes, mechanisms, credentials and tokens.

A listener lists its enabled methods in the ``WWW-Authenticate`` headers of a 401: ``Negotiate``
when NTLM or Kerberos is on, ``Kerberos``, ``Basic realm="WSMAN"`` only when Basic is on (MS-WSMV
3.1.4.1.29.2). Windows never offers a bare ``NTLM``; some other WS-Management servers do. A client
answers in a scheme the host offered: NTLM and Kerberos tokens travel raw inside ``Negotiate``, as
pywinrm's requests_ntlm and requests_kerberos send them.

This module owns the vocabulary of that exchange: parsing challenges, the sign-in plan of a host
(which mechanism, which SPN, why Kerberos is impossible), the security context of one connection
(pyspnego); Kerberos credentials and failure reasons live in ``collectors.kerberos``. It sends nothing:
``collectors.transport`` drives the exchanges.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

import spnego
import spnego.channel_bindings
import spnego.exceptions

from collectors.credentials import Credential
from collectors.errors import AuthError, ProtocolError
from collectors.inventory import Target
from collectors.kerberos import KerberosTickets, expired, kerberos_reason
from models.hostfacts import is_address

Mechanism = Literal["kerberos", "ntlm", "basic"]

NEGOTIATE: Final = "Negotiate"
KERBEROS: Final = "Kerberos"
NTLM: Final = "NTLM"
BASIC: Final = "Basic"
SERVICE: Final = "HTTP"

# MS-WSMV 2.2.9.1: the encrypted-message protocol named after the scheme the context was made in.
ENCRYPTION_PROTOCOL: Final = {
    NEGOTIATE: "application/HTTP-SPNEGO-session-encrypted",
    NTLM: "application/HTTP-SPNEGO-session-encrypted",
    KERBEROS: "application/HTTP-Kerberos-session-encrypted",
}
KERBEROS_EXTRA = "pip install -r requirements-kerberos.txt (it builds gssapi against libkrb5-dev / krb5-devel)"
# Tickets are renewed this long before the TGT of a password or keytab credential runs out.

_AUTH_PARAM = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*=\s*[^=\s]")
_SCHEME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


# --- challenges ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: a scheme and its token or parameters."""

    scheme: str
    token: bytes | None = None
    params: str = ""

    @property
    def key(self) -> str:
        return self.scheme.lower()


def parse_challenges(values: Iterable[str]) -> tuple[Challenge, ...]:
    """The challenges of every ``WWW-Authenticate`` header value, in order (RFC 7235 section 4.1).

    Raises ``ProtocolError`` when a token is not valid base64: the host's fault, not ours.
    """
    found: list[Challenge] = []
    for value in values:
        for piece in _split_commas(value):
            first, _, rest = piece.partition(" ")
            if "=" in first or not _SCHEME.match(first):
                if found:  # an auth-param continuing the previous challenge
                    last = found[-1]
                    found[-1] = Challenge(last.scheme, last.token, f"{last.params}, {piece}".strip(", "))
                continue
            found.append(_challenge(first, rest.strip()))
    return tuple(found)


def _challenge(scheme: str, rest: str) -> Challenge:
    if not rest or _AUTH_PARAM.match(rest):
        return Challenge(scheme, None, rest)
    try:
        return Challenge(scheme, base64.b64decode(rest, validate=True))
    except binascii.Error as exc:
        raise ProtocolError(f"the host's {scheme} token is not valid base64") from exc


def _split_commas(value: str) -> Iterator[str]:
    """Comma-separated pieces of a header value, ignoring commas inside quoted strings."""
    piece: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            yield "".join(piece).strip()
            piece = []
            continue
        piece.append(char)
    if "".join(piece).strip():
        yield "".join(piece).strip()


def offered(challenges: Iterable[Challenge]) -> tuple[str, ...]:
    """The scheme names a host offered, as it spelled them, for messages."""
    return tuple(dict.fromkeys(c.scheme for c in challenges))


def find(challenges: Iterable[Challenge], scheme: str) -> Challenge | None:
    return next((c for c in challenges if c.key == scheme.lower()), None)


# --- the plan for one host -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignInPlan:
    """How to sign in to one host: the mechanisms to try in order, and the Kerberos SPN.

    ``kerberos_blocker`` says why Kerberos cannot be used for this host when it cannot (an address
    without an SPN override, no Kerberos support installed, a credential with no way to a ticket).
    """

    transport: str
    mechanisms: tuple[Mechanism, ...]
    spn_host: str | None
    kerberos_blocker: str | None = None
    spn_service: str = SERVICE

    @property
    def spn(self) -> str:
        return f"{self.spn_service}/{self.spn_host}"


def plan_for(target: Target, credential: Credential, *, allow_ntlm_fallback: bool = True) -> SignInPlan:
    """The sign-in plan of ``target`` with ``credential``; raises ``AuthError`` when none can work."""
    transport = target.transport
    if transport == "basic":
        return SignInPlan(transport, ("basic",), None)
    service, _, spn_host = target.spn.partition("/") if target.spn else (SERVICE, "/", target.host)
    blocker = _kerberos_blocker(target, credential)
    if transport == "ntlm":
        return SignInPlan(transport, ("ntlm",), spn_host, blocker, service)
    if blocker is None:
        ntlm_ok = transport == "negotiate" and allow_ntlm_fallback and credential.password is not None
        return SignInPlan(transport, ("kerberos", "ntlm") if ntlm_ok else ("kerberos",), spn_host, None, service)
    if transport == "kerberos" or not allow_ntlm_fallback:
        raise AuthError(blocker)
    if credential.password is None:
        raise AuthError(f"{blocker}; NTLM needs a password, and credential {credential.name!r} has none")
    return SignInPlan(transport, ("ntlm",), spn_host, blocker, service)


def _kerberos_blocker(target: Target, credential: Credential) -> str | None:
    if not target.spn and is_address(target.host):
        return (
            f"Kerberos needs the host's DNS name, and {target.host} is an address: list the host by its FQDN "
            "or give its SPN (spn column, e.g. HTTP/host.corp.example)"
        )
    if not kerberos_installed():
        return f"Kerberos support is not installed: {KERBEROS_EXTRA}"
    if credential.password is None and credential.keytab is None and credential.ccache is None:
        return f"credential {credential.name!r} has no password, keytab or ccache for Kerberos"
    return None


@functools.cache
def kerberos_installed() -> bool:
    """Whether the optional Kerberos support (gssapi and krb5) imports; asked once per process."""
    try:
        importlib.import_module("gssapi")
        importlib.import_module("krb5")
    except ImportError:
        return False
    return True


# --- security contexts ---------------------------------------------------------------------------


class SecurityContext:
    """The client side of one NTLM or Kerberos context, bound to one TCP connection."""

    def __init__(self, mechanism: Mechanism, context: Any, spn: str) -> None:
        self.mechanism = mechanism
        self.spn = spn
        self._context = context

    @property
    def complete(self) -> bool:
        return bool(self._context.complete)

    def step(self, token: bytes | None = None, bindings: Any = None) -> bytes | None:
        """The next token for the host; a malformed token from the host is a ``ProtocolError``."""
        try:
            out: bytes | None = self._context.step(token, channel_bindings=bindings)
        except (ValueError, IndexError, struct.error) as exc:
            what = "NTLM challenge" if self.mechanism == "ntlm" else "Kerberos token"
            raise ProtocolError(f"malformed {what} from the host: {exc}") from exc
        except spnego.exceptions.SpnegoError as exc:
            raise AuthError(kerberos_reason(exc, self.spn) if self.mechanism == "kerberos" else str(exc)) from exc
        return out

    def wrap(self, data: bytes) -> tuple[bytes, bytes]:
        """(header, sealed data) of ``data`` for MS-WSMV message encryption."""
        wrapped = self._context.wrap_winrm(data)
        return wrapped.header, wrapped.data

    def unwrap(self, header: bytes, sealed: bytes) -> bytes:
        data: bytes = self._context.unwrap_winrm(header, sealed)
        return data


def ntlm_context(credential: Credential, host: str) -> SecurityContext:
    """An NTLM context (pyspnego's own NTLM, never a system provider) for ``credential``."""
    nt_hash = _nt_hash(credential.secret())
    source: Any = (
        spnego.NTLMHash(credential.username, nt_hash=nt_hash)
        if nt_hash
        else spnego.Password(credential.username, credential.secret())
    )
    context = spnego.client(
        source, hostname=host, service="http", protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm
    )
    return SecurityContext("ntlm", context, f"{SERVICE}/{host}")


@functools.lru_cache(maxsize=64)
def _nt_hash(password: str) -> str | None:
    """The NT hash of a password, once per password: the only key NTLMv2 uses.

    Given a password, pyspnego derives the LM hash too, with DES in pure Python, for every context:
    a fifth of the collector's CPU per host, for a key NTLMv2 never uses. MD4 is not in hashlib on
    OpenSSL 3, so pyspnego's own NTOWFv1 computes the hash; without it, the password is used as is.
    """
    try:
        from spnego._ntlm_raw.crypto import ntowfv1
    except ImportError:  # a pyspnego without it: slower, still correct
        return None
    return ntowfv1(password).hex()


def kerberos_context(
    credential: Credential, plan: SignInPlan, tickets: KerberosTickets, bindings: Any = None
) -> tuple[SecurityContext, bytes]:
    """A Kerberos context for the plan's SPN and its first token (the AP-REQ).

    The ticket comes from ``tickets`` (acquired once per credential); raises ``AuthError`` with
    one reason when no ticket can be had.
    """
    spn = plan.spn
    for attempt in range(2):
        source = tickets.source(credential)
        try:
            context = spnego.client(
                source,
                hostname=plan.spn_host or "",
                service=plan.spn_service,
                protocol="kerberos",
                context_req=spnego.ContextReq.default,
            )
            token = context.step(channel_bindings=bindings)
        except spnego.exceptions.SpnegoError as exc:
            if attempt == 0 and expired(exc) and tickets.renewable(credential):
                tickets.forget(credential)  # the TGT ran out during a long run: acquire once more
                continue
            raise AuthError(kerberos_reason(exc, spn)) from exc
        return SecurityContext("kerberos", context, spn), token or b""
    raise AuthError(f"no Kerberos ticket for {spn}")  # pragma: no cover  # the loop returns or raises


def channel_bindings(certificate_hash: bytes | None) -> Any:
    """RFC 5929 ``tls-server-end-point`` bindings for the host's certificate, or None without TLS."""
    if not certificate_hash:
        return None
    return spnego.channel_bindings.GssChannelBindings(application_data=b"tls-server-end-point:" + certificate_hash)


def basic_header(credential: Credential) -> str:
    return "Basic " + base64.b64encode(f"{credential.username}:{credential.secret()}".encode()).decode()


def token_header(scheme: str, token: bytes | None) -> str:
    return f"{scheme} {base64.b64encode(token or b'').decode()}"
