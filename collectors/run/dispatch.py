"""Who polls the hosts: worker threads in this process, or worker processes each with their own threads.

Both implement ``Dispatcher``: ``start`` them, read ``items`` (results, and ``None`` for each worker
that finished) until every worker has finished, ``request_stop`` to stop handing out hosts, ``close``.

One interpreter spends most of a host's CPU in NTLM sealing and XML under one GIL; with
``processes`` > 1 each child polls its own slice with threads and sends the ``HostResult``s back, and
the parent alone writes to the database. A child ends with its exchange counts.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from collectors.connection import COUNTER, ExchangeCounter
from collectors.credentials import log_to_stderr
from collectors.inventory import Target
from collectors.run.host import PollContext, safe_poll
from collectors.run.state import RunOptions
from models.enums import FailureClass
from models.records import HostFailure, HostResult

log = logging.getLogger("collectors")


class Dispatcher(Protocol):
    """Hands hosts to workers and their results back to the run."""

    def start(self) -> None: ...

    @property
    def workers(self) -> int:
        """How many workers were started (each sends one ``None`` when it finishes)."""
        ...

    def items(self, timeout: float, *, stopping: bool = False) -> list[HostResult | None]: ...

    def request_stop(self) -> None:
        """Hand out no more hosts; hosts in flight finish."""
        ...

    def close(self) -> None: ...


@dataclass
class ThreadDispatcher:
    """Worker threads in this process pulling targets and pushing results; ``stop`` ends dispatching."""

    targets: Iterable[Target]
    ctx: PollContext
    concurrency: int
    results: queue.Queue[HostResult | None] = field(default_factory=queue.Queue)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._iterator = iter(self.targets)
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._work, name=f"poll-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def workers(self) -> int:
        return len(self._threads)

    def request_stop(self) -> None:
        self.stop.set()

    def close(self) -> None:
        """Threads are daemons; one stuck past its deadline dies with the process."""

    def items(self, timeout: float, *, stopping: bool = False) -> list[HostResult | None]:
        """What arrived within ``timeout``: results and ``None`` for each worker that finished."""
        try:
            return [self.results.get(timeout=timeout)]
        except queue.Empty:
            return []

    def _next(self) -> Target | None:
        with self._lock:
            return None if self.stop.is_set() else next(self._iterator, None)

    def _work(self) -> None:
        try:
            while (target := self._next()) is not None:
                self.results.put(safe_poll(target, self.ctx))
        finally:
            self.results.put(None)


# --- worker processes ----------------------------------------------------------------------------

PROCESS_JOIN_S = 5.0
# Measured with bench/bench_poll.py on 2 cores, 2,000 hosts: 1 process 110.8 hosts/s, 2: 140.1,
# 3: 144.1, 4: 139.1. Starting a process costs about a second, so small runs stay in one.
AUTO_PROCESSES = 2
AUTO_PROCESSES_MIN_HOSTS = 1000


@dataclass(frozen=True, slots=True)
class _ChildDone:
    """A worker process's last message: it finished its slice; its exchange counts."""

    counter: ExchangeCounter


