"""The dashboard's words in English and Traditional Chinese, and the current language.

English text is the key: ``t("Hosts")`` returns it unchanged in English and looks it up in ``ZH_TW``
otherwise, so a missing translation shows English rather than nothing. The language lives in session
state (key ``lang``) and in the URL (``?lang=zh-TW``); ``ui.context`` keeps the two in step. The knowledge
base carries its own translations; this module owns only the interface's words.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from knowledge.codes import normalise_language
from models.hostfacts import STATE_WORDS

DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES: Mapping[str, str] = {"en": "English", "zh-TW": "繁體中文"}
LANG_KEY = "lang"

ZH_TW: Mapping[str, str] = {
    # navigation and frame
    "Activation Monitor": "啟用狀態監控",
    "Fleet": "機群",
    "Reference": "參考",
    "Overview": "總覽",
    "KMS hosts": "KMS 主機",
    "Hosts": "主機",
    "Host detail": "主機詳細資料",
    "Error codes": "錯誤碼",
    "Poll runs": "輪詢紀錄",
    "First run": "開始使用",
    "Language": "語言",
    "Data refreshes every {s} seconds.": "資料每 {s} 秒自動更新。",
    "The database cannot be read: {reason}": "無法讀取資料庫：{reason}",
    # sign-in
    "Sign in": "登入",
    "Sign out": "登出",
    "Password": "密碼",
    "Wrong password.": "密碼錯誤。",
    "Too many wrong passwords. Try again after {time}.": "密碼錯誤次數過多，請於 {time} 之後再試。",
    "The sign-in could not be checked. Try again.": "目前無法確認登入，請再試一次。",
    "The sign-in form expired. Sign in again.": "登入表單已逾時，請重新登入。",
    "Times are UTC.": "時間均為 UTC。",
    "tags": "標籤",
    "Sign in to see the fleet.": "請先登入才能檢視機群。",
    "Signed in as {who}": "已登入：{who}",
    "This account is not allowed to use the dashboard.": "此帳號不得使用本儀表板。",
    # overview
    "Hosts known": "已知主機",
    "Activated": "已啟用",
    "In grace": "寬限期中",
    "Notification / unlicensed": "通知模式／未授權",
    "Failing": "發生錯誤",
    "Unreachable": "無法連線",
    "Stale since {h} h": "超過 {h} 小時未更新",
    "Change since the previous day": "與前一天相比的變化",
    "Failures by error code": "依錯誤碼統計的失敗",
    "Click a bar to list those hosts.": "點選長條即可列出這些主機。",
    "{n} more codes are listed on the Error codes page.": "另有 {n} 個錯誤碼列於「錯誤碼」頁面。",
    "Failures by activation type": "依啟用類型統計的失敗",
    "Activated vs not activated": "已啟用與未啟用",
    "Grace periods expiring within {d} days": "{d} 天內到期的寬限期",
    "No grace period ends within {d} days.": "{d} 天內沒有到期的寬限期。",
    "Last completed poll run": "最近完成的輪詢",
    "No poll run has completed yet.": "尚未有完成的輪詢。",
    "{ok} of {total} hosts read in {s:.0f} s": "{s:.0f} 秒內讀取 {ok}／{total} 部主機",
    "No failures.": "沒有失敗。",
    "No history yet: the trend fills in as daily rollups accumulate.": "尚無歷史資料：每日彙總累積後即會顯示趨勢。",
    # charts
    "hosts": "主機數",
    "day": "日期",
    "error code": "錯誤碼",
    "activation type": "啟用類型",
    "license status": "授權狀態",
    "activated": "已啟用",
    "not activated": "未啟用",
    "current count": "目前計數",
    "observed": "觀察時間",
    "servers (5)": "伺服器 (5)",
    "clients (25)": "用戶端 (25)",
    "run": "輪詢",
    "succeeded": "成功",
    # date formats of chart axes and hover labels (d3 / strftime directives; never a month name)
    "DATE_FORMAT": "%Y/%m/%d",
    "DATE_TIME_FORMAT": "%Y/%m/%d %H:%M",
    # KMS hosts
    "No KMS host has been polled yet.": "尚未輪詢到任何 KMS 主機。",
    "Count against the activation thresholds": "計數與啟用門檻",
    "A KMS host activates servers from a count of 5 and client PCs from 25; the count stops at 50.": (
        "KMS 主機的計數達 5 即可啟用伺服器，達 25 才能啟用用戶端電腦；計數上限為 50。"
    ),
    "serves neither": "兩者皆無法啟用",
    "servers only": "僅能啟用伺服器",
    "servers and clients": "可啟用伺服器與用戶端",
    "State: the first that applies of {states}; else {healthy} (or {office}).": (
        "狀態：依序取第一個符合者——{states}；皆不符合則為{healthy}（或{office}）。"
    ),
    "failing / clients": "失敗／用戶端",
    "LIST_SEPARATOR": "、",
    "SRV published": "已發佈 SRV",
    "reasons": "原因",
    "failing clients (any cause)": "失敗的用戶端（任何原因）",
    "KMS_STATE_HELP": (
        "依序取第一個符合者：無法連線（本身輪詢失敗）、未接聽（KMS 連接埠未回應）、本身未啟用、"
        "用戶端失敗（其用戶端以與 KMS 主機相關的錯誤碼失敗）、未達門檻（計數未達 25）；其餘為正常，"
        "僅為 Office 的 KMS 主機則為「僅 Office」。"
    ),
    "KMS_COUNT_HELP": "目前計數與須達到的門檻：伺服器（及 Office）為 5，用戶端電腦為 25。",
    "KMS_CLIENTS_HELP": (
        "使用此 KMS 主機、且以與 KMS 主機相關的錯誤碼（例如 0xC004F074、0xC004F038、0x800706BA）失敗的用戶端數"
        "／使用此主機的用戶端總數。"
    ),
    "Count over time": "計數變化",
    "KMS host": "KMS 主機",
    "No count history for this host yet.": "此主機尚無計數紀錄。",
    # table columns
    "host": "主機",
    "computer name": "電腦名稱",
    "domain": "網域",
    "site": "站台",
    "OS": "作業系統",
    "product type": "產品類型",
    "error": "錯誤",
    "error title": "錯誤說明",
    "grace days left": "剩餘寬限天數",
    "last seen (UTC)": "最後讀取 (UTC)",
    "poll failure": "輪詢失敗",
    "resolution": "解決方式",
    "details": "詳細資料",
    "count": "計數",
    "state": "狀態",
    "requests": "要求數",
    "failed requests": "失敗要求",
    "licensed requests": "已授權要求",
    "non-genuine requests": "非正版要求",
    "port": "連接埠",
    "DNS publishing": "DNS 發佈",
    "listening": "接聽中",
    "clients": "用戶端",
    "failing clients": "失敗的用戶端",
    "FQDN": "完整網域名稱",
    "started": "開始",
    "finished": "結束",
    "duration (s)": "耗時（秒）",
    "collector": "收集器",
    "shard": "分片",
    "status": "狀態",
    "hosts tried": "嘗試主機數",
    "grace ends (days)": "寬限期剩餘（天）",
    "yes": "是",
    "no": "否",
    "open": "開啟",
    "how to fix": "修正方法",
    "How to fix": "修正方法",
    "view": "檢視",
    # hosts page
    "Error code": "錯誤碼",
    "Activation type": "啟用類型",
    "License status": "授權狀態",
    "Site": "站台",
    "Product type": "產品類型",
    "Poll failure": "輪詢失敗類別",
    "Not read for at least (hours)": "至少幾小時未成功讀取",
    "Search host name": "搜尋主機名稱",
    "Only unactivated hosts": "僅顯示未啟用的主機",
    "Page": "頁",
    "{n} hosts": "{n} 部主機",
    "Page {page} of {pages}": "第 {page} 頁，共 {pages} 頁",
    "Download CSV of unactivated hosts": "下載未啟用主機 CSV",
    "The CSV lists the unactivated hosts that match these filters.": "CSV 會列出符合這些篩選條件的未啟用主機。",
    "Ignored filter values that are not allowed:": "已忽略不允許的篩選值：",
    "No host matches these filters.": "沒有符合篩選條件的主機。",
    "Clear filters": "清除篩選",
    # host detail
    "Choose a host": "選擇主機",
    "Host not found.": "找不到主機。",
    "Current state": "目前狀態",
    "Diagnosis": "診斷",
    "Status timeline": "狀態時間軸",
    "Resolution steps": "解決步驟",
    "check": "檢查項目",
    "severity": "嚴重性",
    "summary": "摘要",
    "evidence": "證據",
    "changed": "變更時間",
    "No diagnosis recorded.": "沒有診斷紀錄。",
    "No status changes recorded.": "沒有狀態變更紀錄。",
    "Last poll failed ({cls})": "最近一次輪詢失敗（{cls}）",
    "Last successful poll": "最近成功輪詢",
    "Last attempt": "最近嘗試",
    "never": "從未",
    "Products": "產品",
    "product": "產品",
    "channel": "通道",
    "partial key": "部分金鑰",
    "Open the knowledge-base entry": "開啟知識庫條目",
    "Clock skew (s)": "時鐘偏差（秒）",
    "Signed in with": "登入方式",
    "The last poll could not read {classes}; the fields they give are missing, not guessed.": (
        "最近一次輪詢無法讀取 {classes}；這些類別提供的欄位從缺，不會以推測值填補。"
    ),
    # error codes
    "Knowledge base": "知識庫",
    "Find a code": "尋找錯誤碼",
    "Message": "訊息",
    "Applies to": "適用於",
    "Causes": "原因",
    "Commands": "命令",
    "Microsoft article": "Microsoft 文章",
    "Hosts with this code now: {n}": "目前有此錯誤碼的主機：{n} 部",
    "List these hosts": "列出這些主機",
    "Unknown code {code}: it is not in the knowledge base.": "未知的錯誤碼 {code}：知識庫中沒有此代碼。",
    "All codes": "所有錯誤碼",
    "code": "錯誤碼",
    "title": "標題",
    "hosts now": "目前主機數",
    # poll runs
    "No poll run recorded yet.": "尚無輪詢紀錄。",
    "Hosts read and failed per run": "每次輪詢的成功與失敗主機數",
    # the job queue, on the poll runs page
    "Job queue": "工作佇列",
    "QUEUE_HELP": (
        "由 `python -m collectors schedule` 排入佇列、`python -m collectors worker` 分批輪詢的輪詢："
        "每個站台一個佇列，每批主機由一個工作程序處理。"
    ),
    "Workers": "工作程序",
    "No worker has started yet.": "尚無工作程序啟動。",
    "worker": "工作程序",
    "queues": "佇列",
    "concurrency": "同時輪詢數",
    "seconds since heartbeat": "距上次心跳（秒）",
    "last heartbeat": "上次心跳",
    "stopped": "已停止",
    "batches done": "完成批次",
    "hosts polled": "已輪詢主機",
    "alive": "運作中",
    "silent": "無回應",
    "WORKER_STATE_HELP": (
        "運作中：按時送出心跳；無回應：超過停滯逾時仍未送出心跳（已被終止或與資料庫斷線），"
        "其批次會交由其他工作程序處理；已停止：已正常結束。"
    ),
    "Queue depth per site": "各站台佇列深度",
    "No batch is waiting in the queue.": "佇列中沒有等待的批次。",
    "queue": "佇列",
    "waiting": "等待中",
    "being polled": "輪詢中",
    "Batches of recent queued runs": "近期佇列輪詢的批次",
    "deadline": "截止時間",
    "progress": "進度",
    "batches": "批次",
    "hosts done": "已完成主機",
    "workers": "工作程序數",
    "queued": "排隊中",
    "done": "已完成",
    "failed": "失敗",
    "Hosts per worker": "各工作程序輪詢的主機",
    # first run
    "Welcome to Activation Monitor": "歡迎使用啟用狀態監控",
    "The database is empty: no host has been polled yet.": "資料庫是空的：尚未輪詢任何主機。",
    "Point the collector at an inventory": "將收集器指向主機清單",
    "Or try it with a demo fleet": "或使用示範機群試用",
    "Load the demo fleet": "載入示範機群",
    "Demo hosts": "示範主機數",
    "Loading the demo fleet…": "正在載入示範機群…",
    "The demo fleet is loaded.": "示範機群已載入。",
    "The demo loader is not available: {reason}": "無法使用示範載入程式：{reason}",
    "Loading the demo fleet failed: {reason}": "載入示範機群失敗：{reason}",
    # failure classes, in words
    "dns": "DNS 解析失敗",
    "refused": "連線被拒",
    "timeout": "逾時",
    "auth": "驗證失敗",
    "tls": "TLS 憑證錯誤",
    "protocol": "通訊協定錯誤",
    # vocabulary values shown as labels
    "KMS client": "KMS 用戶端",
    "Retail": "零售",
    "AD-based": "AD 型啟用",
    "unknown": "未知",
    "workstation": "工作站",
    "server": "伺服器",
    "dc": "網域控制站",
    "ok": "正常",
    "info": "資訊",
    "warn": "警告",
    "fail": "失敗",
    "running": "執行中",
    "complete": "已完成",
    "incomplete": "未完成",
    "kms_count": "KMS 計數",
    "clock_skew": "時鐘偏差",
    "dns_srv": "DNS SRV 紀錄",
    "kms_port": "KMS 連接埠",
    "grace_expiry": "寬限期到期",
    "kms_host": "KMS 主機狀態",
    # renewals
    "Include at-risk licensed hosts": "包含有風險的已授權主機",
    "AT_RISK_HELP": "已授權但續約一再失敗的 KMS 用戶端：有效期限一到就會掉出啟用狀態。",
    "UNACTIVATED_HELP": "「未啟用」指 Windows 不是已授權狀態的主機，以及上次輪詢無法連線的主機"
    "（其狀態可能已過時或從未讀取，CSV 的 poll_error 會標示 unreachable）；"
    "續約失敗的已授權主機只在開啟「包含有風險的已授權主機」時列入。",
    "More filters": "更多篩選條件",
    "set aside": "已擱置",
    "Results the database refused; the collector keeps them in its spool's set-aside folder.": (
        "資料庫拒收的結果；收集器將其保存在暫存區的 set-aside 資料夾中。"
    ),
    "just now": "剛剛",
    "{n} d ago": "{n} 天前",
    "{n} h ago": "{n} 小時前",
    "{n} min ago": "{n} 分鐘前",
    "Renewal failing": "續約失敗",
    "Licensed KMS clients whose renewals fail: they drop out of activation when their validity ends.": (
        "續約一再失敗的已授權 KMS 用戶端：有效期限一到就會掉出啟用狀態。"
    ),
    "Renewals are failing: Windows drops to Notification on {date} (in {days} days) unless one succeeds.": (
        "續約持續失敗：除非有一次成功，Windows 將於 {date}（{days} 天後）進入通知模式。"
    ),
    "KMS host for Office only": "僅為 Office 的 KMS 主機",
    "another product only": "僅為其他產品",
    "KMS host for": "KMS 主機服務對象",
    "KMS_CAP_HELP": "KMS 主機只記得最近 50 台電腦（只有伺服器時為 10 台），計數不會超過此上限。",
    "Open the KMS host": "開啟 KMS 主機",
    # alerts page
    "Alerts": "警示",
    "ALERTS_HELP": (
        "警示由 `python -m collectors alerts check` 依規則評估（主機啟用失敗、KMS 主機未達門檻、錯誤碼激增、"
        "收集器未回報等）；此頁顯示目前觸發中的警示、已解除的紀錄與已送出的通知。"
    ),
    "Firing now": "目前觸發中",
    "Nothing is firing.": "目前沒有觸發中的警示。",
    "The {n} most severe and newest are listed.": "僅列出最嚴重且最新的 {n} 筆。",
    "History": "歷史紀錄",
    "No alert has resolved yet.": "尚無已解除的警示。",
    "Messages sent": "已送出的通知",
    "No message has been sent yet.": "尚未送出任何通知。",
    "firing": "觸發",
    "repeat": "重複通知",
    "escalated": "嚴重程度升高",
    "resolved": "已解除",
    "storm": "大量彙總",
    "alert": "警示",
    "subject": "對象",
    "since (UTC)": "開始 (UTC)",
    "resolved (UTC)": "解除 (UTC)",
    "last seen firing (UTC)": "最後偵測到 (UTC)",
    "acknowledged": "已確認",
    "silenced until {time}": "靜音至 {time}",
    "facts": "事實",
    "acknowledged (by, UTC)": "確認（人員、UTC 時間）",
    "comment": "備註",
    "silenced until (UTC)": "靜音至 (UTC)",
    "silenced by": "靜音者",
    "silence comment": "靜音備註",
    "sent (UTC)": "送出 (UTC)",
    "kind": "類型",
    "target": "目標",
    "delivered": "已送達",
    "attempts": "嘗試次數",
    "Acknowledge or silence": "確認或靜音",
    "Alert": "警示",
    "Acknowledge": "確認",
    "Silence": "靜音",
    "Comment": "備註",
    "Silence for": "靜音時間",
    "1 hour": "1 小時",
    "4 hours": "4 小時",
    "1 day": "1 天",
    "1 week": "1 週",
    "until the date and time below": "直到下方的日期與時間",
    "Until (date)": "直到（日期）",
    "Until (time, {zone})": "直到（時間，{zone}）",
    "An acknowledged alert sends no more messages until it resolves.": "已確認的警示在解除前不再送出通知。",
    "A silenced alert sends no messages until the silence ends, its resolution included.": (
        "靜音中的警示在靜音結束前不送出任何通知，包括解除通知。"
    ),
    "Write a comment: it says why.": "請填寫備註，說明原因。",
    "A silence must end in the future.": "靜音的結束時間必須在未來。",
    "Alert #{id} acknowledged.": "警示 #{id} 已確認。",
    "Alert #{id} silenced until {until} UTC.": "警示 #{id} 已靜音至 {until} UTC。",
    "Alert #{id} no longer fires.": "警示 #{id} 已不再觸發。",
    "Alert #{id} no longer exists.": "警示 #{id} 已不存在。",
    "Sign-in is off: what you do here is recorded as “{who}”.": "未啟用登入：在此所做的操作會記錄為「{who}」。",
    "Recorded as:": "記錄為：",
    "dashboard (no sign-in)": "儀表板（未登入）",
    "dashboard (password sign-in)": "儀表板（密碼登入）",
}

# English words for values stored as codes (the key is the English text everywhere else).
EN: Mapping[str, str] = {
    "QUEUE_HELP": "Runs enqueued by `python -m collectors schedule` and polled in batches by `python -m collectors "
    "worker`: one queue per site, each batch of hosts taken by one worker.",
    "WORKER_STATE_HELP": "alive: sends its heartbeat on time; silent: no heartbeat for longer than the stall timeout "
    "(killed, or cut off from the database), its batches go to other workers; stopped: ended cleanly.",
    "UNACTIVATED_HELP": "Unactivated means every host whose Windows is not Licensed, and every host the last poll "
    "could not reach (its state may be out of date or was never read; the CSV's poll_error says unreachable). "
    "Licensed hosts whose renewals fail are added only with the at-risk switch.",
    "AT_RISK_HELP": "Licensed KMS clients whose renewals keep failing: they drop out of activation when their "
    "validity ends.",
    "kms_host": "KMS host state",
    "DATE_FORMAT": "%Y-%m-%d",
    "DATE_TIME_FORMAT": "%Y-%m-%d %H:%M",
    "KMS_CAP_HELP": "A KMS host remembers the 50 most recent machines (10 when only servers contact it); the count "
    "never exceeds that cap.",
    "LIST_SEPARATOR": ", ",
    "KMS_STATE_HELP": "The first that applies: unreachable (its own poll failed), not listening (its KMS port does not "
    "answer), not activated (itself), clients failing (its clients fail with a code that involves the KMS host), "
    "below threshold (count under 25); otherwise healthy, or Office only for a KMS host for Office only.",
    "KMS_COUNT_HELP": "The current count against the threshold it must reach: 5 for servers (and Office), 25 for "
    "client PCs.",
    "KMS_CLIENTS_HELP": "Clients that use this KMS host and fail with a code that involves the KMS host (such as "
    "0xC004F074, 0xC004F038, 0x800706BA) / all clients that use it.",
    "ALERTS_HELP": "Alerts come from rules that `python -m collectors alerts check` evaluates (hosts failing to "
    "activate, KMS hosts below their threshold, error code spikes, quiet collectors and more); this page shows what "
    "fires now, what resolved and the messages sent.",
}


def _with_states(table: Mapping[str, str], lang: str) -> Mapping[str, str]:
    """A table plus the words for host states, which ``models.hostfacts`` owns for every layer."""
    return {**table, **{state.value: words for state, words in STATE_WORDS[lang].items()}}


TABLES: Mapping[str, Mapping[str, str]] = {"en": _with_states(EN, "en"), "zh-TW": _with_states(ZH_TW, "zh-TW")}


def current_language() -> str:
    """The language of this session (set by ``ui.context.select_language``)."""
    return normalise_language(st.session_state.get(LANG_KEY))


def t(text: str, lang: str | None = None) -> str:
    """Translate an English interface string into ``lang`` (default: the session's language)."""
    table = TABLES.get(lang or current_language())
    return table.get(text, text) if table else text
