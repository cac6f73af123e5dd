from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from collectors import classify
from collectors.parse import LicensingProduct, LicensingService, SppEvent
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


def service(*, is_kms_machine: bool) -> LicensingService:
    # Only the flag matters to the classifier; the other fields are the service's of a plain server.
    fields = {name: None for name in LicensingService.__dataclass_fields__}
    return LicensingService(**{**fields, "is_kms_machine": is_kms_machine})


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # A Windows Server with a GVLK that hosts KMS for Office: the machine-wide flag is set.
        ({}, ActivationType.KMS_CLIENT),
        ({"channel": None}, ActivationType.KMS_CLIENT),
        ({"channel": "Volume:MAK", "description": "Windows(R), VOLUME_MAK channel"}, ActivationType.MAK),
        ({"ad_activation_object": "Windows AD Activation"}, ActivationType.AD_BASED),
        # Only when the product names no channel at all does the service flag decide.
        ({"channel": None, "description": "Windows(R) Operating System"}, ActivationType.KMS_HOST),
        ({"channel": None, "description": None}, ActivationType.KMS_HOST),
        ({"channel": "Volume:CSVLK"}, ActivationType.KMS_HOST),
    ],
)
def test_machine_wide_kms_flag_does_not_override_the_windows_channel(changes, expected):
    assert classify.activation_type(replace(BASE, **changes), service(is_kms_machine=True)) is expected


def test_office_kms_host_server_is_classified_as_the_kms_client_it_is():
    [state] = classify.product_states([BASE], service(is_kms_machine=True), [])
    assert state.activation_type is ActivationType.KMS_CLIENT
    unknown = replace(BASE, channel=None, description="Windows(R) Operating System")
    assert classify.activation_type(unknown, service(is_kms_machine=False)) is ActivationType.UNKNOWN


def event(code: int, hr: int, minute: int) -> SppEvent:
    return SppEvent(code, minute, datetime(2025, 1, 1, 0, minute, tzinfo=UTC), hr)


def test_error_code_from_status_reason_with_severity_bit():
    product = replace(BASE, license_status=2, license_status_reason=0xC004F074)
    assert classify.error_code(product, LicenseStatus.OOB_GRACE, []) == ("0xC004F074", "status")


def test_informational_reason_falls_back_to_newest_failing_event():
    product = replace(BASE, license_status=5, license_status_reason=0x4004F00C)
    events = [event(12288, 0x8007232B, 1), event(12289, 0x4004F040, 5), event(8198, 0xC004F06C, 9)]
    assert classify.needs_events([product])
    assert classify.error_code(product, LicenseStatus.NOTIFICATION, events) == ("0xC004F06C", "event")


def test_a_failure_superseded_by_a_later_kms_success_is_never_reported():
    product = replace(BASE, license_status=5, license_status_reason=0x4004F00C)
    events = [event(8198, 0xC004F074, 1), event(12288, 0, 8), event(12289, 0, 9)]
    assert classify.error_code(product, LicenseStatus.NOTIFICATION, events) == (None, None)
    # ...while a later failing KMS response is the current code
    failing = [*events, event(12289, 0xC004F038, 12)]
    assert classify.error_code(product, LicenseStatus.NOTIFICATION, failing) == ("0xC004F038", "event")


def test_licensed_hosts_report_no_error_code():
    product = replace(BASE, license_status=1, license_status_reason=0, grace_minutes=178 * 1440)
    assert not classify.needs_events([product])
    assert classify.error_code(product, LicenseStatus.LICENSED, [event(8198, 0xC004F074, 1)]) == (None, None)


@pytest.mark.parametrize(
    ("grace_days", "interval_minutes", "overdue"),
    [(178, None, False), (173, None, False), (171.9, None, True), (1.5, None, True), (171.9, 10080, True),
     # a host handing out a 2-day renewal interval: 180 - 2 - 1 = 177 days
     (176.5, 2880, True), (177.5, 2880, False), (0, None, False)],
)  # fmt: skip
def test_a_licensed_kms_client_below_172_days_has_missed_renewals(grace_days, interval_minutes, overdue):
    product = replace(BASE, grace_minutes=int(grace_days * 1440), renewal_interval_minutes=interval_minutes)
    assert classify.renewal_overdue(product) is overdue
    assert classify.needs_events([product]) is overdue


def test_a_licensed_client_whose_renewals_fail_reports_the_current_failure():
    product = replace(BASE, grace_minutes=40 * 1440)
    events = [event(12289, 0, 1), event(8198, 0x8007232B, 20), event(8198, 0xC004F074, 30)]
    [state] = classify.product_states([product], None, events)
    assert state.license_status is LicenseStatus.LICENSED
    assert state.renewal_failing and state.error_code == "0xC004F074" and state.error_source == "event"
    mak = replace(product, channel="Volume:MAK", description="Windows(R), VOLUME_MAK channel")
    assert not classify.renewal_overdue(mak)  # only KMS clients renew


def test_status_numbers_and_foreign_products():
    assert classify.license_status(6) is LicenseStatus.EXTENDED_GRACE
    assert classify.license_status(99) is LicenseStatus.UNLICENSED
    office = replace(BASE, application_id="0ff1ce15-a989-479d-af46-f275c6370663")
    keyless = replace(BASE, partial_key=None)
    assert classify.windows_products([office, keyless, BASE]) == (BASE,)
