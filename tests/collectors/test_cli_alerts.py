"""``python -m collectors alerts`` as a user runs it, and the alerts every ``poll`` run evaluates: exit codes, one
line per mistake, JSON for scripts, and a dead notification target that fails nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from models import alerts
from models.db import make_engine, open_database
from simulator.testing import FleetHandle, running_fleet
from tests.alerting import fleetstate
from tests.alerting.receivers import WebhookReceiver, dead_webhook_url, webhook_receiver

ROOT = Path(__file__).resolve().parents[2]


def cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    full = {
        **base,
        "ACTIVATION_DATA_DIR": str(tmp_path / "data"),
        "ACTIVATION_CONFIG": "",
        "ACTIVATION_SECRETS_FILE": str(tmp_path / "none.env"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "collectors", *args], capture_output=True, text=True, env=full, cwd=ROOT, timeout=240
    )


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def troubled_db(sqlite_url: str) -> str:
    engine = open_database(sqlite_url)
    fleetstate.troubled(engine, datetime.now(UTC) - timedelta(minutes=5))
    engine.dispose()
    return sqlite_url


def firing_ids(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {a.subject: a.id for a in alerts.list_alerts(conn, state=alerts.FIRING)}
    finally:
        engine.dispose()


def test_check_notifies_every_target_reports_json_and_exits_0_with_a_dead_one(troubled_db, webhook, tmp_path):
    dead = dead_webhook_url()
    run = cli(["alerts", "check", "--db", troubled_db, "--notify", dead, "--notify", webhook.url, "--json"], tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["firing_total"] == len(fleetstate.EXPECTED) and not report["dry_run"]
    assert report["targets"] == ["json://127.0.0.1", "json://127.0.0.1"]
    assert len(webhook.messages) == len(report["messages"]) == len(fleetstate.EXPECTED)
    # the dead target is tried 3 times for the first message, then once for each of the others
    tries = [[(d["ok"], d["attempts"]) for d in message["deliveries"]] for message in report["messages"]]
    assert tries == [[(False, 3), (True, 1)]] + [[(False, 1), (True, 1)]] * (len(tries) - 1)
    assert "notification to json://127.0.0.1 failed after 3 tries" in run.stderr
    assert f"{len(tries)} messages to json://127.0.0.1 not delivered in this evaluation" in run.stderr

    again = cli(["alerts", "check", "--db", troubled_db, "--notify", webhook.url], tmp_path, COLUMNS="200")
    assert again.returncode == 0 and "no messages due" in again.stdout
    assert "KMS host unreachable" in again.stdout and "kms-down" in again.stdout


def test_a_dry_run_changes_and_sends_nothing(troubled_db, webhook, tmp_path):
    run = cli(["alerts", "check", "--db", troubled_db, "--notify", webhook.url, "--dry-run"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert "would send firing: [CRITICAL] Collector quiet: old-collector" in run.stdout
    assert webhook.requests == 0 and firing_ids(troubled_db) == {}


def test_list_ack_and_silence(troubled_db, tmp_path):
    assert cli(["alerts", "check", "--db", troubled_db], tmp_path).returncode == 0
    ids = firing_ids(troubled_db)
    listed = cli(["alerts", "list", "--db", troubled_db, "--json"], tmp_path)
    assert {a["id"] for a in json.loads(listed.stdout)} == set(ids.values())

    acked = cli(["alerts", "ack", str(ids["kms-low"]), "--comment", "adding clients", "--by", "mei"], tmp_path,
                ACTIVATION_DB_URL=troubled_db)  # fmt: skip
    assert acked.returncode == 0 and "acknowledged by mei" in acked.stdout
    until = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    silenced = cli(["alerts", "silence", str(ids["ws-grace"]), "--until", until, "--comment", "rebuild"], tmp_path,
                   ACTIVATION_DB_URL=troubled_db)  # fmt: skip
    assert silenced.returncode == 0, silenced.stderr
    rows = {
        a["subject"]: a for a in json.loads(cli(["alerts", "list", "--db", troubled_db, "--json"], tmp_path).stdout)
    }
    assert (rows["kms-low"]["acked_by"], rows["kms-low"]["ack_comment"]) == ("mei", "adding clients")
    assert rows["ws-grace"]["silenced_until"].startswith(until) and rows["ws-grace"]["silence_comment"] == "rebuild"

    wrong = {
        ("ack", "999999", "--comment", "x"): "error: alert 999999: no firing alert has this id",
        ("silence", "999999", "--until", until, "--comment", "x"): "error: alert 999999: no alert has this id",
        ("silence", str(ids["kms-low"]), "--until", "2020-01-01T00:00", "--comment", "x"): "is not in the future",
        ("silence", str(ids["kms-low"]), "--until", "next tuesday", "--comment", "x"): "not an ISO 8601 time",
        ("ack", str(ids["kms-low"]), "--comment", "  "): "--comment: say why",
    }
    for args, message in wrong.items():
        run = cli(["alerts", *args, "--db", troubled_db], tmp_path)
        assert run.returncode == 2, args
        assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    with running_fleet(hosts=20, seed=3, workdir=tmp_path_factory.mktemp("alerts_fleet")) as fleet:
        yield fleet


def poll_env(fleet: FleetHandle, tmp_path: Path, urls: list[str]) -> dict[str, str]:
    secrets = tmp_path / "credentials.env"
    secrets.write_text(
        f"ACTIVATION_CRED_DEFAULT_USERNAME={fleet.username}\nACTIVATION_CRED_DEFAULT_PASSWORD={fleet.password}\n"
        f"ACTIVATION_NOTIFY_URLS={' '.join(urls)}\n"
    )
    secrets.chmod(0o600)
    return {
        "ACTIVATION_SECRETS_FILE": str(secrets),
        "ACTIVATION_DNS_SERVER": fleet.dns_server,
        "ACTIVATION_TIMEOUT_S": "4",
        "ACTIVATION_CONNECT_TIMEOUT_S": "3",
        "ACTIVATION_DB_URL": f"sqlite:///{tmp_path / 'am.db'}",
    }


def test_every_poll_run_evaluates_the_alerts_and_a_dead_target_changes_nothing(small_fleet, webhook, tmp_path):
    env = poll_env(small_fleet, tmp_path, [dead_webhook_url(), webhook.url])
    run = cli(["poll", "--inventory", str(small_fleet.inventory_path), "--json"], tmp_path, **env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["status"] == "complete"
    titles = webhook.titles()
    not_listening = small_fleet.truth_for("kms-dead-01")["host"]
    assert f"[CRITICAL] KMS host unreachable: {not_listening}" in titles
    assert "alerts: " in run.stderr and "firing" in run.stderr
    assert small_fleet.password not in run.stdout + run.stderr


def test_alerts_that_cannot_be_evaluated_are_one_warning_and_the_poll_still_succeeds(small_fleet, webhook, tmp_path):
    env = poll_env(small_fleet, tmp_path, [webhook.url])
    engine = open_database(env["ACTIVATION_DB_URL"])
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alert_notifications"))
        conn.execute(text("DROP TABLE alerts"))
    engine.dispose()
    run = cli(["poll", "--inventory", str(small_fleet.inventory_path)], tmp_path, **env)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "alerts not evaluated" in line]
    assert len(warnings) == 1 and webhook.messages == []
