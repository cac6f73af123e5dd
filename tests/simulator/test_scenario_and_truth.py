"""Generated fleets, the scenario schema, WQL, and ground truth agreeing with what the hosts serve."""

# ruff: noqa: S608 - replies come from our own simulator; the queries are WQL, not SQL

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from simulator import generator, scenario, truth, wql
from simulator.cim import HostContext, Instance, Prop, instances
from simulator.codes import CODE_PROFILES, hresult_text
from tests.simulator.conftest import props, protocol, wql_items

WINDOWS = "55c92734-d682-4d71-983e-d6ec3f16059f"
STATUS = ["Unlicensed", "Licensed", "OOBGrace", "OOTGrace", "NonGenuineGrace", "Notification", "ExtendedGrace"]


def test_generation_is_deterministic_and_sized():
    first, second = generator.generate(200, 11), generator.generate(200, 11)
    assert first == second and len(first.hosts) == 200
    assert generator.generate(200, 12) != first


def test_a_large_fleet_covers_all_30_codes_and_every_kms_band():
    fleet = generator.generate(400, 3)
    codes = {truth.error_code(h) for h in fleet.hosts}
    assert {hresult_text(p.code) for p in CODE_PROFILES} <= codes
    counts = [h.kms.current_count for h in fleet.hosts if h.kms is not None and h.license_status == 1]
    assert any(c < 5 for c in counts) and any(5 <= c < 25 for c in counts) and any(c >= 25 for c in counts)
    licensed = sum(1 for h in fleet.hosts if h.license_status == 1 and h.activation != "none")
    assert licensed > len(fleet.hosts) * 0.7
    assert sum("mak-near-limit" in h.tags for h in fleet.hosts) >= 1


def test_failures_are_staged_with_their_causes():
    fleet = generator.generate(600, 9)
    facts = truth.FleetFacts(fleet, frozenset(scenario.fqdn(h) for h in fleet.hosts if h.kms and h.kms.listening))
    for host in fleet.hosts:
        code, found = truth.error_code(host), truth.findings(host, facts)
        if code == "0xC004F06C":
            assert "clock_skew" in found
        if code in {"0x8007232B", "0x8007251D", "0x80092328", "0x8007007B"}:
            assert "dns_srv" in found
        if code in {"0x800706BA", "0xC004F039", "0xC004F074"} and host.activation == "KMS client":
            assert "kms_port" in found
        if code == "0xC004F038":
            assert "kms_count" in found


@pytest.mark.parametrize(
    ("key_channel", "description", "service_flag", "expected"),
    [
        # A Windows Server with a GVLK that hosts KMS for Office: the service flag is set machine-wide.
        ("Volume:GVLK", "Windows(R) Operating System, VOLUME_KMSCLIENT channel", True, "KMS client"),
        (None, "Windows(R) Operating System, VOLUME_KMSCLIENT channel", True, "KMS client"),
        ("Volume:MAK", "Windows(R) Operating System, VOLUME_MAK channel", True, "MAK"),
        ("Volume:CSVLK", "Windows(R) Operating System, VOLUME_KMS_WS22 channel", False, "KMS host"),
        (None, "Windows(R) Operating System, VOLUME_KMS_WS22 channel", False, "KMS host"),
        (None, "Windows(R) Operating System", True, "KMS host"),
        (None, "Windows(R) Operating System", False, "unknown"),
    ],
)
def test_truth_activation_rule_reads_the_windows_product_first(key_channel, description, service_flag, expected):
    kind = truth.derive_activation_type(
        key_channel, description, ad_activation=False, product_kms_flag=False, service_kms_flag=service_flag
    )
    assert kind == expected


def test_generated_kms_hosts_carry_a_kms_host_key_on_their_windows_product():
    from datetime import UTC, datetime

    kms_hosts = [h for h in generator.generate(200, 5).hosts if h.activation == "KMS host"]
    assert kms_hosts
    for host in kms_hosts:
        [product] = [
            i for i in instances("SoftwareLicensingProduct", HostContext(host, datetime.now(UTC)))
            if _prop(i, "ApplicationID") == WINDOWS and _prop(i, "PartialProductKey")
        ]  # fmt: skip
        assert _prop(product, "ProductKeyChannel") == "Volume:CSVLK"
        assert re.search(r"VOLUME_KMS_(?!CLIENT)", str(_prop(product, "Description")))
        assert truth.activation_type(host) == "KMS host"


def _prop(instance: Instance, name: str) -> object:
    return next(p.value for p in instance.props if p.name == name)


