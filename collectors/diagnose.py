"""Diagnostic checks that explain an activation failure beyond its code, each a ``Finding`` with its
evidence: ``clock_skew``, ``dns_srv``, ``kms_port``, ``grace_expiry`` per host while it is polled,
and ``kms_count`` as a post-pass over the run (the KMS host's count may come from a host polled
later). Network questions go through the injected ``Probes``; this module decides nothing about
how hosts are reached. A host's probes share one deadline (``diagnose(..., deadline=...)``), and a
probe that was not made (time ran out, too many distinct KMS hosts) is reported as information,
never as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from collectors.deadline import Deadline
from collectors.probes import Probes, SrvAnswer, TcpAnswer
from knowledge.codes import codes_for_check
from knowledge.kms import CLOCK_SKEW_LIMIT, KMS_DEFAULT_PORT, can_activate, required_count, windows_name
from models.enums import LicenseStatus, ProductType, Severity
from models.hostfacts import kms_client_product, machine_name, qualified
from models.records import EvidenceValue, Finding, ProductState

CHECK_KMS_COUNT = "kms_count"
CHECK_CLOCK_SKEW = "clock_skew"
CHECK_DNS_SRV = "dns_srv"
CHECK_KMS_PORT = "kms_port"
CHECK_GRACE = "grace_expiry"
CHECK_KMS_HOST = "kms_host"
CHECKS = (CHECK_KMS_COUNT, CHECK_CLOCK_SKEW, CHECK_DNS_SRV, CHECK_KMS_PORT, CHECK_GRACE, CHECK_KMS_HOST)
HOST_RECORD = "kms_host_record"  # evidence key: the inventory name of the KMS host, for a link to it

# The codes each check helps explain, as the knowledge base lists them.
DNS_CODES = frozenset(codes_for_check(CHECK_DNS_SRV))
# The codes of a failed DNS discovery: with one of them a missing SRV record is the cause.
DISCOVERY_CODES = frozenset({"0x8007232B", "0x8007251D", "0x80092328", "0x8007007B"})
PORT_CODES = frozenset(codes_for_check(CHECK_KMS_PORT))
COUNT_CODES = frozenset(codes_for_check(CHECK_KMS_COUNT))
SKEW_CODES = frozenset(codes_for_check(CHECK_CLOCK_SKEW))
# Failures a client's KMS host can cause itself (not activated, too old, not a KMS host at all, too few
# clients, not reachable), as the knowledge base lists them.
TRACED_CODES = frozenset(codes_for_check(CHECK_KMS_HOST))


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What diagnosis needs to know about one answered host."""

    host: str
    domain: str | None
    product_type: ProductType | None
    products: tuple[ProductState, ...]
    host_time: datetime | None
    collector_time: datetime


@dataclass(frozen=True, slots=True)
class KmsUse:
    """The KMS host a client uses, and how it was found (``pinned``, ``discovered``, ``srv``)."""

    host: str
    port: int
    source: str


@dataclass(frozen=True, slots=True)
class KmsClient:
    """A KMS client, for the KMS post-pass: the KMS name it uses, its kind, code and Windows version."""

    host: str
    kms_host: str  # the name as the client gives it: FQDN, short name or address
    is_server: bool | None  # None: the host's product type could not be read
    error_code: str | None
    os_version: str | None = None
    os_caption: str | None = None
    domain: str | None = None  # the client's DNS domain: where a short KMS name resolves


class KmsHostLike(Protocol):
    """What the post-pass knows of the machine a client's KMS name resolves to (``models.kms.KmsHostRecord``)."""

    @property
    def name(self) -> str: ...
    @property
    def current_count(self) -> int | None: ...
    @property
    def license_status(self) -> str | None: ...
    @property
    def kms_role(self) -> str | None: ...
    @property
    def os_version(self) -> str | None: ...
    @property
    def os_caption(self) -> str | None: ...
    @property
    def last_failure_class(self) -> str | None: ...
    @property
    def last_failure_reason(self) -> str | None: ...
    @property
    def is_windows_kms_host(self) -> bool: ...
    @property
    def unreachable(self) -> bool: ...


