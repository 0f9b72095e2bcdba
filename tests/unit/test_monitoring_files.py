"""The shipped Prometheus alert rules and Grafana dashboard: the rules load
and fire when they must (promtool), and every metric they name is one the
guard exposes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric

from asterisk_recguard.ledger import Ledger
from asterisk_recguard.metrics import Metrics, Readings, ScrapeCollector

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "config" / "prometheus" / "recguard-alerts.yml"
SCRAPE = ROOT / "config" / "prometheus" / "prometheus-scrape.yml"
DASHBOARD = ROOT / "config" / "grafana" / "recguard.json"
RULE_TESTS = Path(__file__).parent / "data" / "recguard-alerts-test.yml"
METRIC_NAME = re.compile(r"\brecguard_[a-z_]+\b")
# What a family's samples are called, by its type.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",), "info": ("_info",)}


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    reason = "promtool not found; install Debian's prometheus package (make system-deps)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason + " (and CI requires the alert rules to be checked)", pytrace=False)
    pytest.skip(reason)


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.fixture
def exposed(tmp_path: Path) -> Iterator[set[str]]:
    """Every sample name the guard's registry exposes, scrape-time gauges included."""
    with Ledger.create(tmp_path / "ledger.sqlite3", recordings_dir=None) as ledger:
        metrics = Metrics()
        metrics.registry.register(ScrapeCollector(Readings(
            recording_counts=ledger.recording_counts, last_purge=lambda: None,
            connected={"ari": lambda: True, "ami": lambda: True}, tracked_calls=lambda: 0,
            policy=lambda: "default")))
        families: list[Metric] = list(metrics.registry.collect())
        yield {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def alert_expressions() -> list[str]:
    return re.findall(r"^\s*expr:\s*(.+)$", ALERTS.read_text(), re.MULTILINE)


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", ())]


def test_promtool_loads_the_alert_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_expressions())} rules found" in result.stdout


def test_the_overdue_shed_disconnected_and_purge_alerts_fire_when_they_must() -> None:
    result = run_promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_scrape_example_is_a_valid_prometheus_config() -> None:
    result = run_promtool("check", "config", "--syntax-only", str(SCRAPE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_the_alerts_name_is_exposed(exposed: set[str]) -> None:
    expressions = alert_expressions()
    assert len(expressions) == ALERTS.read_text().count("- alert:") >= 10
    named = {name for expr in expressions for name in METRIC_NAME.findall(expr)}
    assert {"recguard_recordings_overdue_seconds", "recguard_gates_shed_total",
            "recguard_purge_age_seconds", "recguard_connection_up"} <= named
    assert named - exposed == set()


def test_every_metric_the_dashboard_names_is_exposed(exposed: set[str]) -> None:
    expressions = dashboard_expressions()
    named = {name for expr in expressions for name in METRIC_NAME.findall(expr)}
    assert {"recguard_gate_duration_seconds_bucket", "recguard_ledger_commit_duration_seconds_bucket",
            "recguard_decisions_total", "recguard_rejections_total", "recguard_recordings_in_progress",
            "recguard_recordings_overdue", "recguard_purge_age_seconds"} <= named
    assert named - exposed == set()


def test_the_dashboard_imports_with_a_datasource_input() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
            assert panel["targets"], panel["title"]
    assert "p99" in {t.get("legendFormat") for p in dashboard["panels"] for t in p.get("targets", ())}
