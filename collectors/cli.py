"""The ``python -m collectors`` command line: ``poll``, ``export`` and ``demo``.

Thin on purpose: it reads settings once, parses arguments, calls the library (``collectors.poller``,
``collectors.demo``, ``models.export``) and renders progress and a summary. Exit codes: 0 the run
completed (hosts may have failed), 1 the run stopped early (interrupted or run deadline), 2 bad
configuration or inventory, 3 the database is unusable and the spool unwritable.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO
from urllib.parse import parse_qs

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from collectors.credentials import Credential, CredentialError, load_credentials, log_to_stderr, read_secrets_file
from collectors.errors import EXPLANATION, InventoryError, SpoolError
from collectors.inventory import Inventory, load_inventory, parse_shard, select_shard
from collectors.probes import Probes
from collectors.run import PollContext, RunOptions, RunSummary, run_poll
from collectors.run import Progress as PollProgress
from collectors.spool import Spool
from collectors.transport import WsmanOptions
from config.settings import ConfigError, Settings, load_settings
from models import hostfacts
from models.enums import FailureClass
from models.filters import BY_KEY, CRITERIA, VIEW_KEYS, Criterion, HostFilter

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_CONFIG = 2
EXIT_DATABASE = 3
LOG_EVERY_S = 5.0

app = typer.Typer(
    help="Activation Monitor collector: poll Windows hosts over WinRM and export what was found.",
    no_args_is_help=True,
    add_completion=False,
)
log = logging.getLogger("collectors")


class CliError(Exception):
    """A problem reported as one line on stderr with an exit code."""

    def __init__(self, message: str, code: int = EXIT_CONFIG) -> None:
        super().__init__(message)
        self.code = code


def _fail(exc: CliError) -> typer.Exit:
    sys.stderr.write(f"error: {exc}\n")
    return typer.Exit(exc.code)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise CliError(str(exc)) from None


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
        settings = _settings(db_url=db, concurrency=concurrency, timeout_s=timeout)
        targets, credentials = _prepare(settings, inventory, shard, force)
        code = EXIT_OK
        while True:
            summary = _run_once(settings, targets, credentials, shard, processes)
            _report(summary, json_output)
            code = EXIT_OK if summary.status.value == "complete" else EXIT_INCOMPLETE
            if watch is None or summary.stopped_by == "interrupted" or not _sleep(watch):
                break
    except CliError as exc:
        raise _fail(exc) from None
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
) -> RunSummary:
    ctx = poll_context(settings, credentials)
    options = RunOptions(
        concurrency=settings.concurrency,
        run_timeout_s=settings.run_timeout_s,
        collector=settings.collector_name or RunOptions().collector,
        shard=shard,
        processes=processes,
    )
    with _progress(len(targets)) as on_progress:
        try:
            return run_poll(
                targets,  # type: ignore[arg-type]  # tuple of Target from _prepare
                ctx,
                database_url=settings.database_url,
                spool=Spool(settings.spool_path),
                options=options,
                on_progress=on_progress,
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


def _sleep(seconds: float) -> bool:
    """Wait between watch runs; False when interrupted."""
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        return False
    return True


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
    if summary.batches_spooled:
        rows.append(("spooled batches", f"{summary.batches_spooled} ({summary.database_error})"))
    if summary.stopped_by:
        rows.append(("stopped by", summary.stopped_by))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _configure_logging(credentials: Iterable[Credential]) -> None:
    log_to_stderr(credentials)


# --- export ----------------------------------------------------------------------------------------


def export(
    *,
    filter_query: str | None = None,
    output: Path | None = None,
    db: str | None = None,
    **criteria: Any,
) -> None:
    """Write the hosts matching the filter as the dashboard's CSV (always the unactivated ones)."""
    options = {c.key: _given(criteria.get(c.field)) for c in CRITERIA}
    try:
        settings = _settings(db_url=db)
        flt = filter_from_options(options, filter_query)
        rows = _write_export(settings.database_url, flt, output)
    except CliError as exc:
        raise _fail(exc) from None
    Console(stderr=True).print(f"{rows} host(s) exported", highlight=False)


