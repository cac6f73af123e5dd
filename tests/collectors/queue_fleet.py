"""What the job-queue tests share: workers and schedulers as real subprocesses, a proxy that takes PostgreSQL
away and brings it back, and what the database says about a queued run."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import text

from models import db
from simulator.testing import FleetHandle
from tests.collectors.helpers import pipe

ROOT = Path(__file__).resolve().parents[2]
STALL_S = 10  # the shortest stall timeout the settings accept


def queue_env(fleet: FleetHandle, workdir: Path, url: str, **extra: str) -> dict[str, str]:
    """The environment of a worker or scheduler: the fleet's credential, short deadlines, a short stall."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    env.update({
        "ACTIVATION_CRED_DEFAULT_USERNAME": fleet.username, "ACTIVATION_CRED_DEFAULT_PASSWORD": fleet.password,
        "ACTIVATION_DNS_SERVER": fleet.dns_server, "ACTIVATION_DATA_DIR": str(workdir / "data"),
        "ACTIVATION_SECRETS_FILE": str(workdir / "no-secrets"), "ACTIVATION_TIMEOUT_S": "4",
        "ACTIVATION_CONNECT_TIMEOUT_S": "2", "ACTIVATION_QUEUE_STALL_S": str(STALL_S), "ACTIVATION_DB_URL": url,
        "ACTIVATION_CONCURRENCY": "4",
    })  # fmt: skip
    env.update(extra)
    return env


def inventory_with_sites(fleet: FleetHandle, path: Path, site_of: Callable[[int], str | None]) -> Path:
    """The fleet's inventory with each row's site replaced by ``site_of(row number)``."""
    rows = list(csv.DictReader(fleet.inventory_path.open(encoding="utf-8")))
    for number, row in enumerate(rows):
        row["site"] = site_of(number) or ""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def schedule(env: dict[str, str], inventory: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "collectors", "schedule", "--inventory", str(inventory), "--once", *extra]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def schedule_once(env: dict[str, str], inventory: Path, *extra: str) -> str:
    process = schedule(env, inventory, "--every", "1d", *extra)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    return out


def start_worker(env: dict[str, str], name: str, log: Path, *extra: str) -> subprocess.Popen[str]:
    """A worker in its own process group, its log in ``log`` (a file: a pipe nobody reads could fill up)."""
    handle = log.open("w", encoding="utf-8")
    command = [sys.executable, "-m", "collectors", "worker", *extra]
    return subprocess.Popen(
        command, cwd=ROOT, env={**env, "ACTIVATION_COLLECTOR_NAME": name}, stdout=handle, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip


def stop_worker(process: subprocess.Popen[str], timeout: float = 60) -> int:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


@contextlib.contextmanager
def workers(env: dict[str, str], logs: Path, *names: str, extra: tuple[str, ...] = ()) -> Iterator[list[Any]]:
    processes = [start_worker(env, name, logs / f"{name}.log", *extra) for name in names]
    try:
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                stop_worker(process)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def rows(url: str, sql: str, **params: Any) -> list[Any]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def the_run(url: str) -> dict[str, Any]:
    """The one poll run in the database, with hosts counted by class summed up."""
    [run] = rows(url, "SELECT * FROM poll_runs")
    data = dict(run._mapping)
    data["counted"] = data["succeeded"] + sum(v for k, v in data.items() if k.startswith("failed_"))
    return data


def run_status(url: str) -> str | None:
    found = rows(url, "SELECT status FROM poll_runs")
    return found[0][0] if found else None


def batch_rows(url: str) -> list[Any]:
    return rows(url, "SELECT batch_no, status, worker, attempts, site, hosts, succeeded FROM poll_batches ORDER BY 1")


class FlakyProxy:
    """A TCP forwarder to PostgreSQL that can go down (connections cut, new ones refused) and come back."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        probe = socket.create_server(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.guard = threading.Lock()
        self.up()

    def up(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self.guard:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.guard:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()
