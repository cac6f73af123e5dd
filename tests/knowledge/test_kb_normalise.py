"""Every way an administrator or WMI writes an HRESULT comes out as one canonical code."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from knowledge.codes import normalise

CANONICAL = re.compile(r"0x[0-9A-F]{8}")
hresults = st.integers(min_value=0, max_value=0xFFFFFFFF)
failures = st.integers(min_value=0x80000000, max_value=0xFFFFFFFF)


def textual_forms(value: int) -> list[str | int]:
    signed = value - 0x1_0000_0000 if value >= 0x80000000 else value
    forms: list[str | int] = [
        f"0x{value:08X}",
        f"0x{value:08x}",
        f"0X{value:X}",
        f"0x{value:x}",
        f"{value:08x}",
        f"{value:08X}",
        f"{value:08X}h",
        f"hr=0x{value:08X}",
        f"HR = 0x{value:08x}",
        f"  0x{value:08X}\n",
        f"\t{value:08x} ",
        value,
        signed,
    ]
    # An 8-digit decimal string is read as hex by design; real codes never have 8 decimal digits.
    for number in {value, signed}:
        if len(str(number)) != 8:
            forms.extend([str(number), f" {number} "])
    return forms


@given(hresults)
@example(0xC004F074)
@example(0x8007007B)
@example(0x4004F00C)
@example(0)
def test_every_form_of_a_code_gives_one_canonical_string(value):
    expected = f"0x{value:08X}"
    for form in textual_forms(value):
        assert normalise(form) == expected, form


@given(failures)
def test_wmi_decimals_of_failures_round_trip(value):
    signed = value - 0x1_0000_0000
    assert normalise(str(value)) == normalise(str(signed)) == normalise(f"{value:#x}")


@pytest.mark.parametrize(
    "form",
    ["0xC004F074", "c004f074", "0xc004f074", "C004F074h", "-1073418124", "3221549172", " hr=0xC004F074 "],
)
def test_forms_from_the_field(form):
    assert normalise(form) == "0xC004F074"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "0x",
        "hr=",
        "0xC004F074A",
        "C004F07",
        "error",
        "0xG004F074",
        "4294967296",
        "-2147483649",
        "１２３４",
        "0x C004F074",
        "C004F074 C004F074",
        "Error: 0xC004F074",
    ],
)
def test_text_that_is_not_an_hresult_gives_none(text):
    assert normalise(text) is None


@pytest.mark.parametrize("value", [True, False, 2**32, -(2**31) - 1, None, 1.5, b"C004F074"])
def test_values_of_the_wrong_kind_or_range_give_none(value):
    assert normalise(value) is None


@given(st.text())
def test_random_text_never_raises(text):
    result = normalise(text)
    assert result is None or CANONICAL.fullmatch(result)


@given(st.integers())
def test_random_integers_never_raise(number):
    result = normalise(number)
    assert (result is not None) == (-(2**31) <= number < 2**32)
