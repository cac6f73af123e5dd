"""Kerberos sign-in against a real MIT KDC: the collector asks for tickets, the simulator accepts them.

The realm (``tests/krb5kdc.py``) issues real tickets; the simulated hosts hold their ``HTTP/<fqdn>``
keys in a keytab and accept with gssapi. The collector signs in with a password (acquired in-process
into a MEMORY ccache), a keytab or an existing ccache; over HTTP every message is sealed with the
Kerberos context, over HTTPS the ticket is bound to the TLS channel. Each failure gets one reason.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest
from pydantic import SecretStr

from collectors.credentials import Credential
from collectors.inventory import Target, load_inventory
from collectors.run import PollContext, RunOptions, poll_host, run_poll
from collectors.spool import Spool
from collectors.wsman import open_protocol
from models.enums import FailureClass, RunStatus
from models.records import HostFailure, HostObservation
from simulator import generator
from simulator.scenario import Scenario, fqdn
from simulator.testing import FleetHandle, running_fleet
from tests.collectors.helpers import fleet_context, mismatches, observed
from tests.krb5kdc import MitKdc

pytestmark = pytest.mark.usefixtures("kerberos_extra")

USER = "collector-krb"
ROOT = Path(__file__).resolve().parents[2]
HTTP_FLEET = (40, 17)  # hosts, seed
HTTPS_FLEET = (30, 23)


@dataclasses.dataclass
class Realm:
    kdc: MitKdc
    principal: str
    password: str
    keytab: Path  # the hosts' service keys
    client_keytab: Path  # the collector account's own key
    workdir: Path


def scenario(hosts: int, seed: int) -> Scenario:
    return generator.generate(hosts, seed)


@pytest.fixture(scope="module")
def realm(kdc: MitKdc, tmp_path_factory: pytest.TempPathFactory) -> Realm:
    workdir = tmp_path_factory.mktemp("kerberos")
    password = "Krb-" + secrets.token_urlsafe(12)
    principal = kdc.add_user(USER, password)
    names = sorted({f"HTTP/{fqdn(h)}" for size in (HTTP_FLEET, HTTPS_FLEET) for h in scenario(*size).hosts})
    for name in names:
        kdc.add_service(name)
    keytab = kdc.export_keytab(names, workdir / "hosts.keytab")
    client_keytab = kdc.export_keytab([principal], workdir / "collector.keytab")
    return Realm(kdc, principal, password, keytab, client_keytab, workdir)


def kerberos_fleet(realm: Realm, workdir: Path, size: tuple[int, int], *, https: bool) -> Iterator[FleetHandle]:
    with running_fleet(
        scenario=scenario(*size),
        https=https,
        transport="kerberos",
        names=True,
        keytab=realm.keytab,
        username=realm.principal,
        password=realm.password,
        workdir=workdir,
    ) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def krb_http_fleet(realm: Realm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    yield from kerberos_fleet(realm, tmp_path_factory.mktemp("krb_http"), HTTP_FLEET, https=False)


@pytest.fixture(scope="module")
def krb_https_fleet(realm: Realm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    yield from kerberos_fleet(realm, tmp_path_factory.mktemp("krb_https"), HTTPS_FLEET, https=True)


def fleet_resolver(fleet: FleetHandle):
    """Resolves host names with the fleet's own DNS server, as a domain member asks its DC."""
    server, port = fleet.dns_server.split(":")

    def resolve(host: str) -> str:
        answer = dns.query.udp(dns.message.make_query(host, dns.rdatatype.A), server, port=int(port), timeout=2)
        for rrset in answer.answer:
            for record in rrset:
                return record.address
        raise OSError(f"{host}: no A record")

    return resolve


def kerberos_context(fleet: FleetHandle, credential: Credential, **options) -> PollContext:
    ctx = fleet_context(fleet)
    return dataclasses.replace(
        ctx,
        credentials={"default": credential},
        protocol_factory=functools.partial(open_protocol, resolver=fleet_resolver(fleet)),
        options=dataclasses.replace(ctx.options, **options),
    )


def password_credential(realm: Realm, password: str | None = None) -> Credential:
    return Credential("default", realm.principal, SecretStr(password or realm.password))


def targets(fleet: FleetHandle) -> tuple[Target, ...]:
    return load_inventory(fleet.inventory_path).targets


def healthy_target(fleet: FleetHandle) -> Target:
    row = next(t for t in fleet.truth if not t["fault"] and not t["poll_error"])
    return next(t for t in targets(fleet) if t.host == row["host"])


def poll_fleet(fleet: FleetHandle, ctx: PollContext, url: str, spool: Path):
    return run_poll(targets(fleet), ctx, database_url=url, spool=Spool(spool), options=RunOptions(concurrency=8))


# --- the whole fleet matches its ground truth ------------------------------------------------------


