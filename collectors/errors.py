"""The collector's closed failure vocabulary, and the one place foreign exceptions are translated.

Why a host could not be read (``models.enums.FailureClass``)::

    PollError                       a host could not be read; carries a class and a one-line reason
    ├── dns        DnsError         the host name does not resolve, or is not a valid name
    ├── refused    RefusedError     TCP connection refused, reset or the network is unreachable
    ├── timeout    PollTimeout      connect, read or the host's total deadline expired
    ├── auth       AuthError        credentials rejected (HTTP 401, WS-Man access denied, NTLM failed),
    │                               or the inventory names a credential that is not configured
    ├── tls        TlsError         certificate validation or the TLS handshake failed
    └── protocol   ProtocolError    the reply is not usable WS-Management: HTTP error, SOAP fault,
                                    malformed or oversized body, undecryptable message

Run-level errors are separate: ``InventoryError`` (the inventory file cannot be used) and
``SpoolError`` (the database is down and results cannot be kept on disk either).

``map_transport_errors()`` is the single boundary where requests, urllib3, pywinrm, pyspnego, ssl,
socket and XML exceptions become a ``PollError``; the most specific cause in the exception chain
wins, and ``raise ... from`` keeps the original for the log.
"""

from __future__ import annotations

import binascii
import http.client
import json
import re
import socket
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar
from xml.parsers import expat

import requests.exceptions as rq
import spnego.exceptions as sp
import urllib3.exceptions as u3
import winrm.exceptions as wr

from models.enums import FailureClass

REASON_LIMIT = 240
# Win32 ERROR_ACCESS_DENIED as WinRM reports it: plain, or as the HRESULT 0x80070005 (seen with w:InternalError).
WSMAN_ACCESS_DENIED = frozenset({5, 0x80070005})


class PollError(Exception):
    """A host could not be read; ``failure_class`` says why and ``reason`` is one line."""

    failure_class: ClassVar[FailureClass] = FailureClass.PROTOCOL

    def __init__(self, reason: str) -> None:
        super().__init__(one_line(reason))

    @property
    def reason(self) -> str:
        return str(self)


class DnsError(PollError):
    failure_class = FailureClass.DNS


class RefusedError(PollError):
    failure_class = FailureClass.REFUSED


class PollTimeout(PollError):
    failure_class = FailureClass.TIMEOUT


class AuthError(PollError):
    failure_class = FailureClass.AUTH


class TlsError(PollError):
    failure_class = FailureClass.TLS


class ProtocolError(PollError):
    failure_class = FailureClass.PROTOCOL


class ReplyTooLarge(ProtocolError):
    """A reply exceeded ``max_reply_bytes``; reading stopped at the cap."""


class InventoryError(Exception):
    """The inventory file as a whole cannot be used (missing, unreadable, wrong header)."""


class SpoolError(Exception):
    """Results could not be written to the database nor to the spool."""


ERROR_BY_CLASS: dict[FailureClass, type[PollError]] = {
    FailureClass.DNS: DnsError,
    FailureClass.REFUSED: RefusedError,
    FailureClass.TIMEOUT: PollTimeout,
    FailureClass.AUTH: AuthError,
    FailureClass.TLS: TlsError,
    FailureClass.PROTOCOL: ProtocolError,
}

# User-facing sentence per class, shown in summaries and the dashboard legend.
EXPLANATION: dict[FailureClass, str] = {
    FailureClass.DNS: "The host name could not be resolved.",
    FailureClass.REFUSED: "The host refused or reset the WinRM connection, or is unreachable.",
    FailureClass.TIMEOUT: "The host did not answer within its deadline.",
    FailureClass.AUTH: "The credentials were rejected or are not configured.",
    FailureClass.TLS: "The host's HTTPS certificate could not be validated.",
    FailureClass.PROTOCOL: "The host answered with something that is not usable WS-Management.",
}

