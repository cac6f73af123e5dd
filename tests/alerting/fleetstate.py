"""Fleet states written through the real write path (``models.store``), for the alert tests.

``troubled`` is a fleet in which every alert rule has something to find; ``healed`` is the same fleet polled again
later with every problem gone. ``EXPECTED`` lists what fires on ``troubled``: (rule, subject).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from config.settings import Settings, load_settings
from models import maintenance, runs, store
from models.enums import ActivationType, FailureClass, LicenseStatus, ProductType, RunStatus, Severity
from models.records import Finding, HostFailure, HostObservation, HostResult, KmsHostCounters, ProductState

CODE = "0xC004F074"
SPIKE_HOSTS = 12
LAB = "lab.example"  # no SRV record
DEAD = "dead.example"  # an SRV record naming a KMS host that does not answer
GONE = f"kms-gone.{DEAD}"

EXPECTED = {
    ("host_failing", "ws-fail"),
    *(("host_failing", f"ws-spike-{i:02d}") for i in range(SPIKE_HOSTS)),
    ("renewal_failing", "ws-renew"),
    ("grace_ending", "ws-grace"),
    ("kms_below_threshold", "kms-low"),
    ("kms_not_activated", "kms-unlicensed"),
    ("kms_unreachable", "kms-down"),
    ("kms_no_srv", "kms-quiet"),
    ("srv_missing", LAB),
    ("srv_dead", DEAD),
    ("collector_quiet", "old-collector"),
    ("code_spike", CODE),
}


def settings(folder: Path, **overrides: Any) -> Settings:
    """Settings from nothing but the defaults and ``overrides`` (no environment, an empty config file)."""
    config = folder / "empty.toml"
    config.touch()
    return load_settings(config_file=config, environ={}, **overrides)


def write(engine: Engine, results: Sequence[HostResult]) -> None:
    with engine.begin() as conn:
        store.write_results(conn, None, results)


def host(
    name: str,
    at: datetime,
    *,
    status: LicenseStatus = LicenseStatus.LICENSED,
    code: str | None = None,
    kind: ActivationType = ActivationType.KMS_CLIENT,
    grace_days: float | None = 170,
    renewal_failing: bool = False,
    domain: str = "corp.example",
    kms: KmsHostCounters | None = None,
    findings: tuple[Finding, ...] = (),
) -> HostObservation:
    product = ProductState(
        "windows",
        kind,
        status,
        error_code=code,
        grace_minutes=None if grace_days is None else int(grace_days * 1440),
        renewal_failing=renewal_failing,
        partial_key="ABCDE",
    )
    return HostObservation(
        host=name,
        observed_at=at,
        computer_name=name.upper(),
        domain=domain,
        product_type=ProductType.SERVER if kms else ProductType.WORKSTATION,
        products=(product,),
        kms=kms,
        findings=findings,
    )


def kms_host(
    name: str,
    at: datetime,
    count: int,
    *,
    status: LicenseStatus = LicenseStatus.LICENSED,
    publishing: bool = True,
    listening: bool = True,
) -> HostObservation:
    counters = KmsHostCounters(count, 100, 0, 100, 0, 1688, publishing, listening)
    return host(name, at, status=status, kind=ActivationType.KMS_HOST, grace_days=None, kms=counters)


def srv_lookup(domain: str, records: str | None) -> Finding:
    name = f"_vlmcs._tcp.{domain}"
    if records:
        return Finding("dns_srv", Severity.OK, f"{name} -> {records}", None, {"name": name, "records": records})
    evidence: dict[str, Any] = {"name": name, "error": "NXDOMAIN", "pinned_kms_host": None}
    return Finding("dns_srv", Severity.FAIL, f"No KMS SRV record: {name}", "0x8007232B", evidence)


def port_check(target: str, ok: bool) -> Finding:
    evidence: dict[str, Any] = {"kms_host": target, "port": 1688, "source": "discovered", "address": None}
    if ok:
        return Finding("kms_port", Severity.OK, f"{target}:1688 accepts connections", None, evidence)
    return Finding("kms_port", Severity.FAIL, "refused", CODE, {**evidence, "error": "connection refused"})


def troubled(engine: Engine, at: datetime) -> None:
    """Every rule's evidence: write a week of rollups with one failing host per code, then the trouble."""
    base = [
        host(
            "ws-fail", at, status=LicenseStatus.NOTIFICATION, code=CODE, domain=LAB, findings=(srv_lookup(LAB, None),)
        ),
        host("ws-renew", at, code=CODE, grace_days=30, renewal_failing=True),
        kms_host("kms-ok", at, 40),
    ]
    write(engine, base)
    with engine.begin() as conn:
        for day in range(1, 8):
            maintenance.refresh_rollup(conn, (at - timedelta(days=day)).date())
    dead_client = host(
        "ws-dead-srv", at, domain=DEAD, findings=(srv_lookup(DEAD, f"{GONE}:1688"), port_check(GONE, False))
    )
    write(
        engine,
        [
            *(host(f"ws-spike-{i:02d}", at, status=LicenseStatus.NOTIFICATION, code=CODE) for i in range(SPIKE_HOSTS)),
            host("ws-grace", at, status=LicenseStatus.OOB_GRACE, grace_days=3),
            kms_host("kms-low", at, 12),
            kms_host("kms-unlicensed", at, 30, status=LicenseStatus.OOB_GRACE),
            kms_host("kms-down", at - timedelta(minutes=5), 30),
            kms_host("kms-quiet", at, 30, publishing=False),
            dead_client,
        ],
    )
    write(engine, [HostFailure("kms-down", at, FailureClass.REFUSED, "connection refused")])
    with engine.begin() as conn:
        old = runs.start_run(
            conn, collector="old-collector", shard=None, hosts_total=1, started_at=at - timedelta(hours=5)
        )
        runs.finish_run(conn, old, finished_at=at - timedelta(hours=5), status=RunStatus.COMPLETE)
        busy = runs.start_run(conn, collector="busy-collector", shard=None, hosts_total=1, started_at=at)
        runs.finish_run(conn, busy, finished_at=at, status=RunStatus.COMPLETE)


