"""Network probes run from the collector for diagnosis: the ``_vlmcs._tcp.<domain>`` SRV lookup
(dnspython) and a TCP connect to a KMS host's port. Answers are cached for the run, because many
clients share a domain and a KMS host. ``Probes`` is injected into the poller so tests and
benchmarks can use the simulator's DNS server (``dns_server``) or their own resolver.

Every probe is bounded: names and ports come from the polled hosts, so a hostile or broken host
must neither hold a worker (each probe takes a ``collectors.deadline.Deadline``, and a host's probes
share one) nor make the collector scan ports (at most ``max_targets``
distinct KMS ``host:port`` pairs and as many SRV domains are probed per run and process).
A probe cut short by the deadline or refused by the cap reports ``probed=False``, is not cached
and must not be read as a failure of the KMS host.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dns.exception
import dns.resolver

from collectors.deadline import Clock, Deadline, OutOfTime
from collectors.resolve import Lookup, PendingLookup, system_lookup
from config.settings import parse_host_port
from knowledge.kms import srv_name
from models.hostfacts import is_address, machine_name

DEFAULT_MAX_TARGETS = 256
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SrvRecord:
    target: str
    port: int
    priority: int = 0
    weight: int = 0


@dataclass(frozen=True, slots=True)
class SrvAnswer:
    """The SRV lookup for one domain: its records, or the error that explains there are none."""

    name: str
    records: tuple[SrvRecord, ...] = ()
    error: str | None = None
    probed: bool = True  # False: not asked (time ran out or the run's cap was reached)

    @property
    def found(self) -> bool:
        return bool(self.records)


@dataclass(frozen=True, slots=True)
class TcpAnswer:
    host: str
    port: int
    address: str | None
    ok: bool
    error: str | None = None
    probed: bool = True  # False: not attempted (time ran out or the run's cap was reached)


def split_dns_server(value: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or a bare address; port 53 when none is given."""
    return parse_host_port(value, default_port=53)


def make_resolver(dns_server: str | None, *, lifetime: float = 3.0) -> dns.resolver.Resolver:
    """A dnspython resolver: the system's, or one asking only ``dns_server`` (``host:port``)."""
    if dns_server is None:
        resolver = dns.resolver.Resolver()
    else:
        host, port = split_dns_server(dns_server)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.lifetime = lifetime
    resolver.timeout = lifetime
    return resolver


@dataclass(frozen=True, slots=True)
class _Resolved:
    address: str | None
    probed: bool = True


