"""The simulator's replies against WinRM replies recorded from real Windows (``tests/fixtures/windows/``).

The simulator is driven for real, through pywinrm; each reply is reduced to the facts that make up
its shape (element and attribute names by namespace URI, never by prefix; the SOAP header elements;
``Items`` / ``EnumerationContext`` / ``EndOfSequence``; the fault's Code, Subcode, Reason, Detail and
``WSManFault`` with its ``Code``, ``Machine`` and ``Message`` or ``ProviderFault``) and compared with the
same facts of a capture (the reduction is tests/simulator/reply_facts.py). Every difference fails unless
``DELIBERATE`` lists it with the public source that decided it; docs/simulator.md ("Where the simulator
differs from Windows") lists the same.
"""

# ruff: noqa: S314, S608 - parsing our simulator's replies and the recorded fixtures; the queries are WQL

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import xmltodict
from winrm.exceptions import WSManFaultError
from winrm.protocol import Protocol

from simulator.testing import FleetHandle
from tests.simulator.conftest import (
    CIMV2,
    ENUMERATE,
    PULL,
    WQL,
    context_request,
    enumerate_request,
    props,
    protocol,
)
from tests.simulator.reply_facts import facts
from tests.windows_captures import captures_of_kind, load_capture

ROOT = Path(__file__).resolve().parents[2]


# --- the simulator's replies -------------------------------------------------------------------------


def _fault(send: Callable[[], object]) -> str:
    with pytest.raises(WSManFaultError) as excinfo:
        send()
    return excinfo.value.response or ""


def _names(item: ET.Element) -> list[str]:
    return list(props(item))


def _selected(p: Protocol, wmi_class: str, capture: str) -> str:
    """A WQL property list naming every property both the capture's fragment and the simulator have."""
    ours = _names(_items(p.send_message(enumerate_request(p, CIMV2 + "*", f"SELECT * FROM {wmi_class}")))[0])
    theirs = _names(_items(load_capture(capture))[0])
    return f"SELECT {', '.join(n for n in theirs if n in ours)} FROM {wmi_class}"


def _items(reply: bytes) -> list[ET.Element]:
    return list(ET.fromstring(reply).find(".//{*}Items") or [])


def _context(reply: bytes) -> str:
    return ET.fromstring(reply).findtext(".//{*}EnumerationContext") or ""


def _unsupported_action(p: Protocol) -> None:
    envelope = p.build_wsman_header("http://schemas.xmlsoap.org/ws/2004/09/transfer/Put", CIMV2 + "Win32_Service")
    envelope["env:Body"] = {}
    p.send_message(xmltodict.unparse({"env:Envelope": envelope}))


def _unknown_command(p: Protocol) -> None:
    shell = p.open_shell()
    try:
        p.get_command_output(shell, "6D4B6DE4-0000-4B7E-9A4B-000000000000")
    finally:
        p.close_shell(shell)


def _healthy(fleet: FleetHandle) -> str:
    return next(r["name"] for r in fleet.truth if r["poll_error"] == "" and r["product_type"] == "server")


def _faulted(fleet: FleetHandle, fault: str) -> str:
    return next(h.name for h in fleet.scenario.hosts if h.fault == fault)


@pytest.fixture(scope="module")
def replies(sim_fleet: FleetHandle) -> dict[str, str | bytes]:
    """One simulator reply per situation a capture shows, all from one healthy host but the injected 500."""
    p = protocol(sim_fleet, _healthy(sim_fleet))
    found: dict[str, str | bytes] = {}
    for key, wmi_class, capture in (
        ("os", "Win32_OperatingSystem", "enumerate_os_fragment_2008r2.xml"),
        ("cs", "Win32_ComputerSystem", "enumerate_computer_system_fragment_2008r2.xml"),
    ):
        found[f"{key}_fragment"] = p.send_message(enumerate_request(p, CIMV2 + "*", _selected(p, wmi_class, capture)))
        found[f"{key}_class"] = p.send_message(enumerate_request(p, CIMV2 + "*", f"SELECT * FROM {wmi_class}"))
    first = p.send_message(enumerate_request(p, CIMV2 + "*", "SELECT * FROM SoftwareLicensingProduct", max_elements=1))
    found["unfinished_enumerate"] = first
    found["final_pull"] = p.send_message(context_request(p, PULL, CIMV2 + "*", _context(first), 32000))
    empty = "SELECT * FROM Win32_ComputerSystem WHERE Name = 'NO-SUCH-COMPUTER'"
    found["empty_enumerate"] = p.send_message(enumerate_request(p, CIMV2 + "*", empty))
    found["invalid_class"] = _fault(
        lambda: p.send_message(enumerate_request(p, CIMV2 + "*", 'Select * from Win32_Processa where name="sshd.exe"'))
    )
    found["unknown_shell"] = _fault(lambda: p.run_command("6D4B6DE4-0000-4B7E-9A4B-000000000000", "hostname"))
    found["unknown_command"] = _fault(lambda: _unknown_command(p))
    found["unsupported_action"] = _fault(lambda: _unsupported_action(p))
    injected = protocol(sim_fleet, _faulted(sim_fleet, "soap_500"))
    found["soap_500"] = _fault(
        lambda: injected.send_message(enumerate_request(injected, CIMV2 + "*", "SELECT * FROM Win32_OperatingSystem"))
    )
    return found


