"""Loading the WinRM traffic recorded from real Windows (``tests/fixtures/windows/``) and its manifest.

The folder's files are publishers' bytes, never edited; ``SOURCES.toml`` says where each one comes
from and what kind of data it is. These helpers only read them: bodies as bytes, header sets of
``.http`` files as ``(name, value)`` pairs in their recorded order, the manifest as a dict.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).resolve().parent / "fixtures" / "windows"
MANIFEST = CAPTURES / "SOURCES.toml"
NOT_CAPTURES = frozenset({"README.md", "SOURCES.toml"})


def load_capture(name: str) -> bytes:
    """The recorded bytes of one file of the folder."""
    path = CAPTURES / name
    if path.parent != CAPTURES or name in NOT_CAPTURES or not path.is_file():
        raise FileNotFoundError(f"no capture named {name!r} in {CAPTURES}")
    return path.read_bytes()


def _http_lines(name: str) -> list[str]:
    if not name.endswith(".http"):
        raise ValueError(f"{name} is not a recorded HTTP head (.http)")
    text = load_capture(name).decode("iso-8859-1")
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    return [line for line in head.split("\n") if line]


def capture_status(name: str) -> tuple[int, str]:
    """Status code and reason phrase of a recorded HTTP response head."""
    _, code, *reason = _http_lines(name)[0].split(" ", 2)
    return int(code), reason[0] if reason else ""


def capture_headers(name: str) -> list[tuple[str, str]]:
    """The header lines of a recorded HTTP response head, in order; repeated headers stay repeated."""
    pairs = []
    for line in _http_lines(name)[1:]:
        field, _, value = line.partition(":")
        pairs.append((field.strip(), value.strip()))
    return pairs


@cache
def manifest() -> dict[str, dict[str, Any]]:
    """``SOURCES.toml``: file name -> its source, licence, origin, description and kind."""
    with MANIFEST.open("rb") as handle:
        return tomllib.load(handle)


def captures_of_kind(kind: str) -> list[str]:
    """The names of the manifest's files of one ``kind`` (``enumeration``, ``fault``, ...), sorted."""
    return sorted(name for name, entry in manifest().items() if entry["kind"] == kind)


def files_in_folder() -> list[str]:
    """Every data file of the folder (the README and the manifest excepted), sorted."""
    return sorted(p.name for p in CAPTURES.iterdir() if p.is_file() and p.name not in NOT_CAPTURES)