def test_truth_dns_srv_fails_only_discovering_clients_hurt_by_it():
    fleet = generator.generate(200, 5)
    client = next(h for h in fleet.hosts if h.activation == "KMS client" and h.license_status == 1 and h.tags == ())
    facts = truth.FleetFacts(fleet, frozenset())
    no_srv = next(d.name for d in fleet.domains if not d.srv_target)
    discovering = replace(client, domain=no_srv, kms_machine="", discovered_kms="")
    pinned = replace(discovering, kms_machine="kms.example.test")
    failing = replace(discovering, license_status=2, reason=0xC004F074)
    assert "dns_srv" not in truth.findings(pinned, facts)
    assert "dns_srv" not in truth.findings(replace(pinned, license_status=2, reason=0x8007232B), facts)
    assert "dns_srv" not in truth.findings(discovering, facts)
    assert "dns_srv" in truth.findings(failing, facts)
    assert "dns_srv" in truth.findings(replace(discovering, license_status=2, reason=0x8007251D), facts)


def test_scenario_round_trips_through_json(tmp_path: Path):
    fleet = generator.generate(80, 2)
    path = tmp_path / "fleet.json"
    scenario.save(fleet, path)
    assert scenario.load(path) == fleet


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["hosts"][0].update(license_status=9), r"\$\.hosts\[0\]\.license_status"),
        (lambda d: d["hosts"][0].update(edition="win95"), r"\$\.hosts\[0\]\.edition"),
        (lambda d: d["hosts"][1].update(colour="red"), r"\$\.hosts\[1\]: unknown field"),
        (lambda d: d["hosts"][0].pop("domain"), r"\$\.hosts\[0\]\.domain: required"),
        (lambda d: d["steps"].append({"changes": [{"host": "nobody", "set": {}}]}), r"no host named 'nobody'"),
    ],
)
def test_schema_errors_name_the_bad_field(mutate, message):
    data = scenario.to_data(generator.generate(20, 1))
    mutate(data)
    with pytest.raises(scenario.ScenarioError, match=message):
        scenario.from_data(data)


def _inst(**values) -> Instance:
    return Instance("X", tuple(Prop(k, "uint32" if isinstance(v, int) else "string", v) for k, v in values.items()))


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("A = 1", [0]),
        ("A <> 1", [1, 2]),
        ("A >= 2 AND B = 'x'", [1]),
        ("B IS NULL", [2]),
        ("B IS NOT NULL AND (A = 1 OR A = 3)", [0]),
        ("NOT A < 2", [1, 2]),
        ("B <> null", [0, 1]),
        ("b = 'X'", [0, 1]),
        ("2 < A", [2]),
    ],
)
def test_wql_where_clauses(where, expected):
    rows = [_inst(A=1, B="x"), _inst(A=2, B="X"), _inst(A=3, B=None)]
    found = wql.run(wql.parse(f"SELECT * FROM X WHERE {where}"), rows)
    assert [rows.index(r) for r in found] == expected


@pytest.mark.parametrize(
    "text",
    [
        "SELECT FROM X",
        "SELECT * FROM",
        "SELECT * FROM X WHERE A LIKE 'a%'",
        "SELECT * FROM X, Y",
        "SELECT * FROM X WHERE (A = 1",
        "UPDATE X SET A = 1",
    ],
)
def test_wql_outside_the_subset_is_refused(text):
    with pytest.raises(wql.WqlError):
        wql.parse(text)


def test_every_class_answers_for_every_generated_host():
    from datetime import UTC, datetime

    for host in generator.generate(60, 4).hosts:
        ctx = HostContext(host, datetime.now(UTC))
        for name in (
            "SoftwareLicensingProduct",
            "SoftwareLicensingService",
            "Win32_OperatingSystem",
            "Win32_ComputerSystem",
            "Win32_NTLogEvent",
        ):
            assert instances(name, ctx)


