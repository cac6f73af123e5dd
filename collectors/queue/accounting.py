"""Runs across workers: closing a run when its last batch finishes or its deadline passes, what follows a run,
and failover (stalled jobs given to another worker, spooled batches of a stopped worker replayed).

A run is closed by whoever sees it finished first (one conditional UPDATE, so exactly one closer). What follows
a closed run is what ``python -m collectors poll`` does at its end: the KMS post-pass over the stored clients,
the daily rollup, then the alert rules when ``alerting`` is installed (its failures are logged, never the
run's). Stalled jobs are those whose procrastinate worker sent no heartbeat for ``queue_stall_s``: killed,
frozen, or cut off from the database; they are put back in their queue.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from procrastinate import App
from procrastinate.exceptions import ConnectorException
from procrastinate.jobs import Status
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from collectors.probes import Probes
from collectors.queue.app import TASK_POLL_BATCH, TASK_SCHEDULE, TASK_UPKEEP
from collectors.queue.runtime import WorkerRuntime
from collectors.run import ResultWriter, RunSummary, kms_pass
from collectors.run.writer import db_reason
from config.settings import Settings
from models import batches, maintenance
from models.enums import RunStatus

log = logging.getLogger("collectors")

WORKER_MEMORY = timedelta(days=7)  # workers not heard from this long leave the dashboard's list
BATCH_MEMORY = timedelta(days=30)  # batch rows kept this long (a run's totals stay in poll_runs)


def batch_finished(rt: WorkerRuntime, run_id: int) -> None:
    """After a batch of ``run_id`` finished: close the run if it was the last, then what follows a run."""
    with rt.engine.begin() as conn:
        status = batches.close_run_if_finished(conn, run_id, now=rt.context.now())
    if status is not None:
        after_run(rt.engine, rt.settings, rt.context.probes, run_id, status)


def after_run(engine: Engine, settings: Settings, probes: Probes | None, run_id: int, status: RunStatus) -> None:
    """The KMS post-pass and today's rollup for the fleet as the run left it, then the alert rules."""
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            kms_pass.apply_kms_pass(conn, [], now, probes)
            maintenance.refresh_rollup(conn, now.date())
    except SQLAlchemyError as exc:
        log.warning("run %d is %s, but its KMS pass and rollup failed: %s", run_id, status.value, db_reason(exc))
    log.info("run %d is %s", run_id, status.value)
    run_alerts(engine, settings)


def run_alerts(engine: Engine, settings: Settings) -> None:
    """``alerting.evaluate.run_alerts`` when that package is installed; its failure is logged, never raised."""
    try:
        evaluate = importlib.import_module("alerting.evaluate")
    except ImportError:
        return
    try:
        evaluate.run_alerts(engine, settings)
    except Exception as exc:  # alerting is another component: whatever it raises must not fail the run
        log.warning("alert evaluation failed: %s: %s", type(exc).__name__, " ".join(str(exc).split())[:200])


def sweep(engine: Engine, settings: Settings, probes: Probes | None, *, now: datetime) -> list[int]:
    """Mark failed the batches whose job failed for good, close runs whose batches all finished but stayed
    open (incomplete when one failed), and runs past their deadline; returns their ids.

    Also forgets workers silent for ``WORKER_MEMORY`` and batches finished ``BATCH_MEMORY`` ago.
    """
    closed: list[int] = []
    with engine.begin() as conn:
        failed = batches.fail_batches_of_failed_jobs(conn, task_name=TASK_POLL_BATCH, now=now)
        waiting = batches.runs_awaiting_close(conn)
    if failed:
        log.warning("%d batch(es) failed for good (their job failed; see the worker's log): marked failed", failed)
    for run_id in waiting:
        with engine.begin() as conn:
            status = batches.close_run_if_finished(conn, run_id, now=now)
        if status is not None:
            closed.append(run_id)
            after_run(engine, settings, probes, run_id, status)
    with engine.begin() as conn:
        overdue = batches.close_overdue_runs(conn, now=now)
        batches.forget_workers(conn, silent_since=now - WORKER_MEMORY)
        batches.forget_batches(conn, finished_before=now - BATCH_MEMORY)
    for run_id in overdue:
        log.warning("run %d passed its deadline before every batch was polled: incomplete", run_id)
        after_run(engine, settings, probes, run_id, RunStatus.INCOMPLETE)
    return closed + overdue


def replay_leftovers(rt: WorkerRuntime) -> int:
    """Write batches a stopped or killed worker on this machine left in the spool; returns how many."""
    replayed = 0
    for spool in rt.leftover_spools():
        writer = ResultWriter(rt.settings.database_url, spool, RunSummary(), rt.context.monotonic)
        writer.engine = rt.engine
        replayed += writer.replay()
        if spool.count() == 0:
            with contextlib.suppress(OSError):  # it holds set-aside results, or another process removed it
                spool.directory.rmdir()
    if replayed:
        log.info("replayed %d batch(es) left in the spool by a stopped worker", replayed)
    return replayed


async def retry_stalled(app: App, stall_s: float) -> Sequence[int]:
    """Put back in their queue the batch and schedule jobs of workers silent for ``stall_s``; returns their ids.

    A stalled upkeep job is dropped instead: the next tick brings a fresh one.
    """
    retried: list[int] = []
    manager = app.job_manager
    stalled = [
        job
        for task_name in (TASK_POLL_BATCH, TASK_SCHEDULE)  # a scheduler killed while enqueuing: its tick again
        for job in await manager.get_stalled_jobs(task_name=task_name, seconds_since_heartbeat=stall_s)
    ]
    for job in stalled:
        try:
            await manager.retry_job(job)
        except ConnectorException:
            continue  # another worker put it back first
        if job.id is not None:
            retried.append(job.id)
    for job in await manager.get_stalled_jobs(task_name=TASK_UPKEEP, seconds_since_heartbeat=stall_s):
        with contextlib.suppress(ConnectorException):
            await manager.finish_job(job, status=Status.FAILED, delete_job=True)
    if retried:
        log.warning("%d stalled batch job(s) put back in their queue: %s", len(retried), retried)
    return retried
