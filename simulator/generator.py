"""Seeded generator of realistic, internally consistent fleets (``generate(hosts, seed)``).

Most hosts are licensed; failures are drawn from all 30 article codes, each staged with a cause
that the diagnostics can see: 0xC004F038 clients use a KMS host below their threshold, 0xC004F06C
hosts run a skewed clock, DNS-code clients sit in a domain without the ``_vlmcs._tcp`` record,
port-code clients use a KMS host that does not listen. KMS hosts below 5, between 5 and 24 and at
or above 25 exist, a few MAK hosts are tagged near their key's limit, some hosts carry transport
faults, a few carry hostile text. The same seed always gives the same fleet.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from simulator.codes import (
    CODE_PROFILES,
    EDITIONS,
    INFO_GRACE,
    KMS_COUNT_CAP,
    CodeProfile,
)
from simulator.scenario import Change, Domain, Host, KmsCounters, Scenario, SppEvent, fqdn

CONTOSO: Final = "corp.contoso.test"
FABRIKAM: Final = "branch.fabrikam.test"
NORTHWIND: Final = "lab.northwind.test"  # publishes no SRV record
WORKGROUP: Final = "WORKGROUP"
SITES: Final = {
    CONTOSO: ("Taipei", "Hsinchu", "臺北總部"),
    FABRIKAM: ("Kaohsiung", "Taichung"),
    NORTHWIND: ("Lab",),
    WORKGROUP: ("Retail stores",),
}
VOLUME_DAYS_MIN: Final = 180 * 24 * 60
FAULT_ORDER: Final = (
    "dns",
    "refused",
    "silent",
    "auth_reject",
    "soap_500",
    "truncated",
    "malformed",
    "oversized",
    "slow_drip",
    "tls",
    "latency",
    "flaky_500",
    "flaky_reset",
)
HOSTILE: Final = (
    ('=HYPERLINK("http://attacker.invalid/x","Open")', "@SUM(1+1)*cmd|' /C calc'!A0", ""),
    ("+cmd|' /C calc'!A0", "<b>Site</b><script>alert(1)</script>", '=1+2";=1+2'),
    ("<script>alert('x')</script>", "-2+3", "<img src=x onerror=alert(1)>"),
    ("財務部電腦-臺北-001", "臺北總部", "Microsoft Windows 11 專業版 <i>中文</i>"),
    ("LONG-" + "A" * 300, "S" * 260, "Microsoft Windows 11 Pro " + "X" * 400),
    ("@SUM(A1:A9)", "\u202eetis", "=cmd|'/c calc'!A1"),
)


@dataclass
class _KmsPool:
    """A KMS host under construction and the clients assigned to it."""

    host: Host
    band: str  # high | mid | low | dead | unlicensed | new
    clients: list[str] = field(default_factory=list)
    servers: int = 0


class _Builder:
    """Accumulates hosts in priority order so that small fleets keep the essential cases."""

    def __init__(self, rng: random.Random, limit: int) -> None:
        self.rng = rng
        self.limit = limit
        self.hosts: list[Host] = []
        self.pools: dict[str, _KmsPool] = {}
        self.counter = 0

    @property
    def full(self) -> bool:
        return len(self.hosts) >= self.limit

    def add(self, host: Host) -> bool:
        if self.full:
            return False
        self.hosts.append(host)
        return True

    def next_name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:05d}"

    # --- KMS hosts ------------------------------------------------------------------------

    def kms_host(self, band: str, domain: str = CONTOSO, **kms: object) -> _KmsPool | None:
        index = sum(1 for p in self.pools.values() if p.band == band) + 1
        name = f"kms-{band}-{index:02d}"
        counters = KmsCounters(current_count=0, **kms)  # type: ignore[arg-type]  # keys are KmsCounters fields
        host = Host(
            name=name, computer_name=f"KMS-{band.upper()}{index:02d}", domain=domain,
            site=self.rng.choice(SITES[domain]), edition="ws2022-std", product_type="server",
            activation="KMS host", license_status=1, kms=counters, tags=("kms-host", band),
        )  # fmt: skip
        if not self.add(host):
            return None
        pool = _KmsPool(host=host, band=band)
        self.pools[name] = pool
        return pool

    def pool_with_room(self, band: str, capacity: int, server: bool) -> _KmsPool | None:
        for pool in self.pools.values():
            if pool.band == band and len(pool.clients) < capacity:
                return pool
        return self.kms_host(band)

    # --- ordinary hosts -------------------------------------------------------------------

    def base_host(self, activation: str, product_type: str, domain: str) -> Host:
        editions = [
            e
            for e in EDITIONS.values()
            if e.product_type == ("workstation" if product_type == "workstation" else "server")
        ]
        if activation in {"Retail", "OEM"}:
            editions = [e for e in editions if e.key.startswith("win11-pro")] or editions
        edition = self.rng.choice(editions)
        prefix = {"workstation": "WS", "server": "SRV", "dc": "DC"}[product_type]
        name = self.next_name(prefix.lower())
        return Host(
            name=name, computer_name=f"{prefix}-{name.split('-')[1]}", domain=domain,
            site=self.rng.choice(SITES[domain]), edition=edition.key, product_type=product_type,
            activation=activation, license_status=1, clock_offset_s=self.rng.randint(-90, 90),
            tz_minutes=480, events=self.healthy_events(), extra_products=self.rng.randint(3, 7),
        )  # fmt: skip

    def healthy_events(self) -> tuple[SppEvent, ...]:
        minutes = self.rng.randint(60, 20000)
        events = [SppEvent(12288, 0, minutes + 1), SppEvent(12289, 0, minutes)]
        if self.rng.random() < 0.15:  # an old failure that was later fixed
            events.append(SppEvent(8198, 0xC004F074, minutes + 5000))
        return tuple(events)

    def licensed(self, activation: str, product_type: str, domain: str) -> Host:
        host = self.base_host(activation, product_type, domain)
        grace = self.volume_grace() if activation in {"KMS client", "AD-based"} else 0
        return replace(host, grace_minutes=grace)

    def volume_grace(self) -> int:
        if self.rng.random() < 0.05:  # renewal overdue: expiry within days
            return self.rng.randint(600, 10000)
        return VOLUME_DAYS_MIN - self.rng.randint(0, 10080)


def generate(hosts: int, seed: int, name: str | None = None) -> Scenario:
    """A fleet of ``hosts`` machines; identical for identical ``(hosts, seed)``."""
    if hosts < 1:
        raise ValueError("hosts must be >= 1")
    rng = random.Random(seed)
    builder = _Builder(rng, hosts)
    _stage_kms_hosts(builder)
    _stage_failures(builder, hosts)
    _stage_faults(builder, hosts)
    _stage_hostile(builder)
    _stage_licensed(builder)
    final_hosts = _finish_kms(builder)
    return Scenario(
        name=name or f"generated-{hosts}-{seed}",
        seed=seed,
        hosts=final_hosts,
        domains=(Domain(CONTOSO, _srv(builder, "high", CONTOSO)), Domain(FABRIKAM, _srv(builder, "high", FABRIKAM)),
                 Domain(NORTHWIND, "")),
        retired_kms=(f"kms-retired.{CONTOSO}",),
        steps=_steps(builder, final_hosts),
        notes={"mak_keys": [{"partial_key": "7XQ2T", "limit": 500, "used": 497}]},
    )  # fmt: skip


def _srv(builder: _Builder, band: str, domain: str) -> str:
    for pool in builder.pools.values():
        if pool.band == band and pool.host.domain == domain:
            return fqdn(pool.host)
    return ""


def _stage_kms_hosts(b: _Builder) -> None:
    b.kms_host("high", CONTOSO, total_requests=b.rng.randint(5000, 90000))
    b.kms_host("mid")
    b.kms_host("low")
    b.kms_host("dead", listening=False)
    b.kms_host("high", FABRIKAM, total_requests=b.rng.randint(500, 9000))
    b.kms_host("unlicensed")
    b.kms_host("new")


def _stage_failures(b: _Builder, total: int) -> None:
    wanted = max(len(CODE_PROFILES), total * 12 // 100)
    weights = [6 if p.code in {0xC004F074, 0xC004F038, 0x8007232B, 0xC004F06C} else 1 for p in CODE_PROFILES]
    profiles = list(CODE_PROFILES) + b.rng.choices(CODE_PROFILES, weights=weights, k=wanted - len(CODE_PROFILES))
    for profile in profiles:
        if b.full:
            return
        host = _failing_host(b, profile)
        if host is not None:
            b.add(host)


def _failing_host(b: _Builder, profile: CodeProfile) -> Host | None:
    if profile.activation == "KMS host":
        return _failing_kms_host(b, profile)
    product_type = "workstation" if b.rng.random() < 0.7 else "server"
    domain = NORTHWIND if profile.cause == "dns" else b.rng.choice((CONTOSO, CONTOSO, FABRIKAM))
    host = b.base_host(profile.activation, product_type, domain)
    host = replace(host, license_status=profile.license_status, grace_minutes=_fail_grace(b, profile),
                   tags=("failing",))  # fmt: skip
    host = _fail_reason(b, profile, host)
    return _with_cause(b, host, profile)


def _fail_grace(b: _Builder, profile: CodeProfile) -> int:
    if profile.license_status in {0, 5}:
        return 0
    return b.rng.randint(60, 30 * 24 * 60)


def _fail_reason(b: _Builder, profile: CodeProfile, host: Host) -> Host:
    """The host with the failing code in ``LicenseStatusReason`` or only in its newest 8198 event."""
    minutes = b.rng.randint(5, 600)
    newest = SppEvent(8198, profile.code, minutes)
    if profile.source == "status":
        return replace(host, reason=profile.code, events=(newest,))
    older = SppEvent(8198, 0x8007232B, minutes + b.rng.randint(60, 5000))
    reason = INFO_GRACE if profile.license_status else 0
    return replace(host, reason=reason, events=(older, SppEvent(12288, 0, minutes + 1), newest))


def _with_cause(b: _Builder, host: Host, profile: CodeProfile) -> Host | None:
    handlers: dict[str, Callable[[], Host | None]] = {
        "kms_count": lambda: _use_low_kms(b, host),
        "clock": lambda: _use_band(
            b, replace(host, clock_offset_s=b.rng.choice((-1, 1)) * b.rng.randint(5, 40) * 3600), "high"
        ),
        "dns": lambda: host,
        "kms_port": lambda: _use_band(b, host, "dead", pinned=True),
        "kms_unlicensed": lambda: _use_band(b, host, "unlicensed", pinned=True),
    }
    if profile.activation == "KMS client" and profile.cause not in handlers:
        return _use_band(b, host, "high")
    return handlers.get(profile.cause, lambda: host)()


def _use_band(b: _Builder, host: Host, band: str, pinned: bool = False) -> Host | None:
    domain_pool = [p for p in b.pools.values() if p.band == band and p.host.domain == host.domain]
    pools = domain_pool or [p for p in b.pools.values() if p.band == band]
    if not pools:
        return None
    pool = pools[0]
    pool.clients.append(host.name)
    target = fqdn(pool.host)
    if pinned or pool.host.domain != host.domain:
        return replace(host, kms_machine=target, discovered_kms=target)
    return replace(host, discovered_kms=target)


def _use_low_kms(b: _Builder, host: Host) -> Host | None:
    if host.product_type == "workstation" and b.rng.random() < 0.5:
        pool = b.pool_with_room("mid", 12, server=False)
    else:
        pool = b.pool_with_room("low", 4, server=host.product_type != "workstation")
    if pool is None:
        return None
    pool.clients.append(host.name)
    return replace(host, domain=pool.host.domain, discovered_kms=fqdn(pool.host))


def _failing_kms_host(b: _Builder, profile: CodeProfile) -> Host | None:
    """Turn an activated KMS host of the code's band into an unactivated one (created when none is left)."""
    band = "unlicensed" if profile.code == 0xC004C008 else "new"
    pool = next((p for p in b.pools.values() if p.band == band and p.host.license_status == 1), None)
    pool = pool or b.kms_host(band)
    if pool is not None:
        grace = b.rng.randint(600, 40000)
        pool.host = _fail_reason(b, profile, replace(pool.host, license_status=2, grace_minutes=grace))
    return None


