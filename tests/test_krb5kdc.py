"""The test realm (tests/krb5kdc.py) against the real gssapi, krb5 and pyspnego: sign-in from a password,
a keytab and a ccache, MS-WSMV message sealing, channel bindings, and the exact error each Kerberos
failure raises, so that a change in any of them is noticed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import spnego
import spnego.exceptions
from spnego.channel_bindings import GssChannelBindings

from tests.krb5kdc import MitKdc, environ

try:
    import gssapi
    import gssapi.raw
    import krb5
except ImportError:  # the optional extra; the kerberos_extra fixture skips (or on CI fails) with the reason
    gssapi = krb5 = None

pytestmark = pytest.mark.usefixtures("kerberos_extra")

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


@pytest.fixture(scope="module")
def realm(kdc: MitKdc, tmp_path_factory: pytest.TempPathFactory) -> Realm:
    workdir = tmp_path_factory.mktemp("krbtest")
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


# --- the realm itself ------------------------------------------------------------------------------


def test_a_subprocess_reaches_the_realm_with_env_alone(realm, tmp_path):
    kdc = realm.kdc
    ccache = kdc.kinit(USER, PASSWORD, tmp_path / "cc")
    listed = subprocess.run(
        ["klist", "-c", f"FILE:{ccache}"], env={"PATH": os.environ["PATH"], **kdc.env()}, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert f"Default principal: {realm.user}" in listed.stdout
    assert f"krbtgt/{kdc.realm}@{kdc.realm}" in listed.stdout
    assert os.environ["KRB5_CONFIG"] == str(kdc.krb5_conf)  # the fixture set it for this process


def test_kinit_from_a_keytab(realm, tmp_path):
    ccache = realm.kdc.kinit(KEYTAB_USER, None, tmp_path / "cc", keytab=realm.user_keytab)
    assert subprocess.run(["klist", "-s", "-c", f"FILE:{ccache}"], env=realm.kdc.env()).returncode == 0


def test_expired_ccache_holds_only_expired_tickets(realm, tmp_path):
    fresh = realm.kdc.kinit(USER, PASSWORD, tmp_path / "fresh.cc")
    expired = realm.kdc.expired_ccache(USER, PASSWORD, tmp_path / "expired.cc")
    # klist -s: exit 0 only when the ccache holds a ticket that has not expired
    assert subprocess.run(["klist", "-s", "-c", f"FILE:{fresh}"], env=realm.kdc.env()).returncode == 0
    assert subprocess.run(["klist", "-s", "-c", f"FILE:{expired}"], env=realm.kdc.env()).returncode == 1
    listed = subprocess.run(["klist", "-c", f"FILE:{expired}"], env=realm.kdc.env(), capture_output=True, text=True)
    assert f"krbtgt/{realm.kdc.realm}" in listed.stdout


def test_add_user_refuses_a_principal_that_exists(realm):
    with pytest.raises(RuntimeError, match="already exists"):
        realm.kdc.add_user(USER, "Other-Pass-1")


# --- signing in ----------------------------------------------------------------------------------------


def test_password_signs_in_from_a_memory_ccache_only(realm, tmp_path):
    before_tmp = set(Path("/tmp").glob("krb5cc*"))
    before_ccname = os.environ.get("KRB5CCNAME")
    trace = tmp_path / "trace.log"
    with environ(KRB5_TRACE=str(trace)):
        initiator, acceptor = handshake(spnego.Password(USER, PASSWORD), realm.host_keytab)
    assert initiator.negotiated_protocol == "kerberos"
    assert acceptor.client_principal == realm.user
    assert initiator.session_key == acceptor.session_key
    assert_seals_both_ways(initiator, acceptor)
    # pyspnego's _kinit: krb5.get_init_creds_password, then krb5.cc_new_unique(ctx, b"MEMORY")
    stored = [line for line in trace.read_text().splitlines() if "Storing " in line]
    assert stored
    assert all(" in MEMORY:" in line for line in stored), stored
    assert "FILE:" not in trace.read_text()
    assert set(Path("/tmp").glob("krb5cc*")) == before_tmp
    assert not (realm.kdc.workdir / "krb5cc_default").exists()
    assert os.environ.get("KRB5CCNAME") == before_ccname


def test_keytab_signs_in(realm):
    credential = spnego.KerberosKeytab(keytab=f"FILE:{realm.user_keytab}", principal=realm.keytab_user)
    initiator, acceptor = handshake(credential, realm.host_keytab)
    assert acceptor.client_principal == realm.keytab_user
    assert_seals_both_ways(initiator, acceptor)


def test_keytab_without_principal_uses_its_first_entry(realm):
    _, acceptor = handshake(spnego.KerberosKeytab(keytab=f"FILE:{realm.user_keytab}"), realm.host_keytab)
    assert acceptor.client_principal == realm.keytab_user


def test_ccache_from_kinit_signs_in(realm):
    initiator, acceptor = handshake(spnego.KerberosCCache(ccache=f"FILE:{realm.ccache}"), realm.host_keytab)
    assert acceptor.client_principal == realm.user
    assert_seals_both_ways(initiator, acceptor)


def test_acceptor_keytab_from_the_credential_store(realm):
    """``cred_store={"keytab": path}`` (gss_acquire_cred_from) needs no KRB5_KTNAME."""
    assert "KRB5_KTNAME" not in os.environ
    initiator = client(spnego.KerberosCCache(ccache=f"FILE:{realm.ccache}"))
    credentials = gssapi.Credentials(usage="accept", store={"keytab": f"FILE:{realm.host_keytab}"})
    acceptor = gssapi.SecurityContext(creds=credentials, usage="accept")
    answer = acceptor.step(initiator.step())
    initiator.step(answer)
    assert acceptor.complete
    assert str(acceptor.initiator_name) == realm.user
    # pyspnego takes the same credential through its (private) _gssapi_credential argument
    second = client(spnego.KerberosCCache(ccache=f"FILE:{realm.ccache}"))
    server = spnego.server(protocol="kerberos", _gssapi_credential=credentials)
    second.step(server.step(second.step()))
    assert server.complete
    assert_seals_both_ways(second, server)


def test_without_a_keytab_the_acceptor_has_no_credential(realm):
    """The realm's krb5.conf points the default keytab into its work directory, where there is none."""
    with pytest.raises(spnego.exceptions.NoCredentialError) as caught:
        spnego.server(protocol="kerberos")
    assert_spnego_gss(caught.value, spnego.exceptions.NoCredentialError, GSS_S_NO_CRED, KRB5_KT_NOTFOUND, "Keytab")


