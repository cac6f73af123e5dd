"""Properties of the WS-Management reply parser on hostile text.

Real reply shapes (the replies recorded from Windows in ``tests/fixtures/windows/``, the collector's own
sample replies, and the simulator's ``SoftwareLicensingProduct``/``Service``, ``Win32_OperatingSystem``,
``Win32_ComputerSystem`` and ``Win32_NTLogEvent`` replies in class and fragment form) get random text in
their properties. ``parse.parse_page`` and every typed builder then give typed records (ints are ints in
their CIM range or None, datetimes are aware, UTC-convertible datetimes or None) or raise ``ProtocolError``
for malformed input; no other exception escapes.
"""

from __future__ import annotations

import dataclasses
import re
import typing
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collectors import parse
from collectors.errors import ProtocolError
from tests.windows_captures import captures_of_kind, load_capture, manifest

DATA = Path(__file__).parent / "data"
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

UINT16 = (0, 2**16 - 1)
UINT32 = (0, 2**32 - 1)
PORT = (0, 65535)
# Each typed record's whole numbers and the range their CIM property declares (ports: a TCP port).
INT_RANGES: dict[str, tuple[int, int]] = {
    "kms_port": PORT,
    "discovered_kms_port": PORT,
    "listening_port": PORT,
    "event_code": UINT16,
}
BUILDERS: tuple[Callable[[parse.WmiInstance], object], ...] = (
    parse.product,
    parse.other_kms_product,
    parse.service,
    parse.kms_counts,
    parse.os_info,
    parse.computer_info,
    parse.spp_event,
)
# The properties the builders read as numbers, truth values or datetimes.
NUMERIC_PROPERTIES = (
    "LicenseStatus", "LicenseStatusReason", "GracePeriodRemaining", "KeyManagementServicePort",
    "DiscoveredKeyManagementServiceMachinePort", "IsKeyManagementServiceMachine", "VLRenewalInterval",
    "KeyManagementServiceCurrentCount", "KeyManagementServiceTotalRequests", "KeyManagementServiceFailedRequests",
    "KeyManagementServiceLicensedRequests", "KeyManagementServiceNonGenuineGraceRequests", "RequiredClientCount",
    "KeyManagementServiceListeningPort", "KeyManagementServiceDnsPublishing", "ProductType", "LocalDateTime",
    "PartOfDomain", "EventCode", "RecordNumber", "TimeGenerated",
)  # fmt: skip


# --- reply shapes ------------------------------------------------------------------------------------


def _simulator_replies() -> list[tuple[str, str, bytes]]:
    from simulator import cim, soap
    from simulator.scenario import Host, KmsCounters, SppEvent

    now = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    kms_host = Host(
        name="kms-a", computer_name="KMS01", domain="corp.contoso.test", site="Taipei", edition="ws2022-std",
        product_type="server", activation="KMS host", license_status=1, kms=KmsCounters(current_count=31),
        events=(SppEvent(12290, 0, 3),), clock_offset_s=-3600,
    )  # fmt: skip
    client = Host(
        name="ws01", computer_name="WS01", domain="corp.contoso.test", site="Taipei", edition="win11-ent",
        product_type="workstation", activation="KMS client", license_status=2, reason=0xC004F074,
        grace_minutes=43200, kms_machine="kms01.corp.contoso.test",
        events=(SppEvent(8198, 0xC004F074, 5), SppEvent(12288, 0x8007232B, 9)),
    )  # fmt: skip
    classes = ("SoftwareLicensingProduct", "SoftwareLicensingService", "Win32_OperatingSystem")
    classes += ("Win32_ComputerSystem", "Win32_NTLogEvent")
    replies = []
    for host in (kms_host, client):
        ctx = cim.HostContext(host=host, now=now, kms_port=1700)
        for class_name in classes:
            found = cim.instances(class_name, ctx) or []
            for form in ("class", "fragment"):
                items = tuple(
                    soap.render_instance(i, tuple(p.name for p in i.props) if form == "fragment" else ()) for i in found
                )
                body = soap.envelope(
                    soap.Action.ENUMERATE, "uuid:x", soap.enumerate_response(soap.Page(items), "", True)
                )
                replies.append((f"{host.name}/{class_name}/{form}", class_name, body))
    return replies


@cache
def reply_shapes() -> tuple[tuple[str, str, bytes], ...]:
    """(name, WMI class, reply bytes) of every reply shape the properties start from."""
    shapes = [
        (name, manifest()[name].get("wmi_class", "Shell"), load_capture(name))
        for name in captures_of_kind("enumeration")
    ]
    shapes += [
        ("product_enumerate.xml", "SoftwareLicensingProduct", (DATA / "product_enumerate.xml").read_bytes()),
        ("os_class_form.xml", "Win32_OperatingSystem", (DATA / "os_class_form.xml").read_bytes()),
    ]
    return (*shapes, *_simulator_replies())


