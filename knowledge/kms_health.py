"""One health state per KMS host, judged from every piece of evidence the monitor holds about it.

The count alone says what a KMS host *could* activate; whether it does depends as much on the rest:
the host must answer the collector, listen on its port, be activated itself, and its clients must not
be failing against it. ``judge`` takes that evidence (``KmsEvidence``, plain values, no database) and
returns the state and one reason per failing piece of evidence (``KmsVerdict``), in English or
Traditional Chinese.

The states, worst first; a host takes the first whose evidence fails:

1. ``unreachable``: its own last poll failed, or it was never read; what follows is as of its last read.
2. ``not_listening``: the collector's TCP check of its KMS port (1688 unless changed) failed.
3. ``not_activated``: its Windows is not Licensed, so it activates nobody (0xC004F041 on its clients).
   Judged for Windows KMS hosts only: an Office KMS host's own activation is not Windows'.
4. ``clients_failing``: clients that resolve to it fail with a code the knowledge base ties to the KMS
   host (its ``kms_host`` check: 0xC004F074, 0xC004F038, 0x800706BA ...). A client failing for a cause of
   its own (clock skew, access denied, an expired grace period) does not count against the host.
5. ``below_threshold``: its count is below what client PCs need (25), so it activates servers only or
   nothing; for an Office KMS host, below the 5 volume Office needs.
6. ``office_only``: nothing fails, and it is a KMS host for Office (or another product) only, not for
   Windows: Windows clients pointed at it fail.
7. ``healthy``: nothing fails; it activates servers and client PCs.

A host that publishes no SRV record keeps its state and gets a note: clients then find it only by the
name they are given (``slmgr /skms``), which is a choice, not a fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from knowledge.codes import codes_for_check, normalise_language
from knowledge.kms import KMS_CLIENT_THRESHOLD, KMS_DEFAULT_PORT, KMS_SERVER_THRESHOLD

WINDOWS = "windows"
OFFICE = "office"
_T = TypeVar("_T")
Value = str | int | tuple[tuple[str, int], ...]


class KmsHealth(StrEnum):
    """A KMS host's health, worst first (the order is the precedence)."""

    UNREACHABLE = "unreachable"
    NOT_LISTENING = "not_listening"
    NOT_ACTIVATED = "not_activated"
    CLIENTS_FAILING = "clients_failing"
    BELOW_THRESHOLD = "below_threshold"
    OFFICE_ONLY = "office_only"
    HEALTHY = "healthy"

    @property
    def rank(self) -> int:
        """0 for the worst state, 6 for ``healthy``."""
        return list(KmsHealth).index(self)

    def words(self, lang: str = "en") -> str:
        """The state in words for people, in ``lang`` (English for unsupported languages)."""
        return _table(_STATE_WORDS, lang)[self.value]


_STATE_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "unreachable": "unreachable",
        "not_listening": "not listening",
        "not_activated": "not activated",
        "clients_failing": "clients failing",
        "below_threshold": "below threshold",
        "office_only": "Office only",
        "healthy": "healthy",
    },
    "zh-TW": {
        "unreachable": "無法連線",
        "not_listening": "未接聽",
        "not_activated": "本身未啟用",
        "clients_failing": "用戶端失敗",
        "below_threshold": "未達門檻",
        "office_only": "僅 Office",
        "healthy": "正常",
    },
}


def client_failure_codes() -> tuple[str, ...]:
    """The codes that count against a client's KMS host: those whose diagnosis checks the KMS host."""
    return codes_for_check("kms_host")


def threshold(count: int | None, role: str | None = WINDOWS) -> int:
    """The threshold a count is read against: 5 for an Office KMS host and below 5, else 25."""
    if not serves_windows(role) or (count or 0) < KMS_SERVER_THRESHOLD:
        return KMS_SERVER_THRESHOLD
    return KMS_CLIENT_THRESHOLD


@dataclass(frozen=True, slots=True)
class KmsEvidence:
    """What the monitor knows about one KMS host; ``None`` means not known (not read, not probed)."""

    count: int | None = None  # its latest count
    role: str | None = WINDOWS  # the application it is a KMS host for: windows, office or other
    listening: bool | None = None  # the collector's TCP check of its KMS port
    port: int | None = None  # its KMS port (1688 unless changed)
    dns_publishing: bool | None = None  # it registers its SRV record
    activated: bool | None = None  # its Windows is Licensed
    license_status: str | None = None  # its Windows license status as people read it, for the reason
    read: bool = True  # a poll of it has succeeded at least once
    failure: str | None = None  # the failure class of its last poll; None when that poll succeeded
    clients: int = 0  # clients whose KMS name resolves to it
    failing_codes: tuple[tuple[str, int], ...] = ()  # (code, clients) failing with a code against it

    @property
    def failing_clients(self) -> int:
        return sum(n for _, n in self.failing_codes)


@dataclass(frozen=True, slots=True)
class Reason:
    """One piece of evidence that fails (``state`` is the state it leads to) or a note (``state`` None)."""

    state: KmsHealth | None
    key: str
    values: tuple[tuple[str, Value], ...] = ()

    def words(self, lang: str = "en") -> str:
        return _table(_REASONS, lang)[self.key].format(**{k: _shown(k, v, lang) for k, v in self.values})


@dataclass(frozen=True, slots=True)
class KmsVerdict:
    """A KMS host's state and why: failing evidence worst first, then notes."""

    state: KmsHealth
    found: tuple[Reason, ...]

    def reasons(self, lang: str = "en") -> tuple[str, ...]:
        return tuple(reason.words(lang) for reason in self.found)

    def summary(self, lang: str = "en") -> str:
        """The reasons on one line ("" for a host with nothing to say)."""
        return _table(_SEPARATOR, lang).join(self.reasons(lang))


