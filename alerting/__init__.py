"""Alerts: the rules (``alerting.rules``), one evaluation of them (``alerting.evaluate.run_alerts``), the messages
they send (``alerting.messages``) and the sending (``alerting.notify``, through apprise).

The checks the rules run are SQL in the query layer (``models.alert_checks``); the alert state lives in
``models.alerts``; the words, shared with the dashboard, in ``knowledge.alert_text``. Collectors may import this
package; the dashboard never does.
"""

from __future__ import annotations

from alerting.evaluate import AlertReport, run_alerts

__all__ = ["AlertReport", "run_alerts"]
