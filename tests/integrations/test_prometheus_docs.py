"""The Prometheus and Grafana examples in docs/integrations/ work: promtool accepts the configuration and the
rules, the rules' unit tests pass, every Grafana query parses, and every metric they name exists in a scrape of
the real exporter on a seeded database."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from models.db import make_engine, upgrade
from models.seed import seed_fleet
from tests.prometheus_exporter import ROOT, running_exporter

DOCS = ROOT / "docs" / "integrations"
RULES = DOCS / "activation-monitor.rules.yml"
GRAFANA = DOCS / "grafana-dashboard.json"
METRIC = re.compile(r"\bactivation_monitor_[a-z0-9_]+\b")
# Grafana's variables, as a query sees them once Grafana has filled them in
GRAFANA_VARIABLES = {"$instance": ".*", "$site": ".*", "$__rate_interval": "5m", "$__interval": "1m"}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool must be installed in CI (Debian package prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus); CI installs it")
    return found


def run(promtool: str, *args: str, cwd: Path = DOCS) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def grafana_queries() -> list[str]:
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    variables = [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return queries + variables


def test_promtool_accepts_the_rules(promtool):
    checked = run(promtool, "check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout


def test_the_rules_unit_tests_pass(promtool):
    tested = run(promtool, "test", "rules", "activation-monitor.rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_accepts_the_scrape_configuration(promtool):
    checked = run(promtool, "check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load((DOCS / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == [RULES.name]
    assert config["scrape_configs"][0]["static_configs"][0]["targets"][0].endswith(":9464")


def test_every_grafana_query_is_valid_promql(promtool, tmp_path):
    queries = [q for q in grafana_queries() if not q.startswith("label_values(")]
    rules = []
    for i, query in enumerate(queries):
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        rules.append({"record": f"grafana:query_{i}", "expr": query})
    path = tmp_path / "grafana-queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}), encoding="utf-8")
    checked = run(promtool, "check", "rules", str(path), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(queries) >= 15


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The sample names of one scrape of the exporter on a seeded database."""
    folder = tmp_path_factory.mktemp("scrape")
    url = f"sqlite:///{folder}/activation-monitor.db"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        seed_fleet(conn, now=datetime.now(UTC))
    engine.dispose()
    with running_exporter(url, folder) as exporter:
        return exporter.scrape().names()


def test_every_metric_the_examples_use_is_in_a_real_scrape(served):
    in_rules = {name for expr in rule_expressions() for name in METRIC.findall(expr)}
    in_grafana = {name for query in grafana_queries() for name in METRIC.findall(query)}
    assert len(in_rules) >= 8 and len(in_grafana) >= 12
    assert in_rules - served == set()
    assert in_grafana - served == set()


def test_every_served_metric_is_documented(served):
    readme = (DOCS / "README.md").read_text(encoding="utf-8")
    documented = set(METRIC.findall(readme))
    # a table row may name a sibling as ``..._suffix`` after the full name of the first
    rows = "\n".join(line for line in readme.splitlines() if line.startswith("| `activation_monitor_"))
    shortened = {m.group(1) for m in re.finditer(r"`\.\.\.(_[a-z_]+)`", rows)}
    ours = {name for name in served if name.startswith("activation_monitor_")}
    missing = {n for n in ours if n not in documented and not any(n.endswith(s) for s in shortened)}
    assert len(ours) >= 20 and missing == set()
