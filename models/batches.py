"""Queued poll runs across workers: claiming a schedule slot, a run's batches, the workers, and reading them back.

A queued run is a ``poll_runs`` row plus a ``queue_runs`` row naming its schedule slot (``run_key``, unique) and
deadline, and one ``poll_batches`` row per batch of hosts. A batch's results are written under its
``batch_key`` (``models.store`` remembers applied keys), so whichever attempt writes them, they count once. A run
is complete when every batch is done, incomplete when one could not be or its deadline passed first.
The queue's own tables (``procrastinate_*``, PostgreSQL only) are read here for the queue depth; they are
not ORM tables and Alembic's comparison leaves them out (``models.base.include_name``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy import (
    Connection,
    Integer,
    Text,
    and_,
    case,
    cast,
    column,
    delete,
    func,
    insert,
    literal,
    select,
    table,
    update,
)
from sqlalchemy.dialects import postgresql

from models import runs
from models.enums import FailureClass, RunStatus
from models.store import upsert_insert
from models.tables import AppliedBatch, Host, PollBatch, PollRun, QueueRun, QueueWorker

QUEUE_JOBS = table(
    "procrastinate_jobs",
    column("queue_name"),
    column("status"),
    column("task_name"),
    column("args", postgresql.JSONB),
)


class BatchStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    INCOMPLETE = "incomplete"  # the run's deadline, or a stop, cut it short
    FAILED = "failed"  # its job failed with an error


FINISHED = (BatchStatus.DONE, BatchStatus.INCOMPLETE, BatchStatus.FAILED)


class BatchPlan(NamedTuple):
    """One batch as the scheduler plans it: its number in the run, queue, site and how many hosts."""

    batch_no: int
    queue: str
    site: str | None
    hosts: int


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """What one batch read: hosts answered, failures by class, results the database refused."""

    succeeded: int = 0
    failures: Mapping[str, int] = field(default_factory=dict)
    set_aside: int = 0

    @property
    def polled(self) -> int:
        return self.succeeded + sum(self.failures.values())

    def values(self) -> dict[str, int]:
        row = {"succeeded": self.succeeded, "set_aside": self.set_aside}
        row.update({f"failed_{c.value}": int(self.failures.get(c.value, 0)) for c in FailureClass})
        return row


def batch_key(run_id: int, batch_no: int) -> str:
    """The id a batch's results are written under, the same for every attempt at it."""
    return f"queue-{run_id}-{batch_no}"


# --- scheduling ------------------------------------------------------------------------------------


def claim_run(
    conn: Connection,
    *,
    run_key: str,
    slot_at: datetime,
    every_s: int,
    collector: str,
    scheduler: str,
    batches: Sequence[BatchPlan],
    started_at: datetime,
    deadline_at: datetime,
) -> int | None:
    """Record the run of ``run_key`` with its batches and return its id; ``None`` when the slot is taken.

    Two schedulers claiming one slot at once: the second waits on the unique key until the first commits,
    then finds it taken and writes nothing.
    """
    with conn.begin_nested() as savepoint:
        run_id = runs.start_run(
            conn, collector=collector, shard=None, hosts_total=sum(b.hosts for b in batches), started_at=started_at
        )
        claim = upsert_insert(conn, QueueRun).values(
            run_id=run_id, run_key=run_key, slot_at=slot_at, every_s=every_s, batches=len(batches),
            deadline_at=deadline_at, scheduler=scheduler,
        )  # fmt: skip
        if conn.execute(claim.on_conflict_do_nothing().returning(QueueRun.run_id)).scalar_one_or_none() is None:
            savepoint.rollback()
            return None
    rows = [
        {"run_id": run_id, "batch_no": b.batch_no, "batch_key": batch_key(run_id, b.batch_no), "queue": b.queue,
         "site": b.site, "hosts": b.hosts, "status": BatchStatus.QUEUED.value}
        for b in batches
    ]  # fmt: skip
    if rows:
        conn.execute(insert(PollBatch), rows)
    return run_id


