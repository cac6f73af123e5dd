"""Looking codes up: known entries, the explicit unknown entry, failures and links."""

from __future__ import annotations

import re

import pytest

from knowledge import (
    GENERAL_ARTICLE_URL,
    LANGUAGES,
    ErrorCode,
    all_codes,
    article_url,
    is_failure,
    lookup,
)
from knowledge.codes import ZH_TW_ARTICLE_URL, _entry, codes_for_check

ZH_ARTICLE = "https://learn.microsoft.com/zh-tw/windows-server/get-started/activation-error-codes"


def test_languages():
    assert LANGUAGES == ("en", "zh-TW")


def test_lookup_accepts_any_pasted_form():
    entry = lookup("  c004f074 ")
    assert entry.known and entry.code == "0xC004F074"
    assert lookup(-1073418124) == entry == lookup(3221549172)


def test_known_entry_is_a_frozen_record_with_tuples():
    entry = lookup("0xC004F038")
    assert isinstance(entry, ErrorCode)
    assert entry.activation_types == ("KMS client",)
    assert entry.checks == ("kms_count", "event_log", "kms_host")
    assert isinstance(entry.steps, tuple) and isinstance(entry.commands, tuple)
    with pytest.raises(AttributeError):
        entry.title = "changed"  # type: ignore[misc]


def test_known_entry_links_to_its_section_in_each_language():
    en, zh = lookup("0xC004F074", "en"), lookup("0xC004F074", "zh-TW")
    anchor = "#0xc004f074-no-key-management-service-kms-could-be-contacted"
    assert en.url == GENERAL_ARTICLE_URL + anchor
    assert zh.url == ZH_ARTICLE + anchor
    assert en.deep_link is not None and en.deep_link.endswith("/error-0xc004f074-activate-windows")
    assert zh.deep_link == en.deep_link.replace("/en-us/", "/zh-tw/")
    assert (en.lang, zh.lang) == ("en", "zh-TW")


def test_chinese_links_use_the_chinese_article_anchors():
    assert ZH_TW_ARTICLE_URL == ZH_ARTICLE
    en, zh = lookup("0xC004F042", "en"), lookup("0xC004F042", "zh-TW")
    assert en.url.endswith("#0xc004f042-the-specified-key-management-service-kms-cant-be-used")
    assert zh.url == ZH_ARTICLE + (
        "#0xc004f042-the-software-protection-service-determined-that-the-specified-key-management-service-kms-cannot-be-used"
    )


def test_an_unconfirmed_anchor_links_the_page_root():
    table = {
        "code": "0xC004F074",
        "title": "t",
        "message": "m",
        "activation_types": ["KMS client"],
        "causes": [],
        "steps": ["s"],
        "commands": [],
        "checks": [],
        "anchor": "",
        "deep_link": "",
    }
    entry = _entry(table, "zh-TW")
    assert entry.url == ZH_ARTICLE
    assert entry.steps_by_type == ()


def test_code_without_a_deeper_article_has_no_deep_link():
    assert lookup("0xC004F009").deep_link is None


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_all_codes_sorted_and_complete(lang):
    entries = all_codes(lang)
    codes = [entry.code for entry in entries]
    assert len(codes) == 30
    assert codes == sorted(codes)
    assert all(entry.known and entry.lang == lang for entry in entries)


def test_unknown_failure_code_is_explicit():
    entry = lookup("0xC004FFFF")
    assert not entry.known
    assert entry.code == "0xC004FFFF"
    assert entry.title == "Unknown code"
    assert entry.url == GENERAL_ARTICLE_URL
    assert entry.deep_link is None
    assert "slui.exe 0x2a 0xC004FFFF" in entry.message
    assert entry.steps and not entry.commands and not entry.checks


def test_unknown_code_in_chinese():
    entry = lookup("0xC004FFFF", "zh-TW")
    assert not entry.known
    assert entry.title == "未知的錯誤碼"
    assert entry.url == ZH_ARTICLE


def test_informational_code_is_not_reported_as_an_error():
    entry = lookup("0x4004F00C")
    assert not entry.known
    assert entry.code == "0x4004F00C"
    assert "informational" in entry.message


@pytest.mark.parametrize("value", ["", "not a code", "0xZZZZ", "   ", "C004F07"])
def test_unparseable_input_never_raises(value):
    entry = lookup(value, "zh-TW")
    assert not entry.known
    assert entry.title == "未知的錯誤碼"
    assert entry.url == ZH_ARTICLE
    assert all("slui" not in step for step in entry.steps)


def test_unsupported_language_falls_back_to_english():
    assert lookup("0xC004F074", "fr").lang == "en"
    assert lookup("0xC004F074", "zh-tw").lang == "zh-TW"
    assert article_url("xx") == GENERAL_ARTICLE_URL
    assert article_url("zh-TW") == ZH_ARTICLE


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("0xC004F074", True),
        ("0x8007232B", True),
        (3221549172, True),
        (-1073418124, True),
        ("0x4004F00C", False),
        ("0x4004FC04", False),
        ("0x00000000", False),
        ("garbage", False),
        ("", False),
    ],
)
def test_is_failure(code, expected):
    assert is_failure(code) is expected


def test_every_knowledge_base_code_is_a_failure():
    assert all(is_failure(entry.code) for entry in all_codes())


def test_codes_for_check_matches_the_diagnostic_table():
    assert set(codes_for_check("dns_srv")) >= {"0x8007232B", "0x8007251D", "0x80092328", "0x8007007B"}
    assert set(codes_for_check("kms_port")) >= {"0x800706BA", "0xC004F039", "0xC004F074"}
    assert codes_for_check("kms_count") == ("0xC004F038",)
    assert codes_for_check("clock_skew") == ("0xC004F06C",)
    assert codes_for_check("no_such_check") == ()


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_key_codes_carry_the_numbers_an_administrator_needs(lang):
    def text(code: str) -> str:
        entry = lookup(code, lang)
        return " ".join((entry.message, *entry.causes, *entry.steps))

    assert _numbers(text("0xC004F038")) >= {"25", "5", "30", "50"}
    assert "slmgr.vbs /dli" in text("0xC004F038")
    assert "4" in _numbers(text("0xC004F06C")) and "UTC" in text("0xC004F06C")
    assert "w32tm /resync" in text("0xC004F06C")
    for needle in ("12288", "12289", "1688"):
        assert needle in text("0xC004F074")
    for code in ("0x8007232B", "0x8007251D", "0x80092328", "0x8007007B"):
        assert "_vlmcs._tcp" in text(code)
        assert "/skms" in text(code)


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w.])\d+(?!\w|\.\w)", text))
