"""The unactivated-hosts CSV: its column contract, encoding and formula neutralisation."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, update

from knowledge import lookup
from models.export import EXPORT_COLUMNS, csv_bytes, neutralise
from models.filters import HostFilter
from models.seed import HOSTILE_SITE, SEED_EXPECTED, seed_fleet
from models.tables import Host

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HEADER = (
    "host,domain,site,os,product_type,activation_type,license_status,error_code,error_title,"
    "grace_days_remaining,kms_host,last_seen_utc,poll_error,resolution_url,computer_name"
)


def rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 byte-order mark"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_columns_are_the_contract() -> None:
    assert ",".join(EXPORT_COLUMNS) == HEADER
    # the first 14 columns, in this order, are what other tools read; new columns only ever go last
    assert EXPORT_COLUMNS[:14] == tuple(HEADER.split(",")[:14]) and EXPORT_COLUMNS[-1] == "computer_name"


def test_an_address_inventory_still_names_the_machine(engine: Engine) -> None:
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=1)
    with engine.connect() as conn:
        exported = rows(csv_bytes(conn, HostFilter(), now=NOW))
    named = [r for r in exported if r["host"].startswith("10.") and r["computer_name"]]
    assert named and all(not r["computer_name"].startswith("10.") for r in named)


def test_export_lists_exactly_the_unactivated_hosts(engine: Engine) -> None:
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=2)
    with engine.connect() as conn:
        exported = rows(csv_bytes(conn, HostFilter()))
        with_at_risk = rows(csv_bytes(conn, HostFilter(include_at_risk=True)))
    assert len(exported) == SEED_EXPECTED["failing"] - SEED_EXPECTED["at_risk"] + SEED_EXPECTED["unreachable"]
    # opted in, the Licensed KMS clients whose renewals fail come too, with their current code
    at_risk = [r for r in with_at_risk if r not in exported]
    assert len(at_risk) == SEED_EXPECTED["at_risk"]
    assert all(r["license_status"] == "Licensed" and r["error_code"] == "0x800706BA" for r in at_risk)
    assert all(r["license_status"] != "Licensed" or r["poll_error"] for r in exported)
    unreachable = [r for r in exported if r["poll_error"]]
    assert all(r["poll_error"].startswith("unreachable (") for r in unreachable)
    assert sorted(r["poll_error"].split("(")[1].split(")")[0] for r in unreachable) == ["auth", "refused", "timeout"]
    assert all(r["license_status"] == "Licensed" for r in unreachable), "last known status is kept"


def test_export_follows_the_filter(engine: Engine) -> None:
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=1)
    with engine.connect() as conn:
        exported = rows(csv_bytes(conn, HostFilter(error_codes=("0xC004F038",)), now=NOW))
    assert {r["error_code"] for r in exported} == {"0xC004F038"}
    first = exported[0]
    assert first["activation_type"] == "KMS client" and first["kms_host"] == "kms02.corp.example:1688"
    assert first["resolution_url"].endswith(
        "#0xc004f038-the-count-reported-by-your-key-management-service-kms-is-insufficient"
    )
    assert first["grace_days_remaining"] == "13.9" and first["last_seen_utc"] == "2026-11-24T09:00:00Z"


def test_hostile_cells_are_neutralised(engine: Engine) -> None:
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=1)
        conn.execute(update(Host).where(Host.site == HOSTILE_SITE).values(license_status="Unlicensed"))
    with engine.connect() as conn:
        exported = rows(csv_bytes(conn, HostFilter(search="10.1.9.9")))
    assert exported[0]["site"] == "'" + HOSTILE_SITE


@given(st.text())
def test_no_cell_can_start_a_formula(value: str) -> None:
    cell = neutralise(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n", "\0"))
    assert cell in (value.replace("\0", ""), "'" + value.replace("\0", ""))


def test_numbers_stay_numbers() -> None:
    assert neutralise(-1.5) == "-1.5"
    assert neutralise(42) == "42"
    assert neutralise(None) == ""


def test_error_titles_and_articles_follow_the_language_and_nothing_else_does(engine: Engine) -> None:
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=1)
    with engine.connect() as conn:
        english = csv_bytes(conn, HostFilter(), now=NOW)
        chinese = csv_bytes(conn, HostFilter(), now=NOW, lang="zh-TW")
    header = english.decode("utf-8-sig").splitlines()[0]
    assert chinese.decode("utf-8-sig").splitlines()[0] == header
    en_rows, zh_rows = rows(english), rows(chinese)
    assert len(zh_rows) == len(en_rows) > 0
    in_language = {"error_title": "", "resolution_url": ""}
    for en, zh in zip(en_rows, zh_rows, strict=True):
        assert {**zh, **in_language} == {**en, **in_language}
        if en["error_code"]:
            entry = lookup(en["error_code"], "zh-TW")
            assert zh["error_title"] == entry.title != en["error_title"]
            assert re.search(r"[\u4e00-\u9fff]", zh["error_title"]), zh["error_title"]
            assert zh["resolution_url"].startswith("https://learn.microsoft.com/zh-tw/")


# Cells the red team found reaching a spreadsheet as formulas, and ordinary text that must stay as it is.
HIDDEN_FORMULAS = [
    " =1+1",
    "\u3000=1+1",  # ideographic space
    "\u00a0\u2003@SUM(A1)",  # no-break and em spaces
    '＝HYPERLINK("http://evil.example")',  # full-width equals sign
    "＋1",
    "－1",
    "＠SUM(A1)",
    "\u200b=1+1",  # zero-width space
    "\ufeff=1+1",  # a byte-order mark inside the cell
    "\u202e=1+1",  # right-to-left override
    "\u0301=1+1",  # a combining mark with nothing to combine with
    "\u3164=1+1",  # Hangul filler
    "\x0b-1",  # vertical tab
    "﹦1",  # small equals sign
    " \t\r\n+1",
]


def test_formulas_behind_spaces_invisible_or_full_width_characters_are_neutralised() -> None:
    for text in HIDDEN_FORMULAS:
        assert neutralise(text) == "'" + text, repr(text)


def test_ordinary_text_is_written_as_it_is() -> None:
    for text in ["Taipei", " Taipei", "臺北總部", "ｗｓ０１", "\u3000臺北", "\u202eetis", "a=b", "10.1.9.9", "≠1"]:
        assert neutralise(text) == text, repr(text)
    assert neutralise(-1.5) == "-1.5" and neutralise(-3) == "-3", "typed numbers are never prefixed"
