"""Chart builders, tested without Streamlit: thresholds, labels, hover titles, escaping, palette."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from ui import charts


def kms_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "host": ["10.0.0.1", "10.0.0.2", "<b>x</b>", "10.0.0.9"],
            "computer_name": ["KMS01", None, "EVIL", None],
            "current_count": pd.array([30, 12, 3, None], dtype="Int64"),
            "state": ["healthy", "clients_failing", "below_threshold", "unreachable"],
            "reasons": [
                "",
                "2 of 4 clients fail with 0xC004F038; count 12: servers only",
                "<i>count 3</i>",
                "never read",
            ],
        }
    )


WORDS = ["healthy", "clients failing", "below threshold", "unreachable"]


def test_kms_counts_draws_the_5_and_25_thresholds_on_a_0_to_50_axis():
    fig = charts.kms_counts(kms_frame(), WORDS)
    assert sorted(shape.x0 for shape in fig.layout.shapes) == [5, 25]
    assert list(fig.layout.xaxis.range) == [0, 50]


def test_kms_bars_take_the_colour_and_words_of_their_health_state_worst_at_the_bottom():
    bars = charts.kms_counts(kms_frame(), WORDS).data[0]
    assert list(bars.y) == ["10.0.0.9", "10.0.0.2", "EVIL (&lt;b&gt;x&lt;/b&gt;)", "KMS01 (10.0.0.1)"]
    assert list(bars.text) == ["— · unreachable", "12 · clients failing", "3 · below threshold", "30 · healthy"]
    assert list(bars.marker.color) == [charts.GREY, charts.ORANGE, charts.YELLOW, charts.GREEN]
    assert list(bars.x) == [0, 12, 3, 30]  # a host never read has no count, so no bar


def test_every_kms_state_has_its_own_palette_colour():
    from knowledge.kms_health import KmsHealth

    assert set(charts.KMS_STATE_COLOURS) == set(KmsHealth)
    assert len(set(charts.KMS_STATE_COLOURS.values())) == len(KmsHealth)
    assert set(charts.KMS_STATE_COLOURS.values()) <= set(charts.PALETTE)


def test_kms_hover_lists_the_reasons_escaped():
    bars = charts.kms_counts(kms_frame(), WORDS).data[0]
    hover = dict(zip(bars.y, (data[1] for data in bars.customdata), strict=True))
    assert hover["10.0.0.2"] == "<br>2 of 4 clients fail with 0xC004F038<br>count 12: servers only"
    assert hover["EVIL (&lt;b&gt;x&lt;/b&gt;)"] == "<br>&lt;i&gt;count 3&lt;/i&gt;"
    assert hover["KMS01 (10.0.0.1)"] == ""


def test_host_supplied_names_are_escaped_for_plotly():
    fig = charts.kms_counts(kms_frame())
    assert "EVIL (&lt;b&gt;x&lt;/b&gt;)" in fig.data[0].y
    assert "KMS01 (10.0.0.1)" in fig.data[0].y
    assert "10.0.0.2" in fig.data[0].y


def test_failures_by_code_labels_bars_with_code_and_title_and_carries_the_code():
    frame = pd.DataFrame(
        {
            "error_code": ["0xC004F074", "0xC004F038"],
            "title": ["No KMS host could be contacted", "KMS count"],
            "hosts": [5, 4],
        }
    )
    fig = charts.failures_by_code(frame)
    bars = fig.data[0]
    assert bars.y[-1] == "0xC004F074 · No KMS host could be contacted"
    assert [row[0] for row in bars.customdata] == ["0xC004F038", "0xC004F074"]
    assert "%{customdata[0]}" in bars.hovertemplate and "%{customdata[1]}" in bars.hovertemplate


def test_long_titles_are_shortened_on_the_axis_but_whole_on_hover():
    title = "A very long title " * 6
    frame = pd.DataFrame({"error_code": ["0xC004F074"], "title": [title], "hosts": [1]})
    bars = charts.failures_by_code(frame).data[0]
    assert len(bars.y[0]) < len(title)
    assert bars.customdata[0][1] == title


def test_kms_count_history_has_threshold_lines_across():
    now = datetime.now(UTC)
    frame = pd.DataFrame({"observed_at": [now - timedelta(days=1), now], "current_count": [20, 26]})
    fig = charts.kms_count_history(frame)
    assert sorted(shape.y0 for shape in fig.layout.shapes) == [5, 25]
    assert list(fig.data[0].y) == [20, 26]


def test_status_colours_are_fixed_and_from_the_palette():
    frame = pd.DataFrame(
        {"activation_type": ["KMS client", "MAK"], "license_status": ["Notification", "Unlicensed"], "hosts": [3, 2]}
    )
    fig = charts.failures_by_activation_type(frame)
    colours = {trace.name: trace.marker.color for trace in fig.data}
    assert colours == {"Notification": charts.PURPLE, "Unlicensed": charts.VERMILION}
    assert set(charts.STATUS_COLOURS.values()) <= set(charts.PALETTE)


def test_poll_runs_stack_reads_and_failures_per_class():
    frame = pd.DataFrame(
        {"id": [1, 2], "started_at": [1, 2], "succeeded": [10, 9], "failed_dns": [0, 1], "failed_timeout": [1, 0]}
    )
    fig = charts.poll_runs(frame, ["failed_dns", "failed_timeout"])
    assert [trace.name for trace in fig.data] == ["succeeded", "dns", "timeout"]
    assert fig.layout.barmode == "stack"


def test_charts_leave_the_background_to_the_theme():
    fig = charts.kms_counts(kms_frame())
    assert fig.layout.paper_bgcolor == "rgba(0,0,0,0)"
    assert fig.layout.plot_bgcolor == "rgba(0,0,0,0)"


def test_a_clicked_bar_names_its_error_code():
    from ui.views import selected_code

    event = {"selection": {"points": [{"customdata": ["0xC004F074", "No KMS host"], "y": "0xC004F074 · No KMS"}]}}
    assert selected_code(event) == "0xC004F074"
    assert selected_code({"selection": {"points": [{"y": "0x8007232B · No SRV"}]}}) == "0x8007232B"
    assert selected_code({"selection": {"points": []}}) is None
    assert selected_code(None) is None
