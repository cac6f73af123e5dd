"""Alerts in words, per language: each rule's title, what a finding says, and the frame of a message.

The alert rules (``alerting.rules``) name their text by key; the notifier and the dashboard's Alerts page read
it here, in English or Traditional Chinese. A template is filled with an alert's facts, which the caller has
already put into words where they need it (an error code's title, a license status). A fact a template needs
but the alert lacks shows as ``?``, so an alert written before a fact existed still reads. Values that came
from a host (names, domains) are inserted verbatim and never read as a template.
"""

from __future__ import annotations

from collections.abc import Mapping

from knowledge.codes import normalise_language

SEVERITIES = ("critical", "warning", "info")
KINDS = ("firing", "repeat", "escalated", "resolved", "storm")
# Each kind of message in words (what ``alert_notifications.kind`` holds).
KIND_WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "firing": "firing",
        "repeat": "repeat",
        "escalated": "escalated",
        "resolved": "resolved",
        "storm": "summary",
    },
    "zh-TW": {
        "firing": "觸發",
        "repeat": "重複通知",
        "escalated": "嚴重程度升高",
        "resolved": "已解除",
        "storm": "大量彙總",
    },
}
# Rules whose subject is a host, named as the inventory names it (the Host detail page's key).
HOST_RULES = frozenset(
    {
        "host_failing",
        "renewal_failing",
        "grace_ending",
        "kms_below_threshold",
        "kms_not_activated",
        "kms_unreachable",
        "kms_no_srv",
    }
)

RULE_TITLES: Mapping[str, Mapping[str, str]] = {
    "host_failing": {"en": "Host failing activation", "zh-TW": "主機啟用失敗"},
    "renewal_failing": {"en": "KMS renewals failing", "zh-TW": "KMS 續約失敗"},
    "grace_ending": {"en": "Grace period ending", "zh-TW": "寬限期即將結束"},
    "kms_below_threshold": {"en": "KMS host below its threshold", "zh-TW": "KMS 主機未達啟用門檻"},
    "kms_not_activated": {"en": "KMS host not activated", "zh-TW": "KMS 主機本身未啟用"},
    "kms_unreachable": {"en": "KMS host unreachable", "zh-TW": "KMS 主機無法連線"},
    "kms_no_srv": {"en": "KMS host not publishing its SRV record", "zh-TW": "KMS 主機未發佈 SRV 紀錄"},
    "srv_missing": {"en": "KMS SRV record missing", "zh-TW": "缺少 KMS SRV 紀錄"},
    "srv_dead": {"en": "KMS SRV record points at a dead host", "zh-TW": "KMS SRV 紀錄指向無回應的主機"},
    "collector_quiet": {"en": "Collector quiet", "zh-TW": "收集器停止回報"},
    "code_spike": {"en": "Error code spike", "zh-TW": "錯誤碼激增"},
}

SEVERITY_WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {"critical": "CRITICAL", "warning": "WARNING", "info": "INFO"},
    "zh-TW": {"critical": "嚴重", "warning": "警告", "info": "資訊"},
}

