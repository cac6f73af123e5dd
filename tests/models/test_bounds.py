"""One long or odd value never stops recording: every text a host supplied is cleaned to its column
before it is written, on SQLite and PostgreSQL alike (where a NUL byte or an over-long indexed value
used to make the database refuse the whole batch)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from models import bounds, store
from models.enums import ActivationType, FailureClass, LicenseStatus, ProductType, Severity
from models.records import Finding, HostFailure, HostObservation, ProductState
from models.tables import CurrentStatus, Host, HostFinding, StatusHistory

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def hostile(text: str, *, host: str = "10.0.0.9", at: datetime = T0) -> HostObservation:
    product = ProductState(
        product_id=text, activation_type=ActivationType.KMS_CLIENT, license_status=LicenseStatus.NOTIFICATION,
        error_code="0xC004F074", name=text, description=text, channel=text, kms_machine=text,
        discovered_kms_machine=text, partial_key=text,
    )  # fmt: skip
    finding = Finding("kms_port", Severity.FAIL, text, "0xC004F074", {"kms_host": text, text[:50]: [text]})
    return HostObservation(
        host, at, computer_name=text, domain=text, os_caption=text, os_version=text,
        product_type=ProductType.WORKSTATION, clock_skew_seconds=0.0, products=(product,), findings=(finding,),
    )  # fmt: skip


RED_TEAM = [
    "W" * 3000,  # a computer name longer than any index entry may be
    "PC\x00ONE",  # NUL: PostgreSQL refuses it in text
    "Volume:GVLK-with-a-channel-name-over-32-characters",
    "x" * 70,  # a product id and OS version over 64
    "ctl\x01\x1b[31mred\x7f\x9b",
    "tab\there\nnewline",
]


@pytest.mark.parametrize("text", RED_TEAM, ids=["long", "nul", "channel", "id", "control", "whitespace"])
def test_a_hostile_value_is_cleaned_and_the_host_recorded(engine: Engine, text: str) -> None:
    with engine.begin() as conn:
        store.write_results(conn, None, [hostile(text), HostFailure("10.0.0.8", T0, FailureClass.TIMEOUT, text)])
    with engine.connect() as conn:
        host = conn.execute(select(Host).where(Host.name == "10.0.0.9")).one()
        product = conn.execute(select(CurrentStatus)).one()
        finding = conn.execute(select(HostFinding)).one()
        failed = conn.execute(select(Host.last_failure_reason).where(Host.name == "10.0.0.8")).scalar_one()
    for value in (host.computer_name, host.fqdn, host.os_caption, product.product_id, product.channel, failed):
        assert "\x00" not in value and "\x01" not in value and "\n" not in value
    assert len(host.computer_name) <= bounds.FREE_TEXT and len(host.fqdn) <= bounds.INDEXED_TEXT
    assert len(product.product_id) <= 64 and len(product.channel) <= 32 and len(host.os_version) <= 64
    if len(text) > 64:
        assert product.product_id.endswith(bounds.MARKER)  # cut, and says so
    assert finding.evidence["kms_host"] == bounds.clean(text, bounds.EVIDENCE_TEXT)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=400))
def test_any_text_in_every_field_is_written(engine: Engine, text: str) -> None:
    with engine.begin() as conn:
        store.write_results(conn, None, [hostile(text, host="10.0.0.7")])
    with engine.connect() as conn:
        stored = conn.execute(select(Host.computer_name).where(Host.name == "10.0.0.7")).scalar_one()
    assert stored == bounds.clean(text, bounds.FREE_TEXT)


@given(st.text(max_size=600), st.integers(min_value=1, max_value=300))
def test_cleaning_keeps_what_fits_and_marks_what_it_cuts(text: str, width: int) -> None:
    cleaned = bounds.clean(text, width)
    assert len(cleaned) <= width
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in cleaned)
    plain = bounds.clean(text, 10**6)
    assert cleaned == plain or (cleaned.endswith(bounds.MARKER) and plain.startswith(cleaned[:-1]))


def test_a_number_no_windows_reports_is_stored_as_unknown(engine: Engine) -> None:
    o = hostile("PC")
    o = replace(o, products=(replace(o.products[0], grace_minutes=4294967295),))
    with engine.begin() as conn:
        store.write_results(conn, None, [o])
    with engine.connect() as conn:
        host = conn.execute(select(Host.grace_minutes, Host.grace_ends_at)).one()
    assert tuple(host) == (None, None)


def full(at: datetime) -> HostObservation:
    product = ProductState("p1", ActivationType.KMS_CLIENT, LicenseStatus.NOTIFICATION, error_code="0xC004F074")
    return HostObservation(
        "10.0.0.5", at, computer_name="PC05", domain="corp.test", os_caption="Windows 11", os_version="10.0.22631",
        product_type=ProductType.WORKSTATION, clock_skew_seconds=1.0, products=(product,),
    )  # fmt: skip


def test_a_partial_read_keeps_what_was_known_and_says_how_old_it_is(engine: Engine) -> None:
    later = T0 + timedelta(hours=2)
    product = ProductState("p1", ActivationType.KMS_CLIENT, LicenseStatus.NOTIFICATION)  # no code: the log was unread
    partial = HostObservation(
        "10.0.0.5", later, products=(product,),
        unread=("Win32_ComputerSystem", "Win32_OperatingSystem", "Win32_NTLogEvent"),
    )  # fmt: skip
    with engine.begin() as conn:
        store.write_results(conn, None, [full(T0)])
    with engine.begin() as conn:
        store.write_results(conn, None, [partial])
    with engine.connect() as conn:
        host = conn.execute(select(Host).where(Host.name == "10.0.0.5")).one()
        product_code = conn.execute(select(CurrentStatus.error_code)).scalar_one()
        history = conn.execute(select(StatusHistory.error_code)).scalars().all()
    assert (host.computer_name, host.domain, host.os_caption, host.os_version) == (
        "PC05", "corp.test", "Windows 11", "10.0.22631"
    )  # fmt: skip
    assert host.error_code == "0xC004F074" and product_code == "0xC004F074"  # never erased by a missing read
    assert history == ["0xC004F074"]  # no change recorded that did not happen
    assert host.identity_read_at == T0 and host.os_read_at == T0 and host.error_read_at == T0  # their age
    assert host.last_success_at == later and host.unread_classes == (
        "Win32_ComputerSystem,Win32_OperatingSystem,Win32_NTLogEvent"
    )  # fmt: skip


def test_a_full_read_after_a_partial_one_updates_everything(engine: Engine) -> None:
    with engine.begin() as conn:
        store.write_results(conn, None, [full(T0)])
        fixed = replace(full(T0 + timedelta(hours=1)), computer_name="PC05-NEW", domain=None)
        store.write_results(conn, None, [fixed])
    with engine.connect() as conn:
        host = conn.execute(select(Host).where(Host.name == "10.0.0.5")).one()
    assert (host.computer_name, host.domain, host.identity_read_at) == ("PC05-NEW", None, T0 + timedelta(hours=1))
