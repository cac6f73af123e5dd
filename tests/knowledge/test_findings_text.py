"""Diagnosis summaries in both languages, for every summary the collector's checks can write.

Each case drives a real check of ``collectors.diagnose`` with the facts that give one outcome, so the
templates are compared with what the collector stores, not with a copy of it.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

import pytest

from collectors import diagnose
from collectors.diagnose import HostFacts, KmsClient, KmsUse
from collectors.probes import Probes, SrvAnswer, SrvRecord, TcpAnswer
from knowledge import findings
from models import hostfacts
from models.enums import ActivationType, LicenseStatus, ProductType, Severity
from models.kms import KmsHostRecord
from models.records import Finding, ProductState

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
SRV = "_vlmcs._tcp.corp.test"
ZH_WORDS = functools.partial(hostfacts.state_words, lang="zh-TW")
# Words that stay as they are in Traditional Chinese text: protocol and product names.
KEPT_WORDS = {"KMS", "SRV", "DNS", "Windows", "Office"}


def facts(offset: timedelta) -> HostFacts:
    return HostFacts("ws01", "corp.test", ProductType.WORKSTATION, (), NOW + offset, NOW)


def client(status: LicenseStatus, code: str | None = None, pinned: str | None = None) -> ProductState:
    return ProductState("p", ActivationType.KMS_CLIENT, status, error_code=code, kms_machine=pinned)


def grace(status: LicenseStatus, minutes: int | None) -> ProductState:
    return ProductState("55c92734", ActivationType.KMS_CLIENT, status, grace_minutes=minutes)


def record(count: int | None = 30, **changes: object) -> KmsHostRecord:
    fields: dict[str, object] = dict(
        id=1, name="kms01.corp.test", fqdn="kms01.corp.test", activation_type="KMS host", license_status="Licensed",
        kms_role="windows", os_version="10.0.20348", os_caption="Microsoft Windows Server 2022 Standard",
        product_type="server", current_count=count, last_failure_class=None, last_failure_reason=None,
        last_success_at=NOW, last_attempt_at=NOW, computer_name="KMS01", address="10.0.0.5",
    )  # fmt: skip
    return KmsHostRecord(**{**fields, **changes})  # type: ignore[arg-type]


def capped() -> Probes:
    """Probes that may make no probe at all: every answer is "not probed"."""
    return Probes(max_targets=0)


WS = KmsClient("ws01", "kms01.corp.test", False, "0xC004F038")
SERVER = KmsClient("srv01", "kms01.corp.test", True, "0xC004F038")
UNKNOWN = KmsClient("ws02", "kms01.corp.test", None, "0xC004F038")
WIN11 = ("10.0.22631", "Microsoft Windows 11 Enterprise")


def traced(code: str, rec: KmsHostRecord | None, os: tuple[str | None, str | None] = (None, None)) -> Finding | None:
    return diagnose.kms_host(KmsClient("ws01", "KMS01", False, code, *os), rec)


USE = KmsUse("kms01.corp.test", 1688, "discovered")
CASES: dict[str, Finding | None] = {
    "skew ahead": diagnose.clock_skew(facts(timedelta(hours=5))),
    "skew behind": diagnose.clock_skew(facts(-timedelta(hours=4, minutes=1))),
    "skew within": diagnose.clock_skew(facts(timedelta(minutes=3))),
    "srv found": diagnose.dns_srv(SrvAnswer(SRV, (SrvRecord("kms01.corp.test", 1688),)),
                                  client(LicenseStatus.LICENSED)),
    "srv not probed": diagnose.dns_srv(capped().srv("corp.test"), client(LicenseStatus.OOB_GRACE)),
    "srv missing": diagnose.dns_srv(SrvAnswer(SRV, error="NXDOMAIN: the name does not exist"),
                                    client(LicenseStatus.OOB_GRACE, "0x8007232B")),
    "srv missing, pinned": diagnose.dns_srv(SrvAnswer(SRV, error="no SRV record"),
                                            client(LicenseStatus.OOB_GRACE, "0xC004F074", "kms02.corp.test")),
    "srv missing, licensed": diagnose.dns_srv(SrvAnswer(SRV, error="no SRV record"), client(LicenseStatus.LICENSED)),
    "port open": diagnose.kms_port(USE, TcpAnswer("kms01.corp.test", 1688, "10.0.0.5", True), None),
    "port not probed": diagnose.kms_port(USE, capped().tcp("kms01.corp.test", 1688), "0xC004F074"),
    "port refused": diagnose.kms_port(
        KmsUse("kms01.corp.test", 1700, "pinned"), TcpAnswer("kms01.corp.test", 1700, "10.0.0.5", False,
                                                             "connection refused"), "0xC004F074"),
    "notification": diagnose.grace_expiry(grace(LicenseStatus.NOTIFICATION, None), 14),
    "grace ending": diagnose.grace_expiry(grace(LicenseStatus.OOB_GRACE, 3 * 1440 + 100), 14),
    "grace left": diagnose.grace_expiry(grace(LicenseStatus.OOT_GRACE, 40 * 1440), 14),
    "grace unknown": diagnose.grace_expiry(grace(LicenseStatus.EXTENDED_GRACE, None), 14),
    "count low, workstation": diagnose.kms_count(WS, record(12)),
    "count low, server": diagnose.kms_count(SERVER, record(3)),
    "count enough": diagnose.kms_count(SERVER, record(12)),
    "count low, kind unknown": diagnose.kms_count(UNKNOWN, record(3)),
    "count for servers only, kind unknown": diagnose.kms_count(UNKNOWN, record(12)),
    "count enough, kind unknown": diagnose.kms_count(UNKNOWN, record(30)),
    "kms host not polled": traced("0xC004F074", None),
    "kms host unreachable": traced("0xC004F074", record(last_failure_class="refused",
                                                        last_failure_reason="connection refused")),
    "kms host never read": traced("0xC004F074", record(None, last_success_at=None)),
    "office kms host": traced("0xC004F074", record(activation_type="KMS client", kms_role="office")),
    "other kms host": traced("0xC004F074", record(activation_type="KMS client", kms_role="other")),
    "not a kms host": traced("0xC004F039", record(activation_type="MAK", kms_role=None)),
    "kms host not activated": traced("0xC004F041", record(license_status="Notification")),
    "kms host too old": traced("0xC004F042", record(os_version="6.3.9600",
                                                    os_caption="Microsoft Windows Server 2012 R2 Standard"), WIN11),
    "kms host fine": traced("0xC004F041", record(30)),
    "kms host fine, no count": traced("0xC004F041", record(None)),
}  # fmt: skip


def found(name: str) -> Finding:
    finding = CASES[name]
    assert finding is not None, name
    return finding


def outcome(finding: Finding) -> str | None:
    return findings.outcome(finding.check, finding.severity, finding.evidence)


def english_words(text: str, evidence: dict[str, object]) -> set[str]:
    """Latin-letter words in ``text`` once the evidence's own values (names, numbers) and codes are taken out."""
    for value in sorted((str(v) for v in evidence.values() if v is not None), key=len, reverse=True):
        text = text.replace(value, " ")
    text = re.sub(r"0x[0-9A-F]{8}", " ", text)
    return set(re.findall(r"[A-Za-z]{2,}", text)) - KEPT_WORDS


