"""The ground truth of the KMS cases (renewal failures, superseded failures, KMS-host tracing, per-application
KMS hosts) re-derived from what the simulated hosts of a 120-host lab fleet serve over pywinrm, the way a
monitor reads them. How the generator makes the cases is in test_kms_cases.py."""

from __future__ import annotations

import collections
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dns.message
import dns.query
import dns.rcode
import pytest
import requests
from winrm.exceptions import WinRMError, WinRMTransportError

from simulator import scenario, truth
from simulator.codes import VOLUME_VALIDITY_MINUTES
from simulator.pytest_plugin import LAB
from simulator.testing import FleetHandle, running_fleet
from tests.simulator.conftest import props, protocol, wql_items

WINDOWS = "55c92734-d682-4d71-983e-d6ec3f16059f"
OFFICE = "0ff1ce15-a989-479d-af46-f275c6370663"
STATUS = ["Unlicensed", "Licensed", "OOBGrace", "OOTGrace", "NonGenuineGrace", "Notification", "ExtendedGrace"]
SPP_EVENTS = (
    "SELECT EventCode, Message, TimeGenerated, RecordNumber FROM Win32_NTLogEvent WHERE Logfile = 'Application' "
    "AND SourceName = 'Microsoft-Windows-Security-SPP' AND (EventCode = 8198 OR EventCode = 12288 OR EventCode = 12289)"
)
TRACED_CODES = {"0xC004F038", "0xC004F039", "0x800706BA", "0xC004F041", "0xC004F042", "0xC004F074"}
PASSING_FAULTS = {"flaky_500", "flaky_reset"}  # the first request may fail; a collector retries once


@dataclass
class Served:
    """What one host answers over WS-Management, as a monitor reads it."""

    products: list[dict[str, list[str | None]]]
    service: dict[str, list[str | None]]
    os: dict[str, list[str | None]]
    computer: dict[str, list[str | None]]
    events: list[dict[str, list[str | None]]]

    @property
    def windows(self) -> dict[str, list[str | None]] | None:
        keyed = [p for p in self.products if p["ApplicationID"] == [WINDOWS] and p["PartialProductKey"] != [None]]
        return keyed[0] if keyed else None


@pytest.fixture(scope="module")
def kms_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    """A 120-host lab fleet (seed 1): every new case is in it."""
    with running_fleet(hosts=120, seed=1, winrm=LAB, workdir=tmp_path_factory.mktemp("kms_fleet")) as fleet:
        yield fleet


def read(fleet: FleetHandle, name: str) -> Served | None:
    """Everything a monitor reads from a host, or None when the host cannot be read (after one retry)."""
    p = protocol(fleet, name, transport="basic", read_timeout_sec=4, operation_timeout_sec=2)
    for _attempt in range(2):  # the retry goes over the same session, as a collector's does
        try:
            products = [props(i) for i in wql_items(p, "SELECT * FROM SoftwareLicensingProduct")]
            [service] = [props(i) for i in wql_items(p, "SELECT * FROM SoftwareLicensingService")]
            [os_info] = [props(i) for i in wql_items(p, "SELECT Version, ProductType FROM Win32_OperatingSystem")]
            [computer] = [props(i) for i in wql_items(p, "SELECT Name, Domain FROM Win32_ComputerSystem")]
            events = [props(i) for i in wql_items(p, SPP_EVENTS)]
        except (requests.exceptions.RequestException, OSError, WinRMError, WinRMTransportError):
            continue
        return Served(products, service, os_info, computer, events)
    return None


@pytest.fixture(scope="module")
def served(kms_fleet: FleetHandle) -> dict[str, Served | None]:
    """Every host the truth calls readable, plus every fleet host a client names as its KMS host."""
    found: dict[str, Served | None] = {}
    for row in kms_fleet.truth:
        if not row["poll_error"]:
            found[row["name"]] = read(kms_fleet, row["name"])
    for name in list(found):
        reading = found[name]
        if reading is None or (target := resolve(kms_fleet, reading)) is None or target in found:
            continue
        found[target] = read(kms_fleet, target)
    return found


def _one(values: list[str | None] | None) -> str:
    return (values or [None])[0] or ""


