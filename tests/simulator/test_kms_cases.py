"""Renewal failures, superseded failures, KMS-host tracing and per-application KMS hosts as the generator
makes them: every case appears from 120 hosts on, and the rules the ground truth follows for them (renewal
thresholds, which event code counts, DNS SRV findings, the count caps, the scenario schema). What the
simulated hosts serve for these cases is checked in test_kms_cases_served.py."""

from __future__ import annotations

import collections
from dataclasses import replace
from typing import Any

import pytest

from simulator import generator, scenario, truth
from simulator.fleet import FleetPlan, Ports
from simulator.scenario import SppEvent


def truth_of(hosts: int, seed: int) -> tuple[scenario.Scenario, list[dict[str, Any]]]:
    fleet = generator.generate(hosts, seed)
    plan = FleetPlan(fleet, "127.60.0.0", Ports(5985, 5986, 1688, 53))
    return fleet, [row.as_json() for row in plan.truth_rows()]


def cases(fleet: scenario.Scenario, rows: list[dict[str, Any]]) -> collections.Counter[str]:
    """How many of each new case a fleet holds, by what its truth says."""
    hosts = {h.name: h for h in fleet.hosts}
    found: collections.Counter[str] = collections.Counter()
    for row in rows:
        host = hosts[row["name"]]
        if row["renewal_failing"]:
            found["renewal_failing"] += 1
            found["renewal_failing_below_2_days"] += host.grace_minutes < 2 * 24 * 60
        superseded = any(e.event_code == 8198 and e.hr & 0x80000000 for e in host.events) and not row["error_code"]
        found[f"superseded_{'licensed' if row['license_status'] == 'Licensed' else 'unlicensed'}"] += superseded
        found["superseded_behind_a_reason"] += "superseded-failure" in host.tags and bool(row["error_code"])
        found[f"verdict_{row['kms_host_verdict']}"] += bool(row["kms_host_verdict"])
        found[f"role_{row['kms_role']}"] += bool(row["kms_role"])
        if host.activation == "KMS client" and host.kms_machine:
            found[f"pinned_by_{host.kms_machine_form}"] += 1
        found["workgroup_kms_client"] += row["domain"] == "WORKGROUP" and row["activation_type"] == "KMS client"
    return found


EVERY_CASE = (
    "renewal_failing",
    "renewal_failing_below_2_days",
    "superseded_licensed",
    "superseded_unlicensed",
    "superseded_behind_a_reason",
    "verdict_unreachable",
    "verdict_not_kms_host",
    "verdict_not_activated",
    "verdict_too_old",
    "verdict_below_threshold",
    "role_windows",
    "role_office",
    "pinned_by_fqdn",
    "pinned_by_name",
    "pinned_by_address",
    "workgroup_kms_client",
)


@pytest.mark.parametrize(("hosts", "seed"), [(120, 1), (120, 7), (300, 1), (300, 5)])
def test_every_new_case_appears_from_120_hosts(hosts, seed):
    fleet, rows = truth_of(hosts, seed)
    found = cases(fleet, rows)
    assert {case: found[case] for case in EVERY_CASE if not found[case]} == {}
    assert found["role_office"] == 1
    assert generator.generate(hosts, seed) == fleet


def test_about_five_percent_of_kms_clients_fail_to_renew():
    fleet, rows = truth_of(2000, 1)
    clients = [r for r in rows if r["activation_type"] == "KMS client"]
    failing = [r for r in clients if r["renewal_failing"]]
    assert 0.03 < len(failing) / len(clients) < 0.08
    hosts = {h.name: h for h in fleet.hosts}
    for row in failing:
        host = hosts[row["name"]]
        assert row["license_status"] == "Licensed" and host.reason in {0, 0x4004F00C}
        assert host.grace_minutes < truth.renewal_threshold(host)
        assert row["error_code"] in {"0xC004F074", "0x800706BA", "0x8007232B"}
    assert any(hosts[r["name"]].grace_minutes < 2 * 24 * 60 for r in failing)
    # Healthy licensed KMS clients renewed within their interval: between 173 and 180 days left.
    healthy = [hosts[r["name"]] for r in clients if r["license_status"] == "Licensed" and not r["renewal_failing"]]
    default = [h for h in healthy if h.renewal_interval == 10080]
    assert default and all(173 * 1440 <= h.grace_minutes <= 180 * 1440 for h in default)


@pytest.mark.parametrize(("hosts", "seed"), [(30, 4), (60, 7), (120, 1), (300, 1), (2000, 1)])
def test_kms_counts_stay_within_the_caps(hosts, seed):
    fleet = generator.generate(hosts, seed)
    users: dict[str, set[str]] = collections.defaultdict(set)
    for host in fleet.hosts:
        if host.activation == "KMS client" and (host.kms_machine or host.discovered_kms):
            users[(host.kms_machine or host.discovered_kms).lower()].add(host.product_type)
    for step in range(len(fleet.steps) + 1):
        current = fleet
        for index in range(step):
            current = scenario.apply_step(current, index)
        for host in current.hosts:
            if host.kms is None:
                continue
            servers_only = users[scenario.fqdn(host)] and "workstation" not in users[scenario.fqdn(host)]
            assert 0 <= host.kms.current_count <= (10 if servers_only else 50), (host.name, step)


