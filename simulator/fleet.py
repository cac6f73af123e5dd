"""The runtime plan of a fleet: which loopback address and port each host answers on, and its outputs.

Every host gets its own address in 127.0.0.0/8 (``address_base`` + n, skipping .0 and .255 in the
last octet), so a 10,000-host inventory needs no DNS; all HTTP hosts share one port and all HTTPS
hosts another. This module also writes the collector's inventory CSV and the ground-truth JSON
and keeps the scenario's current step (``advance``). No sockets here.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from simulator import truth
from simulator.scenario import Host, Scenario, apply_step, fqdn, kms_role

INVENTORY_HEADER: Final = ("host", "port", "scheme", "transport", "credential", "site", "tags")
SPN_HEADER: Final = (*INVENTORY_HEADER, "spn")
UNBOUND_FAULTS: Final = frozenset({"refused", "dns"})


def nth_address(base: ipaddress.IPv4Address, n: int) -> ipaddress.IPv4Address:
    """The n-th usable address after ``base`` (254 per /24, never .0 or .255)."""
    block, offset = divmod(n, 254)
    address = base + block * 256 + offset + 1
    if not address.is_loopback:
        raise ValueError(f"address plan leaves 127.0.0.0/8 at host {n} (base {base})")
    return address


@dataclass(frozen=True, slots=True)
class Ports:
    """Where the fleet listens: WinRM HTTP/HTTPS, the KMS port of KMS hosts, and DNS (UDP)."""

    http: int
    https: int
    kms: int
    dns: int


class FleetPlan:
    """A scenario placed on addresses and ports, advancing step by step."""

    def __init__(
        self, scenario: Scenario, address_base: str, ports: Ports, *, names: bool = False, spns: bool = False
    ) -> None:
        self._lock = threading.Lock()
        self.names = names
        self.spns = spns  # the inventory gives each host's HTTP/<fqdn> SPN beside its address
        self.scenario = scenario
        self.base = ipaddress.IPv4Address(address_base)
        self.ports = ports
        self.step = 0
        hosts = [h.name for h in scenario.hosts]
        self.addresses = {name: str(nth_address(self.base, i)) for i, name in enumerate(hosts)}
        self.retired_addresses = {
            name.lower(): str(nth_address(self.base, len(hosts) + i)) for i, name in enumerate(scenario.retired_kms)
        }
        self._hosts = {h.name: h for h in scenario.hosts}
        self._by_address = {self.addresses[h.name]: h.name for h in scenario.hosts}
        self._index_names()

    def _index_names(self) -> None:
        """FQDN -> address maps, rebuilt whenever the scenario moves on (each request reads them)."""
        named = {fqdn(h): self.addresses[h.name] for h in reversed(self.scenario.hosts)}  # the first host wins
        kms = {fqdn(h): self.addresses[h.name] for h in reversed(self.scenario.hosts) if kms_role(h)}
        self._fqdn_addresses = {**self.retired_addresses, **named}
        self._kms_addresses = {**self.retired_addresses, **kms}

    # --- lookups -------------------------------------------------------------------------------

    def host(self, name: str) -> Host:
        return self._hosts[name]

    def host_at(self, address: str) -> Host | None:
        name = self._by_address.get(address)
        return None if name is None else self._hosts[name]

    def bound_hosts(self) -> list[Host]:
        """Hosts that get a WinRM listener (refused and DNS-failure hosts get none)."""
        return [h for h in self.scenario.hosts if h.fault not in UNBOUND_FAULTS]

    def port_for(self, host: Host) -> int:
        return self.ports.https if host.scheme == "https" else self.ports.http

    def inventory_host(self, host: Host) -> str:
        """How the inventory lists ``host``: its address, or its DNS name in a fleet listed by names."""
        if host.fault == "dns":
            return f"{host.name}.corp.invalid"
        if self.names and _dns_safe(fqdn(host)):
            return fqdn(host)
        return self.addresses[host.name]

    def kms_addresses(self) -> dict[str, str]:
        """FQDN -> address for every KMS host (and retired KMS names, which nothing answers on)."""
        return self._kms_addresses

    def fqdn_addresses(self) -> dict[str, str]:
        """FQDN -> address for every host (and retired KMS names): how a client pinned by address names one."""
        return self._fqdn_addresses

    def a_records(self) -> dict[str, str]:
        records = {fqdn(h): self.addresses[h.name] for h in self.scenario.hosts if _dns_safe(fqdn(h))}
        return {**records, **self.kms_addresses()}

    def srv_records(self) -> dict[str, str]:
        """``_vlmcs._tcp.<domain>`` -> KMS host FQDN, for domains that publish."""
        return {f"_vlmcs._tcp.{d.name.lower()}": d.srv_target.lower() for d in self.scenario.domains if d.srv_target}

    def listening_kms(self) -> frozenset[str]:
        return frozenset(
            fqdn(h)
            for h in self.scenario.hosts
            if kms_role(h) and h.kms is not None and h.kms.listening and h.fault != "refused"
        )

    # --- moving on -----------------------------------------------------------------------------

    def advance(self, steps: int = 1) -> int:
        """Apply the next ``steps`` scenario steps; returns the step number reached."""
        with self._lock:
            scenario = self.scenario
            for _ in range(steps):
                scenario = apply_step(scenario, self.step)
                self.step = min(self.step + 1, len(scenario.steps))
            self.scenario = scenario
            self._hosts = {h.name: h for h in scenario.hosts}
            self._index_names()
            return self.step

    # --- outputs -------------------------------------------------------------------------------

    def spn(self, host: Host) -> str:
        """The SPN the inventory names for ``host`` ("" when it names none)."""
        return f"HTTP/{fqdn(host)}" if self.spns and _dns_safe(fqdn(host)) and host.fault != "dns" else ""

    def truth_rows(self) -> list[truth.TruthRow]:
        inventory = {h.name: self.inventory_host(h) for h in self.scenario.hosts}
        spns = {h.name: self.spn(h) for h in self.scenario.hosts}
        return truth.truth_rows(self.scenario, inventory, self.ports.kms, self.listening_kms(), spns)

    def write_truth(self, path: Path) -> list[dict[str, object]]:
        rows = [row.as_json() for row in self.truth_rows()]
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
        return rows

    def write_inventory(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(SPN_HEADER if self.spns else INVENTORY_HEADER)
            for host in self.scenario.hosts:
                writer.writerow(self._inventory_row(host))

    def _inventory_row(self, host: Host) -> tuple[str, ...]:
        row = (
            self.inventory_host(host),
            str(self.port_for(host)),
            host.scheme,
            host.transport,
            "default",
            host.site,
            ";".join(self._inventory_tags(host)),
        )
        return (*row, self.spn(host)) if self.spns else row

    @staticmethod
    def _inventory_tags(host: Host) -> tuple[str, ...]:
        # The collector refuses Basic over plain HTTP unless the row opts in; the demo fleet does.
        opt_in = ("allow-basic-http",) if host.transport == "basic" and host.scheme == "http" else ()
        return (*host.tags, host.product_type, *opt_in)


def _dns_safe(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return all(0 < len(label) <= 63 and all(c.isalnum() or c == "-" for c in label) for label in labels) and all(
        label.isascii() for label in labels
    )
