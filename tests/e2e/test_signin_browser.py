"""Password sign-in in a real headless Chromium, against a second ``streamlit run`` that asks for a password.

A colleague opens a shared filter link while signed out: the sign-in form shows and nothing else; a wrong
password is refused; the right one lands on exactly the shared page and query, with the filter applied (and
clears the count of wrong passwords; the lockout itself is in test_signin_lockout_browser.py).
The browser stays signed in across reloads and new tabs for the configured lifetime (a signed, HttpOnly
cookie that does not carry the password), another browser does not, an expired, forged or old-password
cookie is refused, and signing out ends it. The sign-in route refuses other sites and only sends the
browser to paths on this site.
"""

from __future__ import annotations

import http.client
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from pydantic import SecretStr

from tests.e2e.test_dashboard_browser import common_code, settle
from ui import session

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LIFETIME_S = 12 * 3600  # the default auth_session_hours


def session_cookie(context: Any) -> dict[str, Any] | None:
    return next((c for c in context.cookies() if c["name"] == session.COOKIE_NAME), None)


def sign_in_screen(page: Any, password_label: str) -> None:
    """Wait for the sign-in form, then check that no data came with it."""
    page.get_by_label(password_label, exact=True).wait_for()
    settle(page)
    assert page.get_by_test_id("stDataFrame").count() == 0
    assert page.get_by_test_id("stMetric").count() == 0
    assert page.get_by_test_id("stPlotlyChart").count() == 0


def submit(page: Any, password_label: str, button: str, password: str) -> None:
    page.get_by_label(password_label, exact=True).fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name=button, exact=True).click()


def error_shown(page: Any, text: str) -> None:
    page.get_by_test_id("stAlertContentError").filter(has_text=text).wait_for()
    settle(page)


def test_a_shared_link_asks_for_the_password_then_opens_exactly_that_view(signin_dashboard: Any, chromium: Any) -> None:
    code = common_code(signin_dashboard.truth)
    shared = f"{signin_dashboard.url}/hosts?code={code}&lang=zh-TW"
    context = chromium.new_context(viewport={"width": 1440, "height": 1200})
    context.set_default_timeout(60_000)
    page = context.new_page()

    page.goto(shared)
    sign_in_screen(page, "密碼")
    assert page.get_by_text("請先登入才能檢視機群。").is_visible()

    submit(page, "密碼", "登入", "not the password")
    error_shown(page, "密碼錯誤。")
    assert page.url == shared, "a refused sign-in comes back to the shared address"
    sign_in_screen(page, "密碼")
    assert session_cookie(context) is None, "a wrong password sets no cookie"

    submit(page, "密碼", "登入", signin_dashboard.password)
    assert page.url == shared, "signed in on exactly the shared page and query"
    settle(page, "stDataFrame")
    assert page.locator("h1").first.inner_text() == "主機"
    assert page.get_by_test_id("stMultiSelect").filter(has_text=code).count() == 1
    assert f"code={code}" in page.url and "lang=zh-TW" in page.url

    cookie = session_cookie(context)
    assert cookie is not None
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["secure"] is False
    assert signin_dashboard.password not in cookie["value"]
    assert "password" not in cookie["value"].lower()
    assert abs(cookie["expires"] - (time.time() + LIFETIME_S)) < 120

    page.reload()
    settle(page, "stDataFrame")
    assert page.locator("input[type=password]").count() == 0, "a reload stays signed in"

    host = next(row["host"] for row in signin_dashboard.truth if not row["poll_error"])
    tab = context.new_page()
    tab.goto(f"{signin_dashboard.url}/host?host={host}&lang=zh-TW")
    settle(tab, "stDataFrame")
    assert tab.locator("input[type=password]").count() == 0, "a new tab of the same browser is signed in"
    assert tab.get_by_text(host, exact=True).first.is_visible()
    tab.close()

    other = chromium.new_context()
    elsewhere = other.new_page()
    elsewhere.goto(shared)
    sign_in_screen(elsewhere, "密碼")
    other.close()

    with page.expect_navigation():
        page.get_by_test_id("stSidebar").get_by_role("button", name="登出", exact=True).click()
    sign_in_screen(page, "密碼")
    assert session_cookie(context) is None, "signing out removes the cookie"
    page.reload()
    sign_in_screen(page, "密碼")
    context.close()


