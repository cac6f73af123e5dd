"""Diagnosis findings in words, per language: the summary of a finding and the labels of its evidence.

The collector stores each finding with an English summary (``collectors.diagnose``); the CLI, the CSV and the
logs read that text, and it stays as written. A page in another language renders the summary here from the
finding's ``check``, ``severity`` and ``evidence``, with one template per check and outcome: nothing is
translated at run time. ``outcome`` names the template a finding takes; ``summary`` fills it, or gives None
when the evidence lacks what the template needs (rows written before the evidence held those keys), and
``in_words`` then falls back to the stored summary. The English templates reproduce the collector's
summaries word for word, so a change there that the templates miss shows as a difference in the tests.

Evidence values that came from a host or a probe (names, addresses, captions, error texts) are inserted
verbatim and never read as a template; only the collector's own vocabulary (verdicts, how a KMS host was
found, KMS roles) is put into words here. License statuses are put into words by the caller's ``words``,
because their words belong to the layer that owns host states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from knowledge.codes import normalise_language
from knowledge.kms import required_count

Words = Callable[[str], str]
Evidence = Mapping[str, object]

KMS_HOST_RECORD = "kms_host_record"  # evidence key: the inventory name of the KMS host a failure was traced to
NOT_PROBED = "not probed"  # how a probe that was not made (time ran out, run's cap reached) starts its error

# Every outcome a check can have, as the collector words it (en) and in Traditional Chinese.
TEMPLATES: Mapping[str, Mapping[str, str]] = {
    "clock_skew.fail": {
        "en": "Host clock differs from the collector's by {hours} h (limit {limit} h)",
        "zh-TW": "主機時鐘與收集器相差 {hours} 小時（上限 {limit} 小時）",
    },
    "clock_skew.ok": {
        "en": "Clock within {seconds} s of the collector",
        "zh-TW": "主機時鐘與收集器相差 {seconds} 秒以內",
    },
    "dns_srv.found": {
        "en": "{name} -> {records}",
        "zh-TW": "已找到 KMS SRV 紀錄：{name} -> {records}",
    },
    "dns_srv.not_probed": {
        "en": "{name}: {error}",
        "zh-TW": "未查詢 {name}：這部主機的探測時間已用完，或本次輪詢的探測數量已達上限；這不代表失敗",
    },
    "dns_srv.missing": {
        "en": "No KMS SRV record: {name} ({error})",
        "zh-TW": "找不到 KMS SRV 紀錄：{name}",
    },
    "dns_srv.missing_pinned": {
        "en": "No KMS SRV record: {name} ({error}); not a cause here: pinned to a KMS host",
        "zh-TW": "找不到 KMS SRV 紀錄：{name}；這部主機已指定 KMS 主機，因此不是問題的原因",
    },
    "dns_srv.missing_licensed": {
        "en": "No KMS SRV record: {name} ({error}); not a cause here: licensed without a DNS error",
        "zh-TW": "找不到 KMS SRV 紀錄：{name}；這部主機已授權且沒有 DNS 錯誤，因此不是問題的原因",
    },
    "kms_port.ok": {
        "en": "{kms_host}:{port} accepts connections",
        "zh-TW": "{kms_host}:{port} 可以連線",
    },
    "kms_port.not_probed": {
        "en": "{kms_host}:{port} {error}",
        "zh-TW": "未檢查 {kms_host}:{port}：這部主機的探測時間已用完，或本次輪詢的探測數量已達上限；這不代表失敗",
    },
    "kms_port.fail": {
        "en": "Cannot connect to KMS host {kms_host}:{port} ({error})",
        "zh-TW": "無法連線到 KMS 主機 {kms_host}:{port}",
    },
    "grace_expiry.notification": {
        "en": "Windows is in Notification mode (grace period over)",
        "zh-TW": "Windows 已進入通知模式（寬限期已結束）",
    },
    "grace_expiry.ending": {
        "en": "{status} grace period ends in {days} days",
        "zh-TW": "授權狀態為「{status}」，寬限期將於 {days} 天後結束",
    },
    "grace_expiry.left": {
        "en": "{status}: {days} days of grace left",
        "zh-TW": "授權狀態為「{status}」，寬限期還剩 {days} 天",
    },
    "kms_count.fail": {
        "en": "KMS host {kms_host} has count {count}; this {kind} needs {required}",
        "zh-TW": "KMS 主機 {kms_host} 的計數為 {count}；這部{kind}需要 {required}",
    },
    "kms_count.ok": {
        "en": "KMS host {kms_host} count {count} >= {required}",
        "zh-TW": "KMS 主機 {kms_host} 的計數 {count} 已達所需的 {required}",
    },
    "kms_count.unknown_fail": {
        "en": "KMS host {kms_host} has count {count}; any client needs at least {servers}",
        "zh-TW": "KMS 主機 {kms_host} 的計數為 {count}；任何用戶端都至少需要 {servers}",
    },
    "kms_count.unknown_servers_only": {
        "en": "KMS host {kms_host} count {count} is enough for servers ({servers}), not for workstations "
        "({workstations}); this host's product type could not be read",
        "zh-TW": "KMS 主機 {kms_host} 的計數 {count} 足以啟用伺服器（{servers}），但不足以啟用工作站"
        "（{workstations}）；無法讀取這部主機的產品類型",
    },
    "kms_count.unknown_ok": {
        "en": "KMS host {kms_host} count {count} >= {workstations}",
        "zh-TW": "KMS 主機 {kms_host} 的計數 {count} 已達 {workstations}",
    },
    "kms_host.not_polled": {
        "en": "KMS host {kms_host} is not a polled host: its own state is unknown",
        "zh-TW": "KMS 主機 {kms_host} 不在輪詢的主機之中，無法得知它本身的狀態",
    },
    "kms_host.unreachable": {
        "en": "KMS host {name} could not be polled",
        "zh-TW": "KMS 主機 {name} 無法輪詢；原因請見該主機的頁面",
    },
    "kms_host.office_only": {
        "en": "{name} is a KMS host for Office only, not a Windows KMS host; this client is pointed at it",
        "zh-TW": "{name} 只是 Office 的 KMS 主機，不是 Windows 的 KMS 主機；這部用戶端卻指向它",
    },
    "kms_host.other_kms": {
        "en": "{name} is a KMS host, not a Windows KMS host; this client is pointed at it",
        "zh-TW": "{name} 是其他產品的 KMS 主機，不是 Windows 的 KMS 主機；這部用戶端卻指向它",
    },
    "kms_host.not_kms": {
        "en": "{name} is not a KMS host; this client is pointed at it",
        "zh-TW": "{name} 不是 KMS 主機；這部用戶端卻指向它",
    },
    "kms_host.not_activated": {
        "en": "KMS host {name} is not activated itself ({status})",
        "zh-TW": "KMS 主機 {name} 本身尚未啟用（{status}）",
    },
    "kms_host.too_old": {
        "en": "KMS host {name} on {os} cannot activate this client's Windows version",
        "zh-TW": "KMS 主機 {name}（{os}）的版本太舊，無法啟用這部用戶端的 Windows 版本",
    },
    "kms_host.ok": {
        "en": "KMS host {name}: an activated Windows KMS host",
        "zh-TW": "KMS 主機 {name}：已啟用的 Windows KMS 主機",
    },
    "kms_host.ok_count": {
        "en": "KMS host {name}: an activated Windows KMS host, count {count}",
        "zh-TW": "KMS 主機 {name}：已啟用的 Windows KMS 主機，計數 {count}",
    },
}

ABRIDGED = frozenset({"kms_host.unreachable", "kms_host.too_old"})
"""Outcomes whose stored summary says more than the evidence keeps (why the KMS host could not be polled, the
client's Windows version): their templates say what the evidence holds and point to where the rest is shown."""

CLIENT_KINDS: Mapping[str, Mapping[str, str]] = {
    "en": {"server": "server", "workstation": "workstation"},
    "zh-TW": {"server": "伺服器", "workstation": "工作站"},
}

EVIDENCE_LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "host_time_utc": "host time (UTC)",
        "collector_time_utc": "collector time (UTC)",
        "skew_seconds": "skew (s)",
        "limit_seconds": "limit (s)",
        "name": "SRV name",
        "records": "SRV records",
        "error": "error",
        "pinned_kms_host": "pinned KMS host",
        "kms_host": "KMS host",
        "port": "port",
        "source": "found by",
        "address": "address",
        "product_id": "product ID",
        "license_status": "license status",
        "grace_minutes": "grace left (min)",
        "warning_days": "warning window (days)",
        "current_count": "current count",
        "required": "required count",
        "product_type": "product type",
        KMS_HOST_RECORD: "KMS host in the inventory",
        "kms_role": "KMS role",
        "os": "OS",
        "verdict": "verdict",
    },
    "zh-TW": {
        "host_time_utc": "主機時間 (UTC)",
        "collector_time_utc": "收集器時間 (UTC)",
        "skew_seconds": "偏差（秒）",
        "limit_seconds": "上限（秒）",
        "name": "SRV 名稱",
        "records": "SRV 紀錄",
        "error": "錯誤",
        "pinned_kms_host": "指定的 KMS 主機",
        "kms_host": "KMS 主機",
        "port": "連接埠",
        "source": "取得方式",
        "address": "位址",
        "product_id": "產品 ID",
        "license_status": "授權狀態",
        "grace_minutes": "剩餘寬限（分鐘）",
        "warning_days": "警告期間（天）",
        "current_count": "目前計數",
        "required": "所需計數",
        "product_type": "產品類型",
        KMS_HOST_RECORD: "清單中的 KMS 主機",
        "kms_role": "KMS 角色",
        "os": "作業系統",
        "verdict": "判定",
    },
}

