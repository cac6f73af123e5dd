"""The asyncio server: one WinRM listener per simulated host, plus KMS ports and a DNS responder.

A hand-written HTTP/1.1 keep-alive server (POST ``/wsman`` only) with per-connection NTLM state,
Basic auth, optional TLS chosen per host address, and the per-host faults: latency, silence,
401 with valid credentials, 500 SOAP fault, truncated / malformed / oversized / slow-drip replies,
and an untrusted certificate. ``FleetServer`` runs inside one event loop; ``testing.py`` and the
CLI put that loop in a thread or the main process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any, Final

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from simulator import soap
from simulator.auth import (
    AuthError,
    ConnectionAuth,
    Credentials,
    KerberosKeys,
    NtlmUserFile,
    Verdict,
    challenge_headers,
    channel_bindings,
    describe_authorization,
)
from simulator.cim import HostContext
from simulator.fleet import FleetPlan
from simulator.scenario import Host, fqdn
from simulator.wsman import WsmanService

MAX_BODY: Final = 4 * 1024 * 1024
SOAP_CONTENT_TYPE: Final = "application/soap+xml;charset=UTF-8"
OVERSIZED_BYTES: Final = 24 * 1024 * 1024
DRIP_CHUNK: Final = 16
DRIP_INTERVAL_S: Final = 1.0
CERT_BLOCK: Final = 254  # addresses per server certificate: one /24 of the address plan
TLS_HANDSHAKE_TIMEOUT_S: Final = 10.0


class HttpError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = SOAP_CONTENT_TYPE

    def encode(self) -> bytes:
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
                  411: "Length Required", 413: "Request Entity Too Large", 500: "Internal Server Error"}  # fmt: skip
        lines = [f"HTTP/1.1 {self.status} {reason.get(self.status, 'Error')}", "Server: Microsoft-HTTPAPI/2.0",
                 f"Date: {formatdate(usegmt=True)}", f"Content-Length: {len(self.body)}"]  # fmt: skip
        if self.body:
            lines.append(f"Content-Type: {self.content_type}")
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


async def read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """One request from a keep-alive connection, or None when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise HttpError(400) from exc
        return None
    except asyncio.LimitOverrunError as exc:
        raise HttpError(400) from exc
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HttpError(400)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return HttpRequest(parts[0], parts[1], headers, await _read_body(reader, headers))


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise HttpError(411)
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError as exc:
        raise HttpError(400) from exc
    if length < 0 or length > MAX_BODY:
        raise HttpError(413)
    return await reader.readexactly(length) if length else b""


@dataclass
class _Connection:
    auth: ConnectionAuth
    https: bool
    ordinal: int = 1  # this connection's number among the host's connections
    answered: int = 0  # SOAP requests answered on this connection
    plain: bytes = b""  # the last request's SOAP body, unsealed


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request as a listener saw it, recorded for tests that compare clients on the wire.

    Header names are lower-cased; an ``Authorization`` value is reduced to its scheme and what it
    carried (``Negotiate ntlm-negotiate``, ``Basic password``), never the secret itself.
    """

    host: str
    connection: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    status: int


class TlsMaterial:
    """Server certificates for HTTPS addresses, from the fleet CA or, for the ``tls`` fault, an untrusted one.

    Everything is issued by ``issue`` before any listener binds: key generation and context setup
    would otherwise stall the event loop on a connection's first handshake. One certificate covers
    up to ``CERT_BLOCK`` addresses (IP SANs plus ``localhost``), which keeps a 10,000-host fleet at
    about 40 certificates while each handshake still carries only a few kB of chain.
    """

    def __init__(self) -> None:
        import trustme  # only HTTPS fleets need it

        self.ca = trustme.CA(organization_name="Activation Monitor simulated fleet")
        self.rogue_ca = trustme.CA(organization_name="Untrusted simulated CA")
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._hashes: dict[str, bytes] = {}

    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    def issue(
        self, addresses: Iterable[str], *, untrusted: bool = False, names: Mapping[str, str] | None = None
    ) -> None:
        """Issue certificates for ``addresses`` (an address issued again gets a fresh certificate).

        ``names`` maps an address to the DNS name its host is listed by; that name joins the SANs.
        """
        ca = self.rogue_ca if untrusted else self.ca
        pending = list(addresses)
        for start in range(0, len(pending), CERT_BLOCK):
            block = pending[start : start + CERT_BLOCK]
            dns_names = [names[a] for a in block if names and a in names]
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            leaf = ca.issue_cert(*block, *dns_names, "localhost")
            leaf.configure_cert(context)
            digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())).digest()
            self._contexts.update(dict.fromkeys(block, context))
            self._hashes.update(dict.fromkeys(block, digest))

    def certificate_hash(self, address: str) -> bytes | None:
        """RFC 5929 ``tls-server-end-point`` hash (SHA-256: trustme signs with it) of an address's certificate."""
        return self._hashes.get(address)

    def context_for(self, address: str) -> ssl.SSLContext:
        """The server context of an issued address; ``KeyError`` when ``issue`` never covered it."""
        return self._contexts[address]