# --- Negotiate -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["keytab", "ccache", "password"])
def test_negotiate_signs_in_with_kerberos(realm, kind):
    credential = {
        "keytab": spnego.KerberosKeytab(keytab=f"FILE:{realm.user_keytab}", principal=realm.keytab_user),
        "ccache": spnego.KerberosCCache(ccache=f"FILE:{realm.ccache}"),
        "password": spnego.Password(USER, PASSWORD),
    }[kind]
    initiator = client(credential, protocol="negotiate")
    token = initiator.step()
    assert b"NTLMSSP\x00" not in token  # the optimistic token is the Kerberos AP-REQ
    acceptor, answer = accept(realm.host_keytab, token, protocol="negotiate")
    initiator.step(answer)
    assert initiator.complete
    assert acceptor.complete
    assert initiator.negotiated_protocol == acceptor.negotiated_protocol == "kerberos"
    assert_seals_both_ways(initiator, acceptor)


@pytest.mark.parametrize(("password", "host"), [("wrong", HOST), (PASSWORD, UNKNOWN_HOST)])
def test_negotiate_with_a_password_falls_back_to_ntlm_silently(realm, password, host):
    """Any Kerberos failure (here a wrong password, an unknown SPN) only drops Kerberos from the mech list."""
    token = client(spnego.Password(USER, password), host, protocol="negotiate").step()
    assert b"NTLMSSP\x00" in token