# What each rule found, one template per rule (the rule's ``text`` key) and language.
DETAILS: Mapping[str, Mapping[str, str]] = {
    "host_failing": {
        "en": "Activation fails ({error}). License status: {license_status}.",
        "zh-TW": "啟用失敗（{error}）。授權狀態：{license_status}。",
    },
    "renewal_failing": {
        "en": "Licensed, but its KMS renewals fail ({error}); its activation ends in {grace_days} days unless a "
        "renewal succeeds.",
        "zh-TW": "目前已授權，但 KMS 續約失敗（{error}）；除非續約成功，啟用將在 {grace_days} 天後失效。",
    },
    "grace_ending": {
        "en": "{license_status}: its grace period ends in {grace_days} days (warned from {warning_days} days).",
        "zh-TW": "{license_status}：寬限期將在 {grace_days} 天後結束（剩餘 {warning_days} 天內即提醒）。",
    },
    "kms_below_threshold": {
        "en": "Its count is {count}: {activates}.",
        "zh-TW": "目前計數為 {count}：{activates}。",
    },
    "kms_not_activated": {
        "en": "The KMS host itself is not activated ({license_status}): its clients fail with 0xC004F041.",
        "zh-TW": "KMS 主機本身未啟用（{license_status}）：其用戶端會出現錯誤 0xC004F041。",
    },
    "kms_unreachable": {
        "en": "The KMS host cannot be reached: {why}.",
        "zh-TW": "無法連線到 KMS 主機：{why}。",
    },
    "kms_no_srv": {
        "en": "It does not publish its _vlmcs._tcp SRV record: clients find it only when pointed at it by name "
        "(slmgr /skms).",
        "zh-TW": "此主機未發佈 _vlmcs._tcp SRV 紀錄：用戶端只有以名稱指定時（slmgr /skms）才找得到它。",
    },
    "srv_missing": {
        "en": "DNS has no {srv_name} record: {clients} KMS client(s) that find their KMS host through DNS cannot "
        "find one ({hurt} failing now).",
        "zh-TW": "DNS 中沒有 {srv_name} 紀錄：{clients} 台透過 DNS 尋找 KMS 主機的用戶端找不到主機"
        "（目前 {hurt} 台失敗）。",
    },
    "srv_dead": {
        "en": "{srv_name} points at {targets}, which does not answer on its KMS port.",
        "zh-TW": "{srv_name} 指向 {targets}，但該主機的 KMS 連接埠沒有回應。",
    },
    "collector_quiet": {
        "en": "No complete poll run since {last_complete} (expected every {interval}).",
        "zh-TW": "自 {last_complete} 起沒有完成任何輪詢（預期每 {interval} 一次）。",
    },
    "code_spike": {
        "en": "{hosts} hosts report {error_code} ({error_title}) now; its daily average over the last {days} day(s) "
        "was {baseline} (alert from {factor}x).",
        "zh-TW": "目前有 {hosts} 台主機回報 {error_code}（{error_title}）；過去 {days} 天的每日平均為 {baseline} 台"
        "（達 {factor} 倍即警示）。",
    },
}

# Words a detail inserts, chosen from the facts by the caller (``fact_words``).
FACT_WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "activates.servers": "it activates servers only; client PCs need {threshold}",
        "activates.nothing": "below {threshold}, it activates nothing",
        "activates.office": "below {threshold}, it activates no Office",
        "why.poll_failed": "its last poll failed ({failure})",
        "why.never_read": "the collector has never read it",
        "why.not_listening": "it does not listen on port {port}",
        "failure.dns": "its name does not resolve",
        "failure.refused": "connection refused",
        "failure.timeout": "no answer in time",
        "failure.auth": "sign-in refused",
        "failure.tls": "TLS certificate error",
        "failure.protocol": "protocol error",
        "error": "{code}: {title}",
        "no_code": "no error code reported",
        "never": "never",
        "hours": "{n} h",
        "minutes": "{n} min",
        "resolution": "Resolution: {url}",
    },
    "zh-TW": {
        "activates.servers": "僅能啟用伺服器，用戶端電腦需達 {threshold}",
        "activates.nothing": "未達 {threshold}，無法啟用任何電腦",
        "activates.office": "未達 {threshold}，無法啟用 Office",
        "why.poll_failed": "最近一次輪詢失敗（{failure}）",
        "why.never_read": "收集器從未讀取過這部主機",
        "why.not_listening": "未在連接埠 {port} 接聽",
        "failure.dns": "名稱無法解析",
        "failure.refused": "連線被拒",
        "failure.timeout": "逾時未回應",
        "failure.auth": "驗證失敗",
        "failure.tls": "TLS 憑證錯誤",
        "failure.protocol": "通訊協定錯誤",
        "error": "{code}：{title}",
        "no_code": "未回報錯誤碼",
        "never": "從未",
        "hours": "{n} 小時",
        "minutes": "{n} 分鐘",
        "resolution": "解決方式：{url}",
    },
}

