"""Running a simulated fleet inside a test: ``running_fleet(...)`` and the ``FleetHandle`` it yields.

The server runs on its own event loop in a daemon thread, on a random 127.B.0.0 address base and
free ports, so several test runs can share one machine. The handle exposes the inventory and
truth files, the accepted credentials, the CA (HTTPS), the DNS server, request counters and
``advance()``; leaving the ``with`` block (or ``stop()``) closes every listener and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import secrets
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simulator.fleet import FleetPlan
from simulator.runtime import FleetOptions, Prepared, prepare
from simulator.scenario import Scenario, WinrmService
from simulator.server import Exchange

START_ATTEMPTS = 3
START_TIMEOUT_S = 120.0


class _LoopThread(threading.Thread):
    """A daemon thread owning one event loop that serves the fleet until told to stop."""

    def __init__(self, prepared: Prepared) -> None:
        super().__init__(name="simulated-fleet", daemon=True)
        self.prepared = prepared
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        server = self.prepared.server
        try:
            await server.start()
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            await server.stop()
            return
        self.ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await server.stop()

    def stop(self) -> None:
        if self.loop is not None and self._stop_event is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._stop_event.set)
        self.join(timeout=30)


class FleetHandle:
    """A running fleet as tests see it."""

    def __init__(self, prepared: Prepared, thread: _LoopThread, workdir: Path) -> None:
        self._prepared = prepared
        self._thread = thread
        self.workdir = workdir
        self.plan: FleetPlan = prepared.plan
        self.inventory_path: Path = prepared.inventory_path or workdir / "inventory.csv"
        self.truth_path: Path = prepared.truth_path or workdir / "truth.json"
        self.ca_path: Path | None = prepared.ca_path
        self.username = prepared.creds.username
        self.password = prepared.creds.password
        self.dns_server = f"127.0.0.1:{prepared.plan.ports.dns}"
        self.truth: list[dict[str, Any]] = json.loads(self.truth_path.read_text(encoding="utf-8"))

    def __repr__(self) -> str:
        return f"FleetHandle(hosts={len(self.truth)}, username={self.username!r}, password=[secure])"

    @property
    def scenario(self) -> Scenario:
        return self.plan.scenario

    @property
    def stats(self) -> dict[str, Any]:
        server = self._prepared.server
        return {
            **dict(server.stats),
            "by_host": dict(server.host_requests),
            "not_offered": dict(server.not_offered),
            "principals": dict(server.principals),
        }

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Exchange]]:
        """Every request the fleet receives inside the block, as the listeners saw them."""
        server = self._prepared.server
        seen: list[Exchange] = []
        server.recorder = seen
        try:
            yield seen
        finally:
            server.recorder = None

    def truth_for(self, name: str) -> dict[str, Any]:
        """The truth row of the scenario host called ``name``."""
        return next(row for row in self.truth if row["name"] == name)

    def address(self, name: str) -> str:
        return self.plan.addresses[name]

    def endpoint(self, name: str) -> str:
        """``http(s)://address:port/wsman`` of one host."""
        host = self.plan.host(name)
        return f"{host.scheme}://{self.plan.addresses[name]}:{self.plan.port_for(host)}/wsman"

    def advance(self, steps: int = 1) -> int:
        """Move the scenario on and rewrite the truth file; returns the step reached."""
        reached = self.plan.advance(steps)
        self.truth = self.plan.write_truth(self.truth_path)
        return reached

    def stop(self) -> None:
        self._thread.stop()


@contextlib.contextmanager
def running_fleet(
    hosts: int = 50,
    seed: int = 1,
    *,
    scenario: Scenario | None = None,
    scenario_path: Path | None = None,
    https: bool = False,
    latency_ms: int = 0,
    username: str | None = None,
    password: str | None = None,
    workdir: Path | None = None,
    winrm: WinrmService | None = None,
    transport: str | None = None,
    names: bool = False,
    spns: bool = False,
    keytab: Path | None = None,
) -> Iterator[FleetHandle]:
    """Serve a fleet for the duration of the ``with`` block (random address base and ports).

    Without ``username`` the account is ``simadmin-<random>``: NTLM accounts are process-wide, so
    each fleet running in the same process gets its own.
    """
    username = username or f"simadmin-{secrets.token_hex(3)}"
    with contextlib.ExitStack() as stack:
        root = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="simfleet-")))
        base = FleetOptions(hosts=hosts, seed=seed, scenario=scenario, scenario_path=scenario_path, https=https,
                            latency_ms=latency_ms, username=username, password=password,
                            inventory_out=root / "inventory.csv", truth_out=root / "truth.json",
                            ca_out=root / "ca.pem", winrm=winrm, transport=transport, names=names,
                            spns=spns, keytab=keytab)  # fmt: skip
        handle = _start(base, root)
        try:
            yield handle
        finally:
            handle.stop()


def _start(options: FleetOptions, root: Path) -> FleetHandle:
    error: BaseException | None = None
    for _ in range(START_ATTEMPTS):
        prepared = prepare(dataclasses.replace(options))
        thread = _LoopThread(prepared)
        thread.start()
        if not thread.ready.wait(START_TIMEOUT_S):
            thread.stop()
            raise TimeoutError("simulated fleet did not start in time")
        if thread.error is None:
            return FleetHandle(prepared, thread, root)
        error = thread.error
        thread.stop()
    raise RuntimeError(f"simulated fleet could not bind its listeners: {error}") from error
