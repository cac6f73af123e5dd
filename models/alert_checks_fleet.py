"""The alert checks about the fleet as a whole: KMS SRV records per domain, quiet collectors, error-code spikes.

Same contract as ``models.alert_checks``: ``(conn, params, now) -> list[Finding]``, grouped and counted in SQL.

* SRV records come from the collector's ``dns_srv`` findings: each KMS client's lookup of
  ``_vlmcs._tcp.<its domain>``, with the records found or the error. The newest answer per name decides; an
  answer not probed (time ran out, the run's cap) decides nothing. Whether an SRV target is dead comes from
  the ``kms_port`` findings (the collector's TCP check of a KMS host's port, made for each client using it)
  and, failing those, from the KMS host's own counters (``listening``).
* A collector is quiet when it has no complete run for ``alert_quiet_factor`` x its interval: the median gap
  between its last runs' starts (starts within a minute of each other, shards of one poll, count as one) once
  it has made three runs or more, else ``poll_interval_s``. A collector whose last run started more than 30
  days ago is forgotten. Runs of the job queue, recorded as ``<scheduler host>/queue``, are one collector,
  ``queue``, however many schedulers take turns.
* A code spikes when its host count now is at least ``alert_spike_factor`` times its daily average over the
  7 days before today (``daily_rollups``) and at least ``alert_spike_min_hosts``; with no rollup in those days
  there is no baseline and nothing spikes.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, case, distinct, func, literal, not_, or_, select

from knowledge.findings import NOT_PROBED
from knowledge.kms import KMS_DEFAULT_PORT, KMS_SRV_PREFIX
from models.alert_checks import code_facts
from models.alerts import Finding
from models.enums import RunStatus
from models.kms import latest_stats
from models.tables import DailyRollup, Host, HostFinding, PollRun

if TYPE_CHECKING:
    from models.alert_checks import CheckParams

BASELINE_DAYS = 7
QUEUE_SUFFIX = "/queue"  # how the job queue's scheduler names the runs it records
QUEUE_COLLECTOR = "queue"
RECENT_RUNS = 5  # runs whose spacing gives a collector's interval
SCAN_STARTS = 50  # newest starts read per collector (shards of one run collapse into one)
MIN_GAPS = 2
SAME_RUN_S = 60.0  # starts this close together belong to one run
FORGET_AFTER = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class SrvState:
    """What the fleet's lookups of one ``_vlmcs._tcp`` name say."""

    name: str
    found_at: datetime | None  # newest answer with records
    missing_at: datetime | None  # newest probed answer without
    discovering: int  # clients without a pinned KMS host that got no record
    hurt: int  # of them, those whose failure the missing record explains
    records: str = ""  # the newest records found, as the finding gives them: "target:port, ..."

    @property
    def missing(self) -> bool:
        return self.missing_at is not None and (self.found_at is None or self.found_at < self.missing_at)

    @property
    def domain(self) -> str:
        return self.name.removeprefix(f"{KMS_SRV_PREFIX}.")

    def targets(self) -> list[tuple[str, int]]:
        pairs = []
        for record in self.records.split(","):
            host, _, port = record.strip().rpartition(":")
            if host:
                pairs.append((host.lower().rstrip("."), int(port) if port.isdigit() else KMS_DEFAULT_PORT))
        return pairs


def _srv_answers() -> Any:
    """Each ``dns_srv`` finding as flags: its name, the records found, and whether it is a probed answer without
    records, from a client that depends on DNS, that the missing record hurts."""
    evidence = HostFinding.evidence
    records = evidence["records"].as_string()
    error = evidence["error"].as_string()
    pinned = evidence["pinned_kms_host"].as_string()
    found = and_(records.is_not(None), records != "")
    missing = and_(not_(found), error.is_not(None), not_(error.startswith(NOT_PROBED, autoescape=True)))
    discovering = and_(missing, or_(pinned.is_(None), pinned == ""))
    hurt = and_(discovering, HostFinding.severity == "fail")
    return (
        select(
            evidence["name"].as_string().label("name"),
            case((found, records)).label("records"),
            case((missing, 1), else_=0).label("missing"),
            case((discovering, 1), else_=0).label("discovering"),
            case((hurt, 1), else_=0).label("hurt"),
            HostFinding.observed_at,
        )
        .where(HostFinding.check == "dns_srv")
        .subquery()
    )


