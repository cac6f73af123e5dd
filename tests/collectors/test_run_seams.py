"""The seams of a poll run that other code builds on: the one deadline type, the one name lookup, both
dispatchers behind one protocol, and the run state's counting."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from collectors.credentials import Credential
from collectors.deadline import Deadline, OutOfTime
from collectors.errors import PollTimeout
from collectors.inventory import Target
from collectors.probes import Probes
from collectors.resolve import PendingLookup
from collectors.run import PollContext, RunState, RunSummary
from collectors.run.dispatch import Dispatcher, ProcessDispatcher, ThreadDispatcher
from collectors.transport import WsmanOptions
from models.enums import ActivationType, FailureClass, LicenseStatus
from models.records import HostFailure, HostObservation, HostResult, ProductState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_deadline_runs_on_its_own_clock_and_cuts_steps_to_what_is_left():
    clock = Clock()
    deadline = Deadline(10.0, clock)
    assert deadline.step(3.0).seconds == 3.0 and not deadline.step(3.0).cut
    clock.now += 8.5
    step = deadline.step(3.0)
    assert step.seconds == pytest.approx(1.5) and step.cut  # the deadline, not the step's timeout, set it
    assert deadline.at_least(1.0) is deadline
    later = deadline.at_least(5.0)
    assert later.remaining() == pytest.approx(5.0)  # a last moment for the host's checks
    clock.now += 2.0
    with pytest.raises(OutOfTime):
        deadline.step(1.0)
    with pytest.raises(PollTimeout, match="host deadline of 10s exceeded while reading"):
        deadline.check("reading")


def test_a_slow_lookup_is_waited_on_for_the_time_given_and_shared():
    release = threading.Event()
    asked: list[str] = []

    def slow(host: str) -> str:
        asked.append(host)
        release.wait(5)
        return "192.0.2.7"

    pending = PendingLookup("kms01.corp.test", slow)
    started = time.monotonic()
    assert pending.wait(0.1) is False and time.monotonic() - started < 1.0
    release.set()
    assert pending.wait(2.0) and pending.address == "192.0.2.7" and asked == ["kms01.corp.test"]

    def broken(host: str) -> str:
        raise OSError(-2, "Name or service not known")

    failed = PendingLookup("nowhere.invalid", broken)
    assert failed.wait(2.0) and failed.address is None
    assert failed.error == "nowhere.invalid does not resolve: Name or service not known"


def refused_targets(n: int) -> list[Target]:
    return [Target(f"127.0.0.{i + 1}", 1) for i in range(n)]  # nothing listens on port 1


def context() -> PollContext:
    credential = Credential("default", "someone", SecretStr("not-used"))
    options = WsmanOptions(connect_timeout_s=1.0, read_timeout_s=2.0)
    return PollContext({"default": credential}, Probes(connect_timeout_s=0.5), options=options, host_timeout_s=3.0)


def drain(dispatcher: Dispatcher) -> tuple[list[HostResult], int]:
    dispatcher.start()
    running, finished, results = dispatcher.workers, 0, []
    deadline = time.monotonic() + 60
    while running and time.monotonic() < deadline:
        for item in dispatcher.items(0.2):
            if item is None:
                running -= 1
                finished += 1
            else:
                results.append(item)
    dispatcher.close()
    return results, finished


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_both_dispatchers_deliver_every_host_once_and_say_when_each_worker_is_done(kind):
    targets = refused_targets(6)
    dispatcher: Dispatcher = (
        ThreadDispatcher(targets, context(), 3) if kind == "threads" else ProcessDispatcher(targets, context(), 4, 2)
    )
    results, finished = drain(dispatcher)
    assert sorted(r.host for r in results) == sorted(t.host for t in targets)
    assert all(isinstance(r, HostFailure) and r.failure_class is FailureClass.REFUSED for r in results)
    assert finished == dispatcher.workers == (3 if kind == "threads" else 2)


def test_a_stopped_dispatcher_hands_out_no_more_hosts():
    dispatcher = ThreadDispatcher(refused_targets(50), context(), 1)
    dispatcher.request_stop()
    results, finished = drain(dispatcher)
    assert results == [] and finished == 1


def test_the_run_state_counts_each_host_by_the_state_people_read():
    now = datetime(2026, 11, 26, tzinfo=UTC)
    seen = []
    state = RunState(context(), RunSummary(hosts_total=3), started=time.monotonic(), on_progress=seen.append)
    renewal = ProductState("p", ActivationType.KMS_CLIENT, LicenseStatus.LICENSED, error_code="0x800706BA",
                           renewal_failing=True)  # fmt: skip
    state.accept(HostObservation("a", now, "A", "corp.test", "W11", "10.0", None, 0.0, (renewal,)))
    state.accept(HostObservation("b", now, "B", "corp.test", "W11", "10.0", None, 0.0, ()))
    state.accept(HostFailure("c", now, FailureClass.TIMEOUT, "host deadline of 30s exceeded"))
    summary = state.summary
    assert dict(summary.license_statuses) == {"RenewalFailing": 1, "Unlicensed": 1}  # no key: Unlicensed
    assert dict(summary.failures) == {"timeout": 1} and summary.error_codes["0x800706BA"] == 1
    assert [p.done for p in seen] == [1, 2, 3] and seen[-1].failed == 1
    assert [r.host for r in state.take_pending()] == ["a", "b", "c"] and state.pending == []
