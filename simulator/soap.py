"""SOAP 1.2 / WS-Management XML as Windows writes it: request parsing and reply building.

Owns the protocol vocabulary (namespaces, action URIs, WSManFault codes), reading the fields the
server needs out of a request envelope, and rendering replies byte-for-byte in Windows' shape:
``EnumerateResponse`` / ``PullResponse`` with instances in their class namespace (or
``w:XmlFragment`` for a property list), ``xsi:nil`` for nulls, ``cim:Datetime``, arrays as repeated
elements, shell replies and faults with ``f:WSManFault`` codes.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from simulator.cim import Instance, Prop

NS: Final = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "cim": "http://schemas.dmtf.org/wbem/wscim/1/common",
    "wmi": "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/",
}
WMI_CIMV2: Final = NS["wmi"]
WQL_DIALECT: Final = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
SHELL_URI: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
ANONYMOUS: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"


class Action:
    """WS-Management action URIs the server answers."""

    ENUMERATE: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
    PULL: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
    RELEASE: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release"
    CREATE: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
    DELETE: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
    GET: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
    COMMAND: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
    RECEIVE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
    SIGNAL: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
    FAULT: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
    ENUMERATION_FAULT: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault"
    ADDRESSING_FAULT: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"


# Windows names the fault action after the specification the subcode comes from: WS-Enumeration
# faults (n:CannotProcessFilter) carry the enumeration fault action, WS-Addressing ones the
# addressing action, everything else the WS-Management one (tests/fixtures/windows/fault_*).
_FAULT_ACTION_BY_PREFIX: Final = {"n": Action.ENUMERATION_FAULT, "a": Action.ADDRESSING_FAULT}
UNEXPECTED_SELECTORS: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors"


@dataclass(frozen=True, slots=True)
class Fault:
    """A WS-Management fault: SOAP code and subcode, reason, WSManFault code, optional WMI text.

    ``wmi_query`` (the WQL the WMI provider failed on) adds the provider's ``__ExtendedStatus``;
    ``detail`` is a ``w:FaultDetail`` URI; ``message`` is the ``f:Message`` when it differs from the
    reason; an empty ``action`` follows the subcode's namespace.
    """

    code: str
    subcode: str
    reason: str
    wsman_code: int
    wmi_message: str = ""
    action: str = ""
    wmi_query: str = ""
    detail: str = ""
    message: str = ""

    @property
    def fault_action(self) -> str:
        return self.action or _FAULT_ACTION_BY_PREFIX.get(self.subcode.partition(":")[0], Action.FAULT)


CANNOT_PROCESS_FILTER: Final = 2150858778
INVALID_CONTEXT: Final = 2150858779
FILTER_DIALECT_UNAVAILABLE: Final = 2150858777
ACTION_NOT_SUPPORTED: Final = 2150858771
DESTINATION_UNREACHABLE: Final = 2150858770
INVALID_SELECTORS: Final = 2150858843
INTERNAL_ERROR: Final = 2150858854


def filter_fault(wmi_message: str, query: str = "") -> Fault:
    """The fault Windows returns for a WQL filter the WMI provider cannot run."""
    return Fault("s:Sender", "n:CannotProcessFilter",
                 "The data source could not process the filter. The filter might be missing or it might be invalid. "
                 "Change the filter and try the request again.  ", CANNOT_PROCESS_FILTER, wmi_message,
                 wmi_query=query)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Request:
    """The fields of a request envelope the server acts on."""

    action: str
    resource_uri: str
    message_id: str
    selectors: dict[str, str]
    options: dict[str, str]
    body: ET.Element | None
    max_envelope_size: int = 153600
    to: str = ""


class RequestError(ValueError):
    """The bytes are not a SOAP envelope the server can read."""


def parse_request(data: bytes) -> Request:
    """Read a SOAP request; raises ``RequestError`` for anything that is not a WS-Man envelope."""
    try:
        root = ET.fromstring(data)  # noqa: S314 - expat >= 2.4.1 refuses entity-expansion bombs
    except ET.ParseError as exc:
        raise RequestError(f"malformed XML: {exc}") from exc
    header = root.find("s:Header", NS)
    if root.tag != f"{{{NS['s']}}}Envelope" or header is None:
        raise RequestError("not a SOAP 1.2 envelope")
    return Request(
        action=_text(header, "a:Action"),
        resource_uri=_text(header, "w:ResourceURI"),
        message_id=_text(header, "a:MessageID"),
        selectors={s.get("Name", ""): s.text or "" for s in header.findall("w:SelectorSet/w:Selector", NS)},
        options={o.get("Name", ""): o.text or "" for o in header.findall("w:OptionSet/w:Option", NS)},
        body=root.find("s:Body", NS),
        max_envelope_size=_int(_text(header, "w:MaxEnvelopeSize"), 153600),
        to=_text(header, "a:To"),
    )


def _text(parent: ET.Element, path: str) -> str:
    node = parent.find(path, NS)
    return (node.text or "").strip() if node is not None else ""


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def body_child(request: Request, path: str) -> ET.Element | None:
    return None if request.body is None else request.body.find(path, NS)


# --- rendering -----------------------------------------------------------------------------

_ENVELOPE_NS: Final = " ".join(f'xmlns:{k}="{NS[k]}"' for k in ("s", "a", "n", "w", "x", "rsp", "p"))


def xml_text(value: str) -> str:
    """Escape text for XML, dropping characters XML 1.0 cannot carry."""
    cleaned = "".join(ch for ch in value if ch in "\t\n\r" or ord(ch) >= 0x20)
    return escape(cleaned, {"\r": "&#xD;"})


def envelope(action: str, relates_to: str, body: str) -> bytes:
    """A reply envelope with the addressing headers Windows sends."""
    header = (
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To><a:RelatesTo>{xml_text(relates_to)}</a:RelatesTo></s:Header>"
    )
    return f'<s:Envelope xml:lang="en-US" {_ENVELOPE_NS}>{header}<s:Body>{body}</s:Body></s:Envelope>'.encode()


def fault_envelope(fault: Fault, relates_to: str, machine: str, provider_machine: str = "") -> bytes:
    """A SOAP fault with ``f:WSManFault`` detail (and the WMI provider's fault when there is one).

    ``machine`` is the name the client addressed the host by; the provider's own fault names the
    computer itself (``provider_machine``, by default the same).
    """
    message = xml_text(fault.message or fault.reason)
    if fault.wmi_message:
        message = _provider_fault(fault, provider_machine or machine)
    detail = f"<w:FaultDetail>{xml_text(fault.detail)}</w:FaultDetail>" if fault.detail else ""
    body = (
        f"<s:Fault><s:Code><s:Value>{fault.code}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{xml_text(fault.reason)}</s:Text></s:Reason>'
        f'<s:Detail>{detail}<f:WSManFault xmlns:f="{NS["f"]}" Code="{fault.wsman_code}" Machine={quoteattr(machine)}>'
        f"<f:Message>{message}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return envelope(fault.fault_action, relates_to, body)


def _provider_fault(fault: Fault, machine: str) -> str:
    inner = (
        f'<f:WSManFault Code="{fault.wsman_code}" Machine={quoteattr(machine)}>'
        f"<f:Message>{xml_text(fault.wmi_message.rstrip())} </f:Message></f:WSManFault>"
    )
    if fault.wmi_query:
        status = NS["wmi"] + "__ExtendedStatus"
        inner += (
            f'<f:ExtendedError><p:__ExtendedStatus xmlns:p="{status}" xmlns:cim="{NS["cim"]}" '
            f'xmlns:xsi="{NS["xsi"]}" xsi:type="p:__ExtendedStatus_Type"><p:Description xsi:nil="true"/>'
            f"<p:Operation>ExecQuery</p:Operation><p:ParameterInfo>{xml_text(fault.wmi_query)}</p:ParameterInfo>"
            f'<p:ProviderName>WinMgmt</p:ProviderName><p:StatusCode xsi:nil="true"/></p:__ExtendedStatus>'
            f"</f:ExtendedError>"
        )
    path = "%systemroot%\\system32\\WsmWmiPl.dll"
    return f'<f:ProviderFault provider="WMI Provider" path="{path}">{inner}</f:ProviderFault>'


def cim_datetime(value: datetime) -> str:
    """``xs:dateTime`` as the WMI plugin writes a CIM datetime (UTC as ``Z``)."""
    if value.utcoffset() == UTC.utcoffset(None):
        return value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{value.microsecond:06d}" if value.microsecond else "") + "Z"
    return value.isoformat()


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return xml_text(str(value))


def render_prop(prop: Prop, prefix: str) -> str:
    """One property; ``prefix`` is ``"p:"`` in class form and ``""`` inside ``w:XmlFragment``."""
    tag = f"{prefix}{prop.name}"
    if prop.value is None:
        return f'<{tag} xsi:nil="true"/>'
    if isinstance(prop.value, list):
        return "".join(f"<{tag}>{_scalar(v)}</{tag}>" for v in prop.value) or f'<{tag} xsi:nil="true"/>'
    if isinstance(prop.value, datetime):
        dt_tag = "cim:Datetime" if prefix else "Datetime"
        return f"<{tag}><{dt_tag}>{cim_datetime(prop.value)}</{dt_tag}></{tag}>"
    return f"<{tag}>{_scalar(prop.value)}</{tag}>"


def render_instance(inst: Instance, properties: tuple[str, ...] = ()) -> str:
    """An instance in class form (``SELECT *``), or a ``w:XmlFragment`` holding only ``properties``."""
    if properties:
        wanted = {p.lower() for p in properties}
        inner = "".join(render_prop(p, "") for p in inst.props if p.name.lower() in wanted)
        return f'<w:XmlFragment xmlns:xsi="{NS["xsi"]}">{inner}</w:XmlFragment>'
    uri = WMI_CIMV2 + inst.class_name
    inner = "".join(render_prop(p, "p:") for p in inst.props)
    return (
        f'<p:{inst.class_name} xmlns:p="{uri}" xmlns:cim="{NS["cim"]}" xmlns:xsi="{NS["xsi"]}" '
        f'xsi:type="p:{inst.class_name}_Type">{inner}</p:{inst.class_name}>'
    )


@dataclass(frozen=True, slots=True)
class Page:
    """A slice of an enumeration: rendered items, and the context to continue with (None = ended)."""

    items: tuple[str, ...] = ()
    context: str | None = None
    ended: bool = True
    extra: dict[str, str] = field(default_factory=dict)


def enumerate_response(page: Page, context: str, optimized: bool) -> str:
    """``n:EnumerateResponse`` body; items are inline only for an optimized enumeration.

    As Windows does, an optimized enumeration that ends here sends an empty context and no
    ``w:Items`` element at all when nothing matched.
    """
    ended = optimized and page.ended
    parts = [f"<n:EnumerateResponse><n:EnumerationContext>{'' if ended else context}</n:EnumerationContext>"]
    if optimized and page.items:
        parts.append(f"<w:Items>{''.join(page.items)}</w:Items>")
    if ended:
        parts.append("<w:EndOfSequence/>")
    parts.append("</n:EnumerateResponse>")
    return "".join(parts)


def pull_response(page: Page) -> str:
    """``n:PullResponse`` body: a context while more remain, ``n:EndOfSequence`` at the end."""
    context = (
        "" if page.ended or page.context is None else f"<n:EnumerationContext>{page.context}</n:EnumerationContext>"
    )
    end = "<n:EndOfSequence/>" if page.ended else ""
    return f"<n:PullResponse>{context}<n:Items>{''.join(page.items)}</n:Items>{end}</n:PullResponse>"


def shell_created(shell_id: str, address: str) -> str:
    return (
        f"<x:ResourceCreated><a:Address>{xml_text(address)}</a:Address><a:ReferenceParameters>"
        f'<w:ResourceURI>{SHELL_URI}</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">{shell_id}'
        f"</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
        f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId><rsp:ResourceUri>{SHELL_URI}</rsp:ResourceUri>"
        f"<rsp:Owner>simulated</rsp:Owner><rsp:ClientIP>127.0.0.1</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S"
        f"</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr"
        f"</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S"
        f"</rsp:ShellInactivity></rsp:Shell>"
    )


def command_response(command_id: str) -> str:
    return f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"


def receive_response(command_id: str, streams: Iterable[tuple[str, str]], exit_code: int) -> str:
    """All output at once (base64 chunks) and the ``CommandState/Done`` with its exit code."""
    chunks = "".join(
        f'<rsp:Stream Name="{name}" CommandId="{command_id}">{data}</rsp:Stream>' for name, data in streams
    )
    ends = "".join(
        f'<rsp:Stream Name="{n}" CommandId="{command_id}" End="true"></rsp:Stream>' for n in ("stdout", "stderr")
    )
    state = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
    return (
        f'<rsp:ReceiveResponse>{chunks}{ends}<rsp:CommandState CommandId="{command_id}" State="{state}">'
        f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>"
    )