@dataclass
class Probes:
    """Cached, bounded DNS SRV and TCP probes for one run; safe to share between worker threads.

    ``srv``, ``tcp`` and ``address`` take a ``Deadline``; without one, each call gets ``host_budget_s``
    on ``clock``. ``diagnose.diagnose`` takes the host's deadline and shares it between the
    host's probes, so a caller passing what is left of the host's deadline bounds the host's total
    time. Each step also has its own timeout: ``connect_timeout_s`` for the TCP connect and a
    system-resolver lookup, the resolver's ``lifetime`` for dnspython queries.
    """

    resolver: dns.resolver.Resolver | None = None
    use_system_resolver: bool = True
    connect_timeout_s: float = 3.0
    connect: Callable[[tuple[str, int], float], socket.socket] = socket.create_connection
    # Total probe time per host when the caller gives no deadline; None: 2 x connect_timeout_s.
    host_budget_s: float | None = None
    max_targets: int = DEFAULT_MAX_TARGETS
    lookup: Lookup = system_lookup
    clock: Clock = time.monotonic
    _cache: dict[tuple[str, str, int], object] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pending: dict[tuple[str, str, int], threading.Event] = field(default_factory=dict)
    _admitted: dict[str, set[tuple[str, int]]] = field(default_factory=dict)
    _lookups: dict[str, PendingLookup] = field(default_factory=dict)

    @classmethod
    def for_settings(cls, dns_server: str | None, *, connect_timeout_s: float = 3.0) -> Probes:
        return cls(
            make_resolver(dns_server, lifetime=connect_timeout_s),
            use_system_resolver=dns_server is None,
            connect_timeout_s=connect_timeout_s,
        )

    def __getstate__(self) -> dict[str, object]:
        # A worker process gets the configuration with its own lock, cache and cap.
        return {
            "resolver": self.resolver,
            "use_system_resolver": self.use_system_resolver,
            "connect_timeout_s": self.connect_timeout_s,
            "connect": self.connect,
            "host_budget_s": self.host_budget_s,
            "max_targets": self.max_targets,
            "lookup": self.lookup,
            "clock": self.clock,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]  # dataclass fields, rebuilt with fresh lock and cache

    def deadline(self, deadline: Deadline | None = None) -> Deadline:
        """``deadline`` itself, or the default per-host budget from now."""
        if deadline is not None:
            return deadline
        budget = self.host_budget_s if self.host_budget_s is not None else 2 * self.connect_timeout_s
        return Deadline(budget, self.clock)

    def srv(self, domain: str, *, deadline: Deadline | None = None) -> SrvAnswer:
        """The ``_vlmcs._tcp`` records of ``domain`` (cached), asked before ``deadline``."""
        name = srv_name(domain.lower())
        until = self.deadline(deadline)
        if not self._admit("srv", (name, 0)):
            return SrvAnswer(name, error=f"not probed: more than {self.max_targets} KMS domains", probed=False)
        return self._cached(("srv", name, 0), lambda: self._lookup_srv(name, until), until, _srv_out_of_time(name))

    def tcp(self, host: str, port: int, *, deadline: Deadline | None = None) -> TcpAnswer:
        """Whether a TCP connection to ``host:port`` opens (cached), tried before ``deadline``."""
        key = ("tcp", machine_name(host), port)
        until = self.deadline(deadline)
        if not self._admit("tcp", (key[1], port)):
            error = f"not probed: too many distinct KMS hosts (more than {self.max_targets})"
            return TcpAnswer(key[1], port, None, False, error, probed=False)
        return self._cached(key, lambda: self._connect(key[1], port, until), until, _tcp_out_of_time(key[1], port))

    def address(self, host: str, *, deadline: Deadline | None = None) -> str | None:
        """``host``'s address (cached), or None when it does not resolve before ``deadline``."""
        key = ("addr", machine_name(host), 0)
        until = self.deadline(deadline)
        if not self._admit("addr", (key[1], 0)):
            return None
        return self._cached(key, lambda: self._resolved(key[1], until), until, _Resolved(None, probed=False)).address

    def _resolved(self, host: str, deadline: Deadline) -> _Resolved:
        try:
            return _Resolved(self._address(host, deadline)[0])
        except OutOfTime:
            return _Resolved(None, probed=False)

    def _admit(self, kind: str, target: tuple[str, int]) -> bool:
        # Hostile hosts choose these names and ports: cap the distinct ones a run will touch.
        with self._lock:
            admitted = self._admitted.setdefault(kind, set())
            if target in admitted:
                return True
            if len(admitted) >= self.max_targets:
                return False
            admitted.add(target)
            return True

    def _cached(self, key: tuple[str, str, int], compute: Callable[[], T], deadline: Deadline, late: T) -> T:
        # Concurrent askers for the same key wait for the first one instead of probing again.
        with self._lock:
            if key in self._cache:
                return self._cache[key]  # type: ignore[return-value]  # same key, same type
            event = self._pending.get(key)
            owner = event is None
            if owner:
                event = self._pending[key] = threading.Event()
        assert event is not None
        if not owner:
            if not event.wait(max(deadline.remaining(), 0.0)):
                return late
            with self._lock:
                if key in self._cache:
                    return self._cache[key]  # type: ignore[return-value]
            return compute()  # the first asker ran out of its own time; this one may have more
        try:
            value = compute()
            if getattr(value, "probed", True):
                with self._lock:
                    self._cache[key] = value
            return value
        finally:
            with self._lock:
                self._pending.pop(key, None)
            event.set()

    def _lookup_srv(self, name: str, deadline: Deadline) -> SrvAnswer:
        resolver = self.resolver or make_resolver(None, lifetime=self.connect_timeout_s)
        try:
            budget = deadline.step(resolver.lifetime)
        except OutOfTime:
            return _srv_out_of_time(name)
        try:
            answer = resolver.resolve(name, "SRV", raise_on_no_answer=True, lifetime=budget.seconds)
        except dns.resolver.NXDOMAIN:
            return SrvAnswer(name, error="NXDOMAIN: the name does not exist")
        except dns.resolver.NoAnswer:
            return SrvAnswer(name, error="no SRV record")
        except dns.resolver.NoNameservers as exc:
            return SrvAnswer(name, error=f"no name server answered: {_short(exc)}")
        except dns.exception.Timeout:
            return _srv_out_of_time(name) if budget.cut else SrvAnswer(name, error="DNS lookup timed out")
        except dns.exception.DNSException as exc:
            return SrvAnswer(name, error=_short(exc))
        records = tuple(
            SrvRecord(str(r.target).rstrip("."), int(r.port), int(r.priority), int(r.weight)) for r in answer
        )
        return SrvAnswer(name, records=tuple(sorted(records, key=lambda r: (r.priority, -r.weight))))

    def _connect(self, host: str, port: int, deadline: Deadline) -> TcpAnswer:
        try:
            address, error = self._address(host, deadline)
            if address is None:
                return TcpAnswer(host, port, None, False, error)
            budget = deadline.step(self.connect_timeout_s)
        except OutOfTime:
            return _tcp_out_of_time(host, port)
        try:
            sock = self.connect((address, port), budget.seconds)
        except TimeoutError:
            if budget.cut:
                return _tcp_out_of_time(host, port, address)
            return TcpAnswer(host, port, address, False, f"no answer within {self.connect_timeout_s:g}s")
        except OSError as exc:
            return TcpAnswer(host, port, address, False, exc.strerror or _short(exc))
        sock.close()
        return TcpAnswer(host, port, address, True)

    def _address(self, host: str, deadline: Deadline) -> tuple[str | None, str | None]:
        """The host's address, or why it has none; raises ``OutOfTime`` when the deadline cut it short."""
        if is_address(host):
            return host, None
        if self.use_system_resolver:
            return self._system_address(host, deadline)
        return self._dns_address(host, deadline)

    def _dns_address(self, host: str, deadline: Deadline) -> tuple[str | None, str | None]:
        assert self.resolver is not None
        budget = deadline.step(self.resolver.lifetime)
        try:
            answer = self.resolver.resolve(host, "A", lifetime=budget.seconds)
        except dns.exception.Timeout:
            if budget.cut:
                raise OutOfTime from None
            return None, f"{host} does not resolve: no answer within {budget.seconds:g}s"
        except dns.exception.DNSException as exc:
            return None, f"{host} does not resolve: {_short(exc)}"
        return str(next(iter(answer))), None

    def _system_address(self, host: str, deadline: Deadline) -> tuple[str | None, str | None]:
        budget = deadline.step(self.connect_timeout_s)
        with self._lock:
            lookup = self._lookups.get(host)
            if lookup is None:
                lookup = self._lookups[host] = PendingLookup(host, self.lookup)
        if not lookup.wait(budget.seconds):
            if budget.cut:
                raise OutOfTime
            return None, f"{host} does not resolve: no answer within {budget.seconds:g}s"
        return lookup.address, lookup.error


def _srv_out_of_time(name: str) -> SrvAnswer:
    return SrvAnswer(name, error="not probed: the host's probe time ran out", probed=False)


def _tcp_out_of_time(host: str, port: int, address: str | None = None) -> TcpAnswer:
    return TcpAnswer(host, port, address, False, "not probed: the host's probe time ran out", probed=False)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__
