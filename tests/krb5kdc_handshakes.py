"""What tests/test_krb5kdc.py and tests/test_krb5kdc_failures.py share: the test principals of the realm
(``Realm``, made once per session by the ``realm`` fixture in tests/conftest.py), the MIT and GSS error codes
they expect, and helpers that run a pyspnego handshake and check what it or the acceptor raises.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import spnego
from spnego.channel_bindings import GssChannelBindings

from tests.krb5kdc import MitKdc
from tests.krb5kdc_process import environ

try:
    import gssapi
    import gssapi.raw
    import krb5
except ImportError:  # the optional extra; the kerberos_extra fixture skips (or on CI fails) with the reason
    gssapi = krb5 = None

# MIT krb5 com_err codes (krb5.h) as GSSError.min_code carries them; krb5.Krb5Error.err_code holds them signed.
KDC_ERR_C_PRINCIPAL_UNKNOWN = 0x96C73A06
KDC_ERR_S_PRINCIPAL_UNKNOWN = 0x96C73A07
KDC_ERR_CLIENT_REVOKED = 0x96C73A12
KDC_ERR_KEY_EXP = 0x96C73A17
KDC_ERR_PREAUTH_FAILED = 0x96C73A18
KRB_AP_ERR_TKT_EXPIRED = 0x96C73A20
KRB_AP_ERR_TKT_NYV = 0x96C73A21
KRB_AP_ERR_REPEAT = 0x96C73A22
KRB_AP_ERR_NOT_US = 0x96C73A23
KRB_AP_ERR_SKEW = 0x96C73A25
KRB_AP_ERR_BADKEYVER = 0x96C73A2C
KRB5_KDC_UNREACH = 0x96C73A9C
KRB5_KT_NOTFOUND = 0x96C73AB5
KRB5_FCC_NOFILE = 0x96C73AC3
KRB5_PREAUTH_FAILED = 0x96C73AD2
KRB5_KEYTAB_BADVNO = 0x96C73AD5
# GSS major status codes (routine errors).
GSS_S_BAD_BINDINGS = 0x00040000
GSS_S_NO_CRED = 0x00070000
GSS_S_FAILURE = 0x000D0000

USER = "krbtest-alice"
PASSWORD = "Alice-Pass-1"
KEYTAB_USER = "krbtest-svc"
HOST = "krbtest1.corp.example"  # its keytab serves every acceptor below
OTHER_HOST = "krbtest2.corp.example"  # registered; its keytab is the "wrong keytab" for HOST
STALE_HOST = "krbtest3.corp.example"  # keys changed after its keytab was exported
UNKNOWN_HOST = "krbtest9.corp.example"  # no SPN in the realm
PLAIN = b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>'


@dataclass(frozen=True)
class Realm:
    kdc: MitKdc
    dir: Path
    user: str  # full principal names
    keytab_user: str
    host_keytab: Path
    other_keytab: Path
    stale_keytab: Path
    user_keytab: Path
    ccache: Path  # FILE ccache of ``user`` from kinit


def make_realm(kdc: MitKdc, workdir: Path) -> Realm:
    """The principals above added to ``kdc``, their keytabs and ``USER``'s ccache, all in ``workdir``; the keys
    of ``HTTP/<STALE_HOST>`` change after its keytab is exported."""
    user = kdc.add_user(USER, PASSWORD)
    keytab_user = kdc.add_user(KEYTAB_USER, "Svc-Pass-1")
    for host in (HOST, OTHER_HOST, STALE_HOST):
        kdc.add_service(f"HTTP/{host}")
    stale = kdc.export_keytab([f"HTTP/{STALE_HOST}"], workdir / "stale.keytab")
    kdc.kadmin(f"cpw -randkey {kdc.principal(f'HTTP/{STALE_HOST}')}")
    return Realm(
        kdc=kdc,
        dir=workdir,
        user=user,
        keytab_user=keytab_user,
        host_keytab=kdc.export_keytab([f"HTTP/{HOST}"], workdir / "host.keytab"),
        other_keytab=kdc.export_keytab([f"HTTP/{OTHER_HOST}"], workdir / "other.keytab"),
        stale_keytab=stale,
        user_keytab=kdc.export_keytab([KEYTAB_USER], workdir / "svc.keytab"),
        ccache=kdc.kinit(USER, PASSWORD, workdir / "alice.ccache"),
    )


def client(credential: Any, host: str = HOST, *, protocol: str = "kerberos", bindings: Any = None) -> Any:
    return spnego.client(credential, hostname=host, service="HTTP", protocol=protocol, channel_bindings=bindings)


def accept(keytab: Path, token: bytes, *, protocol: str = "kerberos", bindings: Any = None) -> tuple[Any, bytes | None]:
    """A pyspnego acceptor reading ``keytab`` (through KRB5_KTNAME) and its answer to ``token``."""
    with environ(KRB5_KTNAME=f"FILE:{keytab}"):
        server = spnego.server(protocol=protocol, channel_bindings=bindings)
        return server, server.step(token)


def handshake(credential: Any, keytab: Path, *, protocol: str = "kerberos", bindings: Any = None) -> tuple[Any, Any]:
    initiator = client(credential, protocol=protocol, bindings=bindings)
    acceptor, answer = accept(keytab, initiator.step(), protocol=protocol, bindings=bindings)
    assert initiator.step(answer) is None
    assert initiator.complete
    assert acceptor.complete
    return initiator, acceptor


def assert_seals_both_ways(initiator: Any, acceptor: Any) -> None:
    """MS-WSMV Kerberos encryption: gss_wrap_iov with a header buffer, each way."""
    sealed = initiator.wrap_winrm(PLAIN)
    assert PLAIN not in sealed.data
    assert acceptor.unwrap_winrm(sealed.header, sealed.data) == PLAIN
    sealed = acceptor.wrap_winrm(PLAIN + b"answer")
    assert initiator.unwrap_winrm(sealed.header, sealed.data) == PLAIN + b"answer"


def raw_accept_error(keytab: Path, token: bytes, bindings: Any = None) -> Any:
    """The GSSError a gssapi acceptor with ``cred_store={"keytab": ...}`` raises for ``token``."""
    credentials = gssapi.Credentials(usage="accept", store={"keytab": f"FILE:{keytab}"})
    with pytest.raises(gssapi.raw.GSSError) as caught:
        gssapi.raw.accept_sec_context(token, credentials, None, bindings)
    return caught.value


def assert_gss(exc: Any, major: int, minor: int, message: str) -> None:
    assert (exc.maj_code, exc.min_code) == (major, minor), (hex(exc.maj_code), hex(exc.min_code), str(exc))
    assert message in str(exc)


def assert_spnego_gss(exc: Any, kind: type, major: int, minor: int, message: str) -> None:
    """A pyspnego error of exactly ``kind`` whose base_error is the GSSError with these codes."""
    assert type(exc) is kind
    assert isinstance(exc.base_error, gssapi.raw.GSSError)
    assert_gss(exc.base_error, major, minor, message)
    assert message in str(exc)


def assert_krb5(exc: Any, code: int, message: str) -> None:
    """A krb5.Krb5Error (raised as it is: pyspnego wraps only GSS errors) with this com_err code."""
    assert type(exc) is krb5.Krb5Error
    assert exc.err_code & 0xFFFFFFFF == code, (exc.err_code, str(exc))
    assert str(exc) == f"{message} {exc.err_code}"


def bindings_for(certificate: bytes) -> GssChannelBindings:
    return GssChannelBindings(application_data=b"tls-server-end-point:" + hashlib.sha256(certificate).digest())
