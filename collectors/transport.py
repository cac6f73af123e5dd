"""One host's WS-Management conversation over HTTP(S): sign-in, message encryption, deadline and reply cap.

``WinrmTransport`` keeps one keep-alive connection to the host (urllib3, one pooled connection),
signs it in as ``collectors.signin`` plans (Negotiate with Kerberos or NTLM inside, or Basic), seals
every message with the MS-WSMV ``multipart/encrypted`` framing over plain HTTP, and bounds each
request by what is left of the host's deadline and every reply by ``max_reply_bytes``. A watchdog
shuts the host's sockets down at its deadline, so a slow-drip host cannot hold a worker past it.
``send_message`` answers as pywinrm's ``Transport`` does (reply bytes, or ``WinRMTransportError``), and
``WinrmSession`` puts pywinrm's ``Protocol`` on top for its SOAP fault parsing.

This module knows nothing of WMI or envelopes (``wsman``) and does not interpret replies (``parse``).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import itertools
import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ProtocolError as Urllib3ProtocolError
from urllib3.response import BaseHTTPResponse
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError
from winrm.protocol import Protocol

from collectors import signin
from collectors.credentials import Credential
from collectors.errors import AuthError, PollTimeout, ProtocolError, ReplyTooLarge
from collectors.inventory import Target
from collectors.signin import Challenge, SecurityContext, SignInPlan

log = logging.getLogger("collectors")

READ_CHUNK = 65536
MAX_LEGS = 3  # NTLM needs two 401 round trips at most; a host asking for more is looping
# What pywinrm (Transport.default_headers), requests and requests_ntlm send with every message; kept identical.
BASE_HEADERS: Final = {
    "User-Agent": "Python WinRM client",
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "Keep-Alive",
}
SOAP_CONTENT_TYPE: Final = "application/soap+xml;charset=UTF-8"
BOUNDARY: Final = b"--Encrypted Boundary"
OCTET_STREAM: Final = b"\tContent-Type: application/octet-stream\r\n"


# --- deadline and options ------------------------------------------------------------------------


@dataclass(slots=True)
class Deadline:
    """A wall-clock budget for one host, measured on a monotonic clock."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.started)

    def check(self, doing: str) -> float:
        """Seconds left; raises ``PollTimeout`` when none are."""
        left = self.remaining()
        if left <= 0:
            raise PollTimeout(f"host deadline of {self.seconds:g}s exceeded while {doing}")
        return left


@dataclass(frozen=True, slots=True)
class WsmanOptions:
    """How to talk to every host: timeouts, size cap, TLS validation and the sign-in policy."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_reply_bytes: int = 4 * 1024 * 1024
    ca_bundle: str | None = None
    verify_tls: bool = True
    operation_timeout_s: int = 20
    allow_ntlm_fallback: bool = True
    # Kerberos tickets acquired once per credential and shared by every host polled with these options.
    tickets: signin.KerberosTickets = field(default_factory=signin.KerberosTickets, compare=False, repr=False)


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


COUNTER = ExchangeCounter()


class _Watched:
    """A connection that dials the host's resolved address and reports its socket to its transport."""

    sock: socket.socket
    _dns_host: str
    transport: WinrmTransport | None = None

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

    transport: WinrmTransport

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        conn.transport = self.transport
        return conn


class _HTTPPool(_Pool, HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(_Pool, HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class Watchdog:
    """One thread that aborts the transports whose deadline has passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, WinrmTransport]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, transport: WinrmTransport, at: float) -> None:
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


# --- the transport ------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth one more try: a reset (on a fresh connection) or a 500 that is no SOAP fault."""

    def __init__(self, cause: BaseException, *, reconnect: bool = True) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.reconnect = reconnect


@dataclass(slots=True)
class _Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    certificate: bytes | None  # DER of the host's TLS certificate, for channel bindings
    plain: bytes | None = None  # the body unsealed, once: unsealing advances the context's sequence

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name), "")

    def challenges(self) -> tuple[Challenge, ...]:
        return signin.parse_challenges(v for k, v in self.headers if k.lower() == "www-authenticate")


