"""Network probes run from the collector for diagnosis: the ``_vlmcs._tcp.<domain>`` SRV lookup
(dnspython) and a TCP connect to a KMS host's port. Answers are cached for the run, because many
clients share a domain and a KMS host. ``Probes`` is injected into the poller so tests and
benchmarks can use the simulator's DNS server (``dns_server``) or their own resolver.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dns.exception
import dns.resolver

from knowledge.kms import KMS_SRV_PREFIX

SRV_PREFIX = KMS_SRV_PREFIX + "."
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


def split_dns_server(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    return (host, int(port)) if sep else (value, 53)


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


@dataclass
class Probes:
    """Cached DNS SRV and TCP probes for one run; safe to share between worker threads."""

    resolver: dns.resolver.Resolver | None = None
    use_system_resolver: bool = True
    connect_timeout_s: float = 3.0
    connect: Callable[[tuple[str, int], float], socket.socket] = socket.create_connection
    _cache: dict[tuple[str, str, int], object] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pending: dict[tuple[str, str, int], threading.Event] = field(default_factory=dict)

    @classmethod
    def for_settings(cls, dns_server: str | None, *, connect_timeout_s: float = 3.0) -> Probes:
        return cls(
            make_resolver(dns_server), use_system_resolver=dns_server is None, connect_timeout_s=connect_timeout_s
        )

    def __getstate__(self) -> dict[str, object]:
        # A worker process gets the configuration with its own lock and an empty cache.
        return {
            "resolver": self.resolver,
            "use_system_resolver": self.use_system_resolver,
            "connect_timeout_s": self.connect_timeout_s,
            "connect": self.connect,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]  # dataclass fields, rebuilt with fresh lock and cache

    def srv(self, domain: str) -> SrvAnswer:
        """The ``_vlmcs._tcp`` records of ``domain`` (cached)."""
        name = SRV_PREFIX + domain.strip(".").lower()
        return self._cached(("srv", name, 0), lambda: self._lookup_srv(name))

    def tcp(self, host: str, port: int) -> TcpAnswer:
        """Whether a TCP connection to ``host:port`` opens (cached)."""
        key = ("tcp", host.strip(".").lower(), port)
        return self._cached(key, lambda: self._connect(key[1], port))

    def _cached(self, key: tuple[str, str, int], compute: Callable[[], T]) -> T:
        # Concurrent askers for the same key wait for the first one instead of probing again.
        with self._lock:
            if key in self._cache:
                return self._cache[key]  # type: ignore[return-value]  # same key, same type
            event = self._pending.get(key)
            owner = event is None
            if owner:
                event = self._pending[key] = threading.Event()
        if not owner:
            assert event is not None
            event.wait(self.connect_timeout_s * 4 + 10)
            with self._lock:
                if key in self._cache:
                    return self._cache[key]  # type: ignore[return-value]
            return compute()
        try:
            value = compute()
            with self._lock:
                self._cache[key] = value
            return value
        finally:
            with self._lock:
                self._pending.pop(key, None)
            event.set()  # type: ignore[union-attr]  # owner created it

    def _lookup_srv(self, name: str) -> SrvAnswer:
        resolver = self.resolver or make_resolver(None)
        try:
            answer = resolver.resolve(name, "SRV", raise_on_no_answer=True)
        except dns.resolver.NXDOMAIN:
            return SrvAnswer(name, error="NXDOMAIN: the name does not exist")
        except dns.resolver.NoAnswer:
            return SrvAnswer(name, error="no SRV record")
        except dns.resolver.NoNameservers as exc:
            return SrvAnswer(name, error=f"no name server answered: {_short(exc)}")
        except dns.exception.Timeout:
            return SrvAnswer(name, error="DNS lookup timed out")
        except dns.exception.DNSException as exc:
            return SrvAnswer(name, error=_short(exc))
        records = tuple(
            SrvRecord(str(r.target).rstrip("."), int(r.port), int(r.priority), int(r.weight)) for r in answer
        )
        return SrvAnswer(name, records=tuple(sorted(records, key=lambda r: (r.priority, -r.weight))))

    def _connect(self, host: str, port: int) -> TcpAnswer:
        address, error = self._address(host)
        if address is None:
            return TcpAnswer(host, port, None, False, error)
        try:
            sock = self.connect((address, port), self.connect_timeout_s)
        except TimeoutError:
            return TcpAnswer(host, port, address, False, f"no answer within {self.connect_timeout_s:g}s")
        except OSError as exc:
            return TcpAnswer(host, port, address, False, exc.strerror or _short(exc))
        sock.close()
        return TcpAnswer(host, port, address, True)

    def _address(self, host: str) -> tuple[str | None, str | None]:
        try:
            ipaddress.ip_address(host)
            return host, None
        except ValueError:
            pass
        if self.use_system_resolver:
            return _system_address(host)
        return self._dns_address(host)

    def _dns_address(self, host: str) -> tuple[str | None, str | None]:
        assert self.resolver is not None
        try:
            answer = self.resolver.resolve(host, "A")
        except dns.exception.DNSException as exc:
            return None, f"{host} does not resolve: {_short(exc)}"
        return str(next(iter(answer))), None


def _system_address(host: str) -> tuple[str | None, str | None]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return None, f"{host} does not resolve: {_short(exc)}"
    return str(infos[0][4][0]), None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__