def test_the_cases_cover_every_outcome_of_every_check():
    assert {outcome(found(name)) for name in CASES} == set(findings.TEMPLATES)
    assert {found(name).check for name in CASES} == set(diagnose.CHECKS)


@pytest.mark.parametrize("name", list(CASES))
def test_english_templates_reproduce_the_collector_summary(name):
    finding = found(name)
    key = outcome(finding)
    rendered = findings.summary(finding.check, finding.severity, finding.evidence, "en")
    assert rendered is not None and "{" not in rendered
    if key in findings.ABRIDGED:
        assert finding.summary.startswith(rendered.split(" could")[0].split(" on ")[0])
    else:
        assert rendered == finding.summary
    # The English page shows what the collector wrote, whatever the template says.
    assert findings.in_words(finding.check, finding.severity, finding.evidence, finding.summary, "en") == (
        finding.summary
    )


@pytest.mark.parametrize("name", list(CASES))
def test_traditional_chinese_summary_is_chinese_with_names_and_numbers_kept(name):
    finding = found(name)
    shown = findings.in_words(finding.check, finding.severity, finding.evidence, finding.summary, "zh-TW",
                              words=ZH_WORDS)  # fmt: skip
    assert shown != finding.summary
    assert not re.search(r"\{\w*\}", shown), shown
    assert re.search(r"[\u4e00-\u9fff]", shown), shown
    assert english_words(shown, finding.evidence) == set(), shown