# The collector's own vocabulary among evidence values: key -> language -> value -> words.
VALUE_WORDS: Mapping[str, Mapping[str, Mapping[str, str]]] = {
    "verdict": {
        "en": {"": "-", "unreachable": "could not be polled", "not_kms_host": "not a Windows KMS host",
               "not_activated": "not activated", "too_old": "too old for this client"},
        "zh-TW": {"": "-", "unreachable": "無法輪詢", "not_kms_host": "不是 Windows 的 KMS 主機",
                  "not_activated": "尚未啟用", "too_old": "版本太舊"},
    },
    "source": {
        "en": {"pinned": "pinned (/skms)", "discovered": "discovered", "srv": "DNS SRV record"},
        "zh-TW": {"pinned": "指定（/skms）", "discovered": "自動探索", "srv": "DNS SRV 紀錄"},
    },
    "kms_role": {
        "en": {"windows": "Windows", "office": "Office only", "other": "another product only"},
        "zh-TW": {"windows": "Windows", "office": "僅 Office", "other": "僅其他產品"},
    },
}  # fmt: skip
STATUS_KEYS = frozenset({"license_status"})  # evidence keys whose values are license statuses


class _Unfit(Exception):
    """The evidence does not hold what the outcome's template needs."""


def _same(text: str) -> str:
    return text


