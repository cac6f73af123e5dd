"""Signing in to a WinRM listener as Windows clients do: schemes, mechanisms, credentials and tokens.

A listener lists its enabled methods in the ``WWW-Authenticate`` headers of a 401: ``Negotiate``
when NTLM or Kerberos is on, ``Kerberos``, ``Basic realm="WSMAN"`` only when Basic is on (MS-WSMV
3.1.4.1.29.2). Windows never offers a bare ``NTLM``; some other WS-Management servers do. A client
answers in a scheme the host offered: NTLM and Kerberos tokens travel raw inside ``Negotiate``, as
pywinrm's requests_ntlm and requests_kerberos send them.

This module owns the vocabulary of that exchange: parsing challenges, the sign-in plan of a host
(which mechanism, which SPN, why Kerberos is impossible), the security context of one connection
(pyspnego), Kerberos credentials acquired in-process once per named credential (each in its own
``MEMORY:`` ccache, never the process's default one), and one-line reasons for Kerberos failures.
It sends nothing: ``collectors.transport`` drives the exchanges.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib
import ipaddress
import re
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import spnego
import spnego.channel_bindings
import spnego.exceptions

from collectors.credentials import Credential
from collectors.errors import AuthError, ProtocolError
from collectors.inventory import Target

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
RENEW_MARGIN_S = 300.0

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
    if not target.spn and _is_address(target.host):
        return (
            f"Kerberos needs the host's DNS name, and {target.host} is an address: list the host by its FQDN "
            "or give its SPN (spn column, e.g. HTTP/host.corp.example)"
        )
    if not kerberos_installed():
        return f"Kerberos support is not installed: {KERBEROS_EXTRA}"
    if credential.password is None and credential.keytab is None and credential.ccache is None:
        return f"credential {credential.name!r} has no password, keytab or ccache for Kerberos"
    return None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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
            if attempt == 0 and _expired(exc) and tickets.renewable(credential):
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


# --- Kerberos tickets ----------------------------------------------------------------------------


@dataclass
class _Acquired:
    ccache_name: str
    principal: str | None
    expires_at: float
    keep: tuple[Any, ...] = ()  # the krb5 objects the MEMORY cache lives in


@dataclass(eq=False)
class KerberosTickets:
    """Kerberos credentials, acquired in-process once per named credential and shared by its hosts.

    A password or keytab is exchanged for a TGT held in a ``MEMORY:`` ccache of its own; no file
    ccache is written and no other credential's tickets are ever used. A credential naming a ccache
    uses that ccache as it is. Not shared across processes: a worker process acquires its own.
    """

    clock: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _acquired: dict[str, _Acquired] = field(default_factory=dict, repr=False)
    _failed: dict[str, AuthError] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"clock": self.clock}  # tickets and locks stay in the process that acquired them

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]  # a fresh, empty cache in the new process

    def source(self, credential: Credential) -> Any:
        """The pyspnego credential to build a Kerberos context from; raises ``AuthError``."""
        if credential.ccache is not None and credential.password is None and credential.keytab is None:
            return spnego.KerberosCCache(ccache=credential.ccache, principal=_principal(credential.username))
        with self._lock:
            acquired = self._acquired.get(credential.name)
            if acquired is None or acquired.expires_at - RENEW_MARGIN_S <= self.clock():
                if credential.name in self._failed:
                    raise self._failed[credential.name]
                acquired = self._acquire(credential)
                self._acquired[credential.name] = acquired
        return spnego.KerberosCCache(ccache=acquired.ccache_name, principal=acquired.principal)

    def renewable(self, credential: Credential) -> bool:
        return credential.password is not None or credential.keytab is not None

    def forget(self, credential: Credential) -> None:
        with self._lock:
            self._acquired.pop(credential.name, None)

    def _acquire(self, credential: Credential) -> _Acquired:
        try:
            return _kinit(credential)
        except AuthError as exc:
            # A wrong password or an unknown user fails every host alike: ask the KDC once per run,
            # so a fleet cannot lock the account out.
            self._failed[credential.name] = exc
            raise


def _principal(username: str) -> str | None:
    """``user@REALM`` as given; ``DOMAIN\\user`` becomes ``user`` in the default realm; blank is None."""
    if not username:
        return None
    return username.rsplit("\\", 1)[-1] if "\\" in username else username


def _kinit(credential: Credential) -> _Acquired:
    """A TGT for ``credential`` from its password or keytab, in a new ``MEMORY:`` ccache."""
    import krb5  # optional: only Kerberos credentials need it

    try:
        context = krb5.init_context()
        principal = _client_principal(krb5, context, credential)
        options = krb5.get_init_creds_opt_alloc(context)
        krb5.get_init_creds_opt_set_canonicalize(options, True)
        if credential.keytab is not None:
            keytab = krb5.kt_resolve(context, credential.keytab.encode())
            creds = krb5.get_init_creds_keytab(context, principal, options, keytab=keytab)
        else:
            assert credential.password is not None
            secret = credential.password.get_secret_value().encode("utf-8")
            creds = krb5.get_init_creds_password(context, principal, options, password=secret)
        ccache = krb5.cc_new_unique(context, b"MEMORY")
        krb5.cc_initialize(context, ccache, creds.client)
        krb5.cc_store_cred(context, ccache, creds)
    except krb5.Krb5Error as exc:
        raise AuthError(kerberos_reason(exc, None, user=credential.username)) from exc
    name = (ccache.name or b"").decode()
    client = krb5.unparse_name_flags(context, creds.client).decode()
    return _Acquired(f"MEMORY:{name}", client, float(creds.times.endtime), (context, ccache, creds))


def _client_principal(krb5: Any, context: Any, credential: Credential) -> Any:
    user = _principal(credential.username)
    if user is None and credential.keytab is not None:
        keytab = krb5.kt_resolve(context, credential.keytab.encode())
        entries = list(keytab)
        if not entries:
            raise AuthError(f"the keytab {credential.keytab} holds no keys")
        return entries[0].principal
    return krb5.parse_name_flags(context, (user or "").encode())


# --- Kerberos failure reasons --------------------------------------------------------------------

# MIT krb5 com_err codes (krb5.h, from lib/krb5/error_tables/krb5_err.et), as unsigned 32-bit values.
KRB5_KDC_ERR_C_PRINCIPAL_UNKNOWN = 0x96C73A06
KRB5_KDC_ERR_S_PRINCIPAL_UNKNOWN = 0x96C73A07
KRB5_KDC_ERR_CLIENT_REVOKED = 0x96C73A12
KRB5_KDC_ERR_KEY_EXP = 0x96C73A17
KRB5_KDC_ERR_PREAUTH_FAILED = 0x96C73A18
KRB5_AP_ERR_TKT_EXPIRED = 0x96C73A20
KRB5_AP_ERR_TKT_NYV = 0x96C73A21
KRB5_AP_ERR_NOT_US = 0x96C73A23
KRB5_AP_ERR_SKEW = 0x96C73A25
KRB5_AP_ERR_MODIFIED = 0x96C73A29
KRB5_AP_ERR_BADKEYVER = 0x96C73A2C
KRB5_PREAUTH_FAILED = 0x96C73AD2
KRB5_KEYTAB_BADVNO = 0x96C73AD5
KRB5_KT_NOTFOUND = 0x96C73AB5
KRB5_CC_NOTFOUND = 0x96C73A8D
KRB5_FCC_NOFILE = 0x96C73AC3
KRB5_KDC_UNREACH = 0x96C73A9C
KRB5_REALM_UNKNOWN = 0x96C73A9A
KRB5_CONFIG_NODEFREALM = 0x96C73AE0
GSS_S_CREDENTIALS_EXPIRED = 0x000B0000
GSS_S_NO_CRED = 0x00070000

_REASONS: Final = {
    KRB5_KDC_ERR_PREAUTH_FAILED: "wrong password for {user}: the KDC refused it (KDC_ERR_PREAUTH_FAILED)",
    KRB5_KDC_ERR_C_PRINCIPAL_UNKNOWN: "the KDC does not know the user {user} (KDC_ERR_C_PRINCIPAL_UNKNOWN)",
    KRB5_KDC_ERR_CLIENT_REVOKED: "the account {user} is disabled or locked out (KDC_ERR_CLIENT_REVOKED)",
    KRB5_KDC_ERR_KEY_EXP: "the password of {user} has expired (KDC_ERR_KEY_EXP)",
    KRB5_KDC_ERR_S_PRINCIPAL_UNKNOWN: (
        "no SPN {spn} is registered in the KDC: register it on the host's computer account "
        "(setspn -S {spn} <computer>) or give the host by the name its SPN uses"
    ),
    KRB5_AP_ERR_TKT_EXPIRED: "the Kerberos ticket has expired: renew the ccache (kinit) or use a keytab",
    KRB5_AP_ERR_SKEW: (
        "clock skew over 5 minutes between this collector, the KDC and the host (KRB_AP_ERR_SKEW): synchronise "
        "their clocks (w32tm / NTP)"
    ),
    KRB5_AP_ERR_TKT_NYV: (
        "the Kerberos ticket is not yet valid (KRB_AP_ERR_TKT_NYV): the clocks of this collector, the KDC and the "
        "host differ by over 5 minutes; synchronise them (w32tm / NTP)"
    ),
    KRB5_AP_ERR_MODIFIED: (
        "the host could not decrypt the ticket for {spn} (KRB_AP_ERR_MODIFIED): the SPN belongs to another account"
    ),
    KRB5_AP_ERR_NOT_US: (
        "the host holds no key for {spn} (KRB_AP_ERR_NOT_US): the SPN is registered to another computer account"
    ),
    KRB5_AP_ERR_BADKEYVER: (
        "the host's key for {spn} is out of date (KRB_AP_ERR_BADKEYVER): its computer account password changed"
    ),
    KRB5_PREAUTH_FAILED: "the keytab cannot be used for {user}: it is missing, unreadable or not a keytab",
    KRB5_KEYTAB_BADVNO: "the keytab file is not a keytab (unsupported format version)",
    KRB5_CC_NOTFOUND: "no Kerberos ticket in the ccache: run kinit for the service account or use a keytab",
    KRB5_FCC_NOFILE: "the Kerberos ccache does not exist: run kinit for the service account or use a keytab",
    KRB5_KT_NOTFOUND: "the keytab holds no key for {user} (kvno or principal mismatch)",
    KRB5_KDC_UNREACH: "no KDC answered for the realm: check krb5.conf, DNS SRV _kerberos._tcp and port 88",
    KRB5_REALM_UNKNOWN: "no KDC is known for the realm of {user}: check krb5.conf [realms] or DNS",
    KRB5_CONFIG_NODEFREALM: "krb5.conf names no default realm: give the user as user@REALM",
}
# Message fragments for errors that come without a com_err code (a GSS major status only).
_FRAGMENTS: Final = (
    ("clock skew too great", KRB5_AP_ERR_SKEW),
    ("ticket not yet valid", KRB5_AP_ERR_TKT_NYV),
    ("server not found in kerberos database", KRB5_KDC_ERR_S_PRINCIPAL_UNKNOWN),
    ("preauthentication failed", KRB5_KDC_ERR_PREAUTH_FAILED),
    ("client not found in kerberos database", KRB5_KDC_ERR_C_PRINCIPAL_UNKNOWN),
    ("ticket expired", KRB5_AP_ERR_TKT_EXPIRED),
    ("credentials cache file", KRB5_FCC_NOFILE),
    ("no credentials cache found", KRB5_FCC_NOFILE),
    ("matching credential not found", KRB5_CC_NOTFOUND),
    ("no key table entry found", KRB5_KT_NOTFOUND),
    ("cannot contact any kdc", KRB5_KDC_UNREACH),
    ("cannot find kdc", KRB5_REALM_UNKNOWN),
    ("does not specify default realm", KRB5_CONFIG_NODEFREALM),
)


def kerberos_reason(exc: BaseException, spn: str | None, *, user: str = "the user") -> str:
    """One line saying why Kerberos failed, from the com_err code or message in ``exc``'s chain."""
    code = _kerberos_code(exc)
    template = _REASONS.get(code) if code is not None else None
    if template is None:
        return f"Kerberos failed for {spn or user}: {_first_line(exc)}"
    return template.format(user=user, spn=spn or "HTTP/<host>")


def _expired(exc: BaseException) -> bool:
    return _kerberos_code(exc) == KRB5_AP_ERR_TKT_EXPIRED or _major(exc) == GSS_S_CREDENTIALS_EXPIRED


def _kerberos_code(exc: BaseException) -> int | None:
    for inner in _chain(exc):
        for attribute in ("min_code", "code", "err_code"):
            value = getattr(inner, attribute, None)
            if isinstance(value, int) and (value & 0xFFFFFFFF) in _REASONS:
                return value & 0xFFFFFFFF
    text = " ".join(str(inner) for inner in _chain(exc)).lower()
    return next((code for fragment, code in _FRAGMENTS if fragment in text), None)


def _major(exc: BaseException) -> int | None:
    for inner in _chain(exc):
        value = getattr(inner, "maj_code", None)
        if isinstance(value, int):
            return value & 0x00FF0000
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (getattr(current, "base_error", None), current.__cause__, current.__context__):
            if isinstance(inner, BaseException):
                todo.append(inner)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
