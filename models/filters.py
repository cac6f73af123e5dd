"""``HostFilter``: the one description of "which hosts" that every read and the CSV export share.

A filter is a frozen set of allow-listed values. It renders a SQLAlchemy ``where`` clause over ``hosts``, a
human sentence ("142 hosts · error 0xC004F074 · KMS client · site Taipei") and a URL form, and parses the URL
form back without ever raising: values outside the allow-lists are returned as rejected, not applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, case, or_, true

from knowledge.codes import normalise
from models.enums import ActivationType, FailureClass, HostState, LicenseStatus, ProductType
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
        parts: list[ColumnElement[bool]] = [
            _any_of(Host.error_code, self.error_codes),
            _any_of(Host.activation_type, self.activation_types),
            _any_of(STATE, self.license_statuses),
            _any_of(Host.site, self.sites),
            _any_of(Host.os_caption, self.os_captions),
            _any_of(Host.product_type, self.product_types),
            _any_of(Host.last_failure_class, self.failure_classes),
        ]
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
        words = _WORDS[lang if lang in _WORDS else "en"]
        parts = [words["hosts"].format(n=count)] if count is not None else []
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
        params: dict[str, list[str]] = {}
        for key, name in PARAM_FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, tuple) and value:
                params[key] = [str(v) for v in value]
        if self.stale_hours is not None:
            params["stale"] = [str(self.stale_hours)]
        if self.search:
            params["q"] = [self.search]
        if self.unactivated_only:
            params["unactivated"] = ["1"]
        if self.include_at_risk:
            params["at_risk"] = ["1"]
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> tuple[HostFilter, list[str]]:
        """Parse the URL form against the allow-lists; returns the filter and the values it rejected."""
        rejected: list[str] = []
        values: dict[str, Any] = {}
        for key, name in PARAM_FIELDS.items():
            parse = _PARSERS[name]
            accepted = []
            raw_values = params.get(key, ())
            for raw in [raw_values] if isinstance(raw_values, str) else raw_values:
                parsed = parse(raw)
                (accepted.append(parsed) if parsed is not None else rejected.append(f"{key}={raw[:40]}"))
            values[name] = tuple(dict.fromkeys(accepted))
        values["stale_hours"] = _parse_stale(_first(params, "stale"), rejected)
        values["search"] = (_first(params, "q") or "").strip()[:MAX_TEXT]
        values["unactivated_only"] = (_first(params, "unactivated") or "").lower() in ("1", "true", "yes")
        values["include_at_risk"] = (_first(params, "at_risk") or "").lower() in ("1", "true", "yes")
        return cls(**values), rejected

    def is_empty(self) -> bool:
        return self == HostFilter(unactivated_only=self.unactivated_only, include_at_risk=self.include_at_risk)


PARAM_FIELDS = {
    "code": "error_codes",
    "type": "activation_types",
    "status": "license_statuses",
    "site": "sites",
    "os": "os_captions",
    "product": "product_types",
    "failure": "failure_classes",
}

# The state people read (``HostState``): the license status, "RenewalFailing" for a Licensed KMS client
# whose renewals fail.
STATE: ColumnElement[str] = case(
    (Host.renewal_failing.is_(True), HostState.RENEWAL_FAILING.value), else_=Host.license_status
)

UNACTIVATED: ColumnElement[bool] = or_(
    Host.license_status.is_(None),
    Host.license_status != LicenseStatus.LICENSED.value,
    Host.last_failure_class.is_not(None),
)


def _any_of(column: Any, values: Sequence[object]) -> ColumnElement[bool]:
    return column.in_([str(v) for v in values]) if values else true()


def _enum_parser(enum: type[E]) -> Callable[[str], E | None]:
    by_value = {member.value.lower(): member for member in enum}
    return lambda raw: by_value.get(raw.strip().lower())


def _text(raw: str) -> str | None:
    text = raw.strip()
    return text if 0 < len(text) <= MAX_TEXT else None


_PARSERS: dict[str, Callable[[str], Any]] = {
    "error_codes": normalise,
    "activation_types": _enum_parser(ActivationType),
    "license_statuses": _enum_parser(HostState),
    "sites": _text,
    "os_captions": _text,
    "product_types": _enum_parser(ProductType),
    "failure_classes": _enum_parser(FailureClass),
}


def _first(params: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = params.get(key, ())
    if isinstance(values, str):
        return values
    return values[0] if values else None


def _parse_stale(raw: str | None, rejected: list[str]) -> int | None:
    if raw is None or raw == "":
        return None
    if re.fullmatch(r"[0-9]{1,5}", raw) and 0 < int(raw) <= MAX_STALE_HOURS:
        return int(raw)
    rejected.append(f"stale={raw[:40]}")
    return None


_WORDS = {
    "en": {
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