def test_negotiate_with_a_missing_ccache_loses_the_kerberos_reason(realm):
    initiator = client(spnego.KerberosCCache(ccache=f"FILE:{realm.dir}/missing.cc"), protocol="negotiate")
    with pytest.raises(spnego.exceptions.BadMechanismError) as caught:
        initiator.step()
    assert "Unable to negotiate common mechanism" in str(caught.value)
    assert "A credential for ntlm is needed but only found credentials for kerberos" in str(caught.value)
    assert "No credentials cache found" not in str(caught.value)  # NTLM failed last; its error is the one kept


def test_negotiate_with_an_expired_ccache_keeps_the_kerberos_reason(realm, tmp_path):
    expired = realm.kdc.expired_ccache(USER, PASSWORD, tmp_path / "expired.cc")
    initiator = client(spnego.KerberosCCache(ccache=f"FILE:{expired}"), protocol="negotiate")
    with pytest.raises(spnego.exceptions.BadMechanismError) as caught:
        initiator.step()
    inner = caught.value.base_error
    assert_spnego_gss(inner, spnego.exceptions.SpnegoError, GSS_S_FAILURE, KRB_AP_ERR_TKT_EXPIRED, "Ticket expired")


# --- channel bindings ----------------------------------------------------------------------------------


def test_matching_channel_bindings_succeed(realm):
    initiator, acceptor = handshake(
        spnego.KerberosCCache(ccache=f"FILE:{realm.ccache}"), realm.host_keytab, bindings=bindings_for(b"cert")
    )
    assert_seals_both_ways(initiator, acceptor)


def test_mismatched_channel_bindings_fail_at_the_acceptor(realm):
    token = client(spnego.KerberosCCache(ccache=f"FILE:{realm.ccache}"), bindings=bindings_for(b"cert")).step()
    other = gssapi.raw.ChannelBindings(application_data=bindings_for(b"other cert").application_data)
    error = raw_accept_error(realm.host_keytab, token, other)
    assert type(error) is gssapi.raw.exceptions.BadChannelBindingsError
    assert_gss(error, GSS_S_BAD_BINDINGS, 100001, "Incorrect channel bindings were supplied")


def test_pyspnego_acceptor_hides_its_gss_error_behind_an_attribute_error(realm):
    """python-gssapi defers an acceptor's step error; pyspnego then reads a property and gets AttributeError."""
    token = client(spnego.KerberosCCache(ccache=f"FILE:{realm.ccache}"), bindings=bindings_for(b"cert")).step()
    with environ(KRB5_KTNAME=f"FILE:{realm.host_keytab}"):
        server = spnego.server(protocol="kerberos", channel_bindings=bindings_for(b"other cert"))
        with pytest.raises(AttributeError, match="has not yet been started"):
            server.step(token)
    deferred = server._context._last_err
    assert type(deferred) is gssapi.raw.exceptions.BadChannelBindingsError
    assert deferred.token  # the KRB-ERROR an acceptor would send back


def test_bindings_on_one_side_only_are_accepted(realm):
    """MIT accepts an initiator's bindings the acceptor does not check, and no bindings where it would."""
    credential = spnego.KerberosCCache(ccache=f"FILE:{realm.ccache}")
    acceptor, _ = accept(realm.host_keytab, client(credential, bindings=bindings_for(b"cert")).step())
    assert acceptor.complete
    acceptor, _ = accept(realm.host_keytab, client(credential).step(), bindings=bindings_for(b"cert"))
    assert acceptor.complete


def test_a_replayed_ap_req_is_refused(realm):
    token = client(spnego.KerberosCCache(ccache=f"FILE:{realm.ccache}")).step()
    accept(realm.host_keytab, token)
    error = raw_accept_error(realm.host_keytab, token)
    assert_gss(error, GSS_S_FAILURE, KRB_AP_ERR_REPEAT, "Request is a replay")


# --- failures: what each raises ------------------------------------------------------------------------


def test_wrong_password(realm):
    with pytest.raises(krb5.Krb5Error) as caught:
        client(spnego.Password(USER, "not-the-password"))  # the TGT is asked for when the context is made
    assert_krb5(caught.value, KDC_ERR_PREAUTH_FAILED, "Preauthentication failed")


