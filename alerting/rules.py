"""The alert rules, as data: each names its check, its severity, the settings that give its thresholds and the
key of its text. The engine (``alerting.evaluate``) runs whatever is listed here and never names a rule.

Adding a rule is adding a ``Rule`` to ``RULES`` (with its title and detail in ``knowledge.alert_text``); a rule
that needs data no check reads yet also gets a check in the query layer (``models.alert_checks``), registered in
``CHECKS``. ``storm`` marks the per-host rules whose messages are summed up in one when many hosts change at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config.settings import Settings
from models import alert_checks, alert_checks_fleet
from models.alert_checks import Check, CheckParams

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule: what it is called, how bad it is, which check finds it and what that check is given."""

    name: str
    severity: str
    check: str  # a key of CHECKS
    settings: tuple[str, ...] = ()  # Settings fields the check reads its thresholds from
    text: str = ""  # key of its detail in knowledge.alert_text (the name when empty)
    storm: bool = False  # a per-host rule: many messages at once become one summary

    @property
    def text_key(self) -> str:
        return self.text or self.name

    def params(self, settings: Settings) -> CheckParams:
        values: dict[str, Any] = {name: getattr(settings, name) for name in self.settings}
        return CheckParams(self.name, self.severity, values)


CHECKS: Mapping[str, Check] = {
    "host_failing": alert_checks.host_failing,
    "renewal_failing": alert_checks.renewal_failing,
    "grace_ending": alert_checks.grace_ending,
    "kms_below_threshold": alert_checks.kms_below_threshold,
    "kms_not_activated": alert_checks.kms_not_activated,
    "kms_unreachable": alert_checks.kms_unreachable,
    "kms_no_srv": alert_checks.kms_no_srv,
    "srv_missing": alert_checks_fleet.srv_missing,
    "srv_dead": alert_checks_fleet.srv_dead,
    "collector_quiet": alert_checks_fleet.collector_quiet,
    "code_spike": alert_checks_fleet.code_spike,
}

RULES: tuple[Rule, ...] = (
    Rule("host_failing", WARNING, "host_failing", storm=True),
    Rule("renewal_failing", WARNING, "renewal_failing", storm=True),
    Rule("grace_ending", WARNING, "grace_ending", ("grace_warning_days",), storm=True),
    Rule("kms_below_threshold", WARNING, "kms_below_threshold", ("kms_client_threshold", "kms_server_threshold")),
    Rule("kms_not_activated", CRITICAL, "kms_not_activated"),
    Rule("kms_unreachable", CRITICAL, "kms_unreachable"),
    Rule("kms_no_srv", INFO, "kms_no_srv"),
    Rule("srv_missing", WARNING, "srv_missing"),
    Rule("srv_dead", CRITICAL, "srv_dead"),
    Rule("collector_quiet", CRITICAL, "collector_quiet", ("alert_quiet_factor", "poll_interval_s")),
    Rule("code_spike", CRITICAL, "code_spike", ("alert_spike_factor", "alert_spike_min_hosts")),
)

BY_NAME: Mapping[str, Rule] = {rule.name: rule for rule in RULES}
