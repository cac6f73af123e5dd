"""The simulator as pywinrm sees it: shells, WS-Enumeration, WQL, authentication and TLS."""

# ruff: noqa: S314, S608 - replies come from our own simulator; the queries are WQL, not SQL

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import requests
import winrm
from winrm.exceptions import InvalidCredentialsError, WSManFaultError

from tests.simulator.conftest import (
    CIMV2,
    NS,
    PULL,
    RELEASE,
    context_request,
    enumerate_request,
    props,
    protocol,
    wql_items,
)

WINDOWS = "55c92734-d682-4d71-983e-d6ec3f16059f"
PRODUCT_QUERY = (
    f"SELECT * FROM SoftwareLicensingProduct WHERE ApplicationID = '{WINDOWS}' AND PartialProductKey IS NOT NULL"
)


def session(fleet, name, transport="ntlm", **kwargs):
    kwargs.setdefault("ca_trust_path", str(fleet.ca_path) if fleet.ca_path else None)
    return winrm.Session(
        fleet.endpoint(name), auth=(fleet.username, fleet.password), transport=transport, proxy=None, **kwargs
    )


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_run_cmd_and_run_ps_answer_with_the_computer_name(sim_fleet, first_host, transport):
    name = first_host(sim_fleet, activation_type="KMS client")
    computer = sim_fleet.truth_for(name)["computer_name"].upper()
    s = session(sim_fleet, name, transport)
    assert s.run_cmd("hostname").std_out == f"{computer}\r\n".encode()
    ps = s.run_ps("$env:COMPUTERNAME")
    assert (ps.status_code, ps.std_out) == (0, f"{computer}\r\n".encode())


def test_unknown_commands_fail_as_windows_does(sim_fleet, first_host):
    s = session(sim_fleet, first_host(sim_fleet))
    cmd = s.run_cmd("format", ["c:"])
    assert cmd.status_code == 1 and b"is not recognized as an internal or external command" in cmd.std_err
    ps = s.run_ps("Get-Nonsense -Now")
    assert ps.status_code == 1 and b"The term 'Get-Nonsense' is not recognized" in ps.std_err


def test_powershell_licensing_baseline_returns_json_and_csv(sim_fleet, first_host):
    import json

    s = session(sim_fleet, first_host(sim_fleet, activation_type="MAK", license_status="Licensed"))
    script = (
        "Get-CimInstance SoftwareLicensingProduct -Filter "
        f"\"ApplicationID='{WINDOWS}' and PartialProductKey is not null\""
    )
    data = json.loads(s.run_ps(script + " | ConvertTo-Json").std_out)
    assert "VOLUME_MAK" in data["Description"] and data["LicenseStatus"] == 1
    csv_out = s.run_ps(script + " | ConvertTo-Csv -NoTypeInformation").std_out.decode()
    assert csv_out.startswith('"Name","Description"') and csv_out.count("\r\n") == 2


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_enumerate_windows_product_matches_truth(sim_fleet, first_host, transport):
    name = first_host(sim_fleet, activation_type="KMS client")
    row = sim_fleet.truth_for(name)
    [item] = wql_items(protocol(sim_fleet, name, transport), PRODUCT_QUERY)
    assert (
        item.tag
        == "{http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/SoftwareLicensingProduct}SoftwareLicensingProduct"
    )
    values = props(item)
    assert values["ApplicationID"] == [WINDOWS]
    assert values["ProductKeyChannel"] == ["Volume:GVLK"]
    assert "VOLUME_KMSCLIENT channel" in values["Description"][0]
    assert values["LicenseStatus"] == [
        str(
            [
                "Unlicensed",
                "Licensed",
                "OOBGrace",
                "OOTGrace",
                "NonGenuineGrace",
                "Notification",
                "ExtendedGrace",
            ].index(row["license_status"])
        )
    ]
    assert values["ADActivationObjectName"] == [None]
    assert (
        f"{values['DiscoveredKeyManagementServiceMachineName'][0]}:{values['DiscoveredKeyManagementServiceMachinePort'][0]}"
        == row["kms_host"]
        or values["KeyManagementServiceMachine"][0]
    )


def test_all_products_include_unlicensed_editions_and_office(sim_fleet, first_host):
    name = first_host(sim_fleet, activation_type="Retail")
    items = [props(i) for i in wql_items(protocol(sim_fleet, name), "SELECT * FROM SoftwareLicensingProduct")]
    keyless = [i for i in items if i["PartialProductKey"] == [None]]
    assert len(keyless) >= 3 and all(i["LicenseStatus"] == ["0"] for i in keyless)
    assert any(i["ApplicationID"] != [WINDOWS] and i["PartialProductKey"] != [None] for i in items)


def test_pull_one_at_a_time_until_end_of_sequence(sim_fleet, first_host):
    name = first_host(sim_fleet)
    p = protocol(sim_fleet, name)
    one_by_one = wql_items(p, "SELECT Name FROM SoftwareLicensingProduct", max_elements=1)
    assert len(one_by_one) >= 5
    assert all(i.tag == "{http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd}XmlFragment" for i in one_by_one)
    assert all(list(props(i)) == ["Name"] for i in one_by_one)


