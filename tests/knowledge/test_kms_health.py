"""A KMS host's health from all the evidence: every state, which one wins when several apply, and the reasons
a user reads, in English and Traditional Chinese."""

from __future__ import annotations

from dataclasses import replace

import pytest

from knowledge import codes
from knowledge.kms_health import KmsEvidence, KmsHealth, client_failure_codes, judge, threshold

HEALTHY = KmsEvidence(
    count=30, role="windows", listening=True, port=1688, dns_publishing=True, activated=True,
    license_status="Licensed", clients=12,
)  # fmt: skip
FAILURES = {
    KmsHealth.UNREACHABLE: {"failure": "timeout"},
    KmsHealth.NOT_LISTENING: {"listening": False},
    KmsHealth.NOT_ACTIVATED: {"activated": False, "license_status": "OOBGrace"},
    KmsHealth.CLIENTS_FAILING: {"failing_codes": (("0xC004F074", 3),)},
    KmsHealth.BELOW_THRESHOLD: {"count": 12},
}


def test_a_listening_activated_host_over_25_whose_clients_activate_is_healthy():
    verdict = judge(HEALTHY)
    assert verdict.state is KmsHealth.HEALTHY
    assert verdict.reasons() == ()
    assert verdict.summary() == ""


@pytest.mark.parametrize("state", list(FAILURES))
def test_each_failing_piece_of_evidence_alone_gives_its_state(state):
    assert judge(replace(HEALTHY, **FAILURES[state])).state is state


def test_the_worst_state_wins_and_every_reason_is_listed_worst_first():
    everything = replace(HEALTHY, **{k: v for change in FAILURES.values() for k, v in change.items()})
    verdict = judge(everything)
    assert verdict.state is KmsHealth.UNREACHABLE
    assert verdict.reasons() == (
        "its last poll failed: timed out",
        "not listening on 1688",
        "not activated itself: OOBGrace",
        "3 of 12 clients fail with 0xC004F074",
        "count 12: servers only, client PCs need 25",
    )


@pytest.mark.parametrize("worse", list(FAILURES))
def test_precedence_follows_the_order_of_the_states(worse):
    for better in FAILURES:
        if better.rank > worse.rank:
            both = replace(HEALTHY, **FAILURES[worse], **FAILURES[better])
            assert judge(both).state is worse, (worse, better)


def test_the_states_are_ordered_worst_first():
    assert [state.value for state in KmsHealth] == [
        "unreachable", "not_listening", "not_activated", "clients_failing", "below_threshold", "office_only", "healthy",
    ]  # fmt: skip
    assert KmsHealth.UNREACHABLE.rank == 0 and KmsHealth.HEALTHY.rank == len(KmsHealth) - 1


def test_a_host_never_read_is_unreachable_and_nothing_else_is_guessed():
    verdict = judge(KmsEvidence(read=False, clients=2, failing_codes=(("0xC004F074", 2),)))
    assert verdict.state is KmsHealth.UNREACHABLE
    assert verdict.reasons() == ("never read: the collector has not reached it", "2 of 2 clients fail with 0xC004F074")


def test_unknown_evidence_is_not_held_against_the_host():
    unknown = replace(HEALTHY, listening=None, dns_publishing=None, activated=None)
    assert judge(unknown).state is KmsHealth.HEALTHY


@pytest.mark.parametrize(
    ("count", "state", "reason"),
    [
        (0, KmsHealth.BELOW_THRESHOLD, "count 0: below 5, it activates nothing"),
        (4, KmsHealth.BELOW_THRESHOLD, "count 4: below 5, it activates nothing"),
        (5, KmsHealth.BELOW_THRESHOLD, "count 5: servers only, client PCs need 25"),
        (24, KmsHealth.BELOW_THRESHOLD, "count 24: servers only, client PCs need 25"),
        (25, KmsHealth.HEALTHY, None),
        (50, KmsHealth.HEALTHY, None),
    ],
)
def test_the_count_is_read_against_5_and_25(count, state, reason):
    verdict = judge(replace(HEALTHY, count=count))
    assert verdict.state is state
    assert verdict.reasons() == ((reason,) if reason else ())


