"""One host: read its WMI classes over one connection, then classify and diagnose what was read.

``poll_host`` never raises for the host's fault: it returns a ``HostObservation`` or a ``HostFailure``.
A host gets one ``Deadline`` (on the context's clock) for its sign-in, reads and diagnosis probes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from winrm.exceptions import WinRMOperationTimeoutError, WinRMTransportError, WSManFaultError
from winrm.protocol import Protocol

from collectors import classify, diagnose, parse, wmi
from collectors.connection import COUNTER
from collectors.credentials import Credential, missing_reason, redact
from collectors.deadline import Deadline
from collectors.errors import WSMAN_ACCESS_DENIED, PollError, ProtocolError, map_transport_errors
from collectors.inventory import Target
from collectors.probes import Probes, TcpAnswer
from collectors.transport import WsmanOptions
from collectors.wsman import ProtocolFactory, close_protocol, enumerate_instances, open_protocol
from models.enums import ActivationType, FailureClass, ProductType
from models.records import HostFailure, HostObservation, HostResult, KmsHostCounters

log = logging.getLogger("collectors")

MIN_PROBE_S = 1.0  # a host whose reads used its whole deadline still gets this long for its checks


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PollContext:
    """Everything ``poll_host`` needs besides the target; every dependency is replaceable."""

    credentials: Mapping[str, Credential]
    probes: Probes
    options: WsmanOptions = field(default_factory=WsmanOptions)
    host_timeout_s: float = 30.0
    grace_warning_days: int = 14
    protocol_factory: ProtocolFactory = open_protocol
    now: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic


@dataclass(frozen=True, slots=True)
class HostReadings:
    """The typed WMI data read from one host; a class that could not be read is listed in ``missing``."""

    products: tuple[parse.LicensingProduct, ...]
    service: parse.LicensingService | None
    os: parse.OsInfo | None
    computer: parse.ComputerInfo | None
    events: tuple[parse.SppEvent, ...]
    os_received_at: datetime
    missing: tuple[str, ...] = ()
    signin: str | None = None
    address: str | None = None
    other_kms: tuple[parse.OtherKmsProduct, ...] = ()  # KMS host products of other applications (Office)


def poll_host(target: Target, ctx: PollContext) -> HostResult:
    """Read, classify and diagnose one host; a host's fault comes back as a ``HostFailure``."""
    credential = ctx.credentials.get(target.credential)
    if credential is None:
        return HostFailure(target.host, ctx.now(), FailureClass.AUTH, missing_reason(target.credential))
    deadline = Deadline(ctx.host_timeout_s, ctx.monotonic)
    try:
        with map_transport_errors():
            readings = read_host(target, credential, ctx, deadline)
        # Diagnosis gets what is left of the host's budget, and at least a moment to answer.
        return observe(target, readings, ctx, deadline=deadline.at_least(MIN_PROBE_S))
    except PollError as exc:
        return HostFailure(target.host, ctx.now(), exc.failure_class, redact(exc.reason, [credential]))


def read_host(
    target: Target, credential: Credential, ctx: PollContext, deadline: Deadline | None = None
) -> HostReadings:
    """One connection, one Enumerate per class; raises foreign exceptions for the caller to map."""
    deadline = deadline or Deadline(ctx.host_timeout_s, ctx.monotonic)
    protocol = ctx.protocol_factory(target, credential, ctx.options, deadline)
    try:
        reader = ClassReader(protocol, target.endpoint, ctx.options.operation_timeout_s)
        products = classify.windows_products(parse.product(i) for i in reader.read(wmi.PRODUCT))
        service = parse.first(reader.read(wmi.SERVICE))
        os_instance = parse.first(reader.read(wmi.OPERATING_SYSTEM))
        os_received_at = ctx.now()
        computer = parse.first(reader.read(wmi.COMPUTER_SYSTEM))
        events = _read_events(reader, products, ctx)
        other_kms = reader.read(wmi.OTHER_KMS_PRODUCTS) if _hosts_kms_elsewhere(products, service) else ()
    finally:
        close_protocol(protocol)
    signin = getattr(protocol.transport, "mechanism", None)  # a test's own transport may not say
    address = getattr(protocol.transport, "address", None)
    return HostReadings(
        products=products,
        service=parse.service(service) if service else None,
        os=parse.os_info(os_instance) if os_instance else None,
        computer=parse.computer_info(computer) if computer else None,
        events=tuple(e for e in (parse.spp_event(i) for i in events) if e is not None),
        os_received_at=os_received_at,
        missing=tuple(reader.missing),
        signin=signin if isinstance(signin, str) else None,
        address=address if isinstance(address, str) else None,
        other_kms=tuple(parse.other_kms_product(i) for i in other_kms),
    )


def _read_events(
    reader: ClassReader, products: Sequence[parse.LicensingProduct], ctx: PollContext
) -> tuple[parse.WmiInstance, ...]:
    """The SPP events, when a product's error code can only come from them (counted for the run's summary)."""
    if not classify.needs_events(products):
        return ()
    COUNTER.event_reads += 1
    if not classify.needs_events(products, renewals=False):
        COUNTER.renewal_event_reads += 1
    return reader.read(wmi.spp_events(ctx.now()))


def _hosts_kms_elsewhere(products: Sequence[parse.LicensingProduct], service: parse.WmiInstance | None) -> bool:
    """A machine-wide KMS host flag with no Windows KMS host product: it hosts KMS for another application."""
    if service is None or not parse.service(service).is_kms_machine:
        return False
    return not any(classify.activation_type(p, None) is ActivationType.KMS_HOST for p in products)