def run_for_key(conn: Connection, run_key: str) -> int | None:
    return conn.execute(select(QueueRun.run_id).where(QueueRun.run_key == run_key)).scalar_one_or_none()


class RunGate(NamedTuple):
    """What a batch needs to know of its run before polling: is it still running, and until when."""

    status: str
    deadline_at: datetime


def run_gate(conn: Connection, run_id: int) -> RunGate | None:
    stmt = select(PollRun.status, QueueRun.deadline_at).join(QueueRun, QueueRun.run_id == PollRun.id)
    row = conn.execute(stmt.where(PollRun.id == run_id)).one_or_none()
    return RunGate(row.status, row.deadline_at) if row else None


# --- batches ---------------------------------------------------------------------------------------


def _batch(run_id: int, batch_no: int) -> Any:
    return (PollBatch.run_id == run_id) & (PollBatch.batch_no == batch_no)


def start_batch(conn: Connection, run_id: int, batch_no: int, *, worker: str, now: datetime) -> None:
    """The batch is being polled by ``worker`` (again, after a retry: its attempt count grows)."""
    values = {"status": BatchStatus.RUNNING.value, "worker": worker, "started_at": now, "finished_at": None,
              "attempts": PollBatch.attempts + 1}  # fmt: skip
    conn.execute(update(PollBatch).where(_batch(run_id, batch_no)).values(values))


def finish_batch(
    conn: Connection, run_id: int, batch_no: int, *, status: BatchStatus, counts: BatchCounts, now: datetime
) -> None:
    values: dict[str, Any] = {"status": status.value, "finished_at": now, **counts.values()}
    conn.execute(update(PollBatch).where(_batch(run_id, batch_no)).values(values))


def batch_status(conn: Connection, run_id: int, batch_no: int) -> BatchStatus | None:
    found = conn.execute(select(PollBatch.status).where(_batch(run_id, batch_no))).scalar_one_or_none()
    return BatchStatus(found) if found is not None else None


def requeue_batch(conn: Connection, run_id: int, batch_no: int) -> None:
    """The batch went back to the queue (its worker stopped): waiting again, for the next worker."""
    running = _batch(run_id, batch_no) & (PollBatch.status == BatchStatus.RUNNING.value)
    conn.execute(update(PollBatch).where(running).values(status=BatchStatus.QUEUED.value))


class MovedBatch(NamedTuple):
    """Hosts split off a batch into a new one of the same run and queue."""

    batch_no: int
    queue: str
    run_key: str


def split_batch(conn: Connection, run_id: int, batch_no: int, *, hosts: int) -> MovedBatch:
    """Move ``hosts`` of a batch into a new queued batch of its run, numbered after the last (the run's row is
    locked meanwhile, so two batches splitting at once get different numbers)."""
    bump = update(QueueRun).where(QueueRun.run_id == run_id).values(batches=QueueRun.batches + 1)
    new_no, key = conn.execute(bump.returning(QueueRun.batches, QueueRun.run_key)).one()
    source = conn.execute(select(PollBatch.queue, PollBatch.site).where(_batch(run_id, batch_no))).one()
    conn.execute(update(PollBatch).where(_batch(run_id, batch_no)).values(hosts=PollBatch.hosts - hosts))
    row = {"run_id": run_id, "batch_no": new_no, "batch_key": batch_key(run_id, new_no), "queue": source.queue,
           "site": source.site, "hosts": hosts, "status": BatchStatus.QUEUED.value}  # fmt: skip
    conn.execute(insert(PollBatch).values(row))
    return MovedBatch(int(new_no), source.queue, str(key))


