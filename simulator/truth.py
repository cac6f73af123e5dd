"""Ground truth: what a correct monitor must report for each simulated host.

The values follow the shared derivation rules (activation type from the Windows product's own
channels, the machine-wide KMS flag only when they name none; license status from ``LicenseStatus``;
error code from ``LicenseStatusReason`` or the newest failing Security-SPP event no successful 12289
came after; a licensed KMS client whose grace fell more than a renewal interval and a day behind is
failing to renew; checks from the fleet's KMS counts, DNS records, listeners and clocks; each KMS
client traced to the fleet host its KMS host name leads to, and what that host's state says about
its failure). This module derives them from the scenario and the runtime address plan; it is pure
and never touches the network.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulator.codes import (
    CLOCK_SKEW_LIMIT_S,
    EDITIONS,
    KMS_CLIENT_THRESHOLD,
    KMS_SERVER_THRESHOLD,
    VOLUME_VALIDITY_MINUTES,
    hresult_text,
    is_failure,
    license_status_name,
    version_tuple,
)
from simulator.scenario import FAULT_POLL_ERROR, Host, Scenario, SppEvent, fqdn, kms_role

# Events whose HRESULT field can carry the current error: the failed activation (8198) and the
# KMS response (12289); a 12289 with a success HRESULT is a successful (re)activation.
SPP_ERROR_EVENTS = frozenset({8198, 12289})
SPP_SUCCESS_EVENT = 12289
# Codes a KMS client reports when DNS discovery of its KMS host fails (the ``dns_srv`` check).
DNS_ERROR_CODES = frozenset({"0x8007232B", "0x8007251D", "0x80092328", "0x8007007B"})
# A renewal that fails for a day more than one renewal interval leaves less than this margin.
RENEWAL_SLACK_MINUTES = 24 * 60
WORKGROUP = "WORKGROUP"
KMS_HOST_VERDICTS = ("", "unreachable", "not_kms_host", "not_activated", "too_old", "below_threshold")
# Failures the client's KMS host itself can cause: count too low, no answer, RPC unavailable, host
# not activated, host key cannot activate this edition, no KMS host reached.
KMS_HOST_CODES = frozenset({"0xC004F038", "0xC004F039", "0x800706BA", "0xC004F041", "0xC004F042", "0xC004F074"})


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
    renewal_failing: bool
    kms_host_trace: str
    kms_host_verdict: str
    kms_role: str
    kms_clients: int

    def as_json(self) -> dict[str, Any]:
        data = {field: getattr(self, field) for field in self.__slots__}
        data["expected_findings"] = list(self.expected_findings)
        return data


def error_code(host: Host) -> str:
    """The error code a monitor must show.

    A failing ``LicenseStatusReason`` wins; a Licensed host has none unless its renewal is failing;
    otherwise the current code of its Security-SPP events (``event_code``).
    """
    if host.activation != "none" and is_failure(host.reason):
        return hresult_text(host.reason)
    if host.activation != "none" and host.license_status == 1 and not renewal_failing(host):
        return ""
    return event_code(host.events)


def event_code(events: tuple[SppEvent, ...]) -> str:
    """The newest failing 8198 or 12289, unless a successful 12289 came after it (then "")."""
    failing = [e for e in events if e.event_code in SPP_ERROR_EVENTS and is_failure(e.hr)]
    if not failing:
        return ""
    newest = min(failing, key=lambda e: e.minutes_ago)
    superseded = any(
        e.event_code == SPP_SUCCESS_EVENT and not is_failure(e.hr) and e.minutes_ago < newest.minutes_ago
        for e in events
    )
    return "" if superseded else hresult_text(newest.hr)


def renewal_threshold(host: Host) -> int:
    """``GracePeriodRemaining`` below which a Licensed KMS client has missed a renewal (minutes).

    A client renews every ``VLRenewalInterval``, back to 180 days; a day of slack on top of one
    interval separates a failing renewal from one that is merely due (172 days at the default 7).
    """
    return VOLUME_VALIDITY_MINUTES - host.renewal_interval - RENEWAL_SLACK_MINUTES


def renewal_failing(host: Host) -> bool:
    """A Licensed KMS client whose grace has fallen below ``renewal_threshold``."""
    return (
        activation_type(host) == "KMS client"
        and license_status(host) == "Licensed"
        and host.grace_minutes < renewal_threshold(host)
    )


def activation_type(host: Host) -> str:
    """The type the shared rule derives from the Windows product and the service the host serves."""
    if host.activation == "none":
        return "unknown"
    from simulator.cim import channel_of  # the product's channels live with the instance builder

    key_channel, desc_channel = channel_of(host)
    description = f"{host.description_prefix}Windows(R) Operating System, {desc_channel} channel"
    return derive_activation_type(
        key_channel,
        description,
        ad_activation=host.activation == "AD-based",
        product_kms_flag=kms_role(host) == "windows",
        service_kms_flag=kms_role(host) != "",
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
    """Lookups over the whole scenario that per-host checks need.

    ``poll_errors`` (scenario name -> poll error) says which hosts a monitor can read; without it
    every host is taken as readable.
    """

    def __init__(
        self, scenario: Scenario, listening_kms: frozenset[str], poll_errors: Mapping[str, str] | None = None
    ) -> None:
        self.kms_by_fqdn = {fqdn(h): h for h in scenario.hosts if kms_role(h)}
        self.by_fqdn: dict[str, Host] = {}
        for host in scenario.hosts:
            self.by_fqdn.setdefault(fqdn(host), host)
        self.by_name = {h.name: h for h in scenario.hosts}
        self.srv = {d.name.lower() for d in scenario.domains if d.srv_target}
        self.listening_kms = listening_kms
        self.poll_errors = dict(poll_errors or {})

    def readable(self, host: Host) -> bool:
        return not self.poll_errors.get(host.name, "")

    def kms_count(self, name: str) -> int | None:
        """The Windows count of the KMS host called ``name``; None when no readable Windows KMS host has one."""
        host = self.kms_by_fqdn.get(name)
        if host is None or host.kms is None or kms_role(host) != "windows" or not self.readable(host):
            return None
        return host.kms.current_count


def client_threshold(host: Host) -> int:
    return KMS_CLIENT_THRESHOLD if host.product_type == "workstation" else KMS_SERVER_THRESHOLD


def findings(host: Host, facts: FleetFacts) -> tuple[str, ...]:
    """Names of the checks whose verdict must be ``fail`` for this host."""
    result = []
    kms = used_kms(host)
    if kms:
        count = facts.kms_count(kms)
        if count is not None and count < client_threshold(host):
            result.append("kms_count")
    if abs(host.clock_offset_s) > CLOCK_SKEW_LIMIT_S:
        result.append("clock_skew")
    if dns_srv_fails(host, facts):
        result.append("dns_srv")
    if kms and kms not in facts.listening_kms:
        result.append("kms_port")
    if license_status(host) == "Notification":
        result.append("grace_expiry")
    if kms_host_verdict(host, facts) in KMS_HOST_FAILURES:
        result.append("kms_host")
    return tuple(result)


# Verdicts the collector's ``kms_host`` check fails on (a count below threshold is ``kms_count``'s).
KMS_HOST_FAILURES = frozenset({"unreachable", "not_kms_host", "not_activated", "too_old"})


def dns_srv_fails(host: Host, facts: FleetFacts) -> bool:
    """A missing SRV record fails only a KMS client that depends on discovery and is hurt by it.

    A client pinned with ``/skms`` never asks DNS, and a licensed client without a DNS error code
    is not harmed by the missing record (the collector reports it as information). A workgroup
    machine has no domain to look the record up in (its DNS suffix comes from DHCP), so it never
    fails the check.
    """
    if activation_type(host) != "KMS client" or host.kms_machine:
        return False
    if host.domain.strip().upper() == WORKGROUP:
        return False
    if host.domain.lower() in facts.srv:
        return False
    return license_status(host) != "Licensed" or error_code(host) in DNS_ERROR_CODES


def kms_host_trace(host: Host, facts: FleetFacts) -> str:
    """Scenario name of the fleet host a KMS client's KMS host resolves to, or ""."""
    kms = used_kms(host)
    target = facts.by_fqdn.get(kms) if kms else None
    return target.name if target is not None else ""


