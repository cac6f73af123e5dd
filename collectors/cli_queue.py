"""``python -m collectors worker`` and ``schedule``: polling through the PostgreSQL job queue (``collectors.queue``).

Thin like ``collectors.cli``: settings once, arguments, then the library. ``schedule`` enqueues each slot's run
(``--once``: the current slot's, then exits); ``worker`` polls batches until SIGTERM or Ctrl-C. Exit codes: 0
done or stopped, 1 a second signal quit at once, 2 bad configuration or inventory (a database other than
PostgreSQL included), 3 the database is unusable.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from procrastinate.exceptions import ProcrastinateException
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from collectors.cli_base import EXIT_DATABASE, EXIT_INCOMPLETE, EXIT_OK, CliError, fail, settings_from
from collectors.credentials import CredentialError, log_to_stderr, read_secrets_file
from collectors.errors import InventoryError
from collectors.inventory import Target, load_inventory
from collectors.probes import Probes
from collectors.queue import (
    QueueError,
    ScheduleOptions,
    WorkerOptions,
    enqueue_run,
    make_app,
    parse_every,
    queue_names,
    require_postgresql,
    run_workers,
    serve_schedule,
)
from collectors.queue.accounting import sweep
from collectors.run.writer import db_reason
from config.settings import Settings
from models import db as database

log = logging.getLogger("collectors")


def worker(
    db: Annotated[str | None, typer.Option("--db", help="Database URL, PostgreSQL (default: settings).")] = None,
    queues: Annotated[
        str | None,
        typer.Option(
            help="Sites to serve, comma-separated (left out: every site); 'default' serves hosts without one."
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Hosts polled at the same time by each worker process.")
    ] = None,
    processes: Annotated[int, typer.Option(min=1, max=64, help="Worker processes on this machine.")] = 1,
) -> None:
    """Poll batches of hosts from the PostgreSQL job queue until stopped (SIGTERM or Ctrl-C)."""
    from collectors.cli import poll_context  # collectors.cli registers this command

    try:
        settings = _queue_settings(db_url=db, concurrency=concurrency)
        served = queue_names(queues.split(",")) if queues is not None else None
        if served == ():
            raise CliError("--queues names no site: name one or more, or leave --queues out to serve every site")
        options = WorkerOptions(queues=served, concurrency=settings.concurrency, processes=processes)
        log_to_stderr(())
        with _stop_on_signals("stopping: the hosts in flight finish, then their batches go back to the queue") as stop:
            run_workers(settings, options, poll_context, stop=stop)
    except CredentialError as exc:
        raise fail(CliError(str(exc))) from None
    except SQLAlchemyError as exc:
        raise fail(CliError(f"database unusable: {db_reason(exc)}", EXIT_DATABASE)) from None
    except CliError as exc:
        raise fail(exc) from None
    raise typer.Exit(EXIT_OK)


def schedule(
    inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory file (CSV or YAML).")] = None,
    every: Annotated[
        str | None, typer.Option(help="Enqueue a run every INTERVAL: 90s, 15m, 1h, 1d (default: poll_interval_s).")
    ] = None,
    once: Annotated[
        bool, typer.Option(help="Enqueue the current interval's run, unless it is there, and exit.")
    ] = False,
    db: Annotated[str | None, typer.Option("--db", help="Database URL, PostgreSQL (default: settings).")] = None,
    force: Annotated[bool, typer.Option(help="Allow CIDR ranges larger than /16.")] = False,
) -> None:
    """Enqueue poll runs on the PostgreSQL job queue: the inventory in batches, one queue per site."""
    from collectors.cli import poll_context  # collectors.cli registers this command

    try:
        settings = _queue_settings(db_url=db)
        every_s = parse_every(every) if every else settings.poll_interval_s
        log_to_stderr(())
        try:
            targets = _targets(settings, inventory, force)
        except InventoryError as exc:
            raise CliError(str(exc)) from None
        engine = database.open_database(settings.database_url)
        options = _schedule_options(settings, every_s)
        probes = poll_context(settings, {}).probes
        if once:
            result = enqueue_run(engine, make_app(settings.database_url), targets, options, now=datetime.now(UTC))
            sys.stdout.write(result.describe() + "\n")
            sweep(engine, settings, probes, now=datetime.now(UTC))
        else:
            with _stop_on_signals("stopping the scheduler; runs already enqueued go on") as stop:
                serve_schedule(
                    engine, settings.database_url, lambda: _targets(settings, inventory, force), options, stop=stop,
                    sweep=lambda: _sweep_quietly(settings, engine, probes),
                )  # fmt: skip
        engine.dispose()
    except ValueError as exc:
        raise fail(CliError(str(exc))) from None
    except (SQLAlchemyError, ProcrastinateException) as exc:
        reason = db_reason(exc) if isinstance(exc, SQLAlchemyError) else " ".join(str(exc).split())[:200]
        raise fail(CliError(f"database unusable: {reason}", EXIT_DATABASE)) from None
    except CliError as exc:
        raise fail(exc) from None
    raise typer.Exit(EXIT_OK)


@contextmanager
def _stop_on_signals(message: str) -> Iterator[threading.Event]:
    """SIGTERM or Ctrl-C sets the returned event (a clean stop); a second one ends the process at once."""
    stop = threading.Event()

    def handle(_signum: int, _frame: object) -> None:
        if stop.is_set():
            os._exit(EXIT_INCOMPLETE)  # its batches in hand are put back in the queue once it counts as stalled
        log.warning("%s (signal again to quit at once)", message)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _queue_settings(**overrides: object) -> Settings:
    settings = settings_from(**overrides)
    try:
        require_postgresql(settings.database_url)
    except QueueError as exc:
        raise CliError(str(exc)) from None
    return settings


def _schedule_options(settings: Settings, every_s: int) -> ScheduleOptions:
    name = settings.collector_name or socket.gethostname()
    return ScheduleOptions(
        every_s=every_s,
        batch_size=settings.queue_batch_size,
        run_timeout_s=settings.run_timeout_s,
        collector=f"{name}/queue",  # not the name `poll` records: its clean-up of dead runs must not close these
        scheduler=f"{name}:{os.getpid()}",
    )


def _targets(settings: Settings, inventory: Path | None, force: bool) -> Sequence[Target]:
    """The inventory's hosts (only the names of their credentials travel); raises ``InventoryError``."""
    path = inventory or settings.inventory_path
    if path is None:
        raise InventoryError("no inventory: pass --inventory FILE or set ACTIVATION_INVENTORY_PATH")
    try:
        secrets = {**read_secrets_file(settings.secrets_file), **os.environ}  # an LDAP source may sign in
    except CredentialError as exc:
        raise InventoryError(str(exc)) from None
    loaded = load_inventory(path, force=force, secrets=secrets)
    for problem in loaded.problems:
        log.warning("skipped: %s", problem)
    if not loaded.targets:
        raise InventoryError(f"{path}: the inventory has no usable hosts")
    return loaded.targets


def _sweep_quietly(settings: Settings, engine: Engine, probes: Probes) -> None:
    try:
        sweep(engine, settings, probes, now=datetime.now(UTC))
    except SQLAlchemyError as exc:
        log.warning("could not close overdue runs: %s", db_reason(exc))


def register(app: typer.Typer) -> None:
    """Add ``worker`` and ``schedule`` to the ``python -m collectors`` command line."""
    app.command(name="worker")(worker)
    app.command(name="schedule")(schedule)