def srv_states(conn: Connection) -> list[SrvState]:
    """Every ``_vlmcs._tcp`` name the collector looked up, with what its lookups say.

    One pass in SQL groups the lookups by name, records and flags (a handful of rows per domain); the newest
    answer and the counts per name are taken from those groups.
    """
    a = _srv_answers()
    groups = conn.execute(
        select(a.c.name, a.c.records, a.c.missing, a.c.discovering, a.c.hurt, func.max(a.c.observed_at), func.count())
        .where(a.c.name.is_not(None))
        .group_by(a.c.name, a.c.records, a.c.missing, a.c.discovering, a.c.hurt)
    ).all()
    by_name: dict[str, list[Any]] = {}
    for row in groups:
        by_name.setdefault(row[0], []).append(row)
    return [_srv_state(name, rows) for name, rows in sorted(by_name.items())]


def _srv_state(name: str, rows: list[Any]) -> SrvState:
    found = [(at, records) for _, records, _, _, _, at, _ in rows if records]
    missing = [at for _, _, is_missing, _, _, at, _ in rows if is_missing]
    newest = max(found, key=lambda pair: pair[0]) if found else None
    return SrvState(
        name=name,
        found_at=newest[0] if newest else None,
        missing_at=max(missing) if missing else None,
        discovering=sum(int(n) for _, _, _, discovering, _, _, n in rows if discovering),
        hurt=sum(int(n) for _, _, _, _, hurt, _, n in rows if hurt),
        records=newest[1] if newest else "",
    )


def srv_missing(conn: Connection, p: CheckParams, now: datetime) -> list[Finding]:
    """Each domain whose newest SRV answer has no record while some of its clients find KMS through DNS."""
    return [
        p.finding(s.domain.lower(), s.domain, srv_name=s.name, clients=s.discovering, hurt=s.hurt)
        for s in srv_states(conn)
        if s.missing and s.discovering
    ]


def srv_dead(conn: Connection, p: CheckParams, now: datetime) -> list[Finding]:
    """Each domain whose SRV record names only KMS hosts that do not answer on their KMS port."""
    published = [s for s in srv_states(conn) if not s.missing and s.targets()]
    targets = {target for s in published for target in s.targets()}
    dead = dead_targets(conn, targets)
    found = []
    for s in published:
        if all(target in dead for target in s.targets()):
            shown = ", ".join(f"{host}:{port}" for host, port in s.targets())
            found.append(p.finding(s.domain.lower(), s.domain, srv_name=s.name, targets=shown))
    return found


