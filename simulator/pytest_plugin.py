"""pytest fixtures over ``simulator.testing``: a shared fleet per session and fresh ones on demand.

Register with ``pytest_plugins = ["simulator.pytest_plugin"]``. ``sim_fleet`` is a session-wide
60-host HTTP fleet whose WinRM service allows Basic and unencrypted messages (a lab configuration:
``winrm quickconfig`` plus ``AllowUnencrypted``), so tests can read the SOAP in clear;
``sim_fleet_https`` the same over HTTPS with its own CA; ``sim_fleet_factory`` starts a private fleet
(Windows' default service settings unless told otherwise) for tests that advance the scenario or
need a particular size or configuration, stopped at the end of the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.scenario import WinrmService
from simulator.testing import FleetHandle, running_fleet

LAB = WinrmService(basic=True, allow_unencrypted=True)


@pytest.fixture(scope="session")
def sim_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    """A 60-host HTTP lab fleet (Basic and unencrypted allowed) shared by the whole session; do not advance it."""
    with running_fleet(hosts=60, seed=7, winrm=LAB, workdir=tmp_path_factory.mktemp("sim_fleet")) as fleet:
        yield fleet


@pytest.fixture(scope="session")
def sim_fleet_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    """A 60-host HTTPS fleet shared by the session; trust ``ca_path`` to validate it."""
    with running_fleet(
        hosts=60, seed=7, https=True, winrm=LAB, workdir=tmp_path_factory.mktemp("sim_fleet_https")
    ) as fleet:
        yield fleet


@pytest.fixture
def sim_fleet_factory(tmp_path: Path) -> Iterator[Callable[..., FleetHandle]]:
    """Start private fleets: ``sim_fleet_factory(hosts=20, seed=3, https=False, ...)``."""
    with contextlib.ExitStack() as stack:
        counter = iter(range(1_000_000))

        def start(**kwargs: Any) -> FleetHandle:
            workdir = tmp_path / f"fleet{next(counter)}"
            workdir.mkdir()
            return stack.enter_context(running_fleet(workdir=workdir, **kwargs))

        yield start
