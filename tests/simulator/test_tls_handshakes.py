"""HTTPS listeners under load: every handshake completes, one request after another or from many threads.

Each call opens a fresh TLS connection (a new pywinrm ``Protocol`` or a plain ``requests.post``),
so a few hundred calls mean a few hundred handshakes against the fleet CA.
"""

# ruff: noqa: S314 - replies come from our own simulator

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import requests

from simulator.pytest_plugin import LAB
from simulator.testing import FleetHandle
from tests.simulator.conftest import CIMV2, NS, enumerate_request, protocol

CALLS = 200
THREADS = 16
KINDS = ("basic", "ntlm", "plain")
QUERY = "SELECT * FROM Win32_ComputerSystem"


def healthy_hosts(fleet: FleetHandle) -> list[str]:
    return [row["name"] for row in fleet.truth if row["fault"] == ""]


def one_call(fleet: FleetHandle, name: str, kind: str) -> str | None:
    """None when the call succeeded, else what went wrong (the exception, or an unexpected reply)."""
    try:
        if kind == "plain":
            reply = requests.post(
                fleet.endpoint(name), data=b"", auth=(fleet.username, fleet.password), verify=str(fleet.ca_path),
                timeout=10,
            )  # fmt: skip
            return None if reply.status_code == 200 else f"{kind} {name}: HTTP {reply.status_code}"
        p = protocol(fleet, name, kind, read_timeout_sec=10, operation_timeout_sec=5)
        root = ET.fromstring(p.send_message(enumerate_request(p, CIMV2 + "*", QUERY)))
        items = root.find("s:Body/n:EnumerateResponse/w:Items", NS)
        return None if items is not None and len(items) == 1 else f"{kind} {name}: no Win32_ComputerSystem item"
    except Exception as exc:  # a handshake failure surfaces as any of several requests / ssl errors
        return f"{kind} {name}: {type(exc).__name__}: {exc}"


def calls(fleet: FleetHandle) -> list[tuple[str, str]]:
    """``CALLS`` (host, kind) pairs cycling over the healthy hosts and the three kinds of client."""
    pairs = zip(itertools.cycle(healthy_hosts(fleet)), itertools.cycle(KINDS), strict=False)
    return list(itertools.islice(pairs, CALLS))


def test_sequential_https_calls_all_complete_their_handshake(sim_fleet_https):
    before = sim_fleet_https.stats.get("connections", 0)
    outcomes = [one_call(sim_fleet_https, name, kind) for name, kind in calls(sim_fleet_https)]
    assert [o for o in outcomes if o is not None] == []
    # NTLM needs a connection of its own per Protocol, so at least every call shook hands once
    assert sim_fleet_https.stats["connections"] - before >= CALLS


def test_concurrent_https_calls_all_complete_their_handshake(sim_fleet_https):
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(lambda call: one_call(sim_fleet_https, *call), calls(sim_fleet_https)))
    assert [o for o in outcomes if o is not None] == []


def test_a_fresh_https_fleet_answers_every_host_on_its_first_handshake(sim_fleet_factory):
    fleet = sim_fleet_factory(hosts=30, seed=11, https=True, winrm=LAB)
    outcomes = [one_call(fleet, name, kind) for name in healthy_hosts(fleet) for kind in KINDS]
    assert [o for o in outcomes if o is not None] == []
