"""Assembling a runnable fleet from options: scenario, address plan, ports, credentials, TLS, outputs.

``FleetOptions`` is what the CLI flags and the test API both fill in; ``prepare`` turns it into a
``Prepared`` fleet (plan, server, files written) without binding anything, so the caller decides
whether the event loop runs in the main thread (CLI) or a background thread (tests).
"""

from __future__ import annotations

import dataclasses
import random
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from simulator import generator, scenario
from simulator.auth import Credentials
from simulator.fleet import FleetPlan, Ports
from simulator.scenario import Scenario, WinrmService
from simulator.server import FleetServer, TlsMaterial

DEFAULT_USERNAME = "simadmin"


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """Everything that decides what a simulator serves and where; 0 for a port means "pick a free one"."""

    hosts: int = 50
    seed: int = 1
    scenario_path: Path | None = None
    scenario: Scenario | None = None
    username: str = DEFAULT_USERNAME
    password: str | None = None
    https: bool = False
    latency_ms: int = 0
    address_base: str | None = None
    http_port: int = 0
    https_port: int = 0
    kms_port: int = 0
    dns_port: int = 0
    inventory_out: Path | None = None
    truth_out: Path | None = None
    ca_out: Path | None = None
    # Fleet-wide overrides of every host: its WinRM service settings (as a GPO would set them), the
    # transport its inventory row names, and listing hosts by DNS name instead of address (Kerberos).
    winrm: WinrmService | None = None
    transport: str | None = None
    names: bool = False
    spns: bool = False
    keytab: Path | None = None

    def __repr__(self) -> str:
        return f"FleetOptions(hosts={self.hosts}, seed={self.seed}, username={self.username!r}, password=[secure])"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A fleet ready to bind: its plan, server, accepted credentials and written files."""

    plan: FleetPlan
    server: FleetServer
    creds: Credentials
    password_generated: bool
    inventory_path: Path | None
    truth_path: Path | None
    ca_path: Path | None


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the kernel considers free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def random_base(rng: random.Random | None = None) -> str:
    """A random 127.B.0.0 base so concurrent simulators rarely share addresses."""
    return f"127.{(rng or random.SystemRandom()).randint(16, 250)}.0.0"


def load_scenario(options: FleetOptions) -> Scenario:
    if options.scenario is not None:
        found = options.scenario
    elif options.scenario_path is not None:
        found = scenario.load(options.scenario_path)
    else:
        found = generator.generate(options.hosts, options.seed)
    changes: dict[str, object] = {}
    if options.https:
        changes["scheme"] = "https"
    if options.winrm is not None:
        changes["winrm"] = options.winrm
    if options.transport is not None:
        changes["transport"] = options.transport
    if changes:
        found = dataclasses.replace(found, hosts=tuple(dataclasses.replace(h, **changes) for h in found.hosts))  # type: ignore[arg-type]
    return found


def prepare(options: FleetOptions) -> Prepared:
    """Build the plan and server and write the inventory, truth and CA files it was asked for."""
    fleet = load_scenario(options)
    ports = Ports(
        http=options.http_port or free_port(),
        https=options.https_port or free_port(),
        kms=options.kms_port or free_port(),
        dns=options.dns_port or free_port(socket.SOCK_DGRAM),
    )
    plan = FleetPlan(fleet, options.address_base or random_base(), ports, names=options.names, spns=options.spns)
    generated = options.password is None
    creds = Credentials(options.username, options.password or "Sim-" + secrets.token_urlsafe(12))
    tls = TlsMaterial() if any(h.scheme == "https" for h in fleet.hosts) else None
    server = FleetServer(plan, creds, tls=tls, keytab=options.keytab, latency_ms=options.latency_ms)
    ca_path = options.ca_out
    if tls is not None and ca_path is not None:
        ca_path.write_bytes(tls.ca_pem())
    if options.inventory_out is not None:
        plan.write_inventory(options.inventory_out)
    if options.truth_out is not None:
        plan.write_truth(options.truth_out)
    return Prepared(plan, server, creds, generated, options.inventory_out, options.truth_out,
                    ca_path if tls is not None else None)  # fmt: skip
