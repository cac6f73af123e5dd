from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collectors import diagnose
from collectors.diagnose import HostFacts, KmsClient
from models.enums import ActivationType, LicenseStatus, ProductType, Severity
from models.records import ProductState

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def facts(offset: timedelta, products=()) -> HostFacts:
    return HostFacts("ws01", "corp.test", ProductType.WORKSTATION, tuple(products), NOW + offset, NOW)


def test_clock_skew_fails_beyond_four_hours_either_way():
    assert diagnose.clock_skew(facts(timedelta(hours=4, minutes=1))).severity is Severity.FAIL
    assert diagnose.clock_skew(facts(-timedelta(hours=5))).related_code == "0xC004F06C"
    ok = diagnose.clock_skew(facts(timedelta(minutes=3)))
    assert ok.severity is Severity.OK and ok.evidence["skew_seconds"] == 180.0


def test_grace_expiry_warns_within_window_and_fails_in_notification():
    grace = ProductState("p", ActivationType.MAK, LicenseStatus.OOB_GRACE, grace_minutes=3 * 1440)
    assert diagnose.grace_expiry(grace, 14).severity is Severity.WARN
    assert diagnose.grace_expiry(grace, 2).severity is Severity.INFO
    notification = ProductState("p", ActivationType.MAK, LicenseStatus.NOTIFICATION)
    assert diagnose.grace_expiry(notification, 14).severity is Severity.FAIL


@dataclass
class Count:
    current_count: int


def test_kms_count_uses_the_threshold_of_the_client_kind():
    counts = {"kms01.corp.test": Count(12)}
    workstation = KmsClient("ws01", "kms01.corp.test", False, "0xC004F038")
    server = KmsClient("srv01", "kms01.corp.test", True, None)
    failing = diagnose.kms_count(workstation, counts)
    assert failing is not None and failing.severity is Severity.FAIL
    assert failing.evidence == {"kms_host": "kms01.corp.test", "current_count": 12, "required": 25}
    passing = diagnose.kms_count(server, counts)
    assert passing is not None and passing.severity is Severity.OK
    assert diagnose.kms_count(KmsClient("x", "other.corp.test", False, None), counts) is None


def test_kms_in_use_prefers_the_pinned_host():
    product = ProductState(
        "p",
        ActivationType.KMS_CLIENT,
        LicenseStatus.LICENSED,
        kms_machine="KMS02.corp.test.",
        kms_port=1700,
        discovered_kms_machine="kms01.corp.test",
        discovered_kms_port=1688,
    )
    use = diagnose.kms_in_use(product)
    assert use == diagnose.KmsUse("kms02.corp.test", 1700, "pinned")
