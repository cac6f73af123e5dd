"""Planning a queued run: the inventory split into batches, one queue per site, and the schedule slot it fills.

Batches are cut per queue from the hosts in a stable order (by host key), so the same inventory gives the same
batches every slot. A slot is a fixed interval counted from the Unix epoch; its run key names it, so every
scheduler with the same interval agrees on which run a moment belongs to.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collectors.inventory import Target
from collectors.names import host_key
from collectors.queue.app import queue_name
from models.batches import BatchPlan

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_EVERY_S = 31 * 86400


@dataclass(frozen=True, slots=True)
class PlannedBatch:
    plan: BatchPlan
    targets: tuple[Target, ...]


def plan_batches(targets: Iterable[Target], batch_size: int) -> list[PlannedBatch]:
    """Hosts grouped by queue (site), each group cut into batches of at most ``batch_size``, numbered from 1."""
    by_queue: dict[str, list[Target]] = {}
    sites: dict[str, str | None] = {}
    for target in targets:
        queue = queue_name(target.site)
        by_queue.setdefault(queue, []).append(target)
        sites.setdefault(queue, target.site)
    planned: list[PlannedBatch] = []
    for queue in sorted(by_queue):
        hosts = sorted(by_queue[queue], key=lambda t: host_key(t.host))
        for start in range(0, len(hosts), batch_size):
            chunk = tuple(hosts[start : start + batch_size])
            planned.append(PlannedBatch(BatchPlan(len(planned) + 1, queue, sites[queue], len(chunk)), chunk))
    return planned


def parse_every(text: str) -> int:
    """``90s``, ``15m``, ``1h``, ``1d`` or plain seconds as whole seconds; raises ``ValueError``."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*", text.lower())
    if not match:
        raise ValueError(f"--every {text!r}: expected a duration such as 90s, 15m, 1h or 1d")
    seconds = math.ceil(float(match.group(1)) * UNITS[match.group(2) or "s"])
    if not 60 <= seconds <= MAX_EVERY_S:
        raise ValueError(f"--every {text!r}: must be between 1 minute and 31 days")
    return seconds


def slot_start(now: datetime, every_s: int) -> datetime:
    """The start of the schedule slot ``now`` falls in (slots of ``every_s`` seconds from the epoch, UTC)."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % every_s, UTC)


def next_slot(now: datetime, every_s: int) -> datetime:
    return slot_start(now, every_s) + timedelta(seconds=every_s)


def run_key(slot: datetime, every_s: int) -> str:
    """The name of a slot's run: every scheduler with the same interval derives the same one."""
    return f"every-{every_s}s-from-{slot.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def queues_of(planned: Sequence[PlannedBatch]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.plan.queue for p in planned))
