"""Documented promises of the dashboard that do not need a running app: translations, config, links."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from knowledge.codes import all_codes
from ui import i18n, links
from ui.kb import known_codes

ROOT = Path(__file__).resolve().parents[2]
UI_FILES = [ROOT / "dashboard.py", *sorted((ROOT / "ui").rglob("*.py"))]
LITERAL_T = re.compile(r"""\bt\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]""")


def test_every_interface_string_has_a_traditional_chinese_translation():
    used = {match for path in UI_FILES for match in LITERAL_T.findall(path.read_text(encoding="utf-8"))}
    assert used, "the scan found the t(...) calls"
    missing = sorted(text for text in used if text not in i18n.ZH_TW)
    assert missing == []


def test_placeholders_survive_translation():
    field = re.compile(r"\{[^}]*\}")
    wrong = {k: v for k, v in i18n.ZH_TW.items() if sorted(field.findall(k)) != sorted(field.findall(v))}
    assert wrong == {}


def test_streamlit_config_binds_loopback_and_sends_no_statistics():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["enableXsrfProtection"] is True
    assert config["browser"]["gatherUsageStats"] is False


def test_resolution_links_exist_only_for_canonical_codes():
    assert links.resolution_url("0xC004F074", "zh-TW") == "error_codes?code=0xC004F074&lang=zh-TW"
    for bad in (None, float("nan"), "", "javascript:alert(1)", "0xc004f074"):
        assert links.resolution_url(bad, "en") is None


def test_host_links_encode_the_name():
    assert links.host_url("a&b=<c>", "en") == "host?host=a%26b%3D%3Cc%3E&lang=en"


def test_the_error_codes_page_offers_every_knowledge_base_entry_in_both_languages():
    assert known_codes("en") == known_codes("zh-TW") == [entry.code for entry in all_codes("en")]


def test_vocabulary_shown_as_labels_is_translated():
    from knowledge.codes import CHECK_NAMES
    from models.enums import ActivationType, FailureClass, LicenseStatus, RunStatus, Severity
    from ui.views import METRICS

    words = [
        *(m.label for m in METRICS),
        *LicenseStatus,
        *FailureClass,
        *Severity,
        *RunStatus,
        *(c for c in CHECK_NAMES if c != "event_log"),
        *(a for a in ActivationType if a not in {"MAK", "OEM"}),
    ]
    assert sorted(str(w) for w in words if str(w) not in i18n.TABLES["zh-TW"]) == []
