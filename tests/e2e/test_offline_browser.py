"""A management network has no internet: no page may send a request anywhere but the dashboard itself.

Every request the browser makes while each page loads (and while the language switches) is recorded;
any whose host is not the dashboard's loopback address fails the test, with its URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.browser_app import Dashboard
from tests.e2e.test_dashboard_browser import settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAGES = ["", "hosts", "kms_hosts", "error_codes?code=0xC004F074", "poll_runs"]


def record_requests(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_no_page_reaches_beyond_the_dashboard(dashboard: Dashboard, page: Any, lang: str) -> None:
    seen = record_requests(page)
    own = urlsplit(dashboard.url).netloc
    host = next(row["host"] for row in dashboard.truth if not row["poll_error"])
    for path in [*PAGES, f"host?host={host}"]:
        joiner = "&" if "?" in path else "?"
        page.goto(f"{dashboard.url}/{path}{joiner}lang={lang}")
        settle(page, "stMain")
    page.wait_for_timeout(1500)  # favicons and late chunks
    assert seen, "the recorder saw the pages load"
    foreign = sorted({url for url in seen if urlsplit(url).scheme in ("http", "https", "ws", "wss")
                      and urlsplit(url).netloc != own})  # fmt: skip
    assert foreign == []