def dead_targets(conn: Connection, targets: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """The ``(host, port)`` pairs whose newest TCP check failed or, never checked, whose KMS host says it does not
    listen."""
    wanted = set(targets)
    if not wanted:
        return set()
    names = sorted({host for host, _ in wanted})
    evidence = HostFinding.evidence
    probes = (
        select(
            evidence["kms_host"].as_string().label("host"),
            evidence["port"].as_integer().label("port"),
            HostFinding.severity,
            HostFinding.observed_at,
        )
        .where(HostFinding.check == "kms_port", HostFinding.severity.in_(("ok", "fail")))
        .subquery()
    )
    rows = conn.execute(
        select(
            probes.c.host,
            probes.c.port,
            func.max(case((probes.c.severity == "ok", probes.c.observed_at))),
            func.max(case((probes.c.severity == "fail", probes.c.observed_at))),
        )
        .where(probes.c.host.in_(names))
        .group_by(probes.c.host, probes.c.port)
    ).all()
    checked = {
        (host, port): ok_at is None or (fail_at is not None and ok_at < fail_at) for host, port, ok_at, fail_at in rows
    }
    dead = {target for target, is_dead in checked.items() if is_dead and target in wanted}
    latest = latest_stats()
    silent = conn.execute(
        select(Host.fqdn)
        .join(latest, latest.c.host_id == Host.id)
        .where(Host.fqdn.in_(names), latest.c.listening.is_(False))
    ).scalars()
    silent_hosts = set(silent)
    dead |= {target for target in wanted if target not in checked and target[0] in silent_hosts}
    return dead


def collector_name() -> Any:
    """A poll run's collector as the quiet check counts it: every ``<host>/queue`` is ``queue``."""
    queued = PollRun.collector.endswith(QUEUE_SUFFIX, autoescape=True)
    return case((queued, literal(QUEUE_COLLECTOR)), else_=PollRun.collector)


def run_interval(starts: Sequence[datetime]) -> float | None:
    """A collector's interval in seconds from its newest run starts (newest first): the median gap between its
    last ``RECENT_RUNS`` runs, starts within ``SAME_RUN_S`` of each other counted once; ``None`` with too few."""
    runs: list[datetime] = []
    for started in starts:
        if not runs or (runs[-1] - started).total_seconds() >= SAME_RUN_S:
            runs.append(started)
    recent = runs[:RECENT_RUNS]
    gaps = [(newer - older).total_seconds() for newer, older in pairwise(recent)]
    return statistics.median(gaps) if len(gaps) >= MIN_GAPS else None


def collector_quiet(conn: Connection, p: CheckParams, now: datetime) -> list[Finding]:
    """Each collector with no complete run for ``alert_quiet_factor`` x its own interval (``run_interval``, else
    ``poll_interval_s``), counted from its first run while it has none; one whose newest run started more than
    30 days ago is left out."""
    factor, default = float(p["alert_quiet_factor"]), int(p["poll_interval_s"])
    name = collector_name().label("name")
    since = now - FORGET_AFTER
    complete = PollRun.status == RunStatus.COMPLETE.value
    rows = conn.execute(
        select(name, func.max(case((complete, PollRun.finished_at))), func.min(PollRun.started_at))
        .group_by(name)
        .having(func.max(PollRun.started_at) >= since)
        .order_by(name)
    ).all()
    if not rows:
        return []
    rank = func.row_number().over(partition_by=collector_name(), order_by=PollRun.started_at.desc())
    recent = select(name, PollRun.started_at, rank.label("rn")).where(PollRun.started_at >= since).subquery()
    starts: dict[str, list[datetime]] = {}
    for collector, started in conn.execute(
        select(recent.c.name, recent.c.started_at)
        .where(recent.c.rn <= SCAN_STARTS)
        .order_by(recent.c.name, recent.c.started_at.desc())
    ):
        starts.setdefault(collector, []).append(started)
    found = []
    for collector, last_complete, first_started in rows:
        measured = run_interval(starts.get(collector, []))
        interval = round(measured) if measured is not None else default
        quiet_after = timedelta(seconds=factor * interval)
        began = last_complete or first_started
        if began is not None and began < now - quiet_after:
            found.append(
                p.finding(
                    collector,
                    collector,
                    last_complete=last_complete.isoformat() if last_complete else None,
                    poll_interval_s=interval,
                    interval_from="runs" if measured is not None else "setting",
                    quiet_after_s=int(quiet_after.total_seconds()),
                )
            )
    return found


def code_spike(conn: Connection, p: CheckParams, now: datetime) -> list[Finding]:
    """Each error code whose host count now is ``alert_spike_factor`` times its 7-day daily average or more."""
    factor, least = float(p["alert_spike_factor"]), int(p["alert_spike_min_hosts"])
    today = now.date()
    window = and_(DailyRollup.day >= today - timedelta(days=BASELINE_DAYS), DailyRollup.day < today)
    days = int(conn.execute(select(func.count(distinct(DailyRollup.day))).where(window)).scalar_one())
    if not days:
        return []
    hosts = func.count(Host.id)
    rows = conn.execute(
        select(Host.error_code, hosts)
        .where(Host.error_code.is_not(None))
        .group_by(Host.error_code)
        .having(hosts >= least)
    ).all()
    current = {str(code): int(count) for code, count in rows}
    if not current:
        return []
    before = dict(
        conn.execute(
            select(DailyRollup.error_code, func.sum(DailyRollup.host_count))
            .where(window, DailyRollup.error_code.in_(list(current)))
            .group_by(DailyRollup.error_code)
        ).all()
    )
    found = []
    for code, count in sorted(current.items()):
        baseline = float(before.get(code) or 0) / days
        if count >= factor * baseline:
            facts = code_facts(code) | {"hosts": count, "baseline": round(baseline, 1), "factor": factor}
            found.append(p.finding(code, code, **facts, days=days))
    return found
