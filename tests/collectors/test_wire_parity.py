"""Wire parity: what the collector sends, against what stock pywinrm sends for the same operation.

Both clients send the same Enumerate to the same simulated host while the listener records every
request (scheme, what the credentials field carried, headers, the unsealed SOAP). The two sequences
must be equal once the differences listed in ``DIFFERENCES`` are taken out; each listed difference
names the public source showing that Windows accepts it. A new difference fails until it is listed.

The envelope is compared the same way: our Enumerate header against pywinrm's own header builder
(``Protocol._get_soap_header``), element by element.
"""

# ruff: noqa: S314 - the XML compared here is our own and pywinrm's

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import winrm
import xmltodict
from pydantic import SecretStr

from collectors import wmi
from collectors.credentials import Credential
from collectors.deadline import Deadline
from collectors.inventory import Target
from collectors.transport import WsmanOptions
from collectors.wsman import NAMESPACES, WSManAction, close_protocol, enumerate_envelope, open_protocol
from simulator.scenario import WinrmService
from simulator.server import Exchange
from simulator.testing import FleetHandle, running_fleet

# Headers whose values legitimately differ between any two requests.
VOLATILE = frozenset({"content-length", "host"})

# What our collector does differently from stock pywinrm 0.5.0 on the wire, and why Windows accepts it.
DIFFERENCES = {
    "preemptive-negotiate": (
        "The first request carries the NTLM NEGOTIATE token in `Negotiate` (on an empty POST over HTTP, with "
        "the message over HTTPS); pywinrm (requests_ntlm) first sends the request without credentials and "
        "starts NTLM on the 401. Source: WinRb/WinRM lib/winrm/http/transport.rb@20389c369e73 lines 230-248 "
        "(init_auth posts `Authorization: Negotiate <type 1>` first), a maintained WinRM client used against "
        "Windows; pywinrm itself sends its Kerberos token pre-emptively (force_preemptive=True, transport.py)."
    ),
    "basic-after-offer": (
        "Basic credentials go only after a 401 has offered `Basic`: the first request is sent without them; "
        "pywinrm sends Basic with the first request. Source: RFC 7235 section 4.1 (the 401 lists the schemes "
        "the server accepts) and requests_ntlm's and requests-kerberos' first, credential-less request."
    ),
    "envelope-must-understand": (
        "`mustUnderstand` is the SOAP 1.2 namespaced attribute (`s:mustUnderstand`); pywinrm writes it without "
        "a namespace. Source: SOAP 1.2 part 1 section 5.2.3; jborean93/pypsrp src/pypsrp/wsman.py@42a34edd "
        "lines 579-605; tariksetia/txwinrm txwinrm/request/enumerate.xml@2a66d032 (Windows 2003-2008 R2)."
    ),
    "envelope-to": (
        "`a:To` is the host's endpoint; pywinrm always writes `http://windows-host:5985/wsman`. Source: "
        "pypsrp src/pypsrp/wsman.py@42a34edd line 611 (To = the transport's endpoint)."
    ),
}


def normalised(exchange: Exchange) -> tuple[str, str, bool, tuple[tuple[str, str], ...]]:
    """(credentials carried, content kind, SOAP carried, the other headers) of one recorded request."""
    headers = dict(exchange.headers)
    authorization = headers.pop("authorization", "")
    content = headers.pop("content-type", "")
    kind = "sealed" if content.startswith("multipart/encrypted") else "plain"
    rest = tuple(sorted((k, v) for k, v in headers.items() if k not in VOLATILE))
    return authorization, kind, bool(exchange.body), rest


def without(sequence: list, difference: str, scheme: str) -> list:
    """The stock client's sequence with a listed difference taken out, to compare with ours."""
    if difference == "preemptive-negotiate" and sequence and sequence[0][0] == "":
        return sequence[1:]  # the credential-less first request
    if difference == "basic-after-offer" and sequence and sequence[0][0].startswith("Basic"):
        _, kind, _, headers = sequence[0]
        return [("", kind, False, headers), *sequence]  # a refused request's SOAP is never read
    return sequence


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    # Basic enabled so both clients can use it over HTTPS; unencrypted traffic stays refused.
    with running_fleet(hosts=12, seed=5, winrm=WinrmService(basic=True), workdir=tmp_path_factory.mktemp("wire")) as f:
        yield f


@pytest.fixture(scope="module")
def tls_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    with running_fleet(
        hosts=12, seed=5, https=True, winrm=WinrmService(basic=True), workdir=tmp_path_factory.mktemp("wire_tls")
    ) as f:
        yield f


def healthy(fleet: FleetHandle) -> str:
    return next(row["name"] for row in fleet.truth if not row["fault"])


