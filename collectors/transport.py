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
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ProtocolError as Urllib3ProtocolError
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError
from winrm.protocol import Protocol

from collectors import signin
from collectors.connection import WATCHDOG, HTTPPool, HTTPSPool, Watchdog, read_capped, tls_context
from collectors.credentials import Credential
from collectors.deadline import Deadline
from collectors.errors import AuthError, PollTimeout, ProtocolError, ReplyTooLarge
from collectors.inventory import Target
from collectors.kerberos import KerberosTickets
from collectors.sealing import certificate_hash, seal, unseal
from collectors.signin import Challenge, SecurityContext, SignInPlan

log = logging.getLogger("collectors")

MAX_LEGS = 3  # NTLM needs two 401 round trips at most; a host asking for more is looping
# What pywinrm (Transport.default_headers), requests and requests_ntlm send with every message; kept identical.
BASE_HEADERS: Final = {
    "User-Agent": "Python WinRM client",
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "Keep-Alive",
}
SOAP_CONTENT_TYPE: Final = "application/soap+xml;charset=UTF-8"


# --- options ------------------------------------------------------------------------


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
    tickets: KerberosTickets = field(default_factory=KerberosTickets, compare=False, repr=False)


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
            data = read_capped(response, self.options.max_reply_bytes, self.deadline)
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
        payload, content_type = seal(body, self.context, signin.ENCRYPTION_PROTOCOL[self.scheme or signin.NEGOTIATE])
        return payload, {"Content-Type": content_type}

    def _plain(self, reply: _Reply) -> bytes:
        """The reply body, unsealed when the host encrypted it."""
        if reply.plain is None:
            if not reply.header("content-type").lower().startswith("multipart/encrypted"):
                reply.plain = reply.body
            elif self.context is None:
                raise ProtocolError("the host sent an encrypted reply before signing in")
            else:
                reply.plain = unseal(reply.body, self.context)
        return reply.plain

    def _reconnect(self) -> None:
        self._pool.close()
        self._pool = self._new_pool()
        self.context = self.scheme = self.mechanism = None

    def _new_pool(self) -> HTTPPool | HTTPSPool:
        host = self.target.host
        pool: HTTPPool | HTTPSPool
        if self.https:
            context = tls_context(self.options.ca_bundle, self.options.verify_tls)
            pool = HTTPSPool(host, self.target.port, maxsize=1, ssl_context=context)
        else:
            pool = HTTPPool(host, self.target.port, maxsize=1)
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
        bindings = signin.channel_bindings(certificate_hash(probe.certificate)) if probe is not None else None
        context, first = self._first_token(mechanism, bindings)
        reply = self._post(payload, {"Authorization": signin.token_header(scheme, first)})
        for leg in range(MAX_LEGS):
            if reply.status != 401:
                break
            answer = signin.find(reply.challenges(), scheme)
            if answer is None or answer.token is None:
                return self._refused(mechanism, scheme, reply, leg, context, payload, retry=challenges is None)
            if mechanism == "ntlm" and self.https:
                bindings = signin.channel_bindings(certificate_hash(reply.certificate))
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
