"""A small, deterministic fleet written through the real store: the fixture for tests and screenshots.

``seed_fleet`` writes a few days of polls for a mixed fleet (MAK, KMS clients and hosts, Retail, OEM, failures
with their findings, unreachable hosts, hostile host-supplied text) so every page and query has something true
to show. ``SEED_EXPECTED`` states what the seeded fleet must count, for tests to compare against.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from models import kms as kms_reads
from models import maintenance, runs, store
from models.enums import ActivationType, FailureClass, LicenseStatus, ProductType, RunStatus, Severity
from models.records import (
    Finding,
    HostFailure,
    HostIdentity,
    HostObservation,
    HostResult,
    KmsHostCounters,
    ProductState,
)

SITES = ("Taipei", "Kaohsiung", "Taichung", "Hsinchu")
DOMAIN = "corp.example"
HOSTILE_SITE = '=HYPERLINK("http://evil.example","x")'
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
WINDOWS_GUID = "ad2542d4-9154-4c6d-8a44-30f11ee96989"


@dataclass(frozen=True, slots=True)
class SeedHost:
    name: str
    computer_name: str
    site: str
    product_type: ProductType
    activation_type: ActivationType
    license_status: LicenseStatus
    error_code: str | None = None
    kms: str | None = None
    failure: FailureClass | None = None
    kms_count: int | None = None
    grace_minutes: int | None = None
    listening: bool = True  # a KMS host's port answers the collector's TCP check
    kms_app: str = "windows"  # the application a KMS host serves: windows, office or other


# One KMS host per health state the seed can show without adding failing hosts to the fleet's numbers:
# KMS01 counts 30 but its port is closed (its 0xC004F074 clients say so), KMS02's clients fail on its count
# of 12, KMS03 counts 3, KMS04 is healthy, KMS05 serves Office only.
KMS_HOSTS = (
    SeedHost(
        "10.1.0.10",
        "KMS01",
        "Taipei",
        ProductType.SERVER,
        ActivationType.KMS_HOST,
        LicenseStatus.LICENSED,
        kms_count=30,
        listening=False,
    ),
    SeedHost(
        "10.1.0.11",
        "KMS02",
        "Kaohsiung",
        ProductType.SERVER,
        ActivationType.KMS_HOST,
        LicenseStatus.LICENSED,
        kms_count=12,
    ),
    SeedHost(
        "10.1.0.12",
        "KMS03",
        "Taichung",
        ProductType.SERVER,
        ActivationType.KMS_HOST,
        LicenseStatus.LICENSED,
        kms_count=3,
    ),
    SeedHost(
        "10.1.0.13",
        "KMS04",
        "Hsinchu",
        ProductType.SERVER,
        ActivationType.KMS_HOST,
        LicenseStatus.LICENSED,
        kms_count=41,
    ),
    SeedHost(
        "10.1.0.14",
        "KMS05",
        "Taipei",
        ProductType.SERVER,
        ActivationType.KMS_CLIENT,  # its Windows activates against KMS04; it hosts KMS for Office
        LicenseStatus.LICENSED,
        kms="kms04.corp.example",
        kms_count=8,
        grace_minutes=250_000,
        kms_app="office",
    ),
)
KMS_STATES = {
    "KMS01": "not_listening",
    "KMS02": "clients_failing",
    "KMS03": "below_threshold",
    "KMS04": "healthy",
    "KMS05": "office_only",
}

# (error code, activation type, license status, KMS host used, how many hosts)
FAILURES = (
    ("0xC004F074", ActivationType.KMS_CLIENT, LicenseStatus.NOTIFICATION, "kms01.corp.example", 5),
    ("0xC004F038", ActivationType.KMS_CLIENT, LicenseStatus.OOB_GRACE, "kms02.corp.example", 4),
    ("0x8007232B", ActivationType.KMS_CLIENT, LicenseStatus.OOB_GRACE, None, 3),
    ("0xC004C003", ActivationType.MAK, LicenseStatus.UNLICENSED, None, 2),
    ("0xC004F06C", ActivationType.KMS_CLIENT, LicenseStatus.OOT_GRACE, "kms01.corp.example", 2),
    # Licensed, but every renewal fails: they drop out when their 180 days run out
    ("0x800706BA", ActivationType.KMS_CLIENT, LicenseStatus.LICENSED, "kms01.corp.example", 2),
)
AT_RISK_GRACE_MINUTES = 40 * 1440
UNREACHABLE = (FailureClass.TIMEOUT, FailureClass.AUTH, FailureClass.REFUSED)
HEALTHY = 40

SEED_EXPECTED = {
    "hosts": len(KMS_HOSTS) + sum(f[4] for f in FAILURES) + HEALTHY + len(UNREACHABLE) + 1,
    "failing": sum(f[4] for f in FAILURES),
    "unreachable": len(UNREACHABLE),
    "by_code": {f[0]: f[4] for f in FAILURES},
    "kms_hosts": len(KMS_HOSTS),
    "kms_states": KMS_STATES,
    "at_risk": sum(f[4] for f in FAILURES if f[2] is LicenseStatus.LICENSED),
}


def fleet() -> list[SeedHost]:
    """The seeded fleet, in a stable order."""
    hosts = list(KMS_HOSTS)
    n = 100
    for code, kind, status, kms, count in FAILURES:
        for _ in range(count):
            n += 1
            hosts.append(
                SeedHost(
                    f"10.1.1.{n}",
                    f"WS{n:04d}",
                    SITES[n % 4],
                    ProductType.WORKSTATION,
                    kind,
                    status,
                    error_code=code,
                    kms=kms,
                    grace_minutes=20_000
                    if status.in_grace
                    else (AT_RISK_GRACE_MINUTES if status is LicenseStatus.LICENSED else None),
                )
            )
    for i in range(HEALTHY):
        n += 1
        kind = (ActivationType.KMS_CLIENT, ActivationType.MAK, ActivationType.RETAIL, ActivationType.OEM)[i % 4]
        kms_host = "kms01" if i % 8 == 0 else "kms04"  # healthy KMS clients split between KMS01 and KMS04
        kms = f"{kms_host}.corp.example" if kind is ActivationType.KMS_CLIENT else None
        grace = 3 * 1440 if i == 0 else (250_000 if kms else None)
        hosts.append(
            SeedHost(
                f"10.1.1.{n}",
                f"WS{n:04d}",
                SITES[i % 4],
                ProductType.WORKSTATION,
                kind,
                LicenseStatus.LICENSED,
                kms=kms,
                grace_minutes=grace,
            )
        )
    for fclass in UNREACHABLE:
        n += 1
        hosts.append(
            SeedHost(
                f"10.1.1.{n}",
                f"WS{n:04d}",
                SITES[0],
                ProductType.WORKSTATION,
                ActivationType.KMS_CLIENT,
                LicenseStatus.LICENSED,
                kms="kms01.corp.example",
                failure=fclass,
            )
        )
    hosts.append(
        SeedHost("10.1.9.9", HOSTILE_NAME, HOSTILE_SITE, ProductType.SERVER, ActivationType.MAK, LicenseStatus.LICENSED)
    )
    return hosts


def _grace(status: LicenseStatus) -> int | None:
    if status.in_grace:
        return 20_000
    return AT_RISK_GRACE_MINUTES if status is LicenseStatus.LICENSED else None


def _product(h: SeedHost) -> ProductState:
    machine, _, port = (h.kms or "").partition(":")
    return ProductState(
        product_id=WINDOWS_GUID,
        activation_type=h.activation_type,
        license_status=h.license_status,
        name="Windows(R), Enterprise edition",
        description=f"Windows(R) Operating System, {h.activation_type} channel",
        error_code=h.error_code,
        error_source="status" if h.error_code else None,
        grace_minutes=h.grace_minutes,
        partial_key="3V66T",
        discovered_kms_machine=machine or None,
        discovered_kms_port=int(port or 1688) if h.kms else None,
        renewal_failing=bool(h.error_code) and h.license_status is LicenseStatus.LICENSED,
    )


def _findings(h: SeedHost) -> tuple[Finding, ...]:
    if h.error_code == "0xC004F038":
        return (
            Finding(
                "kms_count",
                Severity.FAIL,
                "KMS02 counts 12 machines; a workstation needs 25",
                related_code=h.error_code,
                evidence={
                    "kms_host": "kms02.corp.example",
                    "current_count": 12,
                    "required": 25,
                    "kms_host_record": "10.1.0.11",
                },
            ),
        )
    if h.error_code == "0xC004F074":
        return (
            Finding(
                "kms_port",
                Severity.FAIL,
                "TCP 1688 on kms01.corp.example refused the connection",
                related_code=h.error_code,
                evidence={
                    "kms_host": "kms01.corp.example",
                    "port": 1688,
                    "source": "discovered",
                    "address": "10.1.0.10",
                    "error": "connection refused",
                },
            ),
        )
    if h.error_code == "0xC004F06C":
        return (
            Finding(
                "clock_skew",
                Severity.FAIL,
                "Clock is 5.0 hours ahead of the collector",
                related_code=h.error_code,
                evidence={"skew_seconds": 18000.0, "limit_seconds": 14400},
            ),
        )
    if h.error_code == "0x8007232B":
        return (
            Finding(
                "dns_srv",
                Severity.FAIL,
                "No _vlmcs._tcp.corp.example SRV record",
                related_code=h.error_code,
                evidence={
                    "name": "_vlmcs._tcp.corp.example",
                    "error": "NXDOMAIN: the name does not exist",
                    "pinned_kms_host": None,
                },
            ),
        )
    return ()


def result_for(h: SeedHost, at: datetime) -> HostResult:
    if h.failure is not None:
        return HostFailure(h.name, at, h.failure, f"seeded {h.failure.value} failure")
    kms = (
        KmsHostCounters(
            h.kms_count,
            total_requests=h.kms_count * 7,
            failed_requests=2,
            licensed_requests=h.kms_count * 5,
            non_genuine_requests=0,
            listening_port=1688,
            dns_publishing=True,
            listening=h.listening,
            application=h.kms_app,
        )
        if h.kms_count is not None
        else None
    )
    return HostObservation(
        host=h.name,
        observed_at=at,
        computer_name=h.computer_name,
        domain=DOMAIN,
        os_caption="Microsoft Windows Server 2022 Standard"
        if h.product_type.is_server
        else "Microsoft Windows 11 Enterprise",
        os_version="10.0.20348" if h.product_type.is_server else "10.0.22631",
        product_type=h.product_type,
        clock_skew_seconds=18000.0 if h.error_code == "0xC004F06C" else 0.4,
        products=(_product(h),),
        kms=kms,
        findings=_findings(h),
    )


def _earlier_state(h: SeedHost, rng: random.Random) -> SeedHost:
    """Yesterday's version of a host: some of today's failures were still licensed then."""
    if h.error_code and rng.random() < 0.5:
        return SeedHost(
            h.name, h.computer_name, h.site, h.product_type, h.activation_type, LicenseStatus.LICENSED, kms=h.kms
        )
    return h


def _polls(now: datetime, days: int) -> Iterator[tuple[datetime, bool]]:
    for back in range(days - 1, -1, -1):
        yield now - timedelta(days=back), back == 0


def seed_fleet(conn: Connection, *, now: datetime, days: int = 3, seed: int = 7) -> list[SeedHost]:
    """Write ``days`` daily polls of the fleet ending at ``now``; returns the fleet as it stands now."""
    rng = random.Random(seed)  # noqa: S311 - reproducible fixture data, not a secret
    hosts = fleet()
    store.upsert_inventory(conn, [HostIdentity(h.name, 5985, "http", h.site, ("seed",)) for h in hosts], now=now)
    for at, last in _polls(now, days):
        run = runs.start_run(conn, collector="seed", shard=None, hosts_total=len(hosts), started_at=at)
        day_hosts = hosts if last else [_earlier_state(h, rng) for h in hosts]
        results = [result_for(h, at) for h in day_hosts]
        if not last:
            results = [
                r if isinstance(r, HostObservation) else _observed(h, at)
                for r, h in zip(results, day_hosts, strict=True)
            ]
        store.write_results(conn, run, results)
        link_kms_clients(conn)
        runs.finish_run(conn, run, finished_at=at + timedelta(seconds=42), status=RunStatus.COMPLETE)
        maintenance.refresh_rollup(conn, at.date())
    return hosts


def link_kms_clients(conn: Connection) -> None:
    """What a collector's KMS post-pass stores: each client's KMS host, whatever form its name takes."""
    clients = {row.host: row.kms_name for row in kms_reads.kms_clients(conn)}
    resolved = kms_reads.resolve_clients(conn, clients)
    store.set_kms_hosts(conn, {client: record.id if record else None for client, record in resolved.items()})


def _observed(h: SeedHost, at: datetime) -> HostResult:
    """Before they became unreachable, the unreachable hosts answered normally."""
    return result_for(replace(h, failure=None), at)
