"""The Hosts page's Download CSV button: exactly the filtered unactivated hosts, in the export format."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager

from knowledge import lookup
from models import export
from models.db import make_engine
from models.filters import HostFilter
from models.seed import SeedHost
from tests.ui.dashboard_app import open_page


@pytest.fixture
def deferred_downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], object]]:
    """File name -> the callable a click on its download button runs (what the browser would fetch)."""
    captured: dict[str, Callable[[], object]] = {}
    original = MediaFileManager.add_deferred

    def remember(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):  # type: ignore[no-untyped-def]
        captured[file_name or ""] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name=file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", remember)
    return captured


def rows(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM so Excel reads Traditional Chinese"
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def test_csv_is_the_export_of_the_filtered_unactivated_hosts(seeded_db_url, deferred_downloads, seeded_hosts):
    at = open_page("ui/pages/hosts.py", code="0xC004F074")
    assert not at.exception
    content = deferred_downloads["unactivated-hosts.csv"]()
    assert isinstance(content, bytes)
    engine = make_engine(seeded_db_url)
    with engine.connect() as conn:
        expected = export.csv_bytes(conn, HostFilter(error_codes=("0xC004F074",), unactivated_only=True))
    engine.dispose()
    assert content == expected
    table = rows(content)
    assert list(table[0]) == list(export.EXPORT_COLUMNS)
    truth = {h.name for h in seeded_hosts if h.error_code == "0xC004F074"}
    assert {row["host"] for row in table} == truth
    assert {row["error_code"] for row in table} == {"0xC004F074"}


def test_csv_follows_the_filters_chosen_in_the_widgets(seeded_db_url, deferred_downloads, seeded_hosts):
    at = open_page("ui/pages/hosts.py")
    at.multiselect(key="type").select("MAK").run()
    table = rows(deferred_downloads["unactivated-hosts.csv"]())
    truth = {h.name for h in seeded_hosts if h.activation_type == "MAK" and not _activated(h)}
    assert {row["host"] for row in table} == truth


def test_csv_neutralises_formulas_in_host_supplied_text(seeded_db_url, deferred_downloads):
    assert not open_page("ui/pages/hosts.py").exception
    table = rows(deferred_downloads["unactivated-hosts.csv"]())
    assert table, "the unfiltered export lists every unactivated host"
    assert not any(value.startswith(("=", "+", "-", "@")) for row in table for value in row.values())


def _activated(h: SeedHost) -> bool:
    return h.license_status == "Licensed" and h.failure is None


def test_csv_from_the_chinese_page_has_chinese_titles_under_the_same_columns(seeded_db_url, deferred_downloads):
    assert not open_page("ui/pages/hosts.py", code="0xC004F038").exception
    english = deferred_downloads["unactivated-hosts.csv"]()
    assert not open_page("ui/pages/hosts.py", code="0xC004F038", lang="zh-TW").exception
    chinese = deferred_downloads["unactivated-hosts.csv"]()
    assert isinstance(english, bytes) and isinstance(chinese, bytes)
    header = english.decode("utf-8-sig").splitlines()[0]
    assert chinese.decode("utf-8-sig").splitlines()[0] == header
    assert header.split(",") == [f'"{column}"' for column in export.EXPORT_COLUMNS]
    en_rows, zh_rows = rows(english), rows(chinese)
    assert [r["host"] for r in zh_rows] == [r["host"] for r in en_rows] and zh_rows
    assert {r["error_code"] for r in zh_rows} == {"0xC004F038"}
    assert {r["error_title"] for r in zh_rows} == {lookup("0xC004F038", "zh-TW").title}
    assert {r["error_title"] for r in en_rows} == {lookup("0xC004F038", "en").title}
    assert all(re.search(r"[\u4e00-\u9fff]", r["error_title"]) for r in zh_rows)
