"""Nothing a person must read is clipped, at 1280 and 1920 pixels wide, in English and Traditional Chinese.

The browser measures every text element on each page: an element whose text is wider than its box
(``scrollWidth > clientWidth`` with hidden overflow or an ellipsis) is clipped. Tables are excluded: they
scroll sideways by design; their key columns are checked where they are drawn.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser_app import Dashboard
from tests.e2e.test_dashboard_browser import settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIPPED = """() => {
  const out = [];
  const skip = '[data-testid="stDataFrame"], [data-testid="stTable"], .js-plotly-plot, [data-testid="stCode"]';
  for (const el of document.querySelectorAll('[data-testid="stMain"] *, [data-testid="stSidebar"] *')) {
    if (el.closest(skip) || !el.textContent.trim()) continue;
    const style = getComputedStyle(el);
    const cuts = style.textOverflow === 'ellipsis' || (style.overflowX !== 'visible' && style.whiteSpace === 'nowrap');
    if (!cuts || el.getBoundingClientRect().width === 0 || style.visibility === 'hidden') continue;
    if (el.scrollWidth > el.clientWidth + 1) out.push(el.textContent.trim().slice(0, 80));
  }
  return [...new Set(out)];
}"""
PAGES = {"": "stMetric", "hosts": "stDataFrame", "kms_hosts": "stHeading", "error_codes": "stHeading",
         "poll_runs": "stHeading"}  # fmt: skip


@pytest.mark.parametrize("width", [1280, 1920])
@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_no_text_is_clipped(dashboard: Dashboard, chromium: Any, width: int, lang: str) -> None:
    context = chromium.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    code = next(row["error_code"] for row in dashboard.truth if row["error_code"] and not row["poll_error"])
    host = next(row["host"] for row in dashboard.truth if row["expected_findings"] and not row["poll_error"])
    clipped: dict[str, list[str]] = {}
    try:
        for path, ready in [*PAGES.items(), (f"hosts?code={code}", "stDataFrame"), (f"host?host={host}", "stHeading")]:
            joiner = "&" if "?" in path else "?"
            page.goto(f"{dashboard.url}/{path}{joiner}lang={lang}")
            settle(page, ready)
            found = page.evaluate(CLIPPED)
            if found:
                clipped[path or "overview"] = found
    finally:
        context.close()
    assert clipped == {}


def test_the_browser_has_a_font_for_traditional_chinese() -> None:
    """Without one, every zh-TW page and screenshot shows boxes (.ci/run installs fonts-noto-cjk)."""
    import os
    import shutil
    import subprocess

    if shutil.which("fc-list") is None:
        if os.environ.get("CI"):
            pytest.fail("fontconfig is missing: install fonts-noto-cjk")
        pytest.skip("fontconfig is not installed")
    fonts = subprocess.run(["fc-list", ":lang=zh-tw", "family"], capture_output=True, text=True, check=False).stdout
    if not fonts.strip() and not os.environ.get("CI"):
        pytest.skip("no Traditional Chinese font installed (apt-get install fonts-noto-cjk)")
    assert fonts.strip(), "no font covers Traditional Chinese: install fonts-noto-cjk"
