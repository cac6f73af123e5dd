"""The CSV of unactivated hosts: one format for the dashboard's download button and ``collectors export``.

Columns are a contract with other tools and never change order. The file is UTF-8 with a byte-order mark so
Excel shows Traditional Chinese, every cell is quoted, and any text that a spreadsheet would read as a formula
is neutralised with a leading apostrophe (OWASP's CSV-injection advice).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import Connection

from models.filters import HostFilter
from models.queries import HostRow, iter_host_rows

EXPORT_COLUMNS = (
    "host",
    "domain",
    "site",
    "os",
    "product_type",
    "activation_type",
    "license_status",
    "error_code",
    "error_title",
    "grace_days_remaining",
    "kms_host",
    "last_seen_utc",
    "poll_error",
    "resolution_url",
    "computer_name",  # added last: the first 14 columns and their order never change
)
BOM = "\ufeff"

# What a spreadsheet may evaluate, and so what is neutralised with a leading apostrophe:
#
# * OWASP, "CSV Injection" (https://owasp.org/www-community/attacks/CSV_Injection): a cell beginning with
#   = + - @, tab (0x09), carriage return (0x0D) or line feed (0x0A) may be read as a formula; prefix it with
#   a single quote. OWASP ASVS 5.0 requirement 1.2.10 adds NUL (0x00) to the list. Tab and carriage return
#   were added to the OWASP page after a sanitiser checking only = + - @ was bypassed with them
#   (https://github.com/OWASP/www-community/pull/401).
# * Leading whitespace does not make a cell safe: LibreOffice's Text Import has "Trim spaces", which removes
#   leading spaces before the cell is read (https://help.libreoffice.org/latest/en-US/text/shared/00/00000208.html),
#   and sanitisers have been bypassed with " =..." where Google Sheets and LibreOffice importers strip the
#   space (https://github.com/zvory/csv-safe/pull/25, https://github.com/yegor256/0rsk/pull/565).
# * LibreOffice evaluates formulas from a CSV only when "Evaluate formulas" is ticked in its import dialog
#   (off by default), and then only cells starting with = (https://github.com/wazuh/wazuh-dashboard-plugins/pull/9129,
#   https://github.com/Euro-Office/DocumentServer/issues/364); Excel evaluates them when it opens the file (OWASP).
# * We found no public report that Excel or LibreOffice evaluate a cell behind an ideographic space (U+3000),
#   a zero-width or other format character, or a full-width ＝ ＋ － ＠. They are neutralised anyway: they look
#   like the ASCII triggers, NFKC normalisation (which many text pipelines apply) turns them into them, and an
#   apostrophe in front of such a rare cell costs nothing.
#
# So a text cell is neutralised when it starts with a FORMULA_TRIGGERS character, or when its first visible
# character, after NFKC normalisation (which maps ＝ ＋ － ＠ to = + - @), is one of LEADING_TRIGGERS.
# "Visible" skips whitespace (any Unicode space, U+3000 included), control (Cc) and format (Cf: zero-width,
# bidi) characters, combining marks (Mn, Me) and the Hangul fillers. The apostrophe goes before the original
# text, which is otherwise written as it is; typed numbers (int, float) are never prefixed.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
LEADING_TRIGGERS = frozenset("=+-@")
_INVISIBLE_CATEGORIES = frozenset(("Cc", "Cf", "Mn", "Me"))
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")  # Hangul fillers: letters that show nothing


def neutralise(value: object) -> str:
    """Text for one CSV cell that no spreadsheet will evaluate; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value).replace("\0", "")
    return "'" + text if _starts_formula(text) else text


def _starts_formula(text: str) -> bool:
    """Whether a spreadsheet might read ``text`` as a formula (see the notes above ``FORMULA_TRIGGERS``)."""
    return text.startswith(FORMULA_TRIGGERS) or _first_visible(text) in LEADING_TRIGGERS


def _first_visible(text: str) -> str:
    """The first character of ``text`` that shows, after NFKC normalisation; '' when none does."""
    for char in text:
        if _invisible(char):
            continue
        shown = [c for c in unicodedata.normalize("NFKC", char) if not _invisible(c)]
        if shown:
            return shown[0]
    return ""


def _invisible(char: str) -> bool:
    return char.isspace() or char in _FILLERS or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def export_filter(flt: HostFilter) -> HostFilter:
    """The export always lists unactivated hosts, within whatever else the filter says."""
    return replace(flt, unactivated_only=True)


def _cells(row: HostRow) -> list[str]:
    return [neutralise(getattr(row, column)) for column in EXPORT_COLUMNS]


def write_rows(rows: Iterable[HostRow], out: BinaryIO) -> int:
    """Write the header and rows as CSV to a binary stream; returns the number of rows."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        text.write(BOM)
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        count = 0
        for row in rows:
            writer.writerow(_cells(row))
            count += 1
        text.flush()
        return count
    finally:
        text.detach()


def write_csv(
    conn: Connection, flt: HostFilter, out: BinaryIO, *, now: datetime | None = None, lang: str = "en"
) -> int:
    """Stream the filtered unactivated hosts as CSV into ``out``; returns the number of rows.

    ``lang`` is the language of the ``error_title`` cells; column names, codes and every other cell are the
    same in every language.
    """
    return write_rows(iter_host_rows(conn, export_filter(flt), lang=lang, now=now), out)


def csv_bytes(conn: Connection, flt: HostFilter, *, now: datetime | None = None, lang: str = "en") -> bytes:
    buffer = io.BytesIO()
    write_csv(conn, flt, buffer, now=now, lang=lang)
    return buffer.getvalue()