class FleetServer:
    """Every listener of one fleet, sharing one ``WsmanService`` and one set of counters."""

    def __init__(
        self,
        plan: FleetPlan,
        creds: Credentials,
        *,
        tls: TlsMaterial | None = None,
        keytab: Path | None = None,
        latency_ms: int = 0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        service: WsmanService | None = None,
    ) -> None:
        self.plan = plan
        self.creds = creds
        self.tls = tls
        self.kerberos = KerberosKeys(keytab) if keytab is not None else None
        self.latency_ms = latency_ms
        self.now = now
        self.service = service or WsmanService()
        self.stats: Counter[str] = Counter()
        self.host_requests: Counter[str] = Counter()
        # (host, scheme, what it carried) for every request in a scheme the host's listener did not offer
        self.not_offered: Counter[tuple[str, str, str]] = Counter()
        self.principals: Counter[tuple[str, str]] = Counter()  # (host, client principal) per NTLM/Kerberos sign-in
        self.host_connections: Counter[str] = Counter()
        self.recorder: list[Exchange] | None = None  # tests set a list to record every request
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dns: asyncio.DatagramTransport | None = None
        self._ntlm_token: int | None = None

    async def start(self) -> None:
        """Bind every listener; raises ``OSError`` when an address or port is taken."""
        self._issue_certificates()
        self._ntlm_token = NtlmUserFile.register(self.creds)
        for host in self.plan.bound_hosts():
            await self._listen(host)
        listening = self.plan.listening_kms()
        for fqdn_name, address in self.plan.kms_addresses().items():
            if fqdn_name in listening:
                self._servers.append(await asyncio.start_server(_kms_accept, address, self.plan.ports.kms))
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: DnsResponder(self.plan), local_addr=("127.0.0.1", self.plan.ports.dns)
        )
        self._dns = transport

    def _issue_certificates(self) -> None:
        """Certificates for every HTTPS listener, so no handshake waits for one."""
        https = [h for h in self.plan.bound_hosts() if h.scheme == "https"]
        if not https:
            return
        if self.tls is None:
            raise ValueError("HTTPS hosts need TlsMaterial")
        names = {self.plan.addresses[h.name]: self.plan.inventory_host(h) for h in https}
        for untrusted in (False, True):
            addresses = [self.plan.addresses[h.name] for h in https if (h.fault == "tls") == untrusted]
            self.tls.issue(addresses, untrusted=untrusted, names=names)

    async def _listen(self, host: Host) -> None:
        address = self.plan.addresses[host.name]

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._connection(reader, writer, host.name)

        # TLS belongs to the listener: upgrading an accepted plain stream loses a ClientHello
        # that the stream reader has already buffered, and the handshake then stalls.
        context = self.tls.context_for(address) if host.scheme == "https" and self.tls is not None else None
        timeout = TLS_HANDSHAKE_TIMEOUT_S if context is not None else None
        server = await asyncio.start_server(
            handler, address, self.plan.port_for(host), backlog=256, ssl=context, ssl_handshake_timeout=timeout
        )
        self._servers.append(server)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        if self._dns is not None:
            self._dns.close()
        if self._ntlm_token is not None:
            NtlmUserFile.unregister(self._ntlm_token)
            self._ntlm_token = None

    # --- one connection ----------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.stats["connections"] += 1
        try:
            await self._serve(reader, writer, name)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError, OSError):
            self.stats["connection_errors"] += 1
        except asyncio.CancelledError:
            self.stats["cancelled"] += 1  # the server is stopping; the connection just ends
        except HttpError as exc:
            with contextlib.suppress(Exception):
                writer.write(HttpResponse(exc.status, headers=[("Connection", "close")]).encode())
                await writer.drain()
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
        self.host_connections[name] += 1
        conn = _Connection(
            ConnectionAuth(self.creds, self.kerberos),
            https=writer.get_extra_info("ssl_object") is not None,
            ordinal=self.host_connections[name],
        )
        while True:
            request = await read_request(reader)
            if request is None:
                return
            host = self.plan.host(name)
            self.stats["requests"] += 1
            self.host_requests[name] += 1
            if host.fault == "silent":
                await reader.read()  # never answers; waits for the client to give up
                return
            conn.plain = b""
            response = self._respond(request, conn, host)
            if self.recorder is not None:
                self.recorder.append(_exchange(name, conn, request, response))
            if response is RESET:
                self.stats["resets"] += 1
                writer.transport.abort()  # a TCP reset in the middle of the exchange
                return
            await self._send(writer, response, host)
            if ("Connection", "close") in response.headers:
                return

    def _respond(self, request: HttpRequest, conn: _Connection, host: Host) -> HttpResponse:
        if request.path.split("?", 1)[0].lower() != "/wsman":
            return HttpResponse(404)
        if request.method != "POST":
            return HttpResponse(405)
        verdict = self._authenticate(request, conn, host)
        if verdict.challenge:
            self.stats["unauthorized"] += 1
            if verdict.answer:  # the next leg of a handshake, on this same connection
                return HttpResponse(401, headers=_answer(verdict))
            # a fresh challenge ends the connection, as a Windows listener's does (Connection: close)
            return HttpResponse(401, headers=[*_challenges(host), ("Connection", "close")])
        signed = _answer(verdict)
        content_type = request.headers.get("content-type", "")
        encrypted = content_type.lower().startswith("multipart/encrypted")
        try:
            body = conn.auth.unseal(content_type, request.body) if encrypted else request.body
        except AuthError:
            return HttpResponse(400)
        conn.plain = body
        if not body:
            return HttpResponse(200, headers=signed)
        transient = _transient(host.fault, conn)
        if transient is not None:
            return transient
        if not encrypted and not conn.https and conn.auth.authenticated and not host.winrm.allow_unencrypted:
            # An unsealed message over plain HTTP while AllowUnencrypted is false: Windows answers 401.
            self.stats["unencrypted_refused"] += 1
            return HttpResponse(401, headers=[*_challenges(host), ("Connection", "close")])
        status, reply = self._reply(body, host)
        self.stats["sealed_messages" if encrypted else "plain_messages"] += 1
        if encrypted:
            sealed, sealed_type = conn.auth.seal(reply)
            return HttpResponse(status, sealed, headers=signed, content_type=sealed_type)
        return HttpResponse(status, reply, headers=signed)

    def _authenticate(self, request: HttpRequest, conn: _Connection, host: Host) -> Verdict:
        """Whether the request may proceed, by the listener's rules and this connection's sign-in."""
        address = self.plan.addresses[host.name]
        certificate_hash = self.tls.certificate_hash(address) if conn.https and self.tls else None
        if certificate_hash is not None and host.fault == "cbt_mismatch":
            certificate_hash = bytes(len(certificate_hash))  # the certificate of some other TLS channel
        bindings = channel_bindings(certificate_hash)
        rejected = conn.auth.rejected
        # a host faulted with auth_reject refuses even correct credentials, as a misconfigured listener does
        verdict = conn.auth.decide(
            request.headers.get("authorization"),
            host.winrm,
            https=conn.https,
            hostname=fqdn(host),
            bindings=bindings,
            refuse=host.fault == "auth_reject",
            domain_joined=_domain_joined(host),
        )
        self.stats["auth_failures"] += conn.auth.rejected - rejected
        if verdict.allowed and conn.auth.acceptor is not None and conn.auth.signed_in_now:
            conn.auth.signed_in_now = False
            self.stats[f"signin_{conn.auth.acceptor.kind}"] += 1
            self.principals[(host.name, conn.auth.acceptor.principal or "")] += 1
        if conn.auth.not_offered is not None:
            self.not_offered[(host.name, *conn.auth.not_offered)] += 1
            conn.auth.not_offered = None
        return verdict

    def _reply(self, body: bytes, host: Host) -> tuple[int, bytes]:
        ctx = HostContext(host, self.now(), self.plan.ports.kms, self.plan.kms_addresses(), self.plan.fqdn_addresses())
        status, reply = self.service.handle(body, ctx)
        return _inject(host.fault, status, reply, host)

    async def _send(self, writer: asyncio.StreamWriter, response: HttpResponse, host: Host) -> None:
        delay = (host.latency_ms + self.latency_ms) / 1000
        if delay:
            await asyncio.sleep(delay)
        data = response.encode()
        if host.fault != "slow_drip":
            writer.write(data)
            await writer.drain()
            return
        for start in range(0, len(data), DRIP_CHUNK):
            writer.write(data[start : start + DRIP_CHUNK])
            await writer.drain()
            await asyncio.sleep(DRIP_INTERVAL_S)


