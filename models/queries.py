"""The read side (the query layer): fleet questions answered in SQL, returned chart-ready.

Each function takes a ``Connection`` and, where it lists hosts, a ``HostFilter``; it groups and counts in the
database and returns a small DataFrame or frozen rows. The dashboard and the CLI call these functions and
nothing else; neither holds SQL. Nothing here caches: ``ui.data`` wraps these with Streamlit's caches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Select, case, exists, func, select

from knowledge.codes import lookup
from models.enums import GRACE_STATUSES, ActivationType, HostState, LicenseStatus
from models.filters import HostFilter
from models.hostfacts import STATE, host_state, resolution
from models.tables import CurrentStatus, DailyRollup, Host, HostFinding, StatusHistory

MINUTES_PER_DAY = 1440
LICENSED = LicenseStatus.LICENSED.value
GRACE = [s.value for s in GRACE_STATUSES]
UNLICENSED = [LicenseStatus.UNLICENSED.value, LicenseStatus.NOTIFICATION.value]
SUMMARY_KEYS = ("hosts", "activated", "in_grace", "unlicensed", "failing", "unreachable", "stale", "at_risk")


def _now() -> datetime:
    return datetime.now(UTC)


def _hosts_where(flt: HostFilter, now: datetime | None = None) -> Any:
    return flt.where(now or _now())


def fleet_is_empty(conn: Connection) -> bool:
    """True until the first host has been recorded (the dashboard then shows its first-run screen)."""
    return conn.execute(select(exists().where(Host.id.is_not(None)))).scalar_one() is False


@dataclass(frozen=True, slots=True)
class FleetSummary:
    hosts: int
    activated: int
    in_grace: int
    unlicensed: int
    failing: int
    unreachable: int
    stale: int
    previous: dict[str, int | None]
    at_risk: int = 0  # Licensed KMS clients whose renewals fail

    def change(self, key: str) -> int | None:
        """The change since the previous day's rollup, or None when the previous day is unknown."""
        before = self.previous.get(key)
        return None if before is None else getattr(self, key) - before


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def fleet_summary(conn: Connection, *, now: datetime, stale_after: timedelta) -> FleetSummary:
    """Headline numbers now, with the same numbers for the latest earlier day where rollups know them."""
    stale = (Host.last_success_at.is_(None)) | (Host.last_success_at < now - stale_after)
    row = conn.execute(
        select(
            func.count(Host.id),
            _count_if(Host.license_status == LICENSED),
            _count_if(Host.license_status.in_(GRACE)),
            _count_if(Host.license_status.in_(UNLICENSED)),
            _count_if(Host.error_code.is_not(None)),
            _count_if(Host.last_failure_class.is_not(None)),
            _count_if(stale),
            _count_if(Host.renewal_failing.is_(True)),
        )
    ).one()
    hosts, activated, in_grace, unlicensed, failing, unreachable, stale_n, at_risk = (int(v) for v in row)
    return FleetSummary(
        hosts, activated, in_grace, unlicensed, failing, unreachable, stale_n, _previous_day(conn, now.date()), at_risk
    )


def _previous_day(conn: Connection, today: date) -> dict[str, int | None]:
    day = conn.execute(select(func.max(DailyRollup.day)).where(DailyRollup.day < today)).scalar_one_or_none()
    if day is None:
        return dict.fromkeys(SUMMARY_KEYS)
    r = DailyRollup
    row = conn.execute(
        select(
            func.sum(r.host_count),
            func.sum(case((r.license_status == LICENSED, r.host_count), else_=0)),
            func.sum(case((r.license_status.in_(GRACE), r.host_count), else_=0)),
            func.sum(case((r.license_status.in_(UNLICENSED), r.host_count), else_=0)),
            func.sum(case((r.error_code != "", r.host_count), else_=0)),
            func.sum(case((r.failure_class != "", r.host_count), else_=0)),
        ).where(r.day == day)
    ).one()
    return {**dict(zip(SUMMARY_KEYS, (int(v or 0) for v in row), strict=False)), "stale": None, "at_risk": None}


def failures_by_code(
    conn: Connection, flt: HostFilter, *, lang: str = "en", now: datetime | None = None
) -> pd.DataFrame:
    """Hosts per error code (most frequent first), with each code's short title."""
    rows = conn.execute(
        select(Host.error_code, func.count(Host.id).label("hosts"))
        .where(_hosts_where(flt, now), Host.error_code.is_not(None))
        .group_by(Host.error_code)
        .order_by(func.count(Host.id).desc(), Host.error_code)
    ).all()
    frame = pd.DataFrame(
        [(code, lookup(str(code), lang).title, n) for code, n in rows], columns=["error_code", "title", "hosts"]
    )
    return frame.astype({"hosts": "int64"})


def failures_by_activation_type(conn: Connection, flt: HostFilter, *, now: datetime | None = None) -> pd.DataFrame:
    """Hosts not activated, or reporting an error, per activation type and license status."""
    not_ok = (Host.license_status != LICENSED) | Host.error_code.is_not(None)
    state = STATE.label("state")
    rows = conn.execute(
        select(Host.activation_type, state, func.count(Host.id))
        .where(_hosts_where(flt, now), Host.license_status.is_not(None), not_ok)
        .group_by(Host.activation_type, state)
        .order_by(func.count(Host.id).desc())
    ).all()
    return pd.DataFrame(rows, columns=["activation_type", "license_status", "hosts"]).astype({"hosts": "int64"})


