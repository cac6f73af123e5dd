"""The ``python -m collectors`` command line: ``poll``, ``export`` and ``demo``.

Thin on purpose: it reads settings once, parses arguments, calls the library (``collectors.run``,
``collectors.demo``, ``models.export``) and renders progress and a summary. Exit codes: 0 the run
completed (hosts may have failed), 1 the run stopped early (interrupted or run deadline) or could not be
recorded (database unavailable at its end), 2 bad configuration or inventory, 3 the database is unusable
and the spool unwritable.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from collectors.cli_alerts import alerts_after_poll, alerts_app
from collectors.cli_base import EXIT_CONFIG, EXIT_DATABASE, EXIT_INCOMPLETE, EXIT_OK, CliError, fail, settings_from
from collectors.cli_export import export
from collectors.cli_metrics import metrics
from collectors.cli_queue import register as register_queue_commands
from collectors.credentials import Credential, CredentialError, load_credentials, log_to_stderr, read_secrets_file
from collectors.errors import EXPLANATION, InventoryError, SpoolError
from collectors.inventory import Inventory, load_inventory, parse_shard, select_shard
from collectors.probes import Probes
from collectors.run import PollContext, RunOptions, RunSummary, run_poll
from collectors.run import Progress as PollProgress
from collectors.spool import Spool
from collectors.transport import WsmanOptions
from config.settings import Settings, mask_url
from models import hostfacts
from models.enums import FailureClass

LOG_EVERY_S = 5.0

app = typer.Typer(
    help="Activation Monitor collector: poll Windows hosts over WinRM and export what was found.",
    no_args_is_help=True,
    add_completion=False,
)
app.command(name="export")(export)
app.command(name="metrics")(metrics)
app.add_typer(alerts_app, name="alerts")
register_queue_commands(app)
log = logging.getLogger("collectors")


# --- poll ------------------------------------------------------------------------------------------


@app.command()
def poll(
    inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory file (CSV or YAML).")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: settings).")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Hosts polled at the same time.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Deadline per host, seconds.")] = None,
    shard: Annotated[str | None, typer.Option(help="Poll only shard K of N (K/N), a stable hash partition.")] = None,
    watch: Annotated[float | None, typer.Option(help="Poll again every INTERVAL seconds until stopped.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    force: Annotated[bool, typer.Option(help="Allow CIDR ranges larger than /16.")] = False,
    processes: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes (default: 2 for 1,000+ hosts, else 1).")
    ] = None,
) -> None:
    """Poll every host of the inventory and store the results."""
    try:
        settings = settings_from(db_url=db, concurrency=concurrency, timeout_s=timeout)
        targets, credentials = _prepare(settings, inventory, shard, force)
        code = EXIT_OK
        with stop_on_signals() as stop:
            while True:
                summary = _run_once(settings, targets, credentials, shard, processes, stop)
                _report(summary, json_output)
                alerts_after_poll(settings)
                code = EXIT_OK if summary.status.value == "complete" else EXIT_INCOMPLETE
                if watch is None or stop.is_set() or stop.wait(watch):
                    break
    except CliError as exc:
        raise fail(exc) from None
    raise typer.Exit(code)


def _prepare(
    settings: Settings, inventory: Path | None, shard: str | None, force: bool
) -> tuple[tuple[object, ...], dict[str, Credential]]:
    path = inventory or settings.inventory_path
    if path is None:
        raise CliError("no inventory: pass --inventory FILE or set ACTIVATION_INVENTORY_PATH")
    try:
        secrets = {**read_secrets_file(settings.secrets_file), **os.environ}
        loaded = load_inventory(path, force=force, secrets=secrets)
        credentials = load_credentials({t.credential for t in loaded.targets}, environ=secrets)
        selected = select_shard(loaded.targets, parse_shard(shard) if shard else None)
    except (InventoryError, CredentialError, ValueError) as exc:
        raise CliError(str(exc)) from None
    _configure_logging(credentials.values())
    _report_problems(loaded)
    if not loaded.targets:
        raise CliError(f"{path}: the inventory has no usable hosts")
    return selected, credentials


def _report_problems(inventory: Inventory) -> None:
    for problem in inventory.problems:
        log.warning("skipped: %s", problem)


def _run_once(
    settings: Settings,
    targets: tuple[object, ...],
    credentials: dict[str, Credential],
    shard: str | None,
    processes: int | None = None,
    stop: threading.Event | None = None,
) -> RunSummary:
    ctx = poll_context(settings, credentials)
    options = RunOptions(
        concurrency=settings.concurrency,
        run_timeout_s=settings.run_timeout_s,
        collector=settings.collector_name or RunOptions().collector,
        shard=shard,
        processes=processes,
    )
    spool = Spool.for_database(settings.spool_path, settings.database_url)
    for folder, batches in spool.elsewhere():
        log.warning("%d spooled batch(es) in %s belong to another database: not replayed here", batches, folder)
    with _progress(len(targets)) as on_progress:
        try:
            return run_poll(
                targets,  # type: ignore[arg-type]  # tuple of Target from _prepare
                ctx,
                database_url=settings.database_url,
                spool=spool,
                options=options,
                on_progress=on_progress,
                stop=stop,
            )
        except SpoolError as exc:
            raise CliError(f"database unusable and {exc}", EXIT_DATABASE) from None


def poll_context(settings: Settings, credentials: dict[str, Credential]) -> PollContext:
    """The ``PollContext`` the settings describe (also used by the demo)."""
    options = WsmanOptions(
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.timeout_s,
        max_reply_bytes=settings.max_reply_bytes,
        ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
        verify_tls=not settings.insecure_skip_tls_verify,
        allow_ntlm_fallback=settings.allow_ntlm_fallback,
    )
    if settings.insecure_skip_tls_verify:
        log.warning("HTTPS certificate validation is OFF (insecure_skip_tls_verify)")
    return PollContext(
        credentials=credentials,
        probes=Probes.for_settings(settings.dns_server, connect_timeout_s=settings.connect_timeout_s),
        options=options,
        host_timeout_s=settings.timeout_s,
        grace_warning_days=settings.grace_warning_days,
    )


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Ctrl-C and SIGTERM (how systemd and containers stop a service) end the run cleanly.

    The first signal sets the returned event: the run stops handing out hosts, writes what it has, is
    recorded as incomplete and its summary is printed. A second one changes nothing of that (it says so);
    a third gives up on finishing and exits at once.
    """
    stop = threading.Event()
    seen: list[int] = []

    def handle(signum: int, _frame: object) -> None:
        seen.append(signum)
        if len(seen) == 1:
            log.warning("stopping: finishing the hosts in flight and recording the run as incomplete")
            stop.set()
        elif len(seen) == 2:
            log.warning("still stopping: writing what was collected (signal once more to quit without it)")
        else:
            os._exit(EXIT_INCOMPLETE)

    wanted = [signal.SIGINT, signal.SIGTERM]
    previous = {sig: signal.signal(sig, handle) for sig in wanted}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- progress and summary ------------------------------------------------------------------------


