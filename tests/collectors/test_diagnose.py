from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from collectors import diagnose
from collectors.deadline import Deadline
from collectors.diagnose import HostFacts, KmsClient
from collectors.probes import Probes, SrvAnswer
from models import hostfacts
from models.enums import ActivationType, LicenseStatus, ProductType, Severity
from models.kms import KmsHostRecord
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


def record(count: int | None = 12, **changes) -> KmsHostRecord:
    """The stored state of a KMS host as the post-pass reads it."""
    fields = dict(
        id=1, name="kms01.corp.test", fqdn="kms01.corp.test", activation_type="KMS host", license_status="Licensed",
        kms_role="windows", os_version="10.0.20348", os_caption="Microsoft Windows Server 2022 Standard",
        product_type="server", current_count=count, last_failure_class=None, last_failure_reason=None,
        last_success_at=datetime(2026, 11, 1, tzinfo=UTC), last_attempt_at=datetime(2026, 11, 1, tzinfo=UTC),
        computer_name="KMS01", address="10.0.0.5",
    )  # fmt: skip
    return KmsHostRecord(**{**fields, **changes})


def test_kms_count_uses_the_threshold_of_the_client_kind():
    workstation = KmsClient("ws01", "kms01.corp.test", False, "0xC004F038")
    server = KmsClient("srv01", "kms01.corp.test", True, None)
    failing = diagnose.kms_count(workstation, record(12))
    assert failing is not None and failing.severity is Severity.FAIL
    assert failing.evidence == {
        "kms_host": "kms01.corp.test", "current_count": 12, "required": 25, "kms_host_record": "kms01.corp.test"
    }  # fmt: skip
    passing = diagnose.kms_count(server, record(12))
    assert passing is not None and passing.severity is Severity.OK
    assert diagnose.kms_count(KmsClient("x", "other.corp.test", False, None), None) is None
    office_only = record(40, activation_type="KMS client", kms_role="office")
    assert diagnose.kms_count(workstation, office_only) is None  # Office's count says nothing of Windows


def test_an_unread_product_type_never_yields_a_client_kind_verdict():
    # Win32_OperatingSystem unread: whether this host needs 5 or 25 is unknown, so 12 is neither pass nor fail.
    unknown = KmsClient("ws01", "kms01.corp.test", None, "0xC004F038")
    between = diagnose.kms_count(unknown, record(12))
    assert between is not None and between.severity is Severity.INFO
    assert "workstation" in between.summary and "could not be read" in between.summary
    below = diagnose.kms_count(unknown, record(3))
    assert below is not None and below.severity is Severity.FAIL and "any client needs at least 5" in below.summary
    above = diagnose.kms_count(unknown, record(30))
    assert above is not None and above.severity is Severity.OK


@pytest.mark.parametrize(
    ("code", "changes", "client_os", "verdict"),
    [
        ("0xC004F041", {"license_status": "Notification"}, None, "not_activated"),
        ("0xC004F041", {}, None, ""),
        ("0xC004F042", {"os_version": "6.3.9600", "os_caption": "Microsoft Windows Server 2012 R2 Standard"},
         ("10.0.22631", "Microsoft Windows 11 Enterprise"), "too_old"),
        ("0xC004F042", {}, ("10.0.22631", "Microsoft Windows 11 Enterprise"), ""),
        ("0xC004F039", {"activation_type": "MAK", "kms_role": None}, None, "not_kms_host"),
        ("0xC004F074", {"activation_type": "KMS client", "kms_role": "office"}, None, "not_kms_host"),
        ("0xC004F074", {"last_failure_class": "refused", "last_failure_reason": "connection refused"}, None,
         "unreachable"),
    ],
)  # fmt: skip
def test_a_client_failure_is_traced_to_the_state_of_its_kms_host(code, changes, client_os, verdict):
    version, caption = client_os or (None, None)
    client = KmsClient("ws01", "KMS01", False, code, version, caption)
    finding = diagnose.kms_host(client, record(30, **changes))
    assert finding is not None and finding.evidence["verdict"] == verdict
    assert finding.severity is (Severity.FAIL if verdict else Severity.OK)
    assert finding.evidence["kms_host_record"] == "kms01.corp.test" and finding.related_code == code