SHAPES = {name: (class_name, body) for name, class_name, body in reply_shapes()}
SHAPE_NAMES = sorted(SHAPES)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def set_value(prop: ET.Element, value: str | None) -> None:
    """Give a property the value ``value`` (None: ``xsi:nil``), keeping its shape (a nested Datetime stays)."""
    if value is None:
        prop.set(XSI_NIL, "true")
        prop.text = None
        for child in list(prop):
            prop.remove(child)
        return
    prop.attrib.pop(XSI_NIL, None)
    if len(prop):
        prop[0].text = value
        for child in list(prop[0]):
            prop[0].remove(child)
    else:
        prop.text = value


def with_values(
    body: bytes, values: Callable[[int, str], str | bool | None]
) -> tuple[bytes, list[list[tuple[str, str | None]]]]:
    """The reply with property ``i`` (local name ``name``) set to ``values(i, name)`` (False: left as is),
    and what each instance then holds, as (name, value) in order."""
    root = ET.fromstring(body)  # noqa: S314  # the test's own reply shapes
    expected: list[list[tuple[str, str | None]]] = []
    index = 0
    for items in [e for e in root.iter() if _local(str(e.tag)) == "Items"]:
        for item in items:
            held: list[tuple[str, str | None]] = []
            for prop in item:
                name = _local(str(prop.tag))
                value = values(index, name)
                index += 1
                if value is not False:
                    assert not isinstance(value, bool)
                    set_value(prop, value)
                held.append((name, _held(prop)))
            expected.append(held)
    return ET.tostring(root), expected


def _held(prop: ET.Element) -> str | None:
    if prop.get(XSI_NIL) in ("true", "1"):
        return None
    return "".join(prop[0].itertext()) if len(prop) else prop.text or ""


def grouped(held: list[tuple[str, str | None]]) -> dict[str, parse.WmiValue]:
    out: dict[str, list[str | None]] = {}
    for name, value in held:
        out.setdefault(name, []).append(value)
    return {name: values[0] if len(values) == 1 else tuple(values) for name, values in out.items()}


# --- what a typed record is --------------------------------------------------------------------------


def check_datetime(value: datetime) -> None:
    assert value.tzinfo is not None and value.utcoffset() is not None, value
    value.astimezone(UTC)  # a datetime the collector can compare and show: no OverflowError


def check_record(record: object) -> None:
    """Every field of a typed record has its declared type; numbers in range, datetimes usable."""
    assert dataclasses.is_dataclass(record)
    hints = typing.get_type_hints(type(record))
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        allowed = typing.get_args(hints[field.name]) or (hints[field.name],)
        if value is None:
            assert type(None) in allowed, (field.name, value)
        elif isinstance(value, bool):
            assert bool in allowed, (field.name, value)
        elif isinstance(value, int):
            assert int in allowed, (field.name, value)
            low, high = INT_RANGES.get(field.name, UINT32)
            assert low <= value <= high, (field.name, value)
        elif isinstance(value, datetime):
            assert datetime in allowed, (field.name, value)
            check_datetime(value)
        elif isinstance(value, str):
            assert str in allowed, (field.name, value)
        else:
            assert type(value) in allowed, (field.name, value)
            check_record(value)


def check_page(page: parse.Page) -> None:
    assert isinstance(page, parse.Page)
    assert page.context is None or isinstance(page.context, str)
    for instance in page.instances:
        assert isinstance(instance, parse.WmiInstance) and isinstance(instance.class_name, str)
        for name, value in instance.values:
            assert isinstance(name, str)
            assert value is None or isinstance(value, str) or all(v is None or isinstance(v, str) for v in value)
        for build in BUILDERS:
            record = build(instance)
            if record is not None:
                check_record(record)


def parsed_or_refused(body: bytes, class_name: str) -> parse.Page | None:
    """The page, checked, or None when the reply was refused with ``ProtocolError``."""
    try:
        page = parse.parse_page(body, class_name)
    except ProtocolError:
        return None
    check_page(page)
    return page


# --- text --------------------------------------------------------------------------------------------