@contextmanager
def _progress(total: int) -> Iterator[Callable[[PollProgress], None]]:
    console = Console(stderr=True)
    if console.is_terminal and not os.environ.get("CI"):
        with _bar(console, total) as callback:
            yield callback
        return
    yield _LogLines(total)


@contextmanager
def _bar(console: Console, total: int) -> Iterator[Callable[[PollProgress], None]]:
    columns = (
        TextColumn("polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]:.1f} hosts/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("poll", total=total, failed=0, rate=0.0)

        def update(p: PollProgress) -> None:
            rate = p.done / p.elapsed_s if p.elapsed_s else 0.0
            bar.update(task, completed=p.done, failed=p.failed, rate=rate)

        yield update


class _LogLines:
    """Progress as a plain log line every few seconds (output is not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.last = 0.0

    def __call__(self, p: PollProgress) -> None:
        if p.done < p.total and p.elapsed_s - self.last < LOG_EVERY_S:
            return
        self.last = p.elapsed_s
        rate = p.done / p.elapsed_s if p.elapsed_s else 0.0
        eta = (p.total - p.done) / rate if rate else 0.0
        log.info("polled %d/%d, failed %d, %.1f hosts/s, ETA %.0fs", p.done, p.total, p.failed, rate, eta)


def _report(summary: RunSummary, json_output: bool) -> None:
    if json_output:
        sys.stdout.write(json.dumps(summary.as_dict(), indent=2) + "\n")
        return
    Console().print(summary_table(summary))


def summary_table(summary: RunSummary) -> Table:
    table = Table(title=f"Poll run {summary.run_id or '(not recorded)'}: {summary.status.value}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [
        ("hosts", str(summary.hosts_total)),
        ("answered", str(summary.succeeded)),
        ("failed", str(summary.failed)),
        ("duration", f"{summary.duration_s:.1f} s"),
        ("rate", f"{summary.rate:.1f} hosts/s"),
    ]
    rows += [(f"  {hostfacts.state_words(name)}", str(n)) for name, n in sorted(summary.license_statuses.items())]
    rows += [
        (f"failed: {name}", f"{n}  ({EXPLANATION[FailureClass(name)]})") for name, n in sorted(summary.failures.items())
    ]
    rows += [(f"error {code}", str(n)) for code, n in summary.error_codes.most_common(10)]
    rows += [(f"signed in with {name}", str(n)) for name, n in sorted(summary.signin.items())]
    rows += [(f"not read: {name}", f"{n} hosts (fields missing)") for name, n in sorted(summary.unread_classes.items())]
    if summary.event_reads:
        renewals = f" ({summary.renewal_event_reads} for failing renewals)" if summary.renewal_event_reads else ""
        rows.append(("event logs read", f"{summary.event_reads}{renewals}"))
    if summary.set_aside_count:
        rows.append(("set aside", f"{summary.set_aside_count} host(s): the database refused their rows"))
    if summary.batches_spooled:
        rows.append(("spooled batches", f"{summary.batches_spooled} ({summary.database_error})"))
    if summary.stopped_by:
        rows.append(("stopped by", summary.stopped_by))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _configure_logging(credentials: Iterable[Credential]) -> None:
    log_to_stderr(credentials)


# --- demo ------------------------------------------------------------------------------------------


@app.command()
def demo(
    hosts: Annotated[int, typer.Option(help="How many simulated hosts.")] = 200,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: settings).")] = None,
) -> None:
    """Start the fleet simulator, poll it with the real collector and fill the database."""
    from collectors.demo import DemoError, load_demo

    try:
        settings = settings_from(db_url=db)
        _configure_logging(())
        stop = threading.Event()
        with _progress(hosts) as on_progress:
            result = load_demo(settings, hosts=hosts, stop=stop, on_progress=on_progress)
    except DemoError as exc:
        raise fail(CliError(str(exc), EXIT_CONFIG)) from None
    except CliError as exc:
        raise fail(exc) from None
    Console().print(summary_table(result.summary))
    again = f"The earlier demo fleet ({result.replaced} hosts) was replaced: one demo fleet per database.\n"
    Console().print(
        (again if result.replaced else "")
        + f"{result.summary.succeeded} simulated hosts are in {mask_url(result.database_url)}.\n"
        "Open the dashboard with:  streamlit run dashboard.py",
        highlight=False,
    )
