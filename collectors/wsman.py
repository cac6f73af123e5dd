"""WS-Management over pywinrm: Enumerate/Pull envelopes for WQL queries, one ``Protocol`` per host,
and a transport that enforces the host's wall-clock deadline and a reply-size cap.

pywinrm has one timeout for connect and read, no total deadline and no size cap, so
``BoundedTransport`` replaces its ``_send_message_request`` with a streamed read under the
deadline and byte cap. A ``Protocol`` holds NTLM state for one connection, so each host task opens
its own (``open_protocol``) and closes it afterwards. This module returns reply bytes; it does not
interpret WMI data (``parse`` does).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import heapq
import ipaddress
import itertools
import math
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import requests
import spnego
import spnego.channel_bindings
from requests.adapters import HTTPAdapter
from requests_ntlm import HttpNtlmAuth
from requests_ntlm.requests_ntlm import ShimSessionSecurity
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError
from winrm.protocol import Protocol
from winrm.transport import Transport

from collectors import parse
from collectors.credentials import Credential
from collectors.errors import DnsError, PollTimeout, ProtocolError, ReplyTooLarge
from collectors.inventory import Target
from collectors.wmi import CIMV2_WILDCARD_URI, WqlQuery

NAMESPACES = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
WQL_DIALECT = "http://schemas.microsoft.com/wbem/wsman/1/WQL"


class WSManAction:
    ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
    PULL = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"


MAX_ENVELOPE_BYTES = 512000
MAX_ELEMENTS = 32000  # with OptimizeEnumeration, every instance arrives in the EnumerateResponse
MAX_PULLS = 50
READ_CHUNK = 65536

_HEADER = (
    '<s:Envelope xmlns:s="{s}" xmlns:a="{a}" xmlns:n="{n}" xmlns:w="{w}" xmlns:p="{p}">'
    "<s:Header>"
    "<a:To>{to}</a:To>"
    '<w:ResourceURI s:mustUnderstand="true">{resource}</w:ResourceURI>'
    '<a:ReplyTo><a:Address s:mustUnderstand="true">{anonymous}</a:Address></a:ReplyTo>'
    '<a:Action s:mustUnderstand="true">{action}</a:Action>'
    '<w:MaxEnvelopeSize s:mustUnderstand="true">{envelope}</w:MaxEnvelopeSize>'
    "<a:MessageID>uuid:{message_id}</a:MessageID>"
    '<w:Locale xml:lang="en-US" s:mustUnderstand="false"/>'
    '<p:DataLocale xml:lang="en-US" s:mustUnderstand="false"/>'
    "<w:OperationTimeout>PT{timeout}S</w:OperationTimeout>"
    "</s:Header>"
)


def _header(action: str, to: str, operation_timeout_s: int) -> str:
    return _HEADER.format(
        **NAMESPACES,
        to=escape(to),
        resource=CIMV2_WILDCARD_URI,
        anonymous=ANONYMOUS,
        action=action,
        envelope=MAX_ENVELOPE_BYTES,
        message_id=uuid.uuid4(),
        timeout=operation_timeout_s,
    )


def enumerate_envelope(query: WqlQuery, *, to: str, operation_timeout_s: int = 20) -> str:
    """An Enumerate of ``query`` with OptimizeEnumeration, so the items come in the response."""
    body = (
        "<s:Body><n:Enumerate>"
        "<w:OptimizeEnumeration/>"
        f"<w:MaxElements>{MAX_ELEMENTS}</w:MaxElements>"
        f'<w:Filter Dialect="{WQL_DIALECT}">{escape(query.text)}</w:Filter>'
        "</n:Enumerate></s:Body></s:Envelope>"
    )
    return _header(WSManAction.ENUMERATE, to, operation_timeout_s) + body


def pull_envelope(context: str, *, to: str, operation_timeout_s: int = 20) -> str:
    """A Pull continuing the enumeration ``context``."""
    body = (
        "<s:Body><n:Pull>"
        f"<n:EnumerationContext>{escape(context)}</n:EnumerationContext>"
        f"<n:MaxElements>{MAX_ELEMENTS}</n:MaxElements>"
        "</n:Pull></s:Body></s:Envelope>"
    )
    return _header(WSManAction.PULL, to, operation_timeout_s) + body


# --- deadline and options ----------------------------------------------------------------------


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
    """How to talk to every host: timeouts, size cap and TLS validation."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_reply_bytes: int = 4 * 1024 * 1024
    ca_bundle: str | None = None
    verify_tls: bool = True
    operation_timeout_s: int = 20


