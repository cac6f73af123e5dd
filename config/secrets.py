"""The git-ignored secrets file: ``KEY=value`` lines (optionally ``export``-ed or quoted), readable by its owner only.

One reader for every part that needs a secret from it: named WinRM credentials (``collectors.credentials``) and
the notification URLs (``alerting.notify``). On POSIX systems a file its group or others may read is refused.
Windows has no such mode bits (``os.stat`` reports every file as readable by all), so there the file is protected
by its NTFS permissions, which this reader does not inspect: keep it in a folder only the service account can read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path


class SecretsFileError(PermissionError):
    """The secrets file may be read by others; the message says how to fix it."""


def read_secrets_file(path: Path) -> dict[str, str]:
    """``KEY=value`` pairs of a secrets file; a missing file is empty, a shared one is refused (POSIX)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if os.name != "nt" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsFileError(f"secrets file {path} is readable by others; run: chmod 600 {path}")
    return dict(_pairs(path.read_text(encoding="utf-8").splitlines()))


def _pairs(lines: Iterable[str]) -> Iterable[tuple[str, str]]:
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#") or "=" not in text:
            continue
        key, _, value = text.removeprefix("export ").partition("=")
        yield key.strip(), _unquote(value.strip())


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
