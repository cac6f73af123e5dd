"""The Alerts page in a real headless Chromium, served by ``streamlit run`` on the seeded fleet with a few alerts
written through ``models.alerts.reconcile``: the navigation carries the firing count on a badge (English and
Traditional Chinese), acknowledging through the page's form records it and the page shows it, nothing on the page
is clipped, and with a sign-in password the page is behind the sign-in form and records the password account."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from models import alerts
from models.db import open_database
from models.seed import seed_fleet
from tests.e2e.browser_app import ROOT, Dashboard, PolledFleet
from tests.e2e.conftest import SIGN_IN_PASSWORD, served_dashboard
from tests.e2e.test_dashboard_browser import grid_text, settle
from tests.e2e.test_layout_browser import CLIPPED
from tests.ui.alert_seed import seed_alerts
from ui.alert_tables import NO_SIGN_IN, PASSWORD_SIGN_IN

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIRING = 3  # the KMS host below its threshold, the 0xC004F074 spike, the quiet collector


@pytest.fixture(scope="module")
def alert_fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[PolledFleet, dict[str, int]]:
    """The seeded fleet with its alerts, one acknowledged and one silenced, in a fresh SQLite file."""
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-alerts')}/alerts.db"
    engine = open_database(url)
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as conn:
        seed_fleet(conn, now=now)
        ids = seed_alerts(conn, now, handled=True)
    engine.dispose()
    return PolledFleet(url, []), ids


@pytest.fixture(scope="module")
def alerts_dashboard(
    alert_fleet: tuple[PolledFleet, dict[str, int]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    with served_dashboard(alert_fleet[0], tmp_path_factory.mktemp("e2e-alerts-server")) as served:
        yield served


def row(db_url: str, alert_id: int) -> alerts.AlertView:
    engine = open_database(db_url)
    with engine.connect() as conn:
        found = alerts.get(conn, alert_id)
    engine.dispose()
    assert found is not None
    return found


def nav_badge(page: Any, title: str) -> str:
    link = page.get_by_test_id("stSidebarNav").get_by_test_id("stSidebarNavLink").filter(has_text=title)
    return str(link.locator(".stMarkdownBadge").inner_text())


@pytest.mark.parametrize(("lang", "title"), [("en", "Alerts"), ("zh-TW", "警示")])
def test_the_navigation_shows_the_firing_count_on_a_badge(
    alerts_dashboard: Dashboard, page: Any, lang: str, title: str
) -> None:
    page.goto(f"{alerts_dashboard.url}/?lang={lang}")
    settle(page, "stMetric")
    assert nav_badge(page, title) == str(FIRING)
    page.get_by_test_id("stSidebarNav").get_by_test_id("stSidebarNavLink").filter(has_text=title).click()
    page.wait_for_function("() => location.pathname.endsWith('/alerts')")
    settle(page, "stDataFrame")
    assert page.locator("h1").first.inner_text() == title
    assert page.title() == f"{title} ({FIRING})", "the tab shows the count as text, not badge markup"


def test_readme_screenshot_of_the_alerts_page(alerts_dashboard: Dashboard, chromium: Any, artifacts: Path) -> None:
    """The Alerts page at a README-friendly size; copied to docs/screenshots/ on request."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1300}, device_scale_factor=1)
    page = context.new_page()
    page.goto(f"{alerts_dashboard.url}/alerts?lang=en")
    settle(page, "stDataFrame")
    page.screenshot(path=str(artifacts / "readme_alerts.png"), full_page=True)
    if os.environ.get("ACTIVATION_WRITE_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target / "alerts.png"), full_page=True)
    context.close()


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_nothing_on_the_alerts_page_is_clipped(alerts_dashboard: Dashboard, chromium: Any, lang: str) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(f"{alerts_dashboard.url}/alerts?lang={lang}")
    settle(page, "stDataFrame")
    clipped = page.evaluate(CLIPPED)
    context.close()
    assert clipped == []


def test_acknowledging_through_the_page_records_it_and_shows_it(
    alerts_dashboard: Dashboard, alert_fleet: tuple[PolledFleet, dict[str, int]], page: Any
) -> None:
    spike = alert_fleet[1]["code_spike"]
    page.goto(f"{alerts_dashboard.url}/alerts?lang=en")
    settle(page, "stDataFrame")
    assert page.get_by_text(f"Sign-in is off: what you do here is recorded as “{NO_SIGN_IN}”.").is_visible()

    page.get_by_test_id("stSelectbox").filter(has_text="Alert").click()
    page.get_by_role("option").filter(has_text=f"#{spike} · ").click()
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Acknowledge", exact=True))
    form.get_by_role("button", name="Acknowledge", exact=True).click()
    page.get_by_test_id("stAlertContentError").filter(has_text="Write a comment: it says why.").wait_for()
    assert row(alerts_dashboard.db_url, spike).acked_at is None

    form.get_by_label("Comment").fill("Traced to KMS02 below its threshold")
    form.get_by_role("button", name="Acknowledge", exact=True).click()
    page.get_by_test_id("stAlertContentSuccess").filter(has_text=f"Alert #{spike} acknowledged.").wait_for()
    settle(page, "stDataFrame")
    acked = row(alerts_dashboard.db_url, spike)
    assert (acked.acked_by, acked.ack_comment) == (NO_SIGN_IN, "Traced to KMS02 below its threshold")
    shown = grid_text(page)
    assert f"{NO_SIGN_IN} · " in shown, "the table says who acknowledged it"
    assert form.get_by_label("Comment").input_value() == "", "the form is ready for the next one"
    page.reload()
    settle(page, "stDataFrame")
    assert nav_badge(page, "Alerts") == str(FIRING), "an acknowledged alert still fires"


def test_with_sign_in_the_page_is_behind_the_sign_in_form(
    alert_fleet: tuple[PolledFleet, dict[str, int]], tmp_path_factory: pytest.TempPathFactory, chromium: Any
) -> None:
    workdir = tmp_path_factory.mktemp("e2e-alerts-signin")
    settings = {"ACTIVATION_AUTH_PASSWORD": SIGN_IN_PASSWORD, "ACTIVATION_DATA_DIR": str(workdir / "data")}
    quiet = alert_fleet[1]["collector_quiet"]
    with served_dashboard(alert_fleet[0], workdir, **settings) as served:
        context = chromium.new_context(viewport={"width": 1440, "height": 1200})
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.goto(f"{served.url}/alerts?lang=en")
        page.get_by_label("Password", exact=True).wait_for()
        settle(page)
        assert page.get_by_test_id("stDataFrame").count() == 0
        assert page.get_by_test_id("stSidebarNavLink").count() == 0, "not even the navigation with its badge"
        assert page.get_by_text("Alerts", exact=True).count() == 0

        page.get_by_label("Password", exact=True).fill(SIGN_IN_PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in", exact=True).click()
        settle(page, "stDataFrame")
        assert page.url.endswith("/alerts?lang=en")
        assert page.locator("h1").first.inner_text() == "Alerts"
        assert nav_badge(page, "Alerts") == str(FIRING)
        assert page.get_by_text(PASSWORD_SIGN_IN, exact=True).is_visible(), "who the page will record"
        assert page.get_by_text("Sign-in is off", exact=False).count() == 0

        page.get_by_test_id("stSelectbox").filter(has_text="Alert").click()
        page.get_by_role("option").filter(has_text=f"#{quiet} · ").click()
        form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Acknowledge", exact=True))
        form.get_by_label("Comment").fill("Rebooted the collector VM")
        form.get_by_role("button", name="Acknowledge", exact=True).click()
        page.get_by_test_id("stAlertContentSuccess").filter(has_text=f"Alert #{quiet} acknowledged.").wait_for()
        assert row(served.db_url, quiet).acked_by == PASSWORD_SIGN_IN
        context.close()