# --- captures paired with simulator replies -----------------------------------------------------------

# Capture -> (simulator reply, "same" when both answer the same request or error and every value
# above must match, "shape" when they answer different classes or are different errors of one kind
# and only the structure must).
PAIRS: dict[str, tuple[str, str]] = {
    "enumerate_os_fragment_2008r2.xml": ("os_fragment", "same"),
    "enumerate_os_class_2008r2.xml": ("os_class", "same"),
    "enumerate_os_class_2003r2.xml": ("os_class", "same"),
    "enumerate_computer_system_fragment_2008r2.xml": ("cs_fragment", "same"),
    "enumerate_computer_system_class_2008r2.xml": ("cs_class", "same"),
    "enumerate_logical_disk_page1_2008r2.xml": ("unfinished_enumerate", "shape"),
    "pull_logical_disk_page2_2008r2.xml": ("final_pull", "shape"),
    "enumerate_empty_shells.xml": ("empty_enumerate", "same"),
    "fault_invalid_class_wmi_2008r2.xml": ("invalid_class", "same"),
    "fault_invalid_class_wmiv1.xml": ("invalid_class", "same"),
    "fault_invalid_selectors_shell.xml": ("unknown_shell", "same"),
    "fault_invalid_selectors_command.xml": ("unknown_command", "same"),
    "fault_invalid_header.xml": ("unsupported_action", "shape"),
    "fault_quota_max_operations.xml": ("soap_500", "shape"),
}

# Captures of replies the simulator never sends, and why.
UNPAIRED: dict[str, str] = {
    "fault_operation_timeout.xml": (
        "the simulator has no WS-Management operation timeout: its slow hosts (latency, silent, slow_drip) make the "
        "client's own deadline expire instead, which is what the collector must survive; pywinrm turns this fault "
        "into WinRMOperationTimeoutError before any shape matters (tests/collectors/test_windows_captures.py)"
    ),
    "fault_quota_shells_wmierror.xml": (
        "the simulator's one quota fault (soap_500) is compared with the WSManFault form of a quota fault "
        "(fault_quota_max_operations.xml); this MSFT_WmiError form answers a shell quota, and the simulator opens "
        "shells without quotas"
    ),
}


@dataclass(frozen=True)
class Difference:
    """A difference from Windows kept on purpose: where it shows, why, and the source that decided it."""

    fact: str
    captures: tuple[str, ...]
    side: str  # "windows" when only the capture has the fact, "simulator" when only the simulator has it
    why: str
    source: str


