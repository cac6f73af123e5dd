"""Properties of the CSV export's formula neutralisation, stated independently of its implementation.

A cell is neutralised (a leading apostrophe) exactly when a spreadsheet might read it as a formula: it starts
with = + - @, tab, CR, LF or NUL, or its first visible character after NFKC normalisation is = + - @.
Whatever the text, the file reads back to the original cells, and numbers stay numbers.
"""

from __future__ import annotations

import csv
import unicodedata
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.export import EXPORT_COLUMNS, neutralise, write_rows
from models.queries import HostRow

PROPERTY = settings(max_examples=200, deadline=None)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
LEADING = {"=", "+", "-", "@"}


FILLERS = "\u115f\u1160\u3164\uffa0"  # Hangul fillers


def invisible(char: str) -> bool:
    # whitespace (U+3000 included), control, format (zero-width, bidi), combining marks, Hangul fillers
    return char.isspace() or unicodedata.category(char) in {"Cc", "Cf", "Mn", "Me"} or char in FILLERS


def lstrip_invisible(text: str) -> str:
    start = 0
    while start < len(text) and invisible(text[start]):
        start += 1
    return text[start:]


def visible_start(text: str) -> str:
    """``text`` from its first visible character on, after NFKC normalisation of the whole text."""
    return lstrip_invisible(unicodedata.normalize("NFKC", lstrip_invisible(text)))


def looks_like_a_formula(text: str) -> bool:
    return text.startswith(TRIGGERS) or visible_start(text)[:1] in LEADING


TEXT = st.text(st.characters(codec="utf-8"))
PREFIXES = st.sampled_from(
    [" ", "\u3000", "\u00a0", "\t", "\r\n", "\u200b", "\u200d", "\ufeff", "\u202e", "\u0301", "\u3164", "\x0b"]
)
TRIGGER_LIKE = st.sampled_from(["=", "+", "-", "@", "＝", "＋", "－", "＠", "﹦", "⁼", "≠", "'", "a", "臺"])
HOSTILE = st.builds(
    lambda pre, trig, rest: "".join(pre) + trig + rest, st.lists(PREFIXES, max_size=3), TRIGGER_LIKE, TEXT
)
CELLS = st.one_of(TEXT, HOSTILE)


@PROPERTY
@given(CELLS)
def test_a_cell_is_its_text_or_its_text_behind_an_apostrophe(text):
    kept = text.replace("\0", "")  # a NUL never reaches the file
    assert neutralise(text) in (kept, "'" + kept)


@PROPERTY
@given(CELLS)
def test_no_written_cell_looks_like_a_formula(text):
    cell = neutralise(text)
    assert cell.startswith("'") or not looks_like_a_formula(cell), repr(cell)


@PROPERTY
@given(CELLS)
def test_only_what_looks_like_a_formula_gets_an_apostrophe(text):
    kept = text.replace("\0", "")
    if not kept.startswith(TRIGGERS) and not any(invisible(c) or not c.isascii() for c in kept[:1]):
        # an ordinary first character (ASCII, visible) decides alone, as it always did
        assert (neutralise(text) == "'" + kept) == kept.startswith(("=", "+", "-", "@"))


@PROPERTY
@given(st.one_of(st.integers(), st.floats(allow_nan=False)))
def test_numbers_stay_numbers(number):
    cell = neutralise(number)
    assert cell == (repr(number) if isinstance(number, float) else str(number))
    assert not cell.startswith("'") and type(number)(cell) == number


TEXT_COLUMNS = [f.name for f in fields(HostRow) if f.name not in ("grace_days_remaining", "state")]


@st.composite
def host_rows(draw: st.DrawFn) -> HostRow:
    texts = {name: draw(st.one_of(st.none(), CELLS)) for name in TEXT_COLUMNS}
    texts["host"] = texts["host"] or "ws01"
    grace = draw(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)))
    return HostRow(**texts, grace_days_remaining=grace)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@PROPERTY
@given(st.lists(host_rows(), max_size=6))
def test_the_written_file_reads_back_to_the_original_cells(scratch, rows):
    path = scratch / "unactivated-hosts.csv"
    with path.open("wb") as out:
        assert write_rows(rows, out) == len(rows)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header, *cells = list(csv.reader(handle))
    assert tuple(header) == EXPORT_COLUMNS and len(cells) == len(rows)
    for row, written in zip(rows, cells, strict=True):
        for column, cell in zip(EXPORT_COLUMNS, written, strict=True):
            value = getattr(row, column)
            if value is None:
                assert cell == ""
            elif isinstance(value, float):
                assert cell == repr(value) and float(cell) == value
            else:
                original = value.replace("\0", "")
                assert cell in (original, "'" + original)
                assert (cell[1:] if cell != original else cell) == original
                assert cell == original or looks_like_a_formula(original)
