"""Pure plotly figure builders: a query frame in, a ``go.Figure`` out, no Streamlit.

Colours come from the Okabe-Ito palette, which stays distinguishable for the common colour-vision
deficiencies and reads on both light and dark backgrounds; the background is left transparent so the
Streamlit theme shows through. Every error code on a chart carries its title in the hover text. Host-
supplied text is escaped before it reaches plotly, whose labels accept a few HTML tags.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from knowledge.kms import KMS_CLIENT_THRESHOLD, KMS_COUNT_CAP, KMS_SERVER_THRESHOLD
from knowledge.kms_health import KmsHealth

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
# Dates on axes and in hover labels: ISO unless the translator names its language's formats (``ui.i18n``
# ``DATE_FORMAT``/``DATE_TIME_FORMAT``). Only numeric directives: a month name (%b, %B) would be English in
# any language, because plotly formats dates in the browser with its English default locale.
DATE_FORMAT = "%Y-%m-%d"
DATE_TIME_FORMAT = "%Y-%m-%d %H:%M"
DAY_MS = 86_400_000


def _same(text: str) -> str:
    return text


def date_formats(t: Translate = _same) -> tuple[str, str]:
    """The day format and the day-and-time format of ``t``'s language, e.g. ``%Y/%m/%d`` in Traditional Chinese."""
    day, moment = t("DATE_FORMAT"), t("DATE_TIME_FORMAT")
    return (DATE_FORMAT if day == "DATE_FORMAT" else day, DATE_TIME_FORMAT if moment == "DATE_TIME_FORMAT" else moment)


def date_axis(t: Translate = _same, *, with_time: bool = False) -> dict[str, object]:
    """Settings for a date axis in ``t``'s language: ticks as days, with the time once ticks are less than a
    day apart, and the axis' hover label as a day or, ``with_time``, a day and time."""
    day, moment = date_formats(t)
    return {
        "type": "date",
        "tickformat": day,
        "tickformatstops": [
            {"dtickrange": [None, DAY_MS], "value": moment},
            {"dtickrange": [DAY_MS, None], "value": day},
        ],
        "hoverformat": moment if with_time else day,
    }


def hover_date(t: Translate = _same, *, with_time: bool = False) -> str:
    """``%{x|...}``: the x value of a hover template as a date (and time) in ``t``'s language."""
    day, moment = date_formats(t)
    return "%{x|" + (moment if with_time else day) + "}"


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
    """Horizontal bars, one per error code, labelled ``code · short title``; customdata is the code.

    ``frame`` comes most frequent first, ties by code; plotly draws the first row at the bottom, so the rows
    are reversed to keep that order from the top.
    """
    rows = frame.iloc[::-1]
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
    fig.update_xaxes(title=t("hosts"), rangemode="tozero", **count_axis(rows["hosts"].max()))
    return _layout(fig, height=max(240, 34 * len(rows) + 80))


def count_axis(largest: object) -> dict[str, object]:
    """Axis settings for a count of hosts: whole numbers only, one tick per host while there are few."""
    try:
        top = float(largest)  # type: ignore[arg-type]  # numpy and Python numbers alike
    except (TypeError, ValueError):
        top = 0.0
    return {"dtick": 1, "tick0": 0} if not top > 10 else {"tickformat": ",d"}


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
    tallest = frame.groupby("activation_type")["hosts"].sum().max() if len(frame) else 0
    fig.update_yaxes(title=t("hosts"), rangemode="tozero", **count_axis(tallest))
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
            hovertemplate=hover_date(t) + "<br>" + label + ": %{y}<extra></extra>",
        )
    tallest = frame[["activated", "not_activated"]].to_numpy().max() if len(frame) else 0
    fig.update_yaxes(title=t("hosts"), rangemode="tozero", **count_axis(tallest))
    fig.update_xaxes(**date_axis(t), **day_window(list(frame["day"])))
    return _layout(fig)


def day_window(days: Sequence[object]) -> dict[str, object]:
    """For a daily series: one tick per day while there are few (never the same day twice, never hours),
    and a day either side, so a single day is drawn as a whole point in the middle of the chart."""
    stamps = sorted(pd.Timestamp(day) for day in days)
    if not stamps:
        return {}
    first, last = stamps[0], stamps[-1]
    day = pd.Timedelta(days=1)
    window: dict[str, object] = {"range": [(first - day).isoformat(), (last + day).isoformat()]}
    if (last - first).days <= 14:
        window.update(dtick=DAY_MS, tick0=first.isoformat())
    return window


def _threshold_lines(fig: go.Figure, t: Translate, *, axis: str) -> None:
    for value, label, colour in (
        (KMS_SERVER_THRESHOLD, t("servers (5)"), ORANGE),
        (KMS_CLIENT_THRESHOLD, t("clients (25)"), BLUE),
    ):
        add = fig.add_vline if axis == "x" else fig.add_hline
        position = "top" if axis == "x" else "top right"
        add(value, line_dash="dot", line_color=colour, annotation_text=label, annotation_position=position)


