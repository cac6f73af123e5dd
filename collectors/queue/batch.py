"""One queued batch, as a worker polls it: the poller's own parts (``collectors.run``) driven for its hosts.

Hosts go through ``ThreadDispatcher`` and ``safe_poll`` exactly as in ``python -m collectors poll``, each under
its host lock (``collectors.queue.locks``), and are counted by a ``RunState``. The results are written once, at
the end, under the batch's key: in one transaction, or, when the database is away or refuses some, through the
batch's own spool folder and ``ResultWriter.replay`` (which sets aside what is refused and waits out an
outage). Whichever attempt at a batch writes it, and however often a spooled copy is replayed, its hosts
count once in the run.

A stop (SIGTERM) lets the hosts in flight finish, then gives the batch back to the queue
(``BatchInterrupted``): its results so far are dropped and another worker polls it whole. The run's deadline
instead ends the batch with what it has, marked incomplete. Hosts another worker's lock kept busy past the
wait are not polled and not counted as failures: they go back to the queue as a new batch of the run, tried
after the stall timeout, by when a frozen or vanished holder has lost its session and its locks.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from collectors.inventory import Target
from collectors.queue import accounting
from collectors.queue.app import batch_job, make_app, target_of
from collectors.queue.locks import HostLocks, locked_targets
from collectors.queue.runtime import WorkerRuntime
from collectors.run import ResultWriter, RunState, RunSummary
from collectors.run.dispatch import ThreadDispatcher
from collectors.run.writer import db_reason
from collectors.spool import Spool, SpooledBatch
from models import batches, store
from models.batches import FINISHED, BatchCounts, BatchStatus
from models.enums import RunStatus
from models.records import HostResult

log = logging.getLogger("collectors")

WAIT_TICK_S = 1.0  # how often a batch whose results wait in the spool tries the database


class BatchInterrupted(Exception):
    """The worker is stopping: the batch goes back to the queue and is polled again, whole, by another worker."""


@dataclass(frozen=True, slots=True)
class Outcome:
    results: list[HostResult]
    summary: RunSummary
    stopped_by: str | None  # None, "stop" or "run deadline"
    busy: tuple[Target, ...] = ()  # locked by another worker past the wait: not polled


def poll_batch(
    rt: WorkerRuntime,
    run_id: int,
    batch_no: int,
    hosts: Sequence[Mapping[str, Any]],
    *,
    should_abort: Callable[[], bool] = lambda: False,
) -> str:
    """Poll and store one batch of run ``run_id``; returns what happened, in words, for procrastinate's log.

    Raises ``BatchInterrupted`` when stopped, and ``SQLAlchemyError`` when the database fails before the
    results are spooled; either way the job is tried again and nothing is counted twice.
    """
    key = batches.batch_key(run_id, batch_no)
    targets = [target_of(ref) for ref in hosts]
    now = rt.context.now()
    with rt.engine.begin() as conn:
        gate = batches.run_gate(conn, run_id)
        status = batches.batch_status(conn, run_id, batch_no)
        if gate is None or status is None:
            return f"run {run_id} no longer exists"
        if status in FINISHED:  # a job tried again after its batch was settled
            return f"batch {batch_no} of run {run_id} is {status.value} already"
        if batches.is_applied(conn, key):  # an earlier attempt wrote it, then died before saying so
            counts = batches.stored_counts(conn, run_id, [t.host for t in targets])
            batches.start_batch(conn, run_id, batch_no, worker=rt.name, now=now)
            batches.finish_batch(conn, run_id, batch_no, status=BatchStatus.DONE, counts=counts, now=now)
        elif gate.status != RunStatus.RUNNING.value or gate.deadline_at <= now:
            batches.finish_batch(conn, run_id, batch_no, status=BatchStatus.INCOMPLETE, counts=BatchCounts(), now=now)
            return f"run {run_id} had ended ({gate.status}); batch {batch_no} not polled"
        else:
            batches.start_batch(conn, run_id, batch_no, worker=rt.name, now=now)
            counts = None
    if counts is not None:
        accounting.batch_finished(rt, run_id)
        return f"batch {batch_no} of run {run_id} was written by an earlier attempt"
    rt.begin(key)
    polled: int | None = None
    try:
        outcome = drive(rt, targets, deadline=gate.deadline_at, should_abort=should_abort)
        if outcome.stopped_by == "stop":
            _give_back(rt, run_id, batch_no)
            raise BatchInterrupted(f"batch {batch_no} of run {run_id}: worker stopping")
        set_aside = deliver(rt, run_id, key, outcome)
        summary = outcome.summary
        counts = BatchCounts(summary.succeeded, dict(summary.failures), set_aside)
        status = BatchStatus.DONE if outcome.stopped_by is None else BatchStatus.INCOMPLETE
        with rt.engine.begin() as conn:
            if outcome.busy:
                requeue_busy(rt, conn, run_id, key, batch_no, outcome.busy)
            batches.finish_batch(conn, run_id, batch_no, status=status, counts=counts, now=rt.context.now())
        polled = len(outcome.results)
    finally:
        rt.end(key, hosts=polled)
    accounting.batch_finished(rt, run_id)
    return f"batch {batch_no} of run {run_id}: {counts.polled} hosts, {counts.succeeded} read, {status.value}"


def drive(
    rt: WorkerRuntime, targets: Sequence[Target], *, deadline: datetime, should_abort: Callable[[], bool]
) -> Outcome:
    """Poll ``targets`` with the poller's threads until all are done, the worker stops or the run's deadline."""
    ctx = replace(rt.context, credentials=rt.credentials_for({t.credential for t in targets}))
    summary = RunSummary(hosts_total=len(targets))
    state = RunState(ctx, summary, started=ctx.monotonic())
    locks = HostLocks(rt.lock_engine)
    halt = threading.Event()
    busy: list[Target] = []
    feed = locked_targets(
        targets, locks, busy_wait_s=2 * ctx.host_timeout_s + 5, stopped=halt.is_set, gave_up=busy.append
    )
    dispatcher = ThreadDispatcher(feed, ctx, max(1, min(rt.threads, len(targets))))
    stopped_by: str | None = None
    dispatcher.start()
    running = dispatcher.workers
    try:
        while running:
            if stopped_by is None and (rt.stop.is_set() or should_abort() or ctx.now() >= deadline):
                stopped_by = "run deadline" if not (rt.stop.is_set() or should_abort()) else "stop"
                halt.set()
                dispatcher.request_stop()  # hosts in flight finish (each within its own deadline)
            for item in dispatcher.items(0.2):
                if item is None:
                    running -= 1
                else:
                    locks.release(item.host)
                    state.accept(item)
    finally:
        dispatcher.close()
        locks.close()
    return Outcome(state.take_pending(), summary, stopped_by, tuple(busy))


def requeue_busy(
    rt: WorkerRuntime, conn: Connection, run_id: int, key: str, batch_no: int, busy: Sequence[Target]
) -> None:
    """Put ``busy`` back in the queue as a new batch of the run, due after the stall timeout, in the
    transaction that finishes their batch (so the run cannot close in between)."""
    moved = batches.split_batch(conn, run_id, batch_no, hosts=len(busy))
    due = rt.context.now() + timedelta(seconds=rt.settings.queue_stall_s)
    job = batch_job(run_id, moved.run_key, moved.batch_no, moved.queue, busy, scheduled_at=due)
    make_app(rt.settings.database_url).job_manager.batch_defer_jobs([job], connection=conn.connection.driver_connection)
    names = ", ".join(t.host for t in busy[:5]) + (f" and {len(busy) - 5} more" if len(busy) > 5 else "")
    log.warning(
        "%s: %d host(s) still locked by another worker (%s), not polled: queued again as batch %d, due in %.0f s",
        key, len(busy), names, moved.batch_no, rt.settings.queue_stall_s,
    )  # fmt: skip


def deliver(rt: WorkerRuntime, run_id: int, key: str, outcome: Outcome) -> int:
    """Write the batch's results under ``key``; returns how many the database refused (set aside).

    One transaction when the database takes them. Otherwise they go to the batch's spool folder and
    ``ResultWriter.replay`` writes them: host by host when the database refuses some, once it is back when it
    is away (this waits, trying again and again). A stop while waiting leaves them in the spool, replayed later
    by any worker on this machine, and raises ``BatchInterrupted``.
    """
    if not outcome.results:
        return 0
    try:
        with rt.engine.begin() as conn:
            store.write_results(conn, run_id, outcome.results, batch_id=key)
        return 0
    except SQLAlchemyError as exc:
        log.warning("%s: the database did not take the batch (%s); spooling it", key, db_reason(exc))
    spool = rt.batch_spool(key)
    spool.write(SpooledBatch(key, run_id, tuple(outcome.results)))  # SpoolError: the job fails and is retried
    writer = ResultWriter(rt.settings.database_url, spool, outcome.summary, time.monotonic)
    writer.engine = rt.engine  # the process's engine: already open and migrated
    while True:
        writer.replay()
        if spool.count() == 0:
            break
        if rt.stop.is_set():
            raise BatchInterrupted(f"{key}: stopping while the database is away; the results wait in {spool.directory}")
        rt.stop.wait(WAIT_TICK_S)
    tidy(spool)
    return outcome.summary.set_aside_count


def tidy(spool: Spool) -> None:
    """Remove a batch's spool folder once empty (one with set-aside results stays for a person to read)."""
    with contextlib.suppress(OSError):  # not empty, or already gone
        spool.directory.rmdir()


def _give_back(rt: WorkerRuntime, run_id: int, batch_no: int) -> None:
    try:
        with rt.engine.begin() as conn:
            batches.requeue_batch(conn, run_id, batch_no)
    except SQLAlchemyError:
        pass  # the dashboard shows it running until another worker takes it; nothing else depends on it
