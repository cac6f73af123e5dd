"""``HostFilter``: the one description of "which hosts" that every read and the CSV export share.

A filter is a frozen set of allow-listed values. It renders a SQLAlchemy ``where`` clause over ``hosts``, a
human sentence ("142 hosts · error 0xC004F074 · KMS client · site Taipei") and a URL form, and parses the URL
form back without ever raising: values outside the allow-lists are returned as rejected, not applied.

``CRITERIA`` is the vocabulary, declared once: each criterion's URL key, CLI option, allow-list and SQL
column. The URL form, the dashboard's widgets' keys, ``collectors export``'s options and the ``where``
clause are all generated from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, and_, or_, true

from knowledge.codes import normalise, normalise_language
from models.enums import ActivationType, FailureClass, HostState, LicenseStatus, ProductType
from models.hostfacts import STATE
from models.tables import Host

MAX_TEXT = 200
MAX_STALE_HOURS = 24 * 365
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class HostFilter:
    error_codes: tuple[str, ...] = ()
    activation_types: tuple[ActivationType, ...] = ()
    license_statuses: tuple[HostState, ...] = ()
    sites: tuple[str, ...] = ()
    os_captions: tuple[str, ...] = ()
    product_types: tuple[ProductType, ...] = ()
    failure_classes: tuple[FailureClass, ...] = ()
    stale_hours: int | None = None
    search: str = ""
    unactivated_only: bool = False
    include_at_risk: bool = False  # with unactivated_only: Licensed KMS clients whose renewals fail too

    def where(self, now: datetime) -> ColumnElement[bool]:
        """The SQL condition on ``hosts`` selecting exactly the hosts this filter describes."""
        parts = [_any_of(c.column, getattr(self, c.field)) for c in CRITERIA if c.kind == "values"]
        if self.stale_hours is not None:
            cutoff = now - timedelta(hours=self.stale_hours)
            parts.append(or_(Host.last_success_at.is_(None), Host.last_success_at < cutoff))
        if self.search:
            parts.append(Host.search_key.contains(self.search.casefold(), autoescape=True))
        if self.unactivated_only:
            parts.append(or_(UNACTIVATED, Host.renewal_failing.is_(True)) if self.include_at_risk else UNACTIVATED)
        return and_(true(), *parts)

    def describe(self, count: int | None = None, lang: str = "en") -> str:
        """A sentence for people: what is shown and how many."""
        words = _WORDS[normalise_language(lang)]
        parts = [words["host" if count == 1 else "hosts"].format(n=count)] if count is not None else []
        if self.unactivated_only:
            parts.append(words["unactivated_at_risk"] if self.include_at_risk else words["unactivated"])
        parts += [words["error"].format(v=code) for code in self.error_codes]
        parts += [str(v) for v in (*self.activation_types, *self.license_statuses, *self.product_types)]
        parts += [words["site"].format(v=v) for v in self.sites]
        parts += [words["os"].format(v=v) for v in self.os_captions]
        parts += [words["failure"].format(v=v) for v in self.failure_classes]
        if self.stale_hours is not None:
            parts.append(words["stale"].format(v=self.stale_hours))
        if self.search:
            parts.append(words["search"].format(v=self.search))
        return " · ".join(parts) if parts else words["all"]

    def to_params(self) -> dict[str, list[str]]:
        """The URL form; empty criteria are left out."""
        params = {c.key: c.render(getattr(self, c.field)) for c in CRITERIA}
        return {key: values for key, values in params.items() if values}

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str] | str]) -> tuple[HostFilter, list[str]]:
        """Parse the URL form against the allow-lists; returns the filter and the values it rejected."""
        rejected: list[str] = []
        values = {c.field: c.read(_values(params, c.key), rejected) for c in CRITERIA}
        return cls(**values), rejected

    def is_empty(self) -> bool:
        return self == HostFilter(unactivated_only=self.unactivated_only, include_at_risk=self.include_at_risk)


# --- the vocabulary ---------------------------------------------------------------------------------

Kind = Literal["values", "hours", "text", "flag"]
TRUE_WORDS = ("1", "true", "yes")


@dataclass(frozen=True, slots=True)
class Criterion:
    """One way to narrow the host list, named once for the URL (``key``), the CLI (``option``) and SQL."""

    field: str  # the HostFilter attribute
    key: str
    option: str
    kind: Kind  # values: any of several (repeatable); hours, text: one value; flag: on or off
    help: str
    invalid: str = "not accepted"  # why a value is refused
    parse: Callable[[str], Any] | None = None  # values: the allow-list, None for a refused value
    column: Any = None  # values: the column compared with them
    choices: tuple[str, ...] = ()  # values: the whole list, when it is fixed

    def read(self, raw: Sequence[str], rejected: list[str]) -> Any:
        """The field's value from the URL form; refused values are added to ``rejected`` as ``key=value``."""
        if self.kind == "values":
            assert self.parse is not None
            accepted = []
            for text in raw:
                value = self.parse(text)
                (accepted.append(value) if value is not None else rejected.append(f"{self.key}={text[:40]}"))
            return tuple(dict.fromkeys(accepted))
        first = raw[0] if raw else None
        if self.kind == "flag":
            return (first or "").strip().lower() in TRUE_WORDS
        if self.kind == "text":
            return (first or "").strip()[:MAX_TEXT]
        return _hours(first, self.key, rejected)

    def render(self, value: Any) -> list[str]:
        """The field's value in the URL form (empty when the criterion is unset)."""
        if self.kind == "values":
            return [str(v) for v in value]
        if self.kind == "flag":
            return ["1"] if value else []
        return [] if value in (None, "") else [str(value)]


