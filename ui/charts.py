"""Pure plotly figure builders: a query frame in, a ``go.Figure`` out, no Streamlit.

Colours come from the Okabe-Ito palette, which stays distinguishable for the common colour-vision
deficiencies and reads on both light and dark backgrounds; the background is left transparent so the
Streamlit theme shows through. Every error code on a chart carries its title in the hover text. Host-
supplied text is escaped before it reaches plotly, whose labels accept a few HTML tags.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from knowledge.kms import KMS_CLIENT_THRESHOLD, KMS_COUNT_CAP, KMS_SERVER_THRESHOLD, KmsState, kms_state

# Okabe & Ito (2008) "Color Universal Design"; black is swapped for grey so it shows on dark themes.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#999999")
BLUE, ORANGE, GREEN, VERMILION, PURPLE, SKY, YELLOW, GREY = PALETTE
TITLE_WIDTH = 48
# One fixed colour per license status, so a status keeps its colour whatever else is on the chart.
STATUS_COLOURS = {
    "Licensed": GREEN,
    "Unlicensed": VERMILION,
    "Notification": PURPLE,
    "OOBGrace": ORANGE,
    "OOTGrace": YELLOW,
    "NonGenuineGrace": SKY,
    "ExtendedGrace": BLUE,
    "RenewalFailing": GREEN,  # still licensed, so green, hatched in vermilion: it drops out when its validity ends
}
# (shape, stripe colour): a pattern tells the state apart without relying on colour vision alone
STATUS_PATTERNS = {"RenewalFailing": ("/", VERMILION)}

Translate = Callable[[str], str]


def _same(text: str) -> str:
    return text


def plain(value: object) -> str:
    """Text for a plotly label: host-supplied strings must not be read as plotly's HTML subset."""
    return html.escape("" if value is None else str(value), quote=False)


def short(text: str, width: int = TITLE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _layout(fig: go.Figure, *, height: int = 360) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        colorway=list(PALETTE),
    )
    return fig


def failures_by_code(frame: pd.DataFrame, t: Translate = _same) -> go.Figure:
    """Horizontal bars, one per error code, labelled ``code · short title``; customdata is the code."""
    rows = frame.sort_values("hosts", ascending=True)
    labels = [f"{code} · {short(plain(title))}" for code, title in zip(rows["error_code"], rows["title"], strict=True)]
    fig = go.Figure(
        go.Bar(
            x=rows["hosts"].tolist(),
            y=labels,
            orientation="h",
            marker_color=VERMILION,
            customdata=list(zip(rows["error_code"], [plain(x) for x in rows["title"]], strict=True)),
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>" + t("hosts") + ": %{x}<extra></extra>",
        )
    )
    fig.update_xaxes(title=t("hosts"), rangemode="tozero")
    return _layout(fig, height=max(240, 34 * len(rows) + 80))


def failures_by_activation_type(frame: pd.DataFrame, t: Translate = _same) -> go.Figure:
    """Stacked bars: activation type on x, one colour per license status."""
    fig = go.Figure()
    for status, part in frame.groupby("license_status", sort=True):
        fig.add_bar(
            x=[t(str(value)) for value in part["activation_type"]],
            y=part["hosts"].tolist(),
            name=t(str(status)),
            marker_color=STATUS_COLOURS.get(str(status), GREY),
            marker_pattern_shape=STATUS_PATTERNS.get(str(status), ("", None))[0],
            marker_pattern_fgcolor=STATUS_PATTERNS.get(str(status), ("", None))[1],
            marker_pattern_fillmode="overlay",  # stripes over the status colour, not over a blank bar
            marker_pattern_fgopacity=1.0,
            marker_pattern_solidity=0.4,
            hovertemplate="%{x}<br>" + t(str(status)) + ": %{y}<extra></extra>",
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title=t("hosts"), rangemode="tozero")
    return _layout(fig)


def activation_trend(frame: pd.DataFrame, t: Translate = _same) -> go.Figure:
    """Two lines over days: activated and not activated hosts."""
    fig = go.Figure()
    for column, colour in (("activated", GREEN), ("not_activated", VERMILION)):
        label = t(column.replace("_", " "))
        fig.add_scatter(
            x=frame["day"].tolist(),
            y=frame[column].tolist(),
            name=label,
            mode="lines+markers",
            line={"color": colour, "dash": "solid" if column == "activated" else "dash"},
            hovertemplate="%{x|%Y-%m-%d}<br>" + label + ": %{y}<extra></extra>",
        )
    fig.update_yaxes(title=t("hosts"), rangemode="tozero")
    fig.update_xaxes(tickformat="%Y-%m-%d")
    return _layout(fig)


