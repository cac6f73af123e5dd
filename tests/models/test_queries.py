"""The query layer on a seeded fleet, on both backends: the numbers the dashboard and the CLI show."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from models import kms, queries, runs, store
from models.enums import ActivationType, FailureClass, HostState
from models.filters import HostFilter
from models.seed import HOSTILE_NAME, HOSTILE_SITE, SEED_EXPECTED, fleet, result_for, seed_fleet

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=3)
    return engine


def test_empty_then_not(engine: Engine) -> None:
    with engine.connect() as conn:
        assert queries.fleet_is_empty(conn)
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=1)
    with engine.connect() as conn:
        assert not queries.fleet_is_empty(conn)


def test_fleet_summary_counts_the_seeded_fleet(seeded: Engine) -> None:
    with seeded.connect() as conn:
        summary = queries.fleet_summary(conn, now=NOW, stale_after=timedelta(hours=2))
    assert summary.hosts == SEED_EXPECTED["hosts"]
    assert summary.failing == SEED_EXPECTED["failing"]
    assert summary.unreachable == SEED_EXPECTED["unreachable"]
    assert summary.stale == SEED_EXPECTED["unreachable"]
    assert summary.activated + summary.in_grace + summary.unlicensed == summary.hosts
    assert summary.previous["hosts"] == SEED_EXPECTED["hosts"]
    assert summary.change("unreachable") == SEED_EXPECTED["unreachable"]
    assert summary.change("failing") is not None and summary.change("failing") > 0
    assert summary.change("stale") is None


def test_failures_by_code_match_the_seed_with_titles(seeded: Engine) -> None:
    with seeded.connect() as conn:
        frame = queries.failures_by_code(conn, HostFilter())
    assert dict(zip(frame.error_code, frame.hosts, strict=True)) == SEED_EXPECTED["by_code"]
    assert frame.hosts.is_monotonic_decreasing
    assert all(title and "unknown" not in title.lower() for title in frame.title)


def test_failures_by_code_respect_the_filter(seeded: Engine) -> None:
    with seeded.connect() as conn:
        frame = queries.failures_by_code(conn, HostFilter(activation_types=(ActivationType.MAK,)))
    assert frame.error_code.tolist() == ["0xC004C003"]


def test_failures_by_activation_type(seeded: Engine) -> None:
    with seeded.connect() as conn:
        frame = queries.failures_by_activation_type(conn, HostFilter())
    by_type = frame.groupby("activation_type").hosts.sum().to_dict()
    assert by_type == {"KMS client": 16, "MAK": 2}
    # a Licensed KMS client whose renewals fail is its own state, apart from a healthy Licensed
    states = frame.groupby("license_status").hosts.sum().to_dict()
    assert states["RenewalFailing"] == SEED_EXPECTED["at_risk"] and "Licensed" not in states


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (HostFilter(), SEED_EXPECTED["hosts"]),
        (HostFilter(error_codes=("0xC004F074",)), 5),
        (HostFilter(error_codes=("0xC004F074", "0xC004F038")), 9),
        (HostFilter(failure_classes=(FailureClass.TIMEOUT,)), 1),
        (HostFilter(license_statuses=(HostState.OOB_GRACE,)), 7),
        (HostFilter(sites=(HOSTILE_SITE,)), 1),
        (HostFilter(search="KMS0"), SEED_EXPECTED["kms_hosts"]),
        (HostFilter(search="%"), 0),
        (HostFilter(stale_hours=1), SEED_EXPECTED["unreachable"]),
        (
            HostFilter(unactivated_only=True),
            SEED_EXPECTED["failing"] - SEED_EXPECTED["at_risk"] + SEED_EXPECTED["unreachable"],
        ),
        (
            HostFilter(unactivated_only=True, include_at_risk=True),
            SEED_EXPECTED["failing"] + SEED_EXPECTED["unreachable"],
        ),
        (HostFilter(license_statuses=(HostState.RENEWAL_FAILING,)), SEED_EXPECTED["at_risk"]),
        (HostFilter(license_statuses=(HostState.LICENSED,)), SEED_EXPECTED["hosts"] - SEED_EXPECTED["failing"]),
    ],
)
def test_host_count_by_filter(seeded: Engine, flt: HostFilter, expected: int) -> None:
    with seeded.connect() as conn:
        assert queries.host_count(conn, flt, now=NOW) == expected


def test_host_page_lists_failures_first_with_resolution_links(seeded: Engine) -> None:
    with seeded.connect() as conn:
        page = queries.host_page(conn, HostFilter(), limit=10, now=NOW)
        second = queries.host_page(conn, HostFilter(), limit=10, offset=10)
    assert len(page) == 10 and page.error_code.notna().all()
    assert page.resolution_url.str.startswith("https://learn.microsoft.com/").all()
    assert not set(page.host) & set(second.host)


def test_host_page_keeps_hostile_text_verbatim(seeded: Engine) -> None:
    with seeded.connect() as conn:
        page = queries.host_page(conn, HostFilter(search="onerror"))
    assert page.computer_name.tolist() == [HOSTILE_NAME]
    assert page.site.tolist() == [HOSTILE_SITE]


def test_kms_hosts_with_states_and_clients(seeded: Engine) -> None:
    with seeded.connect() as conn:
        frame = kms.kms_hosts(conn).set_index("computer_name")
    assert dict(frame["state"]) == SEED_EXPECTED["kms_states"]
    # what each count lets the host activate, apart from its health
    assert dict(frame["serves"].dropna()) == {"KMS01": "all", "KMS02": "servers", "KMS03": "none", "KMS04": "all"}
    assert frame.loc["KMS02", "clients"] == 4 and frame.loc["KMS02", "failing_clients"] == 4
    assert frame.loc["KMS01", "failing_clients"] == 9  # 0xC004F074, 0xC004F06C and the renewals failing
    assert frame.loc["KMS01", "failing_here"] == 7  # the clock-skewed 0xC004F06C clients are not its fault


def test_kms_names_resolve_to_hosts_and_history(seeded: Engine) -> None:
    with seeded.connect() as conn:
        resolved = kms.resolve_kms_names(conn, ["kms02.corp.example", "KMS02", "10.1.0.11", "kms09.corp.example"])
        history = kms.kms_count_history(conn, "10.1.0.11")
    by_fqdn, by_short, by_address = resolved["kms02.corp.example"], resolved["KMS02"], resolved["10.1.0.11"]
    assert by_fqdn is not None and by_fqdn.current_count == 12 and by_fqdn.is_windows_kms_host
    assert by_short == by_fqdn == by_address  # the inventory lists KMS02 by its address
    assert resolved["kms09.corp.example"] is None
    assert len(history) == 3


def test_trend_from_rollups(seeded: Engine) -> None:
    with seeded.connect() as conn:
        trend = queries.activation_trend(conn, days=30, today=NOW.date())
    assert len(trend) == 3
    assert (trend.activated + trend.not_activated == SEED_EXPECTED["hosts"]).all()
    assert trend.not_activated.iloc[-1] > trend.not_activated.iloc[0]


def test_grace_expiring_soon(seeded: Engine) -> None:
    with seeded.connect() as conn:
        soon = queries.grace_expiring(conn, within_days=14, now=NOW)
    assert soon.grace_days_remaining.tolist() == [3.0] + [13.9] * 9


def test_runs_and_last_completed_run(seeded: Engine) -> None:
    with seeded.connect() as conn:
        last = runs.last_completed_run(conn)
        recent = runs.poll_runs(conn)
    assert last is not None and last.started_at == NOW and last.duration_s == 42
    assert len(recent) == 3 and recent.failed.iloc[0] == SEED_EXPECTED["unreachable"]


def test_host_detail_and_history(seeded: Engine) -> None:
    with seeded.connect() as conn:
        detail = queries.host_detail(conn, "10.1.1.106")
        missing = queries.host_detail(conn, "no-such-host")
        history = queries.host_history(conn, "10.1.1.106")
    assert missing is None
    assert detail is not None and detail.row.error_code == "0xC004F038"
    assert [f.check for f in detail.findings] == ["kms_count"]
    assert detail.findings[0].evidence["required"] == 25
    assert detail.products[0].partial_key == "3V66T"
    assert history.error_code.iloc[-1] == "0xC004F038"


def test_code_counts_and_filter_options(seeded: Engine) -> None:
    with seeded.connect() as conn:
        counts = queries.code_counts(conn)
        options = queries.filter_options(conn)
    assert counts == SEED_EXPECTED["by_code"]
    assert "Taipei" in options.sites and HOSTILE_SITE in options.sites
    assert set(options.error_codes) == set(SEED_EXPECTED["by_code"])


def test_grace_is_aged_between_polls_and_expired_hosts_stay_listed(seeded: Engine) -> None:
    twenty_days_later = NOW + timedelta(days=20)
    with seeded.connect() as conn:
        soon = queries.grace_expiring(conn, within_days=14, now=twenty_days_later)
        page = queries.host_page(conn, HostFilter(search="10.1.1.106"), now=twenty_days_later)
    assert len(soon) >= 10 and soon.grace_days_remaining.iloc[0] < 0
    assert page.grace_days_remaining.iloc[0] == pytest.approx(13.9 - 20, abs=0.1)


def test_search_folds_case_the_same_on_every_backend(engine: Engine) -> None:
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=1)
        obs = result_for(fleet()[3], NOW)
        store.write_results(conn, None, [replace(obs, host="10.9.9.9", computer_name="ÉCOLE-Straße-01")])
    with engine.connect() as conn:
        counts = [queries.host_count(conn, HostFilter(search=q)) for q in ("école", "ÉCOLE", "STRASSE", "é")]
    assert counts == [1, 1, 1, 1]


def test_a_bare_kms_name_shared_by_two_domains_matches_neither(engine: Engine) -> None:
    twin = replace(result_for(fleet()[1], NOW), host="10.7.7.7", domain="lab.example")
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=1)
        store.write_results(conn, None, [twin])
    with engine.connect() as conn:
        resolved = kms.resolve_kms_names(conn, ["kms02", "kms02.corp.example", "kms02.lab.example", "kms01"])
    assert resolved["kms02"] is None  # two domains hold a KMS02: the bare name means neither
    assert resolved["kms02.corp.example"] is not None and resolved["kms02.corp.example"].current_count == 12
    assert resolved["kms02.lab.example"] is not None and resolved["kms02.lab.example"].name == "10.7.7.7"
    assert resolved["kms01"] is not None and resolved["kms01"].name == "10.1.0.10"
