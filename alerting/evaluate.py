"""One evaluation of the alert rules: run every check, reconcile the alert state, send what is due.

``run_alerts`` is what the CLI (``alerts check``, and after every poll run), the job-queue worker and tests call:

1. every rule's check runs (``alerting.rules``); a check that raises is logged and skipped, and its rule is left
   out of ``evaluated``, so the episodes it opened earlier stay open rather than resolve for lack of data;
2. ``models.alerts.reconcile`` turns the findings into opened, kept and resolved episodes, in one transaction
   which also decides and claims the messages due:
   - a firing episode not announced yet (just opened, or opened while no message could go out) -> ``firing``;
   - a firing episode announced more than ``alert_repeat_hours`` ago and not acknowledged -> ``repeat``;
   - a firing episode announced at a lower severity than it has now -> ``escalated`` (acknowledged or not);
   - a resolved episode whose firing was announced -> ``resolved``, whenever it resolved: an end that could not
     be announced (every target down, a silence running) is announced at the next evaluation that can;
   - what an earlier message could not bring to some of the targets -> the same kind again, to those alone;
   - nothing for an episode that is silenced, and no firing or repeat for one acknowledged;
   - for a per-host rule (``Rule.storm``), ``alert_storm_hosts`` or more messages of one kind in one evaluation
     become one summary (``storm``), counted by error code with each code's resolution;
3. after the commit each message goes to its notification URLs (``alerting.notify``), each try is recorded in
   ``alert_notifications``; a message that reached no target is released, to be tried at the next evaluation,
   and one that reached some targets leaves the others owed it (``models.alerts.set_owed``).

Claiming in the reconciling transaction means two evaluators that finish at once (shards, queue workers) send
each message once. A dead target never raises here; a database that cannot be used does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from alerting.messages import ESCALATED, FIRING, REPEAT, RESOLVED, Message, alert_message, storm_message
from alerting.notify import Delivery, configured_urls, safe_target, send_all, target_keys
from alerting.rules import CHECKS, RULES, Rule
from config.settings import Settings
from models import alerts
from models.alerts import AlertView, Changes, Finding

log = logging.getLogger("alerting")
REPORT_LIMIT = 1000  # firing alerts listed in a report (the count is always whole)
KIND_ORDER = (FIRING, ESCALATED, REPEAT, RESOLVED)
SEVERITY_ORDER = ("critical", "warning", "info")


@dataclass(frozen=True, slots=True)
class Planned:
    """A message due, with its episodes as they were before it was claimed (to release it if it reaches nobody),
    and the targets it goes to: ``None`` for every one, else the keys (``target_keys``) of those owed it."""

    message: Message
    before: tuple[AlertView, ...]
    targets: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    """A message and how it went to each target."""

    message: Message
    deliveries: tuple[Delivery, ...]

    @property
    def ok(self) -> bool:
        return any(d.ok for d in self.deliveries)


@dataclass(frozen=True, slots=True)
class AlertReport:
    """What one evaluation found, changed and sent; ``as_dict`` is its JSON form."""

    evaluated_at: datetime
    dry_run: bool
    firing: tuple[AlertView, ...]  # at most REPORT_LIMIT, most severe first
    firing_total: int
    opened: tuple[int, ...]
    resolved: tuple[int, ...]
    messages: tuple[Sent, ...]  # in a dry run: what would be sent, with no deliveries
    failed_rules: Mapping[str, str] = field(default_factory=dict)
    targets: tuple[str, ...] = ()  # where messages go, without secrets

    def as_dict(self) -> dict[str, Any]:
        return {
            "evaluated_at": self.evaluated_at.isoformat(),
            "dry_run": self.dry_run,
            "firing_total": self.firing_total,
            "firing": [alert_dict(a) for a in self.firing],
            "opened": list(self.opened),
            "resolved": list(self.resolved),
            "failed_rules": dict(self.failed_rules),
            "targets": list(self.targets),
            "messages": [
                {**s.message.as_dict(), "deliveries": [_delivery_dict(d) for d in s.deliveries]} for s in self.messages
            ],
        }


def alert_dict(alert: AlertView) -> dict[str, Any]:
    """An alert as JSON: times in ISO 8601 UTC."""
    return {
        "id": alert.id,
        "rule": alert.rule,
        "severity": alert.severity,
        "state": alert.state,
        "subject": alert.subject,
        "subject_key": alert.subject_key,
        "facts": alert.facts,
        "first_seen": _iso(alert.first_seen),
        "last_seen": _iso(alert.last_seen),
        "resolved_at": _iso(alert.resolved_at),
        "last_notified_at": _iso(alert.last_notified_at),
        "acked_at": _iso(alert.acked_at),
        "acked_by": alert.acked_by,
        "ack_comment": alert.ack_comment,
        "silenced_until": _iso(alert.silenced_until),
        "silenced_by": alert.silenced_by,
        "silence_comment": alert.silence_comment,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _delivery_dict(d: Delivery) -> dict[str, Any]:
    return {"target": d.target, "ok": d.ok, "attempts": d.attempts, "error": d.error}


def run_alerts(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    notify_urls: Sequence[str] | None = None,
    dry_run: bool = False,
    rules: Sequence[Rule] = RULES,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertReport:
    """Evaluate ``rules``, reconcile the alert state and send the messages due (see the module's doc).

    ``notify_urls`` default to ``settings.notify_urls``, else the secrets file's ``ACTIVATION_NOTIFY_URLS``
    (``alerting.notify.configured_urls``); with none, nothing is sent and nothing is marked as announced, so the
    first message goes out once a URL is configured. ``dry_run`` changes nothing and sends
    nothing: the report says what would be.
    """
    moment = now or datetime.now(UTC)
    urls = list(notify_urls) if notify_urls is not None else configured_urls(settings)
    found, evaluated, failed = evaluate_rules(engine, settings, moment, rules)
    by_name = {rule.name: rule for rule in rules}
    with engine.connect() as conn:
        transaction = conn.begin()
        changes = alerts.reconcile(conn, found, evaluated=evaluated, now=moment)
        if urls or dry_run:
            known = [a.id for a in (*changes.opened, *changes.kept, *changes.resolved)]
            waiting = alerts.pending(conn, besides=known)
            due = plan(changes, by_name, settings, moment, waiting=waiting, targets=target_keys(urls))
        else:
            due = []
        planned = [p for p in due if p.targets != ()] if dry_run else claim(conn, due, by_name, settings, moment)
        firing = alerts.list_alerts(conn, state=alerts.FIRING, limit=REPORT_LIMIT)
        total = alerts.firing_count(conn)
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    sent = (
        [Sent(p.message, ()) for p in planned] if dry_run else deliver(engine, planned, urls, settings, moment, sleep)
    )
    return AlertReport(
        evaluated_at=moment,
        dry_run=dry_run,
        firing=tuple(firing),
        firing_total=total,
        opened=tuple(a.id for a in changes.opened),
        resolved=tuple(a.id for a in changes.resolved),
        messages=tuple(sent),
        failed_rules=failed,
        targets=tuple(safe_target(url) for url in urls),
    )


def evaluate_rules(
    engine: Engine, settings: Settings, now: datetime, rules: Iterable[Rule]
) -> tuple[list[Finding], list[str], dict[str, str]]:
    """Every rule's findings, the rules that ran, and for each rule that could not run, why."""
    found: list[Finding] = []
    evaluated: list[str] = []
    failed: dict[str, str] = {}
    with engine.connect() as conn:
        for rule in rules:
            try:
                found += CHECKS[rule.check](conn, rule.params(settings), now)
            except Exception as exc:  # one broken check must not silence the others
                failed[rule.name] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                log.warning("alert rule %s skipped, its check failed: %s", rule.name, failed[rule.name])
                conn.rollback()
                continue
            conn.rollback()  # end the read transaction: each check sees the newest data
            evaluated.append(rule.name)
    return found, evaluated, failed


def plan(
    changes: Changes,
    rules: Mapping[str, Rule],
    settings: Settings,
    now: datetime,
    *,
    waiting: Sequence[AlertView] = (),
    targets: Sequence[str] = (),
) -> list[Planned]:
    """The messages due after ``changes`` and for the ``waiting`` episodes (``models.alerts.pending``), per-host
    storms summed up, most urgent first. ``targets`` are the keys of the URLs configured now: a message owed to
    targets no longer configured is dropped."""
    repeat_before = now - timedelta(hours=settings.alert_repeat_hours)
    configured = set(targets)
    due: dict[tuple[str, str, tuple[str, ...] | None], list[AlertView]] = {}

    def add(alert: AlertView, kind: str, owed: tuple[str, ...] | None = None) -> None:
        to = None if owed is None else tuple(t for t in owed if t in configured)
        due.setdefault((alert.rule, kind, to), []).append(alert)

    for alert in [*changes.opened, *changes.kept, *changes.resolved, *waiting]:
        owed = alert.owed_message
        if alert.is_silenced(now):
            continue
        if alert.state == alerts.RESOLVED:
            if alert.notified_state == alerts.FIRING:
                add(alert, RESOLVED)
            elif owed is not None and owed[0] == RESOLVED:
                add(alert, RESOLVED, owed[1])
        elif alert.notified_state != alerts.FIRING:
            if not alert.is_quiet(now):
                add(alert, FIRING)
        elif escalated(alert):
            add(alert, ESCALATED)
        elif alert.is_quiet(now):
            continue
        elif alert.last_notified_at is None or alert.last_notified_at <= repeat_before:
            add(alert, REPEAT)
        elif owed is not None and owed[0] != RESOLVED:
            add(alert, owed[0], owed[1])
    planned: list[Planned] = []
    for (name, kind, to), group in sorted(due.items(), key=lambda item: _urgency(item[0], rules)):
        rule = rules[name]
        if rule.storm and len(group) >= settings.alert_storm_hosts:
            planned.append(Planned(storm_message(group, kind, rule, settings.language), tuple(group), to))
        else:
            planned += [Planned(alert_message(a, kind, rule, settings.language), (a,), to) for a in group]
    return planned


def escalated(alert: AlertView) -> bool:
    """True when the episode is more severe now than its last message said."""
    was, now = alert.notified_severity, alert.severity
    if was not in SEVERITY_ORDER or now not in SEVERITY_ORDER:
        return False
    return SEVERITY_ORDER.index(now) < SEVERITY_ORDER.index(was)


def _urgency(key: tuple[str, str, tuple[str, ...] | None], rules: Mapping[str, Rule]) -> tuple[int, int, str, str]:
    name, kind, to = key
    severity = rules[name].severity
    rank = SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)
    return KIND_ORDER.index(kind), rank, name, " ".join(to or ())


