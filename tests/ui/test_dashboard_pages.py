"""Every dashboard page, driven through its router on the seeded fleet: what a user sees on each."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models import store
from models.db import open_database
from models.enums import ActivationType, LicenseStatus
from models.records import HostObservation, ProductState
from models.seed import HOSTILE_NAME, SEED_EXPECTED
from tests.ui.dashboard_app import app, chart_specs, frame, open_page


def metric_values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_overview_headline_numbers_match_the_seeded_fleet(seeded_db_url):
    at = app().run()
    assert not at.exception
    assert at.title[0].value == "Overview"
    values = metric_values(at)
    assert values["Hosts known"] == str(SEED_EXPECTED["hosts"])
    assert values["Failing"] == str(SEED_EXPECTED["failing"])
    assert values["Unreachable"] == str(SEED_EXPECTED["unreachable"])


def test_overview_shows_change_since_the_previous_day(seeded_db_url):
    at = app().run()
    deltas = {m.label: m.delta for m in at.metric}
    assert deltas["Hosts known"] == "0"
    assert deltas["Unreachable"] == f"{SEED_EXPECTED['unreachable']}"  # reachable the day before


def test_overview_failures_chart_labels_each_bar_with_code_and_title(seeded_db_url):
    at = app().run()
    bars = chart_specs(at)[0]["data"][0]
    labels = " ".join(bars["y"])
    for code in SEED_EXPECTED["by_code"]:
        assert code in labels
    assert "No KMS host could be contacted" in labels
    assert "%{customdata[1]}" in bars["hovertemplate"]  # the title is on hover too
    by_label = dict(zip(bars["y"], bars["x"], strict=True))
    assert by_label[next(label for label in bars["y"] if "0xC004F074" in label)] == 5


def test_overview_shows_trend_grace_and_last_run(seeded_db_url):
    at = app().run()
    assert len(at.get("plotly_chart")) == 3  # by code, by activation type, trend
    grace = frame(at, "grace_days_remaining")
    assert len(grace) >= 1
    assert any("hosts read" in text.value for text in at.text)


def test_hosts_page_lists_every_host_without_filters(seeded_db_url):
    at = open_page("ui/pages/hosts.py")
    assert not at.exception
    table = frame(at, "resolution")
    assert len(table) == SEED_EXPECTED["hosts"]
    assert table.iloc[0]["error_code"]  # failing hosts come first


def test_hosts_filter_from_the_url_selects_the_widget_and_rows(seeded_db_url):
    at = open_page("ui/pages/hosts.py", code="0xc004f038")
    assert at.multiselect(key="code").value == ["0xC004F038"]
    table = frame(at, "resolution")
    assert len(table) == SEED_EXPECTED["by_code"]["0xC004F038"]
    assert set(table["error_code"]) == {"0xC004F038"}
    assert at.query_params["code"] == "0xC004F038"


def test_hosts_filter_chosen_in_the_widget_is_written_to_the_url(seeded_db_url):
    at = open_page("ui/pages/hosts.py")
    at.multiselect(key="code").select("0x8007232B").run()
    at.multiselect(key="status").select("OOBGrace").run()
    assert at.query_params["code"] == "0x8007232B"
    assert at.query_params["status"] == "OOBGrace"
    assert len(frame(at, "resolution")) == SEED_EXPECTED["by_code"]["0x8007232B"]


def test_hosts_code_options_show_code_and_title(seeded_db_url):
    at = open_page("ui/pages/hosts.py")
    widget = at.multiselect(key="code")
    shown = [widget.format_func(option) for option in widget.options] if widget.format_func else widget.options
    assert any(label.startswith("0xC004F074 — No KMS host") for label in shown)


def test_hosts_search_and_failure_class_filters(seeded_db_url):
    at = open_page("ui/pages/hosts.py", failure="timeout")
    table = frame(at, "resolution")
    assert len(table) == 1
    assert table.iloc[0]["poll_error"].startswith("unreachable (timeout): ")
    at.multiselect(key="failure").unselect("timeout").run()
    at.text_input(key="q").input("ws0101").run()
    assert list(frame(at, "resolution")["computer_name"]) == ["WS0101"]
    assert at.query_params["q"] == "ws0101"


def test_hosts_page_rejects_values_outside_the_allow_lists(seeded_db_url):
    at = open_page("ui/pages/hosts.py", code="'; DROP TABLE hosts; --", type="Pirate")
    assert not at.exception
    assert at.warning, "rejected values are reported"
    assert len(frame(at, "resolution")) == SEED_EXPECTED["hosts"]


def test_every_failing_row_links_to_its_knowledge_base_entry(seeded_db_url):
    at = open_page("ui/pages/hosts.py", lang="en")
    table = frame(at, "resolution")
    failing = table[table["error_code"].notna()]
    assert len(failing) == SEED_EXPECTED["failing"]
    for code, link in zip(failing["error_code"], failing["resolution"], strict=True):
        assert link == f"error_codes?code={code}&lang=en"
    assert table[table["error_code"].isna()]["resolution"].isna().all()


def markdown_rendered(at) -> list[str]:
    """Every text the page hands to Streamlit's Markdown renderer."""
    kinds = ("markdown", "caption", "title", "header", "subheader", "info", "warning", "error", "success")
    texts = [str(element.value) for kind in kinds for element in getattr(at, kind)]
    texts += [str(m.label) for m in at.metric] + [str(m.help or "") for m in at.metric]
    return texts


