"""Pure functions from WS-Management reply bytes to typed, frozen records.

An Enumerate or Pull reply becomes ``WmiInstance`` values (property name -> text, ``None`` for
``xsi:nil``, a tuple for arrays), matched by local name so both full class elements and the
``XmlFragment`` items Windows returns for projected WQL queries are read. Typed records
(``LicensingProduct``, ``LicensingService``, ``OsInfo``, ``ComputerInfo``, ``SppEvent``) are built
from those. Nothing here does I/O; malformed input raises ``ProtocolError``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from collectors.errors import ProtocolError

WmiValue = str | None | tuple[str | None, ...]
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY")
_DMTF_RE = re.compile(r"^(\d{14})(?:\.(\d{1,6}))?([+-])(\d{3})$", re.ASCII)
# A CIM integer literal: decimal, or hexadecimal with 0x; ASCII digits only, at most 64 bits' worth.
_INT_RE = re.compile(r"[+-]?[0-9]{1,20}|0[xX][0-9a-fA-F]{1,16}")
UINT16_MAX = 2**16 - 1
UINT32_MAX = 2**32 - 1
PORT_MAX = 65535
_HR_RE = re.compile(r"(?:hr\s*=\s*)?(0x[0-9a-fA-F]{1,8})\b")


@dataclass(frozen=True, slots=True)
class WmiInstance:
    """One WMI instance as sent: property values by name, in document order."""

    class_name: str
    values: tuple[tuple[str, WmiValue], ...]

    def get(self, name: str) -> WmiValue:
        for key, value in self.values:
            if key == name:
                return value
        return None

    def text(self, name: str) -> str | None:
        value = self.get(name)
        if isinstance(value, tuple):
            value = value[0] if value else None
        return value.strip() if value is not None and value.strip() else None

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.get(name)
        if value is None:
            return ()
        items = value if isinstance(value, tuple) else (value,)
        return tuple(v for v in items if v is not None)

    def integer(self, name: str) -> int | None:
        return to_int(self.text(name))

    def boolean(self, name: str) -> bool | None:
        text = self.text(name)
        if text is None:
            return None
        return text.lower() == "true" or (text.isascii() and text.isdigit() and text.strip("0") != "")

    def datetime(self, name: str) -> datetime | None:
        return to_datetime(self.text(name))


# --- envelopes -----------------------------------------------------------------------------------


def _root(body: bytes) -> ET.Element:
    if any(marker in body for marker in _FORBIDDEN):
        raise ProtocolError("reply contains a DOCTYPE or ENTITY declaration")
    try:
        return ET.fromstring(body)  # noqa: S314  # DOCTYPE/ENTITY refused above, so no entity expansion
    except ET.ParseError as exc:
        raise ProtocolError(f"reply is not well-formed XML: {exc}") from exc
    except (LookupError, ValueError) as exc:  # an encoding declared that expat cannot read (unknown, multi-byte)
        raise ProtocolError(f"reply is in an encoding that cannot be read: {exc}") from exc


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


@dataclass(frozen=True, slots=True)
class Page:
    """One EnumerateResponse or PullResponse: its instances and where the enumeration goes on."""

    instances: tuple[WmiInstance, ...]
    context: str | None  # the context to Pull with; None once the sequence has ended


def parse_page(body: bytes, class_name: str) -> Page:
    """A reply page parsed once: its instances and its cursor; a SOAP fault or foreign reply raises."""
    root = _root(body)
    return Page(_instances(root, class_name), _cursor(root)[0])


def enumeration_cursor(body: bytes) -> tuple[str | None, bool]:
    """The enumeration context to Pull with, and whether the sequence has ended."""
    return _cursor(_root(body))


def _cursor(root: ET.Element) -> tuple[str | None, bool]:
    """Windows ends an optimized enumeration with an empty ``n:EnumerationContext`` and
    ``w:EndOfSequence``, and a Pull with ``n:EndOfSequence`` and no context; only the response
    element's own children count, so an instance value reading "EndOfSequence" cannot end paging.
    """
    response = root.find(".//{*}EnumerateResponse")
    if response is None:
        response = root.find(".//{*}PullResponse")
    if response is None:
        return None, True  # nothing to Pull; _instances says what the reply is instead
    if any(_local(child.tag) == "EndOfSequence" for child in response):
        return None, True
    context = next((c for c in response if _local(c.tag) == "EnumerationContext"), None)
    text = context.text.strip() if context is not None and context.text else None
    return text, text is None


def parse_enumeration(body: bytes, class_name: str) -> tuple[WmiInstance, ...]:
    """The instances in an EnumerateResponse or PullResponse body."""
    return _instances(_root(body), class_name)


def _instances(root: ET.Element, class_name: str) -> tuple[WmiInstance, ...]:
    fault = root.find(".//{*}Fault")
    if fault is not None:
        reason = " ".join("".join(fault.itertext()).split())
        raise ProtocolError(f"{class_name}: SOAP fault in reply: {reason[:160]}")
    items = root.find(".//{*}Items")
    if items is None:
        if root.find(".//{*}EnumerateResponse") is None and root.find(".//{*}PullResponse") is None:
            raise ProtocolError(f"{class_name}: reply is not an enumeration response")
        return ()
    return tuple(_instance(item, class_name) for item in items)


def parse_pages(pages: Sequence[bytes], class_name: str) -> tuple[WmiInstance, ...]:
    return tuple(i for page in pages for i in parse_enumeration(page, class_name))


def _instance(item: ET.Element, class_name: str) -> WmiInstance:
    name = _local(item.tag)
    values: dict[str, WmiValue] = {}
    for prop in item:
        key = _local(prop.tag)
        value = _value(prop)
        if key in values:
            previous = values[key]
            values[key] = (*(previous if isinstance(previous, tuple) else (previous,)), value)
        else:
            values[key] = value
    return WmiInstance(class_name if name == "XmlFragment" else name, tuple(values.items()))


def _value(prop: ET.Element) -> str | None:
    if prop.get(XSI_NIL) in ("true", "1"):
        return None
    if len(prop):
        # CIM datetimes arrive as <cim:Datetime>...</cim:Datetime> inside the property
        return "".join(prop[0].itertext())
    return prop.text or ""


# --- scalars -------------------------------------------------------------------------------------


def to_int(text: str | None) -> int | None:
    """The value of a CIM integer literal (``-12``, ``4294967295``, ``0xC004F074``); None for any other text."""
    if text is None or not _INT_RE.fullmatch(text):
        return None
    return int(text, 16) if text[:2] in ("0x", "0X") else int(text)


def _in_range(value: int | None, high: int) -> int | None:
    """``value`` when it is within 0..``high``, the range of its CIM type (a TCP port's for ports); else None."""
    return value if value is not None and 0 <= value <= high else None


def to_datetime(text: str | None) -> datetime | None:
    """An aware datetime from ISO 8601 (``xs:dateTime``) or DMTF (``yyyymmddHHMMSS.ffffff+UUU``) text."""
    if not text:
        return None
    match = _DMTF_RE.match(text)
    if match:
        value = _dmtf(*match.groups())
    else:
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if value is None:
        return None
    try:
        value.astimezone(UTC)  # a time at the very ends of the calendar has no UTC form: unknown
    except OverflowError:
        return None
    return value


def _dmtf(stamp: str, fraction: str | None, sign: str, minutes: str) -> datetime | None:
    offset = timedelta(minutes=int(minutes)) * (1 if sign == "+" else -1)
    try:
        base = datetime.strptime(stamp, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    micro = int((fraction or "0").ljust(6, "0"))
    return base.replace(microsecond=micro, tzinfo=timezone(offset))


def hresult(value: int | None) -> int | None:
    """The unsigned 32-bit form of an HRESULT that may arrive signed; None for a number no HRESULT is."""
    return None if value is None or not -(2**31) <= value <= UINT32_MAX else value & UINT32_MAX


# --- typed records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LicensingProduct:
    """The ``SoftwareLicensingProduct`` properties the collector uses."""

    id: str
    name: str | None
    description: str | None
    application_id: str | None
    partial_key: str | None
    channel: str | None
    license_status: int | None
    license_status_reason: int | None
    grace_minutes: int | None
    kms_machine: str | None
    kms_port: int | None
    discovered_kms_machine: str | None
    discovered_kms_port: int | None
    is_kms_machine: bool
    ad_activation_object: str | None
    renewal_interval_minutes: int | None = None  # VLRenewalInterval: how often a KMS client renews
    kms_counts: KmsCounts | None = None  # this application's KMS host counters, on a KMS host product


@dataclass(frozen=True, slots=True)
class KmsCounts:
    """A KMS host's counters for one application (``SoftwareLicensingProduct``) or the machine (service)."""

    current_count: int | None
    total_requests: int | None
    failed_requests: int | None
    licensed_requests: int | None
    non_genuine_requests: int | None


@dataclass(frozen=True, slots=True)
class OtherKmsProduct:
    """A KMS host product of an application other than Windows (Office, most often)."""

    application_id: str | None
    name: str | None
    current_count: int | None


@dataclass(frozen=True, slots=True)
class LicensingService:
    """The ``SoftwareLicensingService`` properties: KMS host counters and client KMS settings."""

    is_kms_machine: bool
    counts: KmsCounts  # machine-wide: all applications' KMS host counters together
    required_client_count: int | None
    listening_port: int | None
    dns_publishing: bool | None
    kms_machine: str | None
    kms_port: int | None
    discovered_kms_machine: str | None
    discovered_kms_port: int | None
    lookup_domain: str | None


@dataclass(frozen=True, slots=True)
class OsInfo:
    caption: str | None
    version: str | None
    product_type: int | None
    local_time: datetime | None
    computer_name: str | None


@dataclass(frozen=True, slots=True)
class ComputerInfo:
    name: str | None
    domain: str | None
    part_of_domain: bool | None


@dataclass(frozen=True, slots=True)
class SppEvent:
    """A Security-SPP activation event and the HRESULT it carries."""

    event_code: int
    record_number: int
    time_generated: datetime | None
    hresult: int | None


def product(instance: WmiInstance) -> LicensingProduct:
    return LicensingProduct(
        id=instance.text("ID") or "",
        name=instance.text("Name"),
        description=instance.text("Description"),
        application_id=instance.text("ApplicationID"),
        partial_key=instance.text("PartialProductKey"),
        channel=instance.text("ProductKeyChannel"),
        license_status=_in_range(instance.integer("LicenseStatus"), UINT32_MAX),
        license_status_reason=hresult(instance.integer("LicenseStatusReason")),
        grace_minutes=_in_range(instance.integer("GracePeriodRemaining"), UINT32_MAX),
        kms_machine=instance.text("KeyManagementServiceMachine"),
        kms_port=_in_range(instance.integer("KeyManagementServicePort"), PORT_MAX),
        discovered_kms_machine=instance.text("DiscoveredKeyManagementServiceMachineName"),
        discovered_kms_port=_in_range(instance.integer("DiscoveredKeyManagementServiceMachinePort"), PORT_MAX),
        is_kms_machine=bool(instance.boolean("IsKeyManagementServiceMachine")),
        ad_activation_object=instance.text("ADActivationObjectName"),
        renewal_interval_minutes=_in_range(instance.integer("VLRenewalInterval"), UINT32_MAX),
        kms_counts=kms_counts(instance) if instance.boolean("IsKeyManagementServiceMachine") else None,
    )


def other_kms_product(instance: WmiInstance) -> OtherKmsProduct:
    return OtherKmsProduct(
        application_id=instance.text("ApplicationID"),
        name=instance.text("Name"),
        current_count=_in_range(instance.integer("KeyManagementServiceCurrentCount"), UINT32_MAX),
    )


def kms_counts(instance: WmiInstance) -> KmsCounts:
    return KmsCounts(
        current_count=_in_range(instance.integer("KeyManagementServiceCurrentCount"), UINT32_MAX),
        total_requests=_in_range(instance.integer("KeyManagementServiceTotalRequests"), UINT32_MAX),
        failed_requests=_in_range(instance.integer("KeyManagementServiceFailedRequests"), UINT32_MAX),
        licensed_requests=_in_range(instance.integer("KeyManagementServiceLicensedRequests"), UINT32_MAX),
        non_genuine_requests=_in_range(instance.integer("KeyManagementServiceNonGenuineGraceRequests"), UINT32_MAX),
    )


def service(instance: WmiInstance) -> LicensingService:
    return LicensingService(
        is_kms_machine=bool(instance.boolean("IsKeyManagementServiceMachine")),
        counts=kms_counts(instance),
        required_client_count=_in_range(instance.integer("RequiredClientCount"), UINT32_MAX),
        listening_port=_in_range(instance.integer("KeyManagementServiceListeningPort"), PORT_MAX),
        dns_publishing=instance.boolean("KeyManagementServiceDnsPublishing"),
        kms_machine=instance.text("KeyManagementServiceMachine"),
        kms_port=_in_range(instance.integer("KeyManagementServicePort"), PORT_MAX),
        discovered_kms_machine=instance.text("DiscoveredKeyManagementServiceMachineName"),
        discovered_kms_port=_in_range(instance.integer("DiscoveredKeyManagementServiceMachinePort"), PORT_MAX),
        lookup_domain=instance.text("KeyManagementServiceLookupDomain"),
    )


def os_info(instance: WmiInstance) -> OsInfo:
    return OsInfo(
        caption=instance.text("Caption"),
        version=instance.text("Version"),
        product_type=_in_range(instance.integer("ProductType"), UINT32_MAX),
        local_time=instance.datetime("LocalDateTime"),
        computer_name=instance.text("CSName"),
    )


def computer_info(instance: WmiInstance) -> ComputerInfo:
    return ComputerInfo(
        name=instance.text("Name"),
        domain=instance.text("Domain"),
        part_of_domain=instance.boolean("PartOfDomain"),
    )


def spp_event(instance: WmiInstance) -> SppEvent | None:
    code = _in_range(instance.integer("EventCode"), UINT16_MAX)
    if code is None:
        return None
    return SppEvent(
        event_code=code,
        record_number=_in_range(instance.integer("RecordNumber"), UINT32_MAX) or 0,
        time_generated=instance.datetime("TimeGenerated"),
        hresult=event_hresult(instance.strings("InsertionStrings")),
    )


def event_hresult(strings: Iterable[str]) -> int | None:
    """The ``hr=0x...`` (8198) or leading HRESULT field (12288/12289) of an event's strings."""
    for text in strings:
        match = _HR_RE.search(text)
        if match:
            return int(match.group(1), 16)
    return None


def first(instances: Sequence[WmiInstance]) -> WmiInstance | None:
    return instances[0] if instances else None