def test_kerberos_over_http_with_sealed_messages_matches_ground_truth(krb_http_fleet, realm, sqlite_url, tmp_path):
    before = dict(krb_http_fleet.stats)
    summary = poll_fleet(krb_http_fleet, kerberos_context(krb_http_fleet, password_credential(realm)), sqlite_url,
                         tmp_path / "spool")  # fmt: skip
    assert summary.status is RunStatus.COMPLETE
    assert mismatches(krb_http_fleet.truth, observed(sqlite_url)) == []
    stats = krb_http_fleet.stats
    read = sum(1 for t in krb_http_fleet.truth if not t["poll_error"])
    assert stats.get("signin_kerberos", 0) - before.get("signin_kerberos", 0) >= read
    assert stats.get("signin_ntlm", 0) == before.get("signin_ntlm", 0)  # never NTLM under a kerberos transport
    assert stats.get("plain_messages", 0) == before.get("plain_messages", 0)  # every message sealed
    assert stats["not_offered"] == {}


def test_kerberos_over_https_with_channel_binding_matches_ground_truth(krb_https_fleet, realm, sqlite_url, tmp_path):
    summary = poll_fleet(krb_https_fleet, kerberos_context(krb_https_fleet, password_credential(realm)), sqlite_url,
                         tmp_path / "spool")  # fmt: skip
    assert summary.status is RunStatus.COMPLETE
    assert mismatches(krb_https_fleet.truth, observed(sqlite_url)) == []
    assert krb_https_fleet.stats.get("signin_ntlm", 0) == 0
    assert krb_https_fleet.stats["not_offered"] == {}


def test_the_ticket_is_bound_to_the_tls_channel(realm, sim_fleet_factory):
    # Behind a TLS-intercepting proxy the host's channel is not ours: the bound ticket must be refused.
    hosts = list(scenario(*HTTPS_FLEET).hosts)
    index = next(i for i, h in enumerate(hosts) if h.fault == "" and h.domain.upper() != "WORKGROUP")
    hosts[index] = dataclasses.replace(hosts[index], fault="cbt_mismatch")
    fleet = sim_fleet_factory(
        scenario=dataclasses.replace(scenario(*HTTPS_FLEET), hosts=tuple(hosts)), https=True, transport="kerberos",
        names=True, keytab=realm.keytab, username=realm.principal, password=realm.password,
    )  # fmt: skip
    row = fleet.truth_for(hosts[index].name)
    target = next(t for t in targets(fleet) if t.host == row["host"])
    result = poll_host(target, kerberos_context(fleet, password_credential(realm)))
    assert isinstance(result, HostFailure) and result.failure_class is FailureClass.AUTH, result
    assert row["poll_error"] == "auth"


# --- credentials ------------------------------------------------------------------------------------


def test_a_password_is_exchanged_in_process_without_any_ticket_file(krb_http_fleet, realm, tmp_path):
    watched = [realm.kdc.workdir, Path("/tmp")]
    before = {p for d in watched for p in d.glob("krb5cc*")}
    ccname = os.environ.get("KRB5CCNAME")
    result = poll_host(healthy_target(krb_http_fleet), kerberos_context(krb_http_fleet, password_credential(realm)))
    assert isinstance(result, HostObservation), result
    assert {p for d in watched for p in d.glob("krb5cc*")} == before
    assert os.environ.get("KRB5CCNAME") == ccname


def test_a_keytab_credential_signs_in(krb_http_fleet, realm):
    credential = Credential("default", realm.principal, None, keytab=str(realm.client_keytab))
    result = poll_host(healthy_target(krb_http_fleet), kerberos_context(krb_http_fleet, credential))
    assert isinstance(result, HostObservation), result


def test_an_existing_ccache_signs_in(krb_https_fleet, realm, tmp_path):
    ccache = realm.kdc.kinit(realm.principal, realm.password, tmp_path / "service.ccache")
    credential = Credential("default", "", None, ccache=f"FILE:{ccache}")
    result = poll_host(healthy_target(krb_https_fleet), kerberos_context(krb_https_fleet, credential))
    assert isinstance(result, HostObservation), result


def test_each_credential_signs_in_as_itself(krb_http_fleet, realm, kdc):
    other_password = "Krb-" + secrets.token_urlsafe(12)
    other = kdc.add_user("collector-krb-other", other_password)
    target = healthy_target(krb_http_fleet)
    name = next(t["name"] for t in krb_http_fleet.truth if t["host"] == target.host)
    before = krb_http_fleet.stats["principals"]
    poll_host(target, kerberos_context(krb_http_fleet, password_credential(realm)))
    poll_host(target, kerberos_context(krb_http_fleet, Credential("default", other, SecretStr(other_password))))
    after = krb_http_fleet.stats["principals"]
    new = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
    # The second account is refused by the host (it is not the host's account), but it asked as itself.
    assert new == {(name, realm.principal): 1}


# --- one reason per failure -------------------------------------------------------------------------