def _threshold_lines(fig: go.Figure, t: Translate, *, axis: str) -> None:
    for value, label, colour in (
        (KMS_SERVER_THRESHOLD, t("servers (5)"), ORANGE),
        (KMS_CLIENT_THRESHOLD, t("clients (25)"), BLUE),
    ):
        add = fig.add_vline if axis == "x" else fig.add_hline
        position = "top" if axis == "x" else "top right"
        add(value, line_dash="dot", line_color=colour, annotation_text=label, annotation_position=position)


def kms_counts(frame: pd.DataFrame, states: Sequence[str] | None = None, t: Translate = _same) -> go.Figure:
    """Each KMS host's current count as a bar against the 5 and 25 thresholds, axis capped at 50.

    ``states`` (the state in words, in ``frame`` order) is written on each bar when given.
    """
    order = frame["current_count"].fillna(0).sort_values(kind="stable").index
    rows = frame.loc[order]
    words = [plain(states[frame.index.get_loc(i)]) for i in order] if states is not None else None
    colours = [_count_colour(int(count)) for count in rows["current_count"].fillna(0)]
    fig = go.Figure(
        go.Bar(
            x=rows["current_count"].tolist(),
            y=[kms_label(host, name) for host, name in zip(rows["host"], rows["computer_name"], strict=True)],
            orientation="h",
            marker_color=colours,
            text=[f"{int(c)} · {w}" for c, w in zip(rows["current_count"], words, strict=True)] if words else None,
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}<br>" + t("current count") + ": %{x}<extra></extra>",
        )
    )
    _threshold_lines(fig, t, axis="x")
    fig.update_xaxes(range=[0, KMS_COUNT_CAP], title=t("current count"))
    _layout(fig, height=max(240, 44 * len(rows) + 120))
    fig.update_layout(margin={"t": 50, "r": 140})  # room for the threshold labels and the words on long bars
    return fig


def kms_label(host: object, computer_name: object) -> str:
    """``KMS01 (10.1.0.10)`` when the computer name is known, else the inventory name."""
    host_text = plain(host)
    if computer_name is None or pd.isna(computer_name) or str(computer_name) == str(host):
        return host_text
    return f"{plain(computer_name)} ({host_text})"


def _count_colour(count: int) -> str:
    return {KmsState.ALL: GREEN, KmsState.SERVERS: ORANGE, KmsState.NONE: VERMILION}[kms_state(count)]


def kms_count_history(frame: pd.DataFrame, t: Translate = _same) -> go.Figure:
    """One KMS host's count over time with the thresholds drawn across."""
    fig = go.Figure(
        go.Scatter(
            x=frame["observed_at"].tolist(),
            y=frame["current_count"].tolist(),
            mode="lines+markers",
            line={"color": BLUE, "shape": "hv"},
            name=t("current count"),
            hovertemplate="%{x|%Y-%m-%d %H:%M}<br>" + t("current count") + ": %{y}<extra></extra>",
        )
    )
    _threshold_lines(fig, t, axis="y")
    fig.update_yaxes(range=[0, KMS_COUNT_CAP], title=t("current count"))
    return _layout(fig, height=300)


def poll_runs(frame: pd.DataFrame, failure_columns: Sequence[str], t: Translate = _same) -> go.Figure:
    """Stacked bars per run: hosts read, then hosts failed by failure class."""
    runs = frame.sort_values("started_at")
    x = [f"#{run_id}" for run_id in runs["id"]]
    fig = go.Figure()
    fig.add_bar(x=x, y=runs["succeeded"].tolist(), name=t("succeeded"), marker_color=GREEN)
    failure_colours = (VERMILION, ORANGE, PURPLE, SKY, YELLOW, GREY)
    for index, column in enumerate(failure_columns):
        name = t(column.removeprefix("failed_"))
        fig.add_bar(x=x, y=runs[column].tolist(), name=name, marker_color=failure_colours[index % len(failure_colours)])
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title=t("run"), type="category")
    fig.update_yaxes(title=t("hosts"), rangemode="tozero")
    return _layout(fig, height=320)


def status_timeline(frame: pd.DataFrame, titles: Mapping[str, str], t: Translate = _same) -> go.Figure:
    """A host's license status over time as a step line; the hover names the error code and its title."""
    codes = [code or "" for code in frame["error_code"]]
    hover = [f"{code} · {plain(titles.get(code, ''))}" if code else "" for code in codes]
    fig = go.Figure(
        go.Scatter(
            x=frame["changed_at"].tolist(),
            y=[t(str(status)) for status in frame["license_status"]],
            mode="lines+markers",
            line={"shape": "hv", "color": BLUE},
            marker={"size": 10, "color": [VERMILION if code else GREEN for code in codes]},
            customdata=list(zip([t(str(a)) for a in frame["activation_type"]], hover, strict=True)),
            hovertemplate="%{x|%Y-%m-%d %H:%M}<br>%{y} · %{customdata[0]}<br>%{customdata[1]}<extra></extra>",
        )
    )
    fig.update_yaxes(type="category", title=t("license status"))
    return _layout(fig, height=260)