class ClassReader:
    """Reads WMI classes over one Protocol; an optional class that faults only loses its fields."""

    def __init__(self, protocol: Protocol, endpoint: str, operation_timeout_s: int) -> None:
        self.protocol = protocol
        self.endpoint = endpoint
        self.operation_timeout_s = operation_timeout_s
        self.missing: list[str] = []

    def read(self, query: wmi.WqlQuery) -> tuple[parse.WmiInstance, ...]:
        try:
            return enumerate_instances(
                self.protocol, query, to=self.endpoint, operation_timeout_s=self.operation_timeout_s
            )
        except _CLASS_FAULTS as exc:
            if query.required or _denied(exc):
                raise
            log.debug("%s: %s not read: %s", self.endpoint, query.class_name, type(exc).__name__)
            self.missing.append(query.class_name)
            return ()


# What one WMI class can go wrong with while the connection and the host's deadline stay usable: a
# WS-Man fault, the host's own operation timeout, an HTTP error, a reply over the cap (the transport
# then reconnects) or one that does not parse. The host's deadline (PollTimeout) is never among them.
_CLASS_FAULTS = (WSManFaultError, WinRMOperationTimeoutError, WinRMTransportError, ProtocolError)


def _denied(exc: Exception) -> bool:
    if isinstance(exc, WSManFaultError):
        return exc.wsman_fault_code in WSMAN_ACCESS_DENIED
    return isinstance(exc, WinRMTransportError) and exc.code == 401


def observe(
    target: Target, readings: HostReadings, ctx: PollContext, *, deadline: Deadline | None = None
) -> HostObservation:
    """Classify and diagnose what was read from a host; its probes end by ``deadline``."""
    states = classify.product_states(readings.products, readings.service, readings.events)
    os_info, computer = readings.os, readings.computer
    product_type = ProductType.from_wmi(os_info.product_type) if os_info and os_info.product_type else None
    facts = diagnose.HostFacts(
        host=target.host,
        domain=_srv_domain(readings),
        product_type=product_type,
        products=states,
        host_time=os_info.local_time if os_info else None,
        collector_time=readings.os_received_at,
    )
    skew = (facts.host_time - facts.collector_time).total_seconds() if facts.host_time else None
    computer_name = (computer.name if computer else None) or (os_info.computer_name if os_info else None)
    domain = computer.domain if computer else None
    return HostObservation(
        host=target.host,
        observed_at=ctx.now(),
        computer_name=computer_name,
        domain=domain,
        os_caption=os_info.caption if os_info else None,
        os_version=os_info.version if os_info else None,
        product_type=product_type,
        clock_skew_seconds=skew,
        products=states,
        kms=_kms_counters(readings, states, computer_name, domain, target, ctx.probes, deadline),
        findings=diagnose.diagnose(facts, ctx.probes, grace_warning_days=ctx.grace_warning_days, deadline=deadline),
        signin=readings.signin,
        unread=readings.missing,
        address=readings.address,
    )


def _srv_domain(readings: HostReadings) -> str | None:
    """The DNS domain a client discovers its KMS host in; a workgroup machine has none to look up."""
    if readings.service and readings.service.lookup_domain:
        return readings.service.lookup_domain
    computer = readings.computer
    if computer is None or computer.part_of_domain is False or (computer.domain or "").upper() == "WORKGROUP":
        return None
    return computer.domain


def _kms_counters(
    readings: HostReadings,
    states: Sequence[Any],
    computer_name: str | None,
    domain: str | None,
    target: Target,
    probes: Probes,
    deadline: Deadline | None,
) -> KmsHostCounters | None:
    """The host's KMS counters: its Windows KMS host product's own, else another application's.

    Counts are kept per application: a Windows GVLK server that hosts KMS for Office is not a
    Windows KMS host, and its machine-wide count is Office's.
    """
    service = readings.service
    windows = next((p for p in readings.products if p.kms_counts and p.kms_counts.current_count is not None), None)
    is_host = any(s.activation_type.value == "KMS host" for s in states)
    if windows is not None and windows.kms_counts is not None:
        counts, application = windows.kms_counts, "windows"
    elif service is not None and service.counts.current_count is not None and (service.is_kms_machine or is_host):
        counts = service.counts
        application = "windows" if is_host else _other_application(readings.other_kms)
        if readings.other_kms and readings.other_kms[0].current_count is not None and not is_host:
            counts = replace(counts, current_count=readings.other_kms[0].current_count)
    else:
        return None
    port = (service.listening_port if service else None) or 1688
    name = f"{computer_name}.{domain}" if computer_name and domain else target.host
    return KmsHostCounters(
        current_count=counts.current_count or 0,
        total_requests=counts.total_requests,
        failed_requests=counts.failed_requests,
        licensed_requests=counts.licensed_requests,
        non_genuine_requests=counts.non_genuine_requests,
        listening_port=port,
        dns_publishing=service.dns_publishing if service else None,
        listening=_listening(probes.tcp(name, port, deadline=deadline)),
        application=application,
    )


def _other_application(products: Sequence[parse.OtherKmsProduct]) -> str:
    if any((p.application_id or "").lower() == wmi.OFFICE_APP_ID for p in products):
        return "office"
    return "other"


def _listening(answer: TcpAnswer) -> bool | None:
    """Unknown, not "closed", when the probe was never attempted (time ran out, or the run's cap)."""
    return answer.ok if answer.probed else None


def safe_poll(target: Target, ctx: PollContext) -> HostResult:
    """``poll_host``, with a bug turned into a recorded failure instead of a dead worker."""
    try:
        return poll_host(target, ctx)
    except Exception as exc:
        log.exception("internal error while polling %s", target.host)
        credentials = list(ctx.credentials.values())
        reason = redact(f"internal error: {type(exc).__name__}: {exc}", credentials)
        return HostFailure(target.host, ctx.now(), FailureClass.PROTOCOL, " ".join(reason.split())[:240])
