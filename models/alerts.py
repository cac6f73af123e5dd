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
firing or resolving: they only decide whether a message goes out (``is_quiet``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, insert, select, update

from models.store import upsert_insert
from models.tables import Alert, AlertNotification

FIRING = "firing"
RESOLVED = "resolved"
MAX_SUBJECT_KEY = 255


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
    acked_at: datetime | None
    acked_by: str | None
    ack_comment: str | None
    silenced_until: datetime | None
    silenced_by: str | None
    silence_comment: str | None

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
    for key, finding in findings.items():
        if key in open_rows:
            conn.execute(
                update(Alert)
                .where(Alert.id == open_rows[key].id)
                .values(last_seen=now, facts=finding.facts, subject=finding.subject, severity=finding.severity)
            )
            kept_ids.append(open_rows[key].id)
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
    rules = set(evaluated)
    gone = [row.id for key, row in open_rows.items() if key not in findings and key.split(":", 1)[0] in rules]
    if gone:
        conn.execute(
            update(Alert)
            .where(Alert.id.in_(gone), Alert.state == FIRING)
            .values(state=RESOLVED, open_key=None, resolved_at=now, last_seen=now)
        )
    return Changes(opened=get_many(conn, opened_ids), kept=get_many(conn, kept_ids), resolved=get_many(conn, gone))


def get_many(conn: Connection, ids: Sequence[int]) -> list[AlertView]:
    if not ids:
        return []
    rows = conn.execute(select(*_COLUMNS).where(Alert.id.in_(list(ids))).order_by(Alert.id))
    return [_view(row) for row in rows]


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
    return [dict(row._mapping) for row in conn.execute(stmt)]