# Exception type -> class. The lookup walks each exception's MRO, so the most specific entry wins;
# the exhaustiveness test checks every exception type of these libraries hits an entry here.
MAPPING: dict[type[BaseException], FailureClass] = {
    PollError: FailureClass.PROTOCOL,  # subclasses carry their own class
    # requests
    rq.RequestException: FailureClass.PROTOCOL,
    rq.ConnectionError: FailureClass.REFUSED,
    rq.ProxyError: FailureClass.REFUSED,
    rq.SSLError: FailureClass.TLS,
    rq.Timeout: FailureClass.TIMEOUT,
    rq.ConnectTimeout: FailureClass.TIMEOUT,
    rq.InvalidURL: FailureClass.DNS,
    rq.InvalidProxyURL: FailureClass.PROTOCOL,
    rq.RetryError: FailureClass.PROTOCOL,
    rq.JSONDecodeError: FailureClass.PROTOCOL,
    # urllib3
    u3.HTTPError: FailureClass.PROTOCOL,
    u3.SSLError: FailureClass.TLS,
    u3.ProxyError: FailureClass.REFUSED,
    u3.TimeoutError: FailureClass.TIMEOUT,
    u3.NewConnectionError: FailureClass.REFUSED,
    u3.NameResolutionError: FailureClass.DNS,
    u3.ConnectTimeoutError: FailureClass.TIMEOUT,
    u3.LocationValueError: FailureClass.DNS,
    u3.PoolError: FailureClass.REFUSED,
    u3.ProxySchemeUnsupported: FailureClass.PROTOCOL,
    u3.MessageDefect: FailureClass.PROTOCOL,  # email.errors: malformed HTTP headers
    # pywinrm
    wr.WinRMError: FailureClass.PROTOCOL,
    wr.AuthenticationError: FailureClass.AUTH,
    wr.WinRMTransportError: FailureClass.PROTOCOL,
    wr.WinRMOperationTimeoutError: FailureClass.TIMEOUT,
    # pyspnego (NTLM handshake and message sealing)
    sp.SpnegoError: FailureClass.AUTH,
    sp.BadMICError: FailureClass.PROTOCOL,
    sp.OperationNotAvailableError: FailureClass.PROTOCOL,
    sp.InvalidTokenError: FailureClass.AUTH,
    sp.NativeError: FailureClass.AUTH,
    sp.FeatureMissingError: FailureClass.AUTH,
    # ssl, socket and the standard library
    ssl.SSLError: FailureClass.TLS,
    ssl.CertificateError: FailureClass.TLS,
    ssl.SSLZeroReturnError: FailureClass.REFUSED,
    ssl.SSLEOFError: FailureClass.TLS,
    socket.gaierror: FailureClass.DNS,
    socket.herror: FailureClass.DNS,
    TimeoutError: FailureClass.TIMEOUT,
    ConnectionRefusedError: FailureClass.REFUSED,
    ConnectionError: FailureClass.REFUSED,
    OSError: FailureClass.REFUSED,
    PermissionError: FailureClass.AUTH,  # requests_ntlm: "Server did not respond with NTLM challenge token"
    http.client.HTTPException: FailureClass.PROTOCOL,
    http.client.RemoteDisconnected: FailureClass.REFUSED,
    # Malformed replies as the parsing libraries report them. Plain ValueError, LookupError and
    # AttributeError are left out on purpose: on our path they are bugs, which must reach safe_poll
    # with their traceback instead of passing for a host's bad reply.
    ET.ParseError: FailureClass.PROTOCOL,
    expat.ExpatError: FailureClass.PROTOCOL,
    UnicodeError: FailureClass.PROTOCOL,
    binascii.Error: FailureClass.PROTOCOL,
    json.JSONDecodeError: FailureClass.PROTOCOL,
}


def _kerberos_mapping() -> dict[type[BaseException], FailureClass]:
    """gssapi's and krb5's errors, when the optional Kerberos support is installed: sign-in failures."""
    found: dict[type[BaseException], FailureClass] = {}
    try:
        from gssapi.raw.misc import GSSError

        found[GSSError] = FailureClass.AUTH
    except ImportError:
        pass
    try:
        from krb5 import Krb5Error

        found[Krb5Error] = FailureClass.AUTH
    except ImportError:
        pass
    return found


MAPPING.update(_kerberos_mapping())

# When several causes in a chain map to different classes, the earlier class here wins: a TLS or
# DNS cause is more telling than the generic "connection error" wrapped around it.
PRIORITY = (
    FailureClass.TLS,
    FailureClass.DNS,
    FailureClass.AUTH,
    FailureClass.TIMEOUT,
    FailureClass.REFUSED,
    FailureClass.PROTOCOL,
)