def fail_batches_of_failed_jobs(conn: Connection, *, task_name: str, now: datetime) -> int:
    """Mark failed the unfinished batches whose job failed for good (an error not worth a retry, or out of
    retries), so their run can end; returns how many. PostgreSQL only."""
    if conn.dialect.name != "postgresql" or not _has_queue_tables(conn):
        return 0
    args = QUEUE_JOBS.c.args
    failed = select(literal(1)).where(
        QUEUE_JOBS.c.task_name == task_name,
        cast(QUEUE_JOBS.c.status, Text) == "failed",
        args["run_id"].astext.cast(Integer) == PollBatch.run_id,
        args["batch_no"].astext.cast(Integer) == PollBatch.batch_no,
    )
    unfinished = and_(PollBatch.status.not_in([s.value for s in FINISHED]), failed.exists())
    stmt = update(PollBatch).where(unfinished).values(status=BatchStatus.FAILED.value, finished_at=now)
    return int(conn.execute(stmt).rowcount or 0)


def site_queues(conn: Connection, *, task_name: str) -> list[str]:
    """The queues batches go to: those of recorded batches and of queued batch jobs (``task_name``), sorted."""
    found = set(conn.execute(select(PollBatch.queue).distinct()).scalars())
    if conn.dialect.name == "postgresql" and _has_queue_tables(conn):
        jobs = select(QUEUE_JOBS.c.queue_name).where(QUEUE_JOBS.c.task_name == task_name).distinct()
        found.update(conn.execute(jobs).scalars())
    return sorted(found)


def is_applied(conn: Connection, key: str) -> bool:
    """Whether results were written under ``key`` (by any attempt, or a spool replay)."""
    return conn.execute(select(AppliedBatch.batch_id).where(AppliedBatch.batch_id == key)).first() is not None


def stored_counts(conn: Connection, run_id: int, names: Sequence[str]) -> BatchCounts:
    """What the database holds of this run for ``names``: for a batch written by an attempt that then died."""
    stmt = (
        select(Host.last_failure_class, func.count())
        .where(Host.name.in_(list(names)), Host.last_run_id == run_id)
        .group_by(Host.last_failure_class)
    )
    found = {fclass: int(n) for fclass, n in conn.execute(stmt).all()}
    succeeded = found.pop(None, 0)
    return BatchCounts(succeeded, {str(k): v for k, v in found.items()})


def close_run_if_finished(conn: Connection, run_id: int, *, now: datetime) -> RunStatus | None:
    """Close the run once every batch is finished: complete if all are done; None if open batches remain or
    another worker closed it first."""
    done = func.sum(case((PollBatch.status == BatchStatus.DONE.value, 1), else_=0))
    finished = func.sum(case((PollBatch.status.in_([s.value for s in FINISHED]), 1), else_=0))
    stmt = select(func.count(), done, finished, func.coalesce(func.sum(PollBatch.set_aside), 0))
    total, n_done, n_finished, set_aside = conn.execute(stmt.where(PollBatch.run_id == run_id)).one()
    if n_finished != total:
        return None
    status = RunStatus.COMPLETE if n_done == total else RunStatus.INCOMPLETE
    return status if _close(conn, [run_id], status, now, set_aside=int(set_aside)) else None


def _close(conn: Connection, run_ids: Sequence[int], status: RunStatus, now: datetime, set_aside: int = 0) -> list[int]:
    stmt = (
        update(PollRun)
        .where(PollRun.id.in_(list(run_ids)), PollRun.status == RunStatus.RUNNING.value)
        .values(status=status.value, finished_at=now, set_aside=set_aside)
    )
    return [int(r) for r in conn.execute(stmt.returning(PollRun.id)).scalars()]


def runs_awaiting_close(conn: Connection) -> list[int]:
    """Queued runs still marked running although every batch finished (their closer was cut off)."""
    unfinished = select(PollBatch.run_id).where(PollBatch.status.not_in([s.value for s in FINISHED]))
    stmt = select(QueueRun.run_id).join(PollRun, PollRun.id == QueueRun.run_id)
    stmt = stmt.where(PollRun.status == RunStatus.RUNNING.value, QueueRun.run_id.not_in(unfinished))
    return [int(r) for r in conn.execute(stmt).scalars()]


