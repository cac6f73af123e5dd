"""The KMS hosts page on the seeded fleet: each host's health state in words and on its colour, in the table and
on the chart, with its reasons and the key evidence first, in English and Traditional Chinese."""

from __future__ import annotations

import json
import re

import pytest

from knowledge.kms_health import KmsHealth
from models.seed import SEED_EXPECTED
from tests.ui.dashboard_app import chart_specs, frame, open_page
from ui import charts

KEY_COLUMNS = ["host", "state", "details", "count", "listening", "clients", "activated", "dns_publishing"]
STYLE = re.compile(r"#T_\w+?_row(\d+)_col(\d+) \{ background-color: (#[0-9A-Fa-f]{6})")


def words(lang: str) -> dict[str, str]:
    """computer name -> its expected state in words."""
    return {name: KmsHealth(state).words(lang) for name, state in SEED_EXPECTED["kms_states"].items()}


def state_colours(at) -> dict[int, str]:
    """row -> background colour of the state column, as the browser receives it."""
    styles = at.dataframe[0].proto.arrow_data.styler.styles
    return {int(row): colour.upper() for row, col, colour in STYLE.findall(styles) if int(col) == 1}


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_each_kms_host_shows_its_state_in_words_coloured_in_the_table(seeded_db_url, lang):
    at = open_page("ui/pages/kms_hosts.py", lang=lang)
    assert not at.exception
    table = frame(at, "state")
    assert dict(zip(table["computer_name"], table["state"], strict=True)) == words(lang)
    expected = [charts.KMS_STATE_COLOURS[KmsHealth(SEED_EXPECTED["kms_states"][name])] for name in table.computer_name]
    assert [state_colours(at)[row] for row in range(len(table))] == expected


def test_the_state_comes_right_after_the_host_with_the_key_evidence_before_the_counters(seeded_db_url):
    at = open_page("ui/pages/kms_hosts.py")
    table = frame(at, "state").set_index("computer_name")
    assert list(frame(at, "state").columns[: len(KEY_COLUMNS)]) == KEY_COLUMNS
    kms01, kms02, kms03 = table.loc["KMS01"], table.loc["KMS02"], table.loc["KMS03"]
    assert (kms01["count"], kms01["listening"], kms01["clients"], kms01["activated"]) == (
        "30 ≥ 25",
        "no",
        "7 / 17",
        "yes",
    )
    assert kms01["reasons"].startswith("not listening on 1688; 7 of 17 clients fail with 0xC004F074 (5)")
    assert (kms02["count"], kms02["clients"]) == ("12 < 25", "4 / 4")
    assert kms03["count"] == "3 < 5"
    assert table.loc["KMS05", "count"] == "8 ≥ 5"  # an Office KMS host needs 5
    assert list(frame(at, "state").columns).index("total_requests") > len(KEY_COLUMNS)


def test_key_column_headers_are_translated_and_narrow(seeded_db_url):
    at = open_page("ui/pages/kms_hosts.py", lang="zh-TW")
    config = json.loads(at.dataframe[0].proto.columns)
    labels = {column: config[column]["label"] for column in KEY_COLUMNS}
    assert labels == {
        "host": "主機",
        "state": "狀態",
        "details": "詳細資料",
        "count": "計數",
        "listening": "接聽中",
        "clients": "失敗／用戶端",
        "activated": "已啟用",
        "dns_publishing": "已發佈 SRV",
    }
    assert sum(config[column]["width"] for column in KEY_COLUMNS) <= 800  # fits beside the sidebar at 1280 px
    table = frame(at, "state").set_index("computer_name")
    assert table.loc["KMS01", "listening"] == "否" and table.loc["KMS04", "listening"] == "是"
    assert table.loc["KMS01", "reasons"].startswith("未在連接埠 1688 接聽")


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_the_chart_colours_bars_by_state_and_writes_the_state_on_them(seeded_db_url, lang):
    at = open_page("ui/pages/kms_hosts.py", lang=lang)
    bars = chart_specs(at)[0]["data"][0]
    expected = words(lang)
    for label, text, colour in zip(bars["y"], bars["text"], bars["marker"]["color"], strict=True):
        name = label.split(" ", 1)[0]
        state = KmsHealth(SEED_EXPECTED["kms_states"][name])
        assert text.endswith(f" · {expected[name]}"), text
        assert colour == charts.KMS_STATE_COLOURS[state]
    assert bars["text"][0] == "30 · " + KmsHealth.NOT_LISTENING.words(lang)  # the worst at the bottom edge
    assert "1688" in bars["customdata"][0][1]  # its reasons in the hover: the port it does not listen on


@pytest.mark.parametrize(
    ("lang", "order"),
    [
        ("en", "unreachable, not listening, not activated, clients failing, below threshold; else healthy"),
        ("zh-TW", "無法連線、未接聽、本身未啟用、用戶端失敗、未達門檻；皆不符合則為正常"),
    ],
)
def test_the_page_says_how_the_state_is_chosen(seeded_db_url, lang, order):
    at = open_page("ui/pages/kms_hosts.py", lang=lang)
    assert any(order in caption.value for caption in at.caption)