def resolve(fleet: FleetHandle, reading: Served) -> str | None:
    """The fleet host a client's KMS host name leads to, whatever form the client names it in.

    An address is looked up in the fleet's address plan; a name is asked of the fleet's DNS server,
    a short name with the client's own domain appended, as the client's resolver does.
    """
    product = reading.windows
    if product is None:
        return None
    name = _one(product.get("KeyManagementServiceMachine")) or _one(
        product.get("DiscoveredKeyManagementServiceMachineName")
    )
    if not name:
        return None
    try:
        address = str(ipaddress.ip_address(name))
    except ValueError:
        if "." not in name:
            name = f"{name}.{_one(reading.computer['Domain'])}"
        host, port = fleet.dns_server.split(":")
        reply = dns.query.udp(dns.message.make_query(name.lower(), "A"), host, port=int(port), timeout=3)
        if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
            return None
        address = reply.answer[0][0].address
    return next((h.name for h in fleet.scenario.hosts if fleet.address(h.name) == address), None)


def _kind(product: dict[str, list[str | None]]) -> str:
    channel, description = _one(product["ProductKeyChannel"]), _one(product["Description"])
    if channel == "Volume:CSVLK" or re.search(r"VOLUME_KMS_(?!CLIENT)", description):
        return "KMS host"
    if product["IsKeyManagementServiceMachine"] != ["0"]:
        return "KMS host"
    if channel == "Volume:GVLK":
        return "AD-based" if _one(product["ADActivationObjectName"]) else "KMS client"
    return {"Volume:MAK": "MAK", "Retail": "Retail"}.get(channel, "OEM" if channel.startswith("OEM:") else "unknown")


def _failure(text: str) -> bool:
    return bool(int(text, 16) & 0x80000000)


def _event_code(events: list[dict[str, list[str | None]]]) -> str:
    """Newest failing 8198 / 12289 HRESULT, unless a successful 12289 came after it."""
    ordered = sorted(events, key=lambda e: (_one(e["TimeGenerated"]), int(_one(e["RecordNumber"]))), reverse=True)
    for event in ordered:
        code, message = _one(event["EventCode"]), _one(event["Message"])
        found = re.search(r"hr=0x([0-9A-F]{8})" if code == "8198" else r"Info:\r?\n0x([0-9A-F]{8})", message)
        if code not in {"8198", "12289"} or found is None:
            continue
        if _failure(found.group(1)):
            return "0x" + found.group(1)
        if code == "12289":
            return ""
    return ""


def _role(reading: Served) -> str:
    product = reading.windows
    if product is not None and _kind(product) == "KMS host":
        return "windows"
    others = [p for p in reading.products if p["IsKeyManagementServiceMachine"] == ["1"]]
    return "office" if reading.service["IsKeyManagementServiceMachine"] == ["1"] and others else ""


def _version(reading: Served) -> tuple[int, ...]:
    return tuple(int(part) for part in _one(reading.os["Version"]).split("."))


def derive(fleet: FleetHandle, served: dict[str, Served | None], name: str) -> dict[str, Any]:
    """The truth fields of one readable host, re-derived from what the hosts serve."""
    reading = served[name]
    assert reading is not None, name
    product = reading.windows
    if product is None:
        return {"activation_type": "unknown", "license_status": "Unlicensed", "error_code": _event_code(reading.events)}
    kind, status = _kind(product), STATUS[int(_one(product["LicenseStatus"]))]
    grace, interval = int(_one(product["GracePeriodRemaining"])), int(_one(product["VLRenewalInterval"]) or 0)
    renewal = kind == "KMS client" and status == "Licensed" and grace < VOLUME_VALIDITY_MINUTES - interval - 1440
    reason = int(_one(product["LicenseStatusReason"]))
    if reason & 0x80000000:
        code = f"0x{reason:08X}"
    else:
        code = "" if status == "Licensed" and not renewal else _event_code(reading.events)
    trace = (resolve(fleet, reading) or "") if kind == "KMS client" else ""
    return {
        "activation_type": kind,
        "license_status": status,
        "error_code": code,
        "renewal_failing": renewal,
        "kms_role": _role(reading),
        "kms_host_trace": trace,
        "kms_host_verdict": _verdict(served, reading, code, trace),
    }


def _verdict(served: dict[str, Served | None], client: Served, code: str, trace: str) -> str:
    if code not in TRACED_CODES or not trace:
        return ""
    kms = served[trace]
    if kms is None:
        return "unreachable"
    if _role(kms) != "windows" or kms.windows is None:
        return "not_kms_host"
    if code == "0xC004F041" and _one(kms.windows["LicenseStatus"]) != "1":
        return "not_activated"
    if code == "0xC004F042" and _version(kms) < _version(client):
        return "too_old"
    needed = 25 if _one(client.os["ProductType"]) == "1" else 5
    if code == "0xC004F038" and int(_one(kms.windows["KeyManagementServiceCurrentCount"])) < needed:
        return "below_threshold"
    return ""