def host_count(conn: Connection, flt: HostFilter, *, now: datetime | None = None) -> int:
    return int(conn.execute(select(func.count(Host.id)).where(_hosts_where(flt, now))).scalar_one())


@dataclass(frozen=True, slots=True)
class HostRow:
    """One host as the working list and the CSV export show it (the CSV takes the fields after ``computer_name``)."""

    computer_name: str | None
    host: str
    domain: str | None
    site: str | None
    os: str | None
    product_type: str | None
    activation_type: str | None
    license_status: str | None
    error_code: str | None
    error_title: str | None
    grace_days_remaining: float | None
    kms_host: str | None
    last_seen_utc: str | None
    poll_error: str | None
    resolution_url: str | None
    state: HostState | None = None  # see ``models.hostfacts.host_state``


HOST_ROW_COLUMNS = tuple(f.name for f in fields(HostRow))
_HOST_COLUMNS = (
    Host.computer_name,
    Host.name,
    Host.domain,
    Host.site,
    Host.os_caption,
    Host.product_type,
    Host.activation_type,
    Host.license_status,
    Host.error_code,
    Host.grace_ends_at,
    Host.kms_host,
    Host.last_success_at,
    Host.last_failure_class,
    Host.last_failure_reason,
    Host.renewal_failing,
)


def _host_select(flt: HostFilter, now: datetime | None) -> Select[Any]:
    failing_first = case((Host.error_code.is_not(None), 0), (Host.last_failure_class.is_not(None), 1), else_=2)
    columns: tuple[Any, ...] = _HOST_COLUMNS  # 15 columns: wider than Select's typed tuple forms
    return select(*columns).where(_hosts_where(flt, now)).order_by(failing_first, Host.name)


def iter_host_rows(
    conn: Connection,
    flt: HostFilter,
    *,
    limit: int | None = None,
    offset: int = 0,
    lang: str = "en",
    now: datetime | None = None,
) -> Iterator[HostRow]:
    """Stream the filtered hosts, failing ones first, without holding them all in memory."""
    stmt = _host_select(flt, now).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    moment = now or _now()
    for row in conn.execute(stmt.execution_options(yield_per=2000)):
        yield _host_row(row, lang, moment)


def grace_days(ends: datetime | None, now: datetime) -> float | None:
    """Days left in a grace period, aged from the poll that read it; negative once it has ended."""
    return None if ends is None else round((ends - now).total_seconds() / 86400, 1)


def unreachable_label(failure_class: str | None, reason: str | None) -> str | None:
    """The ``poll_error`` cell of a host the last poll could not reach: ``unreachable (timeout): reason``."""
    return f"unreachable ({failure_class}): {reason or ''}".rstrip(": ") if failure_class else None


def _host_row(row: Any, lang: str, now: datetime) -> HostRow:
    (computer, name, domain, site, os_caption, ptype, atype, status, code, ends, kms, seen, fclass, reason, risk) = row
    entry = lookup(code, lang) if code else None
    fix = resolution(code, lang) if code else None
    return HostRow(
        computer_name=computer,
        host=name,
        domain=domain,
        site=site,
        os=os_caption,
        product_type=ptype,
        activation_type=atype,
        license_status=status,
        error_code=code,
        error_title=entry.title if entry else None,
        grace_days_remaining=grace_days(ends, now),
        kms_host=kms,
        last_seen_utc=seen.strftime("%Y-%m-%dT%H:%M:%SZ") if seen else None,
        poll_error=unreachable_label(fclass, reason),
        resolution_url=fix.article_url if fix else None,
        state=host_state(status, risk),
    )


def host_page(
    conn: Connection,
    flt: HostFilter,
    *,
    limit: int = 500,
    offset: int = 0,
    lang: str = "en",
    now: datetime | None = None,
) -> pd.DataFrame:
    """One page of the working list."""
    rows = [asdict(r) for r in iter_host_rows(conn, flt, limit=limit, offset=offset, lang=lang, now=now)]
    return pd.DataFrame(rows, columns=list(HOST_ROW_COLUMNS))


def activation_trend(conn: Connection, *, days: int = 90, today: date | None = None) -> pd.DataFrame:
    """Activated vs not activated hosts per day, from the daily rollups."""
    start = (today or _now().date()) - timedelta(days=days)
    licensed = DailyRollup.license_status == LICENSED
    rows = conn.execute(
        select(
            DailyRollup.day,
            func.sum(case((licensed, DailyRollup.host_count), else_=0)),
            func.sum(case((licensed, 0), else_=DailyRollup.host_count)),
        )
        .where(DailyRollup.day >= start)
        .group_by(DailyRollup.day)
        .order_by(DailyRollup.day)
    ).all()
    return pd.DataFrame(rows, columns=["day", "activated", "not_activated"])


