"""Messages as the people on call receive them: once per change, repeated while nobody acknowledges, quiet when
acknowledged or silenced, one summary for a storm, every target tried whatever another does, no secret kept.
Real receivers (HTTP and SMTP on 127.0.0.1) through apprise; state on both backends."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from alerting import run_alerts
from models import alerts
from models.enums import LicenseStatus
from models.hostfacts import resolution
from models.tables import Base
from tests.alerting import fleetstate
from tests.alerting.receivers import dead_webhook_url, free_port

T0 = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
HOUR = timedelta(hours=1)
CODES = ("0xC004F074", "0xC004F038", "0x8007232B")


def failing(engine: Engine, *names: str, at: datetime = T0) -> None:
    fleetstate.write(engine, [fleetstate.host(n, at, status=LicenseStatus.NOTIFICATION, code=CODES[0]) for n in names])


def fixed(engine: Engine, *names: str, at: datetime) -> None:
    fleetstate.write(engine, [fleetstate.host(n, at) for n in names])


def notifications(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return list(reversed(alerts.recent_notifications(conn, limit=10_000)))


def alert_id(engine: Engine, subject: str) -> int:
    with engine.connect() as conn:
        return next(a.id for a in alerts.list_alerts(conn) if a.subject == subject)


def test_one_message_when_it_fires_a_repeat_a_day_later_and_one_when_it_resolves(engine, webhook, tmp_path):
    settings = fleetstate.settings(tmp_path)
    failing(engine, "ws-01")
    for hours in (0, 1, 2):  # polled hourly: nothing new to say
        run_alerts(engine, settings, now=T0 + hours * HOUR, notify_urls=[webhook.url])
    [first] = webhook.messages
    assert first.title == "[WARNING] Host failing activation: ws-01"
    fix = resolution(CODES[0])
    assert fix is not None and CODES[0] in first.body and fix.article_url in first.body
    assert first.kind == "warning"

    run_alerts(engine, settings, now=T0 + 25 * HOUR, notify_urls=[webhook.url])
    run_alerts(engine, settings, now=T0 + 26 * HOUR, notify_urls=[webhook.url])
    assert webhook.titles()[1:] == ["[WARNING, still firing] Host failing activation: ws-01"]

    fixed(engine, "ws-01", at=T0 + 27 * HOUR)
    for hours in (27, 28):
        run_alerts(engine, settings, now=T0 + hours * HOUR, notify_urls=[webhook.url])
    assert webhook.titles()[2:] == ["[RESOLVED] Host failing activation: ws-01"]
    assert webhook.messages[2].kind == "success"
    log = notifications(engine)
    assert [(n["kind"], n["ok"], n["attempts"], n["target"]) for n in log] == [
        (kind, True, 1, "json://127.0.0.1") for kind in ("firing", "repeat", "resolved")
    ]


def test_acknowledged_alerts_are_not_repeated_and_silenced_ones_say_nothing(engine, webhook, tmp_path):
    settings = fleetstate.settings(tmp_path)
    failing(engine, "ws-acked", "ws-silenced")
    run_alerts(engine, settings, now=T0, notify_urls=[webhook.url])
    assert len(webhook.messages) == 2
    with engine.begin() as conn:
        alerts.acknowledge(conn, alert_id(engine, "ws-acked"), by="oncall", comment="re-keying", now=T0 + HOUR)
        until = T0 + 72 * HOUR
        alerts.silence(conn, alert_id(engine, "ws-silenced"), until=until, by="oncall", comment="lab", now=T0 + HOUR)
    for hours in (25, 49):
        run_alerts(engine, settings, now=T0 + hours * HOUR, notify_urls=[webhook.url])
    assert len(webhook.messages) == 2

    fixed(engine, "ws-acked", "ws-silenced", at=T0 + 50 * HOUR)
    run_alerts(engine, settings, now=T0 + 50 * HOUR, notify_urls=[webhook.url])
    # acknowledging quiets the repeats of a firing alert; its end is still news. A silence covers everything.
    assert webhook.titles()[2:] == ["[RESOLVED] Host failing activation: ws-acked"]


def test_a_storm_of_2000_newly_failing_hosts_is_one_summary(engine, webhook, tmp_path):
    settings = fleetstate.settings(tmp_path)
    fleetstate.failing_fleet(engine, T0, 2000, CODES)
    report = run_alerts(engine, settings, now=T0, notify_urls=[webhook.url])
    assert report.firing_total == 2000 and len(report.opened) == 2000
    [summary] = webhook.messages
    assert summary.title == "[WARNING] Host failing activation: 2000 hosts"
    for code, hosts in zip(CODES, (667, 667, 666), strict=True):
        fix = resolution(code)
        assert fix is not None
        assert f"{code} " in summary.body and f": {hosts} host(s)" in summary.body and fix.article_url in summary.body
    [logged] = notifications(engine)
    assert (logged["kind"], logged["alert_id"], logged["ok"]) == ("storm", None, True)

    run_alerts(engine, settings, now=T0 + HOUR, notify_urls=[webhook.url])
    assert len(webhook.messages) == 1
    fixed(engine, *(f"storm-{i:05d}" for i in range(2000)), at=T0 + 2 * HOUR)
    run_alerts(engine, settings, now=T0 + 2 * HOUR, notify_urls=[webhook.url])
    assert webhook.titles()[1:] == ["[RESOLVED] Host failing activation: 2000 hosts"]


def test_a_dead_webhook_fails_nothing_else(engine, mailbox, tmp_path):
    settings = fleetstate.settings(tmp_path)
    failing(engine, "ws-01")
    dead = dead_webhook_url()
    report = run_alerts(engine, settings, now=T0, notify_urls=[dead, mailbox.url])
    [mail] = mailbox.messages
    assert mail.title == "[WARNING] Host failing activation: ws-01" and CODES[0] in mail.body
    [sent] = report.messages
    assert [(d.target, d.ok, d.attempts) for d in sent.deliveries] == [
        ("json://127.0.0.1", False, settings.notify_retries),
        ("mailto://127.0.0.1", True, 1),
    ]
    logged = {n["target"]: n for n in notifications(engine)}
    assert logged["json://127.0.0.1"]["ok"] is False and logged["json://127.0.0.1"]["error"]
    assert logged["mailto://127.0.0.1"]["ok"] is True
    run_alerts(engine, settings, now=T0 + HOUR, notify_urls=[dead, mailbox.url])
    assert len(mailbox.messages) == 1  # it reached a target: announced, not sent again


def test_a_message_no_target_took_goes_out_at_the_next_evaluation(engine, webhook, tmp_path):
    settings = fleetstate.settings(tmp_path, notify_retries=2)
    failing(engine, "ws-01")
    webhook.status = 500
    run_alerts(engine, settings, now=T0, notify_urls=[webhook.url])
    assert webhook.requests == 2 and webhook.messages == []
    webhook.status = 200
    run_alerts(engine, settings, now=T0 + HOUR, notify_urls=[webhook.url])
    run_alerts(engine, settings, now=T0 + 2 * HOUR, notify_urls=[webhook.url])
    assert webhook.titles() == ["[WARNING] Host failing activation: ws-01"]
    assert [(n["ok"], n["attempts"]) for n in notifications(engine)] == [(False, 2), (True, 1)]


def test_messages_in_traditional_chinese(engine, webhook, mailbox, tmp_path):
    settings = fleetstate.settings(tmp_path, language="zh-TW")
    fleetstate.write(engine, [fleetstate.kms_host("kms-low", T0, 3)])
    failing(engine, "ws-01")
    run_alerts(engine, settings, now=T0, notify_urls=[webhook.url, mailbox.url])
    titles = sorted(webhook.titles())
    assert titles == sorted(m.title for m in mailbox.messages)
    assert titles == sorted(["[嚴重] KMS 主機未達啟用門檻：kms-low", "[警告] 主機啟用失敗：ws-01"])
    text = "".join(m.title + m.body for m in webhook.messages)
    for traditional in ("啟用", "授權狀態", "門檻", "電腦", "確認", "發出", "警示"):
        assert traditional in text
    simplified_only = "启权状态门槛电脑确认发时间机应误"  # the simplified forms of characters used above
    assert not set(text) & set(simplified_only)
    assert "learn.microsoft.com/zh-tw/" in text


def test_no_secret_of_a_target_is_logged_or_stored(engine, webhook, tmp_path, caplog):
    settings = fleetstate.settings(tmp_path, notify_retries=1)
    failing(engine, "ws-01")
    secrets = ("Sup3rS3cretPw", "T0K3N-4b8c9d", "QU3RYK3Y-77")
    port = webhook.server.server_address[1]
    good = f"json://alertbot:{secrets[0]}@127.0.0.1:{port}/hooks/{secrets[1]}?key={secrets[2]}"
    dead = f"json://alertbot:{secrets[0]}@127.0.0.1:{free_port()}/hooks/{secrets[1]}?key={secrets[2]}"
    with caplog.at_level(logging.DEBUG):
        report = run_alerts(engine, settings, now=T0, notify_urls=[good, dead, "slack://" + secrets[1]])
    assert len(webhook.messages) == 1
    assert report.targets == ("json://127.0.0.1", "json://127.0.0.1", "slack://")
    with engine.connect() as conn:
        stored = repr([conn.execute(select(t)).all() for t in Base.metadata.sorted_tables])
    shown = stored + caplog.text + repr(report.as_dict())
    assert "127.0.0.1" in stored and "alertbot" not in shown
    assert [s for s in secrets if s in shown] == []


def test_two_evaluators_at_once_send_each_message_once(engine, webhook, tmp_path):
    settings = fleetstate.settings(tmp_path)
    failing(engine, *(f"ws-{i:02d}" for i in range(5)))
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            start.wait()
            run_alerts(engine, settings, now=T0, notify_urls=[webhook.url])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(webhook.titles()) == [f"[WARNING] Host failing activation: ws-{i:02d}" for i in range(5)]


def test_a_library_caller_gets_the_urls_of_the_secrets_file(engine, webhook, tmp_path):
    secrets = tmp_path / "credentials.env"
    secrets.write_text(f'# notification targets\nexport ACTIVATION_NOTIFY_URLS="{webhook.url}"\n')
    secrets.chmod(0o600)
    settings = fleetstate.settings(tmp_path, secrets_file=secrets)
    failing(engine, "ws-01")
    run_alerts(engine, settings, now=T0)  # as the job-queue worker calls it: no URLs given
    assert webhook.titles() == ["[WARNING] Host failing activation: ws-01"]

    secrets.chmod(0o644)
    with pytest.raises(PermissionError, match="readable by others"):
        run_alerts(engine, settings, now=T0 + HOUR)
