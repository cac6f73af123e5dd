"""The Prometheus exporter: fleet numbers from the query layer as gauges, served over HTTP.

``FleetCollector`` is a prometheus_client ``Collector``: each scrape calls ``collect()``, which reads
``models.metrics.fleet_metrics`` through ``DatabaseReader`` unless a read younger than ``cache_s`` seconds
is at hand; concurrent scrapes wait for the one read in progress instead of each querying the database.
When the database cannot be read, the scrape still answers: ``activation_monitor_database_up`` is 0 and
the fleet's numbers are left out (never served stale). ``serve`` binds the HTTP endpoint (IPv4 or IPv6)
and returns the running server. Nothing here decides when to stop; ``collectors.cli_metrics`` does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from wsgiref.simple_server import WSGIServer

from alembic.util.exc import CommandError
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from knowledge.kms import KMS_CLIENT_THRESHOLD, KMS_SERVER_THRESHOLD
from models import db
from models.metrics import FleetMetrics, Limits, fleet_metrics

PREFIX = "activation_monitor_"
DEFAULT_PORT = 9464  # the port the Prometheus project's port allocation list gives to exporters like this one
DEFAULT_CACHE_S = 15.0
log = logging.getLogger("collectors.metrics")


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What ``fleet_metrics`` needs from the settings."""

    stale_after: timedelta = timedelta(hours=2)
    grace_warning_days: int = 14
    client_threshold: int = KMS_CLIENT_THRESHOLD
    server_threshold: int = KMS_SERVER_THRESHOLD
    limits: Limits = field(default_factory=Limits)


class DatabaseReader:
    """Reads ``fleet_metrics`` from one database; a schema older than this version is a read error, never migrated."""

    def __init__(
        self, url: str, options: ReadOptions | None = None, *, now: Callable[[], datetime] | None = None
    ) -> None:
        self.url = url
        self.options = options or ReadOptions()
        self.now = now or (lambda: datetime.now(UTC))
        self._engine: Engine | None = None
        self._checked = False

    def __call__(self) -> FleetMetrics:
        if self._engine is None:
            self._engine = db.make_engine(self.url)
        if not self._checked:
            db.check_schema(self._engine)  # read only: a monitoring role may not migrate, and need not
            self._checked = True
        o = self.options
        with self._engine.connect() as conn:
            return fleet_metrics(
                conn,
                now=self.now(),
                stale_after=o.stale_after,
                grace_warning_days=o.grace_warning_days,
                client_threshold=o.client_threshold,
                server_threshold=o.server_threshold,
                limits=o.limits,
            )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


# What a failed read raises: the database or its driver, the migration, or the OS (a SQLite file's folder).
READ_ERRORS = (SQLAlchemyError, CommandError, OSError, db.SchemaOutOfDate)


class FleetCollector:
    """A prometheus_client collector serving ``read()``'s numbers, read at most once per ``cache_s``."""

    def __init__(
        self,
        read: Callable[[], FleetMetrics],
        *,
        cache_s: float = DEFAULT_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
        secret: str | None = None,
    ) -> None:
        self.read = read
        self.cache_s = cache_s
        self.clock = clock
        self.now = now or (lambda: datetime.now(UTC))
        self.secret = secret  # removed from logged errors (a database password)
        self._lock = threading.Lock()
        self._cached: FleetMetrics | None = None
        self._read_at: float | None = None
        self._up = False
        self._errors = 0
        self._reads = 0
        self._read_s = 0.0

    def collect(self) -> Iterable[Metric]:
        snapshot = self._snapshot()
        yield from self._health()
        if snapshot is not None:
            yield from families(snapshot, self.now())

    def _snapshot(self) -> FleetMetrics | None:
        with self._lock:
            fresh = self._read_at is not None and self.clock() - self._read_at < self.cache_s
            if not fresh:
                self._refresh()
            return self._cached if self._up else None

    def _refresh(self) -> None:
        started = self.clock()
        try:
            self._cached = self.read()
        except READ_ERRORS as exc:
            if self._up or self._errors == 0:
                log.warning("cannot read the database: %s", self._reason(exc))
            self._up, self._cached = False, None
            self._errors += 1
        else:
            if not self._up and self._errors:
                log.info("the database can be read again")
            self._up = True
            self._reads += 1
        self._read_at = self.clock()
        self._read_s = self._read_at - started

    def _reason(self, exc: BaseException) -> str:
        text = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
        return text.replace(self.secret, "***") if self.secret else text

    def _health(self) -> Iterator[Metric]:
        yield gauge("database_up", "1 when the last read of the database succeeded, else 0.", (), [((), self._up)])
        yield gauge("database_read_seconds", "How long the last read of the database took.", (), [((), self._read_s)])
        errors = CounterMetricFamily(PREFIX + "database_read_errors", "Reads of the database that failed.")
        errors.add_metric([], self._errors)
        yield errors
        reads = CounterMetricFamily(PREFIX + "database_reads", "Reads of the database that succeeded.")
        reads.add_metric([], self._reads)
        yield reads