# --- transport -----------------------------------------------------------------------------------


# --- watchdog ------------------------------------------------------------------------------------
#
# Socket timeouts bound each read, not the whole reply: a host that drips one byte a second keeps
# every read alive. The watchdog shuts down a host's sockets when its deadline passes, which wakes
# any blocked read; the transport then reports a timeout.

_current = threading.local()


@dataclass
class ExchangeCounter:
    """Connections opened and HTTP requests sent by this process and its finished poll workers."""

    connections: int = 0
    requests: int = 0


COUNTER = ExchangeCounter()


class _Watched:
    """Routing, deadline watching and exchange counting shared by the HTTP and HTTPS connections."""

    sock: socket.socket

    def _new_conn(self) -> socket.socket:
        return _routed_conn(self, super()._new_conn)  # type: ignore[misc,arg-type]

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _register_socket(self.sock)
        COUNTER.connections += 1

    def request(self, *args: Any, **kwargs: Any) -> None:
        COUNTER.requests += 1
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


def _routed_conn(conn: HTTPConnection, new_conn: Callable[[], socket.socket]) -> socket.socket:
    """Open the socket to the address resolved under the host's deadline.

    Only the TCP connect uses the address: the Host header, TLS SNI and the certificate check keep
    the inventory's host name (urllib3 reads both from ``_dns_host``, so it is swapped for the connect).
    """
    transport = getattr(_current, "transport", None)
    address = getattr(transport, "address", None)
    if not address:
        return new_conn()
    name = conn._dns_host
    conn._dns_host = address
    try:
        return new_conn()
    finally:
        conn._dns_host = name


def _register_socket(sock: socket.socket | None) -> None:
    transport = getattr(_current, "transport", None)
    if transport is not None and sock is not None:
        transport.sockets.append(sock)


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose new connections report their socket to the transport sending on them."""

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> HTTPConnectionPool:
        pool = super().get_connection_with_tls_context(*args, **kwargs)
        pool.ConnectionCls = _WatchedHTTPSConnection if pool.scheme == "https" else _WatchedHTTPConnection
        return pool


class Watchdog:
    """One thread that aborts the transports whose deadline has passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, BoundedTransport]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, transport: BoundedTransport, at: float) -> None:
        with self._wake:
            heapq.heappush(self._heap, (at, next(self._counter), transport))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="wsman-watchdog", daemon=True)
                self._thread.start()
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


class BoundedTransport(Transport):
    """A pywinrm ``Transport`` whose every exchange obeys a deadline and a reply-size cap."""

    deadline: Deadline
    options: WsmanOptions
    address: str | None = None  # where to connect; the endpoint's host name stays for HTTP and TLS

    def start_watch(self, watchdog: Watchdog | None = None) -> None:
        self.sockets: list[socket.socket] = []
        self.expired = False
        self.finished = False
        self._mounted = False
        (watchdog or WATCHDOG).watch(self, time.monotonic() + max(self.deadline.remaining(), 0.0))

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
        super().close_session()

    def _drop_session(self) -> None:
        """Forget a connection abandoned mid-reply: the next message opens and authenticates a new one.

        NTLM state belongs to the TCP connection, so an optional class whose reply was cut off at the
        cap must not leave the host's remaining classes on a dead, unauthenticated connection.
        """
        if self.session is not None:
            self.session.close()
        self.session = None
        self.encryption = None
        self._mounted = False

    def build_session(self) -> requests.Session:
        fresh = self.session is None
        session = super().build_session()
        if fresh:  # HTTPS: no encryption set-up, so nothing has been sent yet
            self._preempt(session)
        return session

    def setup_encryption(self, session: requests.Session) -> None:
        self._preempt(session)
        super().setup_encryption(session)

    def _preempt(self, session: requests.Session) -> None:
        session.trust_env = False  # proxies and CA come from our options, not the environment
        if self.auth_method == "ntlm" and not isinstance(session.auth, PreemptiveNtlmAuth):
            session.auth = PreemptiveNtlmAuth(
                self.username, self.password, send_cbt=self.send_cbt, options=self.options, deadline=self.deadline
            )

    def _send_message_request(
        self, session: requests.Session, prepared_request: requests.PreparedRequest
    ) -> requests.Response:
        if not self._mounted:
            adapter = _WatchedAdapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._mounted = True
        left = self.deadline.check("sending a request")
        timeout = (min(self.options.connect_timeout_s, left), min(self.options.read_timeout_s, left))
        _current.transport = self
        try:
            return self._exchange(session, prepared_request, timeout)
        except Exception as exc:
            if self.expired:
                raise PollTimeout(f"host deadline of {self.deadline.seconds:g}s exceeded") from exc
            raise
        finally:
            _current.transport = None

    def _exchange(
        self, session: requests.Session, prepared_request: requests.PreparedRequest, timeout: tuple[float, float]
    ) -> requests.Response:
        response = session.send(prepared_request, timeout=timeout, stream=True)
        try:
            _read_capped(response, self.options, self.deadline)
        except ReplyTooLarge:
            self._drop_session()
            raise
        finally:
            response.close()
        if self.expired:
            raise PollTimeout(f"host deadline of {self.deadline.seconds:g}s exceeded")
        if response.status_code == 401:
            raise InvalidCredentialsError("the specified credentials were rejected by the server")
        if response.status_code >= 400:
            text = self._get_message_response_text(response) if response.content else b""
            raise WinRMTransportError("http", response.status_code, text.decode("utf-8", "replace"))
        return response


