"""Notification messages: an alert episode (or many, summed up) as a title and a plain-text body in one language.

The words come from ``knowledge.alert_text``; here an alert's facts are put into words first (an error code's
title and resolution article, a license status, a failure class) and the frame is added: when it started or
ended, and how to acknowledge it. Text that came from a host (names, domains) is inserted as plain text with its
control characters removed and cut to a sane length; a message never holds a credential, since no alert fact
does.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerting.rules import Rule
from knowledge import alert_text
from knowledge.codes import lookup
from models.alerts import AlertView
from models.hostfacts import resolution, state_words

FIRING = "firing"
REPEAT = "repeat"
ESCALATED = "escalated"
RESOLVED = "resolved"
STORM = "storm"
SUBJECT_CHARS = 200
STORM_CODES = 5  # codes listed in a summary, most hosts first
STORM_EXAMPLES = 10  # subjects named in a summary


@dataclass(frozen=True, slots=True)
class Message:
    """One message to send: ``kind`` is firing, repeat, escalated, resolved or storm (a summary of ``announces``
    messages)."""

    kind: str
    announces: str  # firing, repeat, escalated or resolved: what the message tells of its alerts
    rule: str
    severity: str
    title: str
    body: str
    alert_ids: tuple[int, ...]

    @property
    def alert_id(self) -> int | None:
        """The one alert the message is about; ``None`` for a summary."""
        return self.alert_ids[0] if self.kind != STORM and len(self.alert_ids) == 1 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "announces": self.announces,
            "rule": self.rule,
            "severity": self.severity,
            "title": self.title,
            "alert_ids": list(self.alert_ids),
        }


def plain(text: str, limit: int = SUBJECT_CHARS) -> str:
    """Host-supplied text fit for a message line: no control or format characters, one line, at most ``limit``."""
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)
    line = " ".join(kept.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else "?"


def fact_values(facts: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """An alert's facts with the ones that need words in ``lang`` put into words."""
    values = {key: plain(str(value)) if isinstance(value, str) else value for key, value in facts.items()}
    code = facts.get("error_code")
    if code:
        values["error_title"] = lookup(str(code), lang).title
        values["error"] = alert_text.fact_words("error", lang, code=code, title=values["error_title"])
        fix = resolution(code, lang)
        values["article_url"] = fix.article_url if fix else None
    elif "error_code" in facts:
        values["error"] = alert_text.fact_words("no_code", lang)
    if facts.get("license_status"):
        values["license_status"] = state_words(str(facts["license_status"]), lang)
    if facts.get("activates"):
        threshold = facts.get("threshold")
        values["activates"] = alert_text.fact_words(f"activates.{facts['activates']}", lang, threshold=threshold)
    if facts.get("why"):
        failure = alert_text.fact_words(f"failure.{facts.get('failure')}", lang)
        values["why"] = alert_text.fact_words(f"why.{facts['why']}", lang, failure=failure, port=facts.get("port"))
    if "last_complete" in facts:
        last = facts["last_complete"]
        values["last_complete"] = when(datetime.fromisoformat(last)) if last else alert_text.fact_words("never", lang)
    if facts.get("poll_interval_s"):
        values["interval"] = _duration(int(facts["poll_interval_s"]), lang)
    return values


def _duration(seconds: int, lang: str) -> str:
    if seconds % 3600 == 0:
        return alert_text.fact_words("hours", lang, n=seconds // 3600)
    return alert_text.fact_words("minutes", lang, n=round(seconds / 60))


def alert_message(alert: AlertView, kind: str, rule: Rule, lang: str) -> Message:
    """The message announcing one alert: firing, still firing (repeat), more severe than announced (escalated) or
    resolved."""
    values = fact_values(alert.facts, lang)
    title = alert_text.frame(
        f"title.{kind}",
        lang,
        severity=alert_text.severity_words(alert.severity, lang),
        title=alert_text.rule_title(alert.rule, lang),
        subject=plain(alert.subject),
    )
    lines = [alert_text.detail(rule.text_key, values, lang)]
    if values.get("article_url"):
        lines.append(alert_text.fact_words("resolution", lang, url=values["article_url"]))
    if kind == RESOLVED:
        lines.append(alert_text.frame("resolved_at", lang, resolved_at=when(alert.resolved_at),
                                      first_seen=when(alert.first_seen)))  # fmt: skip
    else:
        lines.append(alert_text.frame("since", lang, first_seen=when(alert.first_seen)))
        lines.append(alert_text.frame("alert_id", lang, id=alert.id))
    return Message(kind, kind, alert.rule, alert.severity, title, "\n".join(line for line in lines if line),
                   (alert.id,))  # fmt: skip


def storm_message(alerts: Sequence[AlertView], kind: str, rule: Rule, lang: str) -> Message:
    """One message for many alerts of one per-host rule: how many, by error code with each code's resolution."""
    count = len(alerts)
    severity = rule.severity
    title = alert_text.frame(
        f"title.storm.{kind}",
        lang,
        severity=alert_text.severity_words(severity, lang),
        title=alert_text.rule_title(rule.name, lang),
        count=count,
    )
    lines = [alert_text.frame(f"storm.{kind}", lang, count=count)]
    codes = Counter(str(alert.facts.get("error_code") or "") for alert in alerts)
    ranked = sorted(codes.items(), key=lambda pair: (-pair[1], pair[0]))
    for code, hosts in ranked[:STORM_CODES]:
        if not code:
            lines.append(alert_text.frame("storm.no_code", lang, hosts=hosts))
            continue
        lines.append(alert_text.frame("storm.code", lang, code=code, code_title=lookup(code, lang).title, hosts=hosts))
        fix = resolution(code, lang)
        if fix is not None:
            lines.append("    " + alert_text.fact_words("resolution", lang, url=fix.article_url))
    if len(ranked) > STORM_CODES:
        lines.append(alert_text.frame("storm.more_codes", lang, n=len(ranked) - STORM_CODES))
    examples = ", ".join(plain(alert.subject, 80) for alert in alerts[:STORM_EXAMPLES])
    lines.append(alert_text.frame("storm.examples", lang, hosts=examples))
    return Message(STORM, kind, rule.name, severity, title, "\n".join(lines), tuple(alert.id for alert in alerts))