def grace_expiring(
    conn: Connection, *, within_days: int, limit: int = 200, now: datetime | None = None
) -> pd.DataFrame:
    """Hosts whose grace or volume-activation period ends within ``within_days`` days (or has already
    ended since the last successful poll), soonest first."""
    moment = now or _now()
    rows = conn.execute(
        select(Host.name, Host.activation_type, Host.license_status, Host.grace_ends_at)
        .where(Host.grace_ends_at <= moment + timedelta(days=within_days))
        .order_by(Host.grace_ends_at, Host.name)
        .limit(limit)
    ).all()
    frame = pd.DataFrame(
        [(name, kind, status, grace_days(ends, moment)) for name, kind, status, ends in rows],
        columns=["host", "activation_type", "license_status", "grace_days_remaining"],
    )
    return frame


@dataclass(frozen=True, slots=True)
class ProductRow:
    product_id: str
    product_name: str | None
    description: str | None
    channel: str | None
    activation_type: str
    license_status: str
    error_code: str | None
    error_source: str | None
    grace_minutes: int | None
    partial_key: str | None
    kms_machine: str | None
    kms_port: int | None
    discovered_kms_machine: str | None
    discovered_kms_port: int | None
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class FindingRow:
    check: str
    severity: str
    summary: str
    related_code: str | None
    evidence: dict[str, Any]
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class HostDetail:
    row: HostRow
    os_version: str | None
    fqdn: str | None
    tags: tuple[str, ...]
    clock_skew_s: float | None
    first_seen: datetime
    last_attempt_at: datetime | None
    products: tuple[ProductRow, ...]
    findings: tuple[FindingRow, ...]
    signin: str | None = None
    unread_classes: tuple[str, ...] = ()
    last_success_at: datetime | None = None
    failure_class: str | None = None  # why the last poll failed, when it did
    failure_reason: str | None = None


def host_detail(conn: Connection, host: str, *, lang: str = "en", now: datetime | None = None) -> HostDetail | None:
    """Everything known about one host, or None when the name is not in the database."""
    row = conn.execute(select(*_HOST_COLUMNS, Host.id).where(Host.name == host)).one_or_none()
    moment = now or _now()
    if row is None:
        return None
    extra = conn.execute(
        select(
            Host.os_version,
            Host.fqdn,
            Host.tags,
            Host.clock_skew_s,
            Host.first_seen,
            Host.last_attempt_at,
            Host.signin,
            Host.unread_classes,
            Host.last_success_at,
            Host.last_failure_class,
            Host.last_failure_reason,
        ).where(Host.id == row.id)
    ).one()
    product_cols = [getattr(CurrentStatus, f.name) for f in fields(ProductRow)]
    products = conn.execute(
        select(*product_cols).where(CurrentStatus.host_id == row.id).order_by(CurrentStatus.product_id)
    )
    finding_cols = [getattr(HostFinding, f.name) for f in fields(FindingRow)]
    found = conn.execute(select(*finding_cols).where(HostFinding.host_id == row.id).order_by(HostFinding.check))
    return HostDetail(
        row=_host_row(tuple(row)[:-1], lang, moment),
        os_version=extra[0],
        fqdn=extra[1],
        tags=tuple(t for t in (extra[2] or "").split(";") if t),
        clock_skew_s=extra[3],
        first_seen=extra[4],
        last_attempt_at=extra[5],
        products=tuple(ProductRow(*p) for p in products),
        findings=tuple(FindingRow(*f) for f in found),
        signin=extra[6],
        unread_classes=tuple(c for c in (extra[7] or "").split(",") if c),
        last_success_at=extra[8],
        failure_class=extra[9],
        failure_reason=extra[10],
    )


def host_history(conn: Connection, host: str) -> pd.DataFrame:
    rows = conn.execute(
        select(
            StatusHistory.changed_at,
            StatusHistory.license_status,
            StatusHistory.activation_type,
            StatusHistory.error_code,
        )
        .join(Host, Host.id == StatusHistory.host_id)
        .where(Host.name == host)
        .order_by(StatusHistory.changed_at)
    ).all()
    return pd.DataFrame(rows, columns=["changed_at", "license_status", "activation_type", "error_code"])


def code_counts(conn: Connection) -> dict[str, int]:
    """Error code -> hosts reporting it now."""
    rows = conn.execute(
        select(Host.error_code, func.count(Host.id)).where(Host.error_code.is_not(None)).group_by(Host.error_code)
    )
    return {str(code): int(n) for code, n in rows}


@dataclass(frozen=True, slots=True)
class FilterOptions:
    sites: tuple[str, ...]
    os_captions: tuple[str, ...]
    error_codes: tuple[str, ...]
    activation_types: tuple[str, ...] = tuple(t.value for t in ActivationType)


def filter_options(conn: Connection) -> FilterOptions:
    """The values present in the fleet, for filter widgets."""

    def present(column: Any) -> tuple[str, ...]:
        rows = conn.execute(select(column).distinct().where(column.is_not(None)).order_by(column)).scalars()
        return tuple(rows)

    return FilterOptions(present(Host.site), present(Host.os_caption), present(Host.error_code))
