"""What the browser tests share besides fixtures: the repository root and the served dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PolledFleet:
    db_url: str
    truth: list[dict[str, Any]]


@dataclass(frozen=True)
class Dashboard:
    url: str
    db_url: str
    truth: list[dict[str, Any]]