def diagnose(
    facts: HostFacts, probes: Probes, *, grace_warning_days: int, deadline: Deadline | None = None
) -> tuple[Finding, ...]:
    """Per-host findings (all checks except ``kms_count``).

    ``deadline`` bounds every network probe for this host; pass the host's own deadline. Without it
    the host gets ``probes.host_budget_s`` from now.
    """
    findings = [clock_skew(facts)] if facts.host_time is not None else []
    findings.extend(grace_expiry(p, grace_warning_days) for p in facts.products if _in_grace(p))
    client = kms_client_product(facts.products)
    if client is not None:
        findings.extend(_kms_network(facts, client, probes, probes.deadline(deadline)))
    return tuple(f for f in findings if f is not None)


def _kms_network(facts: HostFacts, product: ProductState, probes: Probes, deadline: Deadline) -> list[Finding]:
    findings: list[Finding] = []
    if facts.domain:
        findings.append(dns_srv(probes.srv(facts.domain, deadline=deadline), product))
    use = kms_in_use(product)
    if use is not None:
        name = qualified(use.host, facts.domain)
        findings.append(kms_port(use, probes.tcp(name, use.port, deadline=deadline), product.error_code))
    return findings


def depends_on_discovery(product: ProductState) -> bool:
    """Whether the client finds its KMS host through DNS (no ``/skms`` pin)."""
    return not (product.kms_machine or "").strip()


def discovery_hurts(product: ProductState) -> bool:
    """Whether a missing SRV record explains this client's state.

    Only a client that depends on discovery can be hurt, and only when it is not licensed or its
    error is a DNS one; a licensed client may use a cached or earlier-discovered KMS host.
    """
    if not depends_on_discovery(product):
        return False
    return product.license_status is not LicenseStatus.LICENSED or product.error_code in DISCOVERY_CODES


def kms_in_use(product: ProductState) -> KmsUse | None:
    """The KMS host the client talks to: the pinned one (``/skms``), else the one it discovered.

    A client that has discovered nothing is left alone: the SRV check already covers discovery.
    """
    if product.kms_machine:
        return KmsUse(machine_name(product.kms_machine), product.kms_port or KMS_DEFAULT_PORT, "pinned")
    if product.discovered_kms_machine:
        port = product.discovered_kms_port or KMS_DEFAULT_PORT
        return KmsUse(machine_name(product.discovered_kms_machine), port, "discovered")
    return None


def _in_grace(product: ProductState) -> bool:
    return product.license_status.in_grace or product.license_status is LicenseStatus.NOTIFICATION


# --- the checks ----------------------------------------------------------------------------------


def clock_skew(facts: HostFacts) -> Finding:
    assert facts.host_time is not None
    skew = (facts.host_time - facts.collector_time).total_seconds()
    evidence: dict[str, EvidenceValue] = {
        "host_time_utc": facts.host_time.astimezone(facts.collector_time.tzinfo).isoformat(),
        "collector_time_utc": facts.collector_time.isoformat(),
        "skew_seconds": round(skew, 1),
        "limit_seconds": CLOCK_SKEW_LIMIT.total_seconds(),
    }
    if abs(skew) > CLOCK_SKEW_LIMIT.total_seconds():
        summary = f"Host clock differs from the collector's by {abs(skew) / 3600:.1f} h (limit 4 h)"
        return Finding(CHECK_CLOCK_SKEW, Severity.FAIL, summary, "0xC004F06C", evidence)
    return Finding(CHECK_CLOCK_SKEW, Severity.OK, f"Clock within {abs(skew):.0f} s of the collector", None, evidence)


