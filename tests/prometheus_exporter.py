"""``python -m collectors metrics`` started as an administrator starts it, and its /metrics read over HTTP.

``running_exporter`` starts the command in a subprocess on a free loopback port, waits until it answers and
stops it with SIGTERM at the end (recording how it exited). ``Scrape`` is one answer of /metrics parsed by
``prometheus_client.parser``, with lookups by sample name and labels.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def exporter_env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    return {**base, "ACTIVATION_CONFIG": "", "ACTIVATION_DATA_DIR": str(tmp_path / "data")}


def metrics_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "collectors", "metrics", *args]


@dataclass
class Scrape:
    """One /metrics answer."""

    text: str
    samples: list[Sample] = field(init=False)

    def __post_init__(self) -> None:
        self.samples = [s for family in text_string_to_metric_families(self.text) for s in family.samples]

    def names(self) -> set[str]:
        return {s.name for s in self.samples}

    def of(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        found = self.of(name, **labels)
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
        return found[0].value

    def total(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.of(name, **labels))

    def by(self, name: str, label: str) -> dict[str, float]:
        """``name``'s samples summed per value of ``label``."""
        out: dict[str, float] = {}
        for s in self.of(name):
            out[s.labels[label]] = out.get(s.labels[label], 0.0) + s.value
        return out


@dataclass
class Exporter:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    returncode: int | None = None

    def scrape(self) -> Scrape:
        with urllib.request.urlopen(self.url, timeout=60) as answer:  # noqa: S310 - a loopback http URL
            assert answer.status == 200
            return Scrape(answer.read().decode("utf-8"))

    @property
    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def running_exporter(
    db_url: str,
    tmp_path: Path,
    *,
    host: str = "127.0.0.1",
    cache_seconds: float = 0,
    settings: dict[str, str] | None = None,
) -> Iterator[Exporter]:
    """The exporter on a free port of ``host`` reading ``db_url`` (``settings``: more ``ACTIVATION_*``
    variables), stopped with SIGTERM afterwards."""
    port = free_port(host)
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    log = tmp_path / f"exporter-{port}.log"
    args = metrics_command("--listen", listen, "--db", db_url, "--cache-seconds", str(cache_seconds))
    with log.open("wb") as err:
        env = {**exporter_env(tmp_path), **(settings or {})}
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=err, stderr=err)
    exporter = Exporter(process, f"http://{listen}/metrics", log)
    try:
        _wait_until_answering(exporter)
        yield exporter
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            exporter.returncode = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise


def _wait_until_answering(exporter: Exporter) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if exporter.process.poll() is not None:
            raise AssertionError(f"the exporter exited with {exporter.process.returncode}: {exporter.stderr}")
        try:
            with urllib.request.urlopen(exporter.url, timeout=30):  # noqa: S310 - a loopback http URL
                return
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"the exporter answered {exc.code}: {exporter.stderr}") from None
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"the exporter did not answer within {START_TIMEOUT_S} s: {exporter.stderr}")