def test_the_english_sign_in_refuses_wrong_passwords_and_a_right_one_clears_them(
    signin_dashboard: Any, chromium: Any
) -> None:
    """Four wrong passwords, one short of the lockout (tests/e2e/test_signin_lockout_browser.py), twice over:
    the right password in between clears the count, so the second four are still only wrong."""
    context = chromium.new_context()
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(f"{signin_dashboard.url}/?lang=en")
    sign_in_screen(page, "Password")
    assert page.get_by_text("Sign in to see the fleet.").is_visible()

    for round_ in ("first", "second"):
        for attempt in range(1, 5):
            submit(page, "Password", "Sign in", f"{round_} guess {attempt}")
            error_shown(page, "Wrong password.")
            sign_in_screen(page, "Password")
            assert session_cookie(context) is None, "a wrong password sets no cookie"
        submit(page, "Password", "Sign in", signin_dashboard.password)
        settle(page)
        assert page.locator("input[type=password]").count() == 0, f"signed in after the {round_} four"
        assert session_cookie(context) is not None
        with page.expect_navigation():
            page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out", exact=True).click()
        sign_in_screen(page, "Password")
    context.close()


def test_an_expired_forged_or_old_password_cookie_asks_again(signin_dashboard: Any, chromium: Any) -> None:
    url = f"{signin_dashboard.url}/poll_runs?lang=en"
    context = chromium.new_context()
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(url)
    sign_in_screen(page, "Password")  # the server has made its key by now

    secret = session.secret(signin_dashboard.data_dir)
    key = session.signing_key(secret, SecretStr(signin_dashboard.password))
    fresh = session.issue(key, time.time())
    cookies = {
        "expired": session.issue(key, time.time() - LIFETIME_S - 60),
        "forged": fresh[:-1] + ("0" if fresh[-1] != "0" else "1"),
        "from an old password": session.issue(session.signing_key(secret, SecretStr("the old password")), time.time()),
    }
    for why, value in cookies.items():
        context.clear_cookies()
        context.add_cookies([{"name": session.COOKIE_NAME, "value": value, "url": signin_dashboard.url}])
        page.goto(url)
        page.get_by_label("Password", exact=True).wait_for()
        assert page.get_by_test_id("stDataFrame").count() == 0, why

    context.clear_cookies()
    context.add_cookies([{"name": session.COOKIE_NAME, "value": fresh, "url": signin_dashboard.url}])
    page.goto(url)
    settle(page, "stDataFrame")
    assert page.locator("input[type=password]").count() == 0, "the same key and a fresh time are accepted"
    context.close()


def post(base: str, route: str, fields: dict[str, str], headers: dict[str, str]) -> http.client.HTTPResponse:
    address = urlsplit(base)
    conn = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
    body = urlencode(fields)
    conn.request("POST", route, body, {"Content-Type": "application/x-www-form-urlencoded", **headers})
    reply = conn.getresponse()
    reply.read()
    conn.close()
    return reply


def test_the_sign_in_route_refuses_other_sites_and_sends_only_to_this_site(
    signin_dashboard: Any, chromium: Any
) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"{signin_dashboard.url}/?lang=en")
    sign_in_screen(page, "Password")
    form_id = str(page.locator("input[name=form_id]").get_attribute("value"))
    context.close()
    right = {"password": signin_dashboard.password, "form_id": form_id, "next": "/hosts"}

    for header in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"}):
        reply = post(signin_dashboard.url, "/signin", right, header)
        assert reply.status == 403, header
        assert reply.getheader("Set-Cookie") is None

    reply = post(signin_dashboard.url, "/signin", {**right, "form_id": "made-up"}, {})
    assert reply.status == 303 and reply.getheader("Location") == "/hosts?signin=expired"
    assert reply.getheader("Set-Cookie") is None, "a form this server never handed out signs nobody in"

    origin = signin_dashboard.url
    behind_tls = {"Origin": origin, "X-Forwarded-Proto": "https"}
    reply = post(signin_dashboard.url, "/signin", {**right, "next": "//evil.example/"}, behind_tls)
    assert reply.status == 303 and reply.getheader("Location") == "./", "never to another site"
    set_cookie = str(reply.getheader("Set-Cookie"))
    assert set_cookie.startswith(f"{session.COOKIE_NAME}=")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", f"Max-Age={LIFETIME_S}", "Path=/"):
        assert attribute in set_cookie, attribute
    assert signin_dashboard.password not in set_cookie


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/hosts",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "hosts?code=0xC004F074",
        "/hosts\r\nSet-Cookie: x=1",
        "",
        None,
    ],
)
def test_only_paths_on_this_site_are_followed_after_sign_in(target: str | None) -> None:
    assert session.safe_next(target) is None


def test_a_path_with_its_query_is_kept_as_it_is() -> None:
    shared = "/hosts?code=0xC004F074&code=0xC004F038&site=Taipei&lang=zh-TW"
    assert session.safe_next(shared) == shared
    assert session.safe_next("/") == "/"
