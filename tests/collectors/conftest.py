"""Fixtures for the collector tests: simulated fleets (real WS-Management over loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator.testing import FleetHandle, running_fleet


@pytest.fixture(scope="module")
def http_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    with running_fleet(hosts=60, seed=7, workdir=tmp_path_factory.mktemp("http_fleet")) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def https_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    with running_fleet(hosts=40, seed=11, https=True, workdir=tmp_path_factory.mktemp("https_fleet")) as fleet:
        yield fleet
