"""A whole poll run: open the database, drive the hosts through a dispatcher, write their results in
batches, then the KMS post-pass, and close the run as complete or incomplete.

``run_poll`` raises only ``SpoolError`` (results could be kept nowhere). KeyboardInterrupt, ``stop`` or the
run's deadline end the run early: what was collected is written and the run is marked incomplete.
Rendering progress is the caller's business (``on_progress``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from collectors.connection import COUNTER
from collectors.inventory import Target
from collectors.run import kms_pass
from collectors.run.dispatch import Dispatcher, make_dispatcher
from collectors.run.host import PollContext
from collectors.run.state import Progress, RunOptions, RunState, RunSummary
from collectors.run.writer import ResultWriter
from collectors.spool import Spool
from models import maintenance, runs, store
from models.enums import RunStatus

log = logging.getLogger("collectors")

STOP_GRACE_S = 2.0  # after a stop, results of hosts in flight are still taken for this long


def run_poll(
    targets: Sequence[Target],
    ctx: PollContext,
    *,
    database_url: str,
    spool: Spool,
    options: RunOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> RunSummary:
    """Poll ``targets`` and store the results; raises ``SpoolError`` if results cannot be kept anywhere.

    KeyboardInterrupt or ``stop`` ends the run early: what was collected is written and the run is
    marked incomplete.
    """
    options = options or RunOptions()
    summary = RunSummary(hosts_total=len(targets))

    def connected(engine: Engine) -> None:
        # At the start, or the first time the database answers during the run: record the run, then replay.
        if summary.run_id is None:
            summary.run_id = _start_run(engine, writer, targets, options, ctx.now())
        writer.replay()

    writer = ResultWriter(database_url, spool, summary, ctx.monotonic, on_connect=connected)
    if writer.connect() is None:
        log.warning("database unavailable at start, results will be spooled: %s", summary.database_error)
    state = RunState(ctx, summary, started=ctx.monotonic(), on_progress=on_progress)
    exchanges = replace(COUNTER)
    try:
        _drive(state, make_dispatcher(targets, ctx, options), writer, options, stop or threading.Event())
    finally:
        summary.duration_s = state.elapsed()
        state.count_exchanges(COUNTER.since(exchanges))
        _finish(writer, state)
        writer.dispose()
    return summary


def _start_run(
    engine: Engine, writer: ResultWriter, targets: Sequence[Target], options: RunOptions, now: datetime
) -> int | None:
    try:
        with engine.begin() as conn:
            abandoned = close_abandoned_runs(conn, options.collector, now)
            if abandoned:
                log.warning(
                    "marked %d run(s) of %s left running by a stopped collector as incomplete",
                    abandoned,
                    options.collector,
                )
            store.upsert_inventory(conn, [t.identity for t in targets], now=now)
            return runs.start_run(
                conn,
                collector=options.collector,
                shard=options.shard,
                hosts_total=len(targets),
                started_at=now,
                pid=os.getpid(),
            )
    except SQLAlchemyError as exc:
        writer.record_outage(exc)
        return None


def close_abandoned_runs(
    conn: Any, collector: str, now: datetime, is_alive: Callable[[int], bool] | None = None
) -> int:
    """Mark ``collector``'s runs still 'running' whose process is gone (killed collector) as incomplete."""
    alive = is_alive or pid_alive
    running = runs.running_runs(conn, collector=collector)
    dead = [run_id for run_id, pid in running.items() if pid is None or not alive(pid)]
    return runs.mark_incomplete(conn, dead, now=now)


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this machine."""
    if os.name == "nt":
        return True  # os.kill would terminate it on Windows; keep its runs rather than guess
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _drive(
    state: RunState, dispatcher: Dispatcher, writer: ResultWriter, options: RunOptions, stop: threading.Event
) -> None:
    """Take results until every worker finished, writing a batch when it is full or old enough."""
    ctx = state.ctx
    dispatcher.start()
    last_flush = ctx.monotonic()
    running = dispatcher.workers
    try:
        while running:
            if stop.is_set() or state.elapsed() > options.run_timeout_s:
                state.stop("stop" if stop.is_set() else "run deadline")
                dispatcher.request_stop()
                running = _drain(state, dispatcher, running)
                break
            for item in dispatcher.items(0.2):
                if item is None:
                    running -= 1
                else:
                    state.accept(item)
            if len(state.pending) >= options.batch_size or (
                state.pending and ctx.monotonic() - last_flush > options.flush_interval_s
            ):
                writer.write(state.take_pending())
                last_flush = ctx.monotonic()
    except KeyboardInterrupt:
        state.stop("interrupted")
        dispatcher.request_stop()
        _drain(state, dispatcher, running)
    finally:
        writer.write(state.take_pending())
        dispatcher.close()
    state.summary.status = RunStatus.COMPLETE if state.summary.stopped_by is None else RunStatus.INCOMPLETE


def _drain(state: RunState, dispatcher: Dispatcher, running: int) -> int:
    """Collect results of hosts already in flight for a short grace; the rest are abandoned."""
    until = state.ctx.monotonic() + STOP_GRACE_S
    while running and state.ctx.monotonic() < until:
        for item in dispatcher.items(0.1, stopping=True):
            if item is None:
                running -= 1
            else:
                state.accept(item)
    return running


def _finish(writer: ResultWriter, state: RunState) -> None:
    """Replay what the spool holds, judge the KMS clients, close the run and refresh the daily rollup.

    When the database cannot take the run's end, the run is reported ``incomplete``: that is what its
    record becomes (the next run closes a run whose collector is gone), so the command and the database
    never disagree.
    """
    summary, now = state.summary, state.ctx.now()
    engine = writer.connect() if writer.database_usable() else None
    try:
        if engine is None:
            raise _NotRecorded
        writer.replay()
        with engine.begin() as conn:
            kms_pass.apply_kms_pass(conn, [*state.clients, *writer.replayed_clients], now, state.ctx.probes)
            if summary.run_id is not None:
                set_aside = summary.set_aside_count
                runs.finish_run(conn, summary.run_id, finished_at=now, status=summary.status, set_aside=set_aside)
            maintenance.refresh_rollup(conn, now.date())
        if summary.run_id is None:
            raise _NotRecorded
    except SQLAlchemyError as exc:
        writer.record_outage(exc)
        _unrecorded(summary)
    except _NotRecorded:
        _unrecorded(summary)


class _NotRecorded(Exception):
    """The run's end could not be written to the database."""


def _unrecorded(summary: RunSummary) -> None:
    summary.status = RunStatus.INCOMPLETE
    summary.stopped_by = summary.stopped_by or "database unavailable at the end of the run"
