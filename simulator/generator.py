"""Seeded generator of realistic, internally consistent fleets (``generate(hosts, seed)``).

Most hosts are licensed; failures are drawn from all 30 article codes, each staged with a cause
that the diagnostics can see: 0xC004F038 clients use a KMS host below their threshold, 0xC004F06C
hosts run a skewed clock, DNS-code clients sit in a domain without the ``_vlmcs._tcp`` record,
port-code clients are pinned to a KMS host that does not listen, to one that cannot be reached at
all, or to a machine that is no KMS host; 0xC004F042 clients use a Windows Server 2012 R2 KMS host.
KMS hosts below 5, between 5 and 24 and at or above 25 exist, one server hosts KMS for Office only,
a few MAK hosts are tagged near their key's limit, some hosts carry transport faults, a few carry
hostile text. About 5 % of licensed KMS clients fail to renew (grace below 172 days, failed 8198
events since their last successful 12289); some logs hold a failure a later 12289 superseded;
clients name their KMS host by FQDN, short name, address or DNS discovery. The same seed always
gives the same fleet.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from simulator.codes import (
    CODE_PROFILES,
    DEFAULT_RENEWAL_INTERVAL,
    EDITIONS,
    INFO_GRACE,
    KMS_COUNT_CAP,
    KMS_SERVER_COUNT_CAP,
    LEGACY_EDITIONS,
    PROFILE_BY_CODE,
    VOLUME_VALIDITY_MINUTES,
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
VOLUME_DAYS_MIN: Final = VOLUME_VALIDITY_MINUTES
DAY: Final = 24 * 60
# Codes a licensed KMS client logs when its renewal fails: no KMS host answered, RPC unavailable,
# no SRV record.
RENEWAL_CODES: Final = (0xC004F074, 0x800706BA, 0x8007232B)
RENEWAL_FAILING_SHARE: Final = 0.05
# KMS hosts whose count is that of an established host (at least 25 unless only servers use it).
ESTABLISHED_BANDS: Final = frozenset({"high", "dead", "old", "down"})
# Where a port-code client is pinned: the first of each code goes to the first target, later ones
# anywhere in the list. "notkms" is a server that answers WinRM but hosts no KMS.
PORT_TARGETS: Final = {
    0x800706BA: ("dead", "dead", "down"),
    0xC004F039: ("notkms", "dead"),
    0xC004F074: ("down", "dead", "notkms"),
}
PIN_FORMS: Final = ("fqdn", "fqdn", "name", "address")
NEW_EDITIONS: Final = {"workstation": ("win11-ent", "win11-pro", "win11-pro-zh"), "server": ("ws2022-std", "ws2022-dc")}
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
    band: str  # high | mid | low | dead | unlicensed | new | old | down | office
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
        self.not_kms: Host | None = None  # a server some clients are pinned to that hosts no KMS

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

    def kms_host(
        self, band: str, domain: str = CONTOSO, edition: str = "ws2022-std", fault: str = "", **kms: object
    ) -> _KmsPool | None:
        index = sum(1 for p in self.pools.values() if p.band == band) + 1
        name = f"kms-{band}-{index:02d}"
        counters = KmsCounters(current_count=0, **kms)  # type: ignore[arg-type]  # keys are KmsCounters fields
        host = Host(
            name=name, computer_name=f"KMS-{band.upper()}{index:02d}", domain=domain,
            site=self.rng.choice(SITES[domain]), edition=edition, product_type="server",
            activation="KMS host", license_status=1, kms=counters, tags=("kms-host", band), fault=fault,
        )  # fmt: skip
        if not self.add(host):
            return None
        pool = _KmsPool(host=host, band=band)
        self.pools[name] = pool
        return pool

    def target(self, band: str) -> Host | None:
        """The machine clients of ``band`` are pinned to: the first KMS host of the band, or the non-KMS server."""
        if band == "notkms":
            return self.not_kms
        pool = next((p for p in self.pools.values() if p.band == band), None)
        return None if pool is None else pool.host

    def pool_with_room(self, band: str, capacity: int, server: bool) -> _KmsPool | None:
        for pool in self.pools.values():
            if pool.band == band and len(pool.clients) < capacity:
                return pool
        return self.kms_host(band)

    # --- ordinary hosts -------------------------------------------------------------------

    def base_host(
        self, activation: str, product_type: str, domain: str, name: str = "", computer_name: str = ""
    ) -> Host:
        editions = [
            e
            for e in EDITIONS.values()
            if e.product_type == ("workstation" if product_type == "workstation" else "server")
            and e.key not in LEGACY_EDITIONS
        ]
        if activation in {"Retail", "OEM"}:
            editions = [e for e in editions if e.key.startswith("win11-pro")] or editions
        edition = self.rng.choice(editions)
        prefix = {"workstation": "WS", "server": "SRV", "dc": "DC"}[product_type]
        name = name or self.next_name(prefix.lower())
        return Host(
            name=name, computer_name=computer_name or f"{prefix}-{name.split('-')[1]}", domain=domain,
            site=self.rng.choice(SITES[domain]), edition=edition.key, product_type=product_type,
            activation=activation, license_status=1, clock_offset_s=self.rng.randint(-90, 90),
            tz_minutes=480, events=self.healthy_events(), extra_products=self.rng.randint(3, 7),
        )  # fmt: skip

    def healthy_events(self, renewed: int | None = None) -> tuple[SppEvent, ...]:
        """A successful KMS exchange ``renewed`` minutes ago, sometimes after an older, fixed failure."""
        minutes = self.rng.randint(60, 20000) if renewed is None else renewed
        events = [SppEvent(12288, 0, minutes + 1), SppEvent(12289, 0, minutes)]
        if self.rng.random() < 0.15:  # an old failure that was later fixed
            events.append(SppEvent(8198, 0xC004F074, minutes + 5000))
        return tuple(events)

    def licensed(
        self, activation: str, product_type: str, domain: str, name: str = "", computer_name: str = ""
    ) -> Host:
        host = self.base_host(activation, product_type, domain, name, computer_name)
        if activation not in {"KMS client", "AD-based"}:
            return host
        # A volume client renews every interval back to 180 days: its grace says when it last did.
        renewed = self.rng.randint(60, host.renewal_interval - 60)
        return replace(host, grace_minutes=VOLUME_DAYS_MIN - renewed, events=self.healthy_events(renewed))

    def renewal_grace(self, host: Host) -> int:
        """Grace left on a client whose renewals fail: below 172 days (default interval), some below 2 days."""
        threshold = VOLUME_DAYS_MIN - host.renewal_interval - DAY
        if self.rng.random() < 0.2:
            return self.rng.randint(600, 2 * DAY - 1)
        return self.rng.randint(2 * DAY, threshold - 1)

    def failing_renewal(self, host: Host, code: int, grace: int) -> Host:
        """Licensed, but every renewal since the last successful 12289 failed; the newest 8198 holds ``code``."""
        renewed = VOLUME_DAYS_MIN - grace  # minutes since the last successful renewal
        newest = self.rng.randint(5, 600)
        attempts = self.rng.randint(2, 4)
        older = sorted(self.rng.sample(range(newest + 2, renewed - 1), attempts - 1), reverse=True)
        events = [SppEvent(12288, 0, renewed + 1), SppEvent(12289, 0, renewed)]
        for minutes in older:
            events += [SppEvent(12288, 0, minutes + 1), SppEvent(8198, self.rng.choice(RENEWAL_CODES), minutes)]
        events += [SppEvent(12288, 0, newest + 1), SppEvent(8198, code, newest)]
        reason = self.rng.choice((0, INFO_GRACE))
        return replace(host, license_status=1, reason=reason, grace_minutes=grace, events=tuple(events),
                       tags=("renewal-failing",))  # fmt: skip

    def superseded_events(self, renewed: int) -> tuple[SppEvent, ...]:
        """An old failed activation, then a successful 12289 ``renewed`` minutes ago (both within 30 days)."""
        failed = renewed + self.rng.randint(DAY, 20000)
        return (SppEvent(12288, 0, failed + 1), SppEvent(8198, self.rng.choice(RENEWAL_CODES), failed),
                SppEvent(12288, 0, renewed + 1), SppEvent(12289, 0, renewed))  # fmt: skip


def generate(
    hosts: int, seed: int, name: str | None = None, *, fault_share: float = 0.02, hostile_share: float = 0.0
) -> Scenario:
    """A fleet of ``hosts`` machines; identical for identical arguments.

    ``fault_share`` of the hosts misbehave on the wire (every kind in ``FAULT_ORDER`` in turn, at least one
    of each); ``hostile_share`` carry hostile text (``HOSTILE`` in turn, each made unique), at least one of
    each kind either way. A hardening run uses, say, 0.4 and 0.2.
    """
    if hosts < 1:
        raise ValueError("hosts must be >= 1")
    if not (0 <= fault_share <= 1 and 0 <= hostile_share <= 1):
        raise ValueError("fault_share and hostile_share must be between 0 and 1")
    rng = random.Random(seed)
    builder = _Builder(rng, hosts)
    _stage_kms_hosts(builder)
    _stage_failures(builder, hosts)
    _stage_faults(builder, hosts, fault_share)
    _stage_hostile(builder, max(len(HOSTILE), int(hosts * hostile_share)))
    _stage_kms_cases(builder)
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
    # Its CSVLK predates Windows 11 and Server 2022: clients of those editions get 0xC004F042.
    b.kms_host("old", edition="ws2012r2-std", total_requests=b.rng.randint(2000, 40000))
    # Switched off: neither WinRM nor the KMS port answers.
    b.kms_host("down", fault="refused", listening=False, total_requests=b.rng.randint(1000, 20000))
    # A server clients are still pinned to (a former KMS host): it answers WinRM but hosts no KMS.
    server = b.licensed("MAK", "server", CONTOSO)
    if b.add(replace(server, tags=("not-kms-host",))):
        b.not_kms = b.hosts[-1]


def _stage_failures(b: _Builder, total: int) -> None:
    wanted = max(len(CODE_PROFILES), total * 12 // 100)
    weights = [6 if p.code in {0xC004F074, 0xC004F038, 0x8007232B, 0xC004F06C} else 1 for p in CODE_PROFILES]
    profiles = list(CODE_PROFILES) + b.rng.choices(CODE_PROFILES, weights=weights, k=wanted - len(CODE_PROFILES))
    for i, profile in enumerate(profiles):
        if b.full:
            return
        host = _failing_host(b, profile, first=i < len(CODE_PROFILES))
        if host is not None:
            b.add(host)


def _failing_host(b: _Builder, profile: CodeProfile, first: bool = True) -> Host | None:
    if profile.activation == "KMS host":
        return _failing_kms_host(b, profile)
    # The first 0xC004F038 client is a workstation on the mid KMS host (the one a later step fixes).
    first_low = first and profile.cause == "kms_count"
    product_type = "workstation" if first_low or b.rng.random() < 0.7 else "server"
    domain = NORTHWIND if profile.cause == "dns" else b.rng.choice((CONTOSO, CONTOSO, FABRIKAM))
    host = b.base_host(profile.activation, product_type, domain)
    if profile.cause == "kms_old":  # only the newest editions need a newer KMS host key
        host = replace(
            host, edition=b.rng.choice(NEW_EDITIONS["workstation" if product_type == "workstation" else "server"])
        )
    host = replace(host, license_status=profile.license_status, grace_minutes=_fail_grace(b, profile),
                   tags=("failing",))  # fmt: skip
    host = _fail_reason(b, profile, host)
    return _with_cause(b, host, profile, first)


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


def _with_cause(b: _Builder, host: Host, profile: CodeProfile, first: bool = True) -> Host | None:
    def pin(targets: tuple[str, ...]) -> Host | None:
        band = targets[0] if first else b.rng.choice(targets)
        return _pin(b, host, band, "fqdn" if first else b.rng.choice(PIN_FORMS))

    handlers: dict[str, Callable[[], Host | None]] = {
        "kms_count": lambda: _use_low_kms(b, host, first),
        "clock": lambda: _use_band(
            b, replace(host, clock_offset_s=b.rng.choice((-1, 1)) * b.rng.randint(5, 40) * 3600), "high"
        ),
        "dns": lambda: host,
        "kms_port": lambda: pin(PORT_TARGETS[profile.code]),
        "kms_unlicensed": lambda: pin(("unlicensed",)),
        "kms_old": lambda: pin(("old",)),
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


def _pin(b: _Builder, host: Host, band: str, form: str = "fqdn") -> Host | None:
    """``host`` pinned (``/skms``) to the machine of ``band``, named as ``form`` says.

    A short name resolves in the client's own domain, so it is used only within the same domain.
    A client pinned by FQDN also shows it as discovered (as before); one pinned by name or address
    shows nothing discovered, so only the pinned form names its KMS host.
    """
    target = b.target(band)
    if target is None:
        return None
    if form == "name" and target.domain.lower() != host.domain.lower():
        form = "fqdn"
    pool = b.pools.get(target.name)
    if pool is not None:
        pool.clients.append(host.name)
    name = fqdn(target)
    return replace(host, kms_machine=name, discovered_kms=name if form == "fqdn" else "", kms_machine_form=form)


def _use_low_kms(b: _Builder, host: Host, first: bool = False) -> Host | None:
    if host.product_type == "workstation" and (first or b.rng.random() < 0.5):
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


def _stage_faults(b: _Builder, total: int, share: float) -> None:
    count = max(len(FAULT_ORDER), int(total * share))
    for i in range(count):
        fault = FAULT_ORDER[i % len(FAULT_ORDER)]
        host = b.licensed("MAK", "server" if i % 3 == 0 else "workstation", CONTOSO)
        latency = b.rng.randint(80, 400) if fault == "latency" else 0
        scheme = "https" if fault == "tls" else "http"
        if not b.add(replace(host, fault=fault, latency_ms=latency, scheme=scheme, tags=("fault", fault))):
            return


def _stage_hostile(b: _Builder, count: int) -> None:
    for i in range(count):
        computer, site, caption = HOSTILE[i % len(HOSTILE)]
        if i >= len(HOSTILE):  # each machine has a name of its own
            computer = f"{computer}-{i}"
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


def _stage_kms_cases(b: _Builder) -> None:
    """One of each KMS case a monitor must get right, most important first (small fleets keep the first)."""
    cases: tuple[Callable[[], Host | None], ...] = (
        lambda: _office_kms_host(b),
        lambda: _renewal_failing_client(b, "workstation", code=0xC004F074),
        lambda: _renewal_failing_client(b, "workstation", grace=b.rng.randint(600, 2 * DAY - 1)),
        lambda: _workgroup_client(b),
        lambda: _superseded(b, 1, 0),
        lambda: _healthy_pinned(b, "fqdn"),
        lambda: _healthy_pinned(b, "name"),
        lambda: _healthy_pinned(b, "address"),
        lambda: _healthy_discovered(b),
        lambda: _superseded(b, 3, 0xC004F00F),
        lambda: _superseded(b, 2, INFO_GRACE),
        lambda: _traced_failure(b, 0xC004F074, "down", "name"),
        lambda: _traced_failure(b, 0xC004F074, "down", "address"),
        lambda: _traced_failure(b, 0xC004F039, "notkms", "name"),
        lambda: _traced_failure(b, 0xC004F039, "notkms", "address"),
        lambda: _traced_failure(b, 0xC004F074, "notkms", "fqdn"),
        lambda: _traced_failure(b, 0xC004F042, "old", "name", product_type="server"),
        # The threshold follows the host's own renewal interval: daily renewals failing for 3-6 days...
        lambda: _renewal_failing_client(b, "workstation", code=0x800706BA, interval=DAY,
                                        grace=b.rng.randint(VOLUME_DAYS_MIN - 6 * DAY, VOLUME_DAYS_MIN - 3 * DAY)),
        # ... and a monthly renewal 20-29 days old that is merely due.
        lambda: _long_interval_client(b),
    )  # fmt: skip
    for case in cases:
        if b.full:
            return
        host = case()
        if host is not None:
            b.add(host)


def _office_kms_host(b: _Builder) -> Host | None:
    """A server whose Windows is a licensed KMS client while an Office KMS host key serves Office clients."""
    host = b.licensed("KMS client", "server", CONTOSO, name="kms-office-01", computer_name="KMS-OFFICE01")
    host = replace(host, kms=KmsCounters(current_count=0, total_requests=b.rng.randint(200, 8000)), kms_app="office",
                   tags=("kms-host", "office"))  # fmt: skip
    host = _use_band(b, host, "high") or host
    b.pools[host.name] = _KmsPool(host=host, band="office")
    return host


def _workgroup_client(b: _Builder) -> Host | None:
    """A workgroup KMS client that found its KMS host (its DHCP suffix names a domain that publishes)."""
    target = b.target("high")
    if target is None:
        return None
    host = b.licensed("KMS client", "workstation", WORKGROUP)
    b.pools[target.name].clients.append(host.name)
    return replace(host, discovered_kms=fqdn(target), tags=("workgroup-kms-client",))


def _superseded(b: _Builder, status: int, reason: int) -> Host | None:
    """A KMS client whose log holds an old failed 8198 and a newer successful 12289."""
    host = b.licensed("KMS client", "workstation", CONTOSO)
    renewed = b.rng.randint(DAY, 3 * DAY) if status == 1 else b.rng.randint(DAY, 10 * DAY)
    grace = VOLUME_DAYS_MIN - renewed if status == 1 else b.rng.randint(DAY, 30 * DAY)
    host = replace(host, license_status=status, reason=reason, grace_minutes=grace,
                   events=b.superseded_events(renewed), tags=("superseded-failure",))  # fmt: skip
    return _use_band(b, host, "high")


def _healthy_pinned(b: _Builder, form: str) -> Host | None:
    host = b.licensed("KMS client", "workstation", CONTOSO)
    return _pin(b, replace(host, tags=(f"kms-pin-{form}",)), "high", form)


def _healthy_discovered(b: _Builder) -> Host | None:
    host = b.licensed("KMS client", "workstation", CONTOSO)
    return _use_band(b, replace(host, tags=("kms-discovered",)), "high")


def _traced_failure(b: _Builder, code: int, band: str, form: str, product_type: str = "workstation") -> Host | None:
    """A failing KMS client of ``code`` pinned to the machine of ``band``, named as ``form`` says."""
    profile = PROFILE_BY_CODE[code]
    host = b.base_host(profile.activation, product_type, CONTOSO)
    if profile.cause == "kms_old":
        host = replace(host, edition=b.rng.choice(NEW_EDITIONS[product_type]))
    host = replace(host, license_status=profile.license_status, grace_minutes=_fail_grace(b, profile),
                   tags=("failing", f"kms-pin-{form}"))  # fmt: skip
    return _pin(b, _fail_reason(b, profile, host), band, form)


def _renewal_failing_client(
    b: _Builder, product_type: str, *, code: int = 0, grace: int = 0, interval: int = DEFAULT_RENEWAL_INTERVAL
) -> Host | None:
    """A licensed KMS client whose renewals fail, staged with the cause of its newest code."""
    code = code or b.rng.choice(RENEWAL_CODES)
    dns = code == 0x8007232B  # its domain lost the SRV record: nothing discovered, nothing pinned
    host = replace(b.base_host("KMS client", product_type, NORTHWIND if dns else CONTOSO), renewal_interval=interval)
    host = b.failing_renewal(host, code, grace or b.renewal_grace(host))
    if dns:
        return host
    return _pin(b, host, b.rng.choice(("dead", "down"))) or host


def _long_interval_client(b: _Builder) -> Host | None:
    host = replace(b.licensed("KMS client", "workstation", CONTOSO), renewal_interval=30 * DAY)
    renewed = b.rng.randint(20 * DAY, 29 * DAY)
    host = replace(host, grace_minutes=VOLUME_DAYS_MIN - renewed, events=b.healthy_events(renewed),
                   tags=("renewal-interval",))  # fmt: skip
    return _use_band(b, host, "high")


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
    if kind in {"KMS client", "KMS client server"} and b.rng.random() < RENEWAL_FAILING_SHARE:
        product_type = b.rng.choice(("server", "server", "dc")) if kind == "KMS client server" else "workstation"
        failing = _renewal_failing_client(b, product_type)
        if failing is not None:
            return failing
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
    caps = _count_caps(b.hosts)
    counts = {name: _count_for(b.rng, pool, caps.get(fqdn(pool.host), KMS_COUNT_CAP)) for name, pool in b.pools.items()}
    result = []
    for host in b.hosts:
        pool = b.pools.get(host.name)
        if pool is not None:
            kms = replace(pool.host.kms or KmsCounters(0), current_count=counts[host.name])
            kms = _request_counters(b.rng, kms)
            host = replace(pool.host, kms=kms)
        result.append(host)
    return tuple(result)


def _count_caps(hosts: list[Host]) -> dict[str, int]:
    """KMS host FQDN -> the most its count can be: 50, or 10 when only servers among the fleet use it."""
    kinds: dict[str, set[bool]] = {}
    for host in hosts:
        used = (host.kms_machine or host.discovered_kms).lower() if host.activation == "KMS client" else ""
        if used:
            kinds.setdefault(used, set()).add(host.product_type == "workstation")
    return {name: KMS_COUNT_CAP if True in found else KMS_SERVER_COUNT_CAP for name, found in kinds.items()}


def _count_for(rng: random.Random, pool: _KmsPool, cap: int = KMS_COUNT_CAP) -> int:
    assigned = len(pool.clients)
    if pool.band in ESTABLISHED_BANDS:
        return min(cap, max(25 + rng.randint(0, 10), assigned))
    if pool.band == "mid":
        return min(24, cap, max(5, assigned) + rng.randint(0, 3))
    if pool.band == "low":
        return min(4, assigned + rng.randint(0, 1))
    if pool.band == "office":  # Office clients outside the fleet; Office needs 5
        return min(cap, rng.randint(8, 40))
    return 0


def _request_counters(rng: random.Random, kms: KmsCounters) -> KmsCounters:
    total = max(kms.total_requests, kms.current_count * rng.randint(3, 40))
    failed = rng.randint(0, max(1, total // 20))
    return replace(kms, total_requests=total, failed_requests=failed, licensed_requests=max(0, total - failed),
                   non_genuine_requests=rng.randint(0, 3))  # fmt: skip


def _steps(b: _Builder, hosts: tuple[Host, ...]) -> tuple[tuple[Change, ...], ...]:
    by_tag = {h.name: h for h in hosts}
    port_failing = [h for h in hosts if h.kms_machine.startswith("kms-dead") and h.license_status != 1]
    healthy = [
        h for h in hosts if h.activation == "KMS client" and h.license_status == 1 and not h.fault and not h.tags
    ]
    step1: list[Change] = []
    if port_failing:
        fixed = port_failing[0]
        high = _srv(b, "high", CONTOSO)
        step1.append(Change(fixed.name, {"license_status": 1, "reason": 0, "grace_minutes": VOLUME_DAYS_MIN,
                                         "kms_machine": high, "discovered_kms": high, "kms_machine_form": "fqdn",
                                         "events": _activated(fixed)}))  # fmt: skip
    if healthy:
        step1.append(Change(healthy[-1].name, {"license_status": 3, "reason": 0xC004F00F, "grace_minutes": 43200}))
    mid = by_tag.get("kms-mid-01")
    cap = _count_caps(list(hosts)).get(fqdn(mid), KMS_COUNT_CAP) if mid is not None else KMS_COUNT_CAP
    if mid is not None and mid.kms is not None:
        step1.append(Change(mid.name, {"kms.current_count": min(24, cap, mid.kms.current_count + 3)}))
    step2: list[Change] = []
    if mid is not None:
        step2.append(Change(mid.name, {"kms.current_count": min(27, cap)}))
        for name in b.pools["kms-mid-01"].clients:
            if by_tag[name].license_status != 1:
                step2.append(Change(name, {"license_status": 1, "reason": 0, "grace_minutes": VOLUME_DAYS_MIN,
                                           "events": _activated(by_tag[name])}))  # fmt: skip
    return tuple(step for step in (tuple(step1), tuple(step2)) if step)


def _activated(host: Host) -> list[dict[str, int]]:
    """The host's events (JSON-ready) plus the successful KMS exchange that has just activated it."""
    events = [*host.events, SppEvent(12288, 0, 1), SppEvent(12289, 0, 0)]
    return [{"event_code": e.event_code, "hr": e.hr, "minutes_ago": e.minutes_ago} for e in events]


def stable_guid(*parts: str) -> str:
    """A GUID derived from names, so the same scenario always shows the same IDs."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))