def claim(
    conn: Connection, due: Sequence[Planned], rules: Mapping[str, Rule], settings: Settings, now: datetime
) -> list[Planned]:
    """The messages this evaluator won: each claimed in the database, storms cut to the episodes won. A message
    owed to targets no longer configured is claimed (so it is owed no more) and not sent."""
    repeat_before = now - timedelta(hours=settings.alert_repeat_hours)
    won_plans: list[Planned] = []
    for planned in due:
        message = planned.message
        if planned.targets is not None:
            won = set(alerts.claim_owed(conn, planned.before))
            if not planned.targets:
                continue
        else:
            won = set(
                alerts.claim_notification(
                    conn, message.alert_ids, announces=message.announces, now=now, repeat_before=repeat_before
                )
            )
        if not won:
            continue
        if len(won) == len(planned.before):
            won_plans.append(planned)
            continue
        kept = tuple(a for a in planned.before if a.id in won)
        rebuilt = storm_message(kept, message.announces, rules[message.rule], settings.language)
        won_plans.append(Planned(rebuilt, kept, planned.targets))
    return won_plans


def deliver(
    engine: Engine,
    planned: Sequence[Planned],
    urls: Sequence[str],
    settings: Settings,
    now: datetime,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Sent]:
    """Send each message to its URLs, record every outcome, release what reached no target and leave what reached
    some targets owed to the others."""
    keys = target_keys(urls)
    routes = [
        [(url, key) for url, key in zip(urls, keys, strict=True) if p.targets is None or key in p.targets]
        for p in planned
    ]
    jobs = [(p.message, [url for url, _ in route]) for p, route in zip(planned, routes, strict=True)]
    outcomes = send_all(jobs, retries=settings.notify_retries, sleep=sleep)
    sent = [Sent(p.message, deliveries) for p, deliveries in zip(planned, outcomes, strict=True)]
    if not sent:
        return sent
    with engine.begin() as conn:
        for item in sent:
            for d in item.deliveries:
                alerts.record_notification(
                    conn,
                    alert_id=item.message.alert_id,
                    kind=item.message.kind,
                    target=d.target,
                    ok=d.ok,
                    attempts=d.attempts,
                    error=d.error,
                    now=now,
                )
        for p, route, item in zip(planned, routes, sent, strict=True):
            missed = [key for (_, key), d in zip(route, item.deliveries, strict=True) if not d.ok]
            if p.targets is None and not item.ok:
                alerts.release_notification(conn, p.before)
            elif missed:
                alerts.set_owed(conn, item.message.alert_ids, kind=item.message.announces, targets=missed)
    return sent
