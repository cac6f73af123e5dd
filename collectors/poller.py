"""Polling one host (``poll_host``) and whole runs (``run_poll``).

``poll_host`` opens one ``Protocol`` (one TCP connection) for the host, reads the WMI classes under
the host's deadline, then parses, classifies and diagnoses; it never raises for the host's fault
and returns a ``HostObservation`` or a ``HostFailure``. ``run_poll`` drives many hosts with worker
threads, writes results in batches through ``models.store`` (spooling them when the database is
away), runs the ``kms_count`` post-pass and closes the run as complete or incomplete. Rendering
progress is the caller's business (a callback).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from winrm.exceptions import WinRMOperationTimeoutError, WinRMTransportError, WSManFaultError
from winrm.protocol import Protocol

from collectors import classify, diagnose, kms_pass, parse, wmi
from collectors.credentials import Credential, log_to_stderr, missing_reason, redact
from collectors.errors import WSMAN_ACCESS_DENIED, PollError, ProtocolError, map_transport_errors
from collectors.inventory import Target
from collectors.probes import Probes, TcpAnswer
from collectors.spool import Spool, SpooledBatch
from collectors.transport import COUNTER, Deadline, ExchangeCounter, WsmanOptions
from collectors.wsman import ProtocolFactory, close_protocol, enumerate_instances, open_protocol
from models import db, store
from models.enums import ActivationType, FailureClass, ProductType, RunStatus
from models.records import HostFailure, HostObservation, HostResult, KmsHostCounters

log = logging.getLogger("collectors")

DB_RETRY_S = 10.0
PARTIAL_SHOWN = 100  # hosts with unread classes listed by name in a run's summary
STOP_GRACE_S = 2.0


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


# --- one host ------------------------------------------------------------------------------------


def poll_host(target: Target, ctx: PollContext) -> HostResult:
    """Read, classify and diagnose one host; a host's fault comes back as a ``HostFailure``."""
    credential = ctx.credentials.get(target.credential)
    if credential is None:
        return HostFailure(target.host, ctx.now(), FailureClass.AUTH, missing_reason(target.credential))
    probe_deadline = time.monotonic() + ctx.host_timeout_s
    try:
        with map_transport_errors():
            readings = read_host(target, credential, ctx)
        # Diagnosis gets what is left of the host's budget, and at least a moment to answer.
        return observe(target, readings, ctx, deadline=max(probe_deadline, time.monotonic() + MIN_PROBE_S))
    except PollError as exc:
        return HostFailure(target.host, ctx.now(), exc.failure_class, redact(exc.reason, [credential]))


def read_host(target: Target, credential: Credential, ctx: PollContext) -> HostReadings:
    """One connection, one Enumerate per class; raises foreign exceptions for the caller to map."""
    protocol = ctx.protocol_factory(target, credential, ctx.options, Deadline(ctx.host_timeout_s, ctx.monotonic))
    try:
        reader = _ClassReader(protocol, target.endpoint, ctx.options.operation_timeout_s)
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
    reader: _ClassReader, products: Sequence[parse.LicensingProduct], ctx: PollContext
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


class _ClassReader:
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


MIN_PROBE_S = 1.0


def observe(
    target: Target, readings: HostReadings, ctx: PollContext, *, deadline: float | None = None
) -> HostObservation:
    """Classify and diagnose what was read from a host; probes end by ``deadline`` (``time.monotonic``)."""
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
    deadline: float | None,
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


# --- a run ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunOptions:
    concurrency: int = 64
    run_timeout_s: float = 3600.0
    batch_size: int = 250
    flush_interval_s: float = 2.0
    collector: str = field(default_factory=socket.gethostname)
    shard: str | None = None
    # Worker processes polling disjoint slices (only this process writes); None: AUTO_PROCESSES for
    # runs of at least AUTO_PROCESSES_MIN_HOSTS hosts, else threads in this process alone.
    processes: int | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """Counts after each host, for progress bars and log lines."""

    total: int
    done: int
    failed: int
    elapsed_s: float
    last: HostResult | None = None


