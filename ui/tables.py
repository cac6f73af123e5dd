"""Tables as the dashboard shows them: link columns added, labels translated, columns configured.

The frames come from ``models.queries``; here they gain only presentation (a "details" link per host,
a "resolution" link per failing row, state in words) and a ``column_config`` in the current language.
Links are built by ``ui.links`` from canonical codes and encoded names, never taken from host data.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from knowledge.kms import KMS_COUNT_CAP, KmsState
from ui import links
from ui.i18n import t

# Fixed widths for the leading columns keep the links where a user (and a browser test) expects them.
HOST_WIDTH, DETAILS_WIDTH, CODE_WIDTH, TITLE_WIDTH, RESOLUTION_WIDTH = 180, 80, 110, 300, 110
HOSTS_LEADING = ("host", "details", "error_code", "error_title", "resolution", "article")
ROW_HEIGHT = 35


def table_height(rows: int, limit: int = 600) -> int:
    """Pixels for ``rows`` rows plus the header, at most ``limit`` (the rest scrolls)."""
    return min(limit, ROW_HEIGHT * (rows + 1) + 3)


def _text(label: str) -> Any:
    return st.column_config.TextColumn(t(label))


def hosts(frame: pd.DataFrame, lang: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The working list with a details link per host and a resolution link per failing row."""
    shown = frame.drop(columns=["resolution_url", "state"], errors="ignore").assign(
        details=[links.host_url(host, lang) for host in frame["host"]],
        resolution=[links.resolution_url(code, lang) for code in frame["error_code"]],
        article=[links.article_url(code, lang) for code in frame["error_code"]],
        # the state people read: "Licensed - renewal failing" apart from a healthy Licensed
        license_status=[t(str(state)) if isinstance(state, str) else state for state in frame["state"]],
    )
    order = [*HOSTS_LEADING, "license_status", "activation_type"]
    rest = [column for column in shown.columns if column not in order]
    config = {
        "host": st.column_config.TextColumn(t("host"), width=HOST_WIDTH, pinned=True),
        "details": st.column_config.LinkColumn(t("details"), display_text=t("open"), width=DETAILS_WIDTH),
        "error_code": st.column_config.TextColumn(t("error"), width=CODE_WIDTH),
        "error_title": st.column_config.TextColumn(t("error title"), width=TITLE_WIDTH),
        "resolution": st.column_config.LinkColumn(
            t("resolution"), display_text=t("how to fix"), width=RESOLUTION_WIDTH
        ),
        "article": st.column_config.LinkColumn(t("Microsoft article"), display_text=t("open article")),
        "license_status": _text("license status"),
        "activation_type": _text("activation type"),
        "computer_name": _text("computer name"),
        "domain": _text("domain"),
        "site": _text("site"),
        "os": _text("OS"),
        "product_type": _text("product type"),
        "grace_days_remaining": st.column_config.NumberColumn(t("grace days left"), format="%.1f"),
        "kms_host": _text("KMS host"),
        "last_seen_utc": _text("last seen (UTC)"),
        "poll_error": _text("poll failure"),
    }
    return shown[order + rest], config


ROLE_WORDS = {"windows": "Windows", "office": "KMS host for Office only", "other": "another product only"}


def kms_hosts(frame: pd.DataFrame, lang: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """KMS hosts with their state in words and the count as a bar out of the cap."""
    shown = frame.assign(
        state=[KmsState(state).words(lang) for state in frame["state"]],
        details=[links.host_url(host, lang) for host in frame["host"]],
        kms_role=[t(ROLE_WORDS.get(str(role), "")) for role in frame["kms_role"]],
    )
    config = {
        "host": _text("host"),
        "details": st.column_config.LinkColumn(t("details"), display_text=t("open"), width="small"),
        "computer_name": _text("computer name"),
        "fqdn": _text("FQDN"),
        "product_type": _text("product type"),
        "kms_role": _text("KMS host for"),
        "current_count": st.column_config.ProgressColumn(
            t("current count"), min_value=0, max_value=KMS_COUNT_CAP, format="%d", help=t("KMS_CAP_HELP")
        ),
        "state": _text("state"),
        "total_requests": st.column_config.NumberColumn(t("requests")),
        "failed_requests": st.column_config.NumberColumn(t("failed requests")),
        "licensed_requests": st.column_config.NumberColumn(t("licensed requests")),
        "non_genuine_requests": st.column_config.NumberColumn(t("non-genuine requests")),
        "listening_port": st.column_config.NumberColumn(t("port"), format="%d"),
        "dns_publishing": st.column_config.CheckboxColumn(t("DNS publishing")),
        "listening": st.column_config.CheckboxColumn(t("listening")),
        "clients": st.column_config.NumberColumn(t("clients")),
        "failing_clients": st.column_config.NumberColumn(t("failing clients")),
        "observed_at": st.column_config.DatetimeColumn(t("observed"), format="YYYY-MM-DD HH:mm"),
    }
    order = ["host", "details", "current_count", "state"]
    return shown[order + [c for c in shown.columns if c not in order]], config


def kms_names(frame: pd.DataFrame) -> dict[str, str]:
    """Inventory name -> ``KMS01 (10.1.0.10)`` for pickers (plain text widgets, nothing to escape)."""
    return {
        str(host): f"{name} ({host})" if isinstance(name, str) and name and name != host else str(host)
        for host, name in zip(frame["host"], frame["computer_name"], strict=True)
    }


def poll_runs(frame: pd.DataFrame) -> dict[str, Any]:
    config: dict[str, Any] = {
        "id": st.column_config.NumberColumn("#", format="%d"),
        "started_at": st.column_config.DatetimeColumn(t("started"), format="YYYY-MM-DD HH:mm:ss"),
        "finished_at": st.column_config.DatetimeColumn(t("finished"), format="YYYY-MM-DD HH:mm:ss"),
        "duration_s": st.column_config.NumberColumn(t("duration (s)"), format="%.1f"),
        "collector": _text("collector"),
        "shard": _text("shard"),
        "status": _text("status"),
        "hosts_total": st.column_config.NumberColumn(t("hosts tried")),
        "succeeded": st.column_config.NumberColumn(t("succeeded")),
    }
    for column in failure_columns(frame):
        config[column] = st.column_config.NumberColumn(t(column.removeprefix("failed_")))
    return config


def failure_columns(frame: pd.DataFrame) -> list[str]:
    """The per-class failure columns of a poll-runs frame (``failed_dns`` ... ``failed_protocol``)."""
    return [column for column in frame.columns if column.startswith("failed_")]