def _has(evidence: Evidence, key: str) -> object:
    if key not in evidence:
        raise _Unfit(key)
    return evidence[key]


def _name(evidence: Evidence, key: str) -> str:
    value = _has(evidence, key)
    if not isinstance(value, str) or not value:
        raise _Unfit(key)
    return value


def _number(evidence: Evidence, key: str) -> float:
    value = _has(evidence, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Unfit(key)
    return float(value)


def _count(evidence: Evidence, key: str) -> int:
    return int(_number(evidence, key))


def _verbatim(evidence: Evidence, key: str) -> str:
    return str(_has(evidence, key))


Fields = dict[str, str]
Outcome = tuple[str, Fields]


def _clock_skew(severity: str, evidence: Evidence) -> Outcome:
    skew = _number(evidence, "skew_seconds")
    if severity == "fail":
        limit = _number(evidence, "limit_seconds")
        return "clock_skew.fail", {"hours": f"{abs(skew) / 3600:.1f}", "limit": f"{limit / 3600:g}"}
    return "clock_skew.ok", {"seconds": f"{abs(skew):.0f}"}


def _dns_srv(severity: str, evidence: Evidence) -> Outcome:
    name = _name(evidence, "name")
    if evidence.get("records"):
        return "dns_srv.found", {"name": name, "records": _verbatim(evidence, "records")}
    fields = {"name": name, "error": _verbatim(evidence, "error")}
    if severity == "fail":
        return "dns_srv.missing", fields
    if fields["error"].startswith(NOT_PROBED):
        return "dns_srv.not_probed", fields
    pinned = str(_has(evidence, "pinned_kms_host") or "").strip()
    return ("dns_srv.missing_pinned" if pinned else "dns_srv.missing_licensed"), fields


def _kms_port(severity: str, evidence: Evidence) -> Outcome:
    fields = {"kms_host": _name(evidence, "kms_host"), "port": str(_count(evidence, "port"))}
    if severity == "ok":
        return "kms_port.ok", fields
    fields["error"] = _verbatim(evidence, "error")
    return ("kms_port.fail" if severity == "fail" else "kms_port.not_probed"), fields


def _grace_expiry(severity: str, evidence: Evidence) -> Outcome:
    if severity == "fail":
        return "grace_expiry.notification", {}
    status = _name(evidence, "license_status")
    if severity == "warn":
        return "grace_expiry.ending", {"status": status, "days": f"{_number(evidence, 'grace_minutes') / 1440:.1f}"}
    days = 0.0 if _has(evidence, "grace_minutes") is None else _number(evidence, "grace_minutes") / 1440
    return "grace_expiry.left", {"status": status, "days": f"{days:.0f}"}


def _kms_count(severity: str, evidence: Evidence) -> Outcome:
    fields = {"kms_host": _name(evidence, "kms_host"), "count": str(_count(evidence, "current_count"))}
    servers, workstations = required_count(True), required_count(False)
    if _has(evidence, "required") is None:  # the client's product type could not be read
        fields |= {"servers": str(servers), "workstations": str(workstations)}
        shape = {"fail": "unknown_fail", "info": "unknown_servers_only"}.get(severity, "unknown_ok")
        return f"kms_count.{shape}", fields
    required = _count(evidence, "required")
    if required not in (servers, workstations):
        raise _Unfit("required")
    fields |= {"required": str(required), "kind": "server" if required == servers else "workstation"}
    return ("kms_count.fail" if severity == "fail" else "kms_count.ok"), fields


def _kms_host(severity: str, evidence: Evidence) -> Outcome:
    if KMS_HOST_RECORD not in evidence:
        return "kms_host.not_polled", {"kms_host": _name(evidence, "kms_host")}
    fields = {"name": _name(evidence, KMS_HOST_RECORD)}
    verdict = _verbatim(evidence, "verdict")
    if verdict == "unreachable":
        return "kms_host.unreachable", fields
    if verdict == "not_kms_host":
        role = evidence.get("kms_role")
        shape = "office_only" if role == "office" else "other_kms" if role else "not_kms"
        return f"kms_host.{shape}", fields
    if verdict == "not_activated":
        return "kms_host.not_activated", fields | {"status": _verbatim(evidence, "license_status")}
    if verdict == "too_old":
        return "kms_host.too_old", fields | {"os": _name(evidence, "os")}
    if verdict or severity != "ok":
        raise _Unfit("verdict")
    if evidence.get("current_count") is None:
        return "kms_host.ok", fields
    return "kms_host.ok_count", fields | {"count": str(_count(evidence, "current_count"))}


_OUTCOMES: Mapping[str, Callable[[str, Evidence], Outcome]] = {
    "clock_skew": _clock_skew,
    "dns_srv": _dns_srv,
    "kms_port": _kms_port,
    "grace_expiry": _grace_expiry,
    "kms_count": _kms_count,
    "kms_host": _kms_host,
}


def _outcome(check: str, severity: object, evidence: Evidence | None) -> Outcome | None:
    choose = _OUTCOMES.get(check)
    if choose is None or not evidence:
        return None
    try:
        return choose(str(severity), evidence)
    except _Unfit:
        return None


def outcome(check: str, severity: object, evidence: Evidence | None) -> str | None:
    """The template a finding takes (a key of ``TEMPLATES``), or None when its evidence cannot fill one."""
    found = _outcome(check, severity, evidence)
    return found[0] if found else None


def summary(
    check: str, severity: object, evidence: Evidence | None, lang: str = "en", *, words: Words | None = None
) -> str | None:
    """The finding's summary in ``lang`` from its evidence; None when the evidence cannot fill a template.

    ``words`` puts a license status into words in ``lang`` (default: the status as stored).
    """
    found = _outcome(check, severity, evidence)
    if found is None:
        return None
    key, fields = found
    lang = normalise_language(lang)
    say = words or _same
    if "status" in fields:
        fields = fields | {"status": say(fields["status"])}
    if "kind" in fields:
        fields = fields | {"kind": CLIENT_KINDS[lang][fields["kind"]]}
    try:
        return TEMPLATES[key][lang].format_map(fields)
    except (KeyError, IndexError, ValueError):
        return None


def in_words(
    check: str,
    severity: object,
    evidence: Evidence | None,
    stored: str,
    lang: str = "en",
    *,
    words: Words | None = None,
) -> str:
    """What a page in ``lang`` shows as a finding's summary.

    English shows the stored summary, which the English templates reproduce and which says more where the
    evidence keeps less (``ABRIDGED``); any other language shows its template, or the stored summary when the
    evidence cannot fill one.
    """
    if normalise_language(lang) == "en" and stored:
        return stored
    return summary(check, severity, evidence, lang, words=words) or stored


def evidence_label(key: str, lang: str = "en") -> str:
    """The words for an evidence key in ``lang``; an unknown key is shown as it is."""
    return EVIDENCE_LABELS[normalise_language(lang)].get(key, key)


def evidence_value(key: str, value: object, lang: str = "en", *, words: Words | None = None) -> str:
    """An evidence value as shown: the collector's vocabulary in words, everything else verbatim."""
    if value is None:
        return "-"
    text = str(value)
    if key in STATUS_KEYS and words is not None:
        return words(text)
    return VALUE_WORDS.get(key, {}).get(normalise_language(lang), {}).get(text, text)


def evidence_pairs(evidence: Evidence | None, lang: str = "en", *, words: Words | None = None) -> list[tuple[str, str]]:
    """``(label, value)`` for each evidence entry, in the evidence's order."""
    return [(evidence_label(k, lang), evidence_value(k, v, lang, words=words)) for k, v in (evidence or {}).items()]