@dataclass(slots=True)
class RunSummary:
    """What a run did; ``status`` is ``complete`` unless it was interrupted or hit its deadline."""

    run_id: int | None = None
    status: RunStatus = RunStatus.RUNNING
    hosts_total: int = 0
    succeeded: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    license_statuses: Counter[str] = field(default_factory=Counter)
    error_codes: Counter[str] = field(default_factory=Counter)
    duration_s: float = 0.0
    batches_written: int = 0
    batches_spooled: int = 0
    replayed_batches: int = 0
    database_error: str | None = None
    stopped_by: str | None = None
    signin: Counter[str] = field(default_factory=Counter)
    requests: int = 0  # HTTP requests sent to hosts, worker processes included
    connections: int = 0
    event_reads: int = 0  # hosts whose SPP event log was read
    renewal_event_reads: int = 0  # of those, hosts read only because a Licensed KMS client missed renewals
    unread_classes: Counter[str] = field(default_factory=Counter)
    partial_hosts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the first PARTIAL_SHOWN of them

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def rate(self) -> float:
        return (self.succeeded + self.failed) / self.duration_s if self.duration_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status.value,
            "hosts_total": self.hosts_total,
            "polled": self.succeeded + self.failed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "failures": dict(sorted(self.failures.items())),
            "license_statuses": dict(sorted(self.license_statuses.items())),
            "error_codes": dict(self.error_codes.most_common()),
            "duration_s": round(self.duration_s, 3),
            "hosts_per_s": round(self.rate, 2),
            "batches_written": self.batches_written,
            "batches_spooled": self.batches_spooled,
            "replayed_batches": self.replayed_batches,
            "database_error": self.database_error,
            "stopped_by": self.stopped_by,
            "signin": dict(sorted(self.signin.items())),
            "http_requests": self.requests,
            "connections": self.connections,
            "event_reads": self.event_reads,
            "renewal_event_reads": self.renewal_event_reads,
            "unread_classes": dict(sorted(self.unread_classes.items())),
            "partial_hosts": {host: list(classes) for host, classes in self.partial_hosts.items()},
        }

    def count(self, result: HostResult) -> None:
        if isinstance(result, HostFailure):
            self.failures[result.failure_class.value] += 1
            return
        self.succeeded += 1
        for product in result.products[:1]:
            label = product.license_status.value if product.product_id else "no Windows key"
            self.license_statuses[label] += 1
        for code in {p.error_code for p in result.products if p.error_code}:
            self.error_codes[code] += 1
        if result.signin:
            self.signin[result.signin] += 1
        self.unread_classes.update(result.unread)
        if result.unread and len(self.partial_hosts) < PARTIAL_SHOWN:
            self.partial_hosts[result.host] = result.unread


class ResultWriter:
    """Writes batches through the store; while the database is away, batches go to the spool."""

    def __init__(
        self, engine: Engine | None, spool: Spool, summary: RunSummary, monotonic: Callable[[], float]
    ) -> None:
        self.engine = engine
        self.spool = spool
        self.summary = summary
        self.monotonic = monotonic
        self.down_since: float | None = None if engine is not None else monotonic()
        self.replayed_clients: list[diagnose.KmsClient] = []

    def write(self, results: Sequence[HostResult]) -> None:
        if not results:
            return
        batch = SpooledBatch(uuid.uuid4().hex, self.summary.run_id, tuple(results))
        if self._database_usable():
            try:
                self._write_db(batch)
                self.summary.batches_written += 1
                return
            except SQLAlchemyError as exc:
                self._went_down(exc)
        self.spool.write(batch)  # SpoolError ends the run: nowhere left to keep results
        self.summary.batches_spooled += 1

    def _database_usable(self) -> bool:
        if self.engine is None:
            return False
        return self.down_since is None or self.monotonic() - self.down_since >= DB_RETRY_S

    def _write_db(self, batch: SpooledBatch) -> None:
        assert self.engine is not None
        with self.engine.begin() as conn:
            store.write_results(conn, batch.run_id, batch.results, batch_id=batch.batch_id)
        self.down_since = None

    def _went_down(self, exc: SQLAlchemyError) -> None:
        reason = _db_reason(exc)
        if self.down_since is None:
            log.warning("database unavailable, spooling results to %s: %s", self.spool.directory, reason)
        self.summary.database_error = reason
        self.down_since = self.monotonic()

    def replay(self) -> int:
        """Write spooled batches back, oldest first; stops at the first database error."""
        replayed = 0
        if self.engine is None:
            return 0
        for batch in self.spool.pending():
            try:
                self._write_db(batch)
            except SQLAlchemyError as exc:
                self._went_down(exc)
                break
            Spool.remove(batch)
            replayed += 1
            # Their kms_count verdicts were never judged: the database was away at the end of their run.
            observations = (r for r in batch.results if isinstance(r, HostObservation))
            self.replayed_clients.extend(c for c in map(kms_pass.observed_client, observations) if c is not None)
        self.summary.replayed_batches += replayed
        if replayed:
            log.info("replayed %d spooled batch(es)", replayed)
        return replayed