def gauge(
    name: str, doc: str, labels: tuple[str, ...], rows: Iterable[tuple[tuple[str, ...], float | int | bool]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, doc, labels=list(labels))
    for values, value in rows:
        family.add_metric(list(values), float(value))
    return family


def families(m: FleetMetrics, now: datetime) -> Iterator[Metric]:
    """The fleet's gauges; ages are counted to ``now``, the moment of the scrape."""
    yield gauge(
        "hosts",
        "Hosts per site, activation type and Windows license status (as last read).",
        ("site", "activation_type", "license_status"),
        [(key, n) for key, n in sorted(m.hosts.items())],
    )
    yield gauge(
        "hosts_by_error_code",
        "Hosts reporting each activation error code (every known code, 0 when none).",
        ("code",),
        [((code,), n) for code, n in sorted(m.by_code.items())],
    )
    yield gauge(
        "hosts_unreachable",
        "Hosts whose last poll failed, per failure class.",
        ("class",),
        [((name,), n) for name, n in sorted(m.unreachable.items())],
    )
    yield gauge("hosts_stale", "Hosts with no successful poll within stale_after_hours.", (), [((), m.stale)])
    yield gauge(
        "hosts_renewal_failing",
        "Licensed KMS clients whose renewals fail (at risk).",
        (),
        [((), m.renewal_failing)],
    )
    yield gauge(
        "hosts_by_grace_end",
        "Hosts per time left in their grace or volume-activation period: expired, then ending within 1, 7, 14 "
        "or 30 days (each bucket excludes the earlier ones), or later.",
        ("within",),
        [((name,), n) for name, n in m.grace.items()],
    )
    yield gauge(
        "hosts_grace_ending_soon",
        "Hosts whose grace period ends within grace_warning_days, or has ended (the Overview's list).",
        (),
        [((), m.grace_warning)],
    )
    yield from _kms(m)
    yield from _runs(m, now)
    yield gauge(
        "label_values_folded",
        "Label values beyond their cap, counted under (other) or left out (KMS hosts, collectors).",
        ("label",),
        [((name,), n) for name, n in sorted(m.folded.items())],
    )


def _kms(m: FleetMetrics) -> Iterator[Metric]:
    labels = ("kms_host", "role")
    yield gauge(
        "kms_host_count",
        "A KMS host's latest count of machines that asked it to activate.",
        labels,
        [((k.host, k.role), k.count) for k in m.kms_hosts if k.count is not None],
    )
    yield gauge(
        "kms_host_threshold",
        "The count a KMS host needs: the client threshold for a Windows KMS host, else the server threshold.",
        labels,
        [((k.host, k.role), k.threshold) for k in m.kms_hosts],
    )
    yield gauge(
        "kms_host_clients", "Clients whose KMS name resolves to the KMS host.", labels,
        [((k.host, k.role), k.clients) for k in m.kms_hosts],
    )  # fmt: skip
    yield gauge(
        "kms_host_failing_clients",
        "Clients failing with an error code that points at their KMS host.",
        labels,
        [((k.host, k.role), k.failing_here) for k in m.kms_hosts],
    )
    yield gauge(
        "kms_host_health",
        "1 for each KMS host, labelled with its health as the KMS hosts page shows it.",
        (*labels, "state"),
        [((k.host, k.role, k.state), 1) for k in m.kms_hosts],
    )


def _runs(m: FleetMetrics, now: datetime) -> Iterator[Metric]:
    labels = ("collector", "shard")
    runs = [((r.collector, r.shard), r) for r in m.runs]
    yield gauge(
        "poll_run_duration_seconds",
        "Duration of each collector's newest finished poll run.",
        labels,
        [(key, r.duration_s) for key, r in runs],
    )
    yield gauge(
        "poll_run_age_seconds",
        "Seconds since each collector's newest poll run finished.",
        labels,
        [(key, max((now - r.finished_at).total_seconds(), 0.0)) for key, r in runs],
    )
    yield gauge(
        "poll_run_complete_age_seconds",
        "Seconds since each collector's newest complete poll run finished.",
        labels,
        [(key, max((now - r.last_complete_at).total_seconds(), 0.0)) for key, r in runs if r.last_complete_at],
    )
    yield gauge(
        "poll_run_complete",
        "1 when each collector's newest finished poll run completed, 0 when it stopped early.",
        labels,
        [(key, r.status == "complete") for key, r in runs],
    )
    yield gauge("poll_run_hosts", "Hosts in the newest finished poll run.", labels, [(k, r.hosts) for k, r in runs])
    yield gauge(
        "poll_run_succeeded", "Hosts read by the newest finished poll run.", labels,
        [(k, r.succeeded) for k, r in runs],
    )  # fmt: skip
    yield gauge(
        "poll_run_failures",
        "Hosts the newest finished poll run could not read, per failure class.",
        (*labels, "class"),
        [((*key, name), n) for key, r in runs for name, n in sorted(r.failures.items())],
    )


# --- serving ---------------------------------------------------------------------------------------


def registry_for(collector: FleetCollector) -> CollectorRegistry:
    """A registry of its own (not the process-wide default) with the fleet and the exporter's process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    return registry


def serve(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Serve ``registry`` on ``host:port`` (an IPv4 or IPv6 address, or a name) in a daemon thread.

    Raises ``OSError`` when the address cannot be used (unknown name, address in use, not this machine's).
    """
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


def password_of(url: str) -> str | None:
    """The password in a database URL, so messages can hide it."""
    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None