def test_truth_matches_what_every_readable_host_serves(kms_fleet, served):
    fields = ("activation_type", "license_status", "error_code", "renewal_failing", "kms_role", "kms_host_trace",
              "kms_host_verdict")  # fmt: skip
    checked = 0
    for row in kms_fleet.truth:
        if row["poll_error"]:
            continue
        derived = derive(kms_fleet, served, row["name"])
        assert derived == {k: row[k] for k in fields if k in derived}, row
        checked += 1
    assert checked >= 100


def test_kms_clients_count_the_readable_clients_of_each_kms_host(kms_fleet, served):
    traces = collections.Counter(
        derive(kms_fleet, served, row["name"]).get("kms_host_trace", "")
        for row in kms_fleet.truth
        if not row["poll_error"]
    )
    for row in kms_fleet.truth:
        assert row["kms_clients"] == (traces[row["name"]] if row["kms_role"] else 0), row
    assert sum(r["kms_clients"] for r in kms_fleet.truth) > 40
    down = kms_fleet.truth_for("kms-down-01")
    assert down["poll_error"] == "refused" and down["kms_clients"] > 0  # counted from its clients' side


def test_every_name_form_traces_to_the_same_kms_host(kms_fleet, served):
    by_form: dict[str, set[str]] = collections.defaultdict(set)
    for host in kms_fleet.scenario.hosts:
        reading = served.get(host.name)
        if host.activation != "KMS client" or reading is None or reading.windows is None:
            continue
        pinned = _one(reading.windows["KeyManagementServiceMachine"])
        row = kms_fleet.truth_for(host.name)
        if "kms-pin-name" in host.tags:
            assert re.fullmatch(r"[A-Z0-9-]+", pinned), pinned
        if "kms-pin-address" in host.tags:
            assert pinned == kms_fleet.address(row["kms_host_trace"])
        if "kms-discovered" in host.tags:
            assert not pinned and _one(reading.windows["DiscoveredKeyManagementServiceMachineName"])
        for tag in host.tags:
            if tag.startswith(("kms-pin-", "kms-discovered")):
                by_form[row["kms_host_trace"]].add(tag)
                assert row["kms_host"].startswith(scenario.fqdn(kms_fleet.plan.host(row["kms_host_trace"])) + ":")
    assert by_form["kms-high-01"] == {"kms-pin-fqdn", "kms-pin-name", "kms-pin-address", "kms-discovered"}
    assert {"kms-pin-name", "kms-pin-address"} <= by_form["kms-down-01"]
    assert {"kms-pin-name", "kms-pin-address"} <= {
        t for h, tags in by_form.items() for t in tags if h.startswith("srv-")
    }


def test_renewal_failing_clients_log_a_success_then_failures(kms_fleet, served):
    failing = [r for r in kms_fleet.truth if r["renewal_failing"] and not r["poll_error"]]
    assert failing
    for row in failing:
        reading = served[row["name"]]
        assert reading is not None and reading.windows is not None
        assert _one(reading.windows["LicenseStatus"]) == "1"
        assert int(_one(reading.windows["LicenseStatusReason"])) in {0, 0x4004F00C}
        newest_first = sorted(reading.events, key=lambda e: _one(e["TimeGenerated"]), reverse=True)
        codes = [_one(e["EventCode"]) for e in newest_first]
        assert codes[0] in {"8198", "12288"} and "12289" in codes and codes.index("8198") < codes.index("12289")
        newest = next(e for e in newest_first if _one(e["EventCode"]) == "8198")
        assert f"hr={row['error_code']}" in _one(newest["Message"])


def test_superseded_failures_are_never_reported(kms_fleet, served):
    superseded = [h for h in kms_fleet.scenario.hosts if "superseded-failure" in h.tags]
    assert {h.license_status for h in superseded} == {1, 2, 3}
    for host in superseded:
        row, reading = kms_fleet.truth_for(host.name), served[host.name]
        assert reading is not None
        messages = [_one(e["Message"]) for e in reading.events]
        old = re.search(r"hr=(0x[0-9A-F]{8})", "".join(messages))
        assert old is not None and row["error_code"] != old.group(1)
        reason = int(_one(reading.windows["LicenseStatusReason"])) if reading.windows else 0
        assert row["error_code"] == (f"0x{reason:08X}" if reason & 0x80000000 else "")


