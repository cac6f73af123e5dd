"""Failing renewals caught before they expire, and client failures traced to their KMS host.

A 120-host simulated fleet (seed 1) holds every case of the ground truth: Licensed KMS clients whose
renewals fail (some with under two days left), old failures a later success superseded, clients of a KMS
host that is not activated, too old for them, not a KMS host at all, below its threshold or unreachable,
the same KMS host named by FQDN, short name, address and discovery, an Office-only KMS host and a
workgroup client that found its host. The collector polls it for real; the database must say what the
truth says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from collectors.run import RunSummary
from collectors.spool import Spool
from models import db, kms
from models.enums import RunStatus
from models.tables import Host, HostFinding
from simulator.testing import FleetHandle, running_fleet
from tests.collectors.helpers import mismatches, observed, poll


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    with running_fleet(hosts=120, seed=1, workdir=tmp_path_factory.mktemp("renewals")) as f:
        yield f


@pytest.fixture(scope="module")
def run(fleet: FleetHandle, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, RunSummary]:
    workdir = tmp_path_factory.mktemp("renewals_db")
    url = f"sqlite:///{workdir / 'am.db'}"
    summary = poll(fleet, url, workdir / "spool")
    assert summary.status is RunStatus.COMPLETE
    return url, summary


@pytest.fixture(scope="module")
def polled(run: tuple[str, RunSummary]) -> str:
    return run[0]


def read(url: str, statement: Any) -> list[Any]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(statement).all())
    finally:
        engine.dispose()


def readable(fleet: FleetHandle) -> list[dict[str, Any]]:
    return [t for t in fleet.truth if not t["poll_error"] and t["fault"] != "tls"]


def test_the_fleet_matches_its_ground_truth(fleet, polled):
    assert mismatches([t for t in fleet.truth if t["fault"] != "tls"], observed(polled)) == []


def test_licensed_clients_whose_renewals_fail_are_their_own_state_with_their_current_code(fleet, polled):
    rows = {name: (risk, code, status) for name, risk, code, status in read(
        polled, select(Host.name, Host.renewal_failing, Host.error_code, Host.license_status)
    )}  # fmt: skip
    expected = [t for t in readable(fleet) if t["renewal_failing"]]
    assert len(expected) >= 5 and any(t["grace_minutes"] < 2 * 1440 for t in expected)
    for t in readable(fleet):
        risk, code, status = rows[t["host"]]
        assert bool(risk) is t["renewal_failing"], t["name"]
        if t["renewal_failing"]:
            assert status == "Licensed" and code == t["error_code"] and code, t["name"]


def test_the_renewal_watch_reads_the_event_log_of_overdue_clients_only(fleet, run):
    summary = run[1]
    failing = [t for t in readable(fleet) if t["renewal_failing"]]
    # every licensed client with missed renewals, and no healthy licensed host, costs one extra read
    assert summary.renewal_event_reads == len(failing)
    unlicensed = [t for t in readable(fleet) if t["license_status"] != "Licensed"]
    assert 0 < summary.event_reads - summary.renewal_event_reads <= len(unlicensed)
    assert summary.as_dict()["renewal_event_reads"] == len(failing)


def test_an_old_failure_superseded_by_a_later_success_is_never_reported(fleet, polled):
    codes = dict(read(polled, select(Host.name, Host.error_code)))
    superseded = [t for t in readable(fleet) if t["license_status"] == "Licensed" and not t["renewal_failing"]]
    assert superseded and all(codes[t["host"]] is None for t in superseded)


def kms_host_findings(url: str) -> dict[str, dict[str, Any]]:
    statement = (
        select(Host.name, HostFinding.evidence).join(Host, Host.id == HostFinding.host_id)
        .where(HostFinding.check == "kms_host")
    )  # fmt: skip
    return {name: evidence or {} for name, evidence in read(url, statement)}


def test_each_traced_failure_names_its_kms_host_and_the_cause_there(fleet, polled):
    found = kms_host_findings(polled)
    host_of = {t["name"]: t["host"] for t in fleet.truth}
    traced = [t for t in readable(fleet) if t["kms_host_verdict"] and t["kms_host_verdict"] != "below_threshold"]
    assert {t["kms_host_verdict"] for t in traced} == {"unreachable", "not_kms_host", "not_activated", "too_old"}
    for t in traced:
        evidence = found[t["host"]]
        assert evidence["verdict"] == t["kms_host_verdict"], t["name"]
        assert evidence["kms_host_record"] == host_of[t["kms_host_trace"]], t["name"]


def test_clients_naming_their_kms_host_in_any_form_are_counted_on_the_kms_hosts_page(fleet, polled):
    engine = db.make_engine(polled)
    try:
        with engine.connect() as conn:
            page = kms.kms_hosts(conn).set_index("host")
    finally:
        engine.dispose()
    rows = [t for t in readable(fleet) if t["kms_role"]]
    assert {t["kms_role"] for t in rows} == {"windows", "office"}
    for t in rows:
        assert page.loc[t["host"], "clients"] == t["kms_clients"], t["name"]
        assert page.loc[t["host"], "kms_role"] == t["kms_role"], t["name"]
    forms = {t["kms_host"] for t in fleet.truth if t["kms_host_trace"] == "kms-high-01"}
    assert len(forms) >= 1 and page.loc[fleet.truth_for("kms-high-01")["host"], "clients"] > 3


def test_a_workgroup_client_that_found_its_kms_host_is_not_blamed_on_dns(fleet, polled):
    workgroup = [
        t for t in readable(fleet) if t["domain"].upper() == "WORKGROUP" and t["activation_type"] == "KMS client"
    ]
    assert workgroup
    statement = (
        select(Host.name).join(HostFinding, Host.id == HostFinding.host_id)
        .where(HostFinding.check == "dns_srv", HostFinding.severity == "fail")
    )  # fmt: skip
    blamed = {name for (name,) in read(polled, statement)}
    assert not blamed & {t["host"] for t in workgroup}


def test_the_spool_keeps_the_new_fields(fleet, tmp_path):
    # what the database was away for comes back whole: renewal state, address, KMS role
    from datetime import UTC, datetime

    from collectors.spool import SpooledBatch
    from models.enums import ActivationType, LicenseStatus
    from models.records import HostObservation, KmsHostCounters, ProductState

    spool = Spool(tmp_path / "spool")
    product = ProductState("p", ActivationType.KMS_CLIENT, LicenseStatus.LICENSED, error_code="0xC004F074",
                           renewal_failing=True)  # fmt: skip
    seen = HostObservation("h1", datetime.now(UTC), products=(product,), address="10.0.0.9",
                           kms=KmsHostCounters(7, application="office"))  # fmt: skip
    spool.write(SpooledBatch("b1", None, (seen,)))
    [batch] = spool.pending()
    assert batch.results == (seen,)
