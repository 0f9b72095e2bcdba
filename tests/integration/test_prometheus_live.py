"""The shipped alert rules and Grafana dashboard against a real Prometheus
scraping a real `recguard run` on the sandbox: after real calls every panel's
query is valid and the key ones have data, every rule evaluates healthy and
stays quiet, and real trouble (gates shed, a recording started behind the
guard's back, the guard killed, AMI out of reach) fires alerts that name no
caller, channel or recording."""

from __future__ import annotations

import json
import re
import signal
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox

from . import promserver
from .conftest import _unavailable, idle_callers
from .guardrun import guard_process, wait_app_registered
from .promserver import Prometheus, free_port, prometheus_server

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "config" / "prometheus" / "recguard-alerts.yml"
DASHBOARD = ROOT / "config" / "grafana" / "recguard.json"
RECORDED = {
    "RECGUARD_PURPOSE": "order,general_info",
    "RECGUARD_NOTICES": "evidence-v1:complete",
    "RECGUARD_CONSENT": "none",
    "RECGUARD_OUTCOME": "unknown",
}
NOT_RECORDED = {**RECORDED, "RECGUARD_PURPOSE": "general_info,quality"}
CALLER = "+38640123456"
# The whole test runs within a minute, so this window holds all of its calls
# (Grafana's own $__rate_interval would be 4 s at a 1 s scrape interval).
RATE_INTERVAL = "1m"
# Deletions are counted by reason, and a reason's series appears with its
# first deletion: no call here deletes a recording.
EMPTY_WITHOUT_SUCH_EVENTS = {
    'sum by (reason) (rate(recguard_recordings_deleted_total{instance=~"$instance"}[$__rate_interval]))',
}
METRIC = re.compile(r"\brecguard_[a-z_]+\b")


@dataclass
class Run:
    prometheus: Prometheus
    instance: str
    secrets: list[str]  # what no label or annotation may hold


@pytest.fixture(scope="module")
def prometheus_ready() -> None:
    """A Prometheus server can be run (or the test fails under CI, else skips)."""
    reason = promserver.unavailable_reason()
    if reason:
        _unavailable(reason)


def instance_regex(instance: str) -> str:
    """``instance`` as Grafana puts a chosen value into ``=~"$instance"``."""
    return re.escape(instance).replace("\\", "\\\\")


def panel_targets() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(panel["title"], target["expr"]) for panel in panels for target in panel.get("targets", ())]


def substitute(expr: str, instance: str, rate_interval: str = RATE_INTERVAL) -> str:
    return (expr.replace("$instance", instance_regex(instance))
            .replace("$__rate_interval", rate_interval))


def families(prometheus: Prometheus) -> set[str]:
    """The metric families the guard's endpoint announced to Prometheus."""
    return {item["metric"] for item in prometheus.targets_metadata()}


def family_of(name: str) -> str:
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def query_error(prometheus: Prometheus, expr: str) -> str | None:
    try:
        prometheus.query(expr)
    except urllib.error.HTTPError as error:
        return f"{error.code}: {error.read().decode(errors='replace')}"
    return None


def rules_evaluated_since(prometheus: Prometheus, since: float) -> bool:
    """True once every rule has been evaluated after ``since`` (epoch seconds)."""
    def seconds(rfc3339: str) -> float:  # the API gives nanoseconds; Python takes micro
        return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", rfc3339)).timestamp()

    rules = prometheus.rules()
    return bool(rules) and all(seconds(rule["lastEvaluation"]) > since for rule in rules)


def assert_no_secret(alert: dict[str, Any], secrets: list[str]) -> None:
    text = json.dumps({"labels": alert["labels"], "annotations": alert["annotations"]})
    for secret in secrets:
        assert secret not in text, f"{secret!r} in alert {alert['labels'].get('alertname')}: {text}"