class WinrmTransport:
    """Signs in to one host and carries its messages, under the host's deadline and reply cap."""

    def __init__(
        self,
        target: Target,
        credential: Credential,
        options: WsmanOptions,
        deadline: Deadline,
        *,
        address: str | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.target, self.credential, self.options, self.deadline = target, credential, options, deadline
        self.address = address
        self.plan: SignInPlan = signin.plan_for(target, credential, allow_ntlm_fallback=options.allow_ntlm_fallback)
        self.https = target.scheme == "https"
        self.path = urlsplit(target.endpoint).path or "/wsman"
        self.sockets: list[socket.socket] = []
        self.certificate: bytes | None = None  # DER of the TLS certificate of the current connection
        self.expired = self.finished = False
        self.context: SecurityContext | None = None
        self.scheme: str | None = None  # the scheme the connection is signed in with
        self.mechanism: str | None = None  # "Kerberos", "NTLM" or "Basic", once signed in
        self._pool = self._new_pool()
        # requests_ntlm asks for "Keep-Alive"; requests' own default, which pywinrm's Basic sends, is lower case
        connection = "keep-alive" if self.plan.mechanisms == ("basic",) else "Keep-Alive"
        self._base_headers = {**BASE_HEADERS, "Connection": connection, "Content-Type": SOAP_CONTENT_TYPE}
        (watchdog or WATCHDOG).watch(self, time.monotonic() + max(deadline.remaining(), 0.0))

    # --- public ---------------------------------------------------------------------------------

    def send_message(self, message: str | bytes) -> bytes:
        """The reply to one SOAP message; an HTTP error raises ``WinRMTransportError`` as pywinrm's does."""
        body = message.encode("utf-8") if isinstance(message, str) else message
        try:
            reply = self._send_once_more_if_transient(body)
        except Exception as exc:
            if self.expired:
                raise PollTimeout(f"host deadline of {self.deadline.seconds:g}s exceeded") from exc
            raise
        if reply.status >= 400:
            _raise_for(reply.status, self._plain(reply))
        return self._plain(reply)

    def abort(self) -> None:
        """Called by the watchdog at the deadline: wake any blocked read on this host's sockets."""
        if self.finished:
            return
        self.expired = True
        for sock in list(self.sockets):
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def close_session(self) -> None:
        self.finished = True
        self._pool.close()

    # --- sending --------------------------------------------------------------------------------

    def _send_once_more_if_transient(self, body: bytes) -> _Reply:
        try:
            return self._send(body)
        except _Transient as exc:
            if self.deadline.remaining() <= self.options.connect_timeout_s / 2:
                raise exc.cause from None
            log.debug("%s: retrying once after %s", self.target.host, exc.cause)
            if exc.reconnect:
                self._reconnect()
            try:
                return self._send(body)
            except _Transient as again:
                raise again.cause from None

    def _send(self, body: bytes) -> _Reply:
        if self.mechanism is None:
            reply = self._sign_in(body)
            if reply is not None:
                return self._checked(reply)
        reply = self._post(*self._sealed(body))
        if reply.status == 401 and self.mechanism != "Basic":
            # The host closed the signed-in connection and this message went out on a new one.
            self._reconnect()
            reply = self._sign_in(body) or self._post(*self._sealed(body))
        return self._checked(reply)

    def _checked(self, reply: _Reply) -> _Reply:
        if reply.status == 500 and not _is_soap(self._plain(reply)):
            raise _Transient(
                WinRMTransportError("http", 500, reply.body[:200].decode("utf-8", "replace")), reconnect=False
            )
        return reply

    def _post(self, body: bytes, headers: dict[str, str]) -> _Reply:
        left = self.deadline.check("sending a request")
        timeout = urllib3.Timeout(
            connect=min(self.options.connect_timeout_s, left), read=min(self.options.read_timeout_s, left)
        )
        try:
            response = self._pool.urlopen(
                "POST",
                self.path,
                body=body,
                headers={**self._base_headers, **headers},
                retries=False,
                redirect=False,
                timeout=timeout,
                preload_content=False,
                release_conn=False,
                assert_same_host=False,
            )
        except (Urllib3ProtocolError, ConnectionResetError, BrokenPipeError) as exc:
            if self.expired:
                raise
            raise _Transient(exc) from exc
        try:
            data = _read_capped(response, self.options, self.deadline)
        except ReplyTooLarge:
            self._reconnect()  # the connection is mid-reply: useless for the next message
            raise
        except Urllib3ProtocolError as exc:
            if self.expired:
                raise
            raise _Transient(exc) from exc
        finally:
            response.release_conn()
        if self.expired:
            raise PollTimeout(f"host deadline of {self.deadline.seconds:g}s exceeded")
        return _Reply(response.status, list(response.headers.items()), data, self.certificate)

    def _sealed(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        """``body`` as it goes on the wire: sealed over HTTP, with Basic credentials when signed in so."""
        if self.mechanism == "Basic":
            return body, {"Authorization": signin.basic_header(self.credential)}
        if self.context is None or self.https:
            return body, {}
        protocol = signin.ENCRYPTION_PROTOCOL[self.scheme or signin.NEGOTIATE]
        header, sealed = self.context.wrap(body)
        payload = (
            BOUNDARY + b"\r\n\tContent-Type: " + protocol.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(body)).encode() + b"\r\n"
            + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<i", len(header)) + header + sealed + BOUNDARY + b"--\r\n"
        )  # fmt: skip
        return payload, {"Content-Type": f'multipart/encrypted;protocol="{protocol}";boundary="Encrypted Boundary"'}

    def _plain(self, reply: _Reply) -> bytes:
        """The reply body, unsealed when the host encrypted it."""
        if reply.plain is None:
            if not reply.header("content-type").lower().startswith("multipart/encrypted"):
                reply.plain = reply.body
            elif self.context is None:
                raise ProtocolError("the host sent an encrypted reply before signing in")
            else:
                reply.plain = _unseal(reply.body, self.context)
        return reply.plain

    def _reconnect(self) -> None:
        self._pool.close()
        self._pool = self._new_pool()
        self.context = self.scheme = self.mechanism = None

    def _new_pool(self) -> _HTTPPool | _HTTPSPool:
        host = self.target.host
        pool: _HTTPPool | _HTTPSPool
        if self.https:
            context = tls_context(self.options.ca_bundle, self.options.verify_tls)
            pool = _HTTPSPool(host, self.target.port, maxsize=1, ssl_context=context)
        else:
            pool = _HTTPPool(host, self.target.port, maxsize=1)
        pool.transport = self
        return pool

    # --- signing in -----------------------------------------------------------------------------

    def _sign_in(self, body: bytes) -> _Reply | None:
        """Authenticate the connection; returns the reply to ``body`` when the handshake carried it.

        Over HTTP the handshake is an empty POST and every message after it is sealed; over HTTPS
        the message rides on the handshake. Kerberos over HTTPS binds the TLS channel in its very
        first token, so there an anonymous request first learns the certificate and the schemes.
        """
        if self.plan.mechanisms == ("basic",):
            return self._basic(body)
        payload = body if self.https else b""
        probe = None
        if self.https and self.plan.mechanisms[0] == "kerberos":
            probe = self._post(body, {})
            if probe.status != 401:
                return probe  # the host asks for no sign-in at all
        fallback = self.plan.kerberos_blocker
        for mechanism in self.plan.mechanisms:
            try:
                reply = self._handshake(mechanism, payload, probe)
            except _KerberosUnavailable as exc:
                fallback = exc.reason
                continue
            if fallback and mechanism == "ntlm" and self.plan.transport == "negotiate":
                log.debug("%s: NTLM instead of Kerberos: %s", self.target.host, fallback)
            return reply if self.https else None
        raise AuthError(fallback or "no sign-in method left to try")

    def _handshake(self, mechanism: str, payload: bytes, probe: _Reply | None) -> _Reply:
        challenges = probe.challenges() if probe is not None else None
        scheme = self._scheme_for(mechanism, challenges)
        bindings = signin.channel_bindings(_certificate_hash(probe.certificate)) if probe is not None else None
        context, first = self._first_token(mechanism, bindings)
        reply = self._post(payload, {"Authorization": signin.token_header(scheme, first)})
        for leg in range(MAX_LEGS):
            if reply.status != 401:
                break
            answer = signin.find(reply.challenges(), scheme)
            if answer is None or answer.token is None:
                return self._refused(mechanism, scheme, reply, leg, context, payload, retry=challenges is None)
            if mechanism == "ntlm" and self.https:
                bindings = signin.channel_bindings(_certificate_hash(reply.certificate))
            token = context.step(answer.token, bindings)
            reply = self._post(payload, {"Authorization": signin.token_header(scheme, token)})
        else:
            raise AuthError(f"the host kept asking for more {scheme} legs")
        final = signin.find(reply.challenges(), scheme)
        if final is not None and final.token and not context.complete:
            context.step(final.token)  # Kerberos AP-REP: the host proves who it is
        if not context.complete and reply.status < 400:
            raise AuthError(f"the host did not prove its identity for {context.spn} (no mutual authentication token)")
        self.context, self.scheme = context, scheme
        self.mechanism = "Kerberos" if mechanism == "kerberos" else "NTLM"
        return reply

    def _first_token(self, mechanism: str, bindings: Any) -> tuple[SecurityContext, bytes]:
        if mechanism == "kerberos":
            try:
                return signin.kerberos_context(self.credential, self.plan, self.options.tickets, bindings)
            except AuthError as exc:
                if "ntlm" in self.plan.mechanisms:
                    raise _KerberosUnavailable(exc.reason) from exc
                raise
        context = signin.ntlm_context(self.credential, self.plan.spn_host or self.target.host)
        return context, context.step() or b""

    def _scheme_for(self, mechanism: str, challenges: tuple[Challenge, ...] | None) -> str:
        """Negotiate, as Windows offers it; else the mechanism's own scheme when only that is offered."""
        if challenges is None or signin.find(challenges, signin.NEGOTIATE):
            return signin.NEGOTIATE
        own = signin.KERBEROS if mechanism == "kerberos" else signin.NTLM
        if signin.find(challenges, own):
            return own
        raise AuthError(_not_offered(mechanism, challenges))

    def _refused(
        self,
        mechanism: str,
        scheme: str,
        reply: _Reply,
        leg: int,
        context: SecurityContext,
        payload: bytes,
        *,
        retry: bool,
    ) -> _Reply:
        """A 401 without a token in our scheme: the scheme is not offered, or the credentials were refused."""
        challenges = reply.challenges()
        if signin.find(challenges, scheme) is None:
            if retry and leg == 0:  # the pre-emptive Negotiate was not offered: answer in a scheme that is
                return self._handshake(mechanism, payload, reply)
            raise AuthError(_not_offered(mechanism, challenges))
        if mechanism == "kerberos":
            raise AuthError(
                f"the host refused the Kerberos ticket for {context.spn}: the SPN may belong to another account, "
                "or the host cannot reach a domain controller"
            )
        raise AuthError(
            "the host rejected the NTLM sign-in: wrong user name or password, or NTLM is restricted on the host "
            "or in the domain"
        )

    def _basic(self, body: bytes) -> _Reply:
        probe = self._post(body, {})  # credentials go only in a scheme the host offers
        if probe.status != 401:
            return probe
        challenges = probe.challenges()
        if signin.find(challenges, signin.BASIC) is None:
            raise AuthError(_not_offered("basic", challenges))
        self.mechanism = "Basic"
        reply = self._post(body, {"Authorization": signin.basic_header(self.credential)})
        if reply.status == 401:
            self.mechanism = None
            clear = "" if self.https else "; over plain HTTP a host also refuses Basic while AllowUnencrypted is false"
            raise AuthError(f"the host rejected the user name or password (Basic){clear}")
        return reply


class _KerberosUnavailable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _not_offered(mechanism: str, challenges: tuple[Challenge, ...]) -> str:
    schemes = ", ".join(signin.offered(challenges)) or "nothing"
    wanted = {"kerberos": "Kerberos (Negotiate)", "ntlm": "NTLM (Negotiate)", "basic": "Basic"}[mechanism]
    return f"the host does not offer {wanted} sign-in (it offers {schemes}); enable it in the WinRM service auth"


# --- replies -------------------------------------------------------------------------------------


def _read_capped(response: BaseHTTPResponse, options: WsmanOptions, deadline: Deadline) -> bytes:
    """The body, read chunk by chunk, stopping at the cap or the deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > options.max_reply_bytes:
        raise ReplyTooLarge(f"reply of {declared} bytes exceeds the {options.max_reply_bytes}-byte cap")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.stream(READ_CHUNK, decode_content=True):
        size += len(chunk)
        if size > options.max_reply_bytes:
            raise ReplyTooLarge(f"reply exceeds the {options.max_reply_bytes}-byte cap")
        chunks.append(chunk)
        deadline.check("reading a reply")
    return b"".join(chunks)


def _certificate_hash(der: bytes | None) -> bytes | None:
    """RFC 5929 section 4.1: the certificate's hash with its signature's algorithm, SHA-256 at least."""
    if not der:
        return None
    from cryptography import x509  # pyspnego's dependency; loaded only for HTTPS hosts

    try:
        algorithm = x509.load_der_x509_certificate(der).signature_hash_algorithm
    except ValueError as exc:
        raise ProtocolError(f"the host's TLS certificate cannot be read: {exc}") from exc
    name = algorithm.name if algorithm is not None and algorithm.name in ("sha384", "sha512") else "sha256"
    return hashlib.new(name, der).digest()


def _unseal(body: bytes, context: SecurityContext) -> bytes:
    """The plain text of a ``multipart/encrypted`` body (MS-WSMV 2.2.9.1)."""
    parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
    if len(parts) < 2:
        raise ProtocolError("encrypted reply without its two MIME parts")
    message = b""
    for index in range(0, len(parts) - 1, 2):
        header, payload = parts[index], parts[index + 1]
        length = _declared_length(header)
        payload = payload.removesuffix(BOUNDARY + b"--\r\n").removeprefix(OCTET_STREAM)
        if len(payload) < 4:
            raise ProtocolError("encrypted reply too short")
        size = struct.unpack("<i", payload[:4])[0]
        if not 0 <= size <= len(payload) - 4:
            raise ProtocolError("encrypted reply with a bad signature length")
        plain = context.unwrap(payload[4 : 4 + size], payload[4 + size :])
        if len(plain) != length:
            raise ProtocolError("encrypted reply length does not match its header (tampered or truncated)")
        message += plain
    return message


def _declared_length(header: bytes) -> int:
    _, found, rest = header.partition(b"Length=")
    digits = rest.split(b"\r\n", 1)[0].strip()
    if not found or not digits.isdigit():
        raise ProtocolError("encrypted reply without its original length")
    return int(digits)


def _is_soap(body: bytes) -> bool:
    return b"Envelope" in body[:512]


def _raise_for(status: int, body: bytes) -> None:
    """Raise what pywinrm's ``Transport`` raises for an HTTP error; ``Protocol`` then reads SOAP faults."""
    if status == 401:
        raise InvalidCredentialsError("the specified credentials were rejected by the server")
    raise WinRMTransportError("http", status, body.decode("utf-8", "replace"))


class WinrmSession(Protocol):
    """pywinrm's ``Protocol`` (its envelopes and SOAP fault parsing) over a ``WinrmTransport``."""

    def __init__(self, transport: WinrmTransport) -> None:  # Protocol's own builds a pywinrm Transport
        self.transport = transport  # type: ignore[assignment]  # duck-typed: send_message and close_session
