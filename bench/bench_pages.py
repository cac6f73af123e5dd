"""Time to content for every dashboard page on a large database, in a fresh tab and in the same tab.

Builds (or reuses, ``--db``) a SQLite database of ``--hosts`` hosts with ``--days`` of history through the real
write path (``bench.bench_queries.build``), serves ``streamlit run dashboard.py`` on a free loopback port and
drives Debian's ``/usr/bin/chromium`` with Playwright:

* fresh tab: a new browser context (no cache, no session) opens the page's URL; the clock stops when the
  page's main content has drawn (its first chart, table or metric) and the script run has finished;
* same tab: the page is reached from the sidebar of an already open dashboard (one session, warm caches).

It also reports what a fresh tab downloads (bytes of JavaScript and in total, as sent over the wire and
decoded) and whether any request left the machine.

    python bench/bench_pages.py --hosts 100000 --days 90
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_queries import build  # noqa: E402
from models import db  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# page path -> (sidebar label, what shows the page has drawn)
PAGES = {
    "": ("Overview", "stPlotlyChart"),
    "hosts": ("Hosts", "stDataFrame"),
    "kms_hosts": ("KMS hosts", "stPlotlyChart"),
    "error_codes": ("Error codes", "stHeading"),
    "poll_runs": ("Poll runs", "stPlotlyChart"),
    "alerts": ("Alerts", "stHeading"),
}
IDLE = '() => !document.querySelector(\'[data-testid="stStatusWidget"] [data-testid="stSpinner"]\')'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(db_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    env.update({"ACTIVATION_DB_URL": db_url, "ACTIVATION_DATA_DIR": str(workdir / "data")})
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(port),
         "--server.headless", "true", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):  # noqa: S310 - loopback
                return server, base
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the dashboard did not start")


def drawn(page: Any, test_id: str) -> None:
    page.get_by_test_id(test_id).first.wait_for(timeout=120_000)
    page.wait_for_function(IDLE, timeout=120_000)


def fresh_tab(browser: Any, base: str, path: str, test_id: str) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    sizes: dict[str, int] = {"js_wire": 0, "js_decoded": 0, "all_wire": 0, "all_decoded": 0}
    foreign: list[str] = []

    def finished(request: Any) -> None:
        try:
            wire = request.sizes()["responseBodySize"]
            body = len(request.response().body()) if request.response() else 0
        except Exception:  # a request without a body (websocket, aborted)
            return
        sizes["all_wire"] += max(wire, 0)
        sizes["all_decoded"] += body
        if urlsplit(request.url).path.endswith(".js"):
            sizes["js_wire"] += max(wire, 0)
            sizes["js_decoded"] += body

    page.on("requestfinished", finished)
    page.on("request", lambda r: foreign.append(r.url) if urlsplit(r.url).hostname not in ("127.0.0.1", None) else None)
    started = time.perf_counter()
    page.goto(f"{base}/{path}")
    drawn(page, test_id)
    elapsed = time.perf_counter() - started
    context.close()
    return {"s": elapsed, **sizes, "foreign": sorted(set(foreign))}


def same_tab(browser: Any, base: str, rounds: int) -> dict[str, list[float]]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.goto(base)
    drawn(page, "stPlotlyChart")
    times: dict[str, list[float]] = {path: [] for path in PAGES}
    order = [*list(PAGES)[1:], ""]
    for _ in range(rounds):
        for path in order:
            label, test_id = PAGES[path]
            started = time.perf_counter()
            page.get_by_test_id("stSidebarNav").get_by_text(label, exact=True).click()
            page.wait_for_function(f"() => location.pathname.replace(/^\\//, '') === '{path}'")
            drawn(page, test_id)
            times[path].append(time.perf_counter() - started)
    context.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--db", help="an existing database URL (skips the build)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        workdir = Path(tmp)
        url = args.db or f"sqlite:///{workdir / 'pages.db'}"
        report: dict[str, Any] = {"hosts": args.hosts, "days": args.days}
        if not args.db:
            engine = db.open_database(url)
            report["build"] = build(engine, args.hosts, args.days)
            engine.dispose()
        server, base = serve(url, workdir)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                fresh = {path or "overview": [fresh_tab(browser, base, path, test_id)
                                              for _ in range(args.rounds)]
                         for path, (_, test_id) in PAGES.items()}  # fmt: skip
                warm = same_tab(browser, base, args.rounds)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    report["fresh_tab_s"] = {p: round(statistics.median(r["s"] for r in runs), 2) for p, runs in fresh.items()}
    report["same_tab_s"] = {(p or "overview"): round(statistics.median(t), 2) for p, t in warm.items()}
    first = fresh["overview"][0]
    report["fresh_tab_download"] = {k: first[k] for k in ("js_wire", "js_decoded", "all_wire", "all_decoded")}
    report["foreign_requests"] = sorted({u for runs in fresh.values() for r in runs for u in r["foreign"]})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