@dataclass
class ProcessDispatcher:
    """Child processes polling disjoint slices of the targets, each with its own threads.

    Each child has its own pipe, written only by that child, so a child that dies (killed, out of
    memory, a crash in a native library) cannot corrupt or lock another's channel. A dead child is
    noticed by the end of its pipe or, on an idle tick, by its exit code; every host of its slice
    it had not reported becomes a failure, so nothing is lost and the run does not wait for it.
    """

    targets: Sequence[Target]
    ctx: PollContext
    concurrency: int
    processes: int

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process that has threads
        self.stop: Any = context.Event()
        threads = max(1, self.concurrency // self.processes)
        count = min(self.processes, len(self.targets))
        self._unreported = [{t.host for t in self.targets[k::count]} for k in range(count)]
        self._readers: dict[Any, int] = {}
        self._children: list[Any] = []
        for k in range(count):
            reader, writer = context.Pipe(duplex=False)
            child = context.Process(
                target=_child_poll,
                args=(self.targets[k::count], self.ctx, threads, writer, self.stop),
                name=f"poll-process-{k}",
                daemon=True,
            )
            child.start()
            writer.close()  # the child holds the only write end: its death ends the pipe
            self._readers[reader] = k
            self._children.append(child)

    @property
    def workers(self) -> int:
        return len(self._children)

    def items(self, timeout: float, *, stopping: bool = False) -> list[HostResult | None]:
        """Results that arrived within ``timeout``, and ``None`` for each child that finished or died.

        While ``stopping``, a dead child's unreported hosts are abandoned like those of live children.
        """
        exited = [r for r, k in self._readers.items() if self._children[k].exitcode is not None]
        ready = multiprocessing.connection.wait(list(self._readers), timeout)
        out: list[HostResult | None] = []
        for reader in ready:
            out.extend(self._receive(reader, stopping))
        if not ready:
            # Nothing arrived although these had exited before the wait: their pipes are drained.
            for reader in exited:
                out.extend(self._lost(reader, stopping))
        return out

    def _receive(self, reader: Any, stopping: bool) -> list[HostResult | None]:
        try:
            item = reader.recv()
        except (EOFError, OSError):
            return self._lost(reader, stopping)
        if isinstance(item, _ChildDone):
            COUNTER.add(item.counter)
            self._forget(reader)
            return [None]
        self._unreported[self._readers[reader]].discard(item.host)
        return [item]

    def _lost(self, reader: Any, stopping: bool) -> list[HostResult | None]:
        """A child that ended without its last message: its unreported hosts fail; it counts as finished."""
        k = self._readers[reader]
        child = self._children[k]
        child.join(PROCESS_JOIN_S)
        self._forget(reader)
        if stopping or not self._unreported[k]:
            return [None]
        reason = f"worker process died (exit {child.exitcode})"
        log.error("%s: %d host(s) of its slice were not polled", reason, len(self._unreported[k]))
        now = self.ctx.now()
        lost = [HostFailure(host, now, FailureClass.PROTOCOL, reason) for host in sorted(self._unreported[k])]
        self._unreported[k].clear()
        return [*lost, None]

    def _forget(self, reader: Any) -> None:
        del self._readers[reader]
        reader.close()

    def request_stop(self) -> None:
        self.stop.set()

    def close(self) -> None:
        self.stop.set()
        until = time.monotonic() + PROCESS_JOIN_S
        for child in self._children:
            child.join(max(0.0, until - time.monotonic()))
            if child.is_alive():
                child.kill()  # results in flight past the grace are abandoned, as with threads
                child.join(PROCESS_JOIN_S)
        for reader in list(self._readers):
            self._forget(reader)


def _child_poll(targets: Sequence[Target], ctx: PollContext, threads: int, out: Any, stop: Any) -> None:
    """A worker process: poll ``targets`` with threads, send results, end with the exchange counts."""
    # The parent decides when to stop: Ctrl-C is the parent's, and a SIGTERM sent to the whole process
    # group (systemd, a container) only stops handing out hosts here, as it does in the parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: terminated.set())
    log_to_stderr(ctx.credentials.values())  # a spawned process starts without the parent's redacting handler
    parent = multiprocessing.parent_process()
    dispatcher = ThreadDispatcher(targets, ctx, max(1, min(threads, len(targets))))
    dispatcher.start()
    running = dispatcher.workers
    while running:
        if parent is not None and not parent.is_alive():
            _orphaned()
        if stop.is_set() or terminated.is_set():
            dispatcher.request_stop()
        try:
            item = dispatcher.results.get(timeout=0.2)
        except queue.Empty:
            continue
        if item is None:
            running -= 1
        else:
            _send(out, item)
    _send(out, _ChildDone(replace(COUNTER)))
    out.close()


def _send(out: Any, item: object) -> None:
    try:
        out.send(item)
    except OSError:  # BrokenPipeError and friends: the parent is gone
        _orphaned()


def _orphaned() -> None:
    """The parent died (killed, out of memory): nobody will take results, so stop at once and quietly.

    ``os._exit`` skips the interpreter's shutdown, which would wait for worker threads blocked on hosts
    and print their tracebacks; the threads are daemons and the host connections close with the process.
    """
    os._exit(0)


def make_dispatcher(targets: Sequence[Target], ctx: PollContext, options: RunOptions) -> Dispatcher:
    """Threads in this process, or worker processes for large runs (``RunOptions.processes``)."""
    concurrency = max(1, min(options.concurrency, len(targets) or 1))
    processes = max(1, min(_process_count(options, targets, ctx), concurrency))
    if processes == 1:
        return ThreadDispatcher(targets, ctx, concurrency)
    return ProcessDispatcher(targets, ctx, concurrency, processes)


def _process_count(options: RunOptions, targets: Sequence[Target], ctx: PollContext) -> int:
    if options.processes is not None:
        return options.processes
    if len(targets) < AUTO_PROCESSES_MIN_HOSTS or (os.cpu_count() or 1) < 2:
        return 1
    try:
        pickle.dumps(ctx)
    except (pickle.PicklingError, TypeError, AttributeError):
        return 1  # a context built from local callables cannot reach another process
    return AUTO_PROCESSES
