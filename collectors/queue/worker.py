"""A queue worker: procrastinate's worker polling batches in this process (or several processes), kept alive
across database outages, with a heartbeat and the failover duties beside it.

Each process runs procrastinate's worker for ``JOBS_AT_ONCE`` batches at a time (so a batch waiting on its
slowest host does not leave the process idle), each batch polling ``concurrency / JOBS_AT_ONCE`` hosts at once.
Beside it, every quarter of ``queue_stall_s``: this worker's heartbeat in ``queue_workers``, stalled jobs put
back in their queue, runs closed that finished or passed their deadline, and spooled batches replayed. When
the database goes away procrastinate's worker stops (its heartbeat fails) after the batches in hand finish;
it is started again, with a growing pause, until the database answers. ``stop`` (SIGTERM, Ctrl-C) ends it:
the batches in hand stop handing out hosts, the hosts in flight finish, the batches go back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from procrastinate import App, JobContext, RetryStrategy
from procrastinate.app import WorkerOptions as ProcrastinateWorkerOptions
from sqlalchemy.exc import SQLAlchemyError

from collectors.credentials import Credential, log_to_stderr, read_secrets_file, redact
from collectors.queue import accounting
from collectors.queue.app import DEFAULT_QUEUE, TASK_POLL_BATCH, TASK_UPKEEP, UPKEEP_QUEUE, make_app
from collectors.queue.batch import BatchInterrupted, poll_batch
from collectors.queue.locks import lock_engine
from collectors.queue.runtime import WorkerRuntime
from collectors.run import PollContext
from collectors.run.writer import db_reason
from collectors.spool import Spool
from config.settings import Settings
from models import batches, db

log = logging.getLogger("collectors")

JOBS_AT_ONCE = 2
RUNTIME_KEY = "activation_monitor_runtime"
PAUSE_MIN_S, PAUSE_MAX_S = 1.0, 30.0
# A batch interrupted by a stop, or by the database failing before its results were spooled, is tried again.
RETRY = RetryStrategy(max_attempts=50, wait=5, retry_exceptions={BatchInterrupted, SQLAlchemyError})

ContextFactory = Callable[[Settings, dict[str, Credential]], PollContext]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    queues: tuple[str, ...] | None  # None: every queue
    concurrency: int  # hosts polled at the same time by one process
    processes: int = 1
    name: str | None = None  # defaults to collector_name or the machine's name, plus the process id


def run_workers(
    settings: Settings, options: WorkerOptions, context_factory: ContextFactory, *, stop: threading.Event
) -> None:
    """Serve the queues until ``stop``; with ``processes`` > 1, in that many processes (this one supervises)."""
    read_secrets_file(settings.secrets_file)  # a secrets file readable by others stops the start, not a batch
    if options.processes <= 1:
        serve(settings, options, context_factory, stop=stop)
        return
    spawn = multiprocessing.get_context("spawn")
    children = [
        spawn.Process(target=serve_child, args=(settings, options, context_factory), name=f"queue-worker-{k}")
        for k in range(options.processes)
    ]
    for child in children:
        child.start()
    while any(child.is_alive() for child in children) and not stop.wait(0.5):
        pass
    for child in children:
        child.terminate()  # SIGTERM: each finishes its hosts in flight and gives its batches back
    for child in children:
        child.join()


def serve_child(settings: Settings, options: WorkerOptions, context_factory: ContextFactory) -> None:
    """One worker process of several: stops on SIGTERM, or when its parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops its children
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    log_to_stderr(())
    serve(settings, replace(options, processes=1), context_factory, stop=stop, parent=multiprocessing.parent_process())


