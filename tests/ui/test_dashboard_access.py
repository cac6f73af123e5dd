"""Language switch (kept in ``?lang=``) and the optional sign-in gates."""

from __future__ import annotations

import re
import time

import pytest

from tests.ui.dashboard_app import app, frame, open_page
from ui import session


def test_language_from_the_url_translates_the_whole_page(seeded_db_url):
    at = app(lang="zh-TW").run()
    assert not at.exception
    assert at.title[0].value == "總覽"
    assert "已知主機" in [m.label for m in at.metric]
    assert at.radio(key="lang").value == "zh-TW"


def test_switching_language_keeps_it_in_the_url(seeded_db_url):
    at = app().run()
    assert at.query_params["lang"] == "en"
    at.radio(key="lang").set_value("zh-TW").run()
    assert at.title[0].value == "總覽"
    assert at.query_params["lang"] == "zh-TW"


def test_language_survives_moving_to_another_page(seeded_db_url):
    at = app(lang="zh-TW").run()
    at.switch_page("ui/pages/hosts.py").run()
    assert at.title[0].value == "主機"
    assert at.query_params["lang"] == "zh-TW"


def test_knowledge_base_and_states_follow_the_language(seeded_db_url):
    at = open_page("ui/pages/error_codes.py", lang="zh-TW", code="0xC004F038")
    assert at.subheader[0].value.startswith("0xC004F038 · ")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in at.subheader[0].value)
    at.switch_page("ui/pages/kms_hosts.py").run()
    states = set(frame(at, "current_count")["state"])
    assert {"未接聽", "正常"} <= states


def test_an_unsupported_language_falls_back_to_english(seeded_db_url):
    at = app(lang="xx").run()
    assert at.title[0].value == "Overview"
    assert at.query_params["lang"] == "en"


def test_password_gate_shows_no_data_before_sign_in(seeded_db_url, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ACTIVATION_AUTH_PASSWORD", "correct horse")
    at = app().run()
    assert not at.exception
    assert not at.metric and not at.dataframe and not at.get("plotly_chart")
    at.switch_page("ui/pages/hosts.py").run()
    assert not at.dataframe, "a page reached directly is gated too"
    at.text_input(key="auth_password_input").input("wrong")
    at.button[0].click().run()
    assert at.error[0].value == "Wrong password."
    assert not at.dataframe
    at.text_input(key="auth_password_input").input("correct horse")
    at.button[0].click().run()
    assert not at.exception
    assert at.metric or at.dataframe, "signed in: the data shows"
    assert at.button(key="sign_out")


def sign_in(at, password: str) -> None:
    at.text_input(key="auth_password_input").input(password)
    at.button[0].click().run()


def test_repeated_wrong_passwords_lock_out_this_and_every_later_session(empty_db_url, monkeypatch: pytest.MonkeyPatch):
    """The count lives in the database (a fresh one here): a new session, like a reload, is locked too."""
    monkeypatch.setenv("ACTIVATION_AUTH_PASSWORD", "correct horse")
    monkeypatch.setattr("ui.auth.FAILURE_DELAY_S", 0.0)
    at = app(lang="zh-TW").run()
    for _ in range(4):
        sign_in(at, "guess")
        assert at.error[0].value == "密碼錯誤。"
    sign_in(at, "guess")
    assert re.fullmatch(r"密碼錯誤次數過多，請於 \d\d:\d\d:\d\d UTC 之後再試。", at.error[0].value)
    sign_in(at, "correct horse")
    assert at.error[0].value.startswith("密碼錯誤次數過多")
    assert not at.metric and not at.dataframe, "even the right password waits out the lockout"

    again = app().run()
    assert re.fullmatch(r"Too many wrong passwords\. Try again after \d\d:\d\d:\d\d UTC\.", again.error[0].value)
    sign_in(again, "correct horse")
    assert again.error[0].value.startswith("Too many wrong passwords")
    assert not again.metric and not again.dataframe, "a new session is still locked out"


def test_the_right_password_works_once_the_lockout_ends(empty_db_url, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ACTIVATION_AUTH_PASSWORD", "correct horse")
    monkeypatch.setenv("ACTIVATION_AUTH_LOCKOUT_S", "1")
    monkeypatch.setattr("ui.auth.FAILURE_DELAY_S", 0.0)
    at = app().run()
    for _ in range(5):
        sign_in(at, "guess")
    assert at.error[0].value.startswith("Too many wrong passwords")
    time.sleep(1.1)
    sign_in(at, "correct horse")
    assert not at.exception
    assert at.button(key="sign_out"), "signed in once the lock ended"


PROXIES = ("10.0.8.0/24",)


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "counted"),
    [
        ("198.51.100.7", ["203.0.113.9"], (), "198.51.100.7"),  # nobody trusted: a client cannot name itself
        ("198.51.100.7", ["203.0.113.9"], PROXIES, "198.51.100.7"),  # nor through a proxy not listed
        ("10.0.8.2", ["203.0.113.9"], PROXIES, "203.0.113.9"),
        ("10.0.8.2", ["192.0.2.66, 203.0.113.9"], PROXIES, "203.0.113.9"),  # what the client wrote itself is ignored
        ("10.0.8.2", ["192.0.2.66", "203.0.113.9, 10.0.8.3"], PROXIES, "203.0.113.9"),  # a chain of proxies
        ("10.0.8.2", ["203.0.113.9:5150"], PROXIES, "203.0.113.9"),
        ("10.0.8.2", [], PROXIES, "10.0.8.2"),
        ("10.0.8.2", ["unknown"], PROXIES, "10.0.8.2"),
        (None, ["203.0.113.9"], (), "127.0.0.1"),  # Streamlit's word for loopback
        (None, ["203.0.113.9"], ("::1/128",), "203.0.113.9"),
        ("::1", [], (), "127.0.0.1"),
        ("::ffff:198.51.100.7", [], (), "198.51.100.7"),
        ("2001:db8:1:2:aaaa::1", [], (), "2001:db8:1:2::/64"),  # an IPv6 client counts by its /64
        ("10.0.8.2", ["[2001:db8:1:2::7]:4431"], PROXIES, "2001:db8:1:2::/64"),
    ],
)
def test_the_lockout_counts_the_client_a_trusted_proxy_names_and_no_other(peer, forwarded, trusted, counted):
    assert session.client_address(peer, forwarded, trusted) == counted


def test_oidc_gate_asks_for_sign_in_when_configured(seeded_db_url):
    at = app()
    at.secrets["auth"] = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "not-a-real-secret",
        "client_id": "activation-monitor",
        "client_secret": "not-a-real-secret",
        "server_metadata_url": "https://id.example/.well-known/openid-configuration",
    }
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    assert at.button(key="sign_in_oidc")
    assert not at.metric


def test_oidc_allow_list_refuses_other_accounts(seeded_db_url):
    at = app()
    at.secrets["auth"] = {"client_id": "activation-monitor"}
    at.secrets["access"] = {"allowed_emails": ["it@corp.example"]}
    at.user = {"is_logged_in": True, "email": "visitor@else.example"}
    at.run()
    assert "not allowed" in at.error[0].value
    assert not at.metric
    at.user = {"is_logged_in": True, "email": "IT@corp.example"}
    at.run()
    assert at.metric[0].label == "Hosts known"