def close_overdue_runs(conn: Connection, *, now: datetime) -> list[int]:
    """Mark queued runs past their deadline incomplete (their batches not started with them); returns their ids."""
    overdue = select(QueueRun.run_id).join(PollRun, PollRun.id == QueueRun.run_id)
    overdue = overdue.where(QueueRun.deadline_at < now, PollRun.status == RunStatus.RUNNING.value)
    ids = [int(r) for r in conn.execute(overdue).scalars()]
    if not ids:
        return []
    closed = _close(conn, ids, RunStatus.INCOMPLETE, now)
    queued = (PollBatch.run_id.in_(closed)) & (PollBatch.status == BatchStatus.QUEUED.value)
    conn.execute(update(PollBatch).where(queued).values(status=BatchStatus.INCOMPLETE.value, finished_at=now))
    return closed


def forget_batches(conn: Connection, *, finished_before: datetime) -> int:
    """Drop batches finished before ``finished_before``; their run keeps its totals in ``poll_runs``."""
    stmt = delete(PollBatch).where(PollBatch.finished_at < finished_before)
    return int(conn.execute(stmt).rowcount or 0)


# --- workers ---------------------------------------------------------------------------------------


def register_worker(
    conn: Connection, name: str, *, queues: Iterable[str] | None, concurrency: int, now: datetime
) -> None:
    """A worker process starts (a restarted one under a reused name starts afresh)."""
    row = {"name": name, "queues": ",".join(queues) if queues else "*", "concurrency": concurrency,
           "started_at": now, "last_heartbeat": now, "stopped_at": None, "batches_done": 0,
           "hosts_polled": 0}  # fmt: skip
    stmt = upsert_insert(conn, QueueWorker).values(row)
    conn.execute(stmt.on_conflict_do_update(index_elements=[QueueWorker.name], set_=row))


def worker_heartbeat(conn: Connection, name: str, *, now: datetime, batches_done: int, hosts_polled: int) -> None:
    values = {"last_heartbeat": now, "batches_done": batches_done, "hosts_polled": hosts_polled}
    conn.execute(update(QueueWorker).where(QueueWorker.name == name).values(values))


def worker_stopped(conn: Connection, name: str, *, now: datetime) -> None:
    conn.execute(update(QueueWorker).where(QueueWorker.name == name).values(stopped_at=now, last_heartbeat=now))


def forget_workers(conn: Connection, *, silent_since: datetime) -> int:
    """Drop workers not heard from since ``silent_since`` (stopped or dead long ago)."""
    stmt = delete(QueueWorker).where(QueueWorker.last_heartbeat < silent_since)
    return int(conn.execute(stmt).rowcount or 0)


# --- reading back (dashboard) ----------------------------------------------------------------------


def queue_workers(conn: Connection, *, now: datetime, stall_s: float, limit: int = 100) -> pd.DataFrame:
    """Workers, most recently heard from first: seconds since their heartbeat, and their state: ``alive``,
    ``silent`` (no heartbeat for ``stall_s``: killed or cut off, its batches go to others) or ``stopped``."""
    columns = ("name", "queues", "concurrency", "started_at", "last_heartbeat", "stopped_at", "batches_done",
               "hosts_polled")  # fmt: skip
    stmt = select(*(getattr(QueueWorker, c) for c in columns)).order_by(QueueWorker.last_heartbeat.desc()).limit(limit)
    frame = pd.DataFrame(conn.execute(stmt).all(), columns=list(columns))
    ages = [(now - at).total_seconds() for at in frame["last_heartbeat"]]
    frame.insert(5, "heartbeat_age_s", ages)
    frame.insert(
        1,
        "state",
        [_worker_state(stopped, age, stall_s) for stopped, age in zip(frame["stopped_at"], ages, strict=True)],
    )
    return frame


def _worker_state(stopped_at: Any, age_s: float, stall_s: float) -> str:
    if stopped_at is not None and not pd.isna(stopped_at):
        return "stopped"
    return "silent" if age_s > stall_s else "alive"