# One colour per KMS host health state, worst first; the state's words go on the bar as well.
KMS_STATE_COLOURS: Mapping[KmsHealth, str] = {
    KmsHealth.UNREACHABLE: GREY,  # nothing current is known about it
    KmsHealth.NOT_LISTENING: VERMILION,
    KmsHealth.NOT_ACTIVATED: PURPLE,
    KmsHealth.CLIENTS_FAILING: ORANGE,
    KmsHealth.BELOW_THRESHOLD: YELLOW,
    KmsHealth.OFFICE_ONLY: SKY,
    KmsHealth.HEALTHY: GREEN,
}


def kms_counts(frame: pd.DataFrame, states: Sequence[str] | None = None, t: Translate = _same) -> go.Figure:
    """Each KMS host's current count as a bar against the 5 and 25 thresholds, axis capped at 50, in the colour
    of its health state (``frame["state"]``, a ``KmsHealth`` value); the worst state sits at the bottom edge.

    ``states`` (the state in words, in ``frame`` order) is written on each bar after the count when given; the
    hover adds the host's ``reasons`` when the frame has them. A host never read has no count: "—", no bar.
    """
    health = [KmsHealth(state) for state in frame["state"]]
    counts = [_known_count(count) for count in frame["current_count"]]
    order = sorted(range(len(frame)), key=lambda i: (health[i].rank, counts[i] or 0))
    rows = frame.iloc[order]
    reasons = list(frame["reasons"]) if "reasons" in frame else [""] * len(frame)
    shown = ["—" if counts[i] is None else str(counts[i]) for i in order]
    fig = go.Figure(
        go.Bar(
            x=[counts[i] or 0 for i in order],
            y=[kms_label(host, name) for host, name in zip(rows["host"], rows["computer_name"], strict=True)],
            orientation="h",
            marker_color=[KMS_STATE_COLOURS[health[i]] for i in order],
            text=[f"{n} · {plain(states[i])}" for n, i in zip(shown, order, strict=True)] if states else None,
            textposition="outside",
            cliponaxis=False,
            customdata=[[n, _hover_lines(reasons[i])] for n, i in zip(shown, order, strict=True)],
            hovertemplate="%{y}<br>" + t("current count") + ": %{customdata[0]}%{customdata[1]}<extra></extra>",
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


def _known_count(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)  # type: ignore[call-overload]


def _hover_lines(reasons: object) -> str:
    """A host's reasons (``a; b`` or ``a；b``) as hover lines after the count, escaped; "" for none."""
    parts = [part.strip() for part in re.split(r"[;；]", str(reasons or "")) if part.strip()]
    return "".join(f"<br>{plain(part)}" for part in parts)


def kms_count_history(frame: pd.DataFrame, t: Translate = _same) -> go.Figure:
    """One KMS host's count over time with the thresholds drawn across."""
    fig = go.Figure(
        go.Scatter(
            x=frame["observed_at"].tolist(),
            y=frame["current_count"].tolist(),
            mode="lines+markers",
            line={"color": BLUE, "shape": "hv"},
            name=t("current count"),
            hovertemplate=hover_date(t, with_time=True) + "<br>" + t("current count") + ": %{y}<extra></extra>",
        )
    )
    _threshold_lines(fig, t, axis="y")
    fig.update_yaxes(range=[0, KMS_COUNT_CAP], title=t("current count"))
    fig.update_xaxes(**date_axis(t, with_time=True))
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
    tallest = runs[["succeeded", *failure_columns]].sum(axis=1).max() if len(runs) else 0
    fig.update_yaxes(title=t("hosts"), rangemode="tozero", **count_axis(tallest))
    return _layout(fig, height=320)


def status_timeline(frame: pd.DataFrame, titles: Mapping[str, str], t: Translate = _same) -> go.Figure:
    """A host's license status over time as a step line; the hover names the error code and its title."""
    codes = [code or "" for code in frame["error_code"]]
    hover = [f"{code} · {plain(titles.get(code, ''))}" if code else "" for code in codes]
    when = hover_date(t, with_time=True)
    fig = go.Figure(
        go.Scatter(
            x=frame["changed_at"].tolist(),
            y=[t(str(status)) for status in frame["license_status"]],
            mode="lines+markers",
            line={"shape": "hv", "color": BLUE},
            marker={"size": 10, "color": [VERMILION if code else GREEN for code in codes]},
            customdata=list(zip([t(str(a)) for a in frame["activation_type"]], hover, strict=True)),
            hovertemplate=when + "<br>%{y} · %{customdata[0]}<br>%{customdata[1]}<extra></extra>",
        )
    )
    fig.update_yaxes(type="category", title=t("license status"))
    fig.update_xaxes(**date_axis(t, with_time=True))
    return _layout(fig, height=260)
