"""Enqueuing runs: a schedule slot claimed once, its batches deferred as jobs in the same transaction.

``enqueue_run`` records the poll run, its ``queue_runs`` row (the slot's run key, unique), the batches and the
inventory's hosts, and defers one procrastinate job per batch on the same connection, all committed together:
two schedulers started at once both try, the second finds the slot taken and enqueues nothing. Each job's
queueing lock is the run key plus its batch number, so not even a second row for a slot could queue a batch
twice.

``serve_schedule`` (``schedule --every``) does this from procrastinate's periodic task: each tick is deferred
once whatever the number of schedulers (procrastinate's ``procrastinate_periodic_defers``), run by one
scheduler's procrastinate worker, which serves only the schedule queue of its interval; the slot claim above
stays as a second guard. After each enqueue it closes runs whose deadline passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from procrastinate import App, RetryStrategy
from procrastinate.exceptions import ProcrastinateException
from procrastinate.jobs import Job
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from collectors.errors import InventoryError
from collectors.inventory import Target
from collectors.queue.app import TASK_SCHEDULE, batch_job, make_app, schedule_queue
from collectors.queue.plan import PlannedBatch, plan_batches, queues_of, run_key, slot_start
from collectors.queue.worker import quiet_queue_logs
from collectors.run.writer import db_reason
from models import batches, store

log = logging.getLogger("collectors")

RETRY_AFTER_S = 30.0  # after an inventory or database problem, the slot is tried again this soon
PAUSE_MIN_S, PAUSE_MAX_S = 1.0, 30.0  # between starts of the scheduler's worker while the database is away


@dataclass(frozen=True, slots=True)
class Enqueued:
    """The run of a slot: ``created`` False when another scheduler (or an earlier start) enqueued it."""

    run_id: int | None
    run_key: str
    created: bool
    hosts: int
    batches: int
    queues: tuple[str, ...]

    def describe(self) -> str:
        if not self.created:
            return f"run {self.run_id} of this slot ({self.run_key}) was already enqueued; nothing added"
        queues = ", ".join(self.queues) or "none"
        return f"run {self.run_id} enqueued: {self.hosts} hosts in {self.batches} batches on queues {queues}"


@dataclass(frozen=True, slots=True)
class ScheduleOptions:
    every_s: int
    batch_size: int
    run_timeout_s: float
    collector: str  # recorded on the poll run
    scheduler: str  # recorded on the queued run


def enqueue_run(
    engine: Engine, app: App, targets: Sequence[Target], options: ScheduleOptions, *, now: datetime
) -> Enqueued:
    """Enqueue the run of the slot ``now`` falls in, unless it was enqueued already. Its deadline is
    ``run_timeout_s`` but at most one interval: a run enqueued at its slot's start ends by the next one's.

    Raises ``SQLAlchemyError`` or procrastinate's ``ConnectorException`` when the database fails; nothing is
    then recorded.
    """
    slot = slot_start(now, options.every_s)
    key = run_key(slot, options.every_s)
    planned = plan_batches(targets, options.batch_size)
    with engine.begin() as conn:
        run_id = batches.claim_run(
            conn, run_key=key, slot_at=slot, every_s=options.every_s, collector=options.collector,
            scheduler=options.scheduler, batches=[p.plan for p in planned], started_at=now,
            deadline_at=now + timedelta(seconds=min(options.run_timeout_s, options.every_s)),
        )  # fmt: skip
        if run_id is None:
            return Enqueued(batches.run_for_key(conn, key), key, False, 0, 0, ())
        store.upsert_inventory(conn, [t.identity for t in targets], now=now)
        # procrastinate writes the jobs through this transaction's own psycopg connection
        app.job_manager.batch_defer_jobs(batch_jobs(run_id, key, planned), connection=conn.connection.driver_connection)
    return Enqueued(run_id, key, True, len(targets), len(planned), queues_of(planned))


def batch_jobs(run_id: int, key: str, planned: Sequence[PlannedBatch]) -> list[Job]:
    """One job per batch: its queue, a queueing lock from the run key, and its hosts as references."""
    return [batch_job(run_id, key, p.plan.batch_no, p.plan.queue, p.targets) for p in planned]


def schedule_cron(every_s: int) -> str:
    """The coarsest cron (a 6th field for seconds) whose ticks include every slot start of ``every_s``."""
    if every_s % 86400 == 0:
        return "0 0 * * *"
    if every_s % 3600 == 0:
        hours = every_s // 3600
        return f"0 */{hours} * * *" if 24 % hours == 0 else "0 * * * *"
    if every_s % 60 == 0:
        minutes = every_s // 60
        return f"*/{minutes} * * * *" if 60 % minutes == 0 else "* * * * *"
    return f"* * * * * */{math.gcd(every_s, 60)}"


def make_schedule_app(database_url: str, every_s: int, tick: Callable[[int], str]) -> App:
    """The App of a scheduler: ``tick(timestamp)`` as a periodic task on the interval's own queue.

    procrastinate defers a periodic task once per tick for every process (``procrastinate_periodic_defers``),
    and a scheduler started within one interval of a tick still defers it, so a scheduler started mid-slot
    enqueues that slot's run.
    """
    app = make_app(database_url, periodic_max_delay=every_s)
    retry = RetryStrategy(
        max_attempts=max(1, int(every_s // RETRY_AFTER_S)),
        wait=int(RETRY_AFTER_S),
        retry_exceptions={InventoryError, SQLAlchemyError, ProcrastinateException},
    )
    task = app.task(name=TASK_SCHEDULE, queue=schedule_queue(every_s), retry=retry)(tick)
    app.periodic(cron=schedule_cron(every_s), periodic_id=f"every-{every_s}s")(task)
    return app


def serve_schedule(
    engine: Engine,
    database_url: str,
    load_targets: Callable[[], Sequence[Target]],
    options: ScheduleOptions,
    *,
    stop: threading.Event,
    sweep: Callable[[], None],
) -> None:
    """Enqueue each slot's run (the inventory read afresh each time) from procrastinate's periodic task, run by
    a procrastinate worker serving only this interval's schedule queue, until ``stop``."""

    def tick(timestamp: int) -> str:
        slot = datetime.fromtimestamp(timestamp, UTC)
        now = datetime.now(UTC)
        key = run_key(slot, options.every_s)
        if timestamp % options.every_s or slot_start(now, options.every_s) != slot:
            return f"{key}: not the start of the current slot, nothing to enqueue"
        try:
            result = enqueue_run(engine, make_app(database_url), load_targets(), options, now=now)
        except (InventoryError, SQLAlchemyError, ProcrastinateException) as exc:
            reason = db_reason(exc) if isinstance(exc, SQLAlchemyError) else " ".join(str(exc).split())[:200]
            log.error("could not enqueue the run of %s, trying again in %.0f s: %s", key, RETRY_AFTER_S, reason)
            raise
        log.info("%s", result.describe())
        sweep()
        return result.describe()

    quiet_queue_logs(tuple)
    asyncio.run(_serve(make_schedule_app(database_url, options.every_s, tick), options, stop))


async def _serve(app: App, options: ScheduleOptions, stop: threading.Event) -> None:
    pause = PAUSE_MIN_S
    while not stop.is_set():
        try:
            async with app.open_async():
                worker = asyncio.create_task(
                    app.run_worker_async(
                        queues=[schedule_queue(options.every_s)], name=options.scheduler, concurrency=1,
                        install_signal_handlers=False, delete_jobs="successful",
                    )
                )  # fmt: skip
                while not worker.done() and not stop.is_set():
                    await asyncio.wait({worker}, timeout=0.5)
                if worker.done():
                    worker.result()
                    log.warning("scheduler stopped by itself (database away?); starting again in %.0f s", pause)
                else:
                    worker.cancel()  # procrastinate's graceful stop: a run being enqueued is finished first
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
                    return
        except Exception as exc:  # the database went away (procrastinate, psycopg or pool errors): start again
            reason = " ".join(str(exc).split())[:200]
            log.warning(
                "scheduler lost the database (%s: %s); starting again in %.0f s", type(exc).__name__, reason, pause
            )
        until = time.monotonic() + pause
        while time.monotonic() < until and not stop.is_set():
            await asyncio.sleep(0.5)
        pause = min(pause * 2, PAUSE_MAX_S)