def test_only_failures_a_kms_host_can_cause_are_traced():
    assert diagnose.kms_host(KmsClient("ws01", "kms01", False, "0xC004F06C"), record()) is None
    unknown = diagnose.kms_host(KmsClient("ws01", "kms09", False, "0xC004F074"), None)
    assert unknown is not None and unknown.severity is Severity.INFO


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


# --- dns_srv: a missing SRV record fails only clients that depend on discovery and suffer from it --

NO_SRV_DOMAIN = "lab.northwind.test"  # the simulated fleet publishes no _vlmcs record here


def kms_client(status: LicenseStatus, code: str | None = None, pinned: str | None = None) -> ProductState:
    return ProductState(
        "p",
        ActivationType.KMS_CLIENT,
        status,
        error_code=code,
        kms_machine=pinned,
        kms_port=1688 if pinned else None,
    )


def srv_verdict(fleet, product: ProductState) -> diagnose.Finding:
    probes = Probes.for_settings(fleet.dns_server, connect_timeout_s=1.0)
    host = HostFacts("ws01", NO_SRV_DOMAIN, ProductType.WORKSTATION, (product,), None, NOW)
    [finding] = [f for f in diagnose.diagnose(host, probes, grace_warning_days=14) if f.check == "dns_srv"]
    return finding


def test_pinned_licensed_client_without_srv_record_is_information(http_fleet):
    finding = srv_verdict(http_fleet, kms_client(LicenseStatus.LICENSED, pinned="127.0.0.1"))
    assert finding.severity is Severity.INFO
    assert finding.evidence["name"] == f"_vlmcs._tcp.{NO_SRV_DOMAIN}" and "NXDOMAIN" in str(finding.evidence["error"])


def test_pinned_failing_client_is_not_blamed_on_dns(http_fleet):
    finding = srv_verdict(http_fleet, kms_client(LicenseStatus.OOB_GRACE, "0xC004F074", pinned="127.0.0.1"))
    assert finding.severity is Severity.INFO


def test_discovering_client_that_is_not_licensed_fails_dns_srv(http_fleet):
    finding = srv_verdict(http_fleet, kms_client(LicenseStatus.OOB_GRACE, "0x8007232B"))
    assert finding.severity is Severity.FAIL and finding.related_code == "0x8007232B"
    unexplained = srv_verdict(http_fleet, kms_client(LicenseStatus.OOB_GRACE, None))
    assert unexplained.severity is Severity.FAIL and unexplained.related_code == "0x8007232B"


def test_discovering_licensed_client_without_srv_record_is_information(http_fleet):
    assert srv_verdict(http_fleet, kms_client(LicenseStatus.LICENSED)).severity is Severity.INFO


def test_dns_error_code_fails_even_when_licensed_status_reads_otherwise():
    answer = SrvAnswer("_vlmcs._tcp.corp.test", error="NXDOMAIN: the name does not exist")
    licensed_with_dns_code = kms_client(LicenseStatus.LICENSED, "0x8007251D")
    assert diagnose.dns_srv(answer, licensed_with_dns_code).severity is Severity.FAIL


# --- kms_count: a name with a domain part never matches another domain's host of the same name ---


def test_kms_names_mean_a_host_by_one_rule_whatever_their_form():
    keys = hostfacts.host_keys("10.0.0.5", "kms01.corp.test", "KMS01", "10.0.0.5")
    assert all(hostfacts.matches(n, keys) for n in ("KMS01", "kms01.corp.test.", "KMS01.CORP.TEST:1688", "10.0.0.5"))
    assert not hostfacts.matches("kms01.lab.test", keys)  # a name with a domain part means only that name
    assert not hostfacts.matches("10.0.0.50", keys) and not hostfacts.matches("", keys)
    named = hostfacts.host_keys("kms02.corp.test", None, None, "10.0.0.6")
    assert hostfacts.matches("kms02", named) and hostfacts.matches("10.0.0.6", named)


