"""The write side: turn collector results into rows with bulk, idempotent statements.

Every write is a Core ``INSERT ... ON CONFLICT`` or an ``UPDATE`` executed for a whole batch, never a query per
row. Writes are guarded by observation time, so writing the same result twice changes nothing and an older
result (a replayed spool, a slower collector) never overwrites a newer one. A ``HostFailure`` records the
attempt only: the host's last known activation state stays, and the query layer shows it as stale.
The caller owns the transaction (``with engine.begin() as conn``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, delete, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from models import summary
from models.bounds import bound_row, clean
from models.enums import FailureClass
from models.hostfacts import NO_KEY_PRODUCT, main_product
from models.records import Finding, HostFailure, HostIdentity, HostObservation, HostResult, ProductState
from models.summary import search_key
from models.tables import (
    AppliedBatch,
    CurrentStatus,
    Host,
    HostFinding,
    KmsHostStat,
    PollRun,
    StatusHistory,
)

CHUNK = 500
T = TypeVar("T")
UpsertInsert = postgresql.Insert | sqlite.Insert


def upsert_insert(conn: Connection, table: Any) -> UpsertInsert:
    """The dialect's INSERT, which knows ON CONFLICT on both SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def upsert_inventory(conn: Connection, targets: Sequence[HostIdentity], *, now: datetime) -> None:
    """Create or refresh hosts from the inventory (address, site, tags); activation state is untouched."""
    rows = [
        {
            "name": t.name,
            "port": t.port,
            "scheme": t.scheme,
            "site": t.site,
            "tags": ";".join(t.tags) or None,
            "first_seen": now,
            "search_key": search_key(t.name),
        }
        for t in targets
    ]
    if not rows:
        return
    stmt = upsert_insert(conn, Host)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Host.name],
        set_={c: stmt.excluded[c] for c in ("port", "scheme", "site", "tags")},
    )
    _execute_many(conn, stmt, rows)


def write_results(
    conn: Connection, run_id: int | None, results: Sequence[HostResult], *, batch_id: str | None = None
) -> bool:
    """Write one batch of results; returns False, writing nothing, when ``batch_id`` was already applied."""
    if not results:
        return True
    if batch_id is not None and not _claim_batch(conn, batch_id, run_id):
        return False
    ids = _ensure_hosts(conn, results)
    observations = [r for r in results if isinstance(r, HostObservation)]
    failures = [r for r in results if isinstance(r, HostFailure)]
    if observations:
        _write_observations(conn, run_id, observations, ids)
    if failures:
        _write_failures(conn, run_id, failures, ids)
    if run_id is not None:
        _count(conn, run_id, observations, failures)
    return True


def _claim_batch(conn: Connection, batch_id: str, run_id: int | None) -> bool:
    stmt = upsert_insert(conn, AppliedBatch).values(batch_id=batch_id, run_id=run_id, applied_at=datetime.now(UTC))
    claimed = conn.execute(stmt.on_conflict_do_nothing().returning(AppliedBatch.batch_id))
    return claimed.scalar_one_or_none() is not None


def _ensure_hosts(conn: Connection, results: Sequence[HostResult]) -> dict[str, int]:
    """Map host names to ids, creating hosts the inventory never announced (e.g. a replayed spool)."""
    names = sorted({r.host for r in results})
    first = {r.host: r.observed_at for r in results}
    stmt = upsert_insert(conn, Host).on_conflict_do_nothing(index_elements=[Host.name])
    ids: dict[str, int] = {}
    for chunk in _chunks(names):
        conn.execute(stmt, [{"name": n, "first_seen": first[n], "search_key": search_key(n)} for n in chunk])
        ids.update(conn.execute(select(Host.name, Host.id).where(Host.name.in_(chunk))).all())
    return ids


def _write_failures(conn: Connection, run_id: int | None, failures: Sequence[HostFailure], ids: dict[str, int]) -> None:
    stmt = (
        update(Host)
        .where(Host.id == bindparam("hid"), _not_older(Host.last_attempt_at, bindparam("at")))
        .values(
            last_attempt_at=bindparam("at"),
            last_failure_class=bindparam("fclass"),
            last_failure_reason=bindparam("reason"),
            last_run_id=literal(run_id),
        )
    )
    rows = [
        {"hid": ids[f.host], "at": f.observed_at, "fclass": f.failure_class.value, "reason": clean(f.reason, 500)}
        for f in failures
    ]
    _execute_many(conn, stmt, rows)


def _not_older(column: Any, when: Any) -> Any:
    return or_(column.is_(None), column <= when)


