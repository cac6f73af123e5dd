"""One host's HTTP connection: TLS contexts, a pool of one connection that dials the resolved address,
counts what it sends, and a watchdog that aborts a host's connection when its deadline passes.

Only the TCP connect uses the resolved address: the Host header, TLS SNI and the certificate check keep
the inventory's host name. The owner of a connection (``collectors.transport.WinrmTransport``) is told of
every socket it opens, so the watchdog can shut them down and channel bindings can hash the certificate.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import BaseHTTPResponse

from collectors.deadline import Deadline
from collectors.errors import ReplyTooLarge

READ_CHUNK = 65536


class ConnectionOwner(Protocol):
    """What a connection reports to, and what the watchdog aborts."""

    address: str | None
    sockets: list[socket.socket]
    certificate: bytes | None

    def abort(self) -> None: ...


@lru_cache(maxsize=8)
def tls_context(ca_bundle: str | None, verify: bool) -> ssl.SSLContext:
    """One client TLS context per trust setting, shared by every host: loading CAs costs milliseconds."""
    context = ssl.create_default_context(cafile=ca_bundle) if verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# --- counting, routing and the watchdog ---------------------------------------------------------
#
# Socket timeouts bound each read, not the whole reply: a host that drips one byte a second keeps
# every read alive. The watchdog shuts down a host's sockets when its deadline passes, which wakes
# any blocked read; the transport then reports a timeout.


@dataclass
class ExchangeCounter:
    """Connections opened, HTTP requests sent and SPP event logs read by this process and its finished
    poll workers; ``renewal_event_reads`` are the event reads only the renewal watch asked for."""

    connections: int = 0
    requests: int = 0
    event_reads: int = 0
    renewal_event_reads: int = 0

    def add(self, other: ExchangeCounter) -> None:
        """Count what ``other`` (a finished worker process) counted as well."""
        for name in ExchangeCounter.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def since(self, snapshot: ExchangeCounter) -> ExchangeCounter:
        """What was counted after ``snapshot`` (a ``dataclasses.replace`` copy) was taken."""
        names = ExchangeCounter.__dataclass_fields__
        return ExchangeCounter(**{n: getattr(self, n) - getattr(snapshot, n) for n in names})


COUNTER = ExchangeCounter()


class _Watched:
    """A connection that dials the host's resolved address and reports its socket to its transport."""

    sock: socket.socket
    _dns_host: str
    transport: ConnectionOwner | None = None

    def _new_conn(self) -> socket.socket:
        # Only the TCP connect uses the address: the Host header, TLS SNI and the certificate check
        # keep the inventory's host name (urllib3 reads both from ``_dns_host``).
        address = self.transport.address if self.transport is not None else None
        if not address:
            return super()._new_conn()  # type: ignore[misc]
        name, self._dns_host = self._dns_host, address
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = name

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        COUNTER.connections += 1
        if self.transport is not None:
            self.transport.sockets.append(self.sock)
            if isinstance(self.sock, ssl.SSLSocket):  # channel bindings hash the certificate of this connection
                self.transport.certificate = self.sock.getpeercert(binary_form=True)

    def request(self, *args: Any, **kwargs: Any) -> None:
        COUNTER.requests += 1
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _Pool:
    """Gives each new connection of a pool its transport."""

    transport: ConnectionOwner

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        conn.transport = self.transport
        return conn


class HTTPPool(_Pool, HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class HTTPSPool(_Pool, HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class Watchdog:
    """One thread that aborts the transports whose deadline has passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, ConnectionOwner]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, transport: ConnectionOwner, at: float) -> None:
        with self._wake:
            earliest = not self._heap or at < self._heap[0][0]
            heapq.heappush(self._heap, (at, next(self._counter), transport))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="wsman-watchdog", daemon=True)
                self._thread.start()
            if earliest:  # hosts share one timeout, so a new deadline rarely comes first: no wake-up then
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                at, _, transport = self._heap[0]
                delay = at - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
            transport.abort()


WATCHDOG = Watchdog()


def read_capped(response: BaseHTTPResponse, cap: int, deadline: Deadline) -> bytes:
    """The body, read chunk by chunk, stopping at the cap or the deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > cap:
        raise ReplyTooLarge(f"reply of {declared} bytes exceeds the {cap}-byte cap")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.stream(READ_CHUNK, decode_content=True):
        size += len(chunk)
        if size > cap:
            raise ReplyTooLarge(f"reply exceeds the {cap}-byte cap")
        chunks.append(chunk)
        deadline.check("reading a reply")
    return b"".join(chunks)