def kms_host_verdict(host: Host, facts: FleetFacts) -> str:
    """What tracing a KMS client's failure to its fleet KMS host shows ("" when nothing there explains it).

    Only failures a KMS host can cause are traced (``KMS_HOST_CODES``), and only to a fleet host:
    ``unreachable`` when that host cannot be read, ``not_kms_host`` when its Windows product is no KMS
    host, else what its own state says about the client's code.
    """
    code = error_code(host)
    trace = kms_host_trace(host, facts)
    if code not in KMS_HOST_CODES or not trace:
        return ""
    kms = facts.by_name[trace]
    if not facts.readable(kms):
        return "unreachable"
    if kms_role(kms) != "windows" or kms.kms is None:
        return "not_kms_host"
    if code == "0xC004F041" and license_status(kms) != "Licensed":
        return "not_activated"
    if code == "0xC004F042" and version_tuple(EDITIONS[kms.edition].version) < version_tuple(
        EDITIONS[host.edition].version
    ):
        return "too_old"
    if code == "0xC004F038" and kms.kms.current_count < client_threshold(host):
        return "below_threshold"
    return ""


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
    spns = spns or {}
    errors = {h.name: poll_error(h, inventory_hosts[h.name], spns.get(h.name, "")) for h in scenario.hosts}
    facts = FleetFacts(scenario, listening_kms, errors)
    traces = {h.name: kms_host_trace(h, facts) for h in scenario.hosts}
    clients = Counter(trace for name, trace in traces.items() if trace and not errors[name])
    return [
        _row(host, inventory_hosts[host.name], kms_port, facts, traces[host.name], clients) for host in scenario.hosts
    ]


def _row(
    host: Host, inventory_host: str, kms_port: int, facts: FleetFacts, trace: str, clients: Counter[str]
) -> TruthRow:
    from simulator.cim import os_caption  # the caption text lives with the instance builder

    kms = used_kms(host)
    role = kms_role(host)
    return TruthRow(
        host=inventory_host,
        name=host.name,
        activation_type=activation_type(host),
        license_status=license_status(host),
        error_code=error_code(host),
        poll_error=facts.poll_errors[host.name],
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
        renewal_failing=renewal_failing(host),
        kms_host_trace=trace,
        kms_host_verdict=kms_host_verdict(host, facts),
        kms_role=role,
        kms_clients=clients[host.name] if role else 0,
    )
