"""Fixtures for the browser tests: a database filled by the real collector from the simulated fleet,
the dashboard served by ``streamlit run`` on a free loopback port (open, and a second one behind a sign-in
password), and headless Debian Chromium.

Nothing is downloaded: Chromium is ``/usr/bin/chromium`` (skipped with a reason when absent) and the
server binds 127.0.0.1 only. Screenshots go to ``tests/e2e/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser_app import ROOT, Dashboard, PolledFleet

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FLEET_HOSTS = int(os.environ.get("ACTIVATION_E2E_FLEET_HOSTS", "60"))
START_TIMEOUT_S = 90
POLL_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def polled_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PolledFleet]:
    """The simulator's fleet, polled once by ``python -m collectors poll`` into a fresh SQLite file."""
    from simulator.testing import running_fleet

    workdir = tmp_path_factory.mktemp("e2e-fleet")
    db_url = f"sqlite:///{workdir}/fleet.db"
    with running_fleet(hosts=FLEET_HOSTS, seed=11) as fleet:
        env = {
            **os.environ,
            "ACTIVATION_CRED_DEFAULT_USERNAME": fleet.username,
            "ACTIVATION_CRED_DEFAULT_PASSWORD": fleet.password,
            "ACTIVATION_DNS_SERVER": fleet.dns_server,
            "ACTIVATION_DATA_DIR": str(workdir / "data"),
            "ACTIVATION_TIMEOUT_S": "8",
        }
        command = [sys.executable, "-m", "collectors", "poll", "--inventory", str(fleet.inventory_path)]
        done = subprocess.run(
            [*command, "--db", db_url], cwd=ROOT, env=env, capture_output=True, text=True, timeout=POLL_TIMEOUT_S
        )
        assert done.returncode in (0, 1), done.stderr[-2000:]
        yield PolledFleet(db_url, list(fleet.truth))


@pytest.fixture(scope="session")
def dashboard(polled_fleet: PolledFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """``streamlit run dashboard.py`` on a free loopback port, open to anyone, stopped after the session."""
    with served_dashboard(polled_fleet, tmp_path_factory.mktemp("e2e-server")) as served:
        yield served


SIGN_IN_PASSWORD = "e2e sign-in password"


@dataclass(frozen=True)
class SignInDashboard:
    """A dashboard that asks for ``password``; its sign-in key lives in ``data_dir``."""

    url: str
    truth: list[dict[str, Any]]
    password: str
    data_dir: Path


@pytest.fixture(scope="session")
def signin_dashboard(polled_fleet: PolledFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignInDashboard]:
    """The same database served by a second ``streamlit run`` that asks for a password."""
    workdir = tmp_path_factory.mktemp("e2e-signin-server")
    settings = {"ACTIVATION_AUTH_PASSWORD": SIGN_IN_PASSWORD, "ACTIVATION_DATA_DIR": str(workdir / "data")}
    with served_dashboard(polled_fleet, workdir, **settings) as served:
        yield SignInDashboard(served.url, served.truth, SIGN_IN_PASSWORD, workdir / "data")


@contextmanager
def served_dashboard(polled_fleet: PolledFleet, workdir: Path, **settings: str) -> Iterator[Dashboard]:
    """``streamlit run dashboard.py`` on a free loopback port with the ``ACTIVATION_*`` ``settings`` given (no
    password unless one is given), logging to ``workdir/streamlit.log``; stopped on leaving the block."""
    port = free_port()
    env = {**os.environ, "ACTIVATION_DB_URL": polled_fleet.db_url, "ACTIVATION_REFRESH_S": "600"}
    env.pop("ACTIVATION_AUTH_PASSWORD", None)
    env.update(settings)
    with (workdir / "streamlit.log").open("w") as log:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "streamlit", "run", "dashboard.py"),
                *("--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port)),
                *("--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, server)
            yield Dashboard(base, polled_fleet.db_url, polled_fleet.truth)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as reply:  # noqa: S310 - loopback
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the dashboard did not become healthy within {START_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (the browser tests never download one)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, tmp_path: Path) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1440, "height": 1200}, accept_downloads=True)
    context.set_default_timeout(60_000)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
