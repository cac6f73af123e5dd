"""The scenario: a declarative description of a simulated Windows fleet, and its schema check.

A scenario is plain JSON (or YAML) with fleet-level facts (domains and where their KMS SRV record
points, MAK keys) and one entry per host (identity, edition, activation state, SPP events, clock
offset, KMS counters, injected fault). ``steps`` lists later changes so the fleet can move on over
time. This module owns the typed records, loading, validation (``ScenarioError`` naming the path
of the bad field) and saving; it knows nothing about sockets or XML.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from simulator.codes import ACTIVATION_TYPES, DEFAULT_RENEWAL_INTERVAL, EDITIONS, PRODUCT_TYPES

FAULTS: Final = (
    "",
    "latency",
    "silent",
    "refused",
    "auth_reject",
    "soap_500",
    "truncated",
    "malformed",
    "oversized",
    "slow_drip",
    "dns",
    "tls",
    "flaky_500",
    "flaky_reset",
    "cbt_mismatch",
)
# What a correct collector must report for a host carrying each fault.
FAULT_POLL_ERROR: Final = {
    "": "",
    "latency": "",
    "silent": "timeout",
    "slow_drip": "timeout",
    "refused": "refused",
    "auth_reject": "auth",
    "soap_500": "protocol",
    "truncated": "protocol",
    "malformed": "protocol",
    "oversized": "protocol",
    "dns": "dns",
    "tls": "tls",
    # Passing failures a collector retries once: the host is read.
    "flaky_500": "",
    "flaky_reset": "",
    # The TLS channel the host sees is not the collector's (an intercepting proxy): channel
    # bindings do not match, so NTLM and Kerberos over HTTPS fail; Basic and plain HTTP carry none.
    "cbt_mismatch": "auth",
}


class ScenarioError(ValueError):
    """A scenario file that does not match the schema; the message names the offending path."""


@dataclass(frozen=True, slots=True)
class SppEvent:
    """One Application-log event from ``Microsoft-Windows-Security-SPP``."""

    event_code: int
    hr: int
    minutes_ago: int


@dataclass(frozen=True, slots=True)
class KmsCounters:
    """The counters and listener state of a host acting as a KMS host."""

    current_count: int
    total_requests: int = 0
    failed_requests: int = 0
    licensed_requests: int = 0
    non_genuine_requests: int = 0
    dns_publishing: bool = True
    listening: bool = True


@dataclass(frozen=True, slots=True)
class WinrmService:
    """The host's WinRM service settings (``winrm get winrm/config/service``), Windows' defaults first.

    ``offer_ntlm_scheme`` stands for a non-Windows WS-Management server that advertises a bare
    ``NTLM`` scheme; no Windows listener does.
    """

    negotiate: bool = True
    kerberos: bool = True
    basic: bool = False
    allow_unencrypted: bool = False
    offer_ntlm_scheme: bool = False


TRANSPORTS: Final = ("negotiate", "kerberos", "ntlm", "basic")
# How a client's ``KeyManagementServiceMachine`` names its pinned KMS host (``kms_machine`` is always
# the FQDN): as the FQDN, as the short computer name (resolved in the client's own domain), or as the
# fleet address of the machine with that FQDN.
KMS_MACHINE_FORMS: Final = ("fqdn", "name", "address")
# Which application's KMS host key a host's ``kms`` counters belong to.
KMS_APPS: Final = ("windows", "office")
RENEWAL_INTERVAL_RANGE: Final = (15, 30 * 24 * 60)  # what slmgr /sri accepts, in minutes


@dataclass(frozen=True, slots=True)
class Host:
    """One simulated Windows machine."""

    name: str
    computer_name: str
    domain: str
    site: str
    edition: str
    product_type: str
    activation: str
    license_status: int
    reason: int = 0
    grace_minutes: int = 0
    kms_machine: str = ""
    discovered_kms: str = ""
    kms_machine_form: str = "fqdn"
    renewal_interval: int = DEFAULT_RENEWAL_INTERVAL
    events: tuple[SppEvent, ...] = ()
    clock_offset_s: int = 0
    tz_minutes: int = 480
    kms: KmsCounters | None = None
    kms_app: str = "windows"
    fault: str = ""
    latency_ms: int = 0
    scheme: str = "http"
    transport: str = "ntlm"
    tags: tuple[str, ...] = ()
    description_prefix: str = ""
    os_caption: str = ""
    extra_products: int = 4
    winrm: WinrmService = WinrmService()


@dataclass(frozen=True, slots=True)
class Domain:
    """A DNS domain; ``srv_target`` is the KMS host FQDN its ``_vlmcs._tcp`` record names, or ""."""

    name: str
    srv_target: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """Fields of one host replaced at a step (``kms.current_count`` style keys reach the counters)."""

    host: str
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole fleet plus its future steps."""

    name: str
    seed: int
    hosts: tuple[Host, ...]
    domains: tuple[Domain, ...] = ()
    retired_kms: tuple[str, ...] = ()
    steps: tuple[tuple[Change, ...], ...] = ()
    notes: Mapping[str, Any] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def domain(self, name: str) -> Domain | None:
        for domain in self.domains:
            if domain.name.lower() == name.lower():
                return domain
        return None


