"""The collector's parser and fault handling on WinRM replies recorded from real Windows.

Every capture in ``tests/fixtures/windows/`` that is a reply the collector may receive goes through
the code that receives it: enumeration replies through ``collectors.parse`` (values checked against
what the captured machine reported), faults through pywinrm's real ``Protocol`` talking to a
loopback server that answers with the captured body, then through ``collectors.errors`` and the
poller's class reader. The manifest test keeps the folder and ``SOURCES.toml`` in step.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import spnego
import winrm
from spnego._ntlm_raw.messages import Challenge
from winrm.exceptions import WinRMOperationTimeoutError, WSManFaultError

from collectors import parse, wmi
from collectors.errors import ProtocolError, classify_exception, to_poll_error
from collectors.run import ClassReader
from models.enums import FailureClass
from tests.windows_captures import (
    capture_headers,
    capture_status,
    captures_of_kind,
    files_in_folder,
    load_capture,
    manifest,
)

WINDOWS_2008R2_CAPTION = "Microsoft Windows Server 2008 R2 Datacenter"
WINDOWS_2003R2_CAPTION = "Microsoft(R) Windows(R) Server 2003 Datacenter x64 Edition"
ROLES_2008R2 = ("LM_Workstation", "LM_Server", "NT", "Server_NT")


# --- the manifest ----------------------------------------------------------------------------------


def test_every_file_is_in_the_manifest_and_every_entry_is_a_file():
    assert files_in_folder() == sorted(manifest())


@pytest.mark.parametrize("name", sorted(manifest()))
def test_manifest_entry_names_its_source_licence_and_bytes(name):
    entry = manifest()[name]
    assert entry["licence"] and entry["recorded_from"] and entry["what"]
    assert entry["kind"] in {"enumeration", "fault", "http-headers", "ntlm-token", "specification"}
    if entry["kind"] == "specification":
        assert entry["url"].startswith("https://")
    else:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", entry["source_repo"]) and entry["path"]
        assert re.fullmatch(r"[0-9a-f]{40}", entry["commit"])
    assert hashlib.sha256(load_capture(name)).hexdigest() == entry["sha256"], "recorded bytes must not change"


# --- enumeration replies: cursor and instances -----------------------------------------------------

# Capture -> (instances, enumeration context to Pull with, end of sequence).
CURSORS: dict[str, tuple[int, str | None, bool]] = {
    "enumerate_os_fragment_2008r2.xml": (1, None, True),
    "enumerate_os_class_2008r2.xml": (1, None, True),
    "enumerate_os_class_2003r2.xml": (1, None, True),
    "enumerate_computer_system_fragment_2008r2.xml": (1, None, True),
    "enumerate_computer_system_class_2008r2.xml": (1, None, True),
    "enumerate_logical_disk_page1_2008r2.xml": (1, "uuid:5BB9D3D1-8FF1-40FA-ADA2-BE91F7F050E6", False),
    "pull_logical_disk_page2_2008r2.xml": (1, None, True),
    "enumerate_empty_shells.xml": (0, None, True),
}


def test_every_enumeration_capture_has_an_expected_cursor():
    assert sorted(CURSORS) == captures_of_kind("enumeration")


@pytest.mark.parametrize("name", sorted(CURSORS))
def test_enumeration_cursor_and_instance_count(name):
    body = load_capture(name)
    count, context, ended = CURSORS[name]
    assert parse.enumeration_cursor(body) == (context, ended)
    class_name = manifest()[name].get("wmi_class", "Shell")
    assert len(parse.parse_enumeration(body, class_name)) == count


@pytest.mark.parametrize(
    ("name", "local_time"),
    [
        ("enumerate_os_fragment_2008r2.xml", datetime(2013, 4, 15, 20, 26, 12, 795000, tzinfo=UTC)),
        ("enumerate_os_class_2008r2.xml", datetime(2013, 4, 15, 20, 26, 12, 701000, tzinfo=UTC)),
    ],
)
def test_windows_2008r2_operating_system(name, local_time):
    [instance] = parse.parse_enumeration(load_capture(name), "Win32_OperatingSystem")
    info = parse.os_info(instance)
    assert instance.class_name == "Win32_OperatingSystem"
    assert info.caption == WINDOWS_2008R2_CAPTION  # sent with a trailing space
    assert info.version == "6.1.7601"
    assert info.product_type == 3
    assert info.computer_name == "AMAZONA-Q2R281F"
    assert info.local_time == local_time
    assert instance.strings("MUILanguages") == ("en-US",)
    assert instance.get("LargeSystemCache") is None  # xsi:nil
    assert instance.text("Description") is None  # present but empty
    assert instance.integer("MaxNumberOfProcesses") == 4294967295
    assert instance.datetime("LastBootUpTime") == datetime(2013, 4, 15, 16, 28, 39, 500000, tzinfo=UTC)


def test_windows_2003r2_operating_system():
    [instance] = parse.parse_enumeration(load_capture("enumerate_os_class_2003r2.xml"), "Win32_OperatingSystem")
    info = parse.os_info(instance)
    assert info.caption == WINDOWS_2003R2_CAPTION
    assert info.version == "5.2.3790"
    assert info.product_type == 3
    assert info.computer_name == "AMAZON-9DC6EF03"
    assert info.local_time == datetime(2013, 4, 15, 20, 27, 39, 762000, tzinfo=UTC)
    assert instance.datetime("LastBootUpTime") == datetime(2013, 4, 15, 16, 28, 38, 376625, tzinfo=UTC)
    assert instance.strings("MUILanguages") == ()  # the property does not exist on 2003
    assert instance.text("OtherTypeDescription") == "R2"


@pytest.mark.parametrize(
    "name", ["enumerate_computer_system_fragment_2008r2.xml", "enumerate_computer_system_class_2008r2.xml"]
)
def test_windows_2008r2_computer_system_in_a_workgroup(name):
    [instance] = parse.parse_enumeration(load_capture(name), "Win32_ComputerSystem")
    computer = parse.computer_info(instance)
    assert computer == parse.ComputerInfo(name="AMAZONA-Q2R281F", domain="WORKGROUP", part_of_domain=False)
    assert instance.strings("Roles") == ROLES_2008R2
    assert instance.integer("DomainRole") == 2
    assert instance.get("UserName") is None


def test_only_the_end_of_sequence_element_ends_paging():
    page1 = load_capture("enumerate_logical_disk_page1_2008r2.xml")
    # The same reply with a host-chosen value that happens to read like the element's name.
    renamed = page1.replace(b"<p:VolumeName></p:VolumeName>", b"<p:VolumeName>EndOfSequence</p:VolumeName>")
    assert renamed != page1
    assert parse.enumeration_cursor(renamed) == ("uuid:5BB9D3D1-8FF1-40FA-ADA2-BE91F7F050E6", False)


def test_enumerate_then_pull_pages_join_into_both_disks():
    pages = [
        load_capture("enumerate_logical_disk_page1_2008r2.xml"),
        load_capture("pull_logical_disk_page2_2008r2.xml"),
    ]
    disks = parse.parse_pages(pages, "Win32_LogicalDisk")
    assert [(d.text("DeviceID"), d.integer("Size"), d.text("VolumeName")) for d in disks] == [
        ("C:", 32210153472, None),
        ("D:", 53683941376, "New Volume"),
    ]
    assert all(d.class_name == "Win32_LogicalDisk" and d.boolean("QuotasDisabled") is True for d in disks)


@pytest.mark.parametrize("name", captures_of_kind("fault"))
def test_a_fault_body_never_passes_for_an_enumeration(name):
    with pytest.raises(ProtocolError, match="SOAP fault"):
        parse.parse_enumeration(load_capture(name), "Win32_OperatingSystem")


# --- the same replies over HTTP, through pywinrm and the poller's class reader ----------------------


class _Replay(http.server.ThreadingHTTPServer):
    daemon_threads = True
    answer: Callable[[bytes], tuple[int, bytes]]
    requests_seen: list[bytes]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        server: Any = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server.requests_seen.append(body)
        status, reply = server.answer(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def replaying(answer: Callable[[bytes], tuple[int, bytes]]) -> Iterator[_Replay]:
    """A loopback HTTP server answering every WS-Man request with ``answer(request_body)``."""
    server = _Replay(("127.0.0.1", 0), _Handler)
    server.answer = answer
    server.requests_seen = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def endpoint(server: _Replay) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/wsman"


def reader_for(server: _Replay) -> ClassReader:
    protocol = winrm.protocol.Protocol(
        endpoint(server), transport="basic", username="reader", password="not-a-secret", proxy=None
    )
    return ClassReader(protocol, endpoint(server), operation_timeout_s=5)


def test_the_class_reader_pulls_with_the_context_windows_sent():
    page1, page2 = (
        load_capture("enumerate_logical_disk_page1_2008r2.xml"),
        load_capture("pull_logical_disk_page2_2008r2.xml"),
    )
    query = wmi.WqlQuery("Win32_LogicalDisk", ("DeviceID", "Size"))
    with replaying(lambda body: (200, page2 if b"/enumeration/Pull<" in body else page1)) as server:
        disks = reader_for(server).read(query)
    assert [d.text("DeviceID") for d in disks] == ["C:", "D:"]
    enumerate_request, pull_request = server.requests_seen
    assert b"SELECT DeviceID,Size FROM Win32_LogicalDisk" in enumerate_request
    assert b"uuid:5BB9D3D1-8FF1-40FA-ADA2-BE91F7F050E6</n:EnumerationContext>" in pull_request


def test_the_class_reader_reads_a_real_operating_system_reply():
    reply = load_capture("enumerate_os_fragment_2008r2.xml")
    with replaying(lambda body: (200, reply)) as server:
        [instance] = reader_for(server).read(wmi.OPERATING_SYSTEM)
    assert parse.os_info(instance).caption == WINDOWS_2008R2_CAPTION
    assert len(server.requests_seen) == 1  # EndOfSequence: no Pull


# Capture -> (pywinrm exception, WSManFault code, SOAP subcode, WMI error code, failure class).
FAULT, TIMEOUT, PROTOCOL = WSManFaultError, WinRMOperationTimeoutError, FailureClass.PROTOCOL
FAULTS: dict[str, tuple[type[Exception], int | None, str | None, int | None, FailureClass]] = {
    "fault_invalid_class_wmi_2008r2.xml": (FAULT, 2150858778, "n:CannotProcessFilter", None, PROTOCOL),
    "fault_invalid_class_wmiv1.xml": (FAULT, 2150858778, "n:CannotProcessFilter", None, PROTOCOL),
    "fault_invalid_selectors_shell.xml": (FAULT, 2150858843, "w:InvalidSelectors", None, PROTOCOL),
    "fault_invalid_selectors_command.xml": (FAULT, 2150858843, "w:InvalidSelectors", None, PROTOCOL),
    "fault_invalid_header.xml": (FAULT, 2150858767, "a:InvalidMessageInformationHeader", None, PROTOCOL),
    "fault_quota_max_operations.xml": (FAULT, 2150859174, "w:InternalError", None, PROTOCOL),
    "fault_quota_shells_wmierror.xml": (FAULT, None, "w:QuotaLimit", 2150859173, PROTOCOL),
    "fault_operation_timeout.xml": (TIMEOUT, None, None, None, FailureClass.TIMEOUT),
}


def test_every_fault_capture_has_an_expected_classification():
    assert sorted(FAULTS) == captures_of_kind("fault")


def raised_by(reply: bytes, query: wmi.WqlQuery) -> tuple[BaseException, list[str]]:
    """What the class reader raises for a required ``query`` answered with HTTP 500 and ``reply``."""
    with replaying(lambda body: (500, reply)) as server:
        reader = reader_for(server)
        with pytest.raises(Exception) as excinfo:
            reader.read(query)
    return excinfo.value, reader.missing


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_captured_fault_fails_a_required_class_with_its_class_and_code(name):
    expected_type, wsman_code, subcode, wmi_code, failure_class = FAULTS[name]
    exc, missing = raised_by(load_capture(name), wmi.PRODUCT)
    assert type(exc) is expected_type and missing == []
    if isinstance(exc, WSManFaultError):
        assert exc.code == 500
        assert exc.wsman_fault_code == wsman_code
        assert (exc.fault_subcode or "").strip() == subcode  # one publisher pads values with whitespace
        assert exc.wmierror_code == wmi_code
    assert classify_exception(exc) is failure_class
    failure = to_poll_error(exc)
    assert failure.failure_class is failure_class
    if wsman_code is not None:
        assert f"WS-Man fault {wsman_code}" in failure.reason


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_captured_fault_on_an_optional_class_loses_only_that_class(name):
    with replaying(lambda body: (500, load_capture(name))) as server:
        reader = reader_for(server)
        assert reader.read(wmi.OPERATING_SYSTEM) == ()
    assert reader.missing == ["Win32_OperatingSystem"]


# --- the sign-in data: a listener's 401 and a Windows-built NTLM token --------------------------------


def test_the_recorded_401_lists_one_header_per_scheme():
    assert capture_status("http_401_wsman_2019.http") == (401, "Unauthorized")
    headers = capture_headers("http_401_wsman_2019.http")
    assert [v for k, v in headers if k == "WWW-Authenticate"] == ["Negotiate", 'Basic realm="WSMAN"', "CredSSP"]
    assert dict(headers)["Server"] == "Microsoft-HTTPAPI/2.0"
    assert (dict(headers)["Connection"], dict(headers)["Content-Length"]) == ("close", "0")


def test_the_windows_ntlm_challenge_is_read_and_answered_by_the_collectors_ntlm_library():
    token = load_capture("ntlm_challenge_server2016.bin")
    challenge = Challenge.unpack(token)
    assert (challenge.target_name, str(challenge.version)) == ("DOMAIN", "10.0.14393.15")
    assert challenge.server_challenge == bytes.fromhex("E4101014CF8A90BE")
    client = spnego.client("reader", "not-a-secret", hostname="DC01.domain.local", protocol="ntlm")
    client.step()
    authenticate = client.step(token)
    assert authenticate is not None and authenticate.startswith(b"NTLMSSP\x00\x03\x00\x00\x00")
    assert client.complete
