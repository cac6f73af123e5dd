"""The sign-in lockout in a real headless Chromium, against two ``streamlit run`` replicas of one database.

Five wrong passwords lock the browser's address out. A reload is still locked, even for the right password,
and so is the second dashboard process on the same database; once the lock (short here, ``auth_lockout_s``)
has ended, the right password signs in. A client that names another address in ``X-Forwarded-For`` is
believed only by a replica that trusts the proxy it comes through (``trusted_proxies``).

Both replicas run with ``FORWARDED_ALLOW_IPS`` empty, so that uvicorn under ``streamlit run`` leaves the client
address alone and ``trusted_proxies`` alone decides, as docs/dashboard.md recommends.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser_app import Dashboard, PolledFleet
from tests.e2e.conftest import SIGN_IN_PASSWORD, served_dashboard
from tests.e2e.test_dashboard_browser import settle
from tests.e2e.test_signin_browser import error_shown, post, session_cookie, sign_in_screen, submit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOCK_S = 30  # long enough for the checks below on a busy machine, short enough to wait out
LOCKED = "Too many wrong passwords. Try again after"
CLAIMED = "198.51.100.23"  # what a client says about itself in X-Forwarded-For


def copy_database(fleet: PolledFleet, target: Path) -> PolledFleet:
    """A consistent copy of the polled fleet's SQLite file, so this lockout touches no other test's sign-ins."""
    source = sqlite3.connect(fleet.db_url.removeprefix("sqlite:///"))
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return PolledFleet(f"sqlite:///{target}", fleet.truth)


@pytest.fixture
def replicas(polled_fleet: PolledFleet, tmp_path: Path) -> Iterator[tuple[Dashboard, Dashboard]]:
    """Two dashboard processes on one database; the second also trusts a proxy on loopback."""
    fleet = copy_database(polled_fleet, tmp_path / "lockout.db")
    common = {
        "ACTIVATION_AUTH_PASSWORD": SIGN_IN_PASSWORD,
        "ACTIVATION_AUTH_LOCKOUT_S": str(LOCK_S),
        "FORWARDED_ALLOW_IPS": "",
    }
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    with (
        served_dashboard(fleet, one, ACTIVATION_DATA_DIR=str(one / "data"), **common) as first,
        served_dashboard(
            fleet, two, ACTIVATION_DATA_DIR=str(two / "data"), ACTIVATION_TRUSTED_PROXIES="127.0.0.1", **common
        ) as second,
    ):
        yield first, second


def browser(chromium: Any) -> tuple[Any, Any]:
    context = chromium.new_context(viewport={"width": 1440, "height": 1200}, timezone_id="UTC")
    context.set_default_timeout(60_000)
    return context, context.new_page()


def right_password_with_a_claimed_address(replica: Dashboard, page: Any, claimed: str) -> Any:
    """Post the right password to ``replica`` from loopback, claiming ``claimed`` in ``X-Forwarded-For``."""
    form_id = str(page.locator("input[name=form_id]").get_attribute("value"))
    fields = {"password": SIGN_IN_PASSWORD, "form_id": form_id, "next": "/hosts"}
    return post(replica.url, "/signin", fields, {"X-Forwarded-For": claimed})


def test_five_wrong_passwords_lock_the_address_out_on_every_replica_until_the_lock_ends(
    replicas: tuple[Dashboard, Dashboard], chromium: Any
) -> None:
    one, two = replicas
    other_context, other = browser(chromium)
    other.goto(f"{two.url}/?lang=en")
    sign_in_screen(other, "Password")  # the second replica has run its first page before the clock starts
    context, page = browser(chromium)
    page.goto(f"{one.url}/hosts?lang=en")
    sign_in_screen(page, "Password")

    for attempt in range(1, 5):
        submit(page, "Password", "Sign in", f"guess {attempt}")
        error_shown(page, "Wrong password.")
    submit(page, "Password", "Sign in", "guess 5")
    locked_at = time.monotonic()
    error_shown(page, LOCKED)
    message = page.get_by_test_id("stAlertContentError").first.inner_text()
    assert message.startswith(LOCKED) and message.rstrip(".").count(":") == 2, message

    page.reload()
    error_shown(page, LOCKED)
    sign_in_screen(page, "Password")
    submit(page, "Password", "Sign in", SIGN_IN_PASSWORD)
    error_shown(page, LOCKED)
    assert session_cookie(context) is None, "after a reload, even the right password waits out the lockout"

    other.reload()
    error_shown(other, LOCKED)
    submit(other, "Password", "Sign in", SIGN_IN_PASSWORD)
    error_shown(other, LOCKED)
    assert session_cookie(other_context) is None, "the other replica knows the same lockout"

    reply = right_password_with_a_claimed_address(one, page, CLAIMED)
    assert reply.status == 303 and reply.getheader("Set-Cookie") is None, "an untrusted X-Forwarded-For is ignored"
    reply = right_password_with_a_claimed_address(two, other, CLAIMED)
    assert reply.status == 303 and reply.getheader("Location") == "/hosts"
    assert reply.getheader("Set-Cookie") is not None, "behind a trusted proxy the forwarded client counts"

    spent = time.monotonic() - locked_at
    assert spent < LOCK_S, f"the checks took {spent:.0f} s, longer than the {LOCK_S} s lock: raise LOCK_S"
    time.sleep(LOCK_S - spent + 1)
    submit(page, "Password", "Sign in", SIGN_IN_PASSWORD)
    assert page.url == f"{one.url}/hosts?lang=en", "signed in on the page asked for"
    settle(page, "stDataFrame")
    assert page.locator("input[type=password]").count() == 0
    assert session_cookie(context) is not None
    other_context.close()
    context.close()
