"""KMS rules: what a host's count lets it activate, and the numbers behind it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from knowledge import kms
from knowledge.kms import KmsState, capped, kms_state, required_count, shortfall, srv_name


def test_documented_numbers():
    assert kms.KMS_CLIENT_THRESHOLD == 25
    assert kms.KMS_SERVER_THRESHOLD == 5
    assert kms.KMS_COUNT_CAP == 2 * kms.KMS_CLIENT_THRESHOLD == 50
    assert kms.KMS_SERVER_ONLY_CAP == 2 * kms.KMS_SERVER_THRESHOLD == 10
    assert kms.KMS_DEFAULT_PORT == 1688
    assert timedelta(hours=4) == kms.CLOCK_SKEW_LIMIT
    assert kms.KMS_SRV_PREFIX == "_vlmcs._tcp"
    assert timedelta(minutes=10080) == kms.RENEWAL_INTERVAL
    assert timedelta(minutes=120) == kms.RETRY_INTERVAL
    assert timedelta(days=180) == kms.ACTIVATION_VALIDITY


@pytest.mark.parametrize(
    ("count", "state"),
    [
        (-1, KmsState.NONE),
        (0, KmsState.NONE),
        (4, KmsState.NONE),
        (5, KmsState.SERVERS),
        (24, KmsState.SERVERS),
        (25, KmsState.ALL),
        (50, KmsState.ALL),
    ],
)
def test_kms_state_boundaries(count, state):
    assert kms_state(count) is state


def test_state_values_are_stable_strings():
    assert [state.value for state in KmsState] == ["none", "servers", "all"]


def test_state_in_words():
    assert [state.words() for state in KmsState] == ["serves neither", "servers only", "servers and clients"]
    chinese = [state.words("zh-TW") for state in KmsState]
    assert len(set(chinese)) == 3
    assert all("伺服器" in words for words in chinese)
    assert KmsState.ALL.words("de") == "servers and clients"


def test_required_count():
    assert required_count(is_server=True) == 5
    assert required_count(is_server=False) == 25


@pytest.mark.parametrize(("count", "expected"), [(-3, 0), (0, 0), (49, 49), (50, 50), (51, 50), (500, 50)])
def test_capped(count, expected):
    assert capped(count) == expected


def test_shortfall():
    assert shortfall(20, is_server=False) == 5
    assert shortfall(20, is_server=True) == 0
    assert shortfall(0, is_server=True) == 5


def test_srv_name():
    assert srv_name("corp.example") == "_vlmcs._tcp.corp.example"
    assert srv_name(" corp.example. ") == "_vlmcs._tcp.corp.example"