def test_unknown_user(realm):
    with pytest.raises(krb5.Krb5Error) as caught:
        client(spnego.Password("krbtest-nobody", PASSWORD))
    assert_krb5(
        caught.value,
        KDC_ERR_C_PRINCIPAL_UNKNOWN,
        f"Client 'krbtest-nobody@{realm.kdc.realm}' not found in Kerberos database",
    )


def test_disabled_account(realm):
    name = realm.kdc.add_user("krbtest-disabled", PASSWORD)
    realm.kdc.kadmin(f"modprinc -allow_tix {name}")
    with pytest.raises(krb5.Krb5Error) as caught:
        client(spnego.Password(name, PASSWORD))
    assert_krb5(caught.value, KDC_ERR_CLIENT_REVOKED, "Client's credentials have been revoked")


def test_expired_password(realm):
    name = realm.kdc.add_user("krbtest-pwexpired", PASSWORD)
    realm.kdc.kadmin(f'modprinc -pwexpire "yesterday" {name}')
    with pytest.raises(krb5.Krb5Error) as caught:
        client(spnego.Password(name, PASSWORD))
    assert_krb5(caught.value, KDC_ERR_KEY_EXP, "Password has expired")


@pytest.mark.parametrize("kind", ["password", "ccache"])
def test_unknown_spn(realm, kind):
    credential = (
        spnego.Password(USER, PASSWORD) if kind == "password" else spnego.KerberosCCache(f"FILE:{realm.ccache}")
    )
    initiator = client(credential, UNKNOWN_HOST)
    with pytest.raises(spnego.exceptions.SpnegoError) as caught:
        initiator.step()  # the service ticket is asked for at the first step
    message = f"Server HTTP/{UNKNOWN_HOST}@{realm.kdc.realm} not found in Kerberos database"
    assert_spnego_gss(caught.value, spnego.exceptions.SpnegoError, GSS_S_FAILURE, KDC_ERR_S_PRINCIPAL_UNKNOWN, message)


def test_expired_ccache(realm, tmp_path):
    expired = realm.kdc.expired_ccache(USER, PASSWORD, tmp_path / "expired.cc")
    initiator = client(spnego.KerberosCCache(ccache=f"FILE:{expired}"))  # acquiring the credential still works
    logged = len(realm.kdc.main.log.read_text())
    with pytest.raises(spnego.exceptions.SpnegoError) as caught:
        initiator.step()
    assert_spnego_gss(
        caught.value, spnego.exceptions.SpnegoError, GSS_S_FAILURE, KRB_AP_ERR_TKT_EXPIRED, "Ticket expired"
    )
    assert "TGS_REQ" not in realm.kdc.main.log.read_text()[logged:]  # the client refuses before asking the KDC


def test_missing_ccache(realm):
    with pytest.raises(spnego.exceptions.NoCredentialError) as caught:
        client(spnego.KerberosCCache(ccache=f"FILE:{realm.dir}/missing.cc"))
    assert_spnego_gss(
        caught.value, spnego.exceptions.NoCredentialError, GSS_S_NO_CRED, KRB5_FCC_NOFILE, "No credentials cache found"
    )
    assert "Getting GSSAPI credential" in str(caught.value)


@pytest.fixture
def bad_keytabs(realm, tmp_path) -> dict[str, Path]:
    header_only = tmp_path / "header-only.keytab"
    header_only.write_bytes(b"\x05\x02")  # a valid keytab with no entry
    zero = tmp_path / "zero.keytab"
    zero.write_bytes(b"")
    return {"header-only": header_only, "zero-bytes": zero, "missing": tmp_path / "missing.keytab"}