def _enum(enum: type[E]) -> tuple[Callable[[str], E | None], tuple[str, ...]]:
    by_value = {member.value.lower(): member for member in enum}
    return (lambda raw: by_value.get(raw.strip().lower())), tuple(member.value for member in enum)


def _text(raw: str) -> str | None:
    text = raw.strip()
    return text if 0 < len(text) <= MAX_TEXT else None


def _choice_list(choices: Sequence[str]) -> str:
    return f"one of {', '.join(choices)}"


_TYPES, _STATES, _PRODUCTS, _FAILURES = _enum(ActivationType), _enum(HostState), _enum(ProductType), _enum(FailureClass)
CRITERIA: tuple[Criterion, ...] = (
    Criterion("error_codes", "code", "--error-code", "values", "Only this error code (repeatable).",
              "not an error code", normalise, Host.error_code),
    Criterion("activation_types", "type", "--activation-type", "values", "Only this activation type (repeatable).",
              f"not an activation type ({_choice_list(_TYPES[1])})", _TYPES[0], Host.activation_type, _TYPES[1]),
    Criterion("license_statuses", "status", "--status", "values",
              "Only this state: a license status, or RenewalFailing (repeatable).",
              f"not a license status ({_choice_list(_STATES[1])})", _STATES[0], STATE, _STATES[1]),
    Criterion("sites", "site", "--site", "values", "Only this site (repeatable).", "empty or too long", _text,
              Host.site),
    Criterion("os_captions", "os", "--os", "values", "Only this OS caption, as the dashboard lists it (repeatable).",
              "empty or too long", _text, Host.os_caption),
    Criterion("product_types", "product", "--product-type", "values",
              "Only workstation, server or domain controller (dc) (repeatable).",
              f"not a product type ({_choice_list(_PRODUCTS[1])})", _PRODUCTS[0], Host.product_type, _PRODUCTS[1]),
    Criterion("failure_classes", "failure", "--failure", "values",
              "Only hosts whose last poll failed with this class (repeatable).",
              f"not a failure class ({_choice_list(_FAILURES[1])})", _FAILURES[0], Host.last_failure_class,
              _FAILURES[1]),
    Criterion("stale_hours", "stale", "--stale-hours", "hours", "Only hosts without a successful poll for N hours.",
              f"not a number of hours from 1 to {MAX_STALE_HOURS}"),
    Criterion("search", "q", "--search", "text", "Only hosts whose name contains TEXT."),
    Criterion("unactivated_only", "unactivated", "--unactivated", "flag", "Only hosts that are not activated."),
    Criterion("include_at_risk", "at_risk", "--include-at-risk", "flag",
              "Also Licensed KMS clients whose renewals fail (they drop out when they expire)."),
)  # fmt: skip
BY_KEY: Mapping[str, Criterion] = {c.key: c for c in CRITERIA}
URL_KEYS = tuple(BY_KEY)
VIEW_KEYS = ("lang", "page")  # in a dashboard URL, but they choose what is shown, not which hosts

UNACTIVATED: ColumnElement[bool] = or_(
    Host.license_status.is_(None),
    Host.license_status != LicenseStatus.LICENSED.value,
    Host.last_failure_class.is_not(None),
)


def _any_of(column: Any, values: Sequence[object]) -> ColumnElement[bool]:
    return column.in_([str(v) for v in values]) if values else true()


def _values(params: Mapping[str, Sequence[str] | str], key: str) -> list[str]:
    values = params.get(key, ())
    return [values] if isinstance(values, str) else list(values)


def _hours(raw: str | None, key: str, rejected: list[str]) -> int | None:
    if raw is None or raw == "":
        return None
    if re.fullmatch(r"[0-9]{1,5}", raw) and 0 < int(raw) <= MAX_STALE_HOURS:
        return int(raw)
    rejected.append(f"{key}={raw[:40]}")
    return None


_WORDS = {
    "en": {
        "host": "{n} host",
        "hosts": "{n} hosts",
        "unactivated": "not activated",
        "unactivated_at_risk": "not activated or renewal failing",
        "error": "error {v}",
        "site": "site {v}",
        "os": "OS {v}",
        "failure": "unreachable ({v})",
        "stale": "no data for {v} h",
        "search": "name contains “{v}”",
        "all": "all hosts",
    },
    "zh-TW": {
        "host": "{n} 台主機",
        "hosts": "{n} 台主機",
        "unactivated": "未啟用",
        "unactivated_at_risk": "未啟用或續約失敗",
        "error": "錯誤 {v}",
        "site": "站台 {v}",
        "os": "作業系統 {v}",
        "failure": "無法連線（{v}）",
        "stale": "{v} 小時無資料",
        "search": "名稱包含「{v}」",
        "all": "所有主機",
    },
}