def judge(evidence: KmsEvidence) -> KmsVerdict:
    """The state of a KMS host and the reasons for it."""
    e = evidence
    found: list[Reason] = []
    if e.failure is not None:
        found.append(Reason(KmsHealth.UNREACHABLE, "poll_failed", (("failure", e.failure),)))
    elif not e.read:
        found.append(Reason(KmsHealth.UNREACHABLE, "never_read"))
    if e.listening is False:
        found.append(Reason(KmsHealth.NOT_LISTENING, "not_listening", (("port", e.port or KMS_DEFAULT_PORT),)))
    windows = serves_windows(e.role)
    if windows and e.activated is False:
        found.append(Reason(KmsHealth.NOT_ACTIVATED, "not_activated", (("status", e.license_status or "?"),)))
    if e.failing_clients:
        codes = tuple(sorted(e.failing_codes, key=lambda pair: (-pair[1], pair[0])))
        values = (("failing", e.failing_clients), ("clients", max(e.clients, e.failing_clients)), ("codes", codes))
        found.append(Reason(KmsHealth.CLIENTS_FAILING, "clients_failing", values))
    count = _count_reason(e.count, windows)
    if count is not None:
        found.append(count)
    if not windows:
        found.append(Reason(None, "office_only" if e.role == OFFICE else "other_only"))
    if e.dns_publishing is False:
        found.append(Reason(None, "not_published"))
    failing = [reason.state for reason in found if reason.state is not None]
    state = min(failing, key=lambda s: s.rank) if failing else KmsHealth.HEALTHY if windows else KmsHealth.OFFICE_ONLY
    return KmsVerdict(state, tuple(sorted(found, key=lambda r: r.state.rank if r.state else len(KmsHealth))))


def serves_windows(role: str | None) -> bool:
    """True for a KMS host for Windows (and for one whose role was never read)."""
    return role in (None, WINDOWS)


def _count_reason(count: int | None, windows: bool) -> Reason | None:
    if count is None:
        return None
    values: tuple[tuple[str, Value], ...] = (
        ("count", count), ("servers", KMS_SERVER_THRESHOLD), ("clients", KMS_CLIENT_THRESHOLD),
    )  # fmt: skip
    if count < KMS_SERVER_THRESHOLD:
        return Reason(KmsHealth.BELOW_THRESHOLD, "count_none" if windows else "office_count", values)
    if windows and count < KMS_CLIENT_THRESHOLD:
        return Reason(KmsHealth.BELOW_THRESHOLD, "count_servers", values)
    return None


def _shown(key: str, value: Value, lang: str) -> str | int:
    """A reason's value in ``lang``: a failure class in words, codes as ``0xC004F074 (5), 0x800706BA (2)``."""
    if isinstance(value, tuple):
        if len(value) == 1:
            return value[0][0]
        return _table(_LIST_SEPARATOR, lang).join(f"{code} ({n})" for code, n in value)
    if key == "failure" and isinstance(value, str):
        return _table(_FAILURES, lang).get(value, value)
    return value


def _table(tables: dict[str, _T], lang: str) -> _T:
    return tables.get(normalise_language(lang), tables["en"])


_SEPARATOR = {"en": "; ", "zh-TW": "；"}
_LIST_SEPARATOR = {"en": ", ", "zh-TW": "、"}

_FAILURES: dict[str, dict[str, str]] = {
    "en": {
        "dns": "its name does not resolve",
        "refused": "connection refused",
        "timeout": "timed out",
        "auth": "sign-in refused",
        "tls": "TLS certificate error",
        "protocol": "protocol error",
    },
    "zh-TW": {
        "dns": "名稱無法解析",
        "refused": "連線被拒",
        "timeout": "逾時",
        "auth": "驗證失敗",
        "tls": "TLS 憑證錯誤",
        "protocol": "通訊協定錯誤",
    },
}

_REASONS: dict[str, dict[str, str]] = {
    "en": {
        "poll_failed": "its last poll failed: {failure}",
        "never_read": "never read: the collector has not reached it",
        "not_listening": "not listening on {port}",
        "not_activated": "not activated itself: {status}",
        "clients_failing": "{failing} of {clients} clients fail with {codes}",
        "count_none": "count {count}: below {servers}, it activates nothing",
        "count_servers": "count {count}: servers only, client PCs need {clients}",
        "office_count": "Office count {count}: below {servers}, it activates no Office",
        "office_only": "a KMS host for Office only, not for Windows",
        "other_only": "a KMS host for another product only, not for Windows",
        "not_published": "publishes no SRV record: clients find it only by name (slmgr /skms)",
    },
    "zh-TW": {
        "poll_failed": "最近一次輪詢失敗：{failure}",
        "never_read": "從未讀取：收集器尚未連上此主機",
        "not_listening": "未在連接埠 {port} 接聽",
        "not_activated": "本身未啟用：{status}",
        "clients_failing": "{clients} 台用戶端中有 {failing} 台失敗：{codes}",
        "count_none": "計數 {count}：未達 {servers}，無法啟用任何電腦",
        "count_servers": "計數 {count}：僅能啟用伺服器，用戶端電腦需達 {clients}",
        "office_count": "Office 計數 {count}：未達 {servers}，無法啟用 Office",
        "office_only": "僅為 Office 的 KMS 主機，不啟用 Windows",
        "other_only": "僅為其他產品的 KMS 主機，不啟用 Windows",
        "not_published": "未發佈 SRV 紀錄：用戶端只能以名稱指定（slmgr /skms）",
    },
}
