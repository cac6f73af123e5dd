"""Helpers that drive the dashboard with ``streamlit.testing.v1.AppTest`` through its router."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = str(ROOT / "dashboard.py")
# The machine is shared; a page's first run also migrates the database.
TIMEOUT_S = 90


def app(**query: str) -> AppTest:
    """The dashboard through its router, not yet run; ``query`` becomes the URL's query string."""
    at = AppTest.from_file(DASHBOARD, default_timeout=TIMEOUT_S)
    for key, value in query.items():
        at.query_params[key] = value
    return at


def open_page(page: str, **query: str) -> AppTest:
    """Run the app once, switch to ``page`` (e.g. ``ui/pages/hosts.py``) and run it."""
    at = app(**query).run()
    assert not at.exception, at.exception
    return at.switch_page(page).run()


def frame(at: AppTest, column: str) -> pd.DataFrame:
    """The frame of the first ``st.dataframe`` on the page that has ``column``."""
    frames = [df.value for df in at.dataframe]
    found = next((f for f in frames if column in f.columns), None)
    assert found is not None, f"no table with a {column!r} column among {[list(f.columns) for f in frames]}"
    return found


def chart_specs(at: AppTest) -> list[dict[str, Any]]:
    """The plotly figures on the page, as the JSON the browser receives."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