def both_clients(fleet: FleetHandle, transport: str) -> tuple[list, list]:
    name = healthy(fleet)
    endpoint = fleet.endpoint(name)
    scheme = endpoint.split(":", 1)[0]
    address = fleet.address(name)
    target = Target(address, int(endpoint.rsplit(":", 1)[1].split("/")[0]), scheme, transport)  # type: ignore[arg-type]
    credential = Credential("default", fleet.username, SecretStr(fleet.password))
    options = WsmanOptions(ca_bundle=str(fleet.ca_path) if fleet.ca_path else None)
    message = enumerate_envelope(wmi.OPERATING_SYSTEM, to=endpoint)
    with fleet.recording() as ours:
        session = open_protocol(target, credential, options, Deadline(10))
        session.send_message(message)
        close_protocol(session)
    with fleet.recording() as stock:
        protocol = winrm.protocol.Protocol(
            endpoint, transport=transport, username=fleet.username, password=fleet.password, proxy=None,
            ca_trust_path=str(fleet.ca_path) if fleet.ca_path else None, message_encryption="auto",
        )  # fmt: skip
        protocol.send_message(message)
        protocol.transport.close_session()
    return [normalised(e) for e in ours], [normalised(e) for e in stock]


@pytest.mark.parametrize(
    ("scheme", "transport", "differences"),
    [
        ("http", "ntlm", ["preemptive-negotiate"]),
        ("https", "ntlm", ["preemptive-negotiate"]),
        ("https", "basic", ["basic-after-offer"]),
    ],
)
def test_the_collector_sends_what_pywinrm_sends_but_for_listed_differences(
    fleet, tls_fleet, scheme, transport, differences
):
    ours, stock = both_clients(tls_fleet if scheme == "https" else fleet, transport)
    assert all(name in DIFFERENCES for name in differences)
    expected = stock
    for difference in differences:
        expected = without(expected, difference, scheme)
    assert ours == expected


def test_ntlm_over_http_is_sealed_by_both_and_never_sent_in_clear(fleet):
    ours, stock = both_clients(fleet, "ntlm")
    for sequence in (ours, stock):
        soap = [request for request in sequence if request[2]]
        assert soap and all(kind == "sealed" for _, kind, _, _ in soap)


def _header_elements(xml: str) -> dict[str, dict[str, str]]:
    """Header child elements by qualified name, with their attributes (qualified names too)."""
    root = ET.fromstring(xml)
    header = root.find(f"{{{NAMESPACES['s']}}}Header")
    assert header is not None
    found = {}
    for child in header:
        found[child.tag] = dict(child.attrib)
        for grandchild in child:
            found[f"{child.tag}/{grandchild.tag}"] = dict(grandchild.attrib)
    return found


def test_the_enumerate_header_has_pywinrms_elements_but_for_listed_differences():
    ours = _header_elements(enumerate_envelope(wmi.OPERATING_SYSTEM, to="http://ws01.corp.example:5985/wsman"))
    stock_protocol = winrm.protocol.Protocol("http://ws01:5985/wsman", transport="ntlm", username="u", password="p")
    header = stock_protocol._get_soap_header(action=WSManAction.ENUMERATE, resource_uri=wmi.CIMV2_WILDCARD_URI)
    stock = _header_elements(xmltodict.unparse({"env:Envelope": header}))
    assert set(ours) == set(stock)
    must = f"{{{NAMESPACES['s']}}}mustUnderstand"
    for element, attributes in stock.items():
        # envelope-must-understand: the same flag, in the SOAP namespace
        plain = {(must if key == "mustUnderstand" else key): value for key, value in attributes.items()}
        assert ours[element] == plain, element
    assert "envelope-must-understand" in DIFFERENCES and "envelope-to" in DIFFERENCES


def test_every_listed_difference_names_its_source():
    for name, text in DIFFERENCES.items():
        assert "Source:" in text, name


def test_the_max_envelope_size_is_pywinrms():
    stock = winrm.protocol.Protocol("http://ws01:5985/wsman", transport="ntlm", username="u", password="p")
    ours = ET.fromstring(enumerate_envelope(wmi.OPERATING_SYSTEM, to="http://ws01:5985/wsman"))
    size = ours.find(f"{{{NAMESPACES['s']}}}Header/{{{NAMESPACES['w']}}}MaxEnvelopeSize")
    assert size is not None and int(size.text or 0) == stock.max_env_sz


def test_dataclass_exchange_keeps_no_secret(fleet):
    ours, _ = both_clients(fleet, "ntlm")
    assert fleet.password not in repr(ours)
    assert dataclasses.is_dataclass(Exchange)
