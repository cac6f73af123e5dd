"""The KMS hosts page in a real Chromium, 1280 and 1920 px wide, in English and Traditional Chinese, on the fleet
the collector polled from the simulator: the table's key columns are on screen without scrolling sideways, and
every KMS host's health state is written in the table and on the chart, matching what the simulator staged
(a switched-off host is unreachable, an unlicensed one not activated, the Office one Office only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from knowledge.kms_health import KmsHealth
from models import kms
from tests.e2e.browser_app import Dashboard
from ui import tables

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SETTLE_MS = 1500
# The grid draws on a canvas; its own API gives each header's box on screen (row -1 is the header row).
HEADER_BOXES = """(grid, columns) => {
  const canvas = grid.querySelector('canvas[data-testid="data-grid-canvas"]');
  const fiberKey = Object.keys(canvas).find(key => key.startsWith('__reactFiber$'));
  for (let fiber = canvas[fiberKey]; fiber; fiber = fiber.return) {
    const ref = fiber.memoizedProps && fiber.memoizedProps.gridRef;
    if (ref && ref.current && typeof ref.current.getBounds === 'function') {
      return Array.from({length: columns}, (_, column) => {
        const box = ref.current.getBounds(column, -1);
        return box ? {x: box.x, y: box.y, width: box.width, height: box.height} : null;
      });
    }
  }
  return null;
}"""
# The grid keeps an accessible copy of the rows it draws: host and state are its first two cells.
ROWS = """grid => Array.from(grid.querySelectorAll('tbody tr')).map(
  row => Array.from(row.querySelectorAll('td')).slice(0, 2).map(cell => cell.textContent))"""


def settle(page: Any, test_id: str) -> None:
    page.get_by_test_id(test_id).first.wait_for()
    page.wait_for_function(
        '() => !document.querySelector(\'[data-testid="stStatusWidget"] [data-testid="stSpinner"]\')'
    )
    page.wait_for_timeout(SETTLE_MS)


@pytest.fixture(scope="module")
def states(dashboard: Dashboard) -> dict[str, KmsHealth]:
    """Inventory name -> the health state the query gives each KMS host of the polled fleet."""
    engine = create_engine(dashboard.db_url)
    try:
        with engine.connect() as conn:
            frame = kms.kms_hosts(conn)
    finally:
        engine.dispose()
    return {str(host): KmsHealth(state) for host, state in zip(frame["host"], frame["state"], strict=True)}


def test_the_simulated_kms_hosts_get_the_states_the_simulator_staged(dashboard: Dashboard, states) -> None:
    truth = {row["host"]: row for row in dashboard.truth if row["kms_role"]}
    assert set(states) == set(truth)  # the switched-off KMS host is listed too, not dropped for lack of counters
    for host, row in truth.items():
        if row["poll_error"]:
            assert states[host] is KmsHealth.UNREACHABLE, row["name"]
        elif row["kms_role"] == "windows" and row["license_status"] != "Licensed":
            assert states[host] is KmsHealth.NOT_ACTIVATED, row["name"]
        elif row["kms_role"] == "office":
            assert states[host] in (KmsHealth.OFFICE_ONLY, KmsHealth.CLIENTS_FAILING), row["name"]
    assert KmsHealth.NOT_LISTENING in states.values()  # the simulator's host whose KMS port is closed


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
@pytest.mark.parametrize("width", [1280, 1920])
def test_key_columns_fit_on_screen_and_every_state_is_in_words(
    dashboard: Dashboard, chromium: Any, artifacts: Path, states, width: int, lang: str
) -> None:
    context = chromium.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        page.goto(f"{dashboard.url}/kms_hosts?lang={lang}")
        settle(page, "stDataFrame")
        grid = page.get_by_test_id("stDataFrame").first
        grid.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / f"kms_health_{width}_{lang}.png"))

        visible = grid.bounding_box()
        headers = grid.evaluate(HEADER_BOXES, len(tables.KMS_KEY_COLUMNS))
        assert headers is not None and None not in headers, "the grid gave no header boxes"
        for column, box in zip(tables.KMS_KEY_COLUMNS, headers, strict=True):
            assert box["width"] > 0, column
            assert visible["x"] <= box["x"] and box["x"] + box["width"] <= visible["x"] + visible["width"], (
                f"{column} header {box} is clipped by the grid's visible box {visible}"
            )
        assert grid.evaluate("g => g.querySelector('.dvn-scroller').scrollLeft") == 0

        shown = dict(grid.evaluate(ROWS))
        assert len(shown) == min(len(states), 10)  # the rows the grid draws without scrolling
        assert {host: shown[host] for host in shown} == {host: states[host].words(lang) for host in shown}

        chart = page.get_by_test_id("stPlotlyChart").first
        bar_texts = chart.locator("text.bartext").all_text_contents()
        for state in set(states.values()):
            assert any(text.endswith(f" · {state.words(lang)}") for text in bar_texts), (state, bar_texts)
    finally:
        context.close()