def test_an_office_kms_host_is_office_only_and_needs_5():
    office = replace(HEALTHY, role="office", count=8)
    assert judge(office).state is KmsHealth.OFFICE_ONLY
    assert judge(office).reasons() == ("a KMS host for Office only, not for Windows",)
    low = judge(replace(office, count=3))
    assert low.state is KmsHealth.BELOW_THRESHOLD
    assert low.reasons()[0] == "Office count 3: below 5, it activates no Office"
    # its Windows license is not its Office KMS host's activation
    assert judge(replace(office, activated=False)).state is KmsHealth.OFFICE_ONLY
    # but a closed port or Windows clients failing against it still count
    assert judge(replace(office, listening=False)).state is KmsHealth.NOT_LISTENING
    assert judge(replace(office, failing_codes=(("0xC004F074", 1),))).state is KmsHealth.CLIENTS_FAILING


def test_a_host_for_another_product_is_told_apart_from_office():
    verdict = judge(replace(HEALTHY, role="other"))
    assert verdict.state is KmsHealth.OFFICE_ONLY
    assert verdict.reasons() == ("a KMS host for another product only, not for Windows",)


def test_not_publishing_srv_is_a_note_not_a_fault():
    verdict = judge(replace(HEALTHY, dns_publishing=False))
    assert verdict.state is KmsHealth.HEALTHY
    assert verdict.reasons() == ("publishes no SRV record: clients find it only by name (slmgr /skms)",)
    below = judge(replace(HEALTHY, dns_publishing=False, count=3))
    assert below.reasons()[-1].startswith("publishes no SRV record")  # notes come after the faults


def test_failing_clients_name_their_codes_most_frequent_first_and_a_changed_port():
    verdict = judge(replace(HEALTHY, listening=False, port=1700, failing_codes=(("0x800706BA", 2), ("0xC004F074", 5))))
    assert verdict.reasons() == ("not listening on 1700", "7 of 12 clients fail with 0xC004F074 (5), 0x800706BA (2)")


def test_reasons_and_states_in_traditional_chinese():
    verdict = judge(replace(HEALTHY, listening=False, failing_codes=(("0x800706BA", 2), ("0xC004F074", 5)), count=12))
    assert verdict.state.words("zh-TW") == "未接聽"
    assert verdict.reasons("zh-TW") == (
        "未在連接埠 1688 接聽",
        "12 台用戶端中有 7 台失敗：0xC004F074 (5)、0x800706BA (2)",
        "計數 12：僅能啟用伺服器，用戶端電腦需達 25",
    )
    assert verdict.summary("zh-TW") == "；".join(verdict.reasons("zh-TW"))
    assert judge(replace(HEALTHY, failure="refused")).reasons("zh-TW") == ("最近一次輪詢失敗：連線被拒",)


def test_every_state_has_words_in_both_languages_and_unsupported_languages_get_english():
    for state in KmsHealth:
        english, chinese = state.words("en"), state.words("zh-TW")
        assert english and chinese and english != chinese
        assert state.words("fr") == english
    assert len({state.words("zh-TW") for state in KmsHealth}) == len(KmsHealth)


def test_every_reason_has_words_in_both_languages():
    cases = [
        KmsEvidence(read=False),
        *(replace(HEALTHY, **change) for change in FAILURES.values()),
        replace(HEALTHY, count=2),
        replace(HEALTHY, role="office", count=2, dns_publishing=False),
        replace(HEALTHY, role="other"),
        *(replace(HEALTHY, failure=failure) for failure in ("dns", "refused", "timeout", "auth", "tls", "protocol")),
    ]
    for evidence in cases:
        verdict = judge(evidence)
        english, chinese = verdict.reasons("en"), verdict.reasons("zh-TW")
        assert len(english) == len(chinese) > 0
        assert all(e != c for e, c in zip(english, chinese, strict=True)), english


def test_an_unknown_failure_class_is_shown_as_it_is():
    assert judge(replace(HEALTHY, failure="gremlins")).reasons() == ("its last poll failed: gremlins",)


def test_the_client_codes_that_count_against_a_host_are_the_knowledge_bases_kms_host_codes():
    assert set(client_failure_codes()) == {entry.code for entry in codes.all_codes() if "kms_host" in entry.checks}
    assert {"0xC004F074", "0xC004F038", "0x800706BA"} <= set(client_failure_codes())
    assert "0xC004F06C" not in client_failure_codes()  # clock skew is the client's own


@pytest.mark.parametrize(
    ("count", "role", "expected"),
    [(3, "windows", 5), (5, "windows", 25), (30, "windows", 25), (None, "windows", 5), (14, "office", 5)],
)
def test_the_threshold_a_count_is_read_against(count, role, expected):
    assert threshold(count, role) == expected
