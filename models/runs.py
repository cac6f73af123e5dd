"""Poll runs: recorded as they start and finish, closed when their collector died, and read back.

A run row says which collector (and shard) ran, how many hosts it tried, and how many it read or lost
by failure class; a run whose process is gone is marked incomplete by the next run of that collector.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, insert, select, update

from models.enums import RunStatus
from models.tables import PollRun


def start_run(
    conn: Connection,
    *,
    collector: str,
    shard: str | None,
    hosts_total: int,
    started_at: datetime,
    pid: int | None = None,
) -> int:
    """Record a new poll run as running and return its id."""
    stmt = insert(PollRun).values(
        started_at=started_at,
        collector=collector,
        shard=shard,
        status=RunStatus.RUNNING.value,
        hosts_total=hosts_total,
        pid=pid,
    )
    return int(conn.execute(stmt.returning(PollRun.id)).scalar_one())


def finish_run(conn: Connection, run_id: int, *, finished_at: datetime, status: RunStatus, set_aside: int = 0) -> None:
    """Close a run: when, how it ended, and how many results the database refused (set aside)."""
    values = {"finished_at": finished_at, "status": status.value, "set_aside": set_aside}
    conn.execute(update(PollRun).where(PollRun.id == run_id).values(values))


def running_runs(conn: Connection, *, collector: str) -> dict[int, int | None]:
    """``collector``'s runs still marked running: run id -> the process id that runs it (if recorded)."""
    stmt = select(PollRun.id, PollRun.pid).where(
        PollRun.collector == collector, PollRun.status == RunStatus.RUNNING.value
    )
    return {run_id: pid for run_id, pid in conn.execute(stmt).all()}


def mark_incomplete(conn: Connection, run_ids: Iterable[int], *, now: datetime) -> int:
    """Mark exactly these runs, if still running, as incomplete; returns how many.

    By id, in one statement: a run started after its caller looked (by a collector that is alive) can
    never be caught by it.
    """
    ids = list(run_ids)
    if not ids:
        return 0
    stmt = (
        update(PollRun)
        .where(PollRun.id.in_(ids), PollRun.status == RunStatus.RUNNING.value)
        .values(status=RunStatus.INCOMPLETE.value, finished_at=now)
    )
    return len(conn.execute(stmt.returning(PollRun.id)).all())


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    started_at: datetime
    finished_at: datetime | None
    collector: str
    shard: str | None
    status: str
    hosts_total: int
    succeeded: int
    failed_dns: int
    failed_refused: int
    failed_timeout: int
    failed_auth: int
    failed_tls: int
    failed_protocol: int
    set_aside: int = 0  # results the database refused (kept in the collector's spool)

    @property
    def duration_s(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None

    @property
    def failed(self) -> int:
        return (
            self.failed_dns
            + self.failed_refused
            + self.failed_timeout
            + self.failed_auth
            + self.failed_tls
            + (self.failed_protocol)
        )


_RUN_COLUMNS = [getattr(PollRun, f.name) for f in fields(RunRow)]


def last_completed_run(conn: Connection) -> RunRow | None:
    row = conn.execute(
        select(*_RUN_COLUMNS)
        .where(PollRun.status == RunStatus.COMPLETE.value)
        .order_by(PollRun.finished_at.desc())
        .limit(1)
    ).one_or_none()
    return RunRow(*row) if row else None


def poll_runs(conn: Connection, *, limit: int = 50) -> pd.DataFrame:
    """Recent runs, newest first, with duration and failures by class."""
    runs = [RunRow(*r) for r in conn.execute(select(*_RUN_COLUMNS).order_by(PollRun.started_at.desc()).limit(limit))]
    frame = pd.DataFrame([asdict(r) for r in runs], columns=[f.name for f in fields(RunRow)])
    frame.insert(3, "duration_s", [r.duration_s for r in runs])
    frame["failed"] = [r.failed for r in runs]
    return frame
