"""Addresses inside the dashboard: page files, their URL paths, and links built from them.

Links that sit in table cells are relative URLs (``error_codes?code=0xC004F074&lang=en``), so they work
behind a reverse proxy's path prefix. They are built only from canonical error codes and URL-encoded host
names, never from text a host supplied as a URL, and every "resolution" link lands on the Error codes page.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import urlencode

from models import hostfacts


class PageRef(NamedTuple):
    path: str  # relative to dashboard.py, as st.Page and AppTest.switch_page want it
    url_path: str


OVERVIEW = PageRef("ui/pages/overview.py", "overview")
KMS_HOSTS = PageRef("ui/pages/kms_hosts.py", "kms_hosts")
HOSTS = PageRef("ui/pages/hosts.py", "hosts")
HOST_DETAIL = PageRef("ui/pages/host_detail.py", "host")
ERROR_CODES = PageRef("ui/pages/error_codes.py", hostfacts.KB_PAGE)
POLL_RUNS = PageRef("ui/pages/poll_runs.py", "poll_runs")
ALERTS = PageRef("ui/pages/alerts.py", "alerts")
FIRST_RUN = PageRef("ui/pages/first_run.py", "first_run")

CODE_PATTERN = re.compile(r"^0x[0-9A-F]{8}$")


def _url(page: PageRef, params: dict[str, str]) -> str:
    return f"{page.url_path}?{urlencode(params)}"


def resolution_url(code: object, lang: str) -> str | None:
    """The knowledge-base entry for ``code``, or ``None`` when there is no well-formed code."""
    fix = hostfacts.resolution(code, lang) if isinstance(code, str) and CODE_PATTERN.match(code) else None
    return fix.kb_path if fix else None


def article_url(code: object, lang: str) -> str | None:
    """Microsoft's article on ``code`` (the CSV's ``resolution_url``), or ``None`` without a well-formed code."""
    fix = hostfacts.resolution(code, lang) if isinstance(code, str) and CODE_PATTERN.match(code) else None
    return fix.article_url if fix else None


def page_url(page: PageRef, lang: str) -> str:
    """A page with no filter, in ``lang``."""
    return _url(page, {"lang": lang})


def host_url(host: str, lang: str) -> str:
    """The Host detail page of one host (the name is URL-encoded, never interpreted)."""
    return _url(HOST_DETAIL, {"host": host, "lang": lang})


def hosts_url(code: str, lang: str) -> str:
    """The Hosts page filtered to one error code."""
    return _url(HOSTS, {"code": code, "lang": lang})