DELIBERATE: tuple[Difference, ...] = (
    Difference(
        "/s:Envelope/s:Header/p:ActivityId",
        ("enumerate_empty_shells.xml", "fault_invalid_selectors_command.xml"),
        "windows",
        "newer Windows adds a p:ActivityId (a tracing GUID) to some replies, Windows Server 2008 R2 never does "
        "(every txwinrm and WinRb capture here has none); clients ignore it, so the simulator answers like 2008 R2",
        "jborean93/pypsrp tests/tests_pypsrp/responses/*.yml; tariksetia/txwinrm txwinrm/test/data/server_2008/",
    ),
    Difference(
        "/s:Envelope/s:Body/s:Fault/s:Detail/f:WSManFault/f:Message/f:ProviderFault/f:WSManFault@xml:lang",
        ("fault_invalid_class_wmiv1.xml",),
        "windows",
        "the old WMIv1 plugin marks its inner fault with xml:lang and sends no ExtendedError; the simulator follows "
        "the current WMI Provider plugin",
        "WinRb/WinRM tests/spec/stubs/responses/soap_fault_v1.xml and soap_fault_v2.xml",
    ),
    Difference(
        "/s:Envelope/s:Body/s:Fault/s:Detail/f:WSManFault/f:Message/f:ProviderFault/f:ExtendedError",
        ("fault_invalid_class_wmiv1.xml",),
        "simulator",
        "as above: the WMI Provider plugin (2008 R2 and later) adds the __ExtendedStatus of the failed ExecQuery",
        "WinRb/WinRM tests/spec/stubs/responses/soap_fault_v2.xml",
    ),
    Difference(
        "/s:Envelope/s:Body/s:Fault/s:Detail/f:WSManFault/f:Message/f:ProviderFault@provider",
        ("fault_invalid_class_wmiv1.xml",),
        "windows",
        "the old plugin's name, 'WMIv1 plugin for Windows Remote Management '",
        "WinRb/WinRM tests/spec/stubs/responses/soap_fault_v1.xml",
    ),
    Difference(
        "/s:Envelope/s:Body/s:Fault/s:Detail/f:WSManFault/f:Message/f:ProviderFault@provider",
        ("fault_invalid_class_wmiv1.xml",),
        "simulator",
        "the current plugin's name, 'WMI Provider'",
        "WinRb/WinRM tests/spec/stubs/responses/soap_fault_v2.xml",
    ),
    Difference(
        "/s:Envelope/s:Body/s:Fault/s:Detail/f:WSManFault/f:Message/f:ProviderFault",
        ("fault_invalid_selectors_shell.xml",),
        "windows",
        "the captured shell belongs to the PowerShell (PSRP) plugin, whose invalid-selector fault nests a 'Shell "
        "provider' ProviderFault; the simulator's shells are cmd shells, whose invalid-selector fault carries a plain "
        "message",
        "jborean93/pypsrp tests/tests_pypsrp/responses/test_psrp_is_alive_invalid_selectors.yml and "
        "test_winrs_bad_cmd_id.yml",
    ),
    Difference(
        "/s:Envelope/s:Body/s:Fault/s:Detail/f:WSManFault/f:Message",
        ("fault_invalid_selectors_shell.xml",),
        "simulator",
        "the other side of the difference above: the cmd shell's plain message",
        "jborean93/pypsrp tests/tests_pypsrp/responses/test_winrs_bad_cmd_id.yml",
    ),
    Difference(
        "/s:Envelope/s:Body/s:Fault/s:Detail/f:WSManFault/f:Message/f:ProviderFault",
        ("fault_quota_max_operations.xml",),
        "simulator",
        "the simulator's soap_500 fault is a quota violation reported by the WMI provider, so it comes wrapped in the "
        "provider's ProviderFault like every WMI provider error; the captured quota fault is WinRM's own "
        "operations quota, which has none",
        "WinRb/WinRM tests/spec/stubs/responses/soap_fault_v2.xml; tariksetia/txwinrm txwinrm/test/data_error/"
        "max_concurrent.xml",
    ),
    Difference(
        "/s:Envelope/s:Header/a:RelatesTo~empty",
        ("fault_quota_max_operations.xml",),
        "simulator",
        "the soap_500 fault is injected without reading the request (simulator/server.py), so it cannot name the "
        "request it answers; Windows always does",
        "tariksetia/txwinrm txwinrm/test/data_error/max_concurrent.xml",
    ),
    Difference(
        "/s:Envelope/s:Header/a:RelatesTo~uuid",
        ("fault_quota_max_operations.xml",),
        "windows",
        "the other side of the difference above",
        "tariksetia/txwinrm txwinrm/test/data_error/max_concurrent.xml",
    ),
)


def covers(difference: Difference, fact: str, side: str) -> bool:
    """A listed difference covers its fact and everything beneath it (children, attributes, values)."""
    if side != difference.side:
        return False
    return fact == difference.fact or any(fact.startswith(difference.fact + mark) for mark in "/@=~")


def differences(capture: str, reply: str | bytes, mode: str) -> set[tuple[str, str]]:
    """(fact, side) for every fact only one of the two replies has."""
    theirs = facts(load_capture(capture), values=mode == "same")
    ours = facts(reply, values=mode == "same")
    return {(f, "windows") for f in theirs - ours} | {(f, "simulator") for f in ours - theirs}


def test_every_reply_capture_is_compared_or_explained():
    replies_recorded = set(captures_of_kind("enumeration")) | set(captures_of_kind("fault"))
    assert replies_recorded == set(PAIRS) | set(UNPAIRED)
    assert not set(PAIRS) & set(UNPAIRED)