def serve(
    settings: Settings,
    options: WorkerOptions,
    context_factory: ContextFactory,
    *,
    stop: threading.Event,
    parent: Any = None,
) -> None:
    """One worker process until ``stop``; raises ``SQLAlchemyError`` when the database is unusable at start."""
    engine = db.open_database(settings.database_url)
    name = f"{options.name or settings.collector_name or socket.gethostname()}:{os.getpid()}"
    rt = WorkerRuntime(
        settings=settings,
        engine=engine,
        lock_engine=lock_engine(settings.database_url),
        context=context_factory(settings, {}),
        spool_base=Spool.for_database(settings.spool_path, settings.database_url).directory,
        name=name,
        threads=max(1, options.concurrency // JOBS_AT_ONCE),
        stop=stop,
    )
    with engine.begin() as conn:
        batches.register_worker(conn, name, queues=options.queues, concurrency=options.concurrency, now=_now())
    quiet_queue_logs(lambda: list(rt.known.values()))
    log.info("queue worker %s serving %s", name, ", ".join(options.queues) if options.queues else "every queue")
    try:
        asyncio.run(_serve(rt, options, parent))
    finally:
        _stopped(rt)
        rt.lock_engine.dispose()
        engine.dispose()


class OneLine(logging.Filter):
    """procrastinate's records as one redacted line: the message and the innermost cause, no traceback."""

    def __init__(self, credentials: Callable[[], Iterable[Credential]]) -> None:
        super().__init__()
        self.credentials = credentials

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            cause = record.exc_info[1]
            while cause.__cause__ is not None:
                cause = cause.__cause__
            message = f"{message} ({_one_line(cause)})"
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = redact(" ".join(message.split()), self.credentials()), None
        return True


def quiet_queue_logs(credentials: Callable[[], Iterable[Credential]]) -> None:
    """One line per problem: procrastinate's tracebacks folded, the pool's retry-per-second warnings left out
    (this worker says when it loses and regains the database)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(OneLine(credentials))  # a handler's filter sees the records of procrastinate's every module
    queue_logger = logging.getLogger("procrastinate")
    queue_logger.handlers[:] = [handler]
    queue_logger.propagate = False
    queue_logger.setLevel(logging.WARNING)
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def _now() -> datetime:
    return datetime.now(UTC)


def _stopped(rt: WorkerRuntime) -> None:
    try:
        with rt.engine.begin() as conn:
            batches.worker_stopped(conn, rt.name, now=_now())
    except SQLAlchemyError as exc:
        log.warning("could not record that worker %s stopped: %s", rt.name, db_reason(exc))


def _poll_batch_job(context: JobContext, run_id: int, batch_no: int, hosts: Sequence[Mapping[str, Any]]) -> str:
    """The batch task: one batch, in one of procrastinate's threads."""
    rt: WorkerRuntime = context.additional_context[RUNTIME_KEY]
    return poll_batch(rt, run_id, batch_no, hosts, should_abort=context.should_abort)


async def _upkeep_job(context: JobContext, timestamp: int) -> str:
    """The periodic task, run by one worker per tick: stalled jobs back in their queue, finished or overdue runs
    closed."""
    rt: WorkerRuntime = context.additional_context[RUNTIME_KEY]
    retried = await accounting.retry_stalled(context.app, rt.settings.queue_stall_s)
    closed = await asyncio.to_thread(accounting.sweep, rt.engine, rt.settings, rt.context.probes, now=_now())
    return f"{len(retried)} stalled job(s) retried, {len(closed)} run(s) closed"


def make_worker_app(rt: WorkerRuntime) -> App:
    """The App with the batch task and the periodic upkeep task (every quarter of the stall timeout).

    The upkeep task is also what keeps procrastinate's periodic deferrer running, and with it the watch over
    the worker's heartbeat and listener: without any periodic task that watch ends as the worker starts.
    """
    app = make_app(rt.settings.database_url)
    app.task(name=TASK_POLL_BATCH, pass_context=True, retry=RETRY)(_poll_batch_job)
    upkeep = app.task(name=TASK_UPKEEP, pass_context=True, queue=UPKEEP_QUEUE, queueing_lock=TASK_UPKEEP)
    app.periodic(cron=upkeep_cron(rt.settings.queue_stall_s), periodic_id="upkeep")(upkeep(_upkeep_job))
    return app


def upkeep_cron(stall_s: float) -> str:
    """Every quarter of the stall timeout, in whole seconds from 5 to 60 (cron with a seconds field)."""
    every = int(min(60, max(5, stall_s // 4)))
    return "* * * * *" if every == 60 else f"* * * * * */{every}"


async def _serve(rt: WorkerRuntime, options: WorkerOptions, parent: Any) -> None:
    app = make_worker_app(rt)
    pause = PAUSE_MIN_S
    while not _stopping(rt, parent):
        started = time.monotonic()
        try:
            async with app.open_async():
                renewed = await _run_until_stopped(app, rt, options, parent)
            if renewed:
                continue
            if not _stopping(rt, parent):
                log.warning("queue worker stopped by itself (database away?); starting again in %.0f s", pause)
        except Exception as exc:  # the database went away (procrastinate, psycopg or pool errors): start again
            log.warning("queue worker lost the database (%s); starting again in %.0f s", _one_line(exc), pause)
        if time.monotonic() - started > PAUSE_MAX_S:
            pause = PAUSE_MIN_S
        await _sleep_unless_stopped(rt, parent, pause)
        pause = min(pause * 2, PAUSE_MAX_S)


async def _run_until_stopped(app: App, rt: WorkerRuntime, options: WorkerOptions, parent: Any) -> bool:
    """procrastinate's worker until a stop; True when it stopped to serve site queues that appeared meanwhile.

    A worker for every site serves the site queues known when it starts (never the schedulers' queues, whose
    task it does not have), and starts again, after its batches in hand, when a new site's queue appears.
    """
    stall = rt.settings.queue_stall_s
    served: tuple[str, ...] = options.queues if options.queues else await asyncio.to_thread(_site_queues, rt)
    worker_options: ProcrastinateWorkerOptions = {
        "name": rt.name,
        "concurrency": JOBS_AT_ONCE,
        "install_signal_handlers": False,
        "update_heartbeat_interval": _tick(stall),
        "stalled_worker_timeout": stall,
        "delete_jobs": "successful",
        "additional_context": {RUNTIME_KEY: rt},
    }
    worker_options["queues"] = [*served, UPKEEP_QUEUE]
    worker = asyncio.create_task(app.run_worker_async(**worker_options))
    duties = asyncio.create_task(_duties(rt))
    renewed = False
    look_at = time.monotonic() + _tick(stall)
    try:
        while not worker.done() and not _stopping(rt, parent) and not renewed:
            await asyncio.wait({worker}, timeout=0.5)
            if options.queues is None and time.monotonic() >= look_at:
                look_at = time.monotonic() + _tick(stall)
                fresh = sorted(set(await asyncio.to_thread(_site_queues, rt)) - set(served))
                if fresh:
                    log.info("new site queue(s) %s: serving them after the batches in hand", ", ".join(fresh))
                    renewed = True
        if not worker.done():
            if not renewed:
                rt.stop.set()  # also when the parent died: the batches in hand stop handing out hosts
            worker.cancel()  # procrastinate's graceful stop: it waits for the batches in hand
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        else:
            worker.result()
    finally:
        duties.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await duties
    return renewed and not _stopping(rt, parent)


def _site_queues(rt: WorkerRuntime) -> tuple[str, ...]:
    """The site queues of the database (``default`` always), or ``default`` alone while it is away."""
    try:
        with rt.engine.connect() as conn:
            found = batches.site_queues(conn, task_name=TASK_POLL_BATCH)
    except SQLAlchemyError as exc:
        log.debug("site queues unknown for now: %s", db_reason(exc))
        found = []
    return tuple(dict.fromkeys([DEFAULT_QUEUE, *found]))


async def _duties(rt: WorkerRuntime) -> None:
    """This process's own: its heartbeat on the dashboard, and batches left in this machine's spool."""
    while True:
        try:
            await asyncio.to_thread(_heartbeat, rt)
            await asyncio.to_thread(accounting.replay_leftovers, rt)
        except SQLAlchemyError as exc:  # the database is away; procrastinate's worker notices and restarts
            log.debug("worker duties skipped: %s", db_reason(exc))
        await asyncio.sleep(_tick(rt.settings.queue_stall_s))


def _heartbeat(rt: WorkerRuntime) -> None:
    done, polled = rt.counters()
    with rt.engine.begin() as conn:
        batches.worker_heartbeat(conn, rt.name, now=_now(), batches_done=done, hosts_polled=polled)


def _tick(stall_s: float) -> float:
    return max(1.0, stall_s / 4)


def _stopping(rt: WorkerRuntime, parent: Any) -> bool:
    if parent is not None and not parent.is_alive():
        rt.stop.set()
    return rt.stop.is_set()


async def _sleep_unless_stopped(rt: WorkerRuntime, parent: Any, seconds: float) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until and not _stopping(rt, parent):
        await asyncio.sleep(min(0.5, until - time.monotonic()))


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
