"""Each alert rule fires on its evidence, resolves when the evidence is gone, and reads its thresholds from the
settings; a rule whose check cannot run resolves nothing. Both backends, state written through the real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from alerting import run_alerts
from alerting.rules import CHECKS, RULES
from config.settings import Settings
from knowledge.alert_text import DETAILS, FRAME, KIND_WORDS, KINDS, RULE_TITLES
from models import alerts
from models.hostfacts import resolution
from tests.alerting import fleetstate
from tests.alerting.fleetstate import CODE, EXPECTED

T0 = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def firing(engine: Engine) -> dict[tuple[str, str], alerts.AlertView]:
    with engine.connect() as conn:
        return {(a.rule, a.subject): a for a in alerts.list_alerts(conn, state=alerts.FIRING, limit=10_000)}


def test_every_rule_fires_on_its_evidence_and_resolves_when_it_is_gone(engine: Engine, tmp_path) -> None:
    settings = fleetstate.settings(tmp_path)
    fleetstate.troubled(engine, T0)
    report = run_alerts(engine, settings, now=T0 + timedelta(minutes=1), notify_urls=[])
    assert report.failed_rules == {}
    assert set(firing(engine)) == EXPECTED
    assert {rule for rule, _ in EXPECTED} == {rule.name for rule in RULES}
    assert report.firing_total == len(EXPECTED) == len(report.opened)

    fleetstate.healed(engine, T0 + timedelta(minutes=10))
    report = run_alerts(engine, settings, now=T0 + timedelta(minutes=11), notify_urls=[])
    assert firing(engine) == {}
    assert len(report.resolved) == len(EXPECTED)
    with engine.connect() as conn:
        history = alerts.list_alerts(conn, state=alerts.RESOLVED)
    assert {(a.rule, a.subject) for a in history} == EXPECTED


def test_a_failing_host_carries_its_code_and_the_resolution_the_csv_gives(engine: Engine, tmp_path) -> None:
    fleetstate.troubled(engine, T0)
    run_alerts(engine, fleetstate.settings(tmp_path), now=T0, notify_urls=[])
    found = firing(engine)
    facts = found[("host_failing", "ws-fail")].facts
    fix = resolution(CODE)
    assert fix is not None
    assert facts["error_code"] == CODE and facts["resolution_url"] == fix.article_url
    assert facts["kb_path"] == fix.kb_path and facts["license_status"] == "Notification"
    spike = found[("code_spike", CODE)].facts
    # ws-fail and ws-renew had the code on each of the 7 days before; 14 hosts have it now
    assert (spike["hosts"], spike["baseline"], spike["days"]) == (fleetstate.SPIKE_HOSTS + 2, 2.0, 7)
    low = found[("kms_below_threshold", "kms-low")].facts
    assert (low["count"], low["threshold"], low["activates"]) == (12, 25, "servers")
    assert found[("srv_dead", fleetstate.DEAD)].facts["targets"] == f"{fleetstate.GONE}:1688"
    assert found[("kms_unreachable", "kms-down")].facts["failure"] == "refused"


def test_thresholds_come_from_the_settings(engine: Engine, tmp_path) -> None:
    fleetstate.troubled(engine, T0)
    lenient: Settings = fleetstate.settings(
        tmp_path,
        kms_client_threshold=10,
        alert_spike_min_hosts=50,
        grace_warning_days=1,
        alert_quiet_factor=10,
    )
    run_alerts(engine, lenient, now=T0, notify_urls=[])
    rules = {rule for rule, _ in firing(engine)}
    assert {"kms_below_threshold", "code_spike", "grace_ending", "collector_quiet"}.isdisjoint(rules)
    assert "host_failing" in rules


def test_a_rule_whose_check_fails_is_skipped_and_resolves_nothing(engine: Engine, tmp_path) -> None:
    settings = fleetstate.settings(tmp_path)
    fleetstate.troubled(engine, T0)
    run_alerts(engine, settings, now=T0, notify_urls=[])
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE daily_rollups"))  # code_spike reads it
    fleetstate.healed(engine, T0 + timedelta(minutes=10))
    report = run_alerts(engine, settings, now=T0 + timedelta(minutes=11), notify_urls=[])
    assert set(report.failed_rules) == {"code_spike"}
    assert set(firing(engine)) == {("code_spike", CODE)}  # still open: its data could not be read


def test_every_rule_has_a_check_a_title_and_words_in_both_languages() -> None:
    for rule in RULES:
        assert rule.check in CHECKS, rule.name
        assert set(RULE_TITLES[rule.name]) == {"en", "zh-TW"}, rule.name
        assert set(DETAILS[rule.text_key]) == {"en", "zh-TW"}, rule.name
        assert rule.severity in ("critical", "warning", "info"), rule.name


def test_every_kind_of_message_has_words_and_titles_in_both_languages() -> None:
    for lang in ("en", "zh-TW"):
        assert set(KIND_WORDS[lang]) == set(KINDS), lang
        for kind in set(KINDS) - {"storm"}:
            assert f"title.{kind}" in FRAME[lang] and f"title.storm.{kind}" in FRAME[lang], (lang, kind)
            assert f"storm.{kind}" in FRAME[lang], (lang, kind)
