"""Dates on the date-axis charts read the way the page's language writes them: 2026/11/26 in Traditional
Chinese, never an English month name, on the axis and in the hover labels alike."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import pytest

from ui import charts, i18n

MONTH_NAMES = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\b")
NAMED_DIRECTIVES = ("%b", "%B", "%a", "%A", "%p", "%c", "%x")  # month, weekday and AM/PM names, locale forms
MOMENTS = [datetime(2026, 11, 24, 9, 30, tzinfo=UTC) + timedelta(days=n) for n in range(3)]


def translate(lang: str) -> Callable[[str], str]:
    return functools.partial(i18n.t, lang=lang)


def trend() -> go.Figure:
    days = [date(2026, 11, 24) + timedelta(days=n) for n in range(3)]
    frame = pd.DataFrame({"day": days, "activated": [40, 41, 42], "not_activated": [9, 8, 7]})
    return charts.activation_trend(frame, translate("zh-TW"))


def history(lang: str) -> go.Figure:
    frame = pd.DataFrame({"observed_at": MOMENTS, "current_count": [20, 24, 26]})
    return charts.kms_count_history(frame, translate(lang))


def timeline(lang: str) -> go.Figure:
    frame = pd.DataFrame(
        {"changed_at": MOMENTS, "license_status": ["Licensed", "OOBGrace", "Notification"],
         "activation_type": ["KMS client"] * 3, "error_code": [None, "0xC004F074", "0xC004F074"]}
    )  # fmt: skip
    return charts.status_timeline(frame, {"0xC004F074": "no KMS host"}, translate(lang))


def formats(fig: go.Figure) -> list[str]:
    """Every date format the browser will apply: the axis' tick, tick stops and hover formats, the traces' hovers."""
    axis = fig.layout.xaxis
    found = [axis.tickformat, axis.hoverformat, *(stop.value for stop in axis.tickformatstops)]
    for trace in fig.data:
        found += re.findall(r"%\{x\|([^}]*)\}", trace.hovertemplate or "")
    return [f for f in found if f]


CHINESE = {"trend": trend, "count history": lambda: history("zh-TW"), "status timeline": lambda: timeline("zh-TW")}


@pytest.mark.parametrize("name", list(CHINESE))
def test_chinese_dates_are_year_month_day_with_slashes(name):
    fig = CHINESE[name]()
    assert fig.layout.xaxis.tickformat == "%Y/%m/%d"
    assert fig.layout.xaxis.hoverformat in ("%Y/%m/%d", "%Y/%m/%d %H:%M")
    shown = formats(fig)
    assert len(shown) >= 4 and not any(d in f for f in shown for d in NAMED_DIRECTIVES), shown
    # What the ticks and hover labels read once formatted (plotly's directives are strftime's).
    rendered = {moment.strftime(f) for f in shown for moment in MOMENTS}
    assert "2026/11/26" in rendered and "2026/11/26 09:30" in rendered
    assert all(re.fullmatch(r"\d{4}/\d{2}/\d{2}( \d{2}:\d{2})?", text) for text in rendered), rendered
    assert not MONTH_NAMES.search(json.dumps(fig.to_plotly_json()["layout"]))
    assert not any(MONTH_NAMES.search(trace.hovertemplate) for trace in fig.data)


def test_english_dates_stay_iso():
    fig = history("en")
    assert fig.layout.xaxis.tickformat == "%Y-%m-%d" and fig.layout.xaxis.hoverformat == "%Y-%m-%d %H:%M"
    assert "%{x|%Y-%m-%d %H:%M}" in fig.data[0].hovertemplate


def test_without_a_language_the_dates_are_iso():
    frame = pd.DataFrame({"observed_at": MOMENTS, "current_count": [20, 24, 26]})
    fig = charts.kms_count_history(frame)
    assert fig.layout.xaxis.tickformat == "%Y-%m-%d"
    assert charts.date_formats() == ("%Y-%m-%d", "%Y-%m-%d %H:%M")
