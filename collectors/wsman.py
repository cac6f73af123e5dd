"""WS-Management over pywinrm: Enumerate/Pull envelopes for WQL queries, one ``Protocol`` per host,
and a transport that enforces the host's wall-clock deadline and a reply-size cap.

pywinrm has one timeout for connect and read, no total deadline and no size cap, so
``BoundedTransport`` replaces its ``_send_message_request`` with a streamed read under the
deadline and byte cap. A ``Protocol`` holds NTLM state for one connection, so each host task opens
its own (``open_protocol``) and closes it afterwards. This module returns reply bytes; it does not
interpret WMI data (``parse`` does).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from xml.sax.saxutils import escape

from winrm.protocol import Protocol

from collectors import parse
from collectors.credentials import Credential
from collectors.deadline import Deadline
from collectors.errors import DnsError, ProtocolError
from collectors.inventory import Target
from collectors.resolve import Lookup, PendingLookup, system_lookup
from collectors.transport import WinrmSession, WinrmTransport, WsmanOptions
from collectors.wmi import CIMV2_WILDCARD_URI, WqlQuery
from models.hostfacts import is_address

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


MAX_ENVELOPE_BYTES = 153600  # what pywinrm and pypsrp ask for: within every Windows default (150 KB on WinRM 2.0)
MAX_ELEMENTS = 32000  # with OptimizeEnumeration, every instance arrives in the EnumerateResponse
MAX_PULLS = 50

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


# --- name resolution -----------------------------------------------------------------------------


def resolve_host(host: str, deadline: Deadline, lookup: Lookup = system_lookup) -> str:
    """``host``'s address, looked up within ``deadline`` (raises ``DnsError``); an address is returned as it is."""
    if is_address(host):
        return host
    pending = PendingLookup(host, lookup)
    if not pending.wait(deadline.check("resolving the host name")):
        raise DnsError(f"{host}: no answer from the resolver within the host deadline of {deadline.seconds:g}s")
    if pending.address is None:
        raise DnsError(pending.error or f"{host} does not resolve")
    return pending.address


# --- a session per host --------------------------------------------------------------------------


def open_protocol(
    target: Target,
    credential: Credential,
    options: WsmanOptions,
    deadline: Deadline,
    resolver: Lookup = system_lookup,
) -> WinrmSession:
    """A signed-out session with one host; the caller closes it with ``close_protocol``.

    The host name is resolved first, within the deadline (raises ``DnsError``); a host whose
    sign-in cannot work at all (Kerberos for an address, a missing extra) raises ``AuthError``.
    """
    address = resolve_host(target.host, deadline, resolver)
    return WinrmSession(WinrmTransport(target, credential, options, deadline, address=address))


def close_protocol(protocol: Protocol) -> None:
    protocol.transport.close_session()


ProtocolFactory = Callable[[Target, Credential, WsmanOptions, Deadline], Protocol]


def enumerate_instances(
    protocol: Protocol, query: WqlQuery, *, to: str, operation_timeout_s: int = 20
) -> tuple[parse.WmiInstance, ...]:
    """The instances of an Enumerate of ``query``, following any Pulls; each reply is parsed once."""
    page = parse.parse_page(
        protocol.send_message(enumerate_envelope(query, to=to, operation_timeout_s=operation_timeout_s)),
        query.class_name,
    )
    instances, pulls = list(page.instances), 0
    while page.context:
        pulls += 1
        if pulls > MAX_PULLS:
            raise ProtocolError(f"{query.class_name}: more than {MAX_PULLS} Pull pages")
        envelope = pull_envelope(page.context, to=to, operation_timeout_s=operation_timeout_s)
        page = parse.parse_page(protocol.send_message(envelope), query.class_name)
        instances.extend(page.instances)
    return tuple(instances)
