"""The WQL subset Windows' WMI plugin answers, parsed and evaluated against typed instances.

Supported: ``SELECT *`` or a property list, one class, ``WHERE`` with ``=``, ``<>`` (``!=``),
``<``, ``>``, ``<=``, ``>=``, ``IS [NOT] NULL`` (and ``= NULL`` / ``<> NULL`` as slmgr writes it),
``AND``, ``OR``, ``NOT``, parentheses, string and number literals, ``TRUE``/``FALSE``. String
comparisons ignore case like WMI. Anything else raises ``WqlError`` so the server can answer with
the fault Windows returns; this module never builds XML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from simulator.cim import CimValue, Instance

_TOKEN: Final = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op><>|!=|<=|>=|=|<|>)"
    r"|(?P<punct>[(),*])|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_KEYWORDS: Final = frozenset({"select", "from", "where", "and", "or", "not", "is", "null", "true", "false"})

Literal = str | int | float | bool | None


class WqlError(ValueError):
    """A query Windows would refuse; ``kind`` is ``syntax``, ``class`` or ``property``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: the class, the selected properties (empty = ``*``) and the row predicate."""

    class_name: str
    properties: tuple[str, ...]
    where: Callable[[Instance], bool]
    referenced: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str


def tokenize(text: str) -> list[_Tok]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise WqlError("syntax", f"Unexpected character at position {pos}")
        kind = match.lastgroup or "word"
        tokens.append(_Tok(kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.referenced: list[str] = []

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.text.lower() == word:
            self.pos += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise WqlError("syntax", f"Expected {word.upper()}")

    def punct(self, char: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text == char:
            self.pos += 1
            return True
        return False

    def ident(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind != "word" or tok.text.lower() in _KEYWORDS:
            raise WqlError("syntax", "Expected a name")
        self.pos += 1
        return tok.text

    def query(self) -> Query:
        self.expect_keyword("select")
        props = () if self.punct("*") else self.prop_list()
        self.expect_keyword("from")
        class_name = self.ident()
        where: Callable[[Instance], bool] = lambda _inst: True  # noqa: E731
        if self.keyword("where"):
            where = self.or_expr()
        if self.peek() is not None:
            raise WqlError("syntax", f"Unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return Query(class_name, props, where, tuple(self.referenced))

    def prop_list(self) -> tuple[str, ...]:
        props = [self.ident()]
        while self.punct(","):
            props.append(self.ident())
        return tuple(props)

    def or_expr(self) -> Callable[[Instance], bool]:
        parts = [self.and_expr()]
        while self.keyword("or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else lambda inst: any(p(inst) for p in parts)

    def and_expr(self) -> Callable[[Instance], bool]:
        parts = [self.not_expr()]
        while self.keyword("and"):
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else lambda inst: all(p(inst) for p in parts)

    def not_expr(self) -> Callable[[Instance], bool]:
        if self.keyword("not"):
            inner = self.not_expr()
            return lambda inst: not inner(inst)
        if self.punct("("):
            inner = self.or_expr()
            if not self.punct(")"):
                raise WqlError("syntax", "Expected )")
            return inner
        return self.comparison()

    def comparison(self) -> Callable[[Instance], bool]:
        tok = self.peek()
        if tok is not None and tok.kind in {"str", "num"}:
            value = self.literal()
            op = self.operator()
            name = self.ident()
            self.referenced.append(name)
            return _compare(name, _FLIPPED[op], value)
        name = self.ident()
        self.referenced.append(name)
        if self.keyword("is"):
            negate = self.keyword("not")
            self.expect_keyword("null")
            return _null_test(name, negate)
        op = self.operator()
        if self.keyword("null"):
            if op not in {"=", "<>", "!="}:
                raise WqlError("syntax", "NULL only compares with = or <>")
            return _null_test(name, op != "=")
        return _compare(name, op, self.literal())

    def operator(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind != "op":
            raise WqlError("syntax", "Expected a comparison operator")
        self.pos += 1
        return tok.text

    def literal(self) -> Literal:
        tok = self.peek()
        if tok is None:
            raise WqlError("syntax", "Expected a value")
        self.pos += 1
        if tok.kind == "str":
            return re.sub(r"\\(.)", r"\1", tok.text[1:-1])
        if tok.kind == "num":
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind == "word" and tok.text.lower() in {"true", "false"}:
            return tok.text.lower() == "true"
        raise WqlError("syntax", f"Expected a value, got {tok.text!r}")


_FLIPPED: Final = {"=": "=", "<>": "<>", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
_OPS: Final[dict[str, Callable[[object, object], bool]]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
}


def _null_test(name: str, negate: bool) -> Callable[[Instance], bool]:
    def test(inst: Instance) -> bool:
        prop = inst.get(name)
        is_null = prop is None or prop.value is None
        return is_null != negate

    return test


def _compare(name: str, op: str, literal: Literal) -> Callable[[Instance], bool]:
    def test(inst: Instance) -> bool:
        prop = inst.get(name)
        if prop is None or prop.value is None:
            return False
        pair = _coerce(prop.value, literal)
        if pair is None:
            return False
        try:
            return _OPS[op](*pair)
        except TypeError:
            return False

    return test


def _coerce(value: CimValue, literal: Literal) -> tuple[object, object] | None:
    if isinstance(value, list):
        return None
    if isinstance(value, bool):
        return (value, bool(literal) if isinstance(literal, int | bool) else str(literal).lower() == "true")
    if isinstance(value, int):
        return (value, _number(literal))
    if isinstance(value, datetime):
        return (value, parse_datetime(str(literal)))
    return (str(value).lower(), str(literal).lower())


def _number(literal: Literal) -> float | int | None:
    if isinstance(literal, int | float):
        return literal
    try:
        return int(str(literal))
    except ValueError:
        return None


_DMTF: Final = re.compile(r"^(\d{14})\.(\d{6})([+-])(\d{3})$")


def parse_datetime(text: str) -> datetime | None:
    """A WQL datetime literal: DMTF ``20240501120000.000000+480`` or ISO 8601."""
    match = _DMTF.match(text.strip())
    if match:
        zone = timezone(timedelta(minutes=int(match.group(4)) * (1 if match.group(3) == "+" else -1)))
        base = datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=zone)
        return base.replace(microsecond=int(match.group(2)))
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse(text: str) -> Query:
    """Parse a WQL query; raises ``WqlError`` for anything outside the subset."""
    if len(text) > 8192:
        raise WqlError("syntax", "Query too long")
    return _Parser(tokenize(text)).query()


def run(query: Query, instances: list[Instance]) -> list[Instance]:
    """Rows matching the query; raises ``WqlError("property")`` for names the class lacks."""
    if instances:
        sample = instances[0]
        for name in (*query.properties, *query.referenced):
            if sample.get(name) is None:
                raise WqlError("property", f"Invalid property {name!r}")
    return [inst for inst in instances if query.where(inst)]
