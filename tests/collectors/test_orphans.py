"""Worker processes die with their parent: a collector killed with SIGKILL (out of memory, ``kill -9``)
leaves no worker polling on, and none prints a traceback on its way out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from simulator.testing import running_fleet
from tests.collectors.test_cli import ROOT

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parents from /proc")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_stop_quietly_when_their_collector_is_killed(tmp_path):
    (tmp_path / "fleet").mkdir()
    with running_fleet(hosts=40, seed=5, latency_ms=400, workdir=tmp_path / "fleet") as fleet:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
        env.update({
            "ACTIVATION_CRED_DEFAULT_USERNAME": fleet.username, "ACTIVATION_CRED_DEFAULT_PASSWORD": fleet.password,
            "ACTIVATION_DNS_SERVER": fleet.dns_server, "ACTIVATION_DATA_DIR": str(tmp_path / "data"),
            "ACTIVATION_CONCURRENCY": "4", "ACTIVATION_TIMEOUT_S": "20",
        })  # fmt: skip
        command = [sys.executable, "-m", "collectors", "poll", "--inventory", str(fleet.inventory_path),
                   "--processes", "2", "--db", f"sqlite:///{tmp_path / 'am.db'}"]  # fmt: skip
        collector = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(collector.stderr or ()), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while len(children_of(collector.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = children_of(collector.pid)
        assert len(workers) >= 2, "the collector started its worker processes"
        time.sleep(2)  # the workers are in the middle of their hosts
        collector.send_signal(signal.SIGKILL)
        collector.wait(timeout=10)
        stop_by = time.monotonic() + 15
        while any(alive(pid) for pid in workers) and time.monotonic() < stop_by:
            time.sleep(0.2)
        assert [pid for pid in workers if alive(pid)] == []
        reader.join(timeout=10)  # every holder of the pipe is gone
        text = "".join(output)
        assert "Traceback" not in text and "BrokenPipe" not in text
