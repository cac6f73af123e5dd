"""The inventory: which machines to poll and how to reach each one.

Reads a CSV (``host,port,scheme,transport,credential,site,tags[,spn]``) or a YAML file whose sources are
explicit hosts, CIDR ranges (expanded to addresses, never probed) and Active Directory computers
found through LDAP (``collectors.directory``). Each bad entry becomes an ``InventoryProblem`` with file
and line and is skipped; only a file that cannot be used at all raises ``InventoryError``. Also owns the
stable shard partition (``--shard K/N``). It does not talk WinRM and does not read passwords.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from collectors import directory, names
from collectors.directory import LdapSearch, SourceError
from collectors.errors import InventoryError
from collectors.names import InvalidText, field_text, quoted
from models.records import HostIdentity

CSV_COLUMNS = ("host", "port", "scheme", "transport", "credential", "site", "tags", "spn")
SCHEMES = ("http", "https")
# negotiate: Kerberos when a ticket can be had for the host's SPN, else NTLM; kerberos: Kerberos only;
# ntlm: NTLM inside Negotiate; basic: user name and password (HTTPS only, unless opted in).
TRANSPORTS = ("negotiate", "kerberos", "ntlm", "basic")
DEFAULT_TRANSPORT = "negotiate"
DEFAULT_PORTS = {"http": 5985, "https": 5986}
DEFAULT_CREDENTIAL = "default"
# Limits that keep one hostile cell from costing more than its row: the file is refused above
# MAX_INVENTORY_BYTES (checked before reading), a CSV line above MAX_LINE_CHARS and a field above
# MAX_FIELD_CHARS (collectors.directory, beside the host-name rule) reject their row.
MAX_INVENTORY_BYTES = 64 * 1024 * 1024
MAX_LINE_CHARS = 64 * 1024
# Basic over plain HTTP sends the password in clear: refused unless the inventory opts in, with this
# top-level YAML key or, per row (CSV too), with this tag.
ALLOW_BASIC_HTTP_KEY = "allow_basic_over_http"
ALLOW_BASIC_HTTP_TAG = "allow-basic-http"

log = logging.getLogger("collectors")

Scheme = Literal["http", "https"]
Transport = Literal["negotiate", "kerberos", "ntlm", "basic"]


@dataclass(frozen=True, slots=True)
class Target:
    """One host to poll, with everything needed to reach it except the secret itself."""

    host: str
    port: int
    scheme: Scheme = "http"
    transport: Transport = "negotiate"
    credential: str = DEFAULT_CREDENTIAL
    site: str | None = None
    tags: tuple[str, ...] = ()
    spn: str | None = None  # Kerberos service principal when it is not HTTP/<host>

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/wsman"

    @property
    def identity(self) -> HostIdentity:
        return HostIdentity(self.host, self.port, self.scheme, self.site, self.tags)


@dataclass(frozen=True, slots=True)
class InventoryProblem:
    """A skipped inventory entry: where it is and what is wrong with it."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Inventory:
    targets: tuple[Target, ...]
    problems: tuple[InventoryProblem, ...] = ()


@dataclass
class _Collector:
    """Accumulates targets and problems, rejecting duplicate hosts (names case-insensitive, addresses by value)."""

    source: str
    allow_basic_over_http: bool = False
    targets: list[Target] = field(default_factory=list)
    problems: list[InventoryProblem] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)

    def add(self, line: int, fields: Mapping[str, Any]) -> None:
        try:
            target = make_target(fields, allow_basic_over_http=self.allow_basic_over_http)
        except InvalidText as exc:
            self.problem(line, str(exc))
            return
        self.accept(line, target)

    def accept(self, line: int, target: Target) -> None:
        key = names.host_key(target.host)
        if key in self.seen:
            self.problem(line, f"duplicate host {quoted(target.host)} (first on line {self.seen[key]})")
            return
        self.seen[key] = line
        self.targets.append(target)
        if basic_over_http(target):
            warn_basic_over_http(target)

    def problem(self, line: int, message: str) -> None:
        self.problems.append(InventoryProblem(self.source, line, message))

    def result(self) -> Inventory:
        return Inventory(tuple(self.targets), tuple(self.problems))