class PreemptiveNtlmAuth(HttpNtlmAuth):
    """NTLM that sends its NEGOTIATE token with the first request, as the Windows WinRM client does.

    requests_ntlm first sends the request without credentials, waits for the 401, then starts the
    handshake: three exchanges before the first answer. Sending NEGOTIATE up front makes it two
    (NEGOTIATE -> CHALLENGE, AUTHENTICATE -> answer) on the same connection.
    """

    def __init__(
        self,
        username: str | None,
        password: str | None,
        *,
        send_cbt: bool = True,
        options: WsmanOptions | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        super().__init__(username, password, send_cbt=send_cbt)
        self._client: Any = None
        self.options = options or WsmanOptions()
        self.deadline = deadline or Deadline(self.options.read_timeout_s)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Connection"] = "Keep-Alive"
        if self.session_security is None and self._client is None:
            self._client = spnego.client(
                self.username,
                self.password,
                protocol="ntlm",
                hostname=urlsplit(r.url or "").hostname or "unspecified",
                service="http",
                options=spnego.NegotiateOptions.use_ntlm,
            )
            r.headers["Authorization"] = "NTLM " + base64.b64encode(self._client.step() or b"").decode()
        r.register_hook("response", self._answer_challenge)
        return r

    def _answer_challenge(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        client, self._client = self._client, None
        challenge = _ntlm_token(response.headers.get("WWW-Authenticate", ""))
        if response.status_code != 401 or client is None or challenge is None:
            return response  # a 401 without a challenge is a refusal; the transport reports it
        bindings = self._channel_bindings(response)
        authenticate = _authenticate(client, challenge, bindings)
        # Read the body so the connection can carry the next request, under the same cap and deadline
        # as every other reply: a host must not be able to make the handshake swallow memory.
        try:
            _read_capped(response, self.options, self.deadline)
        except ReplyTooLarge:
            response.close()
            raise
        response.raw.release_conn()
        request = response.request.copy()
        if request.body is not None and hasattr(request.body, "seek"):
            request.body.seek(0)
        request.headers["Authorization"] = "NTLM " + base64.b64encode(authenticate or b"").decode()
        answer: requests.Response = response.connection.send(request, **kwargs)
        answer.history.append(response)
        self.session_security = ShimSessionSecurity(client)
        return answer

    def _channel_bindings(self, response: requests.Response) -> spnego.channel_bindings.GssChannelBindings | None:
        certificate_hash = self._get_server_cert(response)
        if not certificate_hash:
            return None
        return spnego.channel_bindings.GssChannelBindings(application_data=b"tls-server-end-point:" + certificate_hash)


def _ntlm_token(header: str) -> bytes | None:
    for part in header.split(","):
        scheme, _, token = part.strip().partition(" ")
        if scheme.lower() == "ntlm" and token.strip():
            try:
                return base64.b64decode(token.strip(), validate=True)
            except binascii.Error as exc:
                raise ProtocolError("the host's NTLM challenge is not valid base64") from exc
    return None


def _authenticate(client: Any, challenge: bytes, bindings: Any) -> bytes | None:
    """The AUTHENTICATE token for the host's CHALLENGE; a malformed CHALLENGE is the host's fault."""
    try:
        token: bytes | None = client.step(challenge, channel_bindings=bindings)
    except (ValueError, IndexError, struct.error) as exc:
        raise ProtocolError(f"malformed NTLM challenge from the host: {exc}") from exc
    return token


def _read_capped(response: requests.Response, options: WsmanOptions, deadline: Deadline) -> None:
    """Read the body into ``response`` chunk by chunk, stopping at the cap or the deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > options.max_reply_bytes:
        raise ReplyTooLarge(f"reply of {declared} bytes exceeds the {options.max_reply_bytes}-byte cap")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(READ_CHUNK):
        size += len(chunk)
        if size > options.max_reply_bytes:
            raise ReplyTooLarge(f"reply exceeds the {options.max_reply_bytes}-byte cap")
        chunks.append(chunk)
        deadline.check("reading a reply")
    response._content = b"".join(chunks)
    response._content_consumed = True


# --- name resolution -----------------------------------------------------------------------------
#
# getaddrinfo cannot be interrupted and a slow resolver would stall inside connect, outside any
# socket timeout; so the lookup runs in its own thread and the worker waits at most the time left.

Resolver = Callable[[str, int], str]


def system_resolve(host: str, port: int) -> str:
    """The first address the system resolver gives for ``host`` (raises ``socket.gaierror``)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return str(infos[0][4][0])


def resolve_host(host: str, port: int, deadline: Deadline, resolver: Resolver = system_resolve) -> str:
    """``host``'s address, looked up within ``deadline``; an address is returned as it is."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    answer: list[str | BaseException] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            answer.append(resolver(host, port))
        except Exception as exc:
            answer.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"resolve-{host}", daemon=True).start()
    if not done.wait(max(deadline.check("resolving the host name"), 0.0)):
        raise DnsError(f"{host}: no answer from the resolver within the host deadline of {deadline.seconds:g}s")
    result = answer[0]
    if isinstance(result, BaseException):
        raise DnsError(f"{host} does not resolve: {_lookup_reason(result)}") from result
    return result


def _lookup_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# --- protocol per host ---------------------------------------------------------------------------


def open_protocol(
    target: Target,
    credential: Credential,
    options: WsmanOptions,
    deadline: Deadline,
    resolver: Resolver = system_resolve,
) -> Protocol:
    """A fresh ``Protocol`` for one host; the caller closes it with ``close_protocol``.

    The host name is resolved first, within the deadline (raises ``DnsError``).
    """
    address = resolve_host(target.host, target.port, deadline, resolver)
    read_timeout = max(2, math.ceil(options.read_timeout_s))
    kwargs: dict[str, Any] = {
        "endpoint": target.endpoint,
        "username": credential.username,
        "password": credential.password.get_secret_value(),
        "server_cert_validation": "validate" if options.verify_tls else "ignore",
        "ca_trust_path": options.ca_bundle,
        "read_timeout_sec": read_timeout,
        "message_encryption": _encryption(target),
        # Not None: pywinrm turns None into {"no_proxy": "*"}, and requests then sets and deletes
        # os.environ["no_proxy"] around every lookup, which races between threads (KeyError).
        # Empty proxies mean "direct" without touching the environment.
        "proxy": "",
    }
    protocol = Protocol(transport=target.transport, operation_timeout_sec=read_timeout - 1, **kwargs)
    transport = BoundedTransport(auth_method=target.transport, **kwargs)
    transport.deadline = deadline
    transport.options = options
    transport.address = address
    transport.start_watch()
    protocol.transport = transport
    return protocol


def _encryption(target: Target) -> str:
    # NTLM over plain HTTP must seal every message; over HTTPS the TLS channel protects it.
    if target.transport == "ntlm" and target.scheme == "http":
        return "always"
    return "never" if target.transport == "basic" else "auto"


def close_protocol(protocol: Protocol) -> None:
    protocol.transport.close_session()


ProtocolFactory = Callable[[Target, Credential, WsmanOptions, Deadline], Protocol]


def enumerate_pages(protocol: Protocol, query: WqlQuery, *, to: str, operation_timeout_s: int = 20) -> list[bytes]:
    """The reply bodies of an Enumerate of ``query`` and any Pulls it needs."""
    pages = [protocol.send_message(enumerate_envelope(query, to=to, operation_timeout_s=operation_timeout_s))]
    context, end = parse.enumeration_cursor(pages[-1])
    while context and not end:
        if len(pages) > MAX_PULLS:
            raise ProtocolError(f"{query.class_name}: more than {MAX_PULLS} Pull pages")
        pages.append(protocol.send_message(pull_envelope(context, to=to, operation_timeout_s=operation_timeout_s)))
        context, end = parse.enumeration_cursor(pages[-1])
    return pages
