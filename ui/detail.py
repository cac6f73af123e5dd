"""Blocks of the Host detail page: current state, findings with evidence, history and codes to fix.

Everything a host reported (names, descriptions, reasons, evidence) reaches the screen through
``st.dataframe`` cells or ``st.text``, never through Markdown.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from knowledge import findings as findings_text
from models.enums import HostState, Severity
from models.queries import FindingRow, HostDetail
from ui import links, tables, views
from ui.i18n import t

SEVERITY_ORDER = {Severity.FAIL.value: 0, Severity.WARN.value: 1, Severity.INFO.value: 2, Severity.OK.value: 3}


def state(found: HostDetail) -> None:
    """The headline state, the identity table and, when the last poll failed, why."""
    row = found.row
    columns = st.columns(4)
    columns[0].metric(t("License status"), t(row.license_status or "unknown"))
    columns[1].metric(t("Activation type"), t(row.activation_type or "unknown"))
    columns[2].metric(t("Error code"), row.error_code or "-", help=row.error_title or None)
    seen = found.last_success_at
    when = seen.strftime("%Y-%m-%d %H:%M UTC") if seen else None
    columns[3].metric(t("Last successful poll"), ago(seen) if seen else t("never"), help=when)
    if found.failure_class:
        st.warning(t("Last poll failed ({cls})").format(cls=found.failure_class))
        st.text(f"{found.failure_class}: {found.failure_reason or ''}")
    if row.state == HostState.RENEWAL_FAILING.value:
        st.warning(renewal_forecast(row.grace_days_remaining))
    if found.unread_classes:
        st.info(t("The last poll could not read {classes}; the fields they give are missing, not guessed.").format(
            classes=", ".join(found.unread_classes)))  # fmt: skip
    identity = identity_frame(found)
    st.dataframe(identity, hide_index=True, key="identity_table", height=tables.table_height(len(identity)))
    if found.products:
        st.dataframe(products_frame(found), hide_index=True, key="products_table")


def renewal_forecast(days_left: float | None, now: datetime | None = None) -> str:
    """When a Licensed KMS client whose renewals fail drops to Notification, in words."""
    days = max(days_left or 0.0, 0.0)
    when = (now or datetime.now(UTC)) + timedelta(days=days)
    return t(
        "Renewals are failing: Windows drops to Notification on {date} (in {days} days) unless one succeeds."
    ).format(date=when.strftime("%Y-%m-%d"), days=f"{days:.1f}")


def identity_frame(found: HostDetail) -> pd.DataFrame:
    row = found.row
    pairs = [
        (t("host"), row.host),
        (t("computer name"), row.computer_name),
        (t("domain"), row.domain),
        (t("FQDN"), found.fqdn),
        (t("site"), row.site),
        (t("OS"), " ".join(x for x in (row.os, found.os_version) if x)),
        (t("product type"), row.product_type),
        (t("KMS host"), row.kms_host),
        (t("grace days left"), _text(row.grace_days_remaining)),
        (t("Clock skew (s)"), "" if found.clock_skew_s is None else f"{found.clock_skew_s:.1f}"),
        (t("Signed in with"), found.signin),
        (t("Last attempt"), views.when(found.last_attempt_at)),
        (t("tags"), ", ".join(found.tags)),
    ]
    return pd.DataFrame([(k, _text(v)) for k, v in pairs], columns=[t("Current state"), ""])


def products_frame(found: HostDetail) -> pd.DataFrame:
    rows = [
        (
            p.product_name,
            p.channel,
            p.activation_type,
            p.license_status,
            p.error_code,
            p.partial_key,
            _kms_address(p.kms_machine or p.discovered_kms_machine, p.kms_port or p.discovered_kms_port),
        )
        for p in found.products
    ]
    headers = ["product", "channel", "activation type", "license status", "error", "partial key", "KMS host"]
    return pd.DataFrame(rows, columns=[t(h) for h in headers])


def _kms_address(machine: str | None, port: int | None) -> str:
    return f"{machine}:{port}" if machine and port else machine or ""


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return views.when(value)
    return str(value)


def evidence_text(evidence: Mapping[str, Any], lang: str = "en") -> str:
    """``label: value`` pairs in one line, the way the evidence column shows them: the keys in words of
    ``lang``, the values as the host or probe gave them (only the collector's own vocabulary in words)."""
    pairs = findings_text.evidence_pairs(evidence, lang, words=_words(lang))
    return "; ".join(f"{label}: {value}" for label, value in pairs)


def _words(lang: str) -> findings_text.Words:
    """License statuses and other stored vocabulary in words of ``lang``."""
    return functools.partial(t, lang=lang)


def summary_text(row: FindingRow, lang: str = "en") -> str:
    """A finding's summary in ``lang``, from its evidence; the stored summary when the evidence cannot say it."""
    return findings_text.in_words(row.check, row.severity, row.evidence, row.summary, lang, words=_words(lang))


KMS_HOST_RECORD = "kms_host_record"  # evidence key naming the KMS host a client's failure was traced to


def findings_frame(rows: Iterable[FindingRow], lang: str = "en") -> pd.DataFrame:
    ordered = sorted(rows, key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.check))
    data = [
        (
            t(f.check), t(f.severity), summary_text(f, lang), f.related_code or "",
            evidence_text(f.evidence or {}, lang), _kms_host_link(f.evidence or {}, lang),
        )
        for f in ordered
    ]  # fmt: skip
    columns = [t("check"), t("severity"), t("summary"), t("error"), t("evidence"), t("KMS host")]
    return pd.DataFrame(data, columns=columns)


def _kms_host_link(evidence: Mapping[str, Any], lang: str) -> str | None:
    """A link to the KMS host a finding was traced to (built from its inventory name, never from markup)."""
    name = evidence.get(KMS_HOST_RECORD)
    return links.host_url(str(name), lang) if isinstance(name, str) and name else None


def findings(found: HostDetail, lang: str = "en") -> None:
    if not found.findings:
        st.info(t("No diagnosis recorded."))
        return
    shown = findings_frame(found.findings, lang)
    config = {
        t("summary"): st.column_config.TextColumn(width="large"),
        t("evidence"): st.column_config.TextColumn(width="large"),
        t("KMS host"): st.column_config.LinkColumn(display_text=t("Open the KMS host")),
    }
    st.dataframe(shown, hide_index=True, key="findings_table", column_config=config)


def history_frame(history: pd.DataFrame) -> pd.DataFrame:
    return history.rename(
        columns={
            "changed_at": t("changed"),
            "license_status": t("license status"),
            "activation_type": t("activation type"),
            "error_code": t("error"),
        }
    )


def codes_to_fix(found: HostDetail) -> list[str]:
    """The host's error code, then the codes its failing findings point at, without repeats."""
    codes = [found.row.error_code] if found.row.error_code else []
    codes += [f.related_code for f in found.findings if f.related_code and f.severity == Severity.FAIL.value]
    return list(dict.fromkeys(codes))


def ago(moment: datetime, now: datetime | None = None) -> str:
    """How long ago, in the largest unit that fits (the exact time is in the metric's help)."""
    at = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    seconds = max(((now or datetime.now(UTC)) - at).total_seconds(), 0.0)
    if seconds < 60:
        return t("just now")
    for size, words in ((86400, "{n} d ago"), (3600, "{n} h ago"), (60, "{n} min ago")):
        if seconds >= size:
            return t(words).format(n=int(seconds // size))
    return t("just now")  # pragma: no cover  # the loop returns for anything over a minute
