"""Fleet numbers for monitoring systems (the Prometheus exporter), counted in SQL with bounded labels.

``fleet_metrics`` answers, in a few grouped queries, what the dashboard's headline numbers answer: hosts per
site, activation type and license status; hosts per error code; hosts whose last poll failed, per failure
class; stale hosts and Licensed KMS clients whose renewals fail (``queries.fleet_summary``); hosts per grace
end bucket; each KMS host's count, threshold, clients and health (``kms.kms_hosts``, the KMS hosts page); and
each collector's newest finished poll run. It never returns a number per host other than a KMS host, so a
100,000-host fleet stays a few thousand series.

Label values that come from hosts or inventories (sites, error codes, KMS host and collector names) go
through ``label_value``: control, formatting and markup characters removed, cut to ``LABEL_WIDTH``. The
most common ``Limits.sites`` sites and ``Limits.codes`` codes keep their own label; the rest are counted
under ``OTHER`` and ``FleetMetrics.folded`` says how many values were folded. Nothing here writes or caches.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, case, func, literal, select

from knowledge.codes import all_codes
from knowledge.kms import KMS_CLIENT_THRESHOLD, KMS_SERVER_THRESHOLD
from knowledge.kms_health import KmsHealth, serves_windows
from models import kms, queries
from models.enums import FailureClass, RunStatus
from models.tables import Host, PollRun

LABEL_WIDTH = 64
MARKER = "…"
OTHER = "(other)"  # the label of the values beyond a cap
NONE = "(none)"  # the label of a value that is missing or cleans to nothing
UNKNOWN = "unknown"  # activation type or license status never read
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_MARKUP = str.maketrans("", "", '<>"\\`{}')
# Grace end buckets: (label, upper bound in days, inclusive); a host is in the first whose bound it meets.
GRACE_BUCKETS: tuple[tuple[str, float], ...] = (("expired", 0), ("1d", 1), ("7d", 7), ("14d", 14), ("30d", 30))
GRACE_LATER = "later"


def label_value(text: str | None, width: int = LABEL_WIDTH) -> str:
    """``text`` fit for a label: no control, formatting (bidi overrides) or markup characters, runs of
    white space as one space, at most ``width`` characters; ``NONE`` when nothing is left."""
    if text is None:
        return NONE
    spaced = "".join(" " if ch.isspace() else ch for ch in text)
    kept = "".join(ch for ch in spaced if unicodedata.category(ch) not in _HIDDEN_CATEGORIES)
    cleaned = " ".join(kept.translate(_MARKUP).split())
    if not cleaned:
        return NONE
    return cleaned if len(cleaned) <= width else cleaned[: width - 1] + MARKER


@dataclass(frozen=True, slots=True)
class Limits:
    """How many values of each host-supplied label keep their own series."""

    sites: int = 100
    codes: int = 100
    kms_hosts: int = 500
    collectors: int = 100


@dataclass(frozen=True, slots=True)
class KmsHostMetrics:
    """One KMS host as the KMS hosts page shows it."""

    host: str  # label_value of its inventory name
    role: str  # windows, office, other, or unknown when never read
    count: int | None  # its latest count; None when never read
    threshold: int  # the count it needs (kms_health's rule, with the configured thresholds)
    clients: int  # clients whose KMS name resolves to it
    failing_here: int  # of them, failing with a code that points at the KMS host
    state: str  # its health (knowledge.kms_health.KmsHealth)


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """A collector's (and shard's) newest finished poll run, and when its newest complete run finished."""

    collector: str
    shard: str
    status: str
    finished_at: datetime
    duration_s: float
    hosts: int
    succeeded: int
    failures: dict[str, int]  # failure class -> hosts
    last_complete_at: datetime | None


@dataclass(frozen=True, slots=True)
class FleetMetrics:
    """Everything the exporter serves, read at ``read_at``."""

    read_at: datetime
    hosts: dict[tuple[str, str, str], int]  # (site, activation type, license status) -> hosts
    by_code: dict[str, int]  # every known code (0 when no host has it) and the codes present
    unreachable: dict[str, int]  # failure class of the last poll -> hosts
    stale: int
    renewal_failing: int
    grace: dict[str, int]  # grace end bucket -> hosts
    grace_warning: int  # hosts whose grace ends within grace_warning_days (the Overview's list)
    kms_hosts: tuple[KmsHostMetrics, ...]
    runs: tuple[RunMetrics, ...]
    folded: dict[str, int] = field(default_factory=dict)  # label -> values beyond its cap


def fleet_metrics(
    conn: Connection,
    *,
    now: datetime,
    stale_after: timedelta,
    grace_warning_days: int,
    client_threshold: int = KMS_CLIENT_THRESHOLD,
    server_threshold: int = KMS_SERVER_THRESHOLD,
    limits: Limits | None = None,
) -> FleetMetrics:
    """The fleet's numbers now, each label bounded (see the module's doc)."""
    limits = limits or Limits()
    summary = queries.fleet_summary(conn, now=now, stale_after=stale_after)
    hosts, sites_folded = _hosts(conn, limits.sites)
    by_code, codes_folded = _codes(conn, limits.codes, summary.failing)
    grace, warning = _grace(conn, now, grace_warning_days)
    kms_hosts, kms_folded = _kms_hosts(conn, limits.kms_hosts, client_threshold, server_threshold)
    runs, runs_folded = _runs(conn, limits.collectors)
    return FleetMetrics(
        read_at=now,
        hosts=hosts,
        by_code=by_code,
        unreachable=_unreachable(conn),
        stale=summary.stale,
        renewal_failing=summary.at_risk,
        grace=grace,
        grace_warning=warning,
        kms_hosts=kms_hosts,
        runs=runs,
        folded={"site": sites_folded, "code": codes_folded, "kms_host": kms_folded, "collector": runs_folded},
    )


def _top(conn: Connection, column: Any, n: int) -> tuple[list[str], int]:
    """The ``n`` most common non-null values of a hosts column, and how many other values there are."""
    top = conn.execute(
        select(column).where(column.is_not(None)).group_by(column).order_by(func.count().desc(), column).limit(n)
    ).scalars()
    kept = [str(value) for value in top]
    if len(kept) < n:
        return kept, 0
    distinct = conn.execute(select(func.count(func.distinct(column))).where(column.is_not(None))).scalar_one()
    return kept, int(distinct) - len(kept)


def _hosts(conn: Connection, max_sites: int) -> tuple[dict[tuple[str, str, str], int], int]:
    sites, folded = _top(conn, Host.site, max_sites)
    # grouped from a subquery: PostgreSQL sees a GROUP BY expression holding parameters as a new expression
    labelled = select(
        case((Host.site.is_(None), literal(None)), (Host.site.in_(sites), Host.site), else_=literal(OTHER)).label(
            "site"
        ),
        Host.activation_type,
        Host.license_status,
    ).subquery()
    c = labelled.c
    rows = conn.execute(
        select(c.site, c.activation_type, c.license_status, func.count()).group_by(
            c.site, c.activation_type, c.license_status
        )
    ).all()
    out: Counter[tuple[str, str, str]] = Counter()
    for site, kind, status, n in rows:
        out[(label_value(site), label_value(kind or UNKNOWN), label_value(status or UNKNOWN))] += int(n)
    return dict(out), folded


def _codes(conn: Connection, max_codes: int, failing: int) -> tuple[dict[str, int], int]:
    """Hosts per error code: every knowledge-base code (0 when absent, so a new spike has a history) and the
    ``max_codes`` most common codes present; the rest count under ``OTHER``."""
    rows = conn.execute(
        select(Host.error_code, func.count(Host.id))
        .where(Host.error_code.is_not(None))
        .group_by(Host.error_code)
        .order_by(func.count(Host.id).desc(), Host.error_code)
        .limit(max_codes)
    ).all()
    out: Counter[str] = Counter({entry.code: 0 for entry in all_codes()})
    for code, n in rows:
        out[label_value(code)] += int(n)
    rest = failing - sum(int(n) for _, n in rows)
    folded = 0
    if rest > 0:
        out[OTHER] += rest
        folded = int(conn.execute(select(func.count(func.distinct(Host.error_code)))).scalar_one() - len(rows))
    return dict(out), folded


def _unreachable(conn: Connection) -> dict[str, int]:
    """Hosts whose last poll failed, per failure class (every class, 0 when none)."""
    rows = conn.execute(
        select(Host.last_failure_class, func.count(Host.id))
        .where(Host.last_failure_class.is_not(None))
        .group_by(Host.last_failure_class)
    ).all()
    out: Counter[str] = Counter({c.value: 0 for c in FailureClass})
    for name, n in rows:
        out[label_value(name)] += int(n)
    return dict(out)


def _grace(conn: Connection, now: datetime, warning_days: int) -> tuple[dict[str, int], int]:
    """Hosts per grace end bucket, and those ending within ``warning_days`` (``queries.grace_expiring``'s rule)."""
    ends = Host.grace_ends_at
    bucket = case(
        *((ends <= now + timedelta(days=days), literal(name)) for name, days in GRACE_BUCKETS),
        else_=literal(GRACE_LATER),
    )
    warned = case((ends <= now + timedelta(days=warning_days), 1), else_=0)
    labelled = select(bucket.label("bucket"), warned.label("warned")).where(ends.is_not(None)).subquery()
    rows = conn.execute(
        select(labelled.c.bucket, func.count(), func.sum(labelled.c.warned)).group_by(labelled.c.bucket)
    ).all()
    out = {name: 0 for name, _ in GRACE_BUCKETS} | {GRACE_LATER: 0}
    for name, n, _ in rows:
        out[str(name)] = int(n)
    return out, sum(int(w or 0) for *_, w in rows)


def threshold(count: int | None, role: str | None, client: int, server: int) -> int:
    """The count a KMS host is read against: ``server`` for a non-Windows KMS host or a count below it,
    else ``client`` (``knowledge.kms_health.threshold`` with configurable numbers)."""
    if not serves_windows(role) or (count or 0) < server:
        return server
    return client


def _kms_hosts(conn: Connection, limit: int, client: int, server: int) -> tuple[tuple[KmsHostMetrics, ...], int]:
    frame = kms.kms_hosts(conn)
    found: list[KmsHostMetrics] = []
    for host, role, count, clients, failing, state in zip(
        frame["host"], frame["kms_role"], frame["current_count"], frame["clients"], frame["failing_here"],
        frame["state"], strict=True,
    ):  # fmt: skip
        known = None if pd.isna(count) else int(count)
        kind = None if pd.isna(role) else str(role)
        found.append(
            KmsHostMetrics(
                host=label_value(str(host)),
                role=label_value(kind) if kind else UNKNOWN,
                count=known,
                threshold=threshold(known, kind, client, server),
                clients=int(clients),
                failing_here=int(failing),
                state=str(state),
            )
        )
    found.sort(key=lambda k: (KmsHealth(k.state).rank, k.host))
    kept = _unique(found, lambda k: (k.host, k.role))[:limit]
    return tuple(kept), len(found) - len(kept)


def _runs(conn: Connection, limit: int) -> tuple[tuple[RunMetrics, ...], int]:
    shard = func.coalesce(PollRun.shard, "")
    newest = (
        select(func.max(PollRun.id).label("id"))
        .where(PollRun.finished_at.is_not(None))
        .group_by(PollRun.collector, shard)
        .subquery()
    )
    classes = [c.value for c in FailureClass]
    rows = conn.execute(
        select(
            PollRun.collector, shard, PollRun.status, PollRun.started_at, PollRun.finished_at, PollRun.hosts_total,
            PollRun.succeeded, *(getattr(PollRun, f"failed_{c}") for c in classes),
        )
        .join(newest, newest.c.id == PollRun.id)
        .order_by(PollRun.finished_at.desc(), PollRun.id.desc())
    ).all()  # fmt: skip
    complete = dict(
        ((collector, shard_name), at)
        for collector, shard_name, at in conn.execute(
            select(PollRun.collector, shard, func.max(PollRun.finished_at))
            .where(PollRun.status == RunStatus.COMPLETE.value, PollRun.finished_at.is_not(None))
            .group_by(PollRun.collector, shard)
        )
    )
    found = [
        RunMetrics(
            collector=label_value(collector),
            shard=label_value(shard_name) if shard_name else "",
            status=str(status),
            finished_at=finished,
            duration_s=max((finished - started).total_seconds(), 0.0),
            hosts=int(hosts),
            succeeded=int(succeeded),
            failures=dict(zip(classes, (int(n) for n in failed), strict=True)),
            last_complete_at=complete.get((collector, shard_name)),
        )
        for collector, shard_name, status, started, finished, hosts, succeeded, *failed in rows
    ]
    kept = _unique(found, lambda r: (r.collector, r.shard))[:limit]
    return tuple(kept), len(found) - len(kept)


def _unique(items: Iterable[Any], key: Any) -> list[Any]:
    """``items`` without those whose cleaned labels repeat an earlier one's (one series per label set)."""
    seen: set[Any] = set()
    out = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            out.append(item)
    return out
