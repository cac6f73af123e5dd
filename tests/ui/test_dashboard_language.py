"""The dashboard in Traditional Chinese: diagnosis, evidence and chart dates in the page's language."""

from __future__ import annotations

import json
import re

from models.seed import SeedHost
from tests.ui.dashboard_app import chart_specs, frame, open_page

ENGLISH_MONTHS = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\b")


def failing(hosts: list[SeedHost], code: str) -> SeedHost:
    return next(h for h in hosts if h.error_code == code)


def test_host_detail_in_chinese_shows_the_diagnosis_in_chinese(seeded_db_url, seeded_hosts):
    host = failing(seeded_hosts, "0xC004F038")
    at = open_page("ui/pages/host_detail.py", host=host.name, lang="zh-TW")
    assert not at.exception
    assert "診斷" in [s.value for s in at.subheader]
    findings = frame(at, "摘要")
    row = findings.iloc[0]
    assert row["檢查項目"] == "KMS 計數" and row["嚴重性"] == "失敗"
    assert row["摘要"] == "KMS 主機 kms02.corp.example 的計數為 12；這部工作站需要 25"
    assert row["證據"] == "KMS 主機: kms02.corp.example; 目前計數: 12; 所需計數: 25; 清單中的 KMS 主機: 10.1.0.11"


def test_each_seeded_diagnosis_reads_in_chinese(seeded_db_url, seeded_hosts):
    expected = {
        "0xC004F074": "無法連線到 KMS 主機 kms01.corp.example:1688",
        "0xC004F06C": "主機時鐘與收集器相差 5.0 小時（上限 4 小時）",
        "0x8007232B": "找不到 KMS SRV 紀錄：_vlmcs._tcp.corp.example",
    }
    for code, words in expected.items():
        at = open_page("ui/pages/host_detail.py", host=failing(seeded_hosts, code).name, lang="zh-TW")
        assert not at.exception
        assert list(frame(at, "摘要")["摘要"]) == [words], code
    evidence = frame(at, "摘要").iloc[0]["證據"]
    assert "錯誤: NXDOMAIN: the name does not exist" in evidence, "what the probe said stays as it said it"


def test_host_detail_in_english_keeps_the_stored_summary(seeded_db_url, seeded_hosts):
    at = open_page("ui/pages/host_detail.py", host=failing(seeded_hosts, "0xC004F038").name)
    assert not at.exception
    row = frame(at, "summary").iloc[0]
    assert row["summary"] == "KMS02 counts 12 machines; a workstation needs 25"
    assert row["evidence"].startswith("KMS host: kms02.corp.example; current count: 12; required count: 25")


def test_trend_chart_dates_are_taiwanese_in_chinese(seeded_db_url):
    at = open_page("ui/pages/overview.py", lang="zh-TW")
    assert not at.exception
    dated = [spec for spec in chart_specs(at) if spec["layout"].get("xaxis", {}).get("type") == "date"]
    assert len(dated) == 1, "the trend"
    axis = dated[0]["layout"]["xaxis"]
    assert axis["tickformat"] == "%Y/%m/%d" and axis["hoverformat"] == "%Y/%m/%d"
    assert all("%{x|%Y/%m/%d}" in trace["hovertemplate"] for trace in dated[0]["data"])
    assert not ENGLISH_MONTHS.search(json.dumps(dated[0]["layout"])), "no month names on the axis"
