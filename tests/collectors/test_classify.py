from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from collectors import classify
from collectors.parse import LicensingProduct, SppEvent
from collectors.wmi import WINDOWS_APP_ID
from models.enums import ActivationType, LicenseStatus

BASE = LicensingProduct(
    id="p1",
    name="Windows",
    description="Windows(R) Operating System, VOLUME_KMSCLIENT channel",
    application_id=WINDOWS_APP_ID,
    partial_key="ABCDE",
    channel="Volume:GVLK",
    license_status=1,
    license_status_reason=0,
    grace_minutes=0,
    kms_machine=None,
    kms_port=None,
    discovered_kms_machine=None,
    discovered_kms_port=None,
    is_kms_machine=False,
    ad_activation_object=None,
)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ActivationType.KMS_CLIENT),
        ({"ad_activation_object": "Windows AD Activation"}, ActivationType.AD_BASED),
        ({"channel": "Volume:MAK"}, ActivationType.MAK),
        ({"channel": "Retail"}, ActivationType.RETAIL),
        ({"channel": "OEM:DM"}, ActivationType.OEM),
        ({"channel": "Volume:CSVLK"}, ActivationType.KMS_HOST),
        ({"channel": None, "description": "Windows(R), VOLUME_KMS_2019 channel"}, ActivationType.KMS_HOST),
        ({"is_kms_machine": True}, ActivationType.KMS_HOST),
        ({"channel": None, "description": "Windows(R), VOLUME_MAK channel"}, ActivationType.MAK),
        ({"channel": None, "description": "Windows(R), OEM_DM channel"}, ActivationType.OEM),
        ({"channel": None, "description": "Windows(R), RETAIL channel"}, ActivationType.RETAIL),
        ({"channel": None, "description": "Windows(R), TIMEBASED_EVAL channel"}, ActivationType.UNKNOWN),
    ],
)
def test_activation_type_rules(changes, expected):
    assert classify.activation_type(replace(BASE, **changes), None) is expected


def event(code: int, hr: int, minute: int) -> SppEvent:
    return SppEvent(code, minute, datetime(2025, 1, 1, 0, minute, tzinfo=UTC), hr)


def test_error_code_from_status_reason_with_severity_bit():
    product = replace(BASE, license_status=2, license_status_reason=0xC004F074)
    assert classify.error_code(product, LicenseStatus.OOB_GRACE, []) == ("0xC004F074", "status")


def test_informational_reason_falls_back_to_newest_failing_event():
    product = replace(BASE, license_status=5, license_status_reason=0x4004F00C)
    events = [event(12288, 0x8007232B, 1), event(8198, 0xC004F06C, 9), event(12289, 0x4004F040, 20)]
    assert classify.needs_events([product])
    assert classify.error_code(product, LicenseStatus.NOTIFICATION, events) == ("0xC004F06C", "event")


def test_licensed_hosts_report_no_error_code():
    product = replace(BASE, license_status=1, license_status_reason=0)
    assert not classify.needs_events([product])
    assert classify.error_code(product, LicenseStatus.LICENSED, [event(8198, 0xC004F074, 1)]) == (None, None)


def test_status_numbers_and_foreign_products():
    assert classify.license_status(6) is LicenseStatus.EXTENDED_GRACE
    assert classify.license_status(99) is LicenseStatus.UNLICENSED
    office = replace(BASE, application_id="0ff1ce15-a989-479d-af46-f275c6370663")
    keyless = replace(BASE, partial_key=None)
    assert classify.windows_products([office, keyless, BASE]) == (BASE,)