# XML 1.0 characters: no surrogates, no C0 controls but tab, newline and carriage return, no U+FFFE/U+FFFF.
NOT_XML = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r") + "\ufffe\uffff"
xml_text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters=NOT_XML), max_size=40),
    st.sampled_from(["", " ", "<", ">", "&", "&amp;", "]]>", "<![CDATA[x]]>", '"', "'", "\r\n", "\r", "\t x \n"]),
)
long_text = st.integers(min_value=1_000, max_value=20_000).map(lambda n: "Ω<&>\x85\u2028" * n)  # 6 to 120 thousand
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
NUMBERS = [
    "4294967296", "4294967295", "-1", "-2147483648", "-2147483649", "1e9", "1.5", "٣", "²", "５", "1_000", "+5",
    " 7 ", "0x", "0xC004F074", "0x1FFFFFFFF", "-0x1", "0x_1", "9" * 5000, "0" * 5000 + "1", "65535", "65536",
    "true", "false", "True", "yes", "NaN", "inf", "",
    "20261126999999.000000+000", "99991231235959.999999-720", "00010101000000.000000+720",
    "20250301183000.000000+480", "20250301183000.000000+999", "20250301183000.0000001+000", "2025030118300.000000+000",
    "٢٠٢٥٠٣٠١١٨٣٠٠٠.٠٠٠٠٠٠+٤٨٠", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2025-03-01T10:30:00Z",
    "2025-03-01T10:30:00", "2025-03-01", "2025-W09-6", "16010101000000.000000+000",
]  # fmt: skip
number_text = st.one_of(
    st.sampled_from(NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.integers(min_value=-(2**70), max_value=2**70).map(hex),
    st.floats().map(repr),
    st.from_regex(r"[0-9]{14}\.[0-9]{1,6}[+-][0-9]{3}", fullmatch=True),
    st.datetimes().map(datetime.isoformat),
    st.tuples(st.datetimes(), st.integers(min_value=-1439, max_value=1439)).map(
        lambda d: d[0].replace(tzinfo=timezone(timedelta(minutes=d[1]))).isoformat()
    ),
)


# --- properties --------------------------------------------------------------------------------------


def test_every_reply_shape_parses_and_builds() -> None:
    pages = [parse.parse_page(body, class_name) for class_name, body in SHAPES.values()]
    for page in pages:
        check_page(page)
    assert sum(1 for page in pages if page.instances) >= 20


@EXAMPLES
@given(shape=st.sampled_from(SHAPE_NAMES), data=st.data())
def test_any_xml_text_in_every_property_is_read_verbatim(shape: str, data: st.DataObject) -> None:
    class_name, body = SHAPES[shape]
    long_at = data.draw(st.integers(0, 80))  # one property, if there are that many, gets a very long text
    mutated, expected = with_values(
        body, lambda i, _name: data.draw(long_text if i == long_at else st.one_of(st.none(), xml_text))
    )
    page = parse.parse_page(mutated, class_name)
    check_page(page)
    # The parser reads what was sent (carriage returns become newlines, as XML says).
    assert [dict(i.values) for i in page.instances] == [
        {k: _normalised(v) for k, v in grouped(held).items()} for held in expected
    ]


def _normalised(value: parse.WmiValue) -> parse.WmiValue:
    if isinstance(value, tuple):
        return tuple(_normalised(v) for v in value)  # type: ignore[misc]
    return None if value is None else value.replace("\r\n", "\n").replace("\r", "\n")


@EXAMPLES
@given(shape=st.sampled_from(SHAPE_NAMES), data=st.data())
def test_any_numeric_text_in_the_typed_properties_is_none_or_in_range(shape: str, data: st.DataObject) -> None:
    class_name, body = SHAPES[shape]
    mutated, _ = with_values(body, lambda _i, name: data.draw(number_text) if name in NUMERIC_PROPERTIES else False)
    check_page(parse.parse_page(mutated, class_name))


@EXAMPLES
@given(shape=st.sampled_from(SHAPE_NAMES), data=st.data())
def test_raw_unescaped_text_anywhere_parses_or_is_a_protocol_error(shape: str, data: st.DataObject) -> None:
    class_name, body = SHAPES[shape]
    slots = [m.span(1) for m in re.finditer(rb">([^<]*)<", body)]
    chosen = sorted(set(data.draw(st.lists(st.integers(0, len(slots) - 1), min_size=1, max_size=4))), reverse=True)
    for index in chosen:
        start, end = slots[index]
        text = data.draw(st.one_of(any_text, number_text, xml_text, long_text))
        body = body[:start] + text.encode("utf-8") + body[end:]
    parsed_or_refused(body, class_name)


@EXAMPLES
@given(shape=st.sampled_from(SHAPE_NAMES), data=st.data())
def test_a_cut_or_spliced_reply_parses_or_is_a_protocol_error(shape: str, data: st.DataObject) -> None:
    class_name, body = SHAPES[shape]
    start = data.draw(st.integers(0, len(body)))
    end = data.draw(st.integers(start, len(body)))
    inserted = data.draw(st.binary(max_size=20) | st.sampled_from([b"<", b"&", b"]]>", b"\x00", b"\xff\xfe", b"&#0;"]))
    parsed_or_refused(body[:start] + inserted + body[end:], class_name)


@EXAMPLES
@given(
    shape=st.sampled_from(SHAPE_NAMES),
    encoding=st.one_of(
        st.sampled_from(["utf-8", "UTF-16", "utf-32", "shift_jis", "cp932", "euc-jp", "big5", "gb18030", "latin-1"]),
        st.sampled_from(["ascii", "cp037", "utf-7", "idna", "rot13", "hex", "base64", "mbcs", "x" * 300, ""]),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\"'<>&"), max_size=20),
    ),
)
def test_any_declared_encoding_parses_or_is_a_protocol_error(shape: str, encoding: str) -> None:
    class_name, body = SHAPES[shape]
    body = re.sub(rb"^<\?xml[^>]*\?>\s*", b"", body.lstrip(b"\xef\xbb\xbf"))
    parsed_or_refused(f'<?xml version="1.0" encoding="{encoding}"?>'.encode() + body, class_name)


