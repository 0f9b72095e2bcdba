"""The guard's Prometheus metrics: what the decision log's events count,
the labels they get (never a number or an id), and the gauges read from a
real ledger at scrape time."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from asterisk_recguard.ari import wait_until
from asterisk_recguard.decisionlog import DecisionLog, TolerantLog
from asterisk_recguard.guard import Guard
from asterisk_recguard.guard.deadlines import GateDeadlines, PendingGate
from asterisk_recguard.guard.events import GuardEvents
from asterisk_recguard.guard.testing import (
    CapturingLog,
    FakeCallControl,
    FakeMixMonitors,
    channel,
    destroyed,
    stasis_start,
)
from asterisk_recguard.ledger import Ledger
from asterisk_recguard.metrics import OTHER, CountingLog, Metrics, Readings, ScrapeCollector, code
from asterisk_recguard.policy import load_policy
from asterisk_recguard.resources import default_policy_path
from asterisk_recguard.retention import last_purge, purge
from asterisk_recguard.settings import SettingsError, load_settings

from .ledger_support import T0, finalize, start_call, start_recording

SECRET = "s3cr3t-hash-key-0123456789abcdefghijklmnop"
EVIDENCE = "evidence-v1:complete"
REQUIRED = {
    "RECGUARD_ARI_USER": "recguard",
    "RECGUARD_ARI_PASSWORD": "ari-pw",
    "RECGUARD_AMI_USER": "recguard",
    "RECGUARD_AMI_SECRET": "ami-pw",
    "RECGUARD_HASH_SECRET": SECRET,
}


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.create(tmp_path / "ledger.sqlite3", recordings_dir=None) as opened:
        yield opened


def test_a_guarded_call_is_counted_from_its_decision_to_its_finalization(tmp_path: Path) -> None:
    policy = load_policy(default_policy_path())
    metrics = Metrics(lambda: policy.purposes.keys())
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    ledger = Ledger.create(tmp_path / "ledger.sqlite3", recordings_dir=recordings)
    ledger.observe_commits(metrics.commit_seconds.observe)
    written = CapturingLog()
    guard = Guard(policy=policy, control=FakeCallControl(), mixmonitors=FakeMixMonitors(recordings),
                  ledger=ledger, decision_log=CountingLog(written, metrics), hash_secret=SECRET,
                  lanes=2, workers=2)
    guard.gate.on_gate = metrics.gate_seconds.observe
    try:
        chan = channel("c1", purposes="order,general_info", notices=EVIDENCE)
        guard.on_ari_event(stasis_start(chan))
        guard.wait_idle(10)
        assert value(metrics, "recguard_decisions_total", decision="record", trigger="gate") == 1
        (rejected,) = written.events("decision")[0]["reasons"]
        assert rejected["purpose"] == "general_info"
        assert value(metrics, "recguard_rejections_total", purpose="general_info",
                     reason=rejected["reason"]) == 1
        assert value(metrics, "recguard_recordings_started_total") == 1
        assert value(metrics, "recguard_recordings_finalized_total") == 0
        assert value(metrics, "recguard_gate_duration_seconds_count") == 1
        assert value(metrics, "recguard_events_total", event="recording_started") == 1

        guard.on_ari_event(destroyed(chan))
        guard.wait_idle(10)
        assert value(metrics, "recguard_recordings_finalized_total") == 1
        assert value(metrics, "recguard_decisions_total", decision="record", trigger="hangup") == 1
        assert value(metrics, "recguard_ledger_commit_duration_seconds_count") >= 1
    finally:
        guard.shutdown(10)
        ledger.close()


def test_a_gate_shed_at_its_deadline_is_timed_and_counted() -> None:
    metrics = Metrics()
    control = FakeCallControl()
    deadlines = GateDeadlines(control, GuardEvents(CountingLog(CapturingLog(), metrics)),
                              on_gate=metrics.gate_seconds.observe)
    try:
        began = time.perf_counter()
        deadlines.watch(PendingGate("c9", "PJSIP/caller-c9", began, began + 0.05))
        assert wait_until(lambda: value(metrics, "recguard_gate_duration_seconds_count") == 1, 5)
    finally:
        deadlines.stop()
    assert control.asked("continue_call") == [("c9",)]
    assert value(metrics, "recguard_gates_shed_total") == 1
    assert value(metrics, "recguard_gate_duration_seconds_sum") >= 0.05


def test_labels_never_hold_a_number_or_an_id() -> None:
    metrics = Metrics(lambda: {"order", "quality"})
    log = CountingLog(CapturingLog(), metrics)
    recording_id = "0123456789abcdef0123456789abcdef"
    log.emit("decision", call_id="1700000000.12", channel="PJSIP/trunk-00000012", decision="record",
             trigger="+38640123456", reasons=[{"purpose": "+38640123456", "reason": "purpose_forbidden"},
                                               {"purpose": "unknown_purpose", "reason": recording_id},
                                               {"purpose": "quality", "reason": "no_consent"}])
    log.emit("recording_deleted", recording_id=recording_id, reason=recording_id)
    log.emit("unauthorized_recording", channel="PJSIP/100-0001", action="PJSIP/100-0001")
    log.emit("040123456", caller="040123456")

    text = generate_latest(metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for name, label in sample.labels.items():
                if name != "le":
                    assert not re.search(r"[0-9]", label), f"{sample.name}{{{name}={label!r}}}"
    assert "38640123456" not in text and recording_id not in text and "00000012" not in text
    assert value(metrics, "recguard_decisions_total", decision="record", trigger=OTHER) == 1
    assert value(metrics, "recguard_rejections_total", purpose=OTHER, reason="purpose_forbidden") == 1
    assert value(metrics, "recguard_rejections_total", purpose=OTHER, reason=OTHER) == 1
    assert value(metrics, "recguard_rejections_total", purpose="quality", reason="no_consent") == 1
    assert value(metrics, "recguard_recordings_deleted_total", reason=OTHER) == 1
    assert value(metrics, "recguard_unauthorized_recordings_total", action=OTHER) == 1
    assert value(metrics, "recguard_events_total", event=OTHER) == 1


def test_code_keeps_only_codes() -> None:
    assert code("retention_expired") == "retention_expired"
    assert code("erasure-request") == "erasure-request"
    assert code("order", {"order"}) == "order" and code("order", {"quality"}) == OTHER
    for bad in ("", "Order", "a1", "x" * 49, None, 3, "PJSIP/x", "a b"):
        assert code(bad) == OTHER


def test_the_counters_alerts_and_panels_watch_are_served_at_zero_before_any_event() -> None:
    # A series first seen at 1 is no increase to Prometheus: the first
    # unauthorized recording would never fire its alert.
    metrics = Metrics()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in metrics.registry.collect() for s in family.samples}
    for action in ("logged_only", "stopped_file_kept", "stopped_deleted"):
        assert samples[("recguard_unauthorized_recordings_total", (("action", action),))] == 0
    for trigger in ("gate", "change", "dtmf", "hangup", "reconcile", "reload"):
        for decision in ("record", "skip"):
            assert samples[("recguard_decisions_total", (("decision", decision), ("trigger", trigger)))] == 0
    assert samples[("recguard_gates_shed_total", ())] == 0 and samples[("recguard_gates_failed_total", ())] == 0


def test_failures_sheds_reconnects_and_purges_are_counted() -> None:
    metrics = Metrics()
    log = CountingLog(CapturingLog(), metrics)
    log.emit("gate_shed", call_id="1.2", channel="x", stage="at its deadline", waited_ms=2001)
    log.emit("gate_failed", call_id="1.2", channel="x", error="boom")
    log.emit("gate_failed", call_id="1.3", channel="x", error="boom")
    log.emit("deletion_refused", recording_id="ab" * 16)
    for event in ("ari_connected", "ami_connected", "ari_disconnected", "ari_connected", "ari_connected"):
        log.emit(event)
    log.emit("purge", deleted=3, dry_run=False, level="info")
    log.emit("purge", deleted=0, dry_run=True, level="info")
    log.emit("purge", deleted=0, dry_run=False, level="error")
    assert value(metrics, "recguard_gates_shed_total") == 1
    assert value(metrics, "recguard_gates_failed_total") == 2
    assert value(metrics, "recguard_deletions_refused_total") == 1
    assert value(metrics, "recguard_reconnects_total", link="ari") == 2
    assert value(metrics, "recguard_reconnects_total", link="ami") == 0
    assert value(metrics, "recguard_purges_total", result="ok") == 1
    assert value(metrics, "recguard_purges_total", result="failed") == 1


def test_a_counting_error_never_stops_the_line() -> None:
    metrics = Metrics(lambda: 1 / 0)  # type: ignore[arg-type, return-value]
    written = CapturingLog()
    CountingLog(written, metrics).emit("decision", decision="skip", trigger="gate",
                                       reasons=[{"purpose": "order", "reason": "no_notice"}])
    assert len(written.events("decision")) == 1


def test_lost_decision_log_lines_are_counted(tmp_path: Path) -> None:
    metrics = Metrics()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    log = CountingLog(TolerantLog(DecisionLog(blocker / "decisions.jsonl"),
                                  on_lost=lambda event: metrics.log_lost.inc()), metrics)
    log.emit("decision", decision="skip", trigger="gate")
    log.emit("recording_started")
    assert value(metrics, "recguard_decision_log_write_failures_total") == 2
    # Counted even though the line was lost: the ledger holds the decision.
    assert value(metrics, "recguard_decisions_total", decision="skip", trigger="gate") == 1


def scrape(metrics: Metrics) -> dict[str, float]:
    text = generate_latest(metrics.registry).decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f",{k}={v}" for k, v in sorted(sample.labels.items()))
            out[key] = sample.value
    return out


def test_scrape_time_gauges_come_from_the_ledger_and_the_purge(ledger: Ledger, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    now = T0 + timedelta(days=100)
    start_call(ledger)
    start_recording(ledger, directory=str(recordings))  # in progress
    overdue = start_recording(ledger, directory=str(recordings))
    finalize(ledger, overdue, deadline=T0 + timedelta(days=90))
    held = start_recording(ledger, directory=str(recordings))
    finalize(ledger, held, deadline=T0 + timedelta(days=30))
    ledger.set_hold(held, reason="case 17", actor="dpo")
    kept = start_recording(ledger, directory=str(recordings))
    finalize(ledger, kept, deadline=T0 + timedelta(days=400))

    metrics = Metrics()
    up = {"ari": True, "ami": False}
    metrics.registry.register(ScrapeCollector(Readings(
        recording_counts=ledger.recording_counts,
        last_purge=lambda: last_purge(ledger.path),
        connected={link: (lambda link=link: up[link]) for link in up},
        tracked_calls=lambda: 3,
        policy=lambda: "default 1",
        clock=lambda: now.timestamp(),
    )))
    before = scrape(metrics)
    assert before["recguard_recordings_in_progress"] == 1
    assert before["recguard_recordings_overdue"] == 1
    assert before["recguard_recordings_overdue_seconds"] == 10 * 86400
    assert before["recguard_recordings_held_past_deadline"] == 1
    assert before["recguard_recordings_deleting"] == 0
    assert before["recguard_purge_last_success_timestamp_seconds"] == 0  # never purged
    assert before["recguard_purge_age_seconds"] == now.timestamp()
    assert before["recguard_connection_up,link=ari"] == 1 and before["recguard_connection_up,link=ami"] == 0
    assert before["recguard_calls_tracked"] == 3

    log = CountingLog(CapturingLog(), metrics)
    purge(ledger, log, now, "test", dry_run=True, recordings_dir=recordings)
    assert last_purge(ledger.path) is None  # a dry run purges nothing
    purge(ledger, log, now, "test", recordings_dir=recordings)
    stamp = last_purge(ledger.path)
    assert stamp is not None
    os.utime(ledger.path.with_name(ledger.path.name + ".last-purge"), (now.timestamp() - 60,) * 2)
    after = scrape(metrics)
    assert after["recguard_recordings_overdue"] == 0
    assert after["recguard_recordings_overdue_seconds"] == 0
    assert after["recguard_recordings_held_past_deadline"] == 1
    assert after["recguard_purge_age_seconds"] == pytest.approx(60)
    assert value(metrics, "recguard_recordings_deleted_total", reason="retention_expired") == 1
    assert value(metrics, "recguard_purges_total", result="ok") == 1


def test_two_guards_in_one_process_have_registries_of_their_own() -> None:
    first, second = Metrics(), Metrics()
    CountingLog(CapturingLog(), first).emit("gate_shed")
    assert value(first, "recguard_gates_shed_total") == 1
    assert value(second, "recguard_gates_shed_total") == 0


def test_metrics_setting() -> None:
    assert load_settings(environ=REQUIRED).metrics == ("127.0.0.1", 9467)
    assert load_settings(environ={**REQUIRED, "RECGUARD_METRICS": "off"}).metrics is None
    assert load_settings(environ={**REQUIRED, "RECGUARD_METRICS": "0.0.0.0:9100"}).metrics == ("0.0.0.0", 9100)
    assert load_settings(environ={**REQUIRED, "RECGUARD_METRICS": "[::1]:9467"}).metrics == ("::1", 9467)
    for bad in ("9467", "localhost:9467", "127.0.0.1:70000", "::1:9467", "on"):
        with pytest.raises(SettingsError) as info:
            load_settings(environ={**REQUIRED, "RECGUARD_METRICS": bad})
        message = str(info.value)
        assert message.startswith("RECGUARD_METRICS in ") and "\n" not in message
        assert "set it to off, or to the address and port" in message


def test_only_the_daemon_knows_of_metrics_and_only_metrics_of_prometheus() -> None:
    """The guard and the ledger are handed plain callbacks; imports keep pointing one way."""
    from .test_import_direction import PACKAGE_DIR, imported_modules, module_name, modules_of

    users: dict[str, set[str]] = {"asterisk_recguard.metrics": set(), "prometheus_client": set()}
    for path in modules_of(PACKAGE_DIR):
        for _, targets in imported_modules(path, PACKAGE_DIR):
            for target in users:
                if any(t == target or t.startswith(target + ".") for t in targets):
                    users[target].add(module_name(path, PACKAGE_DIR))
    assert users == {"asterisk_recguard.metrics": {"asterisk_recguard.daemon"},
                     "prometheus_client": {"asterisk_recguard.metrics"}}


def test_the_purge_age_is_the_guards_own_purge_on_a_database_ledger(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from asterisk_recguard.daemon import Daemon

    # No stamp file beside a database ledger: the guard's own scheduled purge counts.
    on_database = SimpleNamespace(ledger=SimpleNamespace(path=None), _own_purge=None)
    assert Daemon._last_purge(on_database) is None  # type: ignore[arg-type]
    on_database._own_purge = 1_800_000_000.0
    assert Daemon._last_purge(on_database) == 1_800_000_000.0  # type: ignore[arg-type]
    # Beside an SQLite ledger the newer of the stamp (any purge) and its own.
    ledger_path = tmp_path / "ledger.sqlite3"
    stamp = ledger_path.with_name(ledger_path.name + ".last-purge")
    stamp.touch()
    os.utime(stamp, (1_700_000_000, 1_700_000_000))
    on_file = SimpleNamespace(ledger=SimpleNamespace(path=ledger_path), _own_purge=None)
    assert Daemon._last_purge(on_file) == 1_700_000_000  # type: ignore[arg-type]
    on_file._own_purge = 1_800_000_000.0
    assert Daemon._last_purge(on_file) == 1_800_000_000.0  # type: ignore[arg-type]
