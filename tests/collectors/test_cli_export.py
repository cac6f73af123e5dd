"""``python -m collectors export`` reproduces every dashboard filter, byte for byte."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models import db
from models.enums import ActivationType, FailureClass, LicenseStatus, ProductType
from models.export import csv_bytes
from models.filters import HostFilter
from models.seed import seed_fleet
from tests.collectors.helpers import poll

ROOT = Path(__file__).resolve().parents[2]


def export(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    env = {**base, "ACTIVATION_DATA_DIR": str(tmp_path / "data"), "ACTIVATION_CONFIG": ""}
    return subprocess.run(
        [sys.executable, "-m", "collectors", "export", *args], capture_output=True, env=env, cwd=ROOT, timeout=120
    )


@pytest.fixture(scope="module")
def polled_db(http_fleet, tmp_path_factory) -> str:
    workdir = tmp_path_factory.mktemp("export")
    url = f"sqlite:///{workdir}/activation-monitor.db"
    poll(http_fleet, url, workdir / "spool")
    return url


def expected_csv(url: str, flt: HostFilter, lang: str = "en") -> bytes:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return csv_bytes(conn, flt, lang=lang)
    finally:
        engine.dispose()


CASES = [
    (["--filter", "code=0xC004F074&site=Taipei"], HostFilter(error_codes=("0xC004F074",), sites=("Taipei",))),
    (["--filter", "?type=KMS+client&code=c004f074"], HostFilter(
        error_codes=("0xC004F074",), activation_types=(ActivationType.KMS_CLIENT,))),
    (["--status", "Unlicensed", "--status", "Notification"], HostFilter(
        license_statuses=(LicenseStatus.UNLICENSED, LicenseStatus.NOTIFICATION))),
    (["--product-type", "server"], HostFilter(product_types=(ProductType.SERVER,))),
    (["--failure", "timeout", "--failure", "protocol"], HostFilter(
        failure_classes=(FailureClass.TIMEOUT, FailureClass.PROTOCOL))),
    (["--site", "Hsinchu", "--os", "Microsoft Windows 11 Enterprise"], HostFilter(
        sites=("Hsinchu",), os_captions=("Microsoft Windows 11 Enterprise",))),
    (["--stale-hours", "1"], HostFilter(stale_hours=1)),
    (["--search", "KMS"], HostFilter(search="KMS")),
    (["--error-code", "0xC004F074", "--filter", "site=Taipei&failure=timeout"], HostFilter(
        error_codes=("0xC004F074",), sites=("Taipei",), failure_classes=(FailureClass.TIMEOUT,))),
]  # fmt: skip


@pytest.mark.parametrize(("args", "flt"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_cli_csv_equals_the_dashboard_export(polled_db, tmp_path, args, flt):
    out = tmp_path / "export.csv"
    run = export([*args, "--db", polled_db, "--output", str(out)], tmp_path)
    assert run.returncode == 0, run.stderr.decode()
    assert out.read_bytes() == expected_csv(polled_db, flt)


def test_the_filters_select_something(polled_db):
    # The cases above would prove little if every filter matched nothing.
    assert expected_csv(polled_db, HostFilter(error_codes=("0xC004F074",))).count(b"\r\n") > 1
    assert expected_csv(polled_db, HostFilter(failure_classes=(FailureClass.TIMEOUT,))).count(b"\r\n") > 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--filter", "code=0xZZZ"], "--error-code: not an error code: '0xZZZ'"),
        (["--filter", "colour=red"], "--filter: unknown key 'colour'"),
        (["--status", "Activated"], "--status: not a license status"),
        (["--product-type", "laptop"], "--product-type: not a product type"),
        (["--failure", "flaky"], "--failure: not a failure class"),
        (["--stale-hours", "0"], "--stale-hours: not a number of hours"),
        (["--stale-hours", "abc"], "--stale-hours: not a number of hours"),
        (["--stale-hours", "5", "--filter", "stale=24"], "--stale-hours: given more than once"),
        (["--search", "ws", "--filter", "q=kms"], "--search: given more than once"),
        (["--lang", "fr"], "--lang: not a language of the export: 'fr'"),
    ],
)
def test_unknown_filter_values_are_one_line_with_exit_2(tmp_path, args, message):
    run = export([*args, "--db", f"sqlite:///{tmp_path}/x.db"], tmp_path)
    stderr = run.stderr.decode()
    assert run.returncode == 2, stderr
    assert message in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_a_url_copied_from_the_dashboard_is_accepted(polled_db, tmp_path):
    out = tmp_path / "export.csv"
    query = "code=0xC004F074&site=Taipei&lang=zh-TW&page=2"
    run = export(["--filter", query, "--db", polled_db, "--output", str(out)], tmp_path)
    assert run.returncode == 0, run.stderr.decode()
    assert out.read_bytes() == expected_csv(polled_db, HostFilter(error_codes=("0xC004F074",), sites=("Taipei",)))


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('export-seeded')}/activation-monitor.db"
    engine = db.open_database(url)
    with engine.begin() as conn:
        seed_fleet(conn, now=datetime.now(UTC).replace(microsecond=0), days=1)
    engine.dispose()
    return url


def csv_rows(content: bytes) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.reader(io.StringIO(content.decode("utf-8-sig")))
    header = next(reader)
    return header, [dict(zip(header, row, strict=True)) for row in reader]


@pytest.mark.parametrize("spelling", ["zh-TW", "zh_tw"])
def test_lang_gives_error_titles_in_that_language_under_the_same_columns(seeded_db, tmp_path, spelling):
    out, default = tmp_path / "zh.csv", tmp_path / "en.csv"
    run = export(["--lang", spelling, "--db", seeded_db, "--output", str(out)], tmp_path)
    assert run.returncode == 0, run.stderr.decode()
    assert export(["--db", seeded_db, "--output", str(default)], tmp_path).returncode == 0
    assert out.read_bytes() == expected_csv(seeded_db, HostFilter(), "zh-TW")
    assert default.read_bytes() == expected_csv(seeded_db, HostFilter())
    header, chinese = csv_rows(out.read_bytes())
    en_header, english = csv_rows(default.read_bytes())
    assert header == en_header
    assert [r["error_code"] for r in chinese] == [r["error_code"] for r in english]
    pairs = zip(chinese, english, strict=True)
    titles = [(zh["error_title"], en["error_title"]) for zh, en in pairs if zh["error_code"]]
    assert titles and all(re.search(r"[\u4e00-\u9fff]", zh) and zh != en for zh, en in titles)