@pytest.fixture(scope="class")
def run(prometheus_ready: None, sandbox: Sandbox, callers: CallerSimulator,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """A guard scraped by Prometheus (with the shipped rules) through a
    recorded and a not-recorded call, until every rule has seen them."""
    sim = idle_callers(callers)
    port = free_port()
    instance = f"127.0.0.1:{port}"
    with guard_process(sandbox.env_file, RECGUARD_METRICS=instance) as process, \
            prometheus_server(tmp_path_factory.mktemp("prometheus"), instance, [ALERTS]) as prometheus:
        assert wait_app_registered(sim.client), "recguard run did not register its app"
        # A first sample before the calls, so that rate() and increase() see them.
        assert prometheus.wait_scraped("recguard_gate_duration_seconds_count == 0"), prometheus.log()

        recorded = sim.call("recguard-test-guard", "direct", variables=RECORDED, caller_id=CALLER)
        skipped = sim.call("recguard-test-guard", "direct", variables=NOT_RECORDED, caller_id=CALLER)
        for call in (recorded, skipped):
            call.wait_answered()
            assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
        assert recorded.centre_variable("RECGUARD_DECISION") == "record"
        assert skipped.centre_variable("RECGUARD_DECISION") == "skip"
        secrets = [CALLER, CALLER.lstrip("+"), "40123456", recorded.centre_variable("RECGUARD_RECORDING_ID"),
                   recorded.centre_channel()["id"], skipped.centre_channel()["id"]]
        assert prometheus.wait_scraped("recguard_recordings_in_progress == 1"), prometheus.log()
        for call in (recorded, skipped):
            call.hangup()
            call.wait_ended()
        assert prometheus.wait_scraped("recguard_recordings_finalized_total == 1"), prometheus.log()
        assert prometheus.wait_scraped("recguard_calls_tracked == 0"), prometheus.log()
        # Every rule evaluated once more on what Prometheus now holds.
        scraped = prometheus.query("timestamp(up)")[0]["value"][0]
        assert wait_until(lambda: rules_evaluated_since(prometheus, scraped), 10, 0.25), prometheus.rules()
        yield Run(prometheus, instance, [s for s in secrets if s])
        assert process.poll() is None, "the guard died during the test"


class TestAHealthyGuardScrapedByPrometheus:
    def test_every_panel_query_is_valid_and_the_key_panels_have_data(self, run: Run) -> None:
        prometheus, instance = run.prometheus, run.instance
        announced = families(prometheus)
        empty, errors, results = [], [], {}
        for title, expr in panel_targets():
            for name in METRIC.findall(expr):
                assert family_of(name) in announced, f"panel {title!r} uses {name}, which the guard does not serve"
            # Valid at the window Grafana would use too.
            failed = [f"{title}: {expr}: {error}" for interval in ("4s", RATE_INTERVAL)
                      if (error := query_error(prometheus, substitute(expr, instance, interval)))]
            errors += failed
            assert "$" not in substitute(expr, instance), f"panel {title!r}: a template variable is left: {expr}"
            results[expr] = [] if failed else prometheus.query(substitute(expr, instance))
            if not failed and not results[expr]:
                empty.append(expr)
        assert not errors, "\n".join(errors)
        for series in (series for result in results.values() for series in result):
            assert not any(secret in json.dumps(series["metric"]) for secret in run.secrets), series
        assert set(empty) == EMPTY_WITHOUT_SUCH_EVENTS, empty

        # The instance variable's query, as Grafana asks it.
        values = prometheus.api("label/instance/values", **{"match[]": 'up{job="recguard"}'})
        assert values == [instance]

        def value(title_part: str, index: int = 0, **labels: str) -> float:
            exprs = [expr for title, expr in panel_targets() if title_part in title]
            series = [s for s in results[exprs[index]] if all(s["metric"].get(k) == v for k, v in labels.items())]
            assert len(series) == 1, (title_part, series)
            return float(series[0]["value"][1])

        assert value("Guard") == 1
        assert value("ARI") == 1 and value("AMI") == 1
        assert 0 <= value("Since last purge") < 120  # the guard purges when it starts
        assert value("Recordings overdue") == 0 and value("Longest overdue") == 0
        assert value("Recording now") == 0 and value("Calls followed") == 0
        for quantile in range(3):  # p50, p95, p99 of two real gates
            assert 0 < value("Gate latency", quantile) < 2.0
        assert value("Decisions per second", decision="record", trigger="gate") > 0
        assert value("Decisions per second", decision="skip", trigger="gate") > 0
        assert value("Decisions per second", decision="record", trigger="hangup") > 0
        assert value("Purposes not recorded", purpose="general_info", reason="purpose_forbidden") > 0
        assert value("Recordings started", 0) > 0 and value("Recordings started", 1) > 0
        assert value("Gates shed and failed", 0) == 0 and value("Gates shed and failed", 1) == 0
        assert value("Ledger commit latency") > 0
        # The recording in progress during the call, as the panel showed it.
        now_expr = substitute(next(e for t, e in panel_targets() if t == "Recording now"), instance)
        assert prometheus.values(f"max_over_time({now_expr}[{RATE_INTERVAL}])") == [1]

    def test_every_rule_evaluates_healthy_and_none_fires(self, run: Run) -> None:
        prometheus = run.prometheus
        rules = prometheus.rules()
        assert [rule["name"] for rule in rules] == re.findall(r"^\s*- alert:\s*(\S+)", ALERTS.read_text(), re.M)
        announced = families(prometheus) | {"up"}
        for rule in rules:
            assert rule["health"] == "ok" and not rule.get("lastError"), rule
            assert rule["state"] == "inactive" and rule["alerts"] == [], rule
            for name in METRIC.findall(rule["query"]):
                assert family_of(name) in announced, f"{rule['name']} uses {name}, which the guard does not serve"
        assert prometheus.alerts() == []


def rules_with_short_for(directory: Path) -> Path:
    """The shipped rules with every ``for:`` cut to 1 s; expressions untouched."""
    path = directory / "recguard-alerts-short-for.yml"
    path.write_text(re.sub(r"^(\s+)for: \S+$", r"\1for: 1s", ALERTS.read_text(), flags=re.M))
    return path


def expressions(path: Path) -> list[str]:
    return re.findall(r"^\s*expr:\s*(.+)$", path.read_text(), re.M)


def firing(prometheus: Prometheus, name: str) -> list[dict[str, Any]]:
    return [a for a in prometheus.alerts() if a["labels"]["alertname"] == name and a["state"] == "firing"]


def test_shed_gates_a_rogue_recording_and_a_killed_guard_fire_their_alerts(
        prometheus_ready: None, sandbox: Sandbox, callers: CallerSimulator, tmp_path: Path) -> None:
    """RecguardGatesShed fires when a real call is shed by a guard with a gate
    timeout no gate can meet, RecguardUnauthorizedRecordings when a call's
    dialplan starts MixMonitor behind the guard's back (neither has a
    ``for:``), RecguardDown when that guard is killed, and
    RecguardAsteriskDisconnected when it comes back unable to reach AMI. The rules are the
    shipped ones with their ``for:`` cut to 1 s (RecguardDown waits 2 minutes
    in production); the expressions are the shipped ones, checked equal below."""
    sim = idle_callers(callers)
    short = rules_with_short_for(tmp_path)
    assert expressions(short) == expressions(ALERTS) and "for: 2m" in ALERTS.read_text()
    assert short.read_text().count("for: 1s") == ALERTS.read_text().count("for: ")
    port = free_port()
    instance = f"127.0.0.1:{port}"
    with prometheus_server(tmp_path / "prometheus", instance, [short]) as prometheus:
        with guard_process(sandbox.env_file, RECGUARD_METRICS=instance,
                           RECGUARD_GATE_TIMEOUT="0.000001") as process:
            assert wait_app_registered(sim.client), "recguard run did not register its app"
            assert prometheus.wait_scraped("recguard_gates_shed_total == 0"), prometheus.log()
            # With a 1 s ``for:``, RecguardAbsent fires until the first scrape; then all is quiet.
            assert wait_until(lambda: prometheus.alerts() == [], 5, 0.25), prometheus.alerts()

            rogue_file = sandbox.recordings_dir / f"rogue-{port}.wav"
            rogue = sim.call("recguard-test-guard", "rogue", caller_id=CALLER,
                             variables={"ROGUE_FILE": str(rogue_file)})
            call = sim.call("recguard-test-guard", "viagate", caller_id=CALLER,
                            variables={"TEST_PURPOSE": "order", "RECGUARD_NOTICES": "evidence-v1:complete"})
            for placed in (rogue, call):
                placed.wait_answered()
            assert rogue.wait_centre_variable("TEST_ROGUE") == "yes"
            assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
            assert call.centre_variable("RECGUARD_DECISION") == "unavailable"
            secrets = [CALLER, CALLER.lstrip("+"), "40123456", rogue_file.name, "rogue"]
            for placed in (rogue, call):
                secrets += [placed.centre_channel()["id"], placed.centre_channel()["name"]]
            expected = ("RecguardGatesShed", "RecguardUnauthorizedRecordings")
            for name in expected:
                fired = wait_until(partial(firing, prometheus, name), 15, 0.25)
                assert fired, f"{name} did not fire: {prometheus.alerts()}\n{prometheus.log()}"
                assert fired[0]["labels"]["severity"] == "critical" and float(fired[0]["value"]) > 0
                assert fired[0]["labels"]["instance"] == instance
                assert instance in fired[0]["annotations"]["summary"]
                assert_no_secret(fired[0], secrets)
            for placed in (rogue, call):
                placed.hangup()
                placed.wait_ended()
            # Nothing else, but now and then (2 runs in 25) a gate failure
            # beside the shed: at a 1 µs gate timeout that is trouble too.
            active = {a["labels"]["alertname"] for a in prometheus.alerts()}
            assert set(expected) <= active <= {*expected, "RecguardGatesFailing"}, active
            # RECGUARD_UNAUTHORIZED_RECORDINGS=enforce (the default): the rogue recording was stopped.
            (rogue_alert,) = firing(prometheus, "RecguardUnauthorizedRecordings")
            assert rogue_alert["labels"]["action"] in ("stopped_deleted", "stopped_file_kept"), rogue_alert
            rogue_file.unlink(missing_ok=True)

            process.send_signal(signal.SIGKILL)  # no goodbye: as a crash or an OOM kill
            process.wait(10)
            down = wait_until(lambda: firing(prometheus, "RecguardDown"), 15, 0.25)
            assert down, f"RecguardDown did not fire: {prometheus.alerts()}\n{prometheus.log()}"
            assert down[0]["labels"]["instance"] == instance and down[0]["labels"]["severity"] == "critical"
            assert instance in down[0]["annotations"]["summary"]
            assert_no_secret(down[0], secrets)

        # The guard back on the same address, but with AMI where nothing listens.
        with guard_process(sandbox.env_file, RECGUARD_METRICS=instance, RECGUARD_AMI_PORT=str(free_port())):
            lost = wait_until(lambda: firing(prometheus, "RecguardAsteriskDisconnected"), 15, 0.25)
            assert lost, f"RecguardAsteriskDisconnected did not fire: {prometheus.alerts()}\n{prometheus.log()}"
            # ARI may be down too: the guard reaches for AMI first.
            (ami,) = [alert for alert in lost if alert["labels"]["link"] == "ami"]
            assert "lost ami on " + instance in ami["annotations"]["summary"]
            for alert in lost:
                assert_no_secret(alert, secrets)
            assert wait_until(lambda: not firing(prometheus, "RecguardDown"), 5, 0.25), prometheus.alerts()
