"""Host names are resolved within the host's deadline; the connection keeps the name for HTTP and TLS."""

from __future__ import annotations

import dataclasses
import functools
import threading
import time

import pytest

from collectors.inventory import Target, load_inventory
from collectors.run import poll_host
from collectors.wsman import open_protocol
from models.enums import FailureClass
from models.records import HostFailure, HostObservation
from tests.collectors.helpers import fleet_context


def healthy(fleet) -> dict:
    return next(t for t in fleet.truth if not t["poll_error"] and not t["fault"])


def with_resolver(ctx, resolver, **changes):
    return dataclasses.replace(ctx, protocol_factory=functools.partial(open_protocol, resolver=resolver), **changes)


def fleet_targets(fleet) -> dict[str, Target]:
    return {t.host: t for t in load_inventory(fleet.inventory_path).targets}


def test_name_that_does_not_exist_is_a_dns_failure(http_fleet):
    result = poll_host(Target("ws01.corp.invalid", 5985), fleet_context(http_fleet))
    assert isinstance(result, HostFailure)
    assert result.failure_class is FailureClass.DNS
    assert "ws01.corp.invalid does not resolve" in result.reason


def test_a_resolver_that_hangs_cannot_hold_the_host_beyond_its_deadline(http_fleet):
    release = threading.Event()

    def stuck(host: str) -> str:
        release.wait(30)
        return "127.0.0.1"

    ctx = with_resolver(fleet_context(http_fleet), stuck, host_timeout_s=1.0)
    started = time.monotonic()
    try:
        result = poll_host(Target("slow.corp.test", 5985), ctx)
    finally:
        release.set()
    assert time.monotonic() - started < 2.5
    assert isinstance(result, HostFailure) and result.failure_class is FailureClass.DNS
    assert "within the host deadline" in result.reason


def test_host_name_is_polled_at_the_address_it_resolves_to(http_fleet):
    host = healthy(http_fleet)
    target = fleet_targets(http_fleet)[host["host"]]
    asked: list[str] = []

    def resolver(name: str) -> str:
        asked.append(name)
        return host["host"]

    ctx = with_resolver(fleet_context(http_fleet), resolver)
    result = poll_host(Target("pc-by-name.corp.test", target.port), ctx)
    assert asked == ["pc-by-name.corp.test"]
    assert isinstance(result, HostObservation)
    assert result.host == "pc-by-name.corp.test"
    assert result.computer_name == host["computer_name"]


@pytest.mark.parametrize(("name", "failure"), [("localhost", None), ("pc-not-in-cert.corp.test", FailureClass.TLS)])
def test_certificate_is_checked_against_the_host_name_not_the_address(https_fleet, name, failure):
    # The simulator's certificates name the loopback addresses and "localhost", never corp.test names.
    host = healthy(https_fleet)
    target = fleet_targets(https_fleet)[host["host"]]
    ctx = with_resolver(fleet_context(https_fleet), lambda n: host["host"])
    result = poll_host(Target(name, target.port, "https"), ctx)
    if failure is None:
        assert isinstance(result, HostObservation), result
    else:
        assert isinstance(result, HostFailure) and result.failure_class is failure, result


def test_polling_leaves_the_process_environment_alone(http_fleet, monkeypatch):
    # requests writes os.environ["no_proxy"] around proxy lookups unless told not to; threads polling
    # at once then race on it and a host fails with a KeyError.
    writes: list[str] = []
    environ_type = type(__import__("os").environ)
    original_set, original_del = environ_type.__setitem__, environ_type.__delitem__

    def record_set(self, key, value):
        writes.append(key)
        original_set(self, key, value)

    def record_del(self, key):
        writes.append(key)
        original_del(self, key)

    monkeypatch.setattr(environ_type, "__setitem__", record_set)
    monkeypatch.setattr(environ_type, "__delitem__", record_del)
    targets = list(fleet_targets(http_fleet).values())[:3]
    results = [poll_host(t, fleet_context(http_fleet)) for t in targets]
    monkeypatch.undo()
    assert results and writes == []
