"""The test realm (tests/krb5kdc.py) against the real gssapi, krb5 and pyspnego when things work: the realm
itself, sign-in from a password, a keytab and a ccache, MS-WSMV message sealing, Negotiate choosing Kerberos
(or quietly falling back to NTLM), and channel bindings, so that a change in any of them is noticed.
tests/test_krb5kdc_failures.py holds the exact error each Kerberos failure raises.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import spnego
import spnego.exceptions

from tests.krb5kdc_handshakes import (
    GSS_S_BAD_BINDINGS,
    GSS_S_FAILURE,
    GSS_S_NO_CRED,
    HOST,
    KEYTAB_USER,
    KRB5_KT_NOTFOUND,
    KRB_AP_ERR_REPEAT,
    KRB_AP_ERR_TKT_EXPIRED,
    PASSWORD,
    UNKNOWN_HOST,
    USER,
    accept,
    assert_gss,
    assert_seals_both_ways,
    assert_spnego_gss,
    bindings_for,
    client,
    handshake,
    raw_accept_error,
)
from tests.krb5kdc_process import environ

try:
    import gssapi
    import gssapi.raw
except ImportError:  # the optional extra; the kerberos_extra fixture skips (or on CI fails) with the reason
    gssapi = None

pytestmark = pytest.mark.usefixtures("kerberos_extra")


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
