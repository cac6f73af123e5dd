"""``python -m simulator``: serve prints where things are and ``ready``, keeps env secrets quiet, stops on SIGTERM.

Also the command surface itself (commands, flags, exit codes): ``collectors.demo``, ``bench/`` and the
docs call it by these names and read the announcements up to ``ready``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import get_args

import pytest
import winrm

from collectors import demo
from simulator import cli, scenario
from simulator.runtime import free_port, random_base

ROOT = Path(__file__).resolve().parents[2]
SERVE_FLAGS = (
    "--hosts", "--seed", "--scenario", "--inventory-out", "--truth-out", "--ca-out", "--username", "--password",
    "--https", "--latency-ms", "--address-base", "--port", "--https-port", "--kms-port", "--dns-port", "--basic",
    "--allow-unencrypted", "--keytab", "--names", "--spns", "--transport",
)  # fmt: skip
GENERATE_FLAGS = ("--hosts", "--seed", "--out", "--fault-share", "--hostile-share")


def _env(**extra: str) -> dict[str, str]:
    """The environment of a ``python -m simulator`` child: wide, colourless help, no inherited password."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", cli.PASSWORD_ENV)}
    return {**env, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200", **extra}


def _simulator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60
    )


def test_serve_announces_ready_and_stops_on_sigterm(tmp_path: Path):
    inventory, truth_file = tmp_path / "inv.csv", tmp_path / "truth.json"
    env = {**os.environ, "SIMULATOR_PASSWORD": "Env-Secret-123", "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-m",
        "simulator",
        "serve",
        "--hosts",
        "25",
        "--seed",
        "3",
        "--inventory-out",
        str(inventory),
        "--truth-out",
        str(truth_file),
        "--address-base",
        random_base(),
        "--port",
        str(free_port()),
        "--username",
        "demo",
    ]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("ready") or not line:
                break
        assert lines[-1].startswith("ready"), lines
        row = next(r for r in json.loads(truth_file.read_text()) if r["poll_error"] == "")
        port = inventory.read_text().splitlines()[1].split(",")[1]
        s = winrm.Session(
            f"http://{row['host']}:{port}/wsman", auth=("demo", "Env-Secret-123"), transport="ntlm", proxy=None
        )
        assert s.run_cmd("hostname").status_code == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    text = "".join(lines) + out
    assert "Env-Secret-123" not in text and "stopped" in text
    assert str(inventory) in text and "dns server: 127.0.0.1:" in text


def test_generate_writes_a_loadable_scenario(tmp_path: Path):
    out = tmp_path / "s.json"
    done = _simulator("generate", "--hosts", "30", "--seed", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"scenario with 30 hosts written to {out}\n"
    assert done.stderr == ""
    assert len(scenario.load(out).hosts) == 30


@pytest.mark.parametrize("help_flag", ["--help", "-h"])
def test_help_names_both_commands(help_flag: str):
    done = _simulator(help_flag)
    assert done.returncode == 0, done.stderr
    assert "Usage: python -m simulator" in done.stdout
    assert "Simulated Windows fleet over WinRM." in done.stdout
    assert re.search(r"serve\s+Serve a fleet on 127\.0\.0\.0/8 until interrupted\.", done.stdout), done.stdout
    assert re.search(r"generate\s+Write a generated scenario file\.", done.stdout), done.stdout


@pytest.mark.parametrize(("command", "flags"), [("serve", SERVE_FLAGS), ("generate", GENERATE_FLAGS)])
def test_command_help_lists_every_flag(command: str, flags: tuple[str, ...]):
    done = _simulator(command, "--help")
    assert done.returncode == 0, done.stderr
    listed = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", done.stdout)) - {"--help"}
    assert listed == set(flags)
    if command == "serve":
        assert "$SIMULATOR_PASSWORD, else generated" in done.stdout
        assert "negotiate, kerberos, ntlm, basic" in done.stdout


def test_the_transport_choices_are_the_scenarios():
    assert get_args(cli.Transport) == scenario.TRANSPORTS


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["serve", "--bogus", "1"], "--bogus"),
        (["serve", "--hosts", "many"], "--hosts"),
        (["serve", "--port", "1.5"], "--port"),
        (["serve", "--transport", "carrier-pigeon"], "--transport"),
        (["serve", "--https=yes"], "--https"),
        (["generate", "--hosts", "3"], "--out"),
        (["generate", "--hosts", "0", "--out", "s.json"], "--hosts"),
    ],
)
def test_a_bad_argument_exits_2_naming_it(args: list[str], named: str):
    done = _simulator(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert named in done.stderr, done.stderr
    assert done.stdout == ""  # nothing was served or written


def test_no_command_shows_the_help_and_exits_2():
    done = _simulator()
    assert done.returncode == 2
    assert "serve" in done.stdout and "generate" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--scenario", "missing.json", "--port", "0", "--https-port", "0"], "missing.json"),
        (["serve", "--hosts", "2", "--address-base", "10.0.0.0", "--port", "0", "--https-port", "0"], "127.0.0.0/8"),
        (["generate", "--out", "no/such/dir/s.json"], "cannot write no/such/dir/s.json"),
    ],
)
def test_an_unusable_fleet_is_one_error_line_and_exit_2(args: list[str], message: str):
    done = _simulator(*args)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert "ready" not in done.stdout


def test_the_demo_reads_the_dns_server_and_ready_from_serve(tmp_path: Path):
    """``collectors.demo`` (and ``bench/bench_poll.py``) parse these announcements; keep them parseable."""
    inventory = tmp_path / "inv.csv"
    command = [
        sys.executable, "-m", "simulator", "serve", "--hosts", "3", "--seed", "1", "--inventory-out", str(inventory),
        "--address-base", random_base(), "--port", "0", "--https-port", "0", "--username", "demo",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=ROOT, env=_env(**{cli.PASSWORD_ENV: "Demo-Pass-1"}), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        dns_server = demo._wait_ready(proc)
        assert re.fullmatch(r"127\.0\.0\.1:\d+", dns_server), dns_server
        assert inventory.read_text().startswith("host,")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
