"""Reusable pieces of page layout: the headline metrics, the trend, small tables and chart events.

Each function draws one block from frames or rows the query layer already shaped; none of them
aggregates or reads the database. Host-supplied text only reaches the screen through ``st.dataframe``
cells or ``st.text``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

import pandas as pd
import streamlit as st

from models.queries import FleetSummary
from models.runs import RunRow
from ui import charts
from ui.i18n import t


class Metric(NamedTuple):
    field: str
    label: str
    delta_color: str  # "normal": up is good, "inverse": up is bad, "off": neutral


METRICS = (
    Metric("hosts", "Hosts known", "off"),
    Metric("activated", "Activated", "normal"),
    Metric("in_grace", "In grace", "inverse"),
    Metric("unlicensed", "Notification / unlicensed", "inverse"),
    Metric("failing", "Failing", "inverse"),
    Metric("at_risk", "Renewal failing", "inverse"),
    Metric("unreachable", "Unreachable", "inverse"),
    Metric("stale", "Stale since {h} h", "inverse"),
)


METRIC_HELP = {
    "at_risk": "Licensed KMS clients whose renewals fail: they drop out of activation when their validity ends."
}


def delta(current: int, previous: int | None) -> int | None:
    """Change since the previous day, or ``None`` when that day is unknown."""
    return None if previous is None else current - previous


def headline(summary: FleetSummary, stale_hours: float) -> None:
    """One ``st.metric`` per headline number, each with its change since the previous day."""
    previous: Mapping[str, int | None] = summary.previous or {}
    half = len(METRICS) // 2  # two rows of four: every label fits at 1280 pixels, in both languages
    columns = [*st.columns(half), *st.columns(len(METRICS) - half)]
    for column, metric in zip(columns, METRICS, strict=True):
        value = int(getattr(summary, metric.field))
        label = t(metric.label).format(h=f"{stale_hours:g}")
        explained = METRIC_HELP.get(metric.field)
        column.metric(
            label,
            f"{value:,}",
            delta=delta(value, previous.get(metric.field)),
            delta_color=metric.delta_color,  # type: ignore[arg-type]
            help=t(explained) if explained else t("Change since the previous day"),
        )


def selected_code(event: Any) -> str | None:
    """The error code of the bar a user clicked in the failures-by-code chart, if any."""
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, Mapping) else []
    for point in points:
        custom = point.get("customdata")
        if isinstance(custom, list | tuple) and custom:
            return str(custom[0])
        label = str(point.get("y", ""))
        if label.startswith("0x"):
            return label.split(" ", 1)[0]
    return None


def trend(frame: pd.DataFrame) -> None:
    st.subheader(t("Activated vs not activated"))
    if frame.empty:
        st.info(t("No history yet: the trend fills in as daily rollups accumulate."))
        return
    st.plotly_chart(charts.activation_trend(frame, t), key="trend_chart")


def grace_table(frame: pd.DataFrame, days: int) -> None:
    st.subheader(t("Grace periods expiring within {d} days").format(d=days))
    if frame.empty:
        st.success(t("No grace period ends within {d} days.").format(d=days))
        return
    st.dataframe(
        frame,
        hide_index=True,
        key="grace_table",
        column_config={
            "host": st.column_config.TextColumn(t("host")),
            "activation_type": st.column_config.TextColumn(t("activation type")),
            "license_status": st.column_config.TextColumn(t("license status")),
            "grace_days_remaining": st.column_config.NumberColumn(t("grace ends (days)"), format="%.1f"),
        },
    )


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else t("never")


def last_run(run: RunRow | None) -> None:
    st.subheader(t("Last completed poll run"))
    if run is None:
        st.info(t("No poll run has completed yet."))
        return
    text = t("{ok} of {total} hosts read in {s:.0f} s")
    st.text(when(run.finished_at))
    st.text(text.format(ok=run.succeeded, total=run.hosts_total, s=run.duration_s or 0))


def pager(total: int, size: int, flt: object) -> int:
    """A page-number input (seeded from ``?page=``, back to 1 when the filter changes); returns the page."""
    pages = max(1, -(-total // size))
    if st.session_state.get("_pager_filter") != flt:
        url_page = st.query_params.get("page", "1")
        st.session_state["page"] = (
            int(url_page) if url_page.isdigit() and "_pager_filter" not in st.session_state else 1
        )
        st.session_state["_pager_filter"] = flt
    st.session_state["page"] = min(max(1, int(st.session_state.get("page") or 1)), pages)
    if pages == 1:
        return 1
    st.number_input(t("Page"), min_value=1, max_value=pages, key="page", width=160)
    st.caption(t("Page {page} of {pages}").format(page=st.session_state["page"], pages=pages))
    return int(st.session_state["page"])
