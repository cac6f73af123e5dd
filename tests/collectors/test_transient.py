"""A passing failure on one request (an HTTP 500 that is no SOAP fault, a reset connection) is retried once.

The retry stays within the host's deadline; a host that keeps failing still fails, with its class.
"""

from __future__ import annotations

import dataclasses

import pytest

from collectors.inventory import load_inventory
from collectors.run import poll_host
from models.enums import FailureClass
from models.records import HostFailure, HostObservation
from tests.collectors.helpers import fleet_context


def flaky(fleet, fault):
    row = next(t for t in fleet.truth if t["fault"] == fault)
    return row, next(t for t in load_inventory(fleet.inventory_path).targets if t.host == row["host"])


@pytest.mark.parametrize("fault", ["flaky_500", "flaky_reset"])
def test_a_passing_failure_is_retried_once_and_the_host_is_read(http_fleet, fault):
    row, target = flaky(http_fleet, fault)
    before = dict(http_fleet.stats)
    result = poll_host(target, fleet_context(http_fleet))
    assert isinstance(result, HostObservation), result
    assert result.products[0].license_status.value == row["license_status"]
    after = http_fleet.stats
    if fault == "flaky_reset":
        assert after["resets"] == before.get("resets", 0) + 1
        assert after["by_host"][row["name"]] > before["by_host"].get(row["name"], 0)


def test_a_host_whose_every_reply_fails_still_fails_after_one_retry(http_fleet):
    row = next(t for t in http_fleet.truth if t["fault"] == "soap_500")
    target = next(t for t in load_inventory(http_fleet.inventory_path).targets if t.host == row["host"])
    result = poll_host(target, fleet_context(http_fleet))
    assert isinstance(result, HostFailure) and result.failure_class is FailureClass.PROTOCOL


def test_no_retry_when_the_deadline_leaves_no_room(http_fleet):
    _, target = flaky(http_fleet, "flaky_reset")
    ctx = dataclasses.replace(fleet_context(http_fleet), host_timeout_s=1.0)  # under half the connect timeout left
    before = http_fleet.stats.get("resets", 0)
    result = poll_host(target, ctx)
    assert isinstance(result, HostFailure) and result.failure_class is FailureClass.REFUSED, result
    assert "reset" in result.reason or "closed" in result.reason
    assert http_fleet.stats["resets"] == before + 1
