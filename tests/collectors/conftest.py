"""Fixtures for the collector tests: simulated fleets (real WS-Management over loopback).

``http_fleet`` keeps Windows' default WinRM service settings (Negotiate and Kerberos, no Basic,
no unencrypted traffic); ``https_fleet`` also enables Basic, as a fleet polled over HTTPS with local
accounts would; ``lab_http_fleet`` allows Basic and unencrypted messages over plain HTTP, as a lab
configured with ``winrm quickconfig`` plus ``AllowUnencrypted`` does, so a test proxy can read the WQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator.scenario import WinrmService
from simulator.testing import FleetHandle, running_fleet


@pytest.fixture(scope="module")
def http_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    with running_fleet(hosts=60, seed=7, workdir=tmp_path_factory.mktemp("http_fleet")) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def https_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    with running_fleet(
        hosts=40, seed=11, https=True, winrm=WinrmService(basic=True), workdir=tmp_path_factory.mktemp("https_fleet")
    ) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def lab_http_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    lab = WinrmService(basic=True, allow_unencrypted=True)
    with running_fleet(hosts=60, seed=7, winrm=lab, workdir=tmp_path_factory.mktemp("lab_http_fleet")) as fleet:
        yield fleet
