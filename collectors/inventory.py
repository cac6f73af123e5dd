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
import ipaddress
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from collectors.directory import LdapSearch, SourceError, ldap_source, search_computers
from collectors.errors import InventoryError
from models.records import HostIdentity

CSV_COLUMNS = ("host", "port", "scheme", "transport", "credential", "site", "tags", "spn")
SCHEMES = ("http", "https")
# negotiate: Kerberos when a ticket can be had for the host's SPN, else NTLM; kerberos: Kerberos only;
# ntlm: NTLM inside Negotiate; basic: user name and password (HTTPS only, unless opted in).
TRANSPORTS = ("negotiate", "kerberos", "ntlm", "basic")
DEFAULT_TRANSPORT = "negotiate"
DEFAULT_PORTS = {"http": 5985, "https": 5986}
DEFAULT_CREDENTIAL = "default"
MAX_PREFIX_WITHOUT_FORCE = 16
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


class _RowError(ValueError):
    """One entry is wrong; the message names the field."""


@dataclass
class _Collector:
    """Accumulates targets and problems, rejecting duplicate hosts (case-insensitive)."""

    source: str
    allow_basic_over_http: bool = False
    targets: list[Target] = field(default_factory=list)
    problems: list[InventoryProblem] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)

    def add(self, line: int, fields: Mapping[str, Any]) -> None:
        try:
            target = make_target(fields, allow_basic_over_http=self.allow_basic_over_http)
        except _RowError as exc:
            self.problem(line, str(exc))
            return
        key = target.host.lower()
        if key in self.seen:
            self.problem(line, f"duplicate host {target.host!r} (first on line {self.seen[key]})")
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
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read inventory: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InventoryError(f"{path}: cannot read inventory: not UTF-8 text") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        return read_yaml(text, str(path), force=force, ldap_search=ldap_search, secrets=secrets)
    return read_csv(text, str(path))


# --- targets -----------------------------------------------------------------------------------


def make_target(fields: Mapping[str, Any], *, allow_basic_over_http: bool = False) -> Target:
    """Validate one entry's fields and apply the defaults; raises ``_RowError``.

    Basic over plain HTTP is refused unless ``allow_basic_over_http`` (the YAML key) or the entry's
    ``allow-basic-http`` tag opts in.
    """
    host = _text(fields.get("host"))
    if not host or any(c.isspace() for c in host):
        raise _RowError(f"host {host!r} is missing or contains spaces")
    scheme = (_text(fields.get("scheme")) or "http").lower()
    if scheme not in SCHEMES:
        raise _RowError(f"unknown scheme {scheme!r} (use http or https)")
    transport = (_text(fields.get("transport")) or DEFAULT_TRANSPORT).lower()
    if transport not in TRANSPORTS:
        raise _RowError(f"unknown transport {transport!r} (use {', '.join(TRANSPORTS)})")
    tags = _tags(fields.get("tags"))
    if transport == "basic" and scheme == "http" and not (allow_basic_over_http or _opted_in(tags)):
        raise _RowError(
            f"transport basic over plain http would send the password in clear; use https, or opt in with "
            f"the tag {ALLOW_BASIC_HTTP_TAG!r} (or {ALLOW_BASIC_HTTP_KEY}: true in a YAML inventory)"
        )
    return Target(
        host=host.strip("[]"),
        port=_port(fields.get("port"), scheme),
        scheme=scheme,  # type: ignore[arg-type]  # checked against SCHEMES above
        transport=transport,  # type: ignore[arg-type]  # checked against TRANSPORTS above
        credential=_text(fields.get("credential")) or DEFAULT_CREDENTIAL,
        site=_text(fields.get("site")) or None,
        tags=tags,
        spn=_spn(fields.get("spn")),
    )


def _spn(value: Any) -> str | None:
    """A ``service/host`` SPN, e.g. ``HTTP/ws01.corp.example``; blank is None."""
    text = _text(value)
    if not text:
        return None
    service, _, host = text.partition("/")
    if not service or not host or any(c.isspace() or c in "/@" for c in service + host):
        raise _RowError(f"spn {text!r} must look like HTTP/host.corp.example")
    return text


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


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _port(value: Any, scheme: str) -> int:
    text = _text(value)
    if not text:
        return DEFAULT_PORTS[scheme]
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _RowError(f"port {text!r} is out of range 1-65535")
    return int(text)


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(t.strip() for t in _text(value).split(";") if t.strip())


# --- CSV ---------------------------------------------------------------------------------------


