"""Polling: one host (``host``), and whole runs (``run``) with their state, dispatch, writer and KMS post-pass.

inventory targets -> dispatch (threads / processes) -> host: read, classify, diagnose
                  -> state: count, keep -> writer: database or spool -> kms_pass -> run closed
"""

from collectors.run.host import ClassReader, HostReadings, PollContext, observe, poll_host, read_host, safe_poll
from collectors.run.run import close_abandoned_runs, pid_alive, run_poll
from collectors.run.state import Progress, RunOptions, RunState, RunSummary
from collectors.run.writer import ResultWriter

__all__ = [
    "ClassReader",
    "HostReadings",
    "PollContext",
    "Progress",
    "ResultWriter",
    "RunOptions",
    "RunState",
    "RunSummary",
    "close_abandoned_runs",
    "observe",
    "pid_alive",
    "poll_host",
    "read_host",
    "run_poll",
    "safe_poll",
]
