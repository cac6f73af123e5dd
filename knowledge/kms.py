"""Key Management Service rules: thresholds, caps, ports, timers and the state of a KMS host.

This module owns the numbers KMS activation depends on, named once so the collector's diagnosis,
the store and the dashboard agree, plus the small pure functions built on them (what a host's
count lets it activate, the count a client needs). It does not probe anything; the checks that
use these numbers live in ``collectors.diagnose``.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

KMS_CLIENT_THRESHOLD = 25
"""A KMS host activates Windows client (workstation) machines once its count reaches this."""

KMS_SERVER_THRESHOLD = 5
"""A KMS host activates Windows Server machines (and volume Office) once its count reaches this."""

KMS_COUNT_CAP = 50
"""A KMS host remembers only the 50 most recent machines (twice the client threshold)."""

KMS_SERVER_ONLY_CAP = 10
"""With only servers contacting it, a KMS host's count tops out at 10 (twice the server threshold)."""

KMS_COUNT_WINDOW = timedelta(days=30)
"""The count is the number of distinct machines (CMIDs) that contacted the host in this window."""

KMS_DEFAULT_PORT = 1688
"""TCP port a KMS host listens on unless changed with ``slmgr.vbs /sprt``."""

KMS_SRV_PREFIX = "_vlmcs._tcp"
"""DNS SRV name, under the client's domain, through which KMS clients discover hosts."""

SRV_REPUBLISH_INTERVAL = timedelta(hours=24)
"""A publishing KMS host re-registers its SRV record this often."""

CLOCK_SKEW_LIMIT = timedelta(hours=4)
"""A KMS host rejects requests (0xC004F06C) when client and host clocks differ by more, in UTC."""

ACTIVATION_VALIDITY = timedelta(days=180)
"""How long a KMS activation stays valid without a successful renewal."""

RENEWAL_INTERVAL = timedelta(days=7)
"""An activated KMS client renews this often (``VLRenewalInterval`` default, 10080 minutes)."""

RETRY_INTERVAL = timedelta(hours=2)
"""An unactivated KMS client retries this often (``VLActivationInterval`` default, 120 minutes)."""

INTERVAL_MIN = timedelta(minutes=15)
"""Shortest renewal or retry interval a KMS host may hand out (``/sai``, ``/sri``)."""

INTERVAL_MAX = timedelta(days=30)
"""Longest renewal or retry interval a KMS host may hand out."""

KMS_HOST_KEY_ACTIVATIONS = 10
"""A KMS host key (CSVLK) can be activated this many times (0xC004C008 beyond that)..."""

KMS_HOST_KEY_MACHINES = 6
"""... on at most this many different computers."""


class KmsState(StrEnum):
    """What a KMS host's current count lets it activate."""

    NONE = "none"
    SERVERS = "servers"
    ALL = "all"

    def words(self, lang: str = "en") -> str:
        """The state in words for people, in ``lang`` (English for unsupported languages)."""
        wanted = str(lang).replace("_", "-").casefold()
        table = next((words for key, words in _WORDS.items() if key.casefold() == wanted), _WORDS["en"])
        return table[self]


_WORDS: dict[str, dict[KmsState, str]] = {
    "en": {
        KmsState.NONE: "serves neither",
        KmsState.SERVERS: "servers only",
        KmsState.ALL: "servers and clients",
    },
    "zh-TW": {
        KmsState.NONE: "伺服器與用戶端皆無法啟用",
        KmsState.SERVERS: "僅能啟用伺服器",
        KmsState.ALL: "可啟用伺服器與用戶端",
    },
}


def kms_state(count: int) -> KmsState:
    """What a KMS host with ``count`` can activate: nothing, servers only, or everything."""
    if count >= KMS_CLIENT_THRESHOLD:
        return KmsState.ALL
    if count >= KMS_SERVER_THRESHOLD:
        return KmsState.SERVERS
    return KmsState.NONE


def required_count(is_server: bool) -> int:
    """The KMS host count a machine needs before the host activates it."""
    return KMS_SERVER_THRESHOLD if is_server else KMS_CLIENT_THRESHOLD


def capped(count: int) -> int:
    """``count`` clamped to what a KMS host can report (0 to 50)."""
    return max(0, min(count, KMS_COUNT_CAP))


def shortfall(count: int, is_server: bool) -> int:
    """How many more machines the host must count before it activates this kind of machine."""
    return max(0, required_count(is_server) - count)


def srv_name(domain: str) -> str:
    """The SRV name KMS clients of ``domain`` query, e.g. ``_vlmcs._tcp.corp.example``."""
    return f"{KMS_SRV_PREFIX}.{domain.strip().strip('.')}"
