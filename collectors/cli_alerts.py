"""``python -m collectors alerts``: evaluate the alert rules and notify (``check``), ``list``, ``ack`` and ``silence``.

Thin over ``alerting.run_alerts`` and ``models.alerts``. Notification URLs come from ``--notify``, else the
``notify_urls`` setting, else ``ACTIVATION_NOTIFY_URLS`` in the secrets file (where tokens belong: a URL on the
command line is visible to every user of the machine). ``alerts_after_poll`` is what ``poll`` calls after each
run: whatever goes wrong there is one warning, never the poll's exit code.

Exit codes: 0 done (a target that could not be reached included), 2 a bad argument, setting or alert id, 3 the
database is unusable.
"""

from __future__ import annotations

import getpass
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from alerting import AlertReport, run_alerts
from alerting.evaluate import alert_dict
from alerting.notify import configured_urls
from collectors.cli_base import EXIT_DATABASE, CliError, fail, settings_from
from config.secrets import SecretsFileError
from config.settings import Settings
from knowledge.alert_text import rule_title
from models import alerts
from models.alerts import AlertView
from models.db import make_engine, open_database

SHOWN = 50  # alerts listed in a table; --json lists them all
log = logging.getLogger("collectors.alerts")

alerts_app = typer.Typer(
    help="Alerts: evaluate the rules and send notifications, list, acknowledge and silence them.",
    no_args_is_help=True,
    add_completion=False,
)

Db = Annotated[str | None, typer.Option("--db", help="Database URL (default: settings).")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
By = Annotated[str | None, typer.Option("--by", help="Who does it (default: the signed-in user).")]
Comment = Annotated[str, typer.Option("--comment", help="Why: shown with the alert on the dashboard.")]


def notify_urls(settings: Settings, given: Sequence[str] | None = None) -> list[str]:
    """Where messages go: ``given``, else the ``notify_urls`` setting, else the secrets file's
    ``ACTIVATION_NOTIFY_URLS`` (separated by spaces or new lines)."""
    if given:
        return list(given)
    try:
        return configured_urls(settings)
    except SecretsFileError as exc:
        raise CliError(str(exc)) from None


@contextmanager
def _database(settings: Settings) -> Iterator[Engine]:
    try:
        engine = open_database(settings.database_url)
    except SQLAlchemyError as exc:
        raise CliError(f"database unusable: {_one_line(exc)}", EXIT_DATABASE) from None
    try:
        yield engine
    except SQLAlchemyError as exc:
        raise CliError(f"database unusable: {_one_line(exc)}", EXIT_DATABASE) from None
    finally:
        engine.dispose()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


@alerts_app.command()
def check(
    db: Db = None,
    notify: Annotated[
        list[str] | None,
        typer.Option("--notify", help="Send to this apprise URL instead of the configured ones (repeatable)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Evaluate and show; change and send nothing.")] = False,
    json_output: Json = False,
) -> None:
    """Evaluate every alert rule, print what fires and send the notifications due."""
    try:
        settings = settings_from(db_url=db)
        urls = notify_urls(settings, notify)
        with _database(settings) as engine:
            report = run_alerts(engine, settings, notify_urls=urls, dry_run=dry_run)
    except CliError as exc:
        raise fail(exc) from None
    if json_output:
        sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n")
        return
    console = Console()
    console.print(alert_table(report.firing, report.firing_total, settings.language))
    console.print(sent_lines(report), highlight=False)


@alerts_app.command(name="list")
def list_command(
    db: Db = None,
    show_all: Annotated[bool, typer.Option("--all", help="Resolved alerts too (newest first).")] = False,
    json_output: Json = False,
) -> None:
    """List the firing alerts (with --all, the resolved ones too)."""
    try:
        settings = settings_from(db_url=db)
        with _database(settings) as engine, engine.connect() as conn:
            shown = alerts.list_alerts(conn, state=None if show_all else alerts.FIRING, limit=100_000)
            firing = alerts.firing_count(conn)
    except CliError as exc:
        raise fail(exc) from None
    if json_output:
        sys.stdout.write(json.dumps([alert_dict(a) for a in shown], ensure_ascii=False, indent=2) + "\n")
        return
    Console().print(alert_table(shown, len(shown), settings.language, firing=firing))


@alerts_app.command()
def ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id (see `alerts list`).")],
    comment: Comment,
    by: By = None,
    db: Db = None,
) -> None:
    """Acknowledge a firing alert: no repeat messages until it resolves."""
    try:
        settings = settings_from(db_url=db)
        text = _comment(comment)
        with _database(settings) as engine, engine.begin() as conn:
            done = alerts.acknowledge(conn, alert_id, by=by or current_user(), comment=text, now=datetime.now(UTC))
        if done is None:
            raise CliError(f"alert {alert_id}: no firing alert has this id (see: python -m collectors alerts list)")
    except CliError as exc:
        raise fail(exc) from None
    Console().print(f"Alert {done.id} acknowledged by {done.acked_by}: no repeat messages until it resolves.",
                    markup=False, highlight=False)  # fmt: skip