# --- probes are bounded in time and in the number of distinct targets -------------------------


@pytest.fixture
def silent_dns() -> Iterator[str]:
    """A UDP socket on loopback that receives queries and never answers them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def pinned_host(name: str, port: int = 1688) -> HostFacts:
    product = ProductState("p", ActivationType.KMS_CLIENT, LicenseStatus.OOB_GRACE, error_code="0xC004F074")
    product = replace(product, kms_machine=name, kms_port=port)
    return HostFacts("ws01", "corp.test", ProductType.WORKSTATION, (product,), None, NOW)


def by_check(findings) -> dict[str, diagnose.Finding]:
    return {f.check: f for f in findings}


def test_unanswered_dns_is_bounded_by_the_host_deadline(silent_dns):
    probes = Probes.for_settings(silent_dns, connect_timeout_s=5.0)
    started = time.monotonic()
    host = pinned_host("kms.corp.test")
    findings = by_check(diagnose.diagnose(host, probes, grace_warning_days=14, deadline=Deadline(0.5)))
    assert time.monotonic() - started < 1.5
    # Cut short by the deadline, neither probe may pass for a verdict on the KMS host.
    assert findings["dns_srv"].severity is Severity.INFO
    assert findings["kms_port"].severity is Severity.INFO
    assert "not probed" in str(findings["kms_port"].evidence["error"])


def test_unanswered_dns_within_its_own_timeout_is_a_port_failure(silent_dns):
    probes = Probes.for_settings(silent_dns, connect_timeout_s=0.2)
    host = replace(pinned_host("kms.corp.test"), domain=None)  # no SRV lookup: the budget is the port check's
    started = time.monotonic()
    findings = by_check(diagnose.diagnose(host, probes, grace_warning_days=14))
    assert time.monotonic() - started < 1.5  # default budget: 2 x connect_timeout_s
    assert findings["kms_port"].severity is Severity.FAIL
    assert "does not resolve" in str(findings["kms_port"].evidence["error"])


def test_hanging_system_resolver_is_bounded_and_asked_once_per_name():
    release = threading.Event()
    calls: list[str] = []

    def hanging_lookup(host: str) -> str:
        calls.append(host)
        release.wait(10)
        raise OSError("lookup abandoned")

    probes = Probes(connect_timeout_s=5.0, host_budget_s=0.3, lookup=hanging_lookup)
    try:
        started = time.monotonic()
        for _ in range(3):
            findings = by_check(diagnose.diagnose(pinned_host("kms.hang.test"), probes, grace_warning_days=14))
            assert findings["kms_port"].severity is Severity.INFO
        assert time.monotonic() - started < 2.0
        assert calls == ["kms.hang.test"]
    finally:
        release.set()


def test_distinct_kms_targets_are_capped_per_run():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        connects: list[tuple[str, int]] = []

        def counting_connect(address: tuple[str, int], timeout: float) -> socket.socket:
            connects.append(address)
            return socket.create_connection(address, timeout)

        probes = Probes(connect_timeout_s=1.0, max_targets=3, connect=counting_connect)
        names = [f"127.0.0.{i}" for i in range(1, 6)]
        answers = [probes.tcp(name, port) for name in names]
        assert [a.probed for a in answers] == [True, True, True, False, False]
        assert answers[0].ok and "too many distinct KMS hosts" in str(answers[3].error)
        assert len(connects) == 3
        # Targets already probed keep answering from the cache; nothing new is connected to.
        assert probes.tcp("127.0.0.1", port).ok and len(connects) == 3
        finding = by_check(diagnose.diagnose(pinned_host("127.0.0.9", port), probes, grace_warning_days=14))
        assert finding["kms_port"].severity is Severity.INFO and len(connects) == 3
