"""The Alerts page's tables and its navigation entry: alert episodes and messages sent, as people read them.

The episodes come from ``models.alerts`` (through ``ui.data``); here they become frames with the rule's title,
the severity in words, the facts as ``key: value`` text and a link where the subject is something the dashboard
has a page for (a host, an error code). Every value that came from a host, a rule or a person (subjects, facts,
names, comments, message targets and errors) reaches the screen only as a table cell, never as Markdown or HTML.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from knowledge.alert_text import HOST_RULES, rule_title, severity_words
from models.alerts import AlertView
from models.signin import PASSWORD_ACCOUNT
from ui import links
from ui.i18n import t

NO_SIGN_IN = "dashboard (no sign-in)"  # who acknowledged or silenced, when the dashboard asks nobody to sign in
PASSWORD_SIGN_IN = f"dashboard ({PASSWORD_ACCOUNT} sign-in)"  # the shared-password account
CODE_RULES = frozenset({"code_spike"})  # rules whose subject is an error code
ICON = ":material/notifications:"
TIME_FORMAT = "YYYY-MM-DD HH:mm"
MAX_FACT_CHARS = 400


def nav_title(firing: int) -> str:
    """The navigation label: "Alerts" with the number firing on a red badge (Markdown Streamlit draws)."""
    return f"{t('Alerts')} :red-badge[{firing}]" if firing > 0 else t("Alerts")


def tab_title(firing: int) -> str:
    """The browser tab's title: plain text, which the tab cannot render as a badge."""
    return f"{t('Alerts')} ({firing})" if firing > 0 else t("Alerts")


def nav_page(firing: int) -> st.Page:
    return st.Page(links.ALERTS.path, title=nav_title(firing), icon=ICON, url_path=links.ALERTS.url_path)


def who_words(who: str | None) -> str:
    """Who acknowledged or silenced: the account as recorded, the dashboard's own names in the page's language."""
    if not who:
        return ""
    return t(who) if who in (NO_SIGN_IN, PASSWORD_SIGN_IN) else who


def facts_text(facts: Mapping[str, Any]) -> str:
    """``key: value`` pairs separated by ``; ``, lists joined by commas; cut at ``MAX_FACT_CHARS``."""
    parts = []
    for key, value in facts.items():
        if isinstance(value, list | tuple):
            shown = ", ".join(str(item) for item in value)
        elif isinstance(value, dict):
            shown = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        else:
            shown = str(value)
        parts.append(f"{key}: {shown}")
    text = "; ".join(parts)
    return text if len(text) <= MAX_FACT_CHARS else text[: MAX_FACT_CHARS - 1] + "…"


def subject_url(rule: str, subject: str, lang: str) -> str | None:
    """The page about the subject: Host detail for a host, the knowledge base for an error code, Poll runs for a
    collector, KMS hosts for a domain's SRV record."""
    if rule in HOST_RULES and subject:
        return links.host_url(subject, lang)
    if rule in CODE_RULES:
        return links.resolution_url(subject, lang)
    if rule == "collector_quiet":
        return links.page_url(links.POLL_RUNS, lang)
    if rule.startswith("srv_"):
        return links.page_url(links.KMS_HOSTS, lang)
    return None


def label(alert: AlertView, lang: str) -> str:
    """One line naming an alert in a picker: ``#12 · critical · KMS host unreachable · KMS01`` (plain text)."""
    subject = alert.subject if len(alert.subject) <= 80 else alert.subject[:79] + "…"
    return f"#{alert.id} · {severity_words(alert.severity, lang)} · {rule_title(alert.rule, lang)} · {subject}"


def _acked(alert: AlertView) -> str:
    if alert.acked_at is None:
        return ""
    return f"{who_words(alert.acked_by)} · {alert.acked_at:%Y-%m-%d %H:%M}"


def _times(values: Iterable[datetime | None]) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True), dtype="datetime64[ns, UTC]")


def _leading(alerts: Sequence[AlertView], lang: str) -> dict[str, Any]:
    return {
        "id": [alert.id for alert in alerts],
        "severity": [severity_words(alert.severity, lang) for alert in alerts],
        "alert": [rule_title(alert.rule, lang) for alert in alerts],
        "subject": [alert.subject for alert in alerts],
        "details": [subject_url(alert.rule, alert.subject, lang) for alert in alerts],
    }