@pytest.mark.parametrize(
    ("kind", "code", "message"),
    [
        ("header-only", KRB5_KT_NOTFOUND, "Keytab contains no suitable keys for {user}"),
        ("zero-bytes", KRB5_PREAUTH_FAILED, "Pre-authentication failed: Unsupported key table format version number"),
        ("missing", KRB5_PREAUTH_FAILED, "Pre-authentication failed: Key table file '{path}' not found"),
    ],
)
def test_client_keytab_without_the_key(realm, bad_keytabs, kind, code, message):
    path = bad_keytabs[kind]
    with pytest.raises(krb5.Krb5Error) as caught:
        client(spnego.KerberosKeytab(keytab=f"FILE:{path}", principal=realm.keytab_user))
    assert_krb5(caught.value, code, message.format(user=realm.keytab_user, path=path))


def test_client_keytab_without_the_key_and_no_principal(realm, bad_keytabs):
    """With no principal pyspnego reads the keytab's first entry itself; these are its raw errors."""
    with pytest.raises(IndexError):  # pyspnego's list(keytab)[0] on a keytab with no entry
        client(spnego.KerberosKeytab(keytab=f"FILE:{bad_keytabs['header-only']}"))
    with pytest.raises(krb5.Krb5Error) as caught:
        client(spnego.KerberosKeytab(keytab=f"FILE:{bad_keytabs['zero-bytes']}"))
    assert_krb5(caught.value, KRB5_KEYTAB_BADVNO, "Unsupported key table format version number")
    with pytest.raises(krb5.Krb5Error) as caught:
        client(spnego.KerberosKeytab(keytab=f"FILE:{bad_keytabs['missing']}"))
    assert caught.value.err_code == 2  # ENOENT, not a Kerberos code
    assert str(caught.value) == f"Key table file '{bad_keytabs['missing']}' not found 2"


def test_client_keytab_of_another_principal(realm):
    with pytest.raises(krb5.Krb5Error) as caught:
        client(spnego.KerberosKeytab(keytab=f"FILE:{realm.host_keytab}", principal=realm.keytab_user))
    assert_krb5(caught.value, KRB5_KT_NOTFOUND, f"Keytab contains no suitable keys for {realm.keytab_user}")


def test_client_keytab_out_of_date(realm, tmp_path):
    """A keytab exported before the password changed: the KDC sees a wrong key, as for a wrong password."""
    name = realm.kdc.add_user("krbtest-rotated", "Before-1")
    old = realm.kdc.export_keytab([name], tmp_path / "old.keytab")
    realm.kdc.kadmin(f"cpw -pw After-2 {name}")
    with pytest.raises(krb5.Krb5Error) as caught:
        client(spnego.KerberosKeytab(keytab=f"FILE:{old}", principal=name))
    assert_krb5(caught.value, KDC_ERR_PREAUTH_FAILED, "Preauthentication failed")


@pytest.mark.parametrize("kind", ["header-only", "zero-bytes", "missing"])
def test_acceptor_keytab_without_keys(realm, bad_keytabs, kind):
    path = bad_keytabs[kind]
    with environ(KRB5_KTNAME=f"FILE:{path}"), pytest.raises(spnego.exceptions.NoCredentialError) as caught:
        spnego.server(protocol="kerberos")
    message = f"Keytab FILE:{path} is nonexistent or empty"
    assert_spnego_gss(caught.value, spnego.exceptions.NoCredentialError, GSS_S_NO_CRED, KRB5_KT_NOTFOUND, message)


def test_acceptor_keytab_of_another_host(realm):
    token = client(spnego.KerberosCCache(ccache=f"FILE:{realm.ccache}")).step()
    error = raw_accept_error(realm.other_keytab, token)
    message = f"Request ticket server HTTP/{HOST}@{realm.kdc.realm} not found in keytab (ticket kvno 1)"
    assert_gss(error, GSS_S_FAILURE, KRB_AP_ERR_NOT_US, message)


def test_acceptor_keytab_out_of_date(realm):
    token = client(spnego.KerberosCCache(ccache=f"FILE:{realm.ccache}"), STALE_HOST).step()
    error = raw_accept_error(realm.stale_keytab, token)
    message = (
        f"Request ticket server HTTP/{STALE_HOST}@{realm.kdc.realm} kvno 2 not found in keytab; "
        "keytab is likely out of date"
    )
    assert_gss(error, GSS_S_FAILURE, KRB_AP_ERR_BADKEYVER, message)