def _exchange(host: str, conn: _Connection, request: HttpRequest, response: HttpResponse) -> Exchange:
    headers = tuple(
        (name, describe_authorization(value) if name == "authorization" else value)
        for name, value in request.headers.items()
    )
    return Exchange(host, conn.ordinal, headers, conn.plain, response.status)


RESET: Final = HttpResponse(0)
TRANSIENT_PAGE: Final = b"<html><body><h1>Service Unavailable</h1></body></html>"


def _transient(fault: str, conn: _Connection) -> HttpResponse | None:
    """The passing failure a flaky host gives its first SOAP request on a connection, once.

    ``flaky_500``: an HTTP 500 that is no SOAP fault, on every connection; ``flaky_reset``: a TCP
    reset, on every other connection (so a retry on a fresh one succeeds).
    """
    conn.answered += 1
    if conn.answered != 1:
        return None
    if fault == "flaky_500":
        return HttpResponse(500, TRANSIENT_PAGE, content_type="text/html")
    if fault == "flaky_reset" and conn.ordinal % 2 == 1:
        return RESET
    return None


def _domain_joined(host: Host) -> bool:
    return host.domain.upper() != "WORKGROUP"


def _challenges(host: Host) -> list[tuple[str, str]]:
    return challenge_headers(host.winrm, domain_joined=_domain_joined(host))


