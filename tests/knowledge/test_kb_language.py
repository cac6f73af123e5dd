"""One reading of a language code everywhere: how a URL, a setting or a caller may spell it."""

from __future__ import annotations

import pytest

from knowledge import LANGUAGES, lookup, normalise_language


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("zh-TW", "zh-TW"),
        ("zh_tw", "zh-TW"),
        (" ZH-TW ", "zh-TW"),
        ("zh_TW\n", "zh-TW"),
        ("EN", "en"),
        ("en", "en"),
        ("fr", "en"),
        ("zh", "en"),
        ("zh-CN", "en"),
        ("", "en"),
        ("   ", "en"),
        (None, "en"),
        (42, "en"),
    ],
)
def test_spellings_of_a_supported_language_give_its_code_and_anything_else_the_default(value, expected):
    assert normalise_language(value) == expected


def test_the_default_is_the_callers_choice():
    assert normalise_language("fr", default="zh-TW") == "zh-TW"
    assert normalise_language(None, "zh-TW") == "zh-TW"
    assert normalise_language("EN", default="zh-TW") == "en"


def test_every_code_it_returns_is_a_supported_one():
    assert {normalise_language(code.upper()) for code in LANGUAGES} == set(LANGUAGES)


def test_lookups_read_the_language_the_same_way():
    assert lookup("0xC004F074", "zh_tw") == lookup("0xC004F074", "zh-TW")
    assert lookup("0xC004F074", "fr") == lookup("0xC004F074", "en")