@alerts_app.command()
def silence(
    alert_id: Annotated[int, typer.Argument(help="The alert's id (see `alerts list --all`).")],
    until: Annotated[str, typer.Option("--until", help="ISO 8601 time, e.g. 2026-12-01T08:00 (UTC unless given).")],
    comment: Comment,
    by: By = None,
    db: Db = None,
) -> None:
    """Silence an alert until a time: no messages at all for it until then, resolve included."""
    try:
        settings = settings_from(db_url=db)
        text = _comment(comment)
        ends = parse_until(until)
        now = datetime.now(UTC)
        if ends <= now:
            raise CliError(f"--until: {ends:%Y-%m-%d %H:%M} UTC is not in the future")
        with _database(settings) as engine, engine.begin() as conn:
            done = alerts.silence(conn, alert_id, until=ends, by=by or current_user(), comment=text, now=now)
        if done is None:
            raise CliError(f"alert {alert_id}: no alert has this id (see: python -m collectors alerts list --all)")
    except CliError as exc:
        raise fail(exc) from None
    Console().print(f"Alert {done.id} silenced until {ends:%Y-%m-%d %H:%M} UTC by {done.silenced_by}.",
                    markup=False, highlight=False)  # fmt: skip


def parse_until(text: str) -> datetime:
    """An ISO 8601 time; one without a zone is UTC. Raises ``CliError``."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"--until: not an ISO 8601 time: {text[:60]!r} (e.g. 2026-12-01T08:00)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _comment(text: str) -> str:
    if not text.strip():
        raise CliError("--comment: say why (it is shown with the alert)")
    return text.strip()


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (a service account without one)
        return "cli"


def alert_table(shown: Sequence[AlertView], total: int, lang: str, *, firing: int | None = None) -> Table:
    """Alerts as a table; host-supplied text is shown as text, never as markup."""
    count = firing if firing is not None else total
    table = Table(title=f"{count} alert(s) firing", title_justify="left")
    for column in ("id", "severity", "alert", "subject", "since (UTC)", "state"):
        table.add_column(column)
    for alert in shown[:SHOWN]:
        table.add_row(
            str(alert.id),
            alert.severity,
            rule_title(alert.rule, lang),
            Text(alert.subject[:80]),
            f"{alert.first_seen:%Y-%m-%d %H:%M}",
            Text(_state(alert)),
        )
    if total > SHOWN:
        table.caption = f"{SHOWN} of {total} shown; --json lists them all"
    return table


def _state(alert: AlertView) -> str:
    now = datetime.now(UTC)
    if alert.is_silenced(now) and alert.silenced_until is not None:
        return f"{alert.state}, silenced until {alert.silenced_until:%Y-%m-%d %H:%M}"
    if alert.acked_at is not None and alert.state == alerts.FIRING:
        return f"{alert.state}, acknowledged by {alert.acked_by}"
    return alert.state


def sent_lines(report: AlertReport) -> Text:
    """What was sent (or, in a dry run, would be), one line per message and target."""
    lines: list[str] = []
    if report.failed_rules:
        lines += [f"rule {name} skipped: {why}" for name, why in report.failed_rules.items()]
    if not report.targets:
        lines.append("no notification URLs configured: nothing sent (set notify_urls or ACTIVATION_NOTIFY_URLS)")
    for sent in report.messages:
        if report.dry_run:
            lines.append(f"would send {sent.message.kind}: {sent.message.title}")
        for d in sent.deliveries:
            outcome = "sent" if d.ok else f"FAILED after {d.attempts} tries ({d.error})"
            lines.append(f"{sent.message.kind} to {d.target}: {outcome}: {sent.message.title}")
    if not report.messages and report.targets:
        lines.append("no messages due")
    return Text("\n".join(lines))


def alerts_after_poll(settings: Settings) -> None:
    """Evaluate the alert rules after a poll run and send what is due; a failure is one warning line."""
    try:
        urls = notify_urls(settings)
        engine = make_engine(settings.database_url)
        try:
            report = run_alerts(engine, settings, notify_urls=urls)
        finally:
            engine.dispose()
    except Exception as exc:  # alerts must never change how a poll run ends
        log.warning("alerts not evaluated: %s: %s", type(exc).__name__, _one_line(exc))
        return
    failed = sum(1 for s in report.messages if not s.ok)
    log.info(
        "alerts: %d firing, %d message(s) sent%s",
        report.firing_total,
        len(report.messages) - failed,
        f", {failed} not delivered" if failed else "",
    )