def queue_depth(conn: Connection) -> pd.DataFrame:
    """Jobs waiting (``todo``) and being polled (``doing``) per queue, with the site it serves; PostgreSQL only."""
    columns = ["queue", "site", "todo", "doing"]
    if conn.dialect.name != "postgresql" or not _has_queue_tables(conn):
        return pd.DataFrame(columns=columns)
    status = cast(QUEUE_JOBS.c.status, Text)  # an enum of procrastinate's, compared as text
    counts = (
        select(
            QUEUE_JOBS.c.queue_name,
            func.count().filter(status == "todo"),
            func.count().filter(status == "doing"),
        )
        .where(status.in_(["todo", "doing"]))
        .group_by(QUEUE_JOBS.c.queue_name)
        .order_by(QUEUE_JOBS.c.queue_name)
    )
    sites = dict(conn.execute(select(PollBatch.queue, func.max(PollBatch.site)).group_by(PollBatch.queue)).all())
    found = conn.execute(counts).all()  # the queue's own upkeep jobs are not a site's: only queues batches use
    rows = [(queue, sites[queue], int(todo), int(doing)) for queue, todo, doing in found if queue in sites]
    return pd.DataFrame(rows, columns=columns)


def _has_queue_tables(conn: Connection) -> bool:
    found = conn.execute(select(func.to_regclass(literal("procrastinate_jobs", postgresql.TEXT)))).scalar()
    return found is not None


def queued_runs(conn: Connection, *, limit: int = 10) -> pd.DataFrame:
    """Recent queued runs, newest first: batches by status, hosts planned and polled, workers that took part."""

    def by(status: BatchStatus) -> Any:
        return func.sum(case((PollBatch.status == status.value, 1), else_=0)).label(status.value)

    done_hosts = func.sum(case((PollBatch.status.in_([s.value for s in FINISHED]), PollBatch.hosts), else_=0))
    stmt = (
        select(
            PollRun.id.label("run_id"), PollRun.started_at, PollRun.status, QueueRun.deadline_at,
            func.count(PollBatch.id).label("batches"), *(by(s) for s in BatchStatus),
            func.coalesce(func.sum(PollBatch.hosts), 0).label("hosts"),
            func.coalesce(done_hosts, 0).label("hosts_done"),
            func.count(func.distinct(PollBatch.worker)).label("workers"),
        )
        .join(QueueRun, QueueRun.run_id == PollRun.id)
        .outerjoin(PollBatch, PollBatch.run_id == PollRun.id)
        .group_by(PollRun.id, PollRun.started_at, PollRun.status, QueueRun.deadline_at)
        .order_by(PollRun.started_at.desc())
        .limit(limit)
    )  # fmt: skip
    result = conn.execute(stmt)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    frame["progress"] = [
        done / hosts if hosts else 0.0 for done, hosts in zip(frame["hosts_done"], frame["hosts"], strict=True)
    ]
    return frame


def hosts_per_worker(conn: Connection, *, runs_shown: int = 10) -> pd.DataFrame:
    """For the recent queued runs: each worker's finished batches and hosts, and how many of those failed."""
    recent = select(QueueRun.run_id).order_by(QueueRun.run_id.desc()).limit(runs_shown).scalar_subquery()
    failed = sum((getattr(PollBatch, f"failed_{c.value}") for c in FailureClass), start=literal(0))
    stmt = (
        select(
            PollBatch.run_id, PollBatch.worker, func.count().label("batches"),
            func.sum(PollBatch.succeeded + failed).label("hosts"), func.sum(failed).label("failed"),
        )
        .where(PollBatch.run_id.in_(recent), PollBatch.status.in_([s.value for s in FINISHED]))
        .group_by(PollBatch.run_id, PollBatch.worker)
        .order_by(PollBatch.run_id.desc(), PollBatch.worker)
    )  # fmt: skip
    result = conn.execute(stmt)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def has_queue_data(conn: Connection) -> bool:
    """Whether any queued run or queue worker was ever recorded: the dashboard shows the queue only then."""
    return bool(
        conn.execute(select(QueueRun.run_id).limit(1)).first()
        or conn.execute(select(QueueWorker.name).limit(1)).first()
    )
