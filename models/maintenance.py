"""Keeping the fleet's tables tidy: the daily rollup behind the trend chart, the memory of applied batches,
and removing a tagged group of hosts (the demo fleet) with everything recorded about them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, literal, select, true

from models.store import upsert_insert
from models.tables import AppliedBatch, DailyRollup, Host

ROLLUP_LOCK = 0x41_4D_52_4F  # pg_advisory_xact_lock key serialising rollups across collectors
BATCH_MEMORY = timedelta(days=30)


def refresh_rollup(conn: Connection, day: date) -> None:
    """Record the fleet as it stands now as ``day``'s rollup (status x type x code x poll failure -> hosts).

    Call it with today's date at the end of a run; a later run the same day replaces the figures. Shards that
    finish together take turns, so their delete-then-insert pairs never interleave.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(ROLLUP_LOCK)))
    conn.execute(delete(AppliedBatch).where(AppliedBatch.applied_at < datetime.now(UTC) - BATCH_MEMORY))
    conn.execute(delete(DailyRollup).where(DailyRollup.day == day))
    counted = select(
        literal(day).label("day"),
        func.coalesce(Host.license_status, "").label("license_status"),
        func.coalesce(Host.activation_type, "").label("activation_type"),
        func.coalesce(Host.error_code, "").label("error_code"),
        func.coalesce(Host.last_failure_class, "").label("failure_class"),
        func.count().label("host_count"),
    ).group_by(Host.license_status, Host.activation_type, Host.error_code, Host.last_failure_class)
    columns = ["day", "license_status", "activation_type", "error_code", "failure_class", "host_count"]
    conn.execute(upsert_insert(conn, DailyRollup).from_select(columns, counted))


def _tagged(tag: str) -> Any:
    """Hosts whose ``;``-joined tags include ``tag``."""
    return (literal(";") + func.coalesce(Host.tags, "") + literal(";")).contains(f";{tag};", autoescape=True)


def count_tagged(conn: Connection, tag: str) -> int:
    return int(conn.execute(select(func.count()).select_from(Host).where(_tagged(tag))).scalar_one())


def remove_tagged(conn: Connection, tag: str, *, keep: Iterable[str]) -> int:
    """Delete the hosts tagged ``tag`` whose name is not in ``keep`` (their rows in other tables go with them)."""
    kept = list(keep)
    stmt = delete(Host).where(_tagged(tag), Host.name.not_in(kept) if kept else true())
    return len(conn.execute(stmt.returning(Host.id)).all())
