"""Fixtures for the dashboard's AppTest suite: a seeded SQLite database and an empty one.

The seeded fleet comes from ``models.seed`` (written through the real store), so the numbers the pages
show can be compared with ``SEED_EXPECTED``. ``load_settings()`` finds the database through
``ACTIVATION_DB_URL``; caches are cleared around every test because they outlive an AppTest.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import streamlit as st

from models.db import open_database
from models.seed import SeedHost, seed_fleet
from tests.ui.dashboard_app import ROOT


@pytest.fixture(scope="session")
def seeded_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[SeedHost]]:
    """One seeded database for the session; the pages only read it."""
    path = tmp_path_factory.mktemp("ui-db") / "seeded.db"
    url = f"sqlite:///{path}"
    engine = open_database(url)
    with engine.begin() as conn:
        hosts = seed_fleet(conn, now=datetime.now(UTC).replace(microsecond=0))
    engine.dispose()
    return url, hosts


@pytest.fixture(autouse=True)
def _clean_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(ROOT)
    for name in ("ACTIVATION_AUTH_PASSWORD", "ACTIVATION_LANGUAGE", "ACTIVATION_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACTIVATION_DATA_DIR", str(tmp_path / "data"))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def seeded_db_url(seeded_file: tuple[str, list[SeedHost]], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ACTIVATION_DB_URL", seeded_file[0])
    return seeded_file[0]


@pytest.fixture
def seeded_hosts(seeded_file: tuple[str, list[SeedHost]]) -> list[SeedHost]:
    return seeded_file[1]


@pytest.fixture
def empty_db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/empty.db"
    monkeypatch.setenv("ACTIVATION_DB_URL", url)
    return url
