"""What the batches a worker process polls share: settings, the engine, the poll context, the spool, counters.

Credentials are read per batch, by the names its hosts carry, from this process's environment or secrets file
(``collectors.credentials``); every one read is added to the redacting log filter before it is used.
Each batch spools under its own folder (named by its batch key) inside this database's spool, so a batch
left there by a stopped or killed worker is replayed by whichever worker process starts next on the machine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from collectors.credentials import Credential, load_credentials, log_to_stderr
from collectors.run import PollContext
from collectors.spool import Spool
from config.settings import Settings

BATCH_SPOOL_PREFIX = "queue-"


@dataclass
class WorkerRuntime:
    settings: Settings
    engine: Engine
    lock_engine: Engine  # host lock sessions (``collectors.queue.locks.lock_engine``)
    context: PollContext  # its credentials are filled in per batch
    spool_base: Path  # this database's spool folder
    name: str
    threads: int  # hosts one batch polls at the same time
    stop: threading.Event
    batches_done: int = 0
    hosts_polled: int = 0
    active: set[str] = field(default_factory=set)  # batch keys being polled in this process
    known: dict[str, Credential] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def credentials_for(self, names: Iterable[str]) -> dict[str, Credential]:
        """The configured credentials among ``names``; raises ``CredentialError`` for a shared secrets file."""
        found = load_credentials(names, secrets_file=self.settings.secrets_file)
        with self.guard:
            fresh = {name: c for name, c in found.items() if self.known.get(name) != c}
            if fresh:
                self.known.update(fresh)
                log_to_stderr(self.known.values())
        return found

    def begin(self, key: str) -> None:
        with self.guard:
            self.active.add(key)

    def end(self, key: str, *, hosts: int | None = None) -> None:
        """The batch ``key`` is no longer polled here; ``hosts`` when it was finished with that many results."""
        with self.guard:
            self.active.discard(key)
            if hosts is not None:
                self.batches_done += 1
                self.hosts_polled += hosts

    def counters(self) -> tuple[int, int]:
        with self.guard:
            return self.batches_done, self.hosts_polled

    def batch_spool(self, key: str) -> Spool:
        return Spool(self.spool_base / key)

    def leftover_spools(self) -> list[Spool]:
        """Batch spools on this machine that no batch in this process is writing."""
        if not self.spool_base.is_dir():
            return []
        with self.guard:
            busy = set(self.active)
        found = sorted(self.spool_base.glob(f"{BATCH_SPOOL_PREFIX}*"))
        return [Spool(path) for path in found if path.is_dir() and path.name not in busy]