def test_names_and_numbers_from_the_evidence_appear_verbatim():
    finding = found("port refused")
    shown = findings.summary(finding.check, finding.severity, finding.evidence, "zh-TW")
    assert shown == "無法連線到 KMS 主機 kms01.corp.test:1700"
    count = found("count low, workstation")
    assert findings.summary(count.check, count.severity, count.evidence, "zh-TW") == (
        "KMS 主機 kms01.corp.test 的計數為 12；這部工作站需要 25"
    )
    ending = found("grace ending")
    assert findings.summary(ending.check, ending.severity, ending.evidence, "zh-TW", words=ZH_WORDS) == (
        "授權狀態為「初始寬限期」，寬限期將於 3.1 天後結束"
    )


def test_host_supplied_text_is_inserted_never_read_as_a_template():
    evidence = {"kms_host": "{port}<b>x</b>", "port": 1688, "source": "pinned", "address": None, "error": "{0}"}
    shown = findings.summary("kms_port", Severity.FAIL, evidence, "zh-TW")
    assert shown == "無法連線到 KMS 主機 {port}<b>x</b>:1688"
    assert findings.summary("kms_port", Severity.FAIL, evidence, "en") == (
        "Cannot connect to KMS host {port}<b>x</b>:1688 ({0})"
    )


@pytest.mark.parametrize(
    ("check", "severity", "evidence"),
    [
        ("kms_count", Severity.FAIL, {}),
        ("kms_count", Severity.FAIL, None),
        ("kms_count", Severity.FAIL, {"kms_host": "kms02", "count": 12, "required": 25}),  # older evidence keys
        ("kms_count", Severity.FAIL, {"kms_host": "kms02", "current_count": 12, "required": 7}),
        ("clock_skew", Severity.FAIL, {"skew_seconds": "a lot"}),
        ("kms_host", Severity.FAIL, {"kms_host": "kms01", "kms_host_record": "kms01", "verdict": "haunted"}),
        ("event_log", Severity.INFO, {"anything": 1}),
    ],
)
def test_rows_whose_evidence_fits_no_template_show_the_stored_summary(check, severity, evidence):
    assert findings.summary(check, severity, evidence, "zh-TW") is None
    assert findings.in_words(check, severity, evidence, "as stored", "zh-TW") == "as stored"


def test_every_evidence_key_the_checks_write_has_words_in_both_languages():
    keys = {key for finding in CASES.values() if finding is not None for key in finding.evidence}
    for lang in ("en", "zh-TW"):
        assert keys <= set(findings.EVIDENCE_LABELS[lang]), lang
    for key in keys:
        label = findings.evidence_label(key, "zh-TW")
        assert re.search(r"[\u4e00-\u9fff]", label) or label in KEPT_WORDS, key
        assert not set(re.findall(r"[A-Za-z]{2,}", label)) - KEPT_WORDS - {"UTC", "ID"}, label


def test_evidence_values_are_verbatim_except_the_collectors_own_words():
    pairs = dict(findings.evidence_pairs(found("port refused").evidence, "zh-TW"))
    assert pairs == {"KMS 主機": "kms01.corp.test", "連接埠": "1700", "取得方式": "指定（/skms）", "位址": "10.0.0.5",
                     "錯誤": "connection refused"}  # fmt: skip
    traced_ = dict(findings.evidence_pairs(found("kms host not activated").evidence, "zh-TW", words=ZH_WORDS))
    assert traced_["判定"] == "尚未啟用" and traced_["授權狀態"] == "通知模式"
    assert traced_["作業系統"] == "Microsoft Windows Server 2022 Standard"
    assert dict(findings.evidence_pairs({"mystery": None, "kms_host": "<i>x</i>"}, "en")) == {
        "mystery": "-", "KMS host": "<i>x</i>"
    }  # fmt: skip
