"""The local spool: result batches the database could not take, kept on disk until it can.

Each batch is one fsynced JSON file named by time and its uuid ``batch_id``, written atomically
(temporary file, then rename). Replay writes batches back oldest first through the same store call;
``models.store.write_results`` ignores a batch id already applied, so a batch replayed twice is
counted once. A batch file is removed only after its write committed; a file that cannot be decoded is
logged once and moved to ``bad/`` inside the spool, where it waits for a person.

A spool belongs to one database: ``Spool.for_database`` keeps its batches in a folder named by a hash of
the database URL without its password, so results spooled for one database are never replayed into
another; ``elsewhere`` lists the folders that wait for other databases, for the command to say so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from collectors.errors import SpoolError
from models.enums import ActivationType, FailureClass, LicenseStatus, ProductType, Severity
from models.records import Finding, HostFailure, HostObservation, HostResult, KmsHostCounters, ProductState

FORMAT_VERSION = 1
BAD_DIR = "bad"
DEAD_DIR = "set-aside"
log = logging.getLogger("collectors")


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    batch_id: str
    run_id: int | None
    results: tuple[HostResult, ...]
    path: Path | None = None


class Spool:
    """A folder of pending result batches."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_database(cls, base: Path, database_url: str) -> Spool:
        """The spool of ``database_url`` under ``base`` (its own folder, named by ``database_identity``)."""
        return cls(base / database_identity(database_url))

    def elsewhere(self) -> list[tuple[Path, int]]:
        """Sibling spools (other databases') that hold batches, with how many: they are never replayed here."""
        parent = self.directory.parent
        if not parent.is_dir():
            return []
        others = [Spool(p) for p in sorted(parent.iterdir()) if p.is_dir() and p != self.directory]
        # batches spooled before spools were kept per database wait in the parent itself
        return [(spool.directory, n) for spool in (Spool(parent), *others) if (n := spool.count())]

    def write(self, batch: SpooledBatch) -> Path:
        """Store ``batch`` durably; raises ``SpoolError`` when the disk refuses."""
        payload = {
            "version": FORMAT_VERSION,
            "batch_id": batch.batch_id,
            "run_id": batch.run_id,
            "results": [{"kind": _kind(r), **asdict(r)} for r in batch.results],
        }
        target = self.directory / f"{time.time_ns():020d}-{batch.batch_id}.json"
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_durably(target, json.dumps(payload, default=_json_default).encode("utf-8"))
        except OSError as exc:
            raise SpoolError(f"cannot write spool file in {self.directory}: {exc.strerror or exc}") from exc
        return target

    def pending(self) -> Iterator[SpooledBatch]:
        """Spooled batches, oldest first; a file that cannot be decoded is set aside in ``bad/``."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.json")):
            batch = _read(path)
            if isinstance(batch, SpooledBatch):
                yield batch
            elif isinstance(batch, _Unreadable):
                log.warning("spool file %s cannot be read now (%s); it stays for the next replay", path, batch)
            else:
                self._set_aside(path, batch)

    def count(self) -> int:
        """Batches waiting for replay (files set aside as unreadable are not counted)."""
        return len(list(self.directory.glob("*.json"))) if self.directory.is_dir() else 0

    @property
    def dead_directory(self) -> Path:
        return self.directory / DEAD_DIR

    def set_aside(self, result: HostResult, reason: str) -> Path:
        """Keep one result the database refused, with the reason, apart from the batches that replay."""
        payload = {"version": FORMAT_VERSION, "reason": reason, "result": encode_result(result)}
        named = hashlib.sha256(result.host.encode("utf-8", "replace")).hexdigest()[:12]  # host text is not a file name
        target = self.dead_directory / f"{time.time_ns():020d}-{named}.json"
        try:
            self.dead_directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_durably(target, json.dumps(payload).encode("utf-8"))
        except OSError as exc:
            raise SpoolError(f"cannot write {self.dead_directory}: {exc.strerror or exc}") from exc
        return target

    @property
    def bad_directory(self) -> Path:
        return self.directory / BAD_DIR

    def _set_aside(self, path: Path, problem: str) -> None:
        # Moved, not skipped: a file left in place would be retried, and warned about, on every run.
        target = self.bad_directory / path.name
        try:
            self.bad_directory.mkdir(exist_ok=True, mode=0o700)
            path.replace(target)
        except OSError as exc:
            log.error("spool file %s cannot be read (%s) nor moved aside: %s", path, problem, exc.strerror or exc)
            return
        log.error(
            "spool file %s cannot be read (%s); moved to %s, its results are not replayed", path.name, problem, target
        )

    @staticmethod
    def remove(batch: SpooledBatch) -> None:
        if batch.path is not None:
            batch.path.unlink(missing_ok=True)


def database_identity(database_url: str) -> str:
    """A stable name for a database: a hash of its URL without the password (never the password itself)."""
    try:
        url = make_url(database_url)
        bare = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)
        shown = bare.render_as_string(hide_password=False)
    except (ArgumentError, ValueError):
        shown = database_url.split("@")[-1]  # not a URL SQLAlchemy reads: the part after any credentials
    return "db-" + hashlib.sha256(shown.strip().encode("utf-8")).hexdigest()[:16]


def _write_durably(target: Path, data: bytes) -> None:
    temporary = target.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(target)
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Unreadable(str):
    """An I/O error reading a spool file: maybe passing, so the file is kept, not set aside."""


def _read(path: Path) -> SpooledBatch | str:
    """The batch in ``path``, or why it cannot be decoded (``_Unreadable`` when the disk would not say)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return _Unreadable(exc.strerror or exc)
    try:
        payload = json.loads(text)
        results = tuple(decode_result(item) for item in payload["results"])
        return SpooledBatch(str(payload["batch_id"]), payload.get("run_id"), results, path)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"not a spooled batch: {type(exc).__name__}: {str(exc)[:120]}"


# --- codec -----------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot spool {type(value).__name__}")


def encode_result(result: HostResult) -> dict[str, Any]:
    """A JSON-ready form of ``result`` (``decode_result`` is its inverse)."""
    data: dict[str, Any] = json.loads(json.dumps({"kind": _kind(result), **asdict(result)}, default=_json_default))
    return data


def _kind(result: HostResult) -> str:
    return "observation" if isinstance(result, HostObservation) else "failure"


def decode_result(data: dict[str, Any]) -> HostResult:
    fields = {k: v for k, v in data.items() if k != "kind"}
    fields["observed_at"] = datetime.fromisoformat(fields["observed_at"])
    if data["kind"] == "failure":
        fields["failure_class"] = FailureClass(fields["failure_class"])
        return HostFailure(**fields)
    return _observation(fields)


def _observation(fields: dict[str, Any]) -> HostObservation:
    kind = fields.get("product_type")
    fields["product_type"] = ProductType(kind) if kind else None
    fields["products"] = tuple(_product(p) for p in fields.get("products") or ())
    fields["findings"] = tuple(_finding(f) for f in fields.get("findings") or ())
    kms = fields.get("kms")
    fields["kms"] = KmsHostCounters(**kms) if kms else None
    fields["unread"] = tuple(fields.get("unread") or ())
    return HostObservation(**fields)


def _product(data: dict[str, Any]) -> ProductState:
    return ProductState(
        **{
            **data,
            "activation_type": ActivationType(data["activation_type"]),
            "license_status": LicenseStatus(data["license_status"]),
        }
    )


def _finding(data: dict[str, Any]) -> Finding:
    return Finding(**{**data, "severity": Severity(data["severity"])})