def test_renewal_threshold_follows_the_hosts_renewal_interval():
    fleet = generator.generate(200, 2)
    client = next(h for h in fleet.hosts if h.activation == "KMS client" and h.license_status == 1 and not h.tags)
    day = 24 * 60
    assert truth.renewal_threshold(client) == 172 * day
    assert truth.renewal_failing(replace(client, grace_minutes=172 * day - 1))
    assert not truth.renewal_failing(replace(client, grace_minutes=172 * day))
    daily = replace(client, renewal_interval=day, grace_minutes=176 * day)
    assert truth.renewal_threshold(daily) == 178 * day and truth.renewal_failing(daily)
    monthly = replace(client, renewal_interval=30 * day, grace_minutes=155 * day)
    assert not truth.renewal_failing(monthly)
    assert not truth.renewal_failing(replace(client, grace_minutes=day, license_status=2))
    assert not truth.renewal_failing(replace(client, activation="MAK", grace_minutes=day))


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([(8198, 0xC004F074, 100)], "0xC004F074"),
        ([(8198, 0xC004F074, 100), (12289, 0, 50)], ""),
        ([(12289, 0, 150), (8198, 0xC004F074, 100)], "0xC004F074"),
        ([(8198, 0x8007232B, 300), (12289, 0, 200), (8198, 0x800706BA, 100)], "0x800706BA"),
        ([(8198, 0xC004F074, 100), (12288, 0, 50)], "0xC004F074"),  # a request is no success
        ([(12289, 0xC004F038, 100)], "0xC004F038"),  # a failing KMS response
        ([(12289, 0xC004F038, 100), (12289, 0, 10)], ""),
        ([(12288, 0xC004F074, 100)], ""),  # only 8198 and 12289 carry the current code
    ],
)
def test_a_later_successful_12289_supersedes_every_older_failure(events, expected):
    assert truth.event_code(tuple(SppEvent(*e) for e in events)) == expected


def test_error_code_rule_for_licensed_and_unlicensed_hosts():
    base = next(h for h in generator.generate(200, 2).hosts if h.activation == "KMS client" and h.license_status == 1)
    old_failure = (SppEvent(8198, 0xC004F074, 5000), SppEvent(12289, 0, 2000))
    renewal = (SppEvent(12289, 0, 100000), SppEvent(8198, 0x800706BA, 30))
    healthy = replace(base, grace_minutes=178 * 1440, events=renewal)
    assert truth.error_code(healthy) == ""  # licensed and renewing: the events are not read
    assert truth.error_code(replace(healthy, grace_minutes=100 * 1440)) == "0x800706BA"
    assert truth.error_code(replace(base, license_status=2, reason=0x4004F00C, events=old_failure)) == ""
    assert truth.error_code(replace(base, license_status=3, reason=0xC004F00F, events=old_failure)) == "0xC004F00F"


def test_workgroup_hosts_never_fail_dns_srv():
    fleet = generator.generate(120, 1)
    facts = truth.FleetFacts(fleet, frozenset())
    client = next(h for h in fleet.hosts if "workgroup-kms-client" in h.tags)
    assert client.domain == "WORKGROUP" and client.discovered_kms and not client.kms_machine
    assert "dns_srv" not in truth.findings(client, facts)
    lost = replace(client, discovered_kms="", license_status=2, reason=0x8007232B, grace_minutes=100)
    assert "dns_srv" not in truth.findings(lost, facts)
    assert "dns_srv" in truth.findings(replace(lost, domain="lab.northwind.test"), facts)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kms_machine_form": "ip"}, r"kms_machine_form: expected one of"),
        ({"kms_machine_form": "name", "kms_machine": "kms-high01.branch.fabrikam.test"}, r"client's own domain"),
        ({"kms_machine_form": "address", "kms_machine": "nobody.corp.contoso.test"}, r"fleet host or retired"),
        ({"kms_machine_form": "name", "kms_machine": ""}, r"a pinned KMS host FQDN"),
        ({"renewal_interval": 10}, r"renewal_interval: expected 15-43200"),
        ({"kms_app": "visio"}, r"kms_app: expected one of"),
        ({"kms_app": "office"}, r"Office-only KMS host"),
    ],
)
def test_schema_checks_the_new_host_fields(change, message):
    data = scenario.to_data(generator.generate(30, 1))
    index = next(i for i, h in enumerate(data["hosts"]) if h["domain"] == "corp.contoso.test" and not h["kms"])
    data["hosts"][index].update(change)
    with pytest.raises(scenario.ScenarioError, match=message):
        scenario.from_data(data)


def test_an_unreachable_kms_host_gives_no_count_finding():
    fleet, _rows = truth_of(120, 1)
    down = next(h for h in fleet.hosts if h.name == "kms-down-01")
    assert down.fault == "refused" and down.kms is not None
    low = replace(down, kms=replace(down.kms, current_count=1))
    hosts = tuple(low if h.name == down.name else h for h in fleet.hosts)
    plan = FleetPlan(replace(fleet, hosts=hosts), "127.60.0.0", Ports(5985, 5986, 1688, 53))
    for row in (r.as_json() for r in plan.truth_rows()):
        if row["kms_host_trace"] == "kms-down-01":
            assert "kms_count" not in row["expected_findings"] and "kms_port" in row["expected_findings"]