def test_kdc_clock_off_without_timesync_refuses_the_password(realm):
    """kdc_timesync = 0: the KDC checks the encrypted timestamp against its own clock."""
    with realm.kdc.skewed(-600, timesync=False).configured(), pytest.raises(krb5.Krb5Error) as caught:
        client(spnego.Password(USER, PASSWORD))
    assert_krb5(caught.value, KRB_AP_ERR_SKEW, "Clock skew too great")


@pytest.mark.parametrize(
    ("offset", "code", "message"),
    [(+600, KRB_AP_ERR_SKEW, "Clock skew too great"), (-600, KRB_AP_ERR_TKT_NYV, "Ticket not yet valid")],
    ids=["kdc-ahead", "kdc-behind"],
)
def test_kdc_clock_off_without_timesync_refuses_a_tgs_request(realm, tmp_path, offset, code, message):
    """A TGT from the KDC on the right clock, then a TGS-REQ to one whose clock is off: ahead, it finds the
    authenticator too old; behind, it finds the TGT not valid yet."""
    ccache = realm.kdc.kinit(USER, PASSWORD, tmp_path / "cc")
    with realm.kdc.skewed(offset, timesync=False).configured():
        initiator = client(spnego.KerberosCCache(ccache=f"FILE:{ccache}"))
        with pytest.raises(spnego.exceptions.SpnegoError) as caught:
            initiator.step()
    assert_spnego_gss(caught.value, spnego.exceptions.SpnegoError, GSS_S_FAILURE, code, message)


def test_kdc_clock_behind_the_host_gives_skew_at_the_host(realm):
    """MIT's default kdc_timesync = 1: the client adopts the KDC's clock, so the host on the real clock
    sees an authenticator 10 minutes old; its KRB-ERROR token makes the client raise the same code."""
    with realm.kdc.skewed(-600).configured():
        initiator = client(spnego.Password(USER, PASSWORD))
        token = initiator.step()
    error = raw_accept_error(realm.host_keytab, token)
    assert_gss(error, GSS_S_FAILURE, KRB_AP_ERR_SKEW, "Clock skew too great")
    assert error.token
    with pytest.raises(spnego.exceptions.SpnegoError) as caught:
        initiator.step(error.token)
    assert_spnego_gss(
        caught.value, spnego.exceptions.SpnegoError, GSS_S_FAILURE, KRB_AP_ERR_SKEW, "Clock skew too great"
    )


def test_kdc_clock_ahead_of_the_host_gives_a_ticket_not_yet_valid(realm):
    with realm.kdc.skewed(+600).configured():
        token = client(spnego.Password(USER, PASSWORD)).step()
    error = raw_accept_error(realm.host_keytab, token)
    assert_gss(error, GSS_S_FAILURE, KRB_AP_ERR_TKT_NYV, "Ticket not yet valid")


@pytest.mark.parametrize("kind", ["password", "ccache"])
def test_kdc_down(realm, kind):
    credential = (
        spnego.Password(USER, PASSWORD) if kind == "password" else spnego.KerberosCCache(f"FILE:{realm.ccache}")
    )
    message = f"Cannot contact any KDC for realm '{realm.kdc.realm}'"
    started = time.monotonic()
    with realm.kdc.unreachable_config().configured():
        if kind == "password":
            with pytest.raises(krb5.Krb5Error) as caught:
                client(credential)
            assert_krb5(caught.value, KRB5_KDC_UNREACH, message)
        else:  # the TGT is in the ccache; the service ticket for a host not asked for yet needs the KDC
            initiator = client(credential, OTHER_HOST)
            with pytest.raises(spnego.exceptions.SpnegoError) as caught:
                initiator.step()
            assert_spnego_gss(caught.value, spnego.exceptions.SpnegoError, GSS_S_FAILURE, KRB5_KDC_UNREACH, message)
    assert time.monotonic() - started < 5  # a refused loopback connection fails at once
