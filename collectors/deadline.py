"""The one deadline type of the collector: a budget of seconds on an injected monotonic clock.

A host gets one ``Deadline`` when its poll starts; the transport, the name lookup and the diagnosis
probes all spend from it. ``remaining`` says what is left, ``check`` raises ``PollTimeout`` when
nothing is, and ``step`` cuts a step's own timeout to what is left, saying whether the deadline (not
the step's own timeout) set the limit, so a probe cut short reports "not probed" rather than a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from collectors.errors import PollTimeout

Clock = Callable[[], float]


class OutOfTime(Exception):
    """The deadline had passed before a step could start."""


@dataclass(frozen=True, slots=True)
class Step:
    """How long one step may take: its own timeout, cut to what is left of the deadline."""

    seconds: float
    cut: bool  # the deadline, not the step's own timeout, set ``seconds``


@dataclass(slots=True)
class Deadline:
    """``seconds`` from the moment it is made, measured on ``clock``."""

    seconds: float
    clock: Clock = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.started)

    def check(self, doing: str) -> float:
        """Seconds left; raises ``PollTimeout`` when none are."""
        left = self.remaining()
        if left <= 0:
            raise PollTimeout(f"host deadline of {self.seconds:g}s exceeded while {doing}")
        return left

    def step(self, own_timeout_s: float) -> Step:
        """The time one step may take; raises ``OutOfTime`` when none is left."""
        left = self.remaining()
        if left <= 0:
            raise OutOfTime
        return Step(min(own_timeout_s, left), left < own_timeout_s)

    def at_least(self, seconds: float) -> Deadline:
        """This deadline, or ``seconds`` from now when that is later (a last moment for a host's checks)."""
        if self.remaining() >= seconds:
            return self
        return Deadline(seconds, self.clock)