def _given(value: object) -> list[str]:
    """An export option's value in the URL form: repeated values, one value, or a flag."""
    if value is None or value is False:
        return []
    if value is True:
        return ["1"]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _criterion_option(c: Criterion) -> inspect.Parameter:
    """``export``'s option for one filter criterion, generated from the filter vocabulary."""
    if c.kind == "values":
        annotation: Any = Annotated[list[str] | None, typer.Option(c.option, help=c.help)]
        return inspect.Parameter(c.field, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
    if c.kind == "flag":
        annotation = Annotated[bool, typer.Option(c.option, help=c.help)]
        return inspect.Parameter(c.field, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=annotation)
    annotation = Annotated[str | None, typer.Option(c.option, help=c.help)]
    return inspect.Parameter(c.field, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


_EXPORT_OPTIONS = (
    ("filter_query", Annotated[str | None, typer.Option(
        "--filter", help="The dashboard's URL query, e.g. 'code=0xC004F074&site=Taipei'.")], None),
    ("output", Annotated[Path | None, typer.Option(
        "--output", "-o", help="CSV file to write (default: stdout).")], None),
    ("db", Annotated[str | None, typer.Option("--db", help="Database URL (default: settings).")], None),
)  # fmt: skip
_export_parameters = [_criterion_option(c) for c in CRITERIA] + [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, annotation, default in _EXPORT_OPTIONS
]
export.__signature__ = inspect.Signature(_export_parameters)  # type: ignore[attr-defined]
export.__annotations__ = {p.name: p.annotation for p in _export_parameters} | {"return": None}
app.command()(export)


def filter_from_options(options: dict[str, list[str]], query: str | None = None) -> HostFilter:
    """The ``HostFilter`` of the export options and the dashboard URL query ``query``, merged.

    Both are read by ``HostFilter.from_params``, the parser the dashboard uses, so a filter means the
    same here and there; any key or value it does not accept is a ``CliError`` naming it.
    """
    params = {key: list(values) for key, values in options.items()}
    for key, values in _parse_query(query or "").items():
        params[key] = params.get(key, []) + values
    for c in CRITERIA:
        if c.kind != "values" and len(set(params.get(c.key, []))) > 1:
            raise CliError(f"{c.option}: given more than once with different values")
    flt, rejected = HostFilter.from_params(params)
    if rejected:
        key, _, value = rejected[0].partition("=")
        c = BY_KEY[key]
        raise CliError(f"{c.option}: {c.invalid}: {value!r}")
    return flt


def _parse_query(query: str) -> dict[str, list[str]]:
    try:
        parsed = parse_qs(query.lstrip("?"), keep_blank_values=True, strict_parsing=bool(query.strip("?")))
    except ValueError:
        raise CliError(f"--filter: not a URL query: {query[:80]!r}") from None
    # A URL copied from the dashboard also says which language and page it showed; neither filters.
    for key in VIEW_KEYS:
        parsed.pop(key, None)
    unknown = sorted(set(parsed) - set(BY_KEY))
    if unknown:
        raise CliError(f"--filter: unknown key {unknown[0]!r} (use {', '.join(BY_KEY)})")
    return parsed


def _write_export(url: str, flt: HostFilter, output: Path | None) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from models import db as models_db
    from models.export import write_csv

    try:
        engine = models_db.open_database(url)
        with engine.connect() as conn, _open_output(output) as out:
            return write_csv(conn, flt, out)
    except SQLAlchemyError as exc:
        raise CliError(f"database unusable: {' '.join(str(exc).split())[:200]}", EXIT_DATABASE) from None
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None


@contextmanager
def _open_output(output: Path | None) -> Iterator[BinaryIO]:
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with output.open("wb") as handle:
        yield handle


# --- demo ------------------------------------------------------------------------------------------


@app.command()
def demo(
    hosts: Annotated[int, typer.Option(help="How many simulated hosts.")] = 200,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: settings).")] = None,
) -> None:
    """Start the fleet simulator, poll it with the real collector and fill the database."""
    from collectors.demo import DemoError, load_demo

    try:
        settings = _settings(db_url=db)
        _configure_logging(())
        stop = threading.Event()
        result = load_demo(settings, hosts=hosts, stop=stop)
    except DemoError as exc:
        raise _fail(CliError(str(exc), EXIT_CONFIG)) from None
    except CliError as exc:
        raise _fail(exc) from None
    Console().print(summary_table(result.summary))
    Console().print(
        f"{result.summary.succeeded} simulated hosts are in {result.database_url}.\n"
        "Open the dashboard with:  streamlit run dashboard.py",
        highlight=False,
    )