def healed(engine: Engine, at: datetime) -> None:
    """The same fleet polled again at ``at`` with every problem gone."""
    names = ["ws-fail", "ws-renew", "ws-grace", *(f"ws-spike-{i:02d}" for i in range(SPIKE_HOSTS))]
    write(
        engine,
        [
            *(host(name, at, domain=LAB if name == "ws-fail" else "corp.example") for name in names),
            host("ws-fail-lab", at, domain=LAB, findings=(srv_lookup(LAB, "kms-ok.lab.example:1688"),)),
            host("ws-dead-srv", at, domain=DEAD, findings=(srv_lookup(DEAD, f"{GONE}:1688"), port_check(GONE, True))),
            kms_host("kms-low", at, 30),
            kms_host("kms-unlicensed", at, 30),
            kms_host("kms-down", at, 30),
            kms_host("kms-quiet", at, 30),
        ],
    )
    with engine.begin() as conn:
        run = runs.start_run(conn, collector="old-collector", shard=None, hosts_total=1, started_at=at)
        runs.finish_run(conn, run, finished_at=at, status=RunStatus.COMPLETE)


def failing_fleet(engine: Engine, at: datetime, hosts: int, codes: Sequence[str]) -> None:
    """``hosts`` hosts failing at once, their codes taken in turn from ``codes``, written in batches."""
    results = [
        host(f"storm-{i:05d}", at, status=LicenseStatus.NOTIFICATION, code=codes[i % len(codes)]) for i in range(hosts)
    ]
    for start in range(0, hosts, 1000):
        write(engine, results[start : start + 1000])