# Wrappers whose own class says little; their causes decide.
_GENERIC = (rq.ConnectionError, u3.MaxRetryError, u3.ProtocolError, rq.ChunkedEncodingError, OSError)


def one_line(text: str, limit: int = REASON_LIMIT) -> str:
    """Collapse whitespace and cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def mapped_class(exc_type: type[BaseException]) -> FailureClass | None:
    """The class of the most specific ``MAPPING`` entry in ``exc_type``'s MRO, if any."""
    for base in exc_type.__mro__:
        if base in MAPPING:
            return MAPPING[base]
    return None


def classify_exception(exc: BaseException) -> FailureClass:
    """The failure class of a foreign exception, looking through its chain of causes."""
    if isinstance(exc, PollError):
        return exc.failure_class
    if isinstance(exc, wr.WSManFaultError) and exc.wsman_fault_code in WSMAN_ACCESS_DENIED:
        return FailureClass.AUTH
    if isinstance(exc, wr.WinRMTransportError) and exc.code == 401:
        return FailureClass.AUTH
    found = [c for c in (_specific_class(e) for e in _chain(exc)) if c is not None]
    if not found:
        return mapped_class(type(exc)) or FailureClass.PROTOCOL
    return min(found, key=PRIORITY.index)


def _specific_class(exc: BaseException) -> FailureClass | None:
    if type(exc) in _GENERIC or (isinstance(exc, OSError) and type(exc) is OSError):
        return None
    return mapped_class(type(exc))


def _chain(exc: BaseException, depth: int = 6) -> Iterator[BaseException]:
    """``exc`` and the exceptions it wraps (``reason``, first argument, cause, context)."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < depth * 4:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(_wrapped(current))


def _wrapped(exc: BaseException) -> list[BaseException]:
    inner: list[object] = [getattr(exc, "reason", None), exc.__cause__]
    inner.extend(exc.args)  # urllib3 puts the cause second: ProtocolError("Connection aborted.", cause)
    if not exc.__suppress_context__:
        inner.append(exc.__context__)
    return [e for e in inner if isinstance(e, BaseException)]


def describe(exc: BaseException) -> str:
    """A one-line reason for ``exc``: its type and message, the innermost telling cause appended."""
    if isinstance(exc, PollError):
        return exc.reason
    if isinstance(exc, wr.WSManFaultError):
        code = f" (WS-Man fault {exc.wsman_fault_code})" if exc.wsman_fault_code is not None else ""
        return one_line(f"WS-Management fault{code}: {exc.reason}")
    if isinstance(exc, wr.WinRMTransportError):
        return one_line(f"HTTP {exc.code} from the host")
    inner = _innermost(exc)
    text = _POOL_NOISE.sub("", str(inner)).replace("_Watched", "") or type(inner).__name__
    return one_line(f"{LEAD[classify_exception(exc)]}: {text}")


# urllib3 prefixes every message with the pool; the host is already on the row.
_POOL_NOISE = re.compile(r"\w*HTTPS?ConnectionPool\(host='[^']*', port=\d+\): |Max retries exceeded with url: /wsman ")
LEAD: dict[FailureClass, str] = {
    FailureClass.DNS: "name resolution failed",
    FailureClass.REFUSED: "connection failed",
    FailureClass.TIMEOUT: "timed out",
    FailureClass.AUTH: "authentication failed",
    FailureClass.TLS: "TLS failed",
    FailureClass.PROTOCOL: "bad reply",
}


def _innermost(exc: BaseException) -> BaseException:
    """The deepest exception of the chain that says something specific (else ``exc``)."""
    found = exc
    for inner in _chain(exc):
        if _specific_class(inner) is not None and str(inner):
            found = inner
    return found


def to_poll_error(exc: BaseException) -> PollError:
    """Translate ``exc`` into the ``PollError`` subclass of its failure class."""
    if isinstance(exc, PollError):
        return exc
    return ERROR_BY_CLASS[classify_exception(exc)](describe(exc))


@contextmanager
def map_transport_errors() -> Iterator[None]:
    """Turn any foreign exception raised inside the block into a ``PollError`` (``raise ... from``)."""
    try:
        yield
    except PollError:
        raise
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as exc:
        if mapped_class(type(exc)) is None:
            raise  # not a transport or reply problem: a bug, reported with its traceback by the poller
        raise to_poll_error(exc) from exc