def _stage_faults(b: _Builder, total: int) -> None:
    count = max(len(FAULT_ORDER), total * 2 // 100)
    for i in range(count):
        fault = FAULT_ORDER[i % len(FAULT_ORDER)]
        host = b.licensed("MAK", "server" if i % 3 == 0 else "workstation", CONTOSO)
        latency = b.rng.randint(80, 400) if fault == "latency" else 0
        scheme = "https" if fault == "tls" else "http"
        if not b.add(replace(host, fault=fault, latency_ms=latency, scheme=scheme, tags=("fault", fault))):
            return


def _stage_hostile(b: _Builder) -> None:
    for i, (computer, site, caption) in enumerate(HOSTILE):
        activation = ("Retail", "OEM", "MAK")[i % 3]
        host = b.licensed(activation, "workstation", WORKGROUP if activation != "MAK" else CONTOSO)
        domain = "=1+2.contoso.test" if i == 1 else host.domain
        host = replace(
            host,
            computer_name=computer,
            site=site,
            os_caption=caption,
            domain=domain,
            description_prefix="<script>alert(1)</script> =SUM(1) " if i % 2 else "",
            tags=("hostile",),
        )
        if not b.add(host):
            return


def _stage_licensed(b: _Builder) -> None:
    kinds = (("KMS client", 55), ("MAK", 15), ("Retail", 8), ("OEM", 8), ("AD-based", 4), ("KMS client server", 10))
    names = [k for k, _ in kinds]
    weights = [w for _, w in kinds]
    mak_near_limit = 3
    while not b.full:
        kind = b.rng.choices(names, weights=weights)[0]
        host = _licensed_host(b, kind)
        if host.activation == "MAK" and mak_near_limit > 0:
            mak_near_limit -= 1
            host = replace(host, tags=("mak-near-limit",))
        b.add(host)


def _licensed_host(b: _Builder, kind: str) -> Host:
    if kind == "KMS client server":
        host = b.licensed("KMS client", b.rng.choice(("server", "server", "dc")), CONTOSO)
        mid = b.pools.get("kms-mid-01")
        if mid is not None and len(mid.clients) < 20 and b.rng.random() < 0.5:
            mid.clients.append(host.name)
            mid.servers += 1
            return replace(host, discovered_kms=fqdn(mid.host))
        return _use_band(b, host, "high") or host
    if kind in {"Retail", "OEM"}:
        return b.licensed(kind, "workstation", b.rng.choice((WORKGROUP, CONTOSO)))
    domain = b.rng.choice((CONTOSO, CONTOSO, FABRIKAM))
    host = b.licensed(kind, "workstation" if b.rng.random() < 0.8 else "server", domain)
    if kind == "KMS client":
        return _use_band(b, host, "high") or host
    return host


def _finish_kms(b: _Builder) -> tuple[Host, ...]:
    counts = {name: _count_for(b.rng, pool) for name, pool in b.pools.items()}
    result = []
    for host in b.hosts:
        pool = b.pools.get(host.name)
        if pool is not None:
            kms = replace(pool.host.kms or KmsCounters(0), current_count=counts[host.name])
            kms = _request_counters(b.rng, kms)
            host = replace(pool.host, kms=kms)
        result.append(host)
    return tuple(result)


def _count_for(rng: random.Random, pool: _KmsPool) -> int:
    assigned = len(pool.clients)
    if pool.band in {"high", "dead"}:
        return min(KMS_COUNT_CAP, max(25 + rng.randint(0, 10), assigned))
    if pool.band == "mid":
        return min(24, max(5, assigned) + rng.randint(0, 3))
    if pool.band == "low":
        return min(4, assigned + rng.randint(0, 1))
    return 0


def _request_counters(rng: random.Random, kms: KmsCounters) -> KmsCounters:
    total = max(kms.total_requests, kms.current_count * rng.randint(3, 40))
    failed = rng.randint(0, max(1, total // 20))
    return replace(kms, total_requests=total, failed_requests=failed, licensed_requests=max(0, total - failed),
                   non_genuine_requests=rng.randint(0, 3))  # fmt: skip


def _steps(b: _Builder, hosts: tuple[Host, ...]) -> tuple[tuple[Change, ...], ...]:
    by_tag = {h.name: h for h in hosts}
    port_failing = [h for h in hosts if h.kms_machine.startswith("kms-dead")]
    healthy = [h for h in hosts if h.activation == "KMS client" and h.license_status == 1 and not h.fault]
    step1: list[Change] = []
    if port_failing:
        fixed = port_failing[0]
        high = _srv(b, "high", CONTOSO)
        step1.append(Change(fixed.name, {"license_status": 1, "reason": 0, "grace_minutes": VOLUME_DAYS_MIN,
                                         "kms_machine": high, "discovered_kms": high}))  # fmt: skip
    if healthy:
        step1.append(Change(healthy[-1].name, {"license_status": 3, "reason": 0xC004F00F, "grace_minutes": 43200}))
    mid = by_tag.get("kms-mid-01")
    if mid is not None and mid.kms is not None:
        step1.append(Change(mid.name, {"kms.current_count": min(24, mid.kms.current_count + 3)}))
    step2: list[Change] = []
    if mid is not None:
        step2.append(Change(mid.name, {"kms.current_count": 27}))
        for name in b.pools["kms-mid-01"].clients:
            if by_tag[name].license_status != 1:
                step2.append(Change(name, {"license_status": 1, "reason": 0, "grace_minutes": VOLUME_DAYS_MIN}))
    return tuple(step for step in (tuple(step1), tuple(step2)) if step)


def stable_guid(*parts: str) -> str:
    """A GUID derived from names, so the same scenario always shows the same IDs."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))
