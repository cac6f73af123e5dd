"""Language switch (kept in ``?lang=``) and the optional sign-in gates."""

from __future__ import annotations

import pytest

from tests.ui.dashboard_app import app, frame, open_page


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
    assert "僅能啟用伺服器" in states


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


def test_repeated_wrong_passwords_lock_the_session_out(seeded_db_url, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ACTIVATION_AUTH_PASSWORD", "correct horse")
    monkeypatch.setattr("ui.auth.FAILURE_DELAY_S", 0.0)
    at = app().run()
    for _ in range(5):
        at.text_input(key="auth_password_input").input("guess")
        at.button[0].click().run()
    at.text_input(key="auth_password_input").input("correct horse")
    at.button[0].click().run()
    assert at.error[0].value.startswith("Too many wrong passwords")
    assert not at.metric and not at.dataframe, "even the right password waits out the lockout"


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
