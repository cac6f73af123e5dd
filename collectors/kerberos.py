"""Kerberos for the collector: credentials acquired in-process, and one-line reasons for Kerberos failures.

A password or keytab is exchanged for a TGT once per named credential and held in a ``MEMORY:`` ccache of
its own (never the process's default one), shared by every host polled with it and renewed before it
expires. Failures from MIT Kerberos, gssapi and pyspnego are read down their exception chain for the
krb5 or GSS code that says what an administrator must fix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import spnego

from collectors.credentials import Credential
from collectors.errors import AuthError

RENEW_MARGIN_S = 300.0


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


def expired(exc: BaseException) -> bool:
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