@pytest.mark.parametrize("page", ["ui/pages/hosts.py", "ui/pages/host_detail.py"])
def test_host_supplied_text_is_never_markdown(seeded_db_url, page):
    at = open_page(page, q="10.1.9.9", host="10.1.9.9")
    assert not at.exception
    shown = [str(v) for df in at.dataframe for v in df.value.astype(str).to_numpy().ravel()] + [
        str(t.value) for t in at.text
    ]
    assert any(HOSTILE_NAME in text for text in shown), "the hostile name is shown, as text"
    assert not any("onerror" in text or "HYPERLINK" in text for text in markdown_rendered(at))


def test_kms_hosts_page_shows_counts_states_and_thresholds(seeded_db_url):
    at = open_page("ui/pages/kms_hosts.py")
    assert not at.exception
    table = frame(at, "current_count")
    assert len(table) == SEED_EXPECTED["kms_hosts"]
    states = dict(zip(table["computer_name"], table["state"], strict=True))
    assert states == {
        "KMS01": "not listening",
        "KMS02": "clients failing",
        "KMS03": "below threshold",
        "KMS04": "healthy",
        "KMS05": "Office only",
    }
    chart = chart_specs(at)[0]
    assert sorted(shape["x0"] for shape in chart["layout"]["shapes"]) == [5, 25]
    assert chart["layout"]["xaxis"]["range"] == [0, 50]
    assert at.selectbox(key="kms_host").value == table.iloc[0]["host"]
    assert len(chart_specs(at)) == 2  # the chosen host's count over time


def test_host_detail_shows_diagnosis_evidence_timeline_and_steps(seeded_db_url, seeded_hosts):
    host = next(h for h in seeded_hosts if h.error_code == "0xC004F038")
    at = open_page("ui/pages/host_detail.py", host=host.name)
    assert not at.exception
    assert host.name in [t.value for t in at.text]
    findings = frame(at, "check")
    assert "kms_count" in set(findings["check"])
    assert "count: 12" in findings.iloc[0]["evidence"]
    assert "0xC004F038 · KMS count too low" in [s.value for s in at.subheader]
    assert any(m.value.startswith("1. ") for m in at.markdown), "numbered resolution steps"


def test_host_detail_of_an_unknown_host_says_so(seeded_db_url):
    at = open_page("ui/pages/host_detail.py", host="no-such-host")
    assert not at.exception
    assert at.warning[0].value == "Host not found."


def test_error_codes_page_opens_the_linked_entry_with_its_host_count(seeded_db_url):
    at = open_page("ui/pages/error_codes.py", code="0xC004F074")
    assert not at.exception
    assert at.selectbox(key="kb_code").value == "0xC004F074"
    assert at.subheader[0].value.startswith("0xC004F074 · ")
    # the count is said in words with the link to those hosts: never a bare number without a label
    link = at.get("page_link")[0].proto
    assert link.label.startswith(f"Hosts with this code now: {SEED_EXPECTED['by_code']['0xC004F074']} · ")
    assert not at.metric
    codes = frame(at, "hosts_now")
    assert len(codes) >= 30
    counts = dict(zip(codes["code"], codes["hosts_now"], strict=True))
    assert counts["0xC004F038"] == SEED_EXPECTED["by_code"]["0xC004F038"]
    assert codes.set_index("code").loc["0xC004F038", "hosts"] == "hosts?code=0xC004F038&lang=en"


def test_error_codes_page_handles_a_code_it_does_not_know(seeded_db_url):
    at = open_page("ui/pages/error_codes.py", code="0xC004FFFF")
    assert not at.exception
    assert at.selectbox(key="kb_code").value == "0xC004FFFF"
    assert "0xC004FFFF" in at.warning[0].value