def _execute_many(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """Run ``stmt`` for ``rows`` in chunks, every text value cleaned to its column (``models.bounds``)."""
    table = getattr(stmt, "table", None)
    cleaned = [bound_row(table, row) for row in rows] if table is not None else rows
    for chunk in _chunks(cleaned):
        conn.execute(stmt, list(chunk))


@dataclass(frozen=True, slots=True)
class _Previous:
    status_at: datetime | None
    state: tuple[str | None, str | None, str | None]


def _write_observations(
    conn: Connection, run_id: int | None, observations: Sequence[HostObservation], ids: dict[str, int]
) -> None:
    previous = _previous_states(conn, [ids[o.host] for o in observations])
    newest: dict[str, HostObservation] = {}
    for o in observations:
        if o.host not in newest or newest[o.host].observed_at < o.observed_at:
            newest[o.host] = o
    fresh = [o for o in newest.values() if _is_newer(o.observed_at, previous.get(ids[o.host]))]
    _record_attempts(conn, run_id, observations, ids)
    if fresh:
        _update_host_summaries(conn, fresh, ids)
        _upsert_products(conn, fresh, ids)
        _replace_host_findings(conn, fresh, ids)
        _append_history(conn, fresh, ids, previous)
    _append_kms_stats(conn, observations, ids)


def _previous_states(conn: Connection, host_ids: Sequence[int]) -> dict[int, _Previous]:
    columns = (Host.id, Host.status_observed_at, Host.license_status, Host.activation_type, Host.error_code)
    found: dict[int, _Previous] = {}
    for chunk in _chunks(list(host_ids)):
        for hid, at, status, kind, code in conn.execute(select(*columns).where(Host.id.in_(chunk))):
            found[hid] = _Previous(at, (status, kind, code))
    return found


def _is_newer(when: datetime, previous: _Previous | None) -> bool:
    return previous is None or previous.status_at is None or previous.status_at <= when


def _record_attempts(
    conn: Connection, run_id: int | None, observations: Sequence[HostObservation], ids: dict[str, int]
) -> None:
    stmt = (
        update(Host)
        .where(Host.id == bindparam("hid"), _not_older(Host.last_attempt_at, bindparam("at")))
        .values(
            last_attempt_at=bindparam("at"),
            last_failure_class=None,
            last_failure_reason=None,
            last_run_id=literal(run_id),
        )
    )
    _execute_many(conn, stmt, [{"hid": ids[o.host], "at": o.observed_at} for o in observations])


def _update_host_summaries(conn: Connection, fresh: Sequence[HostObservation], ids: dict[str, int]) -> None:
    """The hosts table's summary of each host; what an unread class gives keeps its last known value."""
    groups: dict[frozenset[str], list[HostObservation]] = {}
    for o in fresh:
        groups.setdefault(summary.unread_kept(o), []).append(o)
    for unread, observations in groups.items():
        stmt = (
            update(Host)
            .where(Host.id == bindparam("hid"), _not_older(Host.status_observed_at, bindparam("at")))
            .values(summary.assignments(unread))
            .values(status_observed_at=bindparam("at"), last_success_at=bindparam("at"))
        )
        _execute_many(conn, stmt, [summary.row(o, ids[o.host]) for o in observations])


def _upsert_products(conn: Connection, fresh: Sequence[HostObservation], ids: dict[str, int]) -> None:
    updatable = [c.name for c in CurrentStatus.__table__.columns if c.name not in ("host_id", "product_id")]
    for events_unread in (False, True):  # without the event log, a product keeps the error code it had
        chosen = [o for o in fresh if ("Win32_NTLogEvent" in o.unread) is events_unread]
        rows = [_product_row(p, ids[o.host], o.observed_at) for o in chosen for p in (o.products or (NO_KEY_PRODUCT,))]
        if not rows:
            continue
        stmt = upsert_insert(conn, CurrentStatus)
        kept = ("error_code", "error_source") if events_unread else ()
        stmt = stmt.on_conflict_do_update(
            index_elements=[CurrentStatus.host_id, CurrentStatus.product_id],
            set_={
                name: func.coalesce(stmt.excluded[name], getattr(CurrentStatus, name)) if name in kept
                else stmt.excluded[name]
                for name in updatable
            },
            where=stmt.excluded.observed_at >= CurrentStatus.observed_at,
        )  # fmt: skip
        _execute_many(conn, stmt, rows)
    gone = delete(CurrentStatus).where(
        CurrentStatus.host_id == bindparam("hid"), CurrentStatus.observed_at < bindparam("at")
    )
    _execute_many(conn, gone, [{"hid": ids[o.host], "at": o.observed_at} for o in fresh])


def _product_row(p: ProductState, hid: int, at: datetime) -> dict[str, Any]:
    return {
        "host_id": hid,
        "product_id": p.product_id,
        "activation_type": p.activation_type.value,
        "license_status": p.license_status.value,
        "error_code": p.error_code,
        "error_source": p.error_source,
        "grace_minutes": p.grace_minutes,
        "partial_key": (p.partial_key or None) and p.partial_key[-5:],
        "product_name": p.name,
        "description": p.description,
        "channel": p.channel,
        "kms_machine": p.kms_machine,
        "kms_port": p.kms_port,
        "discovered_kms_machine": p.discovered_kms_machine,
        "discovered_kms_port": p.discovered_kms_port,
        "renewal_failing": p.renewal_failing,
        "observed_at": at,
    }


def _replace_host_findings(conn: Connection, fresh: Sequence[HostObservation], ids: dict[str, int]) -> None:
    gone = delete(HostFinding).where(
        HostFinding.host_id == bindparam("hid"), HostFinding.observed_at <= bindparam("at")
    )
    _execute_many(conn, gone, [{"hid": ids[o.host], "at": o.observed_at} for o in fresh])
    _upsert_findings(conn, [(ids[o.host], f, o.observed_at) for o in fresh for f in o.findings])


def _upsert_findings(conn: Connection, items: Iterable[tuple[int, Finding, datetime]]) -> None:
    rows = [
        {
            "host_id": hid,
            "check": f.check,
            "severity": f.severity.value,
            "summary": f.summary,
            "related_code": f.related_code,
            "evidence": dict(f.evidence),
            "observed_at": at,
        }
        for hid, f, at in items
    ]
    if not rows:
        return
    stmt = upsert_insert(conn, HostFinding)
    stmt = stmt.on_conflict_do_update(
        index_elements=[HostFinding.host_id, HostFinding.check],
        set_={name: stmt.excluded[name] for name in ("severity", "summary", "related_code", "evidence", "observed_at")},
        where=stmt.excluded.observed_at >= HostFinding.observed_at,
    )
    _execute_many(conn, stmt, rows)


def replace_findings(conn: Connection, findings: Mapping[str, Sequence[Finding]], *, observed_at: datetime) -> None:
    """Set the named hosts' verdicts for the checks given (other checks stay), e.g. after a post-run check."""
    names = list(findings)
    ids: dict[str, int] = {}
    for chunk in _chunks(names):
        ids.update(conn.execute(select(Host.name, Host.id).where(Host.name.in_(chunk))).all())
    _upsert_findings(conn, [(ids[n], f, observed_at) for n in names if n in ids for f in findings[n]])


def set_kms_hosts(conn: Connection, resolved: Mapping[str, int | None]) -> None:
    """Record, for each named client, the id of the machine its KMS name resolves to (None: no machine)."""
    stmt = update(Host).where(Host.name == bindparam("client")).values(kms_host_id=bindparam("kms_id"))
    _execute_many(conn, stmt, [{"client": name, "kms_id": kms_id} for name, kms_id in resolved.items()])


def _append_history(
    conn: Connection, fresh: Sequence[HostObservation], ids: dict[str, int], previous: Mapping[int, _Previous]
) -> None:
    rows = []
    for o in fresh:
        main = main_product(o.products)
        before = previous.get(ids[o.host])
        code = main.error_code
        if code is None and "Win32_NTLogEvent" in o.unread and before is not None:
            code = before.state[2]  # the event log was not read: the code it gave is still the best known
        state = (main.license_status.value, main.activation_type.value, code)
        if before is None or before.status_at is None or (before.state != state and before.status_at < o.observed_at):
            rows.append(
                {
                    "host_id": ids[o.host],
                    "changed_at": o.observed_at,
                    "license_status": state[0],
                    "activation_type": state[1],
                    "error_code": state[2],
                }
            )
    if rows:
        _execute_many(conn, upsert_insert(conn, StatusHistory).on_conflict_do_nothing(), rows)


def _append_kms_stats(conn: Connection, observations: Sequence[HostObservation], ids: dict[str, int]) -> None:
    rows = [
        {
            "host_id": ids[o.host],
            "observed_at": o.observed_at,
            "current_count": o.kms.current_count,
            "total_requests": o.kms.total_requests,
            "failed_requests": o.kms.failed_requests,
            "licensed_requests": o.kms.licensed_requests,
            "non_genuine_requests": o.kms.non_genuine_requests,
            "listening_port": o.kms.listening_port,
            "dns_publishing": o.kms.dns_publishing,
            "listening": o.kms.listening,
        }
        for o in observations
        if o.kms is not None
    ]
    if rows:
        _execute_many(conn, upsert_insert(conn, KmsHostStat).on_conflict_do_nothing(), rows)


def _count(
    conn: Connection, run_id: int, observations: Sequence[HostObservation], failures: Sequence[HostFailure]
) -> None:
    increments: dict[str, Any] = {"succeeded": PollRun.succeeded + len(observations)}
    for fclass in FailureClass:
        n = sum(1 for f in failures if f.failure_class is fclass)
        if n:
            column = getattr(PollRun, f"failed_{fclass.value}")
            increments[f"failed_{fclass.value}"] = column + n
    conn.execute(update(PollRun).where(PollRun.id == run_id).values(increments))
