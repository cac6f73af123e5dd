"""The Alerts page's history on both backends: resolved episodes only, the most recently resolved first, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models import alerts
from models.alerts import Finding
from models.db import open_database

RULE = "host_failing"


def finding(host: str) -> Finding:
    return Finding(RULE, host, host, "critical" if host == "ws-d" else "warning")


def test_resolved_alerts_lists_the_most_recently_resolved_first(db_url: str) -> None:
    engine = open_database(db_url)
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    hosts = ["ws-a", "ws-b", "ws-c", "ws-d"]
    with engine.begin() as conn:
        alerts.reconcile(
            conn,
            [finding(host) for host in hosts],
            evaluated=[RULE],
            now=start,
        )
        # ws-b recovers first, then ws-d (critical: newness, not severity, orders the history), then ws-a
        for hour, still in enumerate((["ws-a", "ws-c", "ws-d"], ["ws-a", "ws-c"], ["ws-c"]), start=1):
            found = [finding(host) for host in still]
            alerts.reconcile(conn, found, evaluated=[RULE], now=start + timedelta(hours=hour))
        history = alerts.resolved_alerts(conn)
        newest_two = alerts.resolved_alerts(conn, limit=2)
    engine.dispose()
    assert [view.subject for view in history] == ["ws-a", "ws-d", "ws-b"]
    assert [view.resolved_at for view in history] == [start + timedelta(hours=h) for h in (3, 2, 1)]
    assert all(view.state == alerts.RESOLVED for view in history)
    assert [view.subject for view in newest_two] == ["ws-a", "ws-d"]
