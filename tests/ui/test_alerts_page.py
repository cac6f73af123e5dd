"""The Alerts page on a real SQLite database seeded through ``models.alerts.reconcile``: what fires comes first,
then what resolved and the messages sent; acknowledging and silencing through the forms change the alert's row
and name who did it; a comment is required; Traditional Chinese throughout; a subject is text, never markup."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models import alerts
from models.db import open_database
from models.seed import SeedHost
from tests.ui.alert_seed import HOSTILE_SUBJECT, seed_alerts
from tests.ui.dashboard_app import frame, open_page
from ui.alert_tables import NO_SIGN_IN, PASSWORD_SIGN_IN

PAGE = "ui/pages/alerts.py"


@pytest.fixture
def alert_db(
    seeded_file: tuple[str, list[SeedHost]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, int]]:
    """A copy of the seeded fleet with alerts; returns its URL and rule -> alert id."""
    path = tmp_path / "alerts.db"
    shutil.copy(seeded_file[0].removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    engine = open_database(url)
    with engine.begin() as conn:
        ids = seed_alerts(conn, datetime.now(UTC), hostile=True)
    engine.dispose()
    monkeypatch.setenv("ACTIVATION_DB_URL", url)
    return url, ids


def row(url: str, alert_id: int) -> alerts.AlertView:
    engine = open_database(url)
    with engine.connect() as conn:
        found = alerts.get(conn, alert_id)
    engine.dispose()
    assert found is not None
    return found


def test_firing_alerts_come_first_most_severe_first_then_history_then_messages(alert_db):
    _, ids = alert_db
    at = open_page(PAGE)
    assert not at.exception
    assert at.title[0].value == "Alerts"
    assert [header.value for header in at.subheader] == [
        "Firing now",
        "Acknowledge or silence",
        "History",
        "Messages sent",
    ]
    firing = frame(at, "last_seen")
    assert list(firing["id"]) == [
        ids["kms_below_threshold"],
        ids["collector_quiet"],
        ids["code_spike"],
        ids["host_failing"],
    ]
    assert list(firing["severity"]) == ["CRITICAL", "WARNING", "WARNING", "INFO"]
    kms = firing.iloc[0]
    assert kms["alert"] == "KMS host below its threshold" and kms["subject"] == "10.1.0.11"
    assert kms["details"] == "host?host=10.1.0.11&lang=en", "a host subject opens Host detail"
    assert kms["facts"] == "computer_name: KMS02; count: 12; threshold: 25; failing_clients: 4"
    assert kms["since"] < kms["last_seen"]
    spike = firing.set_index("id").loc[ids["code_spike"]]
    assert spike["details"] == "error_codes?code=0xC004F074&lang=en", "a code subject opens its knowledge-base entry"
    quiet = firing.set_index("id").loc[ids["collector_quiet"], "details"]
    assert quiet == "poll_runs?lang=en", "a quiet collector opens Poll runs"
    assert firing.set_index("id").loc[ids["collector_quiet"], "facts"].endswith("shards: 2/4")

    history = frame(at, "resolved")
    assert set(history["alert"]) == {"KMS SRV record missing", "Grace period ending"}
    assert list(history["subject"]) == ["corp.example", "10.1.1.12"] or list(history["subject"]) == [
        "10.1.1.12",
        "corp.example",
    ]
    messages = frame(at, "target")
    assert list(messages["target"]) == ["msteams://corp.webhook.office.com", "mailtos://smtp.corp.example"]
    assert list(messages["ok"]) == ["no", "yes"] and list(messages["attempts"]) == [3, 1]
    assert messages["error"].iloc[0] == "HTTP 503 Service Unavailable"


def test_history_lists_the_most_recently_resolved_first(alert_db, seeded_file):
    url, _ = alert_db
    engine = open_database(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:  # the KMS host recovers now: its episode is the newest resolved
        alerts.reconcile(conn, [], evaluated=["kms_below_threshold"], now=now)
    engine.dispose()
    at = open_page(PAGE)
    history = frame(at, "resolved")
    assert history["subject"].iloc[0] == "10.1.0.11"
    assert list(history["resolved"]) == sorted(history["resolved"], reverse=True)
    assert "10.1.0.11" not in set(frame(at, "last_seen")["subject"])


def test_acknowledging_through_the_form_records_who_why_and_shows_it(alert_db):
    url, ids = alert_db
    at = open_page(PAGE)
    assert any(NO_SIGN_IN in info.value for info in at.info), "the page says what is recorded without sign-in"
    at.selectbox(key="alert_pick").set_value(ids["code_spike"])
    at.text_area(key="ack_comment").input("Storm traced to KMS02; working on it")
    at.button(key="acknowledge").click().run()
    assert not at.exception
    assert at.success[0].value == f"Alert #{ids['code_spike']} acknowledged."
    acked = row(url, ids["code_spike"])
    assert (acked.acked_by, acked.ack_comment) == (NO_SIGN_IN, "Storm traced to KMS02; working on it")
    assert acked.acked_at is not None and acked.state == alerts.FIRING
    shown = frame(at, "last_seen").set_index("id").loc[ids["code_spike"]]
    assert shown["status"] == "acknowledged"
    assert shown["acknowledged"].startswith(f"{NO_SIGN_IN} · ")
    assert shown["ack_comment"] == "Storm traced to KMS02; working on it"
    assert at.text_area(key="ack_comment").value == "", "the form is ready for the next one"


def test_a_comment_is_required(alert_db):
    url, ids = alert_db
    at = open_page(PAGE)
    at.selectbox(key="alert_pick").set_value(ids["collector_quiet"])
    at.text_area(key="ack_comment").input("   ")
    at.button(key="acknowledge").click().run()
    assert at.error[0].value == "Write a comment: it says why."
    at.button(key="silence").click().run()
    assert at.error[0].value == "Write a comment: it says why."
    unchanged = row(url, ids["collector_quiet"])
    assert unchanged.acked_at is None and unchanged.silenced_until is None


def test_silencing_for_a_duration_or_until_a_time(alert_db):
    url, ids = alert_db
    at = open_page(PAGE)
    at.selectbox(key="alert_pick").set_value(ids["kms_below_threshold"])
    at.radio(key="silence_for").set_value("4 hours")
    at.text_area(key="silence_comment").input("Licences for 13 more clients are on order")
    before = datetime.now(UTC)
    at.button(key="silence").click().run()
    assert not at.exception
    silenced = row(url, ids["kms_below_threshold"])
    assert before + timedelta(hours=4) <= silenced.silenced_until <= datetime.now(UTC) + timedelta(hours=4)
    assert (silenced.silenced_by, silenced.silence_comment) == (NO_SIGN_IN, "Licences for 13 more clients are on order")
    assert silenced.acked_at is None, "a silence is no acknowledgement"
    assert at.success[0].value.startswith(f"Alert #{ids['kms_below_threshold']} silenced until ")
    shown = frame(at, "last_seen").set_index("id").loc[ids["kms_below_threshold"]]
    assert shown["silenced_by"] == NO_SIGN_IN and shown["silenced_until"] == silenced.silenced_until
    assert shown["status"] == f"silenced until {silenced.silenced_until:%m-%d %H:%M}"

    # until a date and time (UTC here: the test browser names no time zone); one in the past is refused
    at.selectbox(key="alert_pick").set_value(ids["collector_quiet"])
    at.radio(key="silence_for").set_value("until")
    at.date_input(key="silence_date").set_value(before.date() - timedelta(days=1))
    at.text_area(key="silence_comment").input("Collector VM rebuilt")
    at.button(key="silence").click().run()
    assert at.error[0].value == "A silence must end in the future."
    assert row(url, ids["collector_quiet"]).silenced_until is None
    end = (before + timedelta(days=2)).replace(hour=18, minute=0, second=0, microsecond=0)
    at.date_input(key="silence_date").set_value(end.date())
    at.time_input(key="silence_time").set_value(end.time())
    at.button(key="silence").click().run()
    assert row(url, ids["collector_quiet"]).silenced_until == end


def test_with_a_password_sign_in_the_password_account_is_recorded(alert_db, monkeypatch: pytest.MonkeyPatch):
    url, ids = alert_db
    monkeypatch.setenv("ACTIVATION_AUTH_PASSWORD", "correct horse")
    at = open_page(PAGE)
    assert not at.dataframe, "behind the sign-in form"
    at.text_input(key="auth_password_input").input("correct horse")
    at.button[0].click().run()
    at.switch_page(PAGE).run()
    assert not any(NO_SIGN_IN in info.value for info in at.info)
    at.selectbox(key="alert_pick").set_value(ids["collector_quiet"])
    at.text_area(key="ack_comment").input("On it")
    at.button(key="acknowledge").click().run()
    assert row(url, ids["collector_quiet"]).acked_by == PASSWORD_SIGN_IN


def test_with_oidc_the_signed_in_email_is_recorded(alert_db):
    url, ids = alert_db
    from tests.ui.dashboard_app import app

    at = app()
    at.secrets["auth"] = {"client_id": "activation-monitor"}
    at.user = {"is_logged_in": True, "email": "it-ops@corp.example"}
    at.run()
    at.switch_page(PAGE).run()
    assert "it-ops@corp.example" in [text.value for text in at.text]
    at.selectbox(key="alert_pick").set_value(ids["kms_below_threshold"])
    at.text_area(key="ack_comment").input("Ordering licences")
    at.button(key="acknowledge").click().run()
    assert row(url, ids["kms_below_threshold"]).acked_by == "it-ops@corp.example"


def test_the_page_is_in_traditional_chinese(alert_db):
    _, ids = alert_db
    at = open_page(PAGE, lang="zh-TW")
    assert not at.exception
    assert at.title[0].value == "警示"
    assert [header.value for header in at.subheader] == ["目前觸發中", "確認或靜音", "歷史紀錄", "已送出的通知"]
    firing = frame(at, "last_seen")
    assert firing["alert"].iloc[0] == "KMS 主機未達啟用門檻" and firing["severity"].iloc[0] == "嚴重"
    labels = {column: spec.get("label") for column, spec in json.loads(at.dataframe[0].proto.columns).items()}
    assert labels["subject"] == "對象" and labels["facts"] == "事實" and labels["silenced_until"] == "靜音至 (UTC)"
    assert labels["last_seen"] == "最後偵測到 (UTC)"
    assert at.button(key="acknowledge").label == "確認" and at.button(key="silence").label == "靜音"
    assert at.radio(key="silence_for").options == ["1 小時", "4 小時", "1 天", "1 週", "直到下方的日期與時間"]
    assert [area.label for area in at.text_area] == ["備註", "備註"]
    assert any("儀表板（未登入）" in info.value for info in at.info)
    assert list(frame(at, "target")["ok"]) == ["否", "是"] and list(frame(at, "target")["kind"]) == ["大量彙總", "觸發"]
    at.selectbox(key="alert_pick").set_value(ids["code_spike"])
    at.button(key="acknowledge").click().run()
    assert at.error[0].value == "請填寫備註，說明原因。"
    at.text_area(key="ack_comment").input("已在處理")
    at.button(key="acknowledge").click().run()
    assert at.success[0].value == f"警示 #{ids['code_spike']} 已確認。"
    shown = frame(at, "last_seen").set_index("id").loc[ids["code_spike"]]
    assert shown["status"] == "已確認" and shown["acknowledged"].startswith("儀表板（未登入） · ")


def test_a_subject_with_markup_is_shown_as_text(alert_db):
    _, ids = alert_db
    at = open_page(PAGE)
    firing = frame(at, "last_seen").set_index("id")
    assert firing.loc[ids["host_failing"], "subject"] == HOSTILE_SUBJECT
    assert firing.loc[ids["host_failing"], "facts"] == "error_code: 0xC004F074; note: <b>x</b>"
    assert (
        firing.loc[ids["host_failing"], "details"]
        == "host?host=%3Cscript%3Ealert%28%27subject%27%29%3C%2Fscript%3E&lang=en"
    )
    assert HOSTILE_SUBJECT in at.selectbox(key="alert_pick").options[-1]
    markdown = [
        element.value for kind in ("markdown", "caption", "info", "success", "error") for element in at.get(kind)
    ]
    assert not any("<script" in str(value) for value in markdown), "never handed to Markdown"
