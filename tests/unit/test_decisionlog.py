"""Decision log: one JSON object per line, UTC timestamps, no clear caller
numbers, no line breaks, safe from several threads, survives rotation, and
leaves structlog's global configuration alone."""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import structlog

import asterisk_recguard
from asterisk_recguard.decisionlog import EVENTS, REDACTED, DecisionLog
from asterisk_recguard.logfile import LineFile

T0 = datetime(2026, 11, 28, 10, 12, 3, 456789, tzinfo=timezone.utc)
NUMBER = "+38640123456"


def lines_of(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "log" / "decisions.jsonl"


def test_one_json_object_per_line_with_ts_level_event(log_path: Path) -> None:
    with DecisionLog(log_path, clock=lambda: T0) as log:
        log.emit("decision", call_id="1700000000.12", channel="PJSIP/t-1", decision="record",
                 purposes_declared=["order", "general_info"], purposes_recorded=["order"],
                 reasons=[{"purpose": "general_info", "reason": "purpose_forbidden"}],
                 recording_id="3f2a" * 8, deadline=T0 + timedelta(days=1095), policy="v1",
                 consent=None)
        log.emit("ari_connected", url="http://127.0.0.1:8088/ari")
    raw = log_path.read_text().splitlines()
    assert len(raw) == 2
    assert raw[0].startswith('{"ts":"2026-11-28T10:12:03.456789Z","level":"info",'
                             '"event":"decision","call_id":"1700000000.12","channel":"PJSIP/t-1",')
    first, second = (json.loads(line) for line in raw)
    assert first["deadline"] == "2029-11-27T10:12:03.456789Z"
    assert first["reasons"] == [{"purpose": "general_info", "reason": "purpose_forbidden"}]
    assert first["consent"] is None
    assert second == {"ts": "2026-11-28T10:12:03.456789Z", "level": "info",
                      "event": "ari_connected", "url": "http://127.0.0.1:8088/ari"}


def test_real_clock_is_utc(log_path: Path) -> None:
    with DecisionLog(log_path) as log:
        before = datetime.now(timezone.utc)
        log.emit("purge", deleted=0)
    ts = lines_of(log_path)[0]["ts"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", ts)
    stamped = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs((stamped - before).total_seconds()) < 5


def test_file_is_private_and_appended(log_path: Path) -> None:
    with DecisionLog(log_path) as log:
        log.emit("ami_connected")
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log_path.parent.stat().st_mode) == 0o700
    with DecisionLog(log_path) as log:  # a restarted daemon appends
        log.emit("ami_disconnected", error="EOF")
    assert [r["event"] for r in lines_of(log_path)] == ["ami_connected", "ami_disconnected"]


def test_levels(log_path: Path) -> None:
    with DecisionLog(log_path) as log:
        log.emit("gate_failed", error="timeout")
        log.emit("unauthorized_recording", channel="PJSIP/q-1")
        log.emit("decision", decision="skip")
        log.emit("decision", level="warning", decision="skip")
        log.emit("stop_failed", error="no such channel")
        with pytest.raises(ValueError, match="level"):
            log.emit("decision", level="loud")
        with pytest.raises(ValueError, match="event"):
            log.emit("")
    assert [r["level"] for r in lines_of(log_path)] == [
        "error", "warning", "info", "warning", "error"]


def test_bind_adds_fields_without_changing_the_parent(log_path: Path) -> None:
    with DecisionLog(log_path) as log:
        call_log = log.bind(call_id="1.1", channel="PJSIP/a-1")
        call_log.bind(recording_id="ab" * 16).emit("recording_started", purposes=["order"])
        call_log.emit("recording_stopped")
        log.emit("policy_reloaded", policy="v2")
    started, stopped, reloaded = lines_of(log_path)
    assert started["call_id"] == "1.1" and started["recording_id"] == "ab" * 16
    assert stopped["call_id"] == "1.1" and "recording_id" not in stopped
    assert "call_id" not in reloaded and reloaded["policy"] == "v2"


@pytest.mark.parametrize("key", ["caller", "callerid", "caller_id_number", "number",
                                 "CALLERID(num)", "CALLERID_NUM", "CallerIDNum", "callerid_name",
                                 "connected", "phone_number"])
def test_caller_number_fields_are_masked_at_any_depth(log_path: Path, key: str) -> None:
    with DecisionLog(log_path) as log:
        log.bind(**{key: NUMBER}).emit("decision", decision="skip",
                                       facts={key: NUMBER, "list": [{key: NUMBER}]},
                                       caller_hash="c" * 64)
    text = log_path.read_text()
    assert "40123456" not in text
    record = lines_of(log_path)[0]
    assert record[key] == REDACTED
    assert record["facts"][key] == REDACTED
    assert record["facts"]["list"][0][key] == REDACTED
    assert record["caller_hash"] == "c" * 64  # the keyed hash is what belongs in the log


def test_ari_channel_object_loses_its_numbers(log_path: Path) -> None:
    channel = {"id": "1.1", "name": "PJSIP/t-1",
               "caller": {"name": "Ana", "number": NUMBER},
               "connected": {"name": "", "number": "+38612345678"}}
    with DecisionLog(log_path) as log:
        log.emit("gate_failed", channel_object=channel)
    text = log_path.read_text()
    assert NUMBER not in text and "+38612345678" not in text
    assert lines_of(log_path)[0]["channel_object"]["id"] == "1.1"


def test_line_breaks_are_stripped_so_one_event_is_one_line(log_path: Path) -> None:
    with DecisionLog(log_path) as log:
        log.emit("gate_failed", call_id="1.1\r\n{\"event\":\"forged\"}",
                 error=RuntimeError("boom\nsecond line"), nested={"k\n": ["a\rb"]})
    raw = log_path.read_bytes()
    assert raw.count(b"\n") == 1
    assert b"\\n" not in raw and b"\\r" not in raw
    record = lines_of(log_path)[0]
    assert record["event"] == "gate_failed"
    assert record["call_id"] == '1.1 {"event":"forged"}'
    assert record["error"] == "RuntimeError: boom second line"
    assert record["nested"] == {"k ": ["a b"]}


def test_threads_never_interleave_lines(log_path: Path) -> None:
    threads_n, per_thread = 8, 200
    with DecisionLog(log_path) as log:
        def worker(n: int) -> None:
            bound = log.bind(call_id=f"t{n}")
            for i in range(per_thread):
                bound.emit("decision", decision="skip", i=i, padding="x" * 500)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    records = lines_of(log_path)  # every line parses
    assert len(records) == threads_n * per_thread
    for n in range(threads_n):
        assert [r["i"] for r in records if r["call_id"] == f"t{n}"] == list(range(per_thread))


def test_reopens_after_rotation(log_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LineFile, "reopen_check_s", 0.0)  # checked at every line
    with DecisionLog(log_path) as log:
        log.emit("decision", n=1)
        rotated = log_path.with_name("decisions.jsonl.1")
        os.rename(log_path, rotated)
        log.emit("decision", n=2)
        log_path.unlink()
        log.emit("decision", n=3)
    assert [r["n"] for r in lines_of(rotated)] == [1]
    assert [r["n"] for r in lines_of(log_path)] == [3]


def test_lines_after_a_rotation_reach_the_new_file_within_the_check_interval(
        log_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("asterisk_recguard.logfile.time.monotonic", lambda: clock[0])
    with DecisionLog(log_path) as log:
        log.emit("decision", n=1)
        rotated = log_path.with_name("decisions.jsonl.1")
        os.rename(log_path, rotated)
        clock[0] += LineFile.reopen_check_s / 2
        log.emit("decision", n=2)  # not checked yet: still the rotated file, not lost
        clock[0] += LineFile.reopen_check_s
        log.emit("decision", n=3)
        log.emit("decision", n=4)
    assert [r["n"] for r in lines_of(rotated)] == [1, 2]
    assert [r["n"] for r in lines_of(log_path)] == [3, 4]
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600


def test_global_structlog_configuration_is_left_alone(log_path: Path) -> None:
    before = structlog.get_config()
    with DecisionLog(log_path) as log:
        log.emit("decision", decision="skip")
    assert structlog.get_config() == before

    def explode(logger: Any, method: str, event_dict: Any) -> Any:
        raise AssertionError("the global structlog configuration reached the decision log")

    structlog.configure(processors=[explode])
    try:
        with DecisionLog(log_path) as log:
            log.emit("decision", decision="record")
    finally:
        structlog.reset_defaults()
    assert [r["decision"] for r in lines_of(log_path)] == ["skip", "record"]


def test_events_listed_in_the_schema_docstring() -> None:
    import asterisk_recguard.decisionlog as module

    doc = module.__doc__ or ""
    for field in ("ts", "event", "call_id", "channel", "purposes_declared", "notices",
                  "consent", "outcome", "decision", "purposes_recorded", "reasons",
                  "recording_id", "deadline", "policy"):
        assert re.search(rf"^\s+{field}\s", doc, re.M), field
    assert {"decision", "recording_started", "recording_stopped", "recording_deleted",
            "recording_finalized", "unauthorized_recording", "gate_failed", "ari_connected",
            "ari_disconnected", "ami_connected", "ami_disconnected", "policy_reloaded",
            "policy_reload_failed", "purge", "hold", "release", "export", "erase"} <= EVENTS


def _emitted_events() -> dict[str, list[str]]:
    """Every literal event name passed to ``.emit(...)`` in the package, with where."""
    package = Path(asterisk_recguard.__file__).parent
    found: dict[str, list[str]] = {}
    for source in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "emit" and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                found.setdefault(node.args[0].value, []).append(
                    f"{source.relative_to(package)}:{node.lineno}")
    return found


def test_every_event_the_package_emits_is_in_events_and_documented() -> None:
    import asterisk_recguard.decisionlog as module

    emitted = _emitted_events()
    assert "recording_deleted" in emitted  # the scan finds the emits at all
    unlisted = {name: where for name, where in emitted.items() if name not in EVENTS}
    assert not unlisted, f"emitted but not in EVENTS: {unlisted}"
    events_section = (module.__doc__ or "").split("Events (EVENTS)", 1)[1]
    documented = set(re.findall(r"[a-z_]+", events_section))
    assert EVENTS <= documented, sorted(EVENTS - documented)


def test_a_number_split_by_a_line_break_in_a_name_is_still_masked(log_path: Path) -> None:
    # The break becomes a space first, and a space joins digit groups into one number.
    with DecisionLog(log_path) as log:
        log.emit("gate_failed", channel="Local/0401\n23456@out-00000001;1",
                 error=ValueError("no route to 040\r\n123 456"), file=Path("/mon/0401\n23456.wav"))
    record = lines_of(log_path)[0]
    assert "23456" not in json.dumps(record)
    assert record["channel"] == "Local/[number]@out-00000001;1"
    assert record["error"] == "ValueError: no route to [number]"
    assert record["file"] == "/mon/[number].wav"


def test_values_that_are_not_json_become_their_text(log_path: Path) -> None:
    with DecisionLog(log_path) as log:
        log.emit("decision", at=T0, naive=datetime(2026, 1, 2, 3, 4), purposes={"quality", "order"},
                 parts=("a", 1), where=Path("/x/y.wav"), keys={7: "seven"})
    record = lines_of(log_path)[0]
    assert record["at"] == "2026-11-28T10:12:03.456789Z"
    assert record["naive"] == "2026-01-02T03:04:00"
    assert record["purposes"] == ["order", "quality"]
    assert record["parts"] == ["a", 1]
    assert record["where"] == "/x/y.wav"
    assert record["keys"] == {"7": "seven"}