def _answer(verdict: Verdict) -> list[tuple[str, str]]:
    return [("WWW-Authenticate", " ".join(verdict.answer))] if verdict.answer else []


_OVERSIZED: dict[str, bytes] = {}


def _inject(fault: str, status: int, reply: bytes, host: Host) -> tuple[int, bytes]:
    """Damage a reply the way the host's fault says."""
    if fault == "soap_500":
        failure = soap.Fault("s:Receiver", "w:InternalError", "The WS-Management service cannot process the request. "
                             "The WMI service reported a quota violation.", soap.INTERNAL_ERROR,
                             "Quota violation ")  # fmt: skip
        return 500, soap.fault_envelope(failure, "", host.computer_name)
    if fault == "truncated":
        return status, reply[: max(1, len(reply) * 2 // 3)]
    if fault == "malformed":
        return status, reply.replace(b"</s:Body>", b"<w:Items><p:Broken attr=></s:Body>", 1).replace(b"&", b"&&", 1)
    if fault == "oversized":
        if "blob" not in _OVERSIZED:
            _OVERSIZED["blob"] = (
                reply[: reply.find(b"<s:Body>") + 8] + b"<w:Items>" + b"<w:Item>" * (OVERSIZED_BYTES // 8)
            )
        return status, _OVERSIZED["blob"]
    return status, reply


async def _kms_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


class DnsResponder(asyncio.DatagramProtocol):
    """Answers SRV ``_vlmcs._tcp.<domain>`` and A queries for the fleet; NXDOMAIN for anything else."""

    def __init__(self, plan: FleetPlan) -> None:
        self.plan = plan
        self.records = (plan.srv_records(), plan.a_records())
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint gives a DatagramTransport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        if self.transport is not None:
            self.transport.sendto(answer_dns(query, *self.records, self.plan.ports.kms).to_wire(), addr)


def answer_dns(
    query: dns.message.Message, srv: dict[str, str], a_records: dict[str, str], kms_port: int
) -> dns.message.Message:
    """The fleet's answer to one DNS query."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response
    question = query.question[0]
    name = question.name.to_text().rstrip(".").lower()
    if name in srv and question.rdtype in {dns.rdatatype.SRV, dns.rdatatype.ANY}:
        target = srv[name]
        response.answer.append(dns.rrset.from_text(question.name, 300, "IN", "SRV", f"0 0 {kms_port} {target}."))
        if target in a_records:
            response.additional.append(dns.rrset.from_text(f"{target}.", 300, "IN", "A", a_records[target]))
    elif name in a_records and question.rdtype in {dns.rdatatype.A, dns.rdatatype.ANY}:
        response.answer.append(dns.rrset.from_text(question.name, 300, "IN", "A", a_records[name]))
    elif name not in srv and name not in a_records:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response