# --- the scalar readers ------------------------------------------------------------------------------

CIM_INTEGER = re.compile(r"[+-]?[0-9]{1,20}|0[xX][0-9a-fA-F]{1,16}")


@EXAMPLES
@given(text=st.one_of(number_text, any_text))
@example(text="4294967295").via("uint32 max")
@example(text="-1073418124").via("a signed HRESULT")
@example(text="0xC004F074").via("hexadecimal")
@example(text="٣").via("not ASCII")
@example(text="1_000").via("not a CIM literal")
@example(text="9" * 5000).via("too long for int()")
def test_to_int_reads_exactly_cim_integer_literals(text: str) -> None:
    value = parse.to_int(text)
    if CIM_INTEGER.fullmatch(text):
        assert value == int(text, 16 if text[:2].lower() == "0x" else 10)
    else:
        assert value is None


@EXAMPLES
@given(text=st.one_of(number_text, any_text))
def test_to_datetime_is_none_or_an_aware_usable_datetime(text: str) -> None:
    value = parse.to_datetime(text)
    assert value is None or isinstance(value, datetime)
    if value is not None:
        check_datetime(value)


@EXAMPLES
@given(text=st.one_of(number_text, any_text))
def test_a_truth_value_is_true_false_or_none(text: str) -> None:
    value = parse.WmiInstance("X", (("P", text),)).boolean("P")
    assert value is None if not text.strip() else isinstance(value, bool)


@EXAMPLES
@given(value=st.one_of(st.none(), st.integers(), st.integers(min_value=-(2**31), max_value=2**32 - 1)))
def test_an_hresult_is_none_or_unsigned_32_bit(value: int | None) -> None:
    result = parse.hresult(value)
    if value is not None and -(2**31) <= value < 2**32:
        assert result == value & 0xFFFFFFFF
    else:
        assert result is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("0", False),
        ("true", True),
        ("FALSE", False),
        ("²", False),
        ("1" * 5000, True),
        ("0" * 5000, False),
    ],
)
def test_truth_value_examples(text: str, expected: bool) -> None:
    assert parse.WmiInstance("X", (("P", text),)).boolean("P") is expected


@pytest.mark.parametrize(
    "text",
    [
        "20261126999999.000000+000",
        "99991231235959.999999-720",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "20250301183000.٠٠٠٠٠٠+٤٨٠",  # a DMTF datetime is written in ASCII digits
    ],
)
def test_datetimes_that_cannot_be_placed_in_utc_or_read_are_unknown(text: str) -> None:
    assert parse.to_datetime(text) is None


@pytest.mark.parametrize(
    ("name", "text", "field"),
    [
        ("KeyManagementServicePort", "99999", "kms_port"),
        ("KeyManagementServicePort", "-1", "kms_port"),
        ("GracePeriodRemaining", "4294967296", "grace_minutes"),
        ("LicenseStatusReason", "-2147483649", "license_status_reason"),
        ("LicenseStatus", "-1", "license_status"),
    ],
)
def test_a_product_number_outside_its_cim_range_is_unknown(name: str, text: str, field: str) -> None:
    instance = parse.WmiInstance("SoftwareLicensingProduct", (("ID", "x"), (name, text)))
    assert getattr(parse.product(instance), field) is None


@pytest.mark.parametrize("encoding", ["foo", "shift_jis", "utf-32"])
def test_a_reply_in_an_encoding_the_parser_cannot_read_is_a_protocol_error(encoding: str) -> None:
    with pytest.raises(ProtocolError):
        parse.parse_page(f'<?xml version="1.0" encoding="{encoding}"?><a/>'.encode(), "Win32_OperatingSystem")
