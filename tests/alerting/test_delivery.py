"""Messages reach every target in the end: a target that was down gets what it missed (and only that) at the
next evaluation, an end that no target took is announced later, a KMS host that falls further is announced
again as escalated, a silence outlives a flapping subject, and apprise's logs keep no secret whoever logs at
once. Real receivers on 127.0.0.1 through apprise; state on both backends."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from alerting import run_alerts
from alerting.messages import Message
from alerting.notify import deliver
from models import alerts
from models.enums import LicenseStatus
from tests.alerting import fleetstate
from tests.alerting.receivers import free_port

T0 = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
HOUR = timedelta(hours=1)
CODE = "0xC004F074"
KMS_TITLE = "KMS host below its threshold: kms-low"


def failing(engine: Engine, name: str, at: datetime = T0) -> None:
    fleetstate.write(engine, [fleetstate.host(name, at, status=LicenseStatus.NOTIFICATION, code=CODE)])


def fixed(engine: Engine, name: str, at: datetime) -> None:
    fleetstate.write(engine, [fleetstate.host(name, at)])


def kms_count(engine: Engine, count: int, at: datetime) -> None:
    fleetstate.write(engine, [fleetstate.kms_host("kms-low", at, count)])


def episodes(engine: Engine, rule: str) -> list[alerts.AlertView]:
    with engine.connect() as conn:
        return sorted((a for a in alerts.list_alerts(conn) if a.rule == rule), key=lambda a: a.id)


def logged(engine: Engine) -> list[tuple[str, str, bool]]:
    with engine.connect() as conn:
        rows = reversed(alerts.recent_notifications(conn, limit=1000))
        return [(str(n["kind"]), str(n["target"]), bool(n["ok"])) for n in rows]


def test_a_target_that_was_down_gets_what_it_missed_and_nothing_twice(engine, webhook, mailbox, tmp_path):
    settings = fleetstate.settings(tmp_path, notify_retries=1)
    urls = [webhook.url, mailbox.url]
    failing(engine, "ws-01")
    webhook.status = 500
    run_alerts(engine, settings, now=T0, notify_urls=urls)
    assert [m.title for m in mailbox.messages] == ["[WARNING] Host failing activation: ws-01"]
    assert webhook.messages == []

    webhook.status = 200
    for hours in (1, 2):
        run_alerts(engine, settings, now=T0 + hours * HOUR, notify_urls=urls)
    assert webhook.titles() == ["[WARNING] Host failing activation: ws-01"]
    assert len(mailbox.messages) == 1  # the target that took it is not sent it again

    fixed(engine, "ws-01", at=T0 + 3 * HOUR)
    webhook.status = 500
    run_alerts(engine, settings, now=T0 + 3 * HOUR, notify_urls=urls)
    webhook.status = 200
    for hours in (4, 5):
        run_alerts(engine, settings, now=T0 + hours * HOUR, notify_urls=urls)
    resolved = "[RESOLVED] Host failing activation: ws-01"
    assert webhook.titles()[1:] == [resolved] and [m.title for m in mailbox.messages][1:] == [resolved]
    assert logged(engine) == [
        ("firing", "json://127.0.0.1", False),
        ("firing", "mailto://127.0.0.1", True),
        ("firing", "json://127.0.0.1", True),
        ("resolved", "json://127.0.0.1", False),
        ("resolved", "mailto://127.0.0.1", True),
        ("resolved", "json://127.0.0.1", True),
    ]


def test_an_end_no_target_took_is_announced_when_one_answers(engine, webhook, tmp_path):
    settings = fleetstate.settings(tmp_path, notify_retries=1)
    failing(engine, "ws-01")
    run_alerts(engine, settings, now=T0, notify_urls=[webhook.url])
    fixed(engine, "ws-01", at=T0 + HOUR)
    webhook.status = 500  # every target down when the host recovers
    report = run_alerts(engine, settings, now=T0 + HOUR, notify_urls=[webhook.url])
    assert len(report.resolved) == 1 and [s.ok for s in report.messages] == [False]
    webhook.status = 200
    for hours in (2, 3):
        run_alerts(engine, settings, now=T0 + hours * HOUR, notify_urls=[webhook.url])
    assert webhook.titles() == ["[WARNING] Host failing activation: ws-01", "[RESOLVED] Host failing activation: ws-01"]


def test_a_kms_host_that_stops_activating_anything_is_announced_again_as_critical(engine, webhook, tmp_path):
    settings = fleetstate.settings(tmp_path)
    kms_count(engine, 12, T0)
    run_alerts(engine, settings, now=T0, notify_urls=[webhook.url])
    [episode] = episodes(engine, "kms_below_threshold")
    with engine.begin() as conn:  # acknowledged: no repeats, but getting worse is news
        alerts.acknowledge(conn, episode.id, by="oncall", comment="re-keying", now=T0)
    kms_count(engine, 3, T0 + HOUR)
    for hours in (1, 2):
        run_alerts(engine, settings, now=T0 + hours * HOUR, notify_urls=[webhook.url])
    assert webhook.titles() == [f"[WARNING] {KMS_TITLE}", f"[CRITICAL, escalated] {KMS_TITLE}"]
    assert "Its count is 3: below 5, it activates nothing." in webhook.messages[1].body
    assert [m.kind for m in webhook.messages] == ["warning", "failure"]

    kms_count(engine, 12, T0 + 3 * HOUR)  # better again: still firing, nothing new to say
    kms_count(engine, 3, T0 + 4 * HOUR)  # as bad as announced already
    for hours in (3, 4):
        run_alerts(engine, settings, now=T0 + hours * HOUR, notify_urls=[webhook.url])
    kms_count(engine, 30, T0 + 5 * HOUR)
    run_alerts(engine, settings, now=T0 + 5 * HOUR, notify_urls=[webhook.url])
    assert webhook.titles()[2:] == [f"[RESOLVED] {KMS_TITLE}"]
    assert [e.id for e in episodes(engine, "kms_below_threshold")] == [episode.id]


def test_a_silence_holds_while_a_kms_host_flaps_across_its_threshold(engine, webhook, tmp_path):
    settings = fleetstate.settings(tmp_path)
    kms_count(engine, 24, T0)
    run_alerts(engine, settings, now=T0, notify_urls=[webhook.url])
    [first] = episodes(engine, "kms_below_threshold")
    until = T0 + 12 * HOUR
    with engine.begin() as conn:
        alerts.silence(conn, first.id, until=until, by="oncall", comment="KMS rebuild", now=T0)
    for hour, count in enumerate((26, 24, 26, 24), start=1):
        kms_count(engine, count, T0 + hour * HOUR)
        run_alerts(engine, settings, now=T0 + hour * HOUR, notify_urls=[webhook.url])
    assert webhook.titles() == [f"[WARNING] {KMS_TITLE}"]
    flapped = episodes(engine, "kms_below_threshold")
    assert len(flapped) == 3 and flapped[-1].state == alerts.FIRING
    assert {(e.silenced_until, e.silenced_by, e.silence_comment) for e in flapped} == {(until, "oncall", "KMS rebuild")}

    # The silence is over. As far as anyone was told, it has fired since T0: nothing new until the repeat is due.
    for at in (until + HOUR, T0 + 25 * HOUR):
        kms_count(engine, 24, at)
        run_alerts(engine, settings, now=at, notify_urls=[webhook.url])
    assert webhook.titles() == [f"[WARNING] {KMS_TITLE}", f"[WARNING, still firing] {KMS_TITLE}"]


def test_an_expired_silence_is_not_inherited(engine, webhook, tmp_path):
    settings = fleetstate.settings(tmp_path)
    kms_count(engine, 24, T0)
    run_alerts(engine, settings, now=T0, notify_urls=[webhook.url])
    [first] = episodes(engine, "kms_below_threshold")
    with engine.begin() as conn:
        alerts.silence(conn, first.id, until=T0 + HOUR, by="oncall", comment="short", now=T0)
    for hours, count in ((2, 26), (3, 24)):
        kms_count(engine, count, T0 + hours * HOUR)
        run_alerts(engine, settings, now=T0 + hours * HOUR, notify_urls=[webhook.url])
    assert episodes(engine, "kms_below_threshold")[-1].silenced_until is None
    assert webhook.titles() == [f"[WARNING] {KMS_TITLE}", f"[RESOLVED] {KMS_TITLE}", f"[WARNING] {KMS_TITLE}"]


def test_apprise_logs_no_secret_while_targets_are_sent_to_at_once(caplog):
    secrets = [(f"Pw{i}-S3cr3t", f"T0K3N-{i}x{i}", f"K3Y-{i}q{i}") for i in range(4)]
    urls = [f"json://bot:{pw}@127.0.0.1:{free_port()}/hooks/{token}?key={key}" for pw, token, key in secrets]
    message = Message("firing", "firing", "host_failing", "warning", "title", "body", (1,))
    start = threading.Barrier(len(urls))
    results: list[bool] = []

    def send(url: str) -> None:
        start.wait()
        for _ in range(3):
            results.append(deliver(url, message, retries=1).ok)

    with caplog.at_level(logging.DEBUG):
        threads = [threading.Thread(target=send, args=(url,)) for url in urls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [False] * 12
    assert "A Connection error occurred sending JSON notification" in caplog.text  # apprise's words still logged
    assert [s for group in secrets for s in group if s in caplog.text] == []
    assert logging.getLogger("apprise").propagate and logging.getLogger("urllib3").propagate
