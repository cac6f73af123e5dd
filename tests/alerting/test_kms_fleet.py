"""A KMS host of a simulated fleet falls below its threshold and recovers, polled by the real collector over
WS-Management: the people on call hear of it once when it falls and once when it recovers, however often the
fleet is polled in between, and nothing while it is acknowledged or silenced."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection

from alerting import run_alerts
from config.settings import Settings
from models import alerts
from models.db import make_engine
from simulator.generator import generate
from simulator.scenario import Change
from simulator.testing import FleetHandle, running_fleet
from tests.alerting import fleetstate
from tests.alerting.receivers import WebhookReceiver
from tests.collectors.helpers import poll, targets_of

KMS = "kms-high-01"


@pytest.fixture
def fleet(tmp_path) -> Iterator[FleetHandle]:
    """20 hosts; ``kms-high-01`` (count 34) drops to 12 at the first step and climbs back to 30 at the second."""
    scenario = generate(20, 3)
    steps = ((Change(KMS, {"kms.current_count": 12}),), (Change(KMS, {"kms.current_count": 30}),))
    assert scenario.host(KMS).kms is not None and scenario.host(KMS).kms.current_count >= 25
    workdir = tmp_path / "fleet"
    workdir.mkdir()
    with running_fleet(scenario=dataclasses.replace(scenario, steps=steps), workdir=workdir) as handle:
        yield handle


def poll_and_evaluate(fleet: FleetHandle, url: str, settings: Settings, webhook: WebhookReceiver, spool) -> None:
    targets = tuple(t for t in targets_of(fleet) if not fleet.truth_for(_name(fleet, t.host))["fault"])
    poll(fleet, url, spool, targets=targets)
    engine = make_engine(url)
    try:
        run_alerts(engine, settings, notify_urls=[webhook.url])
    finally:
        engine.dispose()


def _name(fleet: FleetHandle, host: str) -> str:
    return next(row["name"] for row in fleet.truth if row["host"] == host)


def test_a_kms_host_below_its_threshold_is_announced_once_and_its_recovery_once(fleet, webhook, sqlite_url, tmp_path):
    settings = fleetstate.settings(tmp_path)
    subject = fleet.truth_for(KMS)["host"]
    about = f"KMS host below its threshold: {subject}"

    def said() -> list[str]:
        return [title for title in webhook.titles() if title.endswith(about)]

    poll_and_evaluate(fleet, sqlite_url, settings, webhook, tmp_path / "spool")
    assert said() == [] and webhook.messages  # the fleet's other troubles are announced; this host is fine

    fleet.advance(1)
    for _ in range(2):
        poll_and_evaluate(fleet, sqlite_url, settings, webhook, tmp_path / "spool")
    assert said() == [f"[WARNING] {about}"]
    [firing] = [m for m in webhook.messages if m.title.endswith(about)]
    assert "Its count is 12: it activates servers only; client PCs need 25." in firing.body

    fleet.advance(1)
    for _ in range(2):
        poll_and_evaluate(fleet, sqlite_url, settings, webhook, tmp_path / "spool")
    assert said() == [f"[WARNING] {about}", f"[RESOLVED] {about}"]


def test_nothing_is_sent_while_it_is_acknowledged_or_silenced(fleet, webhook, sqlite_url, tmp_path):
    settings = fleetstate.settings(tmp_path, alert_repeat_hours=1e-6)  # every evaluation is past the repeat time
    subject = fleet.truth_for(KMS)["host"]
    about = f"KMS host below its threshold: {subject}"

    def said() -> list[str]:
        return [title for title in webhook.titles() if title.endswith(about)]

    def episode() -> alerts.AlertView:
        engine = make_engine(sqlite_url)
        try:
            with engine.connect() as conn:
                return next(a for a in alerts.list_alerts(conn) if a.subject == subject)
        finally:
            engine.dispose()

    def change(act: Callable[[Connection, int, datetime], object]) -> None:
        engine = make_engine(sqlite_url)
        try:
            with engine.begin() as conn:
                act(conn, episode().id, datetime.now(UTC))
        finally:
            engine.dispose()

    fleet.advance(1)
    for _ in range(2):
        poll_and_evaluate(fleet, sqlite_url, settings, webhook, tmp_path / "spool")
    assert said() == [f"[WARNING] {about}", f"[WARNING, still firing] {about}"]  # unacknowledged: repeated

    change(lambda conn, aid, now: alerts.acknowledge(conn, aid, by="oncall", comment="adding clients", now=now))
    for _ in range(2):
        poll_and_evaluate(fleet, sqlite_url, settings, webhook, tmp_path / "spool")
    assert len(said()) == 2

    until = datetime.now(UTC) + timedelta(hours=1)
    change(lambda conn, aid, now: alerts.silence(conn, aid, until=until, by="oncall", comment="lab", now=now))
    fleet.advance(1)
    for _ in range(2):
        poll_and_evaluate(fleet, sqlite_url, settings, webhook, tmp_path / "spool")
    assert episode().state == alerts.RESOLVED and len(said()) == 2  # its end is not announced while silenced