def fqdn(host: Host) -> str:
    """The host's DNS name (``computer_name.domain``, lower case)."""
    return f"{host.computer_name}.{host.domain}".lower()


def kms_role(host: Host) -> str:
    """``windows`` when the host's Windows product is a KMS host, ``office`` when only an Office KMS
    host product is, else ""."""
    if host.activation == "KMS host" and host.kms is not None:
        return "windows"
    if host.kms is not None and host.kms_app == "office":
        return "office"
    return ""


# --- loading ---------------------------------------------------------------------------------


def load(path: Path) -> Scenario:
    """Read and validate a JSON or YAML scenario; raises ``ScenarioError`` with the bad path."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in {".yaml", ".yml"}:
        import yaml  # only needed for YAML scenarios

        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{path}: not valid JSON: {exc}") from exc
    return from_data(data)


def from_data(data: Any) -> Scenario:
    """Build a validated ``Scenario`` from parsed JSON/YAML data."""
    root = _mapping(data, "$")
    hosts = tuple(_host(h, f"$.hosts[{i}]") for i, h in enumerate(_list(root.get("hosts"), "$.hosts")))
    if not hosts:
        raise ScenarioError("$.hosts: at least one host is required")
    _unique([h.name for h in hosts], "$.hosts[].name")
    domains = tuple(_domain(d, f"$.domains[{i}]") for i, d in enumerate(_list(root.get("domains", []), "$.domains")))
    names = {h.name for h in hosts}
    steps = tuple(_step(s, f"$.steps[{i}]", names) for i, s in enumerate(_list(root.get("steps", []), "$.steps")))
    retired = tuple(_str(x, "$.retired_kms[]") for x in _list(root.get("retired_kms", []), "$.retired_kms"))
    _check_addressed_pins(hosts, retired)
    return Scenario(
        name=_str(root.get("name", "scenario"), "$.name"),
        seed=_int(root.get("seed", 0), "$.seed"),
        hosts=hosts,
        domains=domains,
        retired_kms=retired,
        steps=steps,
        notes=_mapping(root.get("notes", {}), "$.notes"),
    )


def _check_addressed_pins(hosts: tuple[Host, ...], retired: tuple[str, ...]) -> None:
    """A KMS host pinned by address must be a machine the fleet gives an address to."""
    known = {fqdn(h) for h in hosts} | {name.lower() for name in retired}
    for i, host in enumerate(hosts):
        if host.kms_machine_form == "address" and host.kms_machine.lower() not in known:
            raise ScenarioError(
                f"$.hosts[{i}].kms_machine: expected the FQDN of a fleet host or retired KMS name "
                f"for kms_machine_form 'address', got {host.kms_machine!r}"
            )


_HOST_FIELDS: Final = {f.name: f for f in dataclasses.fields(Host)}


def _host(raw: Any, path: str) -> Host:
    data = dict(_mapping(raw, path))
    unknown = set(data) - set(_HOST_FIELDS)
    if unknown:
        raise ScenarioError(f"{path}: unknown field(s) {sorted(unknown)}")
    for required in ("name", "computer_name", "domain", "site", "edition", "product_type", "activation"):
        if required not in data:
            raise ScenarioError(f"{path}.{required}: required")
    data["events"] = tuple(_event(e, f"{path}.events[{i}]") for i, e in enumerate(_list(data.get("events", []), path)))
    data["tags"] = tuple(_str(t, f"{path}.tags[]") for t in _list(data.get("tags", []), f"{path}.tags"))
    kms = data.get("kms")
    data["kms"] = None if kms is None else _kms(kms, f"{path}.kms")
    data["winrm"] = _winrm(data.get("winrm", {}), f"{path}.winrm")
    host = Host(**data)
    _check_host(host, path)
    return host


def _check_host(host: Host, path: str) -> None:
    checks = (
        (host.edition in EDITIONS, "edition", f"one of {sorted(EDITIONS)}"),
        (host.product_type in PRODUCT_TYPES, "product_type", f"one of {sorted(PRODUCT_TYPES)}"),
        (host.activation in ACTIVATION_TYPES, "activation", f"one of {list(ACTIVATION_TYPES)}"),
        (isinstance(host.license_status, int) and 0 <= host.license_status <= 6, "license_status", "0-6"),
        (isinstance(host.reason, int) and 0 <= host.reason <= 0xFFFFFFFF, "reason", "a uint32"),
        (host.fault in FAULTS, "fault", f"one of {list(FAULTS)}"),
        (host.scheme in {"http", "https"}, "scheme", "http or https"),
        (host.transport in TRANSPORTS, "transport", f"one of {list(TRANSPORTS)}"),
        (host.transport != "basic" or host.winrm.basic, "winrm", "basic enabled for a host polled with Basic"),
        (host.activation != "KMS host" or host.kms is not None, "kms", "counters for a KMS host"),
        (isinstance(host.grace_minutes, int) and host.grace_minutes >= 0, "grace_minutes", ">= 0"),
        (host.kms_machine_form in KMS_MACHINE_FORMS, "kms_machine_form", f"one of {list(KMS_MACHINE_FORMS)}"),
        (host.kms_machine_form == "fqdn" or bool(host.kms_machine), "kms_machine", "a pinned KMS host FQDN"),
        (
            host.kms_machine_form != "name" or host.kms_machine.lower().endswith("." + host.domain.lower()),
            "kms_machine",
            "a KMS host in the client's own domain for kms_machine_form 'name'",
        ),
        (
            isinstance(host.renewal_interval, int)
            and RENEWAL_INTERVAL_RANGE[0] <= host.renewal_interval <= RENEWAL_INTERVAL_RANGE[1],
            "renewal_interval",
            f"{RENEWAL_INTERVAL_RANGE[0]}-{RENEWAL_INTERVAL_RANGE[1]} minutes",
        ),
        (host.kms_app in KMS_APPS, "kms_app", f"one of {list(KMS_APPS)}"),
        (
            host.kms_app != "office" or (host.kms is not None and host.activation != "KMS host"),
            "kms_app",
            "counters and a Windows product that is no KMS host for an Office-only KMS host",
        ),
    )
    for ok, name, expected in checks:
        if not ok:
            raise ScenarioError(f"{path}.{name}: expected {expected}, got {getattr(host, name)!r}")


def _event(raw: Any, path: str) -> SppEvent:
    data = _mapping(raw, path)
    return SppEvent(
        event_code=_int(data.get("event_code"), f"{path}.event_code"),
        hr=_int(data.get("hr", 0), f"{path}.hr"),
        minutes_ago=_int(data.get("minutes_ago", 0), f"{path}.minutes_ago"),
    )


def _kms(raw: Any, path: str) -> KmsCounters:
    data = dict(_mapping(raw, path))
    known = {f.name for f in dataclasses.fields(KmsCounters)}
    if set(data) - known:
        raise ScenarioError(f"{path}: unknown field(s) {sorted(set(data) - known)}")
    if "current_count" not in data:
        raise ScenarioError(f"{path}.current_count: required")
    return KmsCounters(**data)


def _winrm(raw: Any, path: str) -> WinrmService:
    data = dict(_mapping(raw, path))
    known = {f.name for f in dataclasses.fields(WinrmService)}
    if set(data) - known:
        raise ScenarioError(f"{path}: unknown field(s) {sorted(set(data) - known)}")
    for key, value in data.items():
        if not isinstance(value, bool):
            raise ScenarioError(f"{path}.{key}: expected true or false, got {value!r}")
    return WinrmService(**data)


def _domain(raw: Any, path: str) -> Domain:
    data = _mapping(raw, path)
    return Domain(name=_str(data.get("name"), f"{path}.name"), srv_target=_str(data.get("srv_target", ""), path))


def _step(raw: Any, path: str, names: set[str]) -> tuple[Change, ...]:
    changes = []
    for i, item in enumerate(_list(_mapping(raw, path).get("changes", []), f"{path}.changes")):
        change = _mapping(item, f"{path}.changes[{i}]")
        host = _str(change.get("host"), f"{path}.changes[{i}].host")
        if host not in names:
            raise ScenarioError(f"{path}.changes[{i}].host: no host named {host!r}")
        values = _mapping(change.get("set", {}), f"{path}.changes[{i}].set")
        for key in values:
            if key.split(".")[0] not in _HOST_FIELDS:
                raise ScenarioError(f"{path}.changes[{i}].set.{key}: not a host field")
        changes.append(Change(host=host, values=dict(values)))
    return tuple(changes)


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{path}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise ScenarioError(f"{path}: expected a list, got {type(value).__name__}")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"{path}: expected a string, got {type(value).__name__}")
    return value


def _int(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ScenarioError(f"{path}: expected an integer, got {value!r}")
    return value


def _unique(values: list[str], path: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ScenarioError(f"{path}: duplicate {value!r}")
        seen.add(value)


# --- applying steps and saving -----------------------------------------------------------------


def apply_step(scenario: Scenario, index: int) -> Scenario:
    """The scenario after the changes of step ``index`` (0-based); hosts not named stay as they were."""
    if not 0 <= index < len(scenario.steps):
        return scenario
    by_name = {h.name: h for h in scenario.hosts}
    for change in scenario.steps[index]:
        by_name[change.host] = _changed(by_name[change.host], change.values)
    return dataclasses.replace(scenario, hosts=tuple(by_name[h.name] for h in scenario.hosts))


def _changed(host: Host, values: Mapping[str, Any]) -> Host:
    plain = {k: v for k, v in values.items() if "." not in k}
    if "events" in plain:
        plain["events"] = tuple(_event(e, "events") for e in plain["events"])
    kms_values = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("kms.")}
    if kms_values and host.kms is not None:
        plain["kms"] = dataclasses.replace(host.kms, **kms_values)
    winrm_values = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("winrm.")}
    if winrm_values:
        plain["winrm"] = dataclasses.replace(host.winrm, **winrm_values)
    return dataclasses.replace(host, **plain)


def to_data(scenario: Scenario) -> dict[str, Any]:
    """JSON-ready form of a scenario (the inverse of ``from_data``)."""
    return {
        "name": scenario.name,
        "seed": scenario.seed,
        "notes": dict(scenario.notes),
        "domains": [dataclasses.asdict(d) for d in scenario.domains],
        "retired_kms": list(scenario.retired_kms),
        "hosts": [_host_data(h) for h in scenario.hosts],
        "steps": [{"changes": [{"host": c.host, "set": dict(c.values)} for c in step]} for step in scenario.steps],
    }


def _host_data(host: Host) -> dict[str, Any]:
    data = dataclasses.asdict(host)
    data["events"] = [dataclasses.asdict(e) for e in host.events]
    data["tags"] = list(host.tags)
    return data


def save(scenario: Scenario, path: Path) -> None:
    """Write the scenario as indented UTF-8 JSON."""
    path.write_text(json.dumps(to_data(scenario), ensure_ascii=False, indent=1), encoding="utf-8")
