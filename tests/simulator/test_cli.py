"""``python -m simulator``: serve prints where things are and ``ready``, keeps env secrets quiet, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import winrm

from simulator.runtime import free_port, random_base

ROOT = Path(__file__).resolve().parents[2]


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
    subprocess.run(
        [sys.executable, "-m", "simulator", "generate", "--hosts", "30", "--seed", "2", "--out", str(out)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
    )
    from simulator import scenario

    assert len(scenario.load(out).hosts) == 30