def dns_srv(answer: SrvAnswer, product: ProductState) -> Finding:
    """The SRV lookup's verdict for a KMS client: FAIL only when the missing record hurts it."""
    related = product.error_code if product.error_code in DNS_CODES else None
    if answer.found:
        targets = ", ".join(f"{r.target}:{r.port}" for r in answer.records[:5])
        evidence: dict[str, EvidenceValue] = {"name": answer.name, "records": targets}
        return Finding(CHECK_DNS_SRV, Severity.OK, f"{answer.name} -> {targets}", related, evidence)
    evidence = {"name": answer.name, "error": answer.error, "pinned_kms_host": product.kms_machine}
    if not answer.probed:
        return Finding(CHECK_DNS_SRV, Severity.INFO, f"{answer.name}: {answer.error}", related, evidence)
    summary = f"No KMS SRV record: {answer.name} ({answer.error})"
    if discovery_hurts(product):
        return Finding(CHECK_DNS_SRV, Severity.FAIL, summary, related or "0x8007232B", evidence)
    why = "pinned to a KMS host" if not depends_on_discovery(product) else "licensed without a DNS error"
    return Finding(CHECK_DNS_SRV, Severity.INFO, f"{summary}; not a cause here: {why}", related, evidence)


def kms_port(use: KmsUse, answer: TcpAnswer, error_code: str | None) -> Finding:
    """The TCP probe's verdict for the KMS host a client uses."""
    related = error_code if error_code in PORT_CODES else None
    evidence: dict[str, EvidenceValue] = {
        "kms_host": use.host,
        "port": use.port,
        "source": use.source,
        "address": answer.address,
    }
    if answer.ok:
        return Finding(CHECK_KMS_PORT, Severity.OK, f"{use.host}:{use.port} accepts connections", related, evidence)
    evidence["error"] = answer.error
    if not answer.probed:
        return Finding(CHECK_KMS_PORT, Severity.INFO, f"{use.host}:{use.port} {answer.error}", related, evidence)
    summary = f"Cannot connect to KMS host {use.host}:{use.port} ({answer.error})"
    return Finding(CHECK_KMS_PORT, Severity.FAIL, summary, related or "0xC004F074", evidence)


def grace_expiry(product: ProductState, warning_days: int) -> Finding:
    minutes = product.grace_minutes
    evidence: dict[str, EvidenceValue] = {
        "product_id": product.product_id,
        "license_status": product.license_status.value,
        "grace_minutes": minutes,
        "warning_days": warning_days,
    }
    if product.license_status is LicenseStatus.NOTIFICATION:
        return Finding(
            CHECK_GRACE, Severity.FAIL, "Windows is in Notification mode (grace period over)", None, evidence
        )
    days = (minutes or 0) / 1440
    if minutes is not None and days <= warning_days:
        summary = f"{product.license_status.value} grace period ends in {days:.1f} days"
        return Finding(CHECK_GRACE, Severity.WARN, summary, None, evidence)
    return Finding(
        CHECK_GRACE, Severity.INFO, f"{product.license_status.value}: {days:.0f} days of grace left", None, evidence
    )


def kms_client(
    host: str, facts: HostFacts, os_version: str | None = None, os_caption: str | None = None
) -> KmsClient | None:
    """The post-pass record for a KMS client, naming the KMS host it uses."""
    product = kms_client_product(facts.products)
    if product is None:
        return None
    use = kms_in_use(product)
    if use is None:
        return None
    is_server = facts.product_type.is_server if facts.product_type is not None else None
    return KmsClient(host, use.host, is_server, product.error_code, os_version, os_caption, facts.domain)


def kms_count(client: KmsClient, record: KmsHostLike | None) -> Finding | None:
    """Whether the Windows KMS host the client uses has the count the client needs; None when unknown."""
    if record is None or record.current_count is None or not record.is_windows_kms_host:
        return None
    count = int(record.current_count)
    related = client.error_code if client.error_code in COUNT_CODES else None
    if client.is_server is None:
        return _count_for_unknown_kind(client, count, related)
    needed = required_count(client.is_server)
    evidence: dict[str, EvidenceValue] = {
        "kms_host": client.kms_host, "current_count": count, "required": needed, HOST_RECORD: record.name
    }  # fmt: skip
    if count < needed:
        summary = f"KMS host {client.kms_host} has count {count}; this {_kind(client)} needs {needed}"
        return Finding(CHECK_KMS_COUNT, Severity.FAIL, summary, related or "0xC004F038", evidence)
    return Finding(
        CHECK_KMS_COUNT, Severity.OK, f"KMS host {client.kms_host} count {count} >= {needed}", related, evidence
    )


