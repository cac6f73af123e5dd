"""Sign-in as a Windows WinRM listener does it: the offered schemes, NTLM and Kerberos acceptors, encryption.

A listener's 401 lists the methods its service configuration enables: ``Negotiate`` (NTLM or
Kerberos inside), ``Kerberos`` and ``Basic realm="WSMAN"`` (MS-WSMV 3.1.4.1.29.2), never a bare
``NTLM``. A request in a scheme that was not offered gets the 401 again and its connection is
closed; Basic over plain HTTP, and unsealed messages over plain HTTP, are refused while
``AllowUnencrypted`` is false. A challenge is answered in the scheme the client used.

``ConnectionAuth`` is the sign-in state of one TCP connection (NTLM and Kerberos authenticate
connections, not requests). The acceptors come from pyspnego: NTLM reads accounts from the file
named by ``NTLM_USER_FILE`` (one process-wide ``NtlmUserFile``); Kerberos reads the keytab named by
``KRB5_KTNAME`` (``Keytab``) and needs the optional gssapi. Messages are sealed in the
``multipart/encrypted`` framing of MS-WSMV 2.2.9.1 (4-byte little-endian header length, header, data).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import os
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import spnego
import spnego.channel_bindings
import spnego.exceptions

from simulator.scenario import WinrmService

BOUNDARY: Final = b"--Encrypted Boundary"
SPNEGO_ENCRYPTED: Final = "application/HTTP-SPNEGO-session-encrypted"
KERBEROS_ENCRYPTED: Final = "application/HTTP-Kerberos-session-encrypted"
# The protocol a sealed message names must match the scheme its connection signed in with.
ENCRYPTION_BY_SCHEME: Final = {"negotiate": SPNEGO_ENCRYPTED, "ntlm": SPNEGO_ENCRYPTED, "kerberos": KERBEROS_ENCRYPTED}
SCHEME_NAMES: Final = {"negotiate": "Negotiate", "kerberos": "Kerberos", "ntlm": "NTLM"}
# DER prefixes of GSS-API framed tokens (RFC 2743 section 3.1): the mechanism OID follows 0x60 and a length.
KRB5_OIDS: Final = (bytes.fromhex("06092a864886f712010202"), bytes.fromhex("06092a864882f712010202"))
SPNEGO_OID: Final = bytes.fromhex("06062b0601050502")


class AuthError(Exception):
    """The client's credentials or token were rejected."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """The one account a simulator accepts (its ``repr`` never shows the password)."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=[secure])"

    def matches_basic(self, header_value: str) -> bool:
        try:
            decoded = base64.b64decode(header_value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return _same_user(user, self.username) and hmac.compare_digest(password.encode(), self.password.encode())

    def matches_principal(self, principal: str | None) -> bool:
        return principal is not None and _same_user(principal, self.username)


def _same_user(given: str, expected: str) -> bool:
    """``DOMAIN\\user``, ``user@domain`` and ``user`` all name the local account ``user``."""
    plain = given.rsplit("\\", 1)[-1].split("@", 1)[0]
    return plain.lower() == expected.rsplit("\\", 1)[-1].split("@", 1)[0].lower()


def challenge_headers(service: WinrmService, *, domain_joined: bool = True) -> list[tuple[str, str]]:
    """The ``WWW-Authenticate`` headers of a 401 from a listener configured as ``service``.

    One header per scheme. A workgroup machine has no Kerberos to offer, so only a domain member
    lists ``Kerberos`` (a Server 2019 workgroup listener sends Negotiate, Basic and CredSSP:
    tests/fixtures/windows/http_401_wsman_2019.http).
    """
    headers = []
    if service.negotiate or service.kerberos:
        headers.append(("WWW-Authenticate", "Negotiate"))
    if service.kerberos and domain_joined:
        headers.append(("WWW-Authenticate", "Kerberos"))
    if service.basic:
        headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
    if service.offer_ntlm_scheme:
        headers.append(("WWW-Authenticate", "NTLM"))
    return headers


def offered_schemes(service: WinrmService, *, domain_joined: bool = True) -> frozenset[str]:
    headers = challenge_headers(service, domain_joined=domain_joined)
    return frozenset(value.split(" ", 1)[0].lower() for _, value in headers)


def token_kind(token: bytes) -> str | None:
    """``ntlm``, ``kerberos`` or ``spnego`` for a raw NTLM, GSS-framed Kerberos or SPNEGO token."""
    if token.startswith(b"NTLMSSP\x00"):
        return "ntlm"
    if token[:1] == b"\x60":
        head = token[:16]
        if any(oid in head for oid in KRB5_OIDS):
            return "kerberos"
        if SPNEGO_OID in head:
            return "spnego"
    if token[:1] == b"\xa1":
        return "spnego"
    return None


# --- accounts and keys -------------------------------------------------------------------------


class NtlmUserFile:
    """The process-wide ``NTLM_USER_FILE`` holding every running simulator's account."""

    _lock = threading.Lock()
    _users: Final[dict[int, Credentials]] = {}
    _tokens = itertools.count(1)
    _path: Path | None = None
    _previous: str | None = None

    @classmethod
    def register(cls, creds: Credentials) -> int:
        if ":" in creds.username or ":" in creds.password or "\n" in creds.password:
            raise ValueError("NTLM accounts cannot contain ':' or newlines")
        with cls._lock:
            for other in cls._users.values():
                if _same_user(other.username, creds.username) and other.password != creds.password:
                    raise ValueError(
                        f"another simulator in this process already serves {creds.username!r} "
                        "with a different password; NTLM accounts must be unique per process"
                    )
            token = next(cls._tokens)
            cls._users[token] = creds
            cls._write()
            return token

    @classmethod
    def unregister(cls, token: int) -> None:
        with cls._lock:
            cls._users.pop(token, None)
            if cls._users:
                cls._write()
            else:
                cls._remove()

    @classmethod
    def _write(cls) -> None:
        if cls._path is None:
            handle, name = tempfile.mkstemp(prefix="simulator-ntlm-", suffix=".txt")
            os.close(handle)
            cls._path = Path(name)
            cls._previous = os.environ.get("NTLM_USER_FILE")
            os.environ["NTLM_USER_FILE"] = name
        lines = []
        for creds in cls._users.values():
            user = creds.username.rsplit("\\", 1)[-1].split("@", 1)[0]
            lines += [f":{user}:{creds.password}", f".:{user}:{creds.password}"]
            if "@" in creds.username:  # a UPN travels as the user name, with no domain
                lines.append(f":{creds.username}:{creds.password}")
            if "\\" in creds.username:
                lines.append(f"{creds.username.split(chr(92))[0]}:{user}:{creds.password}")
        cls._path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cls._path.chmod(0o600)

    @classmethod
    def _remove(cls) -> None:
        if cls._path is not None:
            cls._path.unlink(missing_ok=True)
            cls._path = None
            if cls._previous is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = cls._previous


class KerberosKeys:
    """A fleet's Kerberos service keys: the acceptor credential read from its keytab (needs gssapi)."""

    def __init__(self, keytab: Path) -> None:
        import gssapi  # optional: only a fleet serving Kerberos needs it

        self.keytab = keytab
        self.credentials = gssapi.Credentials(usage="accept", store={b"keytab": f"FILE:{keytab}".encode()})


# --- acceptors -----------------------------------------------------------------------------------


class Acceptor:
    """The server side of one NTLM or Kerberos context."""

    def __init__(self, kind: str, context: Any) -> None:
        self.kind = kind
        self.context = context

    def step(self, token: bytes) -> bytes | None:
        try:
            out: bytes | None = self.context.step(token)
        except spnego.exceptions.SpnegoError as exc:
            raise AuthError(str(exc)) from exc
        return out

    @property
    def complete(self) -> bool:
        return bool(self.context.complete)

    @property
    def principal(self) -> str | None:
        return self.context.client_principal

    def unwrap(self, header: bytes, data: bytes) -> bytes:
        try:
            return self.context.unwrap_winrm(header, data)
        except spnego.exceptions.SpnegoError as exc:
            raise AuthError(f"cannot decrypt: {exc}") from exc

    def wrap(self, data: bytes) -> tuple[bytes, bytes]:
        wrapped = self.context.wrap_winrm(data)
        return wrapped.header, wrapped.data


class KerberosAcceptor(Acceptor):
    """Kerberos acceptance on python-gssapi, so a refused ticket yields the KRB-ERROR token to send back.

    pyspnego's acceptor keeps that token to itself; Windows puts it in the 401's ``WWW-Authenticate``
    (that is how a client learns of ``KRB_AP_ERR_SKEW``). Sealing uses GSS IOV buffers laid out as
    MS-WSMV 2.2.9.1.2 has them: header, then the encrypted data with its padding.
    """

    def __init__(self, keys: KerberosKeys, bindings: Any) -> None:
        import gssapi
        import gssapi.raw

        raw_bindings = None
        if bindings is not None:
            raw_bindings = gssapi.raw.ChannelBindings(application_data=bindings.application_data)
        context = gssapi.SecurityContext(creds=keys.credentials, usage="accept", channel_bindings=raw_bindings)
        # gssapi defers a failed step's error to the next call by default (its metaclass sets it on
        # every subclass); raise at once instead, with the error token attached.
        setattr(context, "__DEFER_STEP_ERRORS__", False)  # noqa: B010  # no such attribute in the stubs
        super().__init__("kerberos", context)
        self.error_token: bytes | None = None

    def step(self, token: bytes) -> bytes | None:
        import gssapi.raw

        try:
            out: bytes | None = self.context.step(token)
        except gssapi.raw.misc.GSSError as exc:
            self.error_token = getattr(exc, "token", None)
            raise AuthError(str(exc)) from exc
        return out

    @property
    def principal(self) -> str | None:
        return str(self.context.initiator_name) if self.context.complete else None

    @property
    def target(self) -> str | None:
        """The service principal the ticket was issued for, e.g. ``HTTP/ws01.corp.example@REALM``."""
        return str(self.context.target_name) if self.context.complete else None

    def wrap(self, data: bytes) -> tuple[bytes, bytes]:
        from gssapi.raw import IOV, IOVBufferType, wrap_iov

        iov = IOV(IOVBufferType.header, data, IOVBufferType.padding, std_layout=False)
        wrap_iov(self.context, iov, confidential=True)
        return iov[0].value or b"", (iov[1].value or b"") + (iov[2].value or b"")

    def unwrap(self, header: bytes, data: bytes) -> bytes:
        from gssapi.raw import IOV, IOVBufferType, unwrap_iov
        from gssapi.raw.misc import GSSError

        iov = IOV((IOVBufferType.header, False, header), data, IOVBufferType.data, std_layout=False)
        try:
            unwrap_iov(self.context, iov)
        except GSSError as exc:
            raise AuthError(f"cannot decrypt: {exc}") from exc
        return iov[1].value or b""


def new_acceptor(kind: str, bindings: Any, keys: KerberosKeys | None) -> Acceptor:
    """An NTLM acceptor (pyspnego) or a Kerberos one (the fleet's keys); raises ``AuthError``."""
    if kind == "ntlm":
        return Acceptor("ntlm", spnego.server(protocol="ntlm", channel_bindings=bindings))
    if keys is None:
        raise AuthError("this fleet has no keytab: Kerberos is not served")
    return KerberosAcceptor(keys, bindings)


def channel_bindings(certificate_hash: bytes | None) -> Any:
    if certificate_hash is None:
        return None
    return spnego.channel_bindings.GssChannelBindings(application_data=b"tls-server-end-point:" + certificate_hash)


# --- one connection --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a request: refuse it with a 401 (``challenge``) or let it through.

    ``answer`` is the next token to send in ``WWW-Authenticate``; with ``challenge`` it continues a
    handshake, without it it completes one (Kerberos mutual authentication).
    """

    allowed: bool
    answer: tuple[str, str] | None = None

    @property
    def challenge(self) -> bool:
        return not self.allowed


@dataclass
class ConnectionAuth:
    """The sign-in state of one TCP connection to one listener."""

    creds: Credentials
    keys: KerberosKeys | None = None
    acceptor: Acceptor | None = None
    scheme: str | None = None  # lower-cased scheme of a completed connection sign-in
    rejected: int = 0
    signed_in_now: bool = False  # set when a handshake completes, for the server's counters
    # (scheme, what it carried) of the last request in a scheme this listener does not offer
    not_offered: tuple[str, str] | None = None

    @property
    def authenticated(self) -> bool:
        return self.scheme is not None

    def decide(
        self,
        header: str | None,
        service: WinrmService,
        *,
        https: bool,
        hostname: str,
        bindings: Any,
        refuse: bool,
        domain_joined: bool = True,
    ) -> Verdict:
        """Judge one request's ``Authorization``; ``refuse`` makes even right credentials fail."""
        if header is None:
            return Verdict(self.authenticated)
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme not in offered_schemes(service, domain_joined=domain_joined):
            self.reset()
            self.not_offered = (scheme, _carries(scheme, value))
            return Verdict(False)
        if scheme == "basic":
            self.reset()
            clear_text_refused = not https and not service.allow_unencrypted
            return Verdict(not clear_text_refused and not refuse and self.creds.matches_basic(value))
        return self._token(scheme, value.strip(), service, hostname, bindings, refuse)

    def _token(
        self, scheme: str, value: str, service: WinrmService, hostname: str, bindings: Any, refuse: bool
    ) -> Verdict:
        try:
            token = base64.b64decode(value, validate=True)
        except binascii.Error:
            return self._rejected()
        kind = token_kind(token)
        allowed_kinds = {"negotiate": ("ntlm", "kerberos"), "kerberos": ("kerberos",), "ntlm": ("ntlm",)}[scheme]
        if kind not in allowed_kinds:
            return self._rejected()
        fresh = kind == "ntlm" and token[8:12] == b"\x01\x00\x00\x00"  # a NEGOTIATE starts over
        if fresh or self.acceptor is None or self.acceptor.kind != kind:
            try:
                self.acceptor = new_acceptor(kind, bindings, self.keys)
            except AuthError:
                return self._rejected()
            self.scheme = None
        acceptor = self.acceptor
        try:
            out = acceptor.step(token)
        except AuthError:
            error = getattr(acceptor, "error_token", None)
            self._rejected()
            return Verdict(False, answer=(SCHEME_NAMES[scheme], base64.b64encode(error).decode()) if error else None)
        if not acceptor.complete:
            return Verdict(False, answer=(SCHEME_NAMES[scheme], base64.b64encode(out or b"").decode()))
        if refuse or not self.creds.matches_principal(acceptor.principal) or not _for_host(acceptor, hostname):
            return self._rejected()
        self.scheme = scheme
        self.signed_in_now = True
        return Verdict(True, answer=(SCHEME_NAMES[scheme], base64.b64encode(out).decode()) if out else None)

    def _rejected(self) -> Verdict:
        self.rejected += 1
        self.reset()
        return Verdict(False)

    def reset(self) -> None:
        self.acceptor = None
        self.scheme = None

    # --- sealed messages ---------------------------------------------------------------------

    def unseal(self, content_type: str, body: bytes) -> bytes:
        """The plain text of a ``multipart/encrypted`` request sealed with this connection's context."""
        if self.acceptor is None or self.scheme is None:
            raise AuthError("no security context for an encrypted message")
        if f'protocol="{ENCRYPTION_BY_SCHEME[self.scheme]}"'.lower() not in content_type.lower():
            raise AuthError("the encryption protocol does not match the sign-in scheme")
        message = b""
        for header, payload in _encrypted_parts(body):
            if len(payload) < 4:
                raise AuthError("encrypted payload too short")
            size = struct.unpack("<i", payload[:4])[0]
            if not 0 <= size <= len(payload) - 4:
                raise AuthError("bad signature length")
            data = self.acceptor.unwrap(payload[4 : 4 + size], payload[4 + size :])
            declared = header.split(b"Length=")[1].split(b"\r\n")[0] if b"Length=" in header else b""
            if not declared.strip().isdigit() or int(declared) != len(data):
                raise AuthError("encrypted length mismatch")
            message += data
        return message

    def seal(self, message: bytes) -> tuple[bytes, str]:
        """``message`` sealed for this connection, and the reply's Content-Type."""
        assert self.acceptor is not None and self.scheme is not None
        protocol = ENCRYPTION_BY_SCHEME[self.scheme]
        header, data = self.acceptor.wrap(message)
        body = (
            BOUNDARY + b"\r\n\tContent-Type: " + protocol.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(message)).encode() + b"\r\n"
            + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<i", len(header)) + header + data + BOUNDARY + b"--\r\n"
        )  # fmt: skip
        return body, f'multipart/encrypted;protocol="{protocol}";boundary="Encrypted Boundary"'