def _db_reason(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    return text.split(" [SQL:")[0][:200]


@dataclass
class _Dispatcher:
    """Worker threads pulling targets and pushing results; ``stop`` ends dispatching."""

    targets: Iterable[Target]
    ctx: PollContext
    concurrency: int
    results: queue.Queue[HostResult | None] = field(default_factory=queue.Queue)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._iterator = iter(self.targets)
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._work, name=f"poll-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def workers(self) -> int:
        return len(self._threads)

    def close(self) -> None:
        """Threads are daemons; one stuck past its deadline dies with the process."""

    def items(self, timeout: float, *, stopping: bool = False) -> list[HostResult | None]:
        """What arrived within ``timeout``: results and ``None`` for each worker that finished."""
        try:
            return [self.results.get(timeout=timeout)]
        except queue.Empty:
            return []

    def _next(self) -> Target | None:
        with self._lock:
            return None if self.stop.is_set() else next(self._iterator, None)

    def _work(self) -> None:
        try:
            while (target := self._next()) is not None:
                self.results.put(safe_poll(target, self.ctx))
        finally:
            self.results.put(None)


# --- worker processes ----------------------------------------------------------------------------
#
# One interpreter spends most of a host's CPU in requests, NTLM sealing and XML under one GIL; with
# ``processes`` > 1 each child polls its own slice with threads and sends the ``HostResult``s back,
# and the parent alone writes to the database. A child ends with its exchange counts.

PROCESS_JOIN_S = 5.0
# Measured with bench/bench_poll.py on 2 cores, 2,000 hosts: 1 process 110.8 hosts/s, 2: 140.1,
# 3: 144.1, 4: 139.1. Starting a process costs about a second, so small runs stay in one.
AUTO_PROCESSES = 2
AUTO_PROCESSES_MIN_HOSTS = 1000


@dataclass(frozen=True, slots=True)
class _ChildDone:
    """A worker process's last message: it finished its slice; its exchange counts."""

    counter: ExchangeCounter


@dataclass
class _ProcessDispatcher:
    """Child processes polling disjoint slices of the targets; same interface as ``_Dispatcher``.

    Each child has its own pipe, written only by that child, so a child that dies (killed, out of
    memory, a crash in a native library) cannot corrupt or lock another's channel. A dead child is
    noticed by the end of its pipe or, on an idle tick, by its exit code; every host of its slice
    it had not reported becomes a failure, so nothing is lost and the run does not wait for it.
    """

    targets: Sequence[Target]
    ctx: PollContext
    concurrency: int
    processes: int

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process that has threads
        self.stop: Any = context.Event()
        threads = max(1, self.concurrency // self.processes)
        count = min(self.processes, len(self.targets))
        self._unreported = [{t.host for t in self.targets[k::count]} for k in range(count)]
        self._readers: dict[Any, int] = {}
        self._children: list[Any] = []
        for k in range(count):
            reader, writer = context.Pipe(duplex=False)
            child = context.Process(
                target=_child_poll,
                args=(self.targets[k::count], self.ctx, threads, writer, self.stop),
                name=f"poll-process-{k}",
                daemon=True,
            )
            child.start()
            writer.close()  # the child holds the only write end: its death ends the pipe
            self._readers[reader] = k
            self._children.append(child)

    @property
    def workers(self) -> int:
        return len(self._children)

    def items(self, timeout: float, *, stopping: bool = False) -> list[HostResult | None]:
        """Results that arrived within ``timeout``, and ``None`` for each child that finished or died.

        While ``stopping``, a dead child's unreported hosts are abandoned like those of live children.
        """
        exited = [r for r, k in self._readers.items() if self._children[k].exitcode is not None]
        ready = multiprocessing.connection.wait(list(self._readers), timeout)
        out: list[HostResult | None] = []
        for reader in ready:
            out.extend(self._receive(reader, stopping))
        if not ready:
            # Nothing arrived although these had exited before the wait: their pipes are drained.
            for reader in exited:
                out.extend(self._lost(reader, stopping))
        return out

    def _receive(self, reader: Any, stopping: bool) -> list[HostResult | None]:
        try:
            item = reader.recv()
        except (EOFError, OSError):
            return self._lost(reader, stopping)
        if isinstance(item, _ChildDone):
            COUNTER.connections += item.counter.connections
            COUNTER.requests += item.counter.requests
            COUNTER.event_reads += item.counter.event_reads
            COUNTER.renewal_event_reads += item.counter.renewal_event_reads
            self._forget(reader)
            return [None]
        self._unreported[self._readers[reader]].discard(item.host)
        return [item]

    def _lost(self, reader: Any, stopping: bool) -> list[HostResult | None]:
        """A child that ended without its last message: its unreported hosts fail; it counts as finished."""
        k = self._readers[reader]
        child = self._children[k]
        child.join(PROCESS_JOIN_S)
        self._forget(reader)
        if stopping or not self._unreported[k]:
            return [None]
        reason = f"worker process died (exit {child.exitcode})"
        log.error("%s: %d host(s) of its slice were not polled", reason, len(self._unreported[k]))
        now = self.ctx.now()
        lost = [HostFailure(host, now, FailureClass.PROTOCOL, reason) for host in sorted(self._unreported[k])]
        self._unreported[k].clear()
        return [*lost, None]

    def _forget(self, reader: Any) -> None:
        del self._readers[reader]
        reader.close()

    def close(self) -> None:
        self.stop.set()
        until = time.monotonic() + PROCESS_JOIN_S
        for child in self._children:
            child.join(max(0.0, until - time.monotonic()))
            if child.is_alive():
                child.terminate()  # results in flight past the grace are abandoned, as with threads
                child.join(PROCESS_JOIN_S)
        for reader in list(self._readers):
            self._forget(reader)


def _child_poll(targets: Sequence[Target], ctx: PollContext, threads: int, out: Any, stop: Any) -> None:
    """A worker process: poll ``targets`` with threads, send results, end with the exchange counts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    log_to_stderr(ctx.credentials.values())  # a spawned process starts without the parent's redacting handler
    dispatcher = _Dispatcher(targets, ctx, max(1, min(threads, len(targets))))
    dispatcher.start()
    running = dispatcher.workers
    while running:
        if stop.is_set():
            dispatcher.stop.set()
        try:
            item = dispatcher.results.get(timeout=0.2)
        except queue.Empty:
            continue
        if item is None:
            running -= 1
        else:
            out.send(item)
    out.send(_ChildDone(replace(COUNTER)))
    out.close()


def safe_poll(target: Target, ctx: PollContext) -> HostResult:
    """``poll_host``, with a bug turned into a recorded failure instead of a dead worker."""
    try:
        return poll_host(target, ctx)
    except Exception as exc:
        log.exception("internal error while polling %s", target.host)
        credentials = list(ctx.credentials.values())
        reason = redact(f"internal error: {type(exc).__name__}: {exc}", credentials)
        return HostFailure(target.host, ctx.now(), FailureClass.PROTOCOL, " ".join(reason.split())[:240])


def run_poll(
    targets: Sequence[Target],
    ctx: PollContext,
    *,
    database_url: str,
    spool: Spool,
    options: RunOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> RunSummary:
    """Poll ``targets`` and store the results; raises ``SpoolError`` if results cannot be kept anywhere.

    KeyboardInterrupt or ``stop`` ends the run early: what was collected is written and the run is
    marked incomplete.
    """
    options = options or RunOptions()
    summary = RunSummary(hosts_total=len(targets))
    engine = _open_engine(database_url, summary)
    writer = ResultWriter(engine, spool, summary, ctx.monotonic)
    writer.replay()
    summary.run_id = _start_run(engine, writer, targets, options, ctx.now())
    started = ctx.monotonic()
    exchanges = replace(COUNTER)
    clients: list[diagnose.KmsClient] = []
    try:
        _drive(targets, ctx, options, writer, summary, clients, on_progress, stop or threading.Event(), started)
    finally:
        summary.duration_s = ctx.monotonic() - started
        summary.requests = COUNTER.requests - exchanges.requests
        summary.connections = COUNTER.connections - exchanges.connections
        summary.event_reads = COUNTER.event_reads - exchanges.event_reads
        summary.renewal_event_reads = COUNTER.renewal_event_reads - exchanges.renewal_event_reads
        _finish(engine, writer, summary, clients, ctx.now(), ctx.probes)
        if engine is not None:
            engine.dispose()
    return summary


def _open_engine(url: str, summary: RunSummary) -> Engine | None:
    try:
        return db.open_database(url)
    except SQLAlchemyError as exc:
        summary.database_error = _db_reason(exc)
        log.warning("database unavailable at start, results will be spooled: %s", summary.database_error)
        return None


def _start_run(
    engine: Engine | None, writer: ResultWriter, targets: Sequence[Target], options: RunOptions, now: datetime
) -> int | None:
    if engine is None or not writer._database_usable():
        return None
    try:
        with engine.begin() as conn:
            abandoned = close_abandoned_runs(conn, options.collector, now)
            if abandoned:
                log.warning(
                    "marked %d run(s) of %s left running by a stopped collector as incomplete",
                    abandoned,
                    options.collector,
                )
            store.upsert_inventory(conn, [t.identity for t in targets], now=now)
            return store.start_run(
                conn,
                collector=options.collector,
                shard=options.shard,
                hosts_total=len(targets),
                started_at=now,
                pid=os.getpid(),
            )
    except SQLAlchemyError as exc:
        writer._went_down(exc)
        return None


def close_abandoned_runs(
    conn: Any, collector: str, now: datetime, is_alive: Callable[[int], bool] | None = None
) -> int:
    """Mark ``collector``'s runs still 'running' whose process is gone (killed collector) as incomplete."""
    alive = is_alive or pid_alive
    pids = store.running_run_pids(conn, collector=collector)
    return store.mark_abandoned_runs(conn, collector=collector, alive_pids=[p for p in pids if alive(p)], now=now)


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this machine."""
    if os.name == "nt":
        return True  # os.kill would terminate it on Windows; keep its runs rather than guess
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _drive(
    targets: Sequence[Target],
    ctx: PollContext,
    options: RunOptions,
    writer: ResultWriter,
    summary: RunSummary,
    clients: list[diagnose.KmsClient],
    on_progress: Callable[[Progress], None] | None,
    stop: threading.Event,
    started: float,
) -> None:
    dispatcher = _dispatcher(targets, ctx, options)
    dispatcher.start()
    pending: list[HostResult] = []
    last_flush = ctx.monotonic()
    running = dispatcher.workers
    try:
        while running:
            if stop.is_set() or ctx.monotonic() - started > options.run_timeout_s:
                summary.stopped_by = summary.stopped_by or ("stop" if stop.is_set() else "run deadline")
                dispatcher.stop.set()
                running = _drain(dispatcher, running, pending, summary, clients, on_progress, ctx, started)
                break
            for item in dispatcher.items(0.2):
                if item is None:
                    running -= 1
                else:
                    _accept(item, pending, summary, clients, on_progress, ctx, started)
            if len(pending) >= options.batch_size or (
                pending and ctx.monotonic() - last_flush > options.flush_interval_s
            ):
                writer.write(pending)
                pending = []
                last_flush = ctx.monotonic()
    except KeyboardInterrupt:
        summary.stopped_by = "interrupted"
        dispatcher.stop.set()
        _drain(dispatcher, running, pending, summary, clients, on_progress, ctx, started)
    finally:
        writer.write(pending)
        dispatcher.close()
    if summary.stopped_by is None:
        summary.status = RunStatus.COMPLETE
    else:
        summary.status = RunStatus.INCOMPLETE


def _dispatcher(targets: Sequence[Target], ctx: PollContext, options: RunOptions) -> _Dispatcher | _ProcessDispatcher:
    concurrency = max(1, min(options.concurrency, len(targets) or 1))
    processes = max(1, min(_process_count(options, targets, ctx), concurrency))
    if processes == 1:
        return _Dispatcher(targets, ctx, concurrency)
    return _ProcessDispatcher(targets, ctx, concurrency, processes)


def _process_count(options: RunOptions, targets: Sequence[Target], ctx: PollContext) -> int:
    if options.processes is not None:
        return options.processes
    if len(targets) < AUTO_PROCESSES_MIN_HOSTS or (os.cpu_count() or 1) < 2:
        return 1
    try:
        pickle.dumps(ctx)
    except (pickle.PicklingError, TypeError, AttributeError):
        return 1  # a context built from local callables cannot reach another process
    return AUTO_PROCESSES


def _drain(
    dispatcher: _Dispatcher | _ProcessDispatcher,
    running: int,
    pending: list[HostResult],
    summary: RunSummary,
    clients: list[diagnose.KmsClient],
    on_progress: Callable[[Progress], None] | None,
    ctx: PollContext,
    started: float,
) -> int:
    """Collect results of hosts already in flight for a short grace; the rest are abandoned."""
    until = ctx.monotonic() + STOP_GRACE_S
    while running and ctx.monotonic() < until:
        for item in dispatcher.items(0.1, stopping=True):
            if item is None:
                running -= 1
            else:
                _accept(item, pending, summary, clients, on_progress, ctx, started)
    return running


def _accept(
    result: HostResult,
    pending: list[HostResult],
    summary: RunSummary,
    clients: list[diagnose.KmsClient],
    on_progress: Callable[[Progress], None] | None,
    ctx: PollContext,
    started: float,
) -> None:
    pending.append(result)
    summary.count(result)
    if isinstance(result, HostObservation):
        client = kms_pass.observed_client(result)
        if client is not None:
            clients.append(client)
    else:
        log.info("%s: %s: %s", result.host, result.failure_class.value, result.reason)
    if on_progress is not None:
        done = summary.succeeded + summary.failed
        on_progress(Progress(summary.hosts_total, done, summary.failed, ctx.monotonic() - started, result))


def _finish(
    engine: Engine | None,
    writer: ResultWriter,
    summary: RunSummary,
    clients: Sequence[diagnose.KmsClient],
    now: datetime,
    probes: Probes | None = None,
) -> None:
    if engine is None:
        return
    try:
        writer.replay()
        with engine.begin() as conn:
            kms_pass.apply_kms_pass(conn, [*clients, *writer.replayed_clients], now, probes)
            if summary.run_id is not None:
                store.finish_run(conn, summary.run_id, finished_at=now, status=summary.status)
            store.refresh_rollup(conn, now.date())
    except SQLAlchemyError as exc:
        writer._went_down(exc)


__all__ = [
    "HostReadings",
    "PollContext",
    "Progress",
    "ResultWriter",
    "RunOptions",
    "RunSummary",
    "close_abandoned_runs",
    "observe",
    "poll_host",
    "read_host",
    "run_poll",
    "safe_poll",
]