def kms_host(client: KmsClient, record: KmsHostLike | None) -> Finding | None:
    """The stored state of the machine the client's KMS name resolves to, attached to the client's failure.

    Judged only for failures that the KMS host itself can cause; ``evidence["verdict"]`` names the cause
    found (``unreachable``, ``not_kms_host``, ``not_activated``, ``too_old``) or is empty.
    """
    code = client.error_code
    if code not in TRACED_CODES:
        return None
    if record is None:
        summary = f"KMS host {client.kms_host} is not a polled host: its own state is unknown"
        return Finding(CHECK_KMS_HOST, Severity.INFO, summary, code, {"kms_host": client.kms_host, "verdict": ""})
    evidence: dict[str, EvidenceValue] = {
        "kms_host": client.kms_host,
        HOST_RECORD: record.name,
        "license_status": record.license_status,
        "kms_role": record.kms_role,
        "os": record.os_caption,
        "current_count": record.current_count,
    }
    verdict, summary = _kms_host_verdict(client, record)
    evidence["verdict"] = verdict
    return Finding(CHECK_KMS_HOST, Severity.FAIL if verdict else Severity.OK, summary, code, evidence)


def _kms_host_verdict(client: KmsClient, record: KmsHostLike) -> tuple[str, str]:
    name = record.name
    if record.unreachable:
        why = f"{record.last_failure_class}: {record.last_failure_reason}" if record.last_failure_class else ""
        return "unreachable", f"KMS host {name} could not be polled ({why or 'never read'})"
    if not record.is_windows_kms_host:
        role = " for Office only" if record.kms_role == "office" else ""
        what = f"is a KMS host{role}, not a Windows KMS host" if record.kms_role else "is not a KMS host"
        return "not_kms_host", f"{name} {what}; this client is pointed at it"
    if client.error_code == "0xC004F041" and record.license_status != LicenseStatus.LICENSED.value:
        return "not_activated", f"KMS host {name} is not activated itself ({record.license_status})"
    if (
        client.error_code == "0xC004F042"
        and can_activate(record.os_version, record.os_caption, client.os_version, client.os_caption) is False
    ):
        host_os = windows_name(record.os_version, record.os_caption) or record.os_caption
        client_os = windows_name(client.os_version, client.os_caption) or client.os_caption
        return "too_old", f"KMS host {name} on {host_os} cannot activate {client_os}"
    count = "" if record.current_count is None else f", count {record.current_count}"
    return "", f"KMS host {name}: an activated Windows KMS host{count}"


def _count_for_unknown_kind(client: KmsClient, count: int, related: str | None) -> Finding:
    """The verdict when the client's product type is unknown: only what holds for servers and workstations alike."""
    servers, workstations = required_count(True), required_count(False)
    evidence: dict[str, EvidenceValue] = {
        "kms_host": client.kms_host, "current_count": count, "required": None, "product_type": None
    }  # fmt: skip
    if count < servers:
        summary = f"KMS host {client.kms_host} has count {count}; any client needs at least {servers}"
        return Finding(CHECK_KMS_COUNT, Severity.FAIL, summary, related or "0xC004F038", evidence)
    if count < workstations:
        summary = (
            f"KMS host {client.kms_host} count {count} is enough for servers ({servers}), not for workstations "
            f"({workstations}); this host's product type could not be read"
        )
        return Finding(CHECK_KMS_COUNT, Severity.INFO, summary, related, evidence)
    return Finding(CHECK_KMS_COUNT, Severity.OK, f"KMS host {client.kms_host} count {count} >= {workstations}", related,
                   evidence)  # fmt: skip


def _kind(client: KmsClient) -> str:
    return "server" if client.is_server else "workstation"
