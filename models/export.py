"""The CSV of unactivated hosts: one format for the dashboard's download button and ``collectors export``.

Columns are a contract with other tools and never change order. The file is UTF-8 with a byte-order mark so
Excel shows Traditional Chinese, every cell is quoted, and any text that a spreadsheet would read as a formula
is neutralised with a leading apostrophe (OWASP's CSV-injection advice).
"""

from __future__ import annotations

import csv
import io
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
)
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
BOM = "\ufeff"


def neutralise(value: object) -> str:
    """Text for one CSV cell that no spreadsheet will evaluate; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value).replace("\0", "")
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


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


def write_csv(conn: Connection, flt: HostFilter, out: BinaryIO, *, now: datetime | None = None) -> int:
    """Stream the filtered unactivated hosts as CSV into ``out``; returns the number of rows."""
    return write_rows(iter_host_rows(conn, export_filter(flt), now=now), out)


def csv_bytes(conn: Connection, flt: HostFilter, *, now: datetime | None = None) -> bytes:
    buffer = io.BytesIO()
    write_csv(conn, flt, buffer, now=now)
    return buffer.getvalue()