def load_inventory(
    path: Path,
    *,
    force: bool = False,
    ldap_search: LdapSearch | None = None,
    secrets: Mapping[str, str] | None = None,
) -> Inventory:
    """Read a CSV or YAML inventory; raises ``InventoryError`` only when the file is unusable."""
    text = _read_text(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        return read_yaml(text, str(path), force=force, ldap_search=ldap_search, secrets=secrets)
    return read_csv(text, str(path))


def _read_text(path: Path) -> str:
    """The file as text; a file over ``MAX_INVENTORY_BYTES`` is refused before it is read."""
    too_big = f"{path}: cannot read inventory: larger than {MAX_INVENTORY_BYTES // 2**20} MiB"
    try:
        size = path.stat().st_size
        if size > MAX_INVENTORY_BYTES:
            raise InventoryError(f"{too_big} ({size:,} bytes)")
        with path.open("rb") as handle:
            data = handle.read(MAX_INVENTORY_BYTES + 1)  # bounded: the file may grow, or be a pipe
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read inventory: {exc.strerror or exc}") from None
    if len(data) > MAX_INVENTORY_BYTES:
        raise InventoryError(too_big)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InventoryError(f"{path}: cannot read inventory: not UTF-8 text") from None


# --- targets -----------------------------------------------------------------------------------


def make_target(fields: Mapping[str, Any], *, allow_basic_over_http: bool = False) -> Target:
    """Validate one entry's fields and apply the defaults; raises ``InvalidText``.

    Basic over plain HTTP is refused unless ``allow_basic_over_http`` (the YAML key) or the entry's
    ``allow-basic-http`` tag opts in.
    """
    return Target(host=names.check_host(field_text(fields, "host")), **_settings(fields, allow_basic_over_http))


def _settings(fields: Mapping[str, Any], allow_basic_over_http: bool) -> dict[str, Any]:
    """Every ``Target`` field but the host, checked and defaulted; raises ``InvalidText``."""
    scheme = (field_text(fields, "scheme") or "http").lower()
    if scheme not in SCHEMES:
        raise InvalidText(f"unknown scheme {quoted(scheme)} (use http or https)")
    transport = (field_text(fields, "transport") or DEFAULT_TRANSPORT).lower()
    if transport not in TRANSPORTS:
        raise InvalidText(f"unknown transport {quoted(transport)} (use {', '.join(TRANSPORTS)})")
    tags = names.tag_list(fields.get("tags"))
    if transport == "basic" and scheme == "http" and not (allow_basic_over_http or _opted_in(tags)):
        raise InvalidText(
            f"transport basic over plain http would send the password in clear; use https, or opt in with "
            f"the tag {ALLOW_BASIC_HTTP_TAG!r} (or {ALLOW_BASIC_HTTP_KEY}: true in a YAML inventory)"
        )
    credential = names.credential_name(field_text(fields, "credential") or DEFAULT_CREDENTIAL)
    return {
        "port": names.port_number(port) if (port := field_text(fields, "port")) else DEFAULT_PORTS[scheme],
        "scheme": scheme,
        "transport": transport,
        "credential": credential,
        "site": names.plain_text("site", field_text(fields, "site")) or None,
        "tags": tags,
        "spn": names.check_spn(spn) if (spn := field_text(fields, "spn")) else None,
    }


def _opted_in(tags: Iterable[str]) -> bool:
    return any(tag.lower() == ALLOW_BASIC_HTTP_TAG for tag in tags)


def basic_over_http(target: Target) -> bool:
    """Whether polling ``target`` sends its password in clear (Basic without TLS)."""
    return target.transport == "basic" and target.scheme == "http"


_warned_lock = threading.Lock()
_warned_hosts: set[str] = set()


def warn_basic_over_http(target: Target) -> None:
    """Log, once per host and process, that the host's password will cross the network in clear."""
    key = target.host.lower()
    with _warned_lock:
        if key in _warned_hosts:
            return
        _warned_hosts.add(key)
    log.warning("%s: Basic authentication over plain HTTP sends the password in clear (opted in)", target.host)


# --- CSV ---------------------------------------------------------------------------------------


def read_csv(text: str, source: str) -> Inventory:
    """Parse CSV text whose header names a subset of ``CSV_COLUMNS`` including ``host``.

    Every line is one row (no inventory field holds a line break), so a broken quote or an oversized line
    costs that line alone and never swallows the rows after it.
    """
    lines = enumerate(io.StringIO(text, newline=""), 1)
    header = _header(next(lines, (1, ""))[1], source)
    collector = _Collector(source)
    for number, line in lines:
        try:
            row = _csv_row(line)
        except InvalidText as exc:
            collector.problem(number, str(exc))
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            collector.problem(number, f"{len(row)} fields but the header has {len(header)}")
            continue
        collector.add(number, dict(zip(header, row, strict=False)))
    return collector.result()


def _csv_row(line: str) -> list[str]:
    line = line.rstrip("\r\n")
    if len(line) > MAX_LINE_CHARS:
        raise InvalidText(f"line is {len(line)} characters long; a row holds at most {MAX_LINE_CHARS}")
    try:
        return next(csv.reader([line], strict=True), [])
    except csv.Error as exc:  # a broken quote; the csv module's own field limit is above MAX_LINE_CHARS
        raise InvalidText(f"not a CSV row: {exc}") from None


def _header(line: str, source: str) -> list[str]:
    try:
        header = [h.strip().lower() for h in _csv_row(line)]
    except InvalidText as exc:
        raise InventoryError(f"{source}:1: not a CSV inventory header: {exc}") from None
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if "host" not in header or unknown:
        got = quoted(",".join(header), 200)
        raise InventoryError(f"{source}:1: header must be {','.join(CSV_COLUMNS)} (host required); got {got}")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InventoryError(f"{source}:1: header names {', '.join(repeated)} more than once")
    return header


# --- YAML --------------------------------------------------------------------------------------

LINE_KEY = "__line__"
VALUE_KEY = "__value__"
YAML_SECTIONS = ("hosts", "ranges", "ldap")


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records each mapping's line number under ``__line__``."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = {str(key): value for key, value in loader.construct_mapping(node, deep=True).items()}
    mapping[LINE_KEY] = node.start_mark.line + 1
    return mapping


def _sequence_with_lines(loader: _LineLoader, node: yaml.SequenceNode) -> list[Any]:
    # Plain scalars in a list (``- ws01.corp.test``) keep their line too, for problem reports.
    items: list[Any] = []
    for child in node.value:
        value = loader.construct_object(child, deep=True)
        if isinstance(child, yaml.ScalarNode):
            value = {VALUE_KEY: value, LINE_KEY: child.start_mark.line + 1}
        items.append(value)
    return items


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence_with_lines)