def failure(fleet: FleetHandle, credential: Credential, target: Target | None = None, **options) -> HostFailure:
    result = poll_host(target or healthy_target(fleet), kerberos_context(fleet, credential, **options))
    assert isinstance(result, HostFailure), result
    assert result.failure_class is FailureClass.AUTH, result
    return result


def test_wrong_password_says_so(krb_http_fleet, realm):
    result = failure(krb_http_fleet, password_credential(realm, "not-the-password"))
    assert result.reason.startswith("wrong password for collector-krb@ACTIVATION.TEST")


def test_an_expired_ticket_says_so(krb_http_fleet, realm, tmp_path):
    ccache = realm.kdc.expired_ccache(realm.principal, realm.password, tmp_path / "old.ccache")
    result = failure(krb_http_fleet, Credential("default", "", None, ccache=f"FILE:{ccache}"))
    assert result.reason.startswith("the Kerberos ticket has expired")


def test_a_missing_ticket_says_so(krb_http_fleet, tmp_path):
    result = failure(krb_http_fleet, Credential("default", "", None, ccache=f"FILE:{tmp_path / 'none.ccache'}"))
    assert result.reason.startswith("the Kerberos ccache does not exist")


def test_an_unknown_spn_says_so(krb_http_fleet, realm):
    target = dataclasses.replace(healthy_target(krb_http_fleet), spn="HTTP/not-registered.corp.example")
    result = failure(krb_http_fleet, password_credential(realm), target)
    assert result.reason.startswith("no SPN HTTP/not-registered.corp.example is registered in the KDC")


def test_clock_skew_over_five_minutes_says_so(krb_http_fleet, realm):
    # The KDC's clock runs 10 minutes behind the host's: the host refuses the authenticator.
    skewed = realm.kdc.skewed(-600)
    with skewed.configured():
        result = failure(krb_http_fleet, password_credential(realm))
    assert result.reason.startswith("clock skew over 5 minutes")


def test_an_address_where_kerberos_needs_a_name_says_so_without_a_packet(krb_http_fleet, realm):
    name = next(t["name"] for t in krb_http_fleet.truth if not t["fault"] and not t["poll_error"])
    target = dataclasses.replace(healthy_target(krb_http_fleet), host=krb_http_fleet.address(name))
    before = krb_http_fleet.stats["requests"]
    result = failure(krb_http_fleet, password_credential(realm), target)
    assert result.reason.startswith("Kerberos needs the host's DNS name")
    assert krb_http_fleet.stats["requests"] == before


def test_negotiate_falls_back_to_ntlm_only_when_allowed(krb_http_fleet, realm):
    target = dataclasses.replace(
        healthy_target(krb_http_fleet), transport="negotiate", spn="HTTP/not-registered.corp.example"
    )
    before = krb_http_fleet.stats.get("signin_ntlm", 0)
    assert isinstance(poll_host(target, kerberos_context(krb_http_fleet, password_credential(realm))), HostObservation)
    assert krb_http_fleet.stats.get("signin_ntlm", 0) == before + 1
    result = failure(krb_http_fleet, password_credential(realm), target, allow_ntlm_fallback=False)
    assert result.reason.startswith("no SPN HTTP/not-registered.corp.example")


def test_negotiate_prefers_kerberos(krb_http_fleet, realm):
    target = dataclasses.replace(healthy_target(krb_http_fleet), transport="negotiate")
    before = krb_http_fleet.stats.get("signin_kerberos", 0)
    assert isinstance(poll_host(target, kerberos_context(krb_http_fleet, password_credential(realm))), HostObservation)
    assert krb_http_fleet.stats.get("signin_kerberos", 0) == before + 1


def test_without_the_kerberos_extra_the_collector_says_how_to_enable_it(krb_http_fleet, realm, tmp_path):
    shadow = tmp_path / "shadow"
    (shadow / "gssapi").mkdir(parents=True)
    (shadow / "gssapi" / "__init__.py").write_text("raise ImportError('gssapi is not installed')\n")
    inventory = tmp_path / "inventory.csv"
    row = healthy_target(krb_http_fleet)
    name = next(t["name"] for t in krb_http_fleet.truth if t["host"] == row.host)
    address = krb_http_fleet.address(name)  # no DNS in this process: the address, with the SPN beside it
    inventory.write_text(f"host,port,transport,spn\n{address},{row.port},kerberos,HTTP/{row.host}\n", encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")},
        "PYTHONPATH": f"{shadow}{os.pathsep}{ROOT}",
        "ACTIVATION_DATA_DIR": str(tmp_path / "data"),
        "ACTIVATION_CRED_DEFAULT_USERNAME": realm.principal,
        "ACTIVATION_CRED_DEFAULT_PASSWORD": realm.password,
        "ACTIVATION_SECRETS_FILE": str(tmp_path / "none.env"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "collectors", "poll", "--inventory", str(inventory), "--json", "--timeout", "5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Kerberos support is not installed: pip install -r requirements-kerberos.txt" in done.stdout + done.stderr