def _status(alert: AlertView, now: datetime) -> str:
    """How the alert is handled, in short: acknowledged, silenced until a time (UTC), both or neither."""
    said = [t("acknowledged")] if alert.acked_at is not None else []
    if alert.silenced_until is not None and alert.is_silenced(now):
        said.append(t("silenced until {time}").format(time=f"{alert.silenced_until:%m-%d %H:%M}"))
    return "; ".join(said)


def _config(*columns: str) -> dict[str, Any]:
    every = {
        "id": st.column_config.NumberColumn("#", format="%d", width=45),
        "severity": st.column_config.TextColumn(t("severity"), width=80),
        "alert": st.column_config.TextColumn(t("alert"), width=200),
        "subject": st.column_config.TextColumn(t("subject"), width=130),
        "details": st.column_config.LinkColumn(t("details"), display_text=t("open"), width=60),
        "status": st.column_config.TextColumn(t("status"), width=180),
        "since": st.column_config.DatetimeColumn(t("since (UTC)"), format=TIME_FORMAT, width=120),
        "last_seen": st.column_config.DatetimeColumn(t("last seen firing (UTC)"), format=TIME_FORMAT, width=120),
        "resolved": st.column_config.DatetimeColumn(t("resolved (UTC)"), format=TIME_FORMAT, width=120),
        "facts": st.column_config.TextColumn(t("facts"), width="large"),
        "acknowledged": st.column_config.TextColumn(t("acknowledged (by, UTC)")),
        "ack_comment": st.column_config.TextColumn(t("comment")),
        "silenced_until": st.column_config.DatetimeColumn(t("silenced until (UTC)"), format=TIME_FORMAT),
        "silenced_by": st.column_config.TextColumn(t("silenced by")),
        "silence_comment": st.column_config.TextColumn(t("silence comment")),
    }
    return {column: every[column] for column in columns}


def firing(alerts: Sequence[AlertView], lang: str, now: datetime) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Firing episodes in the order given, with who acknowledged or silenced them and until when."""
    silenced = [alert if alert.is_silenced(now) else None for alert in alerts]
    frame = pd.DataFrame(
        {
            **_leading(alerts, lang),
            "status": [_status(alert, now) for alert in alerts],
            "since": _times(alert.first_seen for alert in alerts),
            "last_seen": _times(alert.last_seen for alert in alerts),
            "acknowledged": [_acked(alert) for alert in alerts],
            "ack_comment": [alert.ack_comment or "" for alert in alerts],
            "silenced_until": _times(alert.silenced_until if alert else None for alert in silenced),
            "silenced_by": [who_words(alert.silenced_by) if alert else "" for alert in silenced],
            "silence_comment": [(alert.silence_comment or "") if alert else "" for alert in silenced],
            "facts": [facts_text(alert.facts) for alert in alerts],
        }
    )
    return frame, _config(*frame.columns)


def history(alerts: Sequence[AlertView], lang: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Resolved episodes in the order given (newest first), with the facts last seen and any acknowledgement."""
    frame = pd.DataFrame(
        {
            **_leading(alerts, lang),
            "since": _times(alert.first_seen for alert in alerts),
            "resolved": _times(alert.resolved_at for alert in alerts),
            "acknowledged": [_acked(alert) for alert in alerts],
            "ack_comment": [alert.ack_comment or "" for alert in alerts],
            "facts": [facts_text(alert.facts) for alert in alerts],
        }
    )
    return frame, _config(*frame.columns)


def messages(rows: Sequence[Mapping[str, Any]]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The messages tried, newest first: when, what kind, for which alert, where, whether it went, how often."""
    frame = pd.DataFrame(
        {
            "sent": _times(row["sent_at"] for row in rows),
            "kind": [t(str(row["kind"])) for row in rows],
            "alert": pd.Series([row["alert_id"] for row in rows], dtype="Int64"),
            "target": [str(row["target"]) for row in rows],
            "ok": [t("yes") if row["ok"] else t("no") for row in rows],
            "attempts": [int(row["attempts"]) for row in rows],
            "error": [row["error"] or "" for row in rows],
        }
    )
    config = {
        "sent": st.column_config.DatetimeColumn(t("sent (UTC)"), format="YYYY-MM-DD HH:mm:ss"),
        "kind": st.column_config.TextColumn(t("kind"), width=110),
        "alert": st.column_config.NumberColumn("#", format="%d", width=50),
        "target": st.column_config.TextColumn(t("target"), width="medium"),
        "ok": st.column_config.TextColumn(t("delivered"), width=80),
        "attempts": st.column_config.NumberColumn(t("attempts"), format="%d", width=80),
        "error": st.column_config.TextColumn(t("error"), width="large"),
    }
    return frame, config