def read_yaml(
    text: str,
    source: str,
    *,
    force: bool = False,
    ldap_search: LdapSearch | None = None,
    secrets: Mapping[str, str] | None = None,
) -> Inventory:
    """Parse a YAML inventory: ``defaults``, ``hosts``, ``ranges`` and ``ldap`` sections."""
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506  # _LineLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise InventoryError(f"{source}: not valid YAML: {names.printable(str(exc))}") from None
    except RecursionError:
        raise InventoryError(f"{source}: not a usable YAML inventory: nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # a value YAML cannot build: 2024-13-45, !!int x, 5000 digits
        raise InventoryError(f"{source}: not a usable YAML inventory: {names.printable(str(exc))}") from None
    if not isinstance(doc, dict):
        raise InventoryError(f"{source}:1: expected a mapping with hosts, ranges or ldap")
    unknown = set(doc) - {"defaults", *YAML_SECTIONS, ALLOW_BASIC_HTTP_KEY, LINE_KEY}
    if unknown:
        raise InventoryError(f"{source}:1: unknown section(s) {sorted(unknown)}")
    allow_basic = _plain(doc.get(ALLOW_BASIC_HTTP_KEY, False))
    if not isinstance(allow_basic, bool):
        raise InventoryError(
            f"{source}:{_key_line(text, ALLOW_BASIC_HTTP_KEY)}: {ALLOW_BASIC_HTTP_KEY} must be true or false"
        )
    if not isinstance(doc.get("defaults") or {}, dict):
        raise InventoryError(f"{source}:{_key_line(text, 'defaults')}: defaults must be a mapping of fields")
    for name in (n for n in YAML_SECTIONS if not isinstance(doc.get(n) or [], list)):
        raise InventoryError(f"{source}:{_key_line(text, name)}: {name} must be a list")
    defaults = _strip_line(doc.get("defaults") or {})
    collector = _Collector(source, allow_basic_over_http=allow_basic)
    _yaml_hosts(collector, doc.get("hosts") or [], defaults, doc[LINE_KEY])
    _yaml_ranges(collector, doc.get("ranges") or [], defaults, force=force)
    _yaml_ldap(collector, doc.get("ldap") or [], defaults, ldap_search or directory.search_computers, secrets)
    return collector.result()


def _key_line(text: str, key: str) -> int:
    """The line of a top-level ``key:`` (1 when it cannot be found)."""
    return next((n for n, line in enumerate(text.splitlines(), 1) if line.startswith(f"{key}:")), 1)


def _strip_line(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in entry.items() if k != LINE_KEY}


def _plain(value: Any) -> Any:
    # One level only: a list of lists is refused by the field checks, never copied (YAML aliases can make
    # a small file describe a huge nested list).
    if isinstance(value, list):
        return [v[VALUE_KEY] if isinstance(v, dict) and VALUE_KEY in v else v for v in value]
    if isinstance(value, dict) and VALUE_KEY in value:
        return value[VALUE_KEY]
    return value


def _entry(item: Any, key: str, fallback_line: int) -> tuple[int, dict[str, Any]]:
    if isinstance(item, dict) and VALUE_KEY in item:
        return int(item[LINE_KEY]), {key: item[VALUE_KEY]}
    if isinstance(item, dict):
        return int(item.get(LINE_KEY, fallback_line)), _strip_line(item)
    return fallback_line, {key: item}


def _yaml_hosts(collector: _Collector, items: list[Any], defaults: dict[str, Any], line: int) -> None:
    for item in items:
        item_line, fields = _entry(item, "host", line)
        collector.add(item_line, {**defaults, **fields})


def _yaml_ranges(collector: _Collector, items: list[Any], defaults: dict[str, Any], *, force: bool) -> None:
    for item in items:
        line, fields = _entry(item, "cidr", 0)
        try:
            forced = fields.get("force", False)
            if not isinstance(forced, bool):
                raise InvalidText("force must be true or false")
            hosts = names.expand_cidr(field_text(fields, "cidr"), force=force or forced)
            settings = _settings({**defaults, **fields}, collector.allow_basic_over_http)
        except InvalidText as exc:  # reported once for the range, not once per address
            collector.problem(line, str(exc))
            continue
        for host in hosts:
            collector.accept(line, Target(host=host, **settings))


def _yaml_ldap(
    collector: _Collector,
    items: list[Any],
    defaults: dict[str, Any],
    search: LdapSearch,
    secrets: Mapping[str, str] | None,
) -> None:
    for item in items:
        line, fields = _entry(item, "url", 0)
        try:
            settings = _settings({**defaults, **fields}, collector.allow_basic_over_http)
            source = directory.ldap_source(fields)
        except (InvalidText, SourceError) as exc:  # checked before the directory is asked anything
            collector.problem(line, str(exc))
            continue
        try:
            found = list(search(source, secrets or {}))
        except SourceError as exc:
            collector.problem(line, str(exc))
            continue
        except Exception as exc:  # ldap3 raises many unrelated types; this source alone is skipped
            collector.problem(line, f"LDAP search {quoted(source.url)} failed: {names.printable(str(exc))}")
            continue
        for name in found:
            try:
                host = names.check_host(field_text({"host": name}, "host"))
            except InvalidText as exc:  # the directory's data, not the file's: a warning, not a problem
                log.warning("%s:%d: skipped a computer the directory returned: %s", collector.source, line, exc)
                continue
            collector.accept(line, Target(host=host, **settings))


# --- shards ------------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) as a tuple; raises ``ValueError`` with a short reason."""
    k_text, _, n_text = text.partition("/")
    k, n = names.ascii_int(k_text), names.ascii_int(n_text)
    if k is None or n is None or not 1 <= k <= n:
        raise ValueError(f"shard must be K/N with 1 <= K <= N, got {quoted(text)}")
    return k, n


def shard_index(host: str, count: int) -> int:
    """A stable 1-based shard number for ``host``: same on every machine and every run."""
    digest = hashlib.blake2b(host.lower().encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count + 1


def select_shard(targets: Iterable[Target], shard: tuple[int, int] | None) -> tuple[Target, ...]:
    if shard is None:
        return tuple(targets)
    k, n = shard
    return tuple(t for t in targets if shard_index(t.host, n) == k)
