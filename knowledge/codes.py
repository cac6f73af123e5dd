"""The activation error-code knowledge base: canonical codes, lookups and links.

This module owns the canonical form of an activation error code (``0xC004F074``: ``0x`` plus eight
uppercase hex digits), turning every form an administrator pastes or WMI returns into it, and the
per-language entries loaded lazily from ``knowledge/data/<lang>.toml``, including the resolution
steps that differ by activation type, and the link to each code's section of Microsoft's article in
that language. A lookup never raises: an unknown or unreadable code gives an explicit entry with
``known=False``. It does not decide which code a host reports (that is ``collectors.classify``) nor
run any diagnostic check.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

LANGUAGES = ("en", "zh-TW")
ACTIVATION_TYPES = ("MAK", "KMS client", "KMS host")
CHECK_NAMES = ("kms_count", "clock_skew", "dns_srv", "kms_port", "grace_expiry", "event_log", "kms_host")
GENERAL_ARTICLE_URL = (
    "https://learn.microsoft.com/en-us/troubleshoot/windows-server/"
    "licensing-and-activation/troubleshoot-activation-error-codes"
)
"""Microsoft's "Troubleshoot Windows activation error codes" (2025); ``en.toml`` anchors point into it."""

ZH_TW_ARTICLE_URL = "https://learn.microsoft.com/zh-tw/windows-server/get-started/activation-error-codes"
"""Microsoft's own Traditional Chinese article, 解決 Windows 啟用錯誤碼 (2019 wording). ``zh-TW.toml``
anchors are its ``<a name>`` anchors, which differ from the 2025 English ones for half the codes, so
the Chinese links go to this page rather than to a translation of the 2025 article whose anchors
could not be confirmed."""

ARTICLE_URLS = {"en": GENERAL_ARTICLE_URL, "zh-TW": ZH_TW_ARTICLE_URL}
_SEVERITY_BIT = 0x80000000
_UINT32_MAX = 0xFFFFFFFF
_INT32_MIN = -0x80000000
_DISPLAY_LIMIT = 64

_HR_PREFIX = re.compile(r"hr\s*=\s*", re.IGNORECASE)
_PREFIXED_HEX = re.compile(r"0x([0-9a-f]{1,8})", re.IGNORECASE)
# A bare 8-digit value is read as hex even when it has no letters ("80070005"): the eight-digit
# decimals it could also be (10,000,000-99,999,999) are never activation results.
_BARE_HEX = re.compile(r"([0-9a-f]{8})h?", re.IGNORECASE)
_DECIMAL = re.compile(r"-?[0-9]{1,10}")


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One knowledge-base entry in one language; ``known`` is False for the fallback entry."""

    code: str
    known: bool
    title: str
    message: str
    activation_types: tuple[str, ...]
    causes: tuple[str, ...]
    steps: tuple[str, ...]
    commands: tuple[str, ...]
    checks: tuple[str, ...]
    url: str
    deep_link: str | None
    lang: str
    steps_by_type: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Steps for an activation type that needs other steps than ``steps``, as (type, steps) pairs."""

    def steps_for(self, activation_type: str | None) -> tuple[str, ...]:
        """The steps that fit a host of ``activation_type``; ``steps`` when no variant does."""
        wanted = str(activation_type or "").strip().casefold()
        return next((steps for kind, steps in self.steps_by_type if kind.casefold() == wanted), self.steps)


def normalise(value: str | int) -> str | None:
    """Return the canonical ``0xC004F074`` form of an HRESULT, or None when ``value`` is not one.

    Accepted: hex with or without ``0x`` in any case (bare hex needs all 8 digits, an ``h`` suffix
    is allowed), the signed decimal WMI returns (-1073418124), the unsigned decimal
    (3221549172), an ``hr=`` prefix as in Security-SPP events, and surrounding whitespace.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _from_int(value)
    if not isinstance(value, str):
        return None
    return _from_text(value.strip())


def _from_int(value: int) -> str | None:
    if not _INT32_MIN <= value <= _UINT32_MAX:
        return None
    return f"0x{value & _UINT32_MAX:08X}"


def _from_text(text: str) -> str | None:
    prefix = _HR_PREFIX.match(text)
    if prefix:
        text = text[prefix.end() :]
    for pattern in (_PREFIXED_HEX, _BARE_HEX):
        match = pattern.fullmatch(text)
        if match:
            return f"0x{int(match.group(1), 16):08X}"
    if _DECIMAL.fullmatch(text):
        return _from_int(int(text))
    return None


def is_failure(code: str | int) -> bool:
    """True when the severity bit is set; informational ``0x4004....`` codes are not failures."""
    canonical = normalise(code)
    return canonical is not None and bool(int(canonical, 16) & _SEVERITY_BIT)


def normalise_language(value: object, default: str = "en") -> str:
    """The supported language ``value`` names, else ``default`` (returned as given).

    Case, surrounding blanks and ``_`` for ``-`` do not matter: ``"zh_tw"`` and ``" ZH-TW "`` give ``"zh-TW"``.
    Anything else, ``None`` and the empty string included, gives ``default``.
    """
    wanted = "" if value is None else str(value).strip().replace("_", "-").casefold()
    return next((known for known in LANGUAGES if known.casefold() == wanted), default)


def article_url(lang: str = "en") -> str:
    """Microsoft's activation error-code article in ``lang`` (English for unsupported languages)."""
    return ARTICLE_URLS[normalise_language(lang)]


