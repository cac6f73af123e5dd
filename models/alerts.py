"""Alert state in the database: episodes opened, kept and resolved; acknowledged and silenced; messages logged.

An *episode* is one rule firing for one subject (a KMS host, a domain, an error code, the fleet), from the
first evaluation that found it until the first evaluation that no longer does. ``reconcile`` takes what the
rules found now and turns it into state changes in one transaction:

- a finding with no open episode opens one (``opened``);
- a finding with an open episode refreshes its ``last_seen`` and facts (``kept``);
- an open episode of an evaluated rule that was not found is resolved (``resolved``).

Only rules named in ``evaluated`` may resolve episodes, so a rule that could not run (its data unread) never
resolves what it found before. ``open_key`` is unique while an episode fires, so two evaluators at once never
open the same alert twice: the loser of the race keeps the winner's row.

Acknowledging quiets an episode until it resolves; silencing quiets it until a time. Neither stops it from
firing or resolving: they only decide whether a message goes out (``is_quiet``). A silence outlives its episode:
an episode that opens while the latest episode of the same rule and subject is still silenced inherits that
silence, so a subject flapping across a threshold stays quiet. Likewise an episode whose end was never
announced hands its announcement on to the next episode of its subject (``inherited``).

What each episode's messages announced is kept on it (``notified_state``, ``notified_severity``,
``last_notified_at``), claimed before a message is sent (``claim_notification``) and given back when it reached
no target (``release_notification``). A message that reached some targets but not others leaves the others in
``owed`` (``set_owed``), to be tried again for them alone (``pending``, ``claim_owed``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, insert, or_, select, update

from models.store import upsert_insert
from models.tables import Alert, AlertNotification

FIRING = "firing"
RESOLVED = "resolved"
MAX_SUBJECT_KEY = 255
ID_CHUNK = 1000  # ids per IN (...) list


@dataclass(frozen=True)
class Finding:
    """What one rule found about one subject in this evaluation."""

    rule: str
    subject_key: str  # stable identity of the subject, e.g. a host id, a domain, a code
    subject: str  # as shown to people: a host name, a domain, a code
    severity: str  # critical, warning, info
    facts: dict[str, Any] = field(default_factory=dict)  # JSON-safe values only

    @property
    def open_key(self) -> str:
        return f"{self.rule}:{self.subject_key[:MAX_SUBJECT_KEY]}"


@dataclass(frozen=True)
class AlertView:
    """One alert episode as the CLI, the dashboard and the notifier see it."""

    id: int
    rule: str
    subject_key: str
    subject: str
    severity: str
    state: str
    facts: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    last_notified_at: datetime | None
    notified_state: str | None
    notified_severity: str | None
    owed: str | None  # the message some targets missed, as ``owed_text`` writes it
    acked_at: datetime | None
    acked_by: str | None
    ack_comment: str | None
    silenced_until: datetime | None
    silenced_by: str | None
    silence_comment: str | None

    @property
    def owed_message(self) -> tuple[str, tuple[str, ...]] | None:
        """The kind of message still owed and the targets owed it (``None`` when none is)."""
        if not self.owed:
            return None
        value = json.loads(self.owed)
        return str(value["kind"]), tuple(str(target) for target in value["targets"])

    def is_silenced(self, now: datetime) -> bool:
        return self.silenced_until is not None and self.silenced_until > now

    def is_quiet(self, now: datetime) -> bool:
        """True when no message should go out for it: acknowledged (while firing) or silenced."""
        return (self.acked_at is not None and self.state == FIRING) or self.is_silenced(now)


@dataclass(frozen=True)
class Changes:
    """What one ``reconcile`` changed."""

    opened: list[AlertView]
    kept: list[AlertView]
    resolved: list[AlertView]


_COLUMNS = (
    Alert.id,
    Alert.rule,
    Alert.subject_key,
    Alert.subject,
    Alert.severity,
    Alert.state,
    Alert.facts,
    Alert.first_seen,
    Alert.last_seen,
    Alert.resolved_at,
    Alert.last_notified_at,
    Alert.notified_state,
    Alert.notified_severity,
    Alert.owed,
    Alert.acked_at,
    Alert.acked_by,
    Alert.ack_comment,
    Alert.silenced_until,
    Alert.silenced_by,
    Alert.silence_comment,
)


def _view(row: Any) -> AlertView:
    return AlertView(*row)


def reconcile(conn: Connection, found: Iterable[Finding], *, evaluated: Iterable[str], now: datetime) -> Changes:
    """Turn this evaluation's findings into opened, kept and resolved episodes (see the module's doc)."""
    findings = {f.open_key: f for f in found}
    open_rows = {
        row.open_key: row for row in conn.execute(select(Alert.open_key, Alert.id).where(Alert.state == FIRING))
    }
    opened_ids: list[int] = []
    kept_ids: list[int] = []
    refreshed: list[dict[str, Any]] = []
    taken_over = inherited(conn, [f for key, f in findings.items() if key not in open_rows], now)
    for key, finding in findings.items():
        if key in open_rows:
            row = open_rows[key]
            refreshed.append(
                {"aid": row.id, "facts_": finding.facts, "subject_": finding.subject, "sev": finding.severity}
            )
            kept_ids.append(row.id)
            continue
        stmt = (
            upsert_insert(conn, Alert)
            .values(
                rule=finding.rule,
                subject_key=finding.subject_key[:MAX_SUBJECT_KEY],
                open_key=key,
                severity=finding.severity,
                state=FIRING,
                subject=finding.subject,
                facts=finding.facts,
                first_seen=now,
                last_seen=now,
                **taken_over.get((finding.rule, finding.subject_key[:MAX_SUBJECT_KEY]), {}),
            )
            .on_conflict_do_nothing(index_elements=[Alert.open_key])
            .returning(Alert.id)
        )
        new_id = conn.execute(stmt).scalar_one_or_none()
        if new_id is not None:
            opened_ids.append(int(new_id))
        else:  # another evaluator opened it a moment ago: keep theirs
            other = conn.execute(select(Alert.id).where(Alert.open_key == key)).scalar_one()
            kept_ids.append(int(other))
    if refreshed:  # one statement for every episode kept (executemany)
        conn.execute(
            update(Alert)
            .where(Alert.id == bindparam("aid"))
            .values(last_seen=now, facts=bindparam("facts_"), subject=bindparam("subject_"), severity=bindparam("sev")),
            refreshed,
        )
    rules = set(evaluated)
    gone = [row.id for key, row in open_rows.items() if key not in findings and key.split(":", 1)[0] in rules]
    for start in range(0, len(gone), ID_CHUNK):
        conn.execute(
            update(Alert)
            .where(Alert.id.in_(gone[start : start + ID_CHUNK]), Alert.state == FIRING)
            .values(state=RESOLVED, open_key=None, resolved_at=now, last_seen=now)
        )
    return Changes(opened=get_many(conn, opened_ids), kept=get_many(conn, kept_ids), resolved=get_many(conn, gone))


def inherited(conn: Connection, opening: Sequence[Finding], now: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    """What each finding about to open an episode takes over from the latest episode of its rule and subject, by
    (rule, subject_key): its silence while it runs, and its announcement when its end was never announced (for
    the people told, the problem never stopped: the new episode is not announced as new, and the old one's end
    is no longer due)."""
    if not opening:
        return {}
    unannounced = (Alert.state == RESOLVED) & (Alert.notified_state == FIRING)
    candidates = conn.execute(
        select(Alert.rule, Alert.subject_key).where(or_(Alert.silenced_until > now, unannounced)).distinct()
    ).all()  # few: the silences running now and the ends not announced
    wanted = {(f.rule, f.subject_key[:MAX_SUBJECT_KEY]) for f in opening} & {(r, k) for r, k in candidates}
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for rule, subject_key in sorted(wanted):
        latest = conn.execute(
            select(*_COLUMNS).where(Alert.rule == rule, Alert.subject_key == subject_key).order_by(Alert.id.desc())
        ).first()
        if latest is None:
            continue
        last = _view(latest)
        values: dict[str, Any] = {}
        if last.is_silenced(now):
            values |= {
                "silenced_until": last.silenced_until,
                "silenced_by": last.silenced_by,
                "silence_comment": last.silence_comment,
            }
        if last.state == RESOLVED and last.notified_state == FIRING:
            values |= {
                "notified_state": FIRING,
                "notified_severity": last.notified_severity,
                "last_notified_at": last.last_notified_at,
            }
            conn.execute(update(Alert).where(Alert.id == last.id).values(notified_state=RESOLVED, owed=None))
        if values:
            found[(rule, subject_key)] = values
    return found


def get_many(conn: Connection, ids: Sequence[int]) -> list[AlertView]:
    """The episodes with these ids, by id; read in chunks, since SQLite bounds the parameters of a statement."""
    wanted = list(ids)
    views: list[AlertView] = []
    for start in range(0, len(wanted), ID_CHUNK):
        chunk = wanted[start : start + ID_CHUNK]
        views += [_view(row) for row in conn.execute(select(*_COLUMNS).where(Alert.id.in_(chunk)))]
    return sorted(views, key=lambda view: view.id)


def get(conn: Connection, alert_id: int) -> AlertView | None:
    found = get_many(conn, [alert_id])
    return found[0] if found else None


def list_alerts(conn: Connection, *, state: str | None = None, limit: int = 500) -> list[AlertView]:
    """Firing episodes first (most severe, then newest), then history, newest first; at most ``limit``."""
    severity_rank = case({"critical": 0, "warning": 1}, value=Alert.severity, else_=2)
    stmt = select(*_COLUMNS)
    if state is not None:
        stmt = stmt.where(Alert.state == state)
    stmt = stmt.order_by(
        case((Alert.state == FIRING, 0), else_=1), severity_rank, Alert.last_seen.desc(), Alert.id.desc()
    ).limit(limit)
    return [_view(row) for row in conn.execute(stmt)]


def resolved_alerts(conn: Connection, *, limit: int = 200) -> list[AlertView]:
    """Resolved episodes, the most recently resolved first; at most ``limit`` (the Alerts page's history)."""
    stmt = (
        select(*_COLUMNS)
        .where(Alert.state == RESOLVED)
        .order_by(Alert.resolved_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    return [_view(row) for row in conn.execute(stmt)]


def firing_count(conn: Connection) -> int:
    """How many episodes fire now (acknowledged and silenced ones included): the navigation badge."""
    return int(conn.execute(select(func.count()).select_from(Alert).where(Alert.state == FIRING)).scalar_one())


def acknowledge(conn: Connection, alert_id: int, *, by: str, comment: str, now: datetime) -> AlertView | None:
    """Acknowledge a firing episode: no repeat messages until it resolves. ``None`` if no such firing alert."""
    done = conn.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.state == FIRING)
        .values(acked_at=now, acked_by=by, ack_comment=comment)
    )
    return get(conn, alert_id) if done.rowcount else None


def silence(
    conn: Connection, alert_id: int, *, until: datetime, by: str, comment: str, now: datetime
) -> AlertView | None:
    """Silence an episode until ``until`` (no messages, resolve included). ``None`` if there is no such alert."""
    if until <= now:
        raise ValueError("a silence must end in the future")
    done = conn.execute(
        update(Alert).where(Alert.id == alert_id).values(silenced_until=until, silenced_by=by, silence_comment=comment)
    )
    return get(conn, alert_id) if done.rowcount else None


def mark_notified(conn: Connection, alert_ids: Iterable[int], *, state: str, now: datetime) -> None:
    """Record that a message announcing ``state`` went out for these episodes at ``now``."""
    ids = list(alert_ids)
    if ids:
        conn.execute(update(Alert).where(Alert.id.in_(ids)).values(last_notified_at=now, notified_state=state))


def record_notification(
    conn: Connection,
    *,
    alert_id: int | None,
    kind: str,
    target: str,
    ok: bool,
    attempts: int,
    error: str | None,
    now: datetime,
) -> None:
    """Log one message tried: which episode (``None`` for a storm summary), where, and how it went."""
    conn.execute(
        insert(AlertNotification).values(
            alert_id=alert_id, kind=kind, target=target, sent_at=now, ok=ok, attempts=attempts, error=error
        )
    )


def recent_notifications(conn: Connection, *, limit: int = 100) -> list[dict[str, Any]]:
    """The latest messages tried, newest first, as plain dicts (for the CLI and the Alerts page)."""
    stmt = (
        select(
            AlertNotification.sent_at,
            AlertNotification.kind,
            AlertNotification.alert_id,
            AlertNotification.target,
            AlertNotification.ok,
            AlertNotification.attempts,
            AlertNotification.error,
        )
        .order_by(AlertNotification.sent_at.desc(), AlertNotification.id.desc())
        .limit(limit)
    )
    return [dict(row) for row in conn.execute(stmt).mappings()]


def claim_notification(
    conn: Connection, alert_ids: Iterable[int], *, announces: str, now: datetime, repeat_before: datetime | None = None
) -> list[int]:
    """Mark these episodes as announced at ``now`` unless another evaluator did first; the ids this caller won.

    ``announces`` is ``firing`` (a firing episode not announced yet), ``repeat`` (one announced at or before
    ``repeat_before``), ``escalated`` (an announced one whose severity changed since) or ``resolved`` (a resolved
    one whose firing was announced). Claiming before sending, in the transaction that reconciled, lets
    evaluators that run at once send each message once. A message goes to every target, so whatever an earlier
    one still owed some targets is dropped.
    """
    announced = or_(Alert.notified_severity.is_(None), Alert.notified_severity != Alert.severity)
    values: dict[str, Any] = {"last_notified_at": now, "notified_severity": Alert.severity, "owed": None}
    if announces == "firing":
        when = [Alert.state == FIRING, or_(Alert.notified_state.is_(None), Alert.notified_state != FIRING)]
        values["notified_state"] = FIRING
    elif announces == "repeat":
        if repeat_before is None:
            raise ValueError("a repeat is claimed with repeat_before")
        when = [Alert.state == FIRING, Alert.notified_state == FIRING, Alert.last_notified_at <= repeat_before]
    elif announces == "escalated":
        when = [Alert.state == FIRING, Alert.notified_state == FIRING, announced]
    elif announces == "resolved":
        when = [Alert.state == RESOLVED, Alert.notified_state == FIRING]
        values = {"notified_state": RESOLVED, "last_notified_at": now, "owed": None}
    else:
        raise ValueError(f"nothing to claim for {announces!r}")
    ids = list(alert_ids)
    won: list[int] = []
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        stmt = update(Alert).where(Alert.id.in_(chunk), *when).values(values).returning(Alert.id)
        won += [int(alert_id) for alert_id in conn.execute(stmt).scalars()]
    return sorted(won)


def release_notification(conn: Connection, alerts: Iterable[AlertView]) -> None:
    """Undo a claim whose message reached no target: each episode gets back what it had announced, and when, and
    what it still owed."""
    rows = [
        {"aid": a.id, "was": a.notified_state, "at": a.last_notified_at, "sev": a.notified_severity, "due": a.owed}
        for a in alerts
    ]
    if rows:
        stmt = (
            update(Alert)
            .where(Alert.id == bindparam("aid"))
            .values(
                notified_state=bindparam("was"),
                last_notified_at=bindparam("at"),
                notified_severity=bindparam("sev"),
                owed=bindparam("due"),
            )
        )
        conn.execute(stmt, rows)


def owed_text(kind: str, targets: Iterable[str]) -> str:
    """How ``owed`` records a message of ``kind`` that ``targets`` (``alerting.notify.target_keys``) missed."""
    return json.dumps({"kind": kind, "targets": sorted(set(targets))}, sort_keys=True)


def set_owed(conn: Connection, alert_ids: Iterable[int], *, kind: str, targets: Iterable[str]) -> None:
    """Record that a message of ``kind`` about these episodes is still owed to ``targets`` (none: nothing owed)."""
    ids = list(alert_ids)
    wanted = list(targets)
    owed = owed_text(kind, wanted) if wanted else None
    for start in range(0, len(ids), ID_CHUNK):
        conn.execute(update(Alert).where(Alert.id.in_(ids[start : start + ID_CHUNK])).values(owed=owed))


def pending(conn: Connection, *, besides: Iterable[int] = ()) -> list[AlertView]:
    """Episodes with a message still to send whatever this evaluation found: resolved ones whose end is not
    announced (every target was down, or a silence held it back) and those owing a message to some targets.
    ``besides`` are the episodes the caller already has."""
    known = set(besides)
    ids = conn.execute(
        select(Alert.id).where(
            or_((Alert.state == RESOLVED) & (Alert.notified_state == FIRING), Alert.owed.is_not(None))
        )
    ).scalars()
    return get_many(conn, [int(alert_id) for alert_id in ids if alert_id not in known])


def claim_owed(conn: Connection, alerts: Iterable[AlertView]) -> list[int]:
    """Take over the messages these episodes owe (as the caller read them); the ids no other evaluator took first."""
    won: list[int] = []
    for alert in alerts:
        if alert.owed is None:
            continue
        stmt = update(Alert).where(Alert.id == alert.id, Alert.owed == alert.owed).values(owed=None).returning(Alert.id)
        won += [int(alert_id) for alert_id in conn.execute(stmt).scalars()]
    return sorted(won)
