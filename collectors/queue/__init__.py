"""Polling on a PostgreSQL job queue (procrastinate): many workers share each run, one queue per site.

schedule: inventory -> batches per site (``plan``) -> a run claimed for its slot, its batches deferred as jobs
          (``schedule``, in one transaction)
worker:   procrastinate worker (``worker``) -> one batch: the poller's threads under host locks, results
          spooled then written once under the batch key (``batch``) -> the run closed by its last batch,
          stalled jobs retried, spooled batches replayed (``accounting``)
"""

from collectors.queue.app import QueueError, make_app, queue_name, queue_names, require_postgresql
from collectors.queue.plan import parse_every, plan_batches, run_key, slot_start
from collectors.queue.schedule import Enqueued, ScheduleOptions, enqueue_run, serve_schedule
from collectors.queue.worker import WorkerOptions, run_workers

__all__ = [
    "Enqueued",
    "QueueError",
    "ScheduleOptions",
    "WorkerOptions",
    "enqueue_run",
    "make_app",
    "parse_every",
    "plan_batches",
    "queue_name",
    "queue_names",
    "require_postgresql",
    "run_key",
    "run_workers",
    "serve_schedule",
    "slot_start",
]
