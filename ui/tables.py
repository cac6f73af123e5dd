"""Tables as the dashboard shows them: link columns added, labels translated, columns configured.

The frames come from ``models.queries``; here they gain only presentation (a "details" link per host,
a "resolution" link per failing row, state in words) and a ``column_config`` in the current language.
Links are built by ``ui.links`` from canonical codes and encoded names, never taken from host data.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from knowledge.kms_health import KmsHealth
from ui import links
from ui.charts import KMS_STATE_COLOURS
from ui.i18n import t

# Fixed widths for the leading columns keep the links where a user (and a browser test) expects them.
# At 1280 pixels these, the state and the activation type are all in view.
HOST_WIDTH, DETAILS_WIDTH, CODE_WIDTH, TITLE_WIDTH, RESOLUTION_WIDTH = 150, 60, 100, 250, 90
HOSTS_LEADING = ("host", "details", "error_code", "error_title", "resolution")
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
# The columns that must fit one screen (1280 px wide), in order, with their widths; the rest follow.
KMS_KEY_COLUMNS = {
    "host": 130,
    "state": 130,
    "details": 70,
    "count": 80,
    "listening": 80,
    "clients": 100,
    "activated": 80,
    "dns_publishing": 100,
}
KMS_REST = (
    "reasons", "computer_name", "fqdn", "kms_role", "product_type", "current_count", "listening_port",
    "total_requests", "failed_requests", "licensed_requests", "non_genuine_requests", "failing_clients",
    "observed_at",
)  # fmt: skip
KMS_TINT = "40"  # the state colour at 25 % opacity behind the state's words: readable on light and dark themes


def kms_hosts(frame: pd.DataFrame, lang: str) -> tuple[Styler, dict[str, Any]]:
    """KMS hosts with their health state in words on the state's colour, key evidence first, counters after.

    ``count`` reads the count against the threshold it must reach (``12 < 25``), ``clients`` the clients failing
    against the host out of all that use it (``2 / 12``); yes / no / unknown stand for the flags.
    """
    counts = [None if pd.isna(c) else int(c) for c in frame["current_count"]]
    shown = frame.assign(
        state=kms_state_words(frame, lang),
        details=[links.host_url(host, lang) for host in frame["host"]],
        count=[_against(c, int(limit)) for c, limit in zip(counts, frame["threshold"], strict=True)],
        listening=[_yes_no(value) for value in frame["listening"]],
        clients=[f"{int(n)} / {int(all_)}" for n, all_ in zip(frame["failing_here"], frame["clients"], strict=True)],
        activated=[_yes_no(value) for value in frame["activated"]],
        dns_publishing=[_yes_no(value) for value in frame["dns_publishing"]],
        kms_role=[t(ROLE_WORDS.get(str(role), "")) for role in frame["kms_role"]],
    )[[*KMS_KEY_COLUMNS, *KMS_REST]]
    config = {
        "host": st.column_config.TextColumn(t("host"), width=KMS_KEY_COLUMNS["host"], pinned=True),
        "state": st.column_config.TextColumn(t("state"), width=KMS_KEY_COLUMNS["state"], help=t("KMS_STATE_HELP")),
        "details": st.column_config.LinkColumn(t("details"), display_text=t("open"), width=KMS_KEY_COLUMNS["details"]),
        "count": st.column_config.TextColumn(t("count"), width=KMS_KEY_COLUMNS["count"], help=t("KMS_COUNT_HELP")),
        "listening": st.column_config.TextColumn(t("listening"), width=KMS_KEY_COLUMNS["listening"]),
        "clients": st.column_config.TextColumn(
            t("failing / clients"), width=KMS_KEY_COLUMNS["clients"], help=t("KMS_CLIENTS_HELP")
        ),
        "activated": st.column_config.TextColumn(t("activated"), width=KMS_KEY_COLUMNS["activated"]),
        "dns_publishing": st.column_config.TextColumn(t("SRV published"), width=KMS_KEY_COLUMNS["dns_publishing"]),
        "reasons": st.column_config.TextColumn(t("reasons"), width="large"),
        "computer_name": _text("computer name"),
        "fqdn": _text("FQDN"),
        "kms_role": _text("KMS host for"),
        "product_type": _text("product type"),
        "current_count": st.column_config.NumberColumn(t("current count"), format="%d", help=t("KMS_CAP_HELP")),
        "listening_port": st.column_config.NumberColumn(t("port"), format="%d"),
        "total_requests": st.column_config.NumberColumn(t("requests")),
        "failed_requests": st.column_config.NumberColumn(t("failed requests")),
        "licensed_requests": st.column_config.NumberColumn(t("licensed requests")),
        "non_genuine_requests": st.column_config.NumberColumn(t("non-genuine requests")),
        "failing_clients": st.column_config.NumberColumn(t("failing clients (any cause)")),
        "observed_at": st.column_config.DatetimeColumn(t("observed"), format="YYYY-MM-DD HH:mm"),
    }
    tints = [f"background-color: {KMS_STATE_COLOURS[KmsHealth(state)]}{KMS_TINT}" for state in frame["state"]]
    return shown.style.apply(lambda _: tints, subset=["state"]), config


def kms_state_words(frame: pd.DataFrame, lang: str) -> list[str]:
    """Each KMS host's health state in words, in ``frame`` order."""
    return [KmsHealth(state).words(lang) for state in frame["state"]]


def _against(count: int | None, threshold: int) -> str:
    if count is None:
        return "—"
    return f"{count} {'≥' if count >= threshold else '<'} {threshold}"


def _yes_no(value: object) -> str:
    if value is None or pd.isna(value):
        return t("unknown")
    return t("yes") if value else t("no")


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
    config["set_aside"] = st.column_config.NumberColumn(
        t("set aside"),
        help=t("Results the database refused; the collector keeps them in its spool's set-aside folder."),
    )
    return config


def failure_columns(frame: pd.DataFrame) -> list[str]:
    """The per-class failure columns of a poll-runs frame (``failed_dns`` ... ``failed_protocol``)."""
    return [column for column in frame.columns if column.startswith("failed_")]