def test_unoptimized_enumeration_on_a_class_uri_then_release(sim_fleet, first_host):
    name = first_host(sim_fleet)
    p = protocol(sim_fleet, name)
    uri = CIMV2 + "Win32_OperatingSystem"
    reply = ET.fromstring(p.send_message(enumerate_request(p, uri, optimize=False, max_elements=None)))
    assert reply.find("s:Body/n:EnumerateResponse/w:Items", NS) is None
    context = reply.findtext("s:Body/n:EnumerateResponse/n:EnumerationContext", namespaces=NS)
    p.send_message(context_request(p, RELEASE, uri, context))
    with pytest.raises(WSManFaultError) as excinfo:
        p.send_message(context_request(p, PULL, uri, context))
    assert excinfo.value.wsman_fault_code == 2150858779


def test_os_and_computer_system_carry_identity_clock_and_arrays(sim_fleet, first_host):
    name = first_host(sim_fleet, product_type="server")
    row = sim_fleet.truth_for(name)
    p = protocol(sim_fleet, name)
    [os_item] = wql_items(p, "SELECT * FROM Win32_OperatingSystem")
    os_props = props(os_item)
    assert os_props["Caption"] == [row["os"]] and os_props["ProductType"] in (["2"], ["3"])
    assert os_props["LocalDateTime"][0].endswith("+08:00")
    assert os_props["MUILanguages"] == ["zh-TW", "en-US"]
    [cs] = wql_items(p, "SELECT Name, Domain, PartOfDomain FROM Win32_ComputerSystem")
    assert props(cs) == {
        "Domain": [row["domain"]],
        "Name": [row["computer_name"].upper()],
        "PartOfDomain": ["true" if row["domain"] != "WORKGROUP" else "false"],
    }


def test_spp_events_carry_hresults(sim_fleet):
    row = next(
        r for r in sim_fleet.truth if r["error_code"] and r["poll_error"] == "" and r["activation_type"] == "MAK"
    )
    p = protocol(sim_fleet, row["name"])
    items = wql_items(
        p,
        "SELECT EventCode, Message, TimeGenerated FROM Win32_NTLogEvent WHERE Logfile = 'Application' "
        "AND SourceName = 'Microsoft-Windows-Security-SPP' AND (EventCode = 8198 OR EventCode = 12288)",
    )
    messages = [props(i)["Message"][0] for i in items]
    assert any(f"hr={row['error_code']}" in m for m in messages)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM No_Such_Class",
        "SELECT Nope FROM Win32_OperatingSystem",
        "SELECT * FROM Win32_OperatingSystem WHERE Caption LIKE '%Server%'",
        "DELETE FROM Win32_OperatingSystem",
    ],
)
def test_bad_queries_get_the_cannot_process_filter_fault(sim_fleet, first_host, query):
    p = protocol(sim_fleet, first_host(sim_fleet))
    with pytest.raises(WSManFaultError) as excinfo:
        wql_items(p, query)
    assert excinfo.value.code == 500
    assert excinfo.value.wsman_fault_code == 2150858778
    assert excinfo.value.fault_subcode == "n:CannotProcessFilter"


def test_wrong_password_is_rejected_with_401(sim_fleet, first_host):
    name = first_host(sim_fleet)
    for transport in ("basic", "ntlm"):
        s = winrm.Session(sim_fleet.endpoint(name), auth=(sim_fleet.username, "wrong"), transport=transport, proxy=None)
        with pytest.raises(InvalidCredentialsError):
            s.run_cmd("hostname")
    reply = requests.post(sim_fleet.endpoint(name), data=b"<x/>", timeout=5)
    assert reply.status_code == 401
    kerberos = ["Kerberos"] if sim_fleet.plan.host(name).domain.upper() != "WORKGROUP" else []
    assert reply.raw.headers.getlist("WWW-Authenticate") == ["Negotiate", *kerberos, 'Basic realm="WSMAN"']
    assert reply.headers["Server"] == "Microsoft-HTTPAPI/2.0" and reply.headers["Connection"] == "close"


def test_ntlm_traffic_is_encrypted_on_the_wire(sim_fleet, first_host):
    p = protocol(sim_fleet, first_host(sim_fleet), message_encryption="always")
    p.send_message(enumerate_request(p, CIMV2 + "*", "SELECT * FROM Win32_OperatingSystem"))
    assert p.transport.encryption is not None


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_https_with_the_fleet_ca_passes(sim_fleet_https, first_host, transport):
    name = first_host(sim_fleet_https)
    assert session(sim_fleet_https, name, transport).run_cmd("hostname").status_code == 0


def test_https_without_the_fleet_ca_fails_validation(sim_fleet_https, first_host):
    s = session(sim_fleet_https, first_host(sim_fleet_https), ca_trust_path=None)
    with pytest.raises(requests.exceptions.SSLError):
        s.run_cmd("hostname")


def test_host_with_untrusted_certificate_fails_even_with_the_fleet_ca(sim_fleet_https):
    row = next(r for r in sim_fleet_https.truth if r["fault"] == "tls")
    assert row["poll_error"] == "tls"
    with pytest.raises(requests.exceptions.SSLError):
        session(sim_fleet_https, row["name"]).run_cmd("hostname")
