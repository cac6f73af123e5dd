"""Counts read as whole numbers, and tied error codes keep their order, whatever the size of the fleet."""

from __future__ import annotations

import pandas as pd

from ui import charts


def codes(counts: dict[str, int]) -> pd.DataFrame:
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))  # the query's order
    return pd.DataFrame([(code, f"title of {code}", n) for code, n in rows], columns=["error_code", "title", "hosts"])


def test_tied_error_codes_read_in_code_order_from_the_top():
    fig = charts.failures_by_code(codes({"0xC004F074": 2, "0x8007232B": 2, "0xC004C003": 2, "0xC004F038": 5}))
    top_down = [label.split(" ", 1)[0] for label in reversed(fig.data[0].y)]  # plotly draws the first row lowest
    assert top_down == ["0xC004F038", "0x8007232B", "0xC004C003", "0xC004F074"]


def test_small_counts_get_one_tick_per_host_and_never_half_a_host():
    fig = charts.failures_by_code(codes({"0xC004F074": 2, "0x8007232B": 1}))
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tick0 == 0
    by_type = pd.DataFrame(
        {"activation_type": ["MAK", "KMS client"], "license_status": ["Notification", "OOBGrace"], "hosts": [1, 2]}
    )
    assert charts.failures_by_activation_type(by_type).layout.yaxis.dtick == 1


def test_large_counts_are_whole_numbers_without_one_tick_per_host():
    fig = charts.failures_by_code(codes({"0xC004F074": 1200, "0x8007232B": 14}))
    assert fig.layout.xaxis.dtick is None and fig.layout.xaxis.tickformat == ",d"
    runs = pd.DataFrame({"id": [1, 2], "started_at": [1, 2], "succeeded": [3, 40], "failed_dns": [1, 2]})
    assert charts.poll_runs(runs, ["failed_dns"]).layout.yaxis.tickformat == ",d"


def trend(days: int) -> pd.DataFrame:
    dates = pd.date_range("2026-11-26", periods=days).date
    return pd.DataFrame({"day": dates, "activated": [3] * days, "not_activated": [2] * days})


def test_one_day_of_history_is_a_point_in_the_middle_of_a_day_either_side():
    fig = charts.activation_trend(trend(1))
    low, high = fig.layout.xaxis.range
    assert (pd.Timestamp(high) - pd.Timestamp(low)).days == 2  # not a sliver of milliseconds
    assert fig.layout.xaxis.dtick == charts.DAY_MS  # ticks are whole days: no day twice, no hours
    assert fig.layout.yaxis.dtick == 1 and "markers" in fig.data[0].mode


def test_ninety_days_let_plotly_space_the_dates():
    fig = charts.activation_trend(trend(90))
    assert fig.layout.xaxis.dtick is None and fig.layout.yaxis.dtick == 1
