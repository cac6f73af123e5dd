"""A few realistic alerts written through ``models.alerts.reconcile``, as the alert engine writes them.

Three evaluations: three hours ago DNS lost the KMS SRV record and a grace period was ending; an hour ago both
had resolved and a KMS host fell below its threshold, 0xC004F074 spiked and a collector went quiet; now the same
fire still. Two messages were tried. ``hostile`` adds a failing host whose name is a script tag; ``handled``
acknowledges and silences the way a team would, for the README's screenshot.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from models import alerts
from models.alerts import Finding

HOSTILE_SUBJECT = "<script>alert('subject')</script>"
RULES = ("srv_missing", "grace_ending", "kms_below_threshold", "code_spike", "collector_quiet", "host_failing")


def _current(hostile: bool) -> list[Finding]:
    found = [
        Finding(
            "kms_below_threshold",
            "10.1.0.11",
            "10.1.0.11",
            "critical",
            {"computer_name": "KMS02", "count": 12, "threshold": 25, "failing_clients": 4},
        ),
        Finding(
            "code_spike",
            "0xC004F074",
            "0xC004F074",
            "warning",
            {"error_code": "0xC004F074", "hosts": 48, "baseline": 3.4, "factor": 14.1},
        ),
        Finding(
            "collector_quiet",
            "collector-kaohsiung",
            "collector-kaohsiung",
            "warning",
            {"last_complete": "2026-11-25 22:00 UTC", "interval": "1 h", "shards": ["2/4"]},
        ),
    ]
    if hostile:
        found.append(
            Finding(
                "host_failing",
                HOSTILE_SUBJECT,
                HOSTILE_SUBJECT,
                "info",
                {"error_code": "0xC004F074", "note": "<b>x</b>"},
            )
        )
    return found


def seed_alerts(conn: Any, now: datetime, *, hostile: bool = False, handled: bool = False) -> dict[str, int]:
    """Write the alerts; returns rule -> alert id (the latest episode of each rule)."""
    earlier = [
        Finding(
            "srv_missing",
            "corp.example",
            "corp.example",
            "warning",
            {"srv_name": "_vlmcs._tcp.corp.example", "clients": 118, "hurt": 0},
        ),
        Finding("grace_ending", "10.1.1.12", "10.1.1.12", "warning", {"license_status": "OOBGrace", "grace_days": 6.5}),
    ]
    alerts.reconcile(conn, earlier, evaluated=RULES, now=now - timedelta(hours=3))
    alerts.reconcile(conn, _current(hostile), evaluated=RULES, now=now - timedelta(hours=1))
    alerts.reconcile(conn, _current(hostile), evaluated=RULES, now=now)
    ids = {view.rule: view.id for view in reversed(alerts.list_alerts(conn))}
    sent = (
        (ids["kms_below_threshold"], "firing", "mailtos://smtp.corp.example", True, 1, None),
        (None, "storm", "msteams://corp.webhook.office.com", False, 3, "HTTP 503 Service Unavailable"),
    )
    for alert_id, kind, target, ok, attempts, error in sent:
        alerts.record_notification(
            conn,
            alert_id=alert_id,
            kind=kind,
            target=target,
            ok=ok,
            attempts=attempts,
            error=error,
            now=now - timedelta(minutes=59),
        )
    if handled:
        alerts.acknowledge(
            conn,
            ids["collector_quiet"],
            by="it-ops@corp.example",
            comment="Kaohsiung collector VM patched; back after its reboot",
            now=now - timedelta(minutes=20),
        )
        alerts.silence(
            conn,
            ids["code_spike"],
            until=now + timedelta(hours=4),
            by="it-ops@corp.example",
            comment="Known: KMS02 below threshold; cleared once it counts 25",
            now=now - timedelta(minutes=10),
        )
    return ids
