"""What a run knows while it runs: its options, the summary it builds, the results waiting to be written
and the KMS clients it saw. ``RunState.accept`` takes each host's result as it arrives.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collectors import diagnose
from collectors.connection import ExchangeCounter
from collectors.run import kms_pass
from collectors.run.host import PollContext
from models import hostfacts
from models.enums import RunStatus
from models.records import HostFailure, HostObservation, HostResult

log = logging.getLogger("collectors")

PARTIAL_SHOWN = 100  # hosts with unread classes listed by name in a run's summary


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
    set_aside_count: int = 0  # results the database refused, kept in the spool's dead-letter folder
    set_aside_hosts: dict[str, str] = field(default_factory=dict)  # the first PARTIAL_SHOWN: host -> reason
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
            "set_aside": self.set_aside_count,
            "set_aside_hosts": dict(self.set_aside_hosts),
            "unread_classes": dict(sorted(self.unread_classes.items())),
            "partial_hosts": {host: list(classes) for host, classes in self.partial_hosts.items()},
        }

    def set_aside(self, host: str, reason: str) -> None:
        """A result the database refused (the host was polled, its row could not be stored)."""
        self.set_aside_count += 1
        if len(self.set_aside_hosts) < PARTIAL_SHOWN:
            self.set_aside_hosts[host] = reason

    def count(self, result: HostResult) -> None:
        if isinstance(result, HostFailure):
            self.failures[result.failure_class.value] += 1
            return
        self.succeeded += 1
        main = hostfacts.main_product(result.products)
        state = hostfacts.host_state(main.license_status.value, main.renewal_failing)
        if state is not None:
            self.license_statuses[state.value] += 1
        for code in {p.error_code for p in result.products if p.error_code}:
            self.error_codes[code] += 1
        if result.signin:
            self.signin[result.signin] += 1
        self.unread_classes.update(result.unread)
        if result.unread and len(self.partial_hosts) < PARTIAL_SHOWN:
            self.partial_hosts[result.host] = result.unread


@dataclass(slots=True)
class RunState:
    """The run in progress: counts, results not yet written, and this run's view of its KMS clients."""

    ctx: PollContext
    summary: RunSummary
    started: float
    on_progress: Callable[[Progress], None] | None = None
    pending: list[HostResult] = field(default_factory=list)
    clients: list[diagnose.KmsClient] = field(default_factory=list)

    def accept(self, result: HostResult) -> None:
        """Count one host's result and keep it for the next batch."""
        self.pending.append(result)
        self.summary.count(result)
        if isinstance(result, HostObservation):
            client = kms_pass.observed_client(result)
            if client is not None:
                self.clients.append(client)
        else:
            log.info("%s: %s: %s", result.host, result.failure_class.value, result.reason)
        if self.on_progress is not None:
            summary = self.summary
            done = summary.succeeded + summary.failed
            self.on_progress(Progress(summary.hosts_total, done, summary.failed, self.elapsed(), result))

    def take_pending(self) -> list[HostResult]:
        """The results waiting to be written; the list starts over."""
        taken, self.pending = self.pending, []
        return taken

    def elapsed(self) -> float:
        return self.ctx.monotonic() - self.started

    def stop(self, reason: str) -> None:
        """The run ends early; the first reason given is the one reported."""
        self.summary.stopped_by = self.summary.stopped_by or reason

    def count_exchanges(self, counted: ExchangeCounter) -> None:
        self.summary.requests = counted.requests
        self.summary.connections = counted.connections
        self.summary.event_reads = counted.event_reads
        self.summary.renewal_event_reads = counted.renewal_event_reads