def test_office_only_kms_host_serves_per_application_counts(kms_fleet, served):
    row = kms_fleet.truth_for("kms-office-01")
    assert (row["kms_role"], row["activation_type"], row["license_status"]) == ("office", "KMS client", "Licensed")
    p = protocol(kms_fleet, "kms-office-01", transport="basic")
    query = "SELECT ID, Name, ApplicationID, KeyManagementServiceCurrentCount FROM SoftwareLicensingProduct"
    [office] = [props(i) for i in wql_items(p, f"{query} WHERE IsKeyManagementServiceMachine = 1")]
    assert wql_items(p, f"{query} WHERE IsKeyManagementServiceMachine = 1 AND ApplicationID <> '{WINDOWS}'")
    [service] = [
        props(i)
        for i in wql_items(p, "SELECT IsKeyManagementServiceMachine, KeyManagementServiceCurrentCount "
                              "FROM SoftwareLicensingService")
    ]  # fmt: skip
    assert office["ApplicationID"] == [OFFICE]
    assert service["IsKeyManagementServiceMachine"] == ["1"]
    assert office["KeyManagementServiceCurrentCount"] == service["KeyManagementServiceCurrentCount"] != ["0"]
    reading = served["kms-office-01"]
    assert reading is not None and reading.windows is not None
    assert reading.windows["ProductKeyChannel"] == ["Volume:GVLK"]
    assert reading.windows["IsKeyManagementServiceMachine"] == ["0"]
    [kms_product] = [p for p in reading.products if p["IsKeyManagementServiceMachine"] == ["1"]]
    assert kms_product["ProductKeyChannel"] == ["Volume:CSVLK"] and "VOLUME_KMS channel" in _one(
        kms_product["Description"]
    )
    # On a Windows KMS host the Windows product is the one; no other application hosts KMS there.
    w = protocol(kms_fleet, "kms-high-01", transport="basic")
    [windows] = [props(i) for i in wql_items(w, f"{query} WHERE IsKeyManagementServiceMachine = 1")]
    assert windows["ApplicationID"] == [WINDOWS]
    assert wql_items(w, f"{query} WHERE IsKeyManagementServiceMachine = 1 AND ApplicationID <> '{WINDOWS}'") == []
    assert kms_fleet.truth_for("kms-high-01")["kms_role"] == "windows"


def test_too_old_kms_host_runs_windows_server_2012_r2(kms_fleet, served):
    old = served["kms-old-01"]
    assert old is not None and old.windows is not None
    assert _one(old.os["Version"]) == "6.3.9600"
    assert kms_fleet.truth_for("kms-old-01")["os"] == "Microsoft Windows Server 2012 R2 Standard"
    assert "VOLUME_KMS_R2_C" in _one(old.windows["Description"])
    too_old = [r for r in kms_fleet.truth if r["kms_host_verdict"] == "too_old"]
    assert too_old and all(r["error_code"] == "0xC004F042" for r in too_old)
    assert all(r["os"].startswith(("Microsoft Windows 11", "Microsoft Windows Server 2022")) for r in too_old)


def test_not_kms_host_target_answers_winrm_without_kms(kms_fleet, served):
    rows = [r for r in kms_fleet.truth if r["kms_host_verdict"] == "not_kms_host"]
    assert {r["error_code"] for r in rows} == {"0xC004F039", "0xC004F074"}
    for target in {r["kms_host_trace"] for r in rows}:
        reading = served[target]
        assert reading is not None and reading.windows is not None
        assert reading.service["IsKeyManagementServiceMachine"] == ["0"]
        assert reading.windows["IsKeyManagementServiceMachine"] == ["0"]


def test_workgroup_client_that_found_its_kms_host(kms_fleet, served):
    [row] = [r for r in kms_fleet.truth if r["domain"] == "WORKGROUP" and r["activation_type"] == "KMS client"]
    reading = served[row["name"]]
    assert reading is not None and reading.windows is not None
    assert _one(reading.windows["DiscoveredKeyManagementServiceMachineName"]) and row["license_status"] == "Licensed"
    assert "dns_srv" not in row["expected_findings"] and row["kms_host_trace"]
    host, port = kms_fleet.dns_server.split(":")
    reply = dns.query.udp(dns.message.make_query("_vlmcs._tcp.workgroup", "SRV"), host, port=int(port), timeout=3)
    assert reply.rcode() == dns.rcode.NXDOMAIN  # what a monitor must not ask, or blame
    assert not any(r["domain"] == "WORKGROUP" and "dns_srv" in r["expected_findings"] for r in kms_fleet.truth)


def test_truth_rows_carry_the_new_fields(kms_fleet):
    for row in kms_fleet.truth:
        assert isinstance(row["renewal_failing"], bool) and isinstance(row["kms_clients"], int)
        assert row["kms_role"] in {"", "windows", "office"}
        assert row["kms_host_verdict"] in truth.KMS_HOST_VERDICTS
        assert row["kms_host_verdict"] == "" or row["kms_host_trace"]