def lookup(value: str | int, lang: str = "en") -> ErrorCode:
    """The entry for ``value`` in ``lang``; never raises.

    An unreadable value, an informational code or a code missing from the knowledge base gives an
    entry with ``known=False``, an "Unknown code" title, a message saying which case it is, and
    the general article URL. Unsupported languages fall back to English.
    """
    lang = normalise_language(lang)
    canonical = normalise(value)
    if canonical is None:
        return _unknown(_displayable(value), lang, "unparseable")
    entry = _entries(lang).get(canonical)
    if entry is not None:
        return entry
    return _unknown(canonical, lang, "message" if is_failure(canonical) else "informational")


def resolution_steps(value: str | int, activation_type: str | None = None, lang: str = "en") -> tuple[str, ...]:
    """The resolution steps for ``value`` on a host of ``activation_type``, in ``lang``.

    "MAK", "KMS client" and "KMS host" (in any case) pick that type's variant where the entry has
    one; any other type, or None, gives the default steps. Never raises, like ``lookup``.
    """
    return lookup(value, lang).steps_for(activation_type)


def all_codes(lang: str = "en") -> tuple[ErrorCode, ...]:
    """Every known entry in ``lang``, sorted by code."""
    entries = _entries(normalise_language(lang))
    return tuple(entries[code] for code in sorted(entries))


def codes_for_check(check: str) -> tuple[str, ...]:
    """Canonical codes whose diagnosis involves the diagnostic check named ``check``."""
    return tuple(entry.code for entry in all_codes() if check in entry.checks)


def _displayable(value: object) -> str:
    return str(value).strip()[:_DISPLAY_LIMIT]


@cache
def _document(lang: str) -> dict[str, Any]:
    text = files("knowledge").joinpath("data", f"{lang}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@cache
def _entries(lang: str) -> dict[str, ErrorCode]:
    tables: dict[str, dict[str, Any]] = _document(lang)["codes"]
    return {code: _entry(table, lang) for code, table in tables.items()}


def _entry(table: dict[str, Any], lang: str) -> ErrorCode:
    variants: dict[str, list[str]] = table.get("steps_by_type", {})
    anchor = table["anchor"]
    return ErrorCode(
        code=table["code"],
        known=True,
        title=table["title"],
        message=table["message"],
        activation_types=tuple(table["activation_types"]),
        causes=tuple(table["causes"]),
        steps=tuple(table["steps"]),
        commands=tuple(table["commands"]),
        checks=tuple(table["checks"]),
        # An anchor that could not be confirmed in the article is left empty: link the page itself.
        url=f"{article_url(lang)}#{anchor}" if anchor else article_url(lang),
        deep_link=table["deep_link"] or None,
        lang=lang,
        steps_by_type=tuple((kind, tuple(variants[kind])) for kind in ACTIVATION_TYPES if kind in variants),
    )


def _unknown(code: str, lang: str, kind: str) -> ErrorCode:
    texts: dict[str, Any] = _document(lang)["unknown"]
    steps = texts["steps"]
    if kind == "unparseable":
        # Steps that quote the code make no sense when the input was not a code at all.
        steps = [step for step in steps if "{code}" not in step]
    return ErrorCode(
        code=code,
        known=False,
        title=texts["title"],
        message=texts[kind].replace("{code}", code),
        activation_types=(),
        causes=(),
        steps=tuple(step.replace("{code}", code) for step in steps),
        commands=(),
        checks=(),
        url=article_url(lang),
        deep_link=None,
        lang=lang,
    )
