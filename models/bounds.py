"""Every value a host or an inventory supplied is cleaned once before it reaches a table: control
characters (NUL among them, which PostgreSQL refuses in text) are removed, and text is cut to what its
column holds, with a marker, so no single value can make the database refuse a batch.

Widths come from the tables themselves: a ``String(n)`` column holds ``n`` characters; an indexed
``Text`` column ``INDEXED_TEXT`` (a B-tree entry must fit in a page); any other ``Text`` column
``FREE_TEXT``. Strings inside JSON evidence are cut to ``EVIDENCE_TEXT``. A whole number outside what an
``INTEGER`` column holds (a hostile ``GracePeriodRemaining`` of 4294967295, say) is stored as unknown, or
at the column's limit where it may not be empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Table, Text

MARKER = "…"
INDEXED_TEXT = 255
FREE_TEXT = 4096
EVIDENCE_TEXT = 512
INT_RANGE = (-(2**31), 2**31 - 1)
INTEGER = -1  # ``widths`` markers: a 32-bit integer column that may be NULL, and one that may not
INTEGER_REQUIRED = -2
# C0 and C1 control characters, DEL, and the lone surrogates some drivers cannot encode
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean(value: str, width: int) -> str:
    """``value`` without control characters (tab and newline become spaces), at most ``width`` long."""
    text = _CONTROL.sub("", value.replace("\t", " ").replace("\n", " ").replace("\r", " ")) if value else value
    return text if len(text) <= width else text[: max(width - 1, 0)] + MARKER


def clean_json(value: Any, width: int = EVIDENCE_TEXT) -> Any:
    """Every string in a JSON value (keys too) cleaned and cut."""
    if isinstance(value, str):
        return clean(value, width)
    if isinstance(value, Mapping):
        return {clean(str(k), 64): clean_json(v, width) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v, width) for v in value]
    return value


@cache
def widths(table: Table) -> dict[str, int | None]:
    """Column name -> the longest text it takes (``None``: JSON, cleaned inside; ``INTEGER``: 32 bits)."""
    indexed = {column.name for index in table.indexes for column in index.columns}
    indexed |= {column.name for constraint in table.constraints for column in getattr(constraint, "columns", ())}
    out: dict[str, int | None] = {}
    for column in table.columns:
        kind = column.type
        if isinstance(kind, JSON):
            out[column.name] = None
        elif isinstance(kind, String) and not isinstance(kind, Text) and kind.length:
            out[column.name] = kind.length
        elif isinstance(kind, String):
            out[column.name] = INDEXED_TEXT if column.name in indexed else FREE_TEXT
        elif isinstance(kind, Integer) and not isinstance(kind, BigInteger):
            out[column.name] = INTEGER if column.nullable else INTEGER_REQUIRED
    return out


def bound_row(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with every text value of a column of ``table`` cleaned to that column's width."""
    limits = widths(table)
    out = dict(row)
    for name, value in row.items():
        if name not in limits:
            continue
        limit = limits[name]
        if limit is None:
            out[name] = clean_json(value)
        elif limit in (INTEGER, INTEGER_REQUIRED):
            if isinstance(value, int) and not isinstance(value, bool) and not INT_RANGE[0] <= value <= INT_RANGE[1]:
                out[name] = None if limit == INTEGER else max(INT_RANGE[0], min(value, INT_RANGE[1]))
        elif isinstance(value, str):
            out[name] = clean(value, limit)
    return out
