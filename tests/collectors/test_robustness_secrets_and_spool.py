"""What the collector must survive on its own side: no password in tracebacks (its own or its worker
processes') or in the environment of the demo's simulator, and corrupt or unreadable spool files. Faults a
fleet produces are in test_robustness.py."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collectors.demo import load_demo
from collectors.spool import Spool, SpooledBatch
from config.settings import load_settings
from models.enums import FailureClass
from models.records import HostFailure

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Tr0ub4dor&3-not-for-logs"  # a test password that must never be printed


# --- 1. no password in tracebacks ------------------------------------------------------------------

_TRACEBACK_SCRIPT = """
import sys
from pydantic import SecretStr
from collectors.cli import _configure_logging
from collectors.credentials import Credential
from collectors.inventory import Target
from collectors.run import PollContext, safe_poll
from collectors.probes import Probes

password = sys.argv[1]
credential = Credential("default", "reader", SecretStr(password))
_configure_logging([credential])

def broken_factory(target, credential, options, deadline):
    try:
        raise OSError("inner cause mentions " + credential.password.get_secret_value())
    except OSError as exc:
        raise RuntimeError("connect string user=reader;pwd=" + credential.password.get_secret_value()) from exc

ctx = PollContext({"default": credential}, Probes.for_settings(None), protocol_factory=broken_factory)
result = safe_poll(Target("ws01.corp.test", 5985), ctx)
print(result.failure_class.value, result.reason)
"""


_WORKER_TRACEBACK_SCRIPT = """
import sys, tempfile
from pathlib import Path
from pydantic import SecretStr
from collectors.cli import _configure_logging
from collectors.credentials import Credential
from collectors.inventory import Target
from collectors.run import PollContext, RunOptions, run_poll
from collectors.probes import Probes
from collectors.spool import Spool
from tests.collectors.helpers import leaking_factory

if __name__ == "__main__":
    password = sys.argv[1]
    credential = Credential("default", "reader", SecretStr(password))
    _configure_logging([credential])
    ctx = PollContext({"default": credential}, Probes.for_settings(None), protocol_factory=leaking_factory)
    folder = Path(tempfile.mkdtemp())
    targets = [Target(f"ws{i:02d}.corp.test", 5985) for i in range(4)]
    summary = run_poll(targets, ctx, database_url=f"sqlite:///{folder}/am.db", spool=Spool(folder / "spool"),
                       options=RunOptions(concurrency=2, processes=2))
    print(summary.failed)
"""


def test_worker_process_tracebacks_never_show_a_password(tmp_path):
    script = tmp_path / "worker_traceback.py"
    script.write_text(_WORKER_TRACEBACK_SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), PASSWORD],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "4", "every host is recorded as failed"
    assert "RuntimeError" in run.stderr  # the workers' bug reports still reach stderr
    assert PASSWORD not in run.stderr


def test_tracebacks_in_the_log_never_show_a_password():
    run = subprocess.run(
        [sys.executable, "-c", _TRACEBACK_SCRIPT, PASSWORD],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" in run.stderr and "RuntimeError" in run.stderr  # the bug is still reported
    assert "inner cause mentions" in run.stderr  # with its cause
    assert PASSWORD not in run.stderr
    assert PASSWORD not in run.stdout


# --- 2. corrupt spool files ------------------------------------------------------------------------


def test_a_corrupt_spool_file_is_logged_once_and_set_aside(tmp_path, caplog):
    spool = Spool(tmp_path / "spool")
    good = HostFailure("ws01", datetime(2026, 1, 1, tzinfo=UTC), FailureClass.TIMEOUT, "timed out")
    spool.write(SpooledBatch("a" * 32, None, (good,)))
    corrupt = spool.directory / "00000000000000000001-corrupt.json"
    corrupt.write_text('{"version": 1, "batch_id": "x", "results": [{"kind": "fail', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="collectors"):
        first = list(spool.pending())
        second = list(spool.pending())
    assert [b.batch_id for b in first] == ["a" * 32] == [b.batch_id for b in second]
    assert not corrupt.exists()
    assert (spool.directory / "bad" / corrupt.name).exists()
    assert spool.count() == 1
    assert sum(corrupt.name in r.getMessage() for r in caplog.records) == 1


def test_a_spool_file_the_disk_will_not_read_now_is_kept_for_later(tmp_path, caplog):
    spool = Spool(tmp_path / "spool")
    unreadable = spool.directory / "00000000000000000002-unreadable.json"
    unreadable.mkdir(parents=True)  # reading it fails with an OSError, as a disk error would
    with caplog.at_level(logging.WARNING, logger="collectors"):
        assert list(spool.pending()) == []
    assert unreadable.exists() and not (spool.directory / "bad").exists()
    assert any("cannot be read now" in r.getMessage() for r in caplog.records)


# --- 3. the demo's simulator gets a minimal environment --------------------------------------------


def _children_environ(marker: str) -> list[dict[str, str]]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
            environ = (stat.parent / "environ").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and marker.encode() in cmdline:
            pairs = (item.partition(b"=") for item in environ.split(b"\0") if item)
            found.append({k.decode(): v.decode("utf-8", "replace") for k, _, v in pairs})
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to read a child's environment")
def test_the_demo_simulator_does_not_inherit_collector_credentials(tmp_path, monkeypatch, sqlite_url):
    monkeypatch.setenv("ACTIVATION_CRED_X_PASSWORD", PASSWORD)
    monkeypatch.setenv("UNRELATED_TOKEN", "also-not-for-children")
    settings = load_settings(
        environ={"ACTIVATION_DATA_DIR": str(tmp_path / "data"), "ACTIVATION_CONFIG": ""},
        db_url=sqlite_url,
        timeout_s=3.0,
        connect_timeout_s=2.0,
    )
    environments: list[dict[str, str]] = []

    def look(progress: Any) -> None:
        if not environments:
            environments.extend(_children_environ("simulator"))

    result = load_demo(settings, hosts=4, on_progress=look)
    assert result.summary.succeeded + result.summary.failed == 4
    assert len(environments) == 1
    child = environments[0]
    assert "ACTIVATION_CRED_X_PASSWORD" not in child and "UNRELATED_TOKEN" not in child
    assert PASSWORD not in json.dumps(child)
    assert child.get("SIMULATOR_PASSWORD") and "PATH" in child
