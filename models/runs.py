"""Poll runs: recorded as they start and finish, closed when their collector died, and read back.

A run row says which collector (and shard) ran, how many hosts it tried, and how many it read or lost
by failure class; a run whose process is gone is marked incomplete by the next run of that collector.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, and_, insert, or_, select, update

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


def finish_run(conn: Connection, run_id: int, *, finished_at: datetime, status: RunStatus) -> None:
    conn.execute(update(PollRun).where(PollRun.id == run_id).values(finished_at=finished_at, status=status.value))


def running_run_pids(conn: Connection, *, collector: str) -> set[int]:
    """Process ids of ``collector``'s runs still marked running."""
    stmt = select(PollRun.pid).where(
        PollRun.collector == collector, PollRun.status == RunStatus.RUNNING.value, PollRun.pid.is_not(None)
    )
    return {pid for pid in conn.execute(stmt).scalars() if pid is not None}


def mark_abandoned_runs(conn: Connection, *, collector: str, alive_pids: Iterable[int], now: datetime) -> int:
    """Mark this collector's runs still 'running' whose process is gone as incomplete; returns how many."""
    running = and_(
        PollRun.collector == collector,
        PollRun.status == RunStatus.RUNNING.value,
        or_(PollRun.pid.is_(None), PollRun.pid.not_in(list(alive_pids) or [-1])),
    )
    stmt = update(PollRun).where(running).values(status=RunStatus.INCOMPLETE.value, finished_at=now)
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