def _for_host(acceptor: Acceptor, hostname: str) -> bool:
    """Whether a Kerberos ticket names this host's own SPN (a fleet's keytab holds every host's key)."""
    target = getattr(acceptor, "target", None)
    if target is None:
        return True
    service, _, rest = target.partition("/")
    return service.upper() == "HTTP" and rest.rsplit("@", 1)[0].lower() == hostname.lower()


def describe_authorization(value: str) -> str:
    """``Authorization`` as a log may show it: the scheme and what it carried, never the secret."""
    scheme, _, rest = value.strip().partition(" ")
    return f"{scheme} {_carries(scheme.lower(), rest)}"


def _carries(scheme: str, value: str) -> str:
    """What a request's credentials field carries: a password, a ticket, or a token with no secret in it."""
    if scheme == "basic":
        return "password"
    try:
        token = base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        return "garbage"
    kind = token_kind(token)
    if kind == "ntlm":
        return "ntlm-negotiate" if token[8:12] == b"\x01\x00\x00\x00" else "ntlm-response"
    return f"{kind}-token" if kind else "unknown-token"


def _encrypted_parts(body: bytes) -> list[tuple[bytes, bytes]]:
    parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
    if len(parts) < 2:
        raise AuthError("not a multipart/encrypted body")
    pairs = []
    for i in range(0, len(parts) - 1, 2):
        payload = parts[i + 1].removesuffix(BOUNDARY + b"--\r\n")
        pairs.append((parts[i], payload.removeprefix(b"\tContent-Type: application/octet-stream\r\n")))
    return pairs
