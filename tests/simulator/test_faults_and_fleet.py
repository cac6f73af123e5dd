"""Per-host faults, hostile data, DNS and KMS ports, and the scenario moving on, seen from a client."""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET

import dns.message
import dns.query
import dns.rcode
import pytest
import requests
from winrm.exceptions import WSManFaultError

from tests.simulator.conftest import props, protocol, wql_items


def fault_host(fleet, fault):
    return next(r for r in fleet.truth if r["fault"] == fault)


def test_every_fault_has_the_poll_error_a_monitor_must_report(sim_fleet):
    expected = {
        "dns": "dns",
        "refused": "refused",
        "silent": "timeout",
        "slow_drip": "timeout",
        "auth_reject": "auth",
        "soap_500": "protocol",
        "truncated": "protocol",
        "malformed": "protocol",
        "oversized": "protocol",
        "tls": "tls",
        "latency": "",
    }
    assert {fault: fault_host(sim_fleet, fault)["poll_error"] for fault in expected} == expected
    assert fault_host(sim_fleet, "dns")["host"].endswith(".invalid")


def test_refused_host_refuses_connections(sim_fleet):
    row = fault_host(sim_fleet, "refused")
    with pytest.raises(requests.exceptions.ConnectionError):
        protocol(sim_fleet, row["name"]).send_message("<x/>")


def test_silent_host_times_out(sim_fleet):
    p = protocol(
        sim_fleet,
        fault_host(sim_fleet, "silent")["name"],
        transport="basic",
        read_timeout_sec=2,
        operation_timeout_sec=1,
    )
    with pytest.raises(requests.exceptions.ReadTimeout):
        wql_items(p, "SELECT * FROM Win32_OperatingSystem")


def test_slow_drip_host_sends_a_trickle_that_defeats_per_read_timeouts(sim_fleet):
    import base64

    row = fault_host(sim_fleet, "slow_drip")
    token = base64.b64encode(f"{sim_fleet.username}:{sim_fleet.password}".encode()).decode()
    request = (
        f"POST /wsman HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\nContent-Length: 4\r\n\r\n<x/>"
    ).encode()
    with socket.create_connection((row["host"], sim_fleet.plan.ports.http), timeout=5) as sock:
        sock.sendall(request)
        received, started = b"", time.monotonic()
        while time.monotonic() - started < 2.5:
            received += sock.recv(1024)
    assert 0 < len(received) <= 64


def test_damaged_replies_do_not_parse_and_500_is_a_soap_fault(sim_fleet):
    for fault in ("truncated", "malformed"):
        p = protocol(sim_fleet, fault_host(sim_fleet, fault)["name"])
        with pytest.raises(ET.ParseError):
            wql_items(p, "SELECT * FROM Win32_OperatingSystem")
    p = protocol(sim_fleet, fault_host(sim_fleet, "soap_500")["name"])
    with pytest.raises(WSManFaultError) as excinfo:
        wql_items(p, "SELECT * FROM Win32_OperatingSystem")
    assert excinfo.value.code == 500 and excinfo.value.wsman_fault_code


def test_oversized_reply_is_bigger_than_any_sane_cap(sim_fleet):
    p = protocol(sim_fleet, fault_host(sim_fleet, "oversized")["name"], transport="basic")
    with pytest.raises(ET.ParseError):
        wql_items(p, "SELECT * FROM Win32_OperatingSystem")


def test_hostile_text_arrives_verbatim(sim_fleet):
    hostile = [r for r in sim_fleet.truth if r["computer_name"].startswith(("=", "+", "@", "<", "財", "LONG-"))]
    assert len(hostile) >= 5
    for row in hostile:
        [cs] = wql_items(protocol(sim_fleet, row["name"]), "SELECT Name, Domain FROM Win32_ComputerSystem")
        assert props(cs)["Name"] == [row["computer_name"].upper()]
        [os_item] = wql_items(protocol(sim_fleet, row["name"]), "SELECT Caption FROM Win32_OperatingSystem")
        assert props(os_item)["Caption"] == [row["os"]]


def _dns(fleet, name, rdtype):
    host, port = fleet.dns_server.split(":")
    return dns.query.udp(dns.message.make_query(name, rdtype), host, port=int(port), timeout=3)


def test_dns_serves_srv_for_publishing_domains_and_nxdomain_otherwise(sim_fleet):
    answer = _dns(sim_fleet, "_vlmcs._tcp.corp.contoso.test", "SRV")
    [srv] = answer.answer[0]
    assert srv.port == sim_fleet.plan.ports.kms
    a = _dns(sim_fleet, srv.target.to_text(), "A")
    assert a.answer[0][0].address.startswith("127.")
    assert _dns(sim_fleet, "_vlmcs._tcp.lab.northwind.test", "SRV").rcode() == dns.rcode.NXDOMAIN
    dns_failing = [r for r in sim_fleet.truth if "dns_srv" in r["expected_findings"]]
    assert dns_failing and all(r["domain"] == "lab.northwind.test" for r in dns_failing)


def test_kms_ports_listen_or_refuse_as_the_truth_says(sim_fleet):
    host, port = sim_fleet.dns_server.split(":")
    for row in sim_fleet.truth:
        if not row["kms_host"] or row["poll_error"]:
            continue
        name, kms_port = row["kms_host"].rsplit(":", 1)
        reply = dns.query.udp(dns.message.make_query(name, "A"), host, port=int(port), timeout=3)
        address = reply.answer[0][0].address
        with socket.socket() as sock:
            sock.settimeout(3)
            reachable = sock.connect_ex((address, int(kms_port))) == 0
        assert reachable == ("kms_port" not in row["expected_findings"]), row


def test_request_counters_grow(sim_fleet, first_host):
    name = first_host(sim_fleet)
    before = sim_fleet.stats["by_host"].get(name, 0)
    wql_items(protocol(sim_fleet, name, transport="basic"), "SELECT * FROM Win32_OperatingSystem")
    assert sim_fleet.stats["by_host"][name] == before + 1


def test_advance_changes_what_hosts_report_and_the_truth(sim_fleet_factory):
    fleet = sim_fleet_factory(hosts=60, seed=7)
    mid = fleet.truth_for("kms-mid-01")
    clients = [r for r in fleet.truth if r["kms_host"].startswith("kms-mid01.") and r["license_status"] != "Licensed"]
    assert clients and all("kms_count" in r["expected_findings"] for r in clients)
    fleet.advance(2)
    [service] = wql_items(
        protocol(fleet, mid["name"]), "SELECT KeyManagementServiceCurrentCount FROM SoftwareLicensingService"
    )
    assert props(service)["KeyManagementServiceCurrentCount"] == ["27"]
    for row in clients:
        after = fleet.truth_for(row["name"])
        assert after["license_status"] == "Licensed" and after["error_code"] == ""
        assert "kms_count" not in after["expected_findings"]
    assert fleet.truth_path.read_text(encoding="utf-8").count('"Licensed"') > 0