def _derive(items: list[dict], service: dict, events: list[dict]) -> tuple[str, str, str]:
    """The shared derivation rules, applied to what a host serves (written independently of truth.py)."""
    windows = [i for i in items if i["ApplicationID"] == [WINDOWS] and i["PartialProductKey"] != [None]]
    if not windows:
        return "unknown", "Unlicensed", _event_code(events)
    product = windows[0]
    channel = product["ProductKeyChannel"][0] or ""
    description = product["Description"][0] or ""
    # The service flag is machine-wide (Office KMS sets it too): it decides only without any channel.
    no_channel = not channel and not re.search(r"VOLUME_|RETAIL|OEM_", description)
    if (
        channel == "Volume:CSVLK"
        or re.search(r"VOLUME_KMS_(?!CLIENT)", description)
        or product["IsKeyManagementServiceMachine"] != ["0"]
        or (no_channel and service["IsKeyManagementServiceMachine"] != ["0"])
    ):
        kind = "KMS host"
    elif channel == "Volume:GVLK":
        kind = "AD-based" if product["ADActivationObjectName"][0] else "KMS client"
    else:
        kind = {"Volume:MAK": "MAK", "Retail": "Retail"}.get(
            channel, "OEM" if channel.startswith("OEM:") else "unknown"
        )
    status = STATUS[int(product["LicenseStatus"][0])]
    reason = int(product["LicenseStatusReason"][0])
    if reason & 0x80000000:
        return kind, status, f"0x{reason:08X}"
    # A licensed KMS client more than one renewal interval and a day behind is failing to renew.
    interval = int(product["VLRenewalInterval"][0] or 0)
    renewing = kind != "KMS client" or int(product["GracePeriodRemaining"][0]) >= 180 * 1440 - interval - 1440
    return kind, status, "" if status == "Licensed" and renewing else _event_code(events)


def _event_code(events: list[dict]) -> str:
    """The newest failing 8198 or 12289, unless a successful 12289 came after it."""
    for event in sorted(events, key=lambda e: (e["TimeGenerated"][0], int(e["RecordNumber"][0])), reverse=True):
        message = event["Message"][0]
        pattern = r"hr=0x([0-9A-Fa-f]{8})" if event["EventCode"] == ["8198"] else r"Info:\r?\n0x([0-9A-Fa-f]{8})"
        match = re.search(pattern, message)
        if match is None or event["EventCode"] == ["12288"]:
            continue
        if int(match.group(1), 16) & 0x80000000:
            return "0x" + match.group(1).upper()
        return ""  # a successful 12289 supersedes every older failure
    return ""


def test_truth_matches_what_each_reachable_host_serves(sim_fleet):
    checked = 0
    for row in sim_fleet.truth:
        if row["poll_error"] or row["fault"] in ("flaky_500", "flaky_reset"):  # pywinrm does not retry a flaky host
            continue
        p = protocol(sim_fleet, row["name"], transport="basic")
        items = [props(i) for i in wql_items(p, "SELECT * FROM SoftwareLicensingProduct")]
        [service] = [props(i) for i in wql_items(p, "SELECT * FROM SoftwareLicensingService")]
        events = [
            props(i)
            for i in wql_items(
                p,
                "SELECT * FROM Win32_NTLogEvent WHERE SourceName = "
                "'Microsoft-Windows-Security-SPP' AND (EventCode = 8198 OR "
                "EventCode = 12288 OR EventCode = 12289)",
            )
        ]
        assert _derive(items, service, events) == (row["activation_type"], row["license_status"], row["error_code"]), (
            row
        )
        checked += 1
    assert checked >= 40


def test_truth_file_rows_have_the_contract_fields(sim_fleet):
    rows = json.loads(sim_fleet.truth_path.read_text(encoding="utf-8"))
    needed = {
        "host",
        "activation_type",
        "license_status",
        "error_code",
        "poll_error",
        "expected_findings",
        "computer_name",
        "domain",
        "site",
        "product_type",
        "os",
        "kms_host",
        "renewal_failing",
        "kms_host_trace",
        "kms_host_verdict",
        "kms_role",
        "kms_clients",
    }
    assert all(needed <= set(r) for r in rows)
    inventory = sim_fleet.inventory_path.read_text(encoding="utf-8").splitlines()
    assert inventory[0] == "host,port,scheme,transport,credential,site,tags"
    assert len(inventory) - 1 == len(rows)


def test_basic_over_http_rows_opt_in_so_the_collector_accepts_them(tmp_path: Path):
    from collectors.inventory import load_inventory
    from simulator.fleet import FleetPlan, Ports

    fleet = generator.generate(30, 6)
    hosts = list(fleet.hosts)
    hosts[0] = replace(hosts[0], transport="basic", scheme="http")
    hosts[1] = replace(hosts[1], transport="basic", scheme="https")
    plan = FleetPlan(replace(fleet, hosts=tuple(hosts)), "127.60.0.0", Ports(5985, 5986, 1688, 53))
    before = [row.as_json() for row in plan.truth_rows()]
    plan.write_inventory(tmp_path / "inventory.csv")
    inventory = load_inventory(tmp_path / "inventory.csv")
    assert inventory.problems == () and len(inventory.targets) == 30
    by_host = {t.host: t for t in inventory.targets}
    assert "allow-basic-http" in by_host[plan.inventory_host(hosts[0])].tags
    assert "allow-basic-http" not in by_host[plan.inventory_host(hosts[1])].tags
    assert [row.as_json() for row in plan.truth_rows()] == before
