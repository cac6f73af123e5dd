"""Shared fixtures for the knowledge-base tests: the raw TOML documents and the source article."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "knowledge" / "data"
REPO = Path(__file__).resolve().parents[2]
# The source article lives beside the repository (shared/seeds); it is not copied into it.
SOURCE_ARTICLE = Path(
    os.environ.get("ACTIVATION_SOURCE_ARTICLE", REPO.parent / "shared" / "seeds" / "000_1bde9e065a7067ab.txt")
)


def load_document(lang: str) -> dict[str, Any]:
    return tomllib.loads((DATA_DIR / f"{lang}.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def documents() -> dict[str, dict[str, Any]]:
    return {lang: load_document(lang) for lang in ("en", "zh-TW")}


@pytest.fixture(scope="session")
def article_text() -> str:
    """Microsoft's zh-TW activation error-code article: the codes the knowledge base must cover."""
    if not SOURCE_ARTICLE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the source article is missing at {SOURCE_ARTICLE}")
        pytest.skip(f"source article not found at {SOURCE_ARTICLE}; set ACTIVATION_SOURCE_ARTICLE")
    return SOURCE_ARTICLE.read_text(encoding="utf-8")
