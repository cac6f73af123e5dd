"""A filter means the same as a dashboard URL and as ``collectors export`` options: the same rows come out.

The dashboard parses its URL with ``HostFilter.from_params`` and its download button writes
``models.export.csv_bytes``; the CLI takes one option per criterion (or the URL itself with ``--filter``).
Each case below is written both ways by hand, as a user would type it, and the CSVs are compared.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from models import db
from models.export import csv_bytes
from models.filters import CRITERIA, HostFilter
from models.seed import seed_fleet

ROOT = Path(__file__).resolve().parents[2]

CASES = [
    ("code=0xC004F074&type=KMS+client", ["--error-code", "0xC004F074", "--activation-type", "KMS client"]),
    ("code=C004F038&code=0x8007232B&status=OOBGrace", ["--error-code", "C004F038", "--error-code", "0x8007232B",
                                                       "--status", "OOBGrace"]),
    ("status=RenewalFailing&unactivated=1&at_risk=1", ["--status", "RenewalFailing", "--unactivated",
                                                       "--include-at-risk"]),
    ("site=Taipei&site=Hsinchu&product=workstation", ["--site", "Taipei", "--site", "Hsinchu",
                                                      "--product-type", "workstation"]),
    ("failure=timeout&failure=auth&stale=1", ["--failure", "timeout", "--failure", "auth", "--stale-hours", "1"]),
    ("type=MAK&os=Microsoft+Windows+11+Enterprise&q=ws", ["--activation-type", "MAK",
                                                          "--os", "Microsoft Windows 11 Enterprise", "--search", "ws"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('vocabulary') / 'seeded.db'}"
    engine = db.open_database(url)
    with engine.begin() as conn:
        seed_fleet(conn, now=datetime.now(UTC).replace(microsecond=0))
    engine.dispose()
    return url


def dashboard_rows(url: str, query: str) -> list[dict[str, str]]:
    flt, rejected = HostFilter.from_params(parse_qs(query))
    assert rejected == []
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return rows_of(csv_bytes(conn, flt))
    finally:
        engine.dispose()


def cli_rows(url: str, args: list[str]) -> list[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    done = subprocess.run(
        [sys.executable, "-m", "collectors", "export", *args, "--db", url],
        capture_output=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return rows_of(done.stdout)


def rows_of(content: bytes) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    for row in rows:  # aged from "now", which two processes read a moment apart
        row.pop("grace_days_remaining")
    return rows


@pytest.mark.parametrize(("query", "flags"), CASES, ids=[q for q, _ in CASES])
def test_a_dashboard_url_and_the_same_cli_options_export_the_same_rows(seeded, query, flags):
    from_url = dashboard_rows(seeded, query)
    assert cli_rows(seeded, flags) == from_url
    assert cli_rows(seeded, ["--filter", query]) == from_url
    # the address bar as pasted: scheme, host, page, the query and the view's own keys
    pasted = f"https://activation.corp.example/hosts?{query}&lang=zh-TW&page=1"
    assert cli_rows(seeded, ["--filter", pasted]) == from_url


def test_the_cases_select_hosts_and_cover_every_criterion(seeded):
    assert sum(bool(dashboard_rows(seeded, query)) for query, _ in CASES) >= len(CASES) - 1
    used = {key for query, _ in CASES for key in parse_qs(query)}
    assert used == {c.key for c in CRITERIA}


def test_every_criterion_is_an_export_option_and_a_url_key():
    done = subprocess.run([sys.executable, "-m", "collectors", "export", "--help"], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "200"}, timeout=60)  # fmt: skip
    assert done.returncode == 0
    samples = {"values": "0xC004F074", "hours": "5", "text": "ws", "flag": "1"}
    for c in CRITERIA:
        assert c.option in done.stdout, c.option
        raw = c.choices[-1] if c.choices else samples[c.kind]
        flt, rejected = HostFilter.from_params({c.key: [raw]})
        assert rejected == [] and flt != HostFilter(), c.key
        assert HostFilter.from_params(flt.to_params()) == (flt, []), c.key