def read_csv(text: str, source: str) -> Inventory:
    """Parse CSV text whose header names a subset of ``CSV_COLUMNS`` including ``host``."""
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if "host" not in header or unknown:
        raise InventoryError(f"{source}:1: header must be {','.join(CSV_COLUMNS)} (host required); got {header}")
    collector = _Collector(source)
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            collector.problem(reader.line_num, f"{len(row)} fields but the header has {len(header)}")
            continue
        collector.add(reader.line_num, dict(zip(header, row, strict=False)))
    return collector.result()


# --- YAML --------------------------------------------------------------------------------------

LINE_KEY = "__line__"
VALUE_KEY = "__value__"


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
        raise InventoryError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(doc, dict):
        raise InventoryError(f"{source}:1: expected a mapping with hosts, ranges or ldap")
    unknown = set(doc) - {"defaults", "hosts", "ranges", "ldap", ALLOW_BASIC_HTTP_KEY, LINE_KEY}
    if unknown:
        raise InventoryError(f"{source}:1: unknown section(s) {sorted(unknown)}")
    allow_basic = _plain(doc.get(ALLOW_BASIC_HTTP_KEY, False))
    if not isinstance(allow_basic, bool):
        raise InventoryError(
            f"{source}:{_key_line(text, ALLOW_BASIC_HTTP_KEY)}: {ALLOW_BASIC_HTTP_KEY} must be true or false"
        )
    defaults = _strip_line(doc.get("defaults") or {})
    collector = _Collector(source, allow_basic_over_http=allow_basic)
    _yaml_hosts(collector, doc.get("hosts") or [], defaults, doc[LINE_KEY])
    _yaml_ranges(collector, doc.get("ranges") or [], defaults, force=force)
    _yaml_ldap(collector, doc.get("ldap") or [], defaults, ldap_search or search_computers, secrets)
    return collector.result()


def _key_line(text: str, key: str) -> int:
    """The line of a top-level ``key:`` (1 when it cannot be found)."""
    return next((n for n, line in enumerate(text.splitlines(), 1) if line.startswith(f"{key}:")), 1)


def _strip_line(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in entry.items() if k != LINE_KEY}


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
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
            hosts = list(expand_cidr(_text(fields.pop("cidr", "")), force=force or bool(fields.pop("force", False))))
        except _RowError as exc:
            collector.problem(line, str(exc))
            continue
        for host in hosts:
            collector.add(line, {**defaults, **fields, "host": host})


def expand_cidr(cidr: str, *, force: bool = False) -> Iterator[str]:
    """The host addresses of ``cidr``; refuses ranges larger than /16 (IPv4) unless ``force``."""
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise _RowError(f"not a CIDR range: {exc}") from None
    host_bits = network.max_prefixlen - network.prefixlen
    if host_bits > 32 - MAX_PREFIX_WITHOUT_FORCE and not force:
        raise _RowError(f"range {cidr} has {network.num_addresses} addresses; larger than /16 needs force")
    return (str(address) for address in (network.hosts() if host_bits > 1 else iter(network)))


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
            source = ldap_source(fields)
            hosts = list(search(source, secrets or {}))
        except (_RowError, SourceError) as exc:
            collector.problem(line, str(exc))
            continue
        except Exception as exc:  # ldap3 raises many unrelated types; this source alone is skipped
            collector.problem(line, f"LDAP search {fields.get('url')!r} failed: {' '.join(str(exc).split())}")
            continue
        host_fields = {k: v for k, v in fields.items() if k in CSV_COLUMNS}
        for host in hosts:
            collector.add(line, {**defaults, **host_fields, "host": host})


# --- shards ------------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) as a tuple; raises ``ValueError`` with a short reason."""
    k_text, sep, n_text = text.partition("/")
    if not sep or not k_text.isdigit() or not n_text.isdigit() or not 1 <= int(k_text) <= int(n_text):
        raise ValueError(f"shard must be K/N with 1 <= K <= N, got {text!r}")
    return int(k_text), int(n_text)


def shard_index(host: str, count: int) -> int:
    """A stable 1-based shard number for ``host``: same on every machine and every run."""
    digest = hashlib.blake2b(host.lower().encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count + 1


def select_shard(targets: Iterable[Target], shard: tuple[int, int] | None) -> tuple[Target, ...]:
    if shard is None:
        return tuple(targets)
    k, n = shard
    return tuple(t for t in targets if shard_index(t.host, n) == k)
