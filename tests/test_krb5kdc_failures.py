"""The exact error each Kerberos failure raises with the test realm (tests/krb5kdc.py) and the real gssapi,
krb5 and pyspnego: wrong, unknown, disabled and expired accounts, unknown SPNs, expired and missing ccaches,
client and acceptor keytabs without the right key, KDC clocks off in either direction, and a KDC that is
down, so that a change in any of them is noticed. tests/test_krb5kdc.py holds what works.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import spnego
import spnego.exceptions

from tests.krb5kdc_handshakes import (
    GSS_S_FAILURE,
    GSS_S_NO_CRED,
    HOST,
    KDC_ERR_C_PRINCIPAL_UNKNOWN,
    KDC_ERR_CLIENT_REVOKED,
    KDC_ERR_KEY_EXP,
    KDC_ERR_PREAUTH_FAILED,
    KDC_ERR_S_PRINCIPAL_UNKNOWN,
    KRB5_FCC_NOFILE,
    KRB5_KDC_UNREACH,
    KRB5_KEYTAB_BADVNO,
    KRB5_KT_NOTFOUND,
    KRB5_PREAUTH_FAILED,
    KRB_AP_ERR_BADKEYVER,
    KRB_AP_ERR_NOT_US,
    KRB_AP_ERR_SKEW,
    KRB_AP_ERR_TKT_EXPIRED,
    KRB_AP_ERR_TKT_NYV,
    OTHER_HOST,
    PASSWORD,
    STALE_HOST,
    UNKNOWN_HOST,
    USER,
    assert_gss,
    assert_krb5,
    assert_spnego_gss,
    client,
    raw_accept_error,
)
from tests.krb5kdc_process import environ

try:
    import krb5
except ImportError:  # the optional extra; the kerberos_extra fixture skips (or on CI fails) with the reason
    krb5 = None

pytestmark = pytest.mark.usefixtures("kerberos_extra")


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