@pytest.mark.parametrize("capture", sorted(PAIRS))
def test_simulator_reply_has_the_shape_of_the_windows_capture(replies, capture):
    key, mode = PAIRS[capture]
    found = differences(capture, replies[key], mode)
    listed = [d for d in DELIBERATE if capture in d.captures]
    unexplained = sorted((f, side) for f, side in found if not any(covers(d, f, side) for d in listed))
    stale = [d.fact for d in listed if not any(covers(d, f, side) for f, side in found)]
    assert not unexplained, f"{capture} vs simulator {key}: differences nobody decided on:\n" + "\n".join(
        f"  only in {side}: {fact}" for fact, side in unexplained
    )
    assert not stale, f"{capture}: listed differences that no longer occur: {stale}"


def test_the_facts_see_what_the_comparison_relies_on():
    # A self-check of the reduction: a known capture yields the facts the pairs above depend on.
    found = facts(load_capture("fault_invalid_class_wmi_2008r2.xml"))
    fault = "/s:Envelope/s:Body/s:Fault"
    assert "/s:Envelope/s:Header/a:Action=http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault" in found
    assert f"{fault}/s:Code/s:Subcode/s:Value=n:CannotProcessFilter" in found
    assert f"{fault}/s:Detail/f:WSManFault@Code=2150858778" in found
    assert f"{fault}/s:Detail/f:WSManFault@Machine" in found
    extended = f"{fault}/s:Detail/f:WSManFault/f:Message/f:ProviderFault/f:ExtendedError/<wmi-instance>"
    assert f"{extended}/<property>@xsi:nil" in found
    fragment = facts(load_capture("enumerate_os_fragment_2008r2.xml"))
    items = "/s:Envelope/s:Body/n:EnumerateResponse/w:Items/w:XmlFragment"
    assert {f"{items}/<property>@xsi:nil", f"{items}/<property>/Datetime"} <= fragment
    assert "/s:Envelope/s:Body/n:EnumerateResponse/n:EnumerationContext~empty" in fragment
    assert f"{items}/<property>" not in facts(load_capture("enumerate_os_fragment_2008r2.xml"), values=False)


def _repeated(reply: str | bytes) -> set[str]:
    [item] = _items(reply.encode() if isinstance(reply, str) else reply)
    tags = [child.tag.rpartition("}")[2] for child in item]
    return {tag for tag in tags if tags.count(tag) > 1}


@pytest.mark.parametrize(
    ("capture", "key"),
    [
        ("enumerate_computer_system_fragment_2008r2.xml", "cs_fragment"),
        ("enumerate_computer_system_class_2008r2.xml", "cs_class"),
    ],
)
def test_arrays_are_repeated_elements_as_windows_sends_them(replies, capture, key):
    assert _repeated(load_capture(capture)) == {"Roles"}
    assert "Roles" in _repeated(replies[key])


def test_fault_machine_is_the_address_the_client_used_and_the_provider_names_the_computer(sim_fleet):
    # pypsrp's timeout capture answers a request sent To http://192.168.56.11:5985/wsman with
    # Machine="192.168.56.11"; WinRb's WMI fault has Machine="localhost" outside and the computer
    # name "vagrant-2008R2" in the provider's own fault.
    assert ET.fromstring(load_capture("fault_operation_timeout.xml")).find(".//{*}WSManFault").get("Machine") == (
        "192.168.56.11"
    )
    name = _healthy(sim_fleet)
    p = protocol(sim_fleet, name)
    envelope = p.build_wsman_header(ENUMERATE, CIMV2 + "*")
    envelope["env:Header"]["a:To"] = sim_fleet.endpoint(name)  # pywinrm itself always says windows-host
    envelope["env:Body"] = {"n:Enumerate": {"w:OptimizeEnumeration": None, "w:Filter": {
        "@Dialect": WQL, "#text": "SELECT * FROM Win32_Processa"}}}  # fmt: skip
    reply = _fault(lambda: p.send_message(xmltodict.unparse({"env:Envelope": envelope})))
    detail = ET.fromstring(reply).find(".//{*}Detail/{*}WSManFault")
    assert detail is not None and detail.get("Machine") == sim_fleet.address(name)
    inner = detail.find(".//{*}ProviderFault/{*}WSManFault")
    assert inner is not None and inner.get("Machine") == sim_fleet.truth_for(name)["computer_name"]


def test_every_deliberate_difference_is_documented():
    doc = (ROOT / "docs" / "simulator.md").read_text(encoding="utf-8")
    section = doc.partition("## Where the simulator differs from Windows")[2]
    assert section, "docs/simulator.md lacks its section on differences from Windows"
    for difference in DELIBERATE:
        assert f"`{difference.fact}`" in section, difference.fact
    for capture in UNPAIRED:
        assert f"`{capture}`" in section, capture
