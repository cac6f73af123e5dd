"""``python -m collectors`` as a user runs it: exit codes, summary, export, and no password anywhere."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collectors.cli import app

ROOT = Path(__file__).resolve().parents[2]


def collector(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    full = {**base, "ACTIVATION_DATA_DIR": str(tmp_path / "data"), "ACTIVATION_CONFIG": "", **env}
    return subprocess.run(
        [sys.executable, "-m", "collectors", *args], capture_output=True, text=True, env=full, cwd=ROOT, timeout=240
    )


def fleet_env(fleet, tmp_path: Path) -> dict[str, str]:
    return {
        "ACTIVATION_CRED_DEFAULT_USERNAME": fleet.username,
        "ACTIVATION_CRED_DEFAULT_PASSWORD": fleet.password,
        "ACTIVATION_DNS_SERVER": fleet.dns_server,
        "ACTIVATION_TIMEOUT_S": "4",
        "ACTIVATION_CONNECT_TIMEOUT_S": "3",
        "ACTIVATION_CONCURRENCY": "32",
        "ACTIVATION_SECRETS_FILE": str(tmp_path / "none.env"),
    }


def test_poll_json_then_export_unactivated(http_fleet, tmp_path):
    env = fleet_env(http_fleet, tmp_path)
    run = collector(["poll", "--inventory", str(http_fleet.inventory_path), "--json"], env, tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["status"] == "complete" and summary["polled"] == len(http_fleet.truth)
    assert summary["failures"]["timeout"] >= 2
    assert "polled 60/60" in run.stderr  # plain progress lines when not a terminal

    out = tmp_path / "unactivated.csv"
    exported = collector(["export", "--unactivated", "--error-code", "c004f074", "--output", str(out)], env, tmp_path)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    with_code = [t for t in http_fleet.truth if t["error_code"] == "0xC004F074" and not t["poll_error"]]
    assert {r["host"] for r in rows} == {t["host"] for t in with_code if not t["renewal_failing"]}

    # Licensed hosts whose renewals fail with that code join the export only when asked for
    at_risk = {t["host"] for t in with_code if t["renewal_failing"]}
    assert at_risk, "the fleet stages a Licensed KMS client whose renewals fail with 0xC004F074"
    both = tmp_path / "with-at-risk.csv"
    args = ["export", "--unactivated", "--include-at-risk", "--error-code", "0xC004F074", "--output", str(both)]
    assert collector(args, env, tmp_path).returncode == 0
    rows = list(csv.DictReader(io.StringIO(both.read_text(encoding="utf-8-sig"))))
    assert {r["host"] for r in rows} == {t["host"] for t in with_code}
    assert {(r["license_status"], r["error_code"]) for r in rows if r["host"] in at_risk} == {
        ("Licensed", "0xC004F074")
    }
    everything = run.stdout + run.stderr + exported.stderr + out.read_text(encoding="utf-8-sig")
    assert http_fleet.password not in everything


def test_bad_inventory_rows_are_reported_and_the_rest_runs(http_fleet, tmp_path):
    inventory = tmp_path / "inv.csv"
    lines = http_fleet.inventory_path.read_text().splitlines()
    inventory.write_text("\n".join([lines[0], lines[1], "bad,99999,http,ntlm,default,,", lines[1]]) + "\n")
    run = collector(["poll", "--inventory", str(inventory), "--json"], fleet_env(http_fleet, tmp_path), tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"{inventory}:3: port '99999' is out of range" in run.stderr
    assert f"{inventory}:4: duplicate host" in run.stderr
    assert json.loads(run.stdout)["polled"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["poll", "--inventory", "/nonexistent/inventory.csv"], "cannot read inventory"),
        (["poll"], "no inventory"),
        (["poll", "--inventory", "x.csv", "--shard", "3/2"], "shard must be K/N"),
        (["export", "--error-code", "nonsense"], "not an error code"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args, message, tmp_path):
    inventory = tmp_path / "x.csv"
    inventory.write_text("host\nws01\n")
    run = collector([a if a != "x.csv" else str(inventory) for a in args], {}, tmp_path)
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_config_error_is_one_line_with_exit_2(tmp_path):
    run = collector(["poll", "--inventory", "x.csv"], {"ACTIVATION_CONCURRENCY": "-3"}, tmp_path)
    assert run.returncode == 2 and "concurrency" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ACTIVATION_TIMEOUT_S", "inf"),
        ("ACTIVATION_RUN_TIMEOUT_S", "1e308"),
        ("ACTIVATION_MAX_REPLY_BYTES", "1" * 30),
        ("ACTIVATION_DNS_SERVER", "dns server:53"),
    ],
)
def test_an_unusable_setting_stops_the_poll_with_exit_2(variable, value, tmp_path):
    inventory = tmp_path / "x.csv"
    inventory.write_text("host\nws01\n")
    run = collector(["poll", "--inventory", str(inventory)], {variable: value}, tmp_path)
    key = variable.removeprefix("ACTIVATION_").lower()
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(f"error: {key} ({variable}): ") and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_poll_timeout_option_is_bounded_like_the_setting(tmp_path):
    inventory = tmp_path / "x.csv"
    inventory.write_text("host\nws01\n")
    run = collector(["poll", "--inventory", str(inventory), "--timeout", "inf"], {}, tmp_path)
    assert run.returncode == 2 and run.stderr.startswith("error: timeout_s ") and "Traceback" not in run.stderr


def test_every_command_has_help():
    runner = CliRunner()
    for command in ("poll", "export", "demo"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and len(result.output) > 100