# The frame of a message: its title per kind, and the lines around the detail.
FRAME: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title.firing": "[{severity}] {title}: {subject}",
        "title.repeat": "[{severity}, still firing] {title}: {subject}",
        "title.escalated": "[{severity}, escalated] {title}: {subject}",
        "title.resolved": "[RESOLVED] {title}: {subject}",
        "title.storm.firing": "[{severity}] {title}: {count} hosts",
        "title.storm.repeat": "[{severity}, still firing] {title}: {count} hosts",
        "title.storm.escalated": "[{severity}, escalated] {title}: {count} hosts",
        "title.storm.resolved": "[RESOLVED] {title}: {count} hosts",
        "since": "Firing since {first_seen} (UTC).",
        "resolved_at": "Resolved at {resolved_at} (UTC); it had fired since {first_seen}.",
        "alert_id": "Alert {id}: acknowledge with  python -m collectors alerts ack {id} --comment TEXT",
        "storm.firing": "{count} hosts started firing this rule in one evaluation. By error code:",
        "storm.repeat": "{count} hosts still fire this rule. By error code:",
        "storm.escalated": "{count} hosts fire this rule more severely than announced. By error code:",
        "storm.resolved": "{count} hosts no longer fire this rule. By error code:",
        "storm.code": "  {code} {code_title}: {hosts} host(s)",
        "storm.no_code": "  no error code: {hosts} host(s)",
        "storm.more_codes": "  and {n} more code(s)",
        "storm.examples": "For example: {hosts}",
    },
    "zh-TW": {
        "title.firing": "[{severity}] {title}：{subject}",
        "title.repeat": "[{severity}，仍在警示] {title}：{subject}",
        "title.escalated": "[{severity}，嚴重程度升高] {title}：{subject}",
        "title.resolved": "[已解除] {title}：{subject}",
        "title.storm.firing": "[{severity}] {title}：{count} 台主機",
        "title.storm.repeat": "[{severity}，仍在警示] {title}：{count} 台主機",
        "title.storm.escalated": "[{severity}，嚴重程度升高] {title}：{count} 台主機",
        "title.storm.resolved": "[已解除] {title}：{count} 台主機",
        "since": "自 {first_seen}（UTC）起發出警示。",
        "resolved_at": "已於 {resolved_at}（UTC）解除；警示自 {first_seen} 起持續。",
        "alert_id": "警示 {id}：確認請執行  python -m collectors alerts ack {id} --comment 說明",
        "storm.firing": "本次評估共有 {count} 台主機觸發此規則。依錯誤碼統計：",
        "storm.repeat": "仍有 {count} 台主機觸發此規則。依錯誤碼統計：",
        "storm.escalated": "{count} 台主機觸發此規則的嚴重程度已高於先前通知。依錯誤碼統計：",
        "storm.resolved": "已有 {count} 台主機不再觸發此規則。依錯誤碼統計：",
        "storm.code": "  {code} {code_title}：{hosts} 台",
        "storm.no_code": "  無錯誤碼：{hosts} 台",
        "storm.more_codes": "  另有 {n} 個錯誤碼",
        "storm.examples": "例如：{hosts}",
    },
}


class _Facts(dict[str, object]):
    """Template values; a missing one reads as ``?``."""

    def __missing__(self, key: str) -> str:
        return "?"


def fill(template: str, values: Mapping[str, object]) -> str:
    """``template`` filled from ``values``; a value's own braces are never read as a template."""
    return template.format_map(_Facts(values))


def rule_title(rule: str, lang: str = "en") -> str:
    """The rule's title in ``lang``; the rule's name for a rule this module does not know."""
    titles = RULE_TITLES.get(rule)
    return titles[normalise_language(lang)] if titles else rule


def severity_words(severity: str, lang: str = "en") -> str:
    return SEVERITY_WORDS[normalise_language(lang)].get(severity, severity.upper())


def kind_words(kind: str, lang: str = "en") -> str:
    """A kind of message in ``lang``; the kind itself for one this module does not know."""
    return KIND_WORDS[normalise_language(lang)].get(kind, kind)


def detail(key: str, values: Mapping[str, object], lang: str = "en") -> str:
    """What an alert of the rule with text ``key`` found, in ``lang`` ("" for an unknown key)."""
    templates = DETAILS.get(key)
    return fill(templates[normalise_language(lang)], values) if templates else ""


def fact_words(key: str, lang: str = "en", **values: object) -> str:
    """One of ``FACT_WORDS`` in ``lang``, filled from ``values``; ``key`` itself when there is none."""
    template = FACT_WORDS[normalise_language(lang)].get(key)
    return key if template is None else fill(template, values)


def frame(key: str, lang: str = "en", **values: object) -> str:
    """One of ``FRAME``'s lines in ``lang``, filled from ``values``."""
    return fill(FRAME[normalise_language(lang)][key], values)