def test_poll_runs_page_lists_runs_with_failure_classes(seeded_db_url):
    at = open_page("ui/pages/poll_runs.py")
    assert not at.exception
    runs = frame(at, "failed_timeout")
    assert len(runs) == 3  # the seed polls once a day for three days
    newest = runs.iloc[0]
    assert newest["failed_timeout"] == 1 and newest["failed_auth"] == 1 and newest["failed_refused"] == 1
    assert newest["duration_s"] == 42


def test_empty_database_shows_the_first_run_screen(empty_db_url):
    at = app().run()
    assert not at.exception
    assert at.title[0].value == "Welcome to Activation Monitor"
    assert at.button(key="load_demo")
    assert not at.metric


def test_demo_button_reports_a_missing_loader_without_crashing(empty_db_url, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "collectors.demo", None)  # the import then fails like a broken module
    at = app().run()
    at.button(key="load_demo").click().run()
    assert not at.exception
    assert "demo loader is not available" in at.error[0].value


@pytest.mark.slow
def test_demo_button_fills_the_database_through_the_collector(empty_db_url):
    pytest.importorskip("collectors.demo")
    at = app()
    at.default_timeout = 600
    at.run()
    at.number_input(key="demo_hosts").set_value(20)
    at.button(key="load_demo").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Overview"
    assert metric_values(at)["Hosts known"] == "20"


def test_host_detail_shows_the_sign_in_and_the_classes_the_last_poll_could_not_read(empty_db_url):
    product = ProductState("p1", ActivationType.KMS_CLIENT, LicenseStatus.LICENSED, channel="Volume:GVLK")
    seen = HostObservation("ws-partial.corp.example", datetime.now(UTC), "WS-PARTIAL", products=(product,),
                           signin="Kerberos", unread=("Win32_OperatingSystem", "Win32_ComputerSystem"))  # fmt: skip
    engine = open_database(empty_db_url)
    with engine.begin() as conn:
        store.write_results(conn, None, [seen])
    engine.dispose()
    at = open_page("ui/pages/host_detail.py", host="ws-partial.corp.example")
    assert not at.exception
    assert any("Win32_OperatingSystem, Win32_ComputerSystem" in i.value for i in at.info)
    identity = frame(at, "")
    assert "Kerberos" in set(identity.iloc[:, 1])


# --- Licensed KMS clients whose renewals fail ----------------------------------------------------------


def test_overview_flags_licensed_hosts_whose_renewals_fail(seeded_db_url):
    at = app().run()
    values = metric_values(at)
    assert values["Renewal failing"] == str(SEED_EXPECTED["at_risk"])
    by_type = chart_specs(at)[1]["data"]
    at_risk = next(bar for bar in by_type if bar["name"] == "Licensed — renewal failing")
    assert sum(at_risk["y"]) == SEED_EXPECTED["at_risk"]
    # its own look, apart from every other state: hatched, with stripes no other bar uses
    assert at_risk["marker"]["pattern"]["shape"] == "/"
    others = [bar for bar in by_type if bar is not at_risk]
    assert all(not bar["marker"].get("pattern", {}).get("shape") for bar in others)
    assert at_risk["marker"]["pattern"]["fgcolor"] != at_risk["marker"]["color"]


def test_hosts_page_shows_the_at_risk_state_and_filters_by_it(seeded_db_url):
    at = open_page("ui/pages/hosts.py", status="RenewalFailing")
    assert not at.exception
    assert at.multiselect(key="status").value == ["RenewalFailing"]
    table = frame(at, "resolution")
    assert len(table) == SEED_EXPECTED["at_risk"]
    assert set(table["license_status"]) == {"Licensed — renewal failing"}
    assert set(table["error_code"]) == {"0x800706BA"}


def test_the_at_risk_toggle_is_kept_in_the_url(seeded_db_url):
    at = open_page("ui/pages/hosts.py", unactivated="1")
    unactivated = len(frame(at, "resolution"))
    at.toggle(key="at_risk").set_value(True).run()
    assert at.query_params["at_risk"] == "1"
    assert len(frame(at, "resolution")) == unactivated + SEED_EXPECTED["at_risk"]


def test_host_detail_forecasts_when_an_at_risk_host_drops_out(seeded_db_url, seeded_hosts):
    host = next(h for h in seeded_hosts if h.error_code == "0x800706BA")
    at = open_page("ui/pages/host_detail.py", host=host.name)
    assert not at.exception
    [warning] = [w.value for w in at.warning if "Notification" in w.value]
    assert warning.startswith("Renewals are failing: Windows drops to Notification on ")
    assert "(in 40.0 days)" in warning or "(in 39.9 days)" in warning
    assert metric_values(at)["License status"] == "Licensed"
