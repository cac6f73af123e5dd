"""Ground truth: what a correct monitor must report for each simulated host.

The values follow the shared derivation rules (activation type from the Windows product's own
channels, the machine-wide KMS flag only when they name none; license status from ``LicenseStatus``;
error code from ``LicenseStatusReason`` or the newest failing Security-SPP event; checks from the
fleet's KMS counts, DNS records, listeners and clocks). This
module derives them from the scenario and the runtime address plan; it is pure and never touches
the network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulator.codes import (
    CLOCK_SKEW_LIMIT_S,
    KMS_CLIENT_THRESHOLD,
    KMS_SERVER_THRESHOLD,
    hresult_text,
    is_failure,
    license_status_name,
)
from simulator.scenario import FAULT_POLL_ERROR, Host, Scenario, fqdn

SPP_ERROR_EVENTS = frozenset({8198, 12288, 12289})
# Codes a KMS client reports when DNS discovery of its KMS host fails (the ``dns_srv`` check).
DNS_ERROR_CODES = frozenset({"0x8007232B", "0x8007251D", "0x80092328", "0x8007007B"})


@dataclass(frozen=True, slots=True)
class TruthRow:
    """One ground-truth record (serialised as a JSON object)."""

    host: str
    name: str
    activation_type: str
    license_status: str
    error_code: str
    poll_error: str
    expected_findings: tuple[str, ...]
    computer_name: str
    domain: str
    site: str
    product_type: str
    os: str
    kms_host: str
    fault: str
    grace_minutes: int
    clock_offset_s: int

    def as_json(self) -> dict[str, Any]:
        data = {field: getattr(self, field) for field in self.__slots__}
        data["expected_findings"] = list(self.expected_findings)
        return data


def error_code(host: Host) -> str:
    """The error code a monitor must show: failing reason, else newest failing SPP event if unlicensed."""
    if host.activation != "none" and is_failure(host.reason):
        return hresult_text(host.reason)
    if host.activation != "none" and host.license_status == 1:
        return ""
    events = sorted((e for e in host.events if e.event_code in SPP_ERROR_EVENTS), key=lambda e: e.minutes_ago)
    for event in events:
        if is_failure(event.hr):
            return hresult_text(event.hr)
    return ""


def activation_type(host: Host) -> str:
    """The type the shared rule derives from the Windows product and the service the host serves."""
    if host.activation == "none":
        return "unknown"
    from simulator.cim import channel_of  # the product's channels live with the instance builder

    key_channel, desc_channel = channel_of(host)
    description = f"{host.description_prefix}Windows(R) Operating System, {desc_channel} channel"
    serves_kms = host.activation == "KMS host" and host.kms is not None
    return derive_activation_type(
        key_channel,
        description,
        ad_activation=host.activation == "AD-based",
        product_kms_flag=serves_kms,
        service_kms_flag=serves_kms,
    )


def derive_activation_type(
    key_channel: str | None,
    description: str | None,
    *,
    ad_activation: bool,
    product_kms_flag: bool,
    service_kms_flag: bool,
) -> str:
    """The shared activation-type rule over one Windows product's fields.

    The service's ``IsKeyManagementServiceMachine`` is machine-wide (a GVLK server hosting Office
    KMS has it set), so it decides only when neither channel names a type.
    """
    channel = (key_channel or "").strip().lower()
    described = _description_type(description or "")
    if channel == "volume:csvlk" or described == "KMS host" or product_kms_flag:
        return "KMS host"
    if channel:
        kind = _CHANNEL_TYPES.get(channel, "OEM" if channel.startswith("oem:") else "unknown")
    else:
        kind = described or "unknown"
    if kind == "KMS client" and ad_activation:
        return "AD-based"
    if kind == "unknown" and described is None and service_kms_flag:
        return "KMS host"
    return kind


_CHANNEL_TYPES = {"volume:gvlk": "KMS client", "volume:mak": "MAK", "retail": "Retail"}
_DESCRIPTION_TYPES = (
    ("VOLUME_KMSCLIENT", "KMS client"),
    ("VOLUME_KMS", "KMS host"),
    ("VOLUME_MAK", "MAK"),
    ("RETAIL", "Retail"),
    ("OEM_", "OEM"),
)


def _description_type(description: str) -> str | None:
    text = description.upper()
    return next((kind for marker, kind in _DESCRIPTION_TYPES if marker in text), None)


def license_status(host: Host) -> str:
    return "Unlicensed" if host.activation == "none" else license_status_name(host.license_status)


def used_kms(host: Host) -> str:
    """FQDN of the KMS host a KMS client uses: the pinned one, else the discovered one."""
    if host.activation != "KMS client":
        return ""
    return (host.kms_machine or host.discovered_kms).lower()


class FleetFacts:
    """Lookups over the whole scenario that per-host checks need."""

    def __init__(self, scenario: Scenario, listening_kms: frozenset[str]) -> None:
        self.kms_by_fqdn = {fqdn(h): h for h in scenario.hosts if h.kms is not None}
        self.srv = {d.name.lower() for d in scenario.domains if d.srv_target}
        self.listening_kms = listening_kms

    def kms_count(self, name: str) -> int | None:
        host = self.kms_by_fqdn.get(name)
        return None if host is None or host.kms is None else host.kms.current_count


def findings(host: Host, facts: FleetFacts) -> tuple[str, ...]:
    """Names of the checks whose verdict must be ``fail`` for this host."""
    result = []
    kms = used_kms(host)
    if kms:
        count = facts.kms_count(kms)
        needed = KMS_CLIENT_THRESHOLD if host.product_type == "workstation" else KMS_SERVER_THRESHOLD
        if count is not None and count < needed:
            result.append("kms_count")
    if abs(host.clock_offset_s) > CLOCK_SKEW_LIMIT_S:
        result.append("clock_skew")
    if dns_srv_fails(host, facts):
        result.append("dns_srv")
    if kms and kms not in facts.listening_kms:
        result.append("kms_port")
    if license_status(host) == "Notification":
        result.append("grace_expiry")
    return tuple(result)


def dns_srv_fails(host: Host, facts: FleetFacts) -> bool:
    """A missing SRV record fails only a KMS client that depends on discovery and is hurt by it.

    A client pinned with ``/skms`` never asks DNS, and a licensed client without a DNS error code
    is not harmed by the missing record (the collector reports it as information).
    """
    if activation_type(host) != "KMS client" or host.kms_machine:
        return False
    if host.domain.lower() in facts.srv:
        return False
    return license_status(host) != "Licensed" or error_code(host) in DNS_ERROR_CODES


def poll_error(host: Host, inventory_host: str, spn: str = "") -> str:
    """The failure class a correct collector reports for ``host``, or "" when it reads the host.

    Kerberos needs a name: a host the inventory lists by address, with no SPN beside it, fails
    sign-in before any packet.
    """
    if host.transport == "kerberos" and host.fault != "dns" and _is_address(inventory_host) and not spn:
        return "auth"
    if host.fault == "cbt_mismatch" and (host.scheme != "https" or host.transport == "basic"):
        return ""
    return FAULT_POLL_ERROR[host.fault]


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def truth_rows(
    scenario: Scenario,
    inventory_hosts: Mapping[str, str],
    kms_port: int,
    listening_kms: frozenset[str],
    spns: Mapping[str, str] | None = None,
) -> list[TruthRow]:
    """One row per host; ``inventory_hosts`` maps scenario name -> the inventory ``host`` value."""
    facts = FleetFacts(scenario, listening_kms)
    return [
        _row(host, inventory_hosts[host.name], kms_port, facts, (spns or {}).get(host.name, ""))
        for host in scenario.hosts
    ]


def _row(host: Host, inventory_host: str, kms_port: int, facts: FleetFacts, spn: str = "") -> TruthRow:
    from simulator.cim import os_caption  # the caption text lives with the instance builder

    kms = used_kms(host)
    return TruthRow(
        host=inventory_host,
        name=host.name,
        activation_type=activation_type(host),
        license_status=license_status(host),
        error_code=error_code(host),
        poll_error=poll_error(host, inventory_host, spn),
        expected_findings=findings(host, facts),
        computer_name=host.computer_name,
        domain=host.domain,
        site=host.site,
        product_type=host.product_type,
        os=os_caption(host),
        kms_host=f"{kms}:{kms_port}" if kms else "",
        fault=host.fault,
        grace_minutes=host.grace_minutes,
        clock_offset_s=host.clock_offset_s,
    )
