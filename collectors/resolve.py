"""The collector's one way of turning a host name into an address within a deadline.

``getaddrinfo`` cannot be interrupted and a slow resolver would stall inside a connect, outside any
socket timeout; so each lookup runs in its own thread and whoever asks waits at most the time it has
(``PendingLookup.wait``). The poller resolves each host before connecting; the diagnosis probes share
one pending lookup per name across a run. A lookup that outlives its askers finishes on its own.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

Lookup = Callable[[str], str]


def system_lookup(host: str) -> str:
    """The first address the system resolver gives for ``host`` (raises ``OSError``)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return str(infos[0][4][0])


class PendingLookup:
    """One lookup of ``host`` running in its own thread; any number of askers wait on it."""

    def __init__(self, host: str, lookup: Lookup = system_lookup) -> None:
        self.host = host
        self.address: str | None = None
        self.error: str | None = None
        self._done = threading.Event()
        threading.Thread(target=self._run, args=(lookup,), name=f"resolve-{host[:40]}", daemon=True).start()

    def wait(self, seconds: float) -> bool:
        """Whether the lookup finished within ``seconds``; then ``address`` or ``error`` is set."""
        return self._done.wait(max(seconds, 0.0))

    def _run(self, lookup: Lookup) -> None:
        try:
            self.address = lookup(self.host)
        except Exception as exc:  # any resolver failure means "does not resolve"
            self.error = f"{self.host} does not resolve: {reason(exc)}"
        finally:
            self._done.set()


def reason(exc: BaseException) -> str:
    """A resolver error in one short line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split())[:160] or type(exc).__name__
