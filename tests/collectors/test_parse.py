from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors import parse
from collectors.errors import ProtocolError

DATA = Path(__file__).parent / "data"


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_product_fragment_becomes_typed_record():
    [instance] = parse.parse_enumeration(read("product_enumerate.xml"), "SoftwareLicensingProduct")
    product = parse.product(instance)
    assert instance.class_name == "SoftwareLicensingProduct"
    assert product.channel == "Volume:GVLK"
    assert product.license_status == 2
    assert product.license_status_reason == 0xC004F074
    assert product.grace_minutes == 43200
    assert product.kms_machine is None
    assert product.discovered_kms_machine == "kms01.corp.contoso.test"
    assert product.ad_activation_object is None
    assert parse.enumeration_cursor(read("product_enumerate.xml")) == (None, True)


def test_class_form_datetime_arrays_and_hostile_text_kept_verbatim():
    [instance] = parse.parse_enumeration(read("os_class_form.xml"), "Win32_OperatingSystem")
    info = parse.os_info(instance)
    assert info.caption == "Microsoft Windows 11 Enterprise <script>alert(1)</script>"
    assert info.computer_name == "=CMD|' /C calc'!A0"
    assert info.local_time == datetime(2025, 3, 1, 10, 30, 0, 500000, tzinfo=UTC)
    assert instance.strings("MUILanguages") == ("zh-TW", "en-US")
    assert info.product_type == 1


def test_empty_enumeration_has_no_instances():
    assert parse.parse_enumeration(read("empty_enumerate.xml"), "SoftwareLicensingProduct") == ()


@pytest.mark.parametrize("name", ["truncated.xml", "hostile.xml", "fault.xml"])
def test_unusable_replies_raise_protocol_error(name):
    with pytest.raises(ProtocolError):
        parse.parse_enumeration(read(name), "SoftwareLicensingProduct")


def test_dmtf_datetime_and_signed_hresult():
    assert parse.to_datetime("20250301183000.000000+480") == datetime(
        2025, 3, 1, 18, 30, tzinfo=timezone(timedelta(hours=8))
    )
    assert parse.hresult(-1073418124) == 0xC004F074
    assert parse.event_hresult(["hr=0xC004F074", "RuleId=eeba;AppId=55c9"]) == 0xC004F074
    assert parse.event_hresult(["The client has sent...\r\nInfo:\r\n0x8007232B, 0x00000000, kms:1688"]) == 0x8007232B


def test_round_trip_with_simulator_rendering():
    from simulator import cim, soap
    from simulator.scenario import Host, KmsCounters, SppEvent

    host = Host(
        name="kms-a",
        computer_name="KMS01",
        domain="corp.contoso.test",
        site="Taipei",
        edition="ws2022-std",
        product_type="server",
        activation="KMS host",
        license_status=1,
        kms=KmsCounters(current_count=31),
        events=(SppEvent(8198, 0xC004F074, 5),),
        clock_offset_s=-3600,
    )
    now = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    ctx = cim.HostContext(host=host, now=now, kms_port=1700)

    def reply(class_name: str, properties: tuple[str, ...] = ()) -> bytes:
        items = tuple(soap.render_instance(i, properties) for i in cim.instances(class_name, ctx) or [])
        return soap.envelope(soap.Action.ENUMERATE, "uuid:x", soap.enumerate_response(soap.Page(items), "uuid:c", True))

    service = parse.service(parse.parse_enumeration(reply("SoftwareLicensingService"), "SoftwareLicensingService")[0])
    assert (service.is_kms_machine, service.counts.current_count, service.listening_port) == (True, 31, 1700)
    os_instance = parse.parse_enumeration(
        reply("Win32_OperatingSystem", ("LocalDateTime", "ProductType")), "Win32_OperatingSystem"
    )
    info = parse.os_info(os_instance[0])
    assert info.local_time == now - timedelta(hours=1) and info.product_type == 3
    events = [parse.spp_event(i) for i in parse.parse_enumeration(reply("Win32_NTLogEvent"), "Win32_NTLogEvent")]
    assert [e.hresult for e in events if e and e.event_code == 8198] == [0xC004F074]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40))
def test_any_text_value_survives_escaping(value):
    from xml.sax.saxutils import escape

    cleaned = "".join(ch for ch in value if ch in "\t\n" or ord(ch) >= 0x20)
    body = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">'
        f"<s:Body><EnumerateResponse><w:Items><w:XmlFragment><Name>{escape(cleaned)}</Name></w:XmlFragment></w:Items>"
        "</EnumerateResponse></s:Body></s:Envelope>"
    ).encode()
    [instance] = parse.parse_enumeration(body, "Win32_ComputerSystem")
    assert (instance.get("Name") or "") == cleaned
