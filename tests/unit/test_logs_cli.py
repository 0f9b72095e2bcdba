"""``recguard logs``: human-readable and raw output, filters, damaged lines,
the missing-log error, where the log is found, and following across
rotation and truncation."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from asterisk_recguard import cli
from asterisk_recguard.commands import logs
from asterisk_recguard.decisionlog import DecisionLog
from asterisk_recguard.logfile import LineFile
from asterisk_recguard.errors import UserError
from asterisk_recguard.settings import DEFAULT_DECISION_LOG

REQUIRED = {
    "RECGUARD_ARI_USER": "recguard",
    "RECGUARD_ARI_PASSWORD": "ari-pw",
    "RECGUARD_AMI_USER": "recguard",
    "RECGUARD_AMI_SECRET": "ami-pw",
    "RECGUARD_HASH_SECRET": "k" * 40,
}

DECISION = {
    "ts": "2026-11-28T10:12:03.123456Z", "level": "info", "event": "decision",
    "call_id": "1700000000.12", "channel": "PJSIP/trunk-00000012",
    "purposes_declared": ["order", "quality", "general_info"], "notices": ["evidence-v1"],
    "consent": "given", "outcome": None, "decision": "record",
    "purposes_recorded": ["order", "quality"],
    "reasons": [{"purpose": "order", "reason": "notice_heard"},
                {"purpose": "quality", "reason": "consent_given"},
                {"purpose": "general_info", "reason": "purpose_forbidden"}],
    "recording_id": "3f2a9c0e11d84b5c9b0a7e6d5c4b3a21",
    "deadline": "2029-11-27T10:12:03.000000Z", "policy": "2026-11-01",
}


def line(**fields: Any) -> str:
    return json.dumps(fields, separators=(",", ":"))


def run_logs(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `recguard logs ...` through a parser holding only this command, with
    the CLI's error handling (other command modules are not needed here)."""
    parser = argparse.ArgumentParser(prog="recguard")
    logs.register(parser.add_subparsers())
    args = parser.parse_args(["logs", *argv])
    try:
        code = args.func(args)
    except UserError as exc:
        print(f"recguard: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("RECGUARD_"):
            monkeypatch.delenv(key)


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "decisions.jsonl"
    path.write_text("\n".join([
        line(**DECISION),
        line(ts="2026-11-28T10:12:09.000001Z", level="info", event="decision", call_id="1700000001.3",
             channel="PJSIP/t-2", decision="skip", purposes_recorded=[],
             reasons=[{"purpose": "general_info", "reason": "purpose_forbidden"}]),
        "this is { not json",
        line(ts="2026-11-28T10:15:00.000000Z", level="info", event="recording_deleted",
             call_id="1700000000.12", channel="PJSIP/trunk-00000012",
             recording_id="3f2a9c0e11d84b5c9b0a7e6d5c4b3a21", reason="no_transaction"),
        "",
        line(ts="2026-11-28T10:16:00.000000Z", level="warning", event="unauthorized_recording",
             channel="PJSIP/q-00000001", file="/var/spool/asterisk/monitor/x.wav",
             started_by="Queue", enforced=True),
        "[1, 2]",
    ]) + "\n")
    return path


def test_decision_line_reads_like_the_documented_example() -> None:
    assert logs.format_record(DECISION) == (
        "2026-11-28 10:12:03Z  decision             call 1700000000.12  record order,quality  "
        "(general_info: purpose_forbidden)  rec 3f2a9c0e11d84b5c9b0a7e6d5c4b3a21  until 2029-11-27"
    )


def test_other_events_show_their_own_fields() -> None:
    text = logs.format_record({
        "ts": "2026-11-28T10:16:00.000000Z", "level": "warning",
        "event": "unauthorized_recording", "channel": "PJSIP/q-00000001",
        "file": "/x.wav", "started_by": "Queue", "enforced": True, "note": "two words"})
    assert text == ('2026-11-28 10:16:00Z  unauthorized_recording  WARNING  '
                    'channel=PJSIP/q-00000001  file=/x.wav  started_by=Queue  enforced=true  '
                    'note="two words"')
    change = logs.format_record({"ts": "2026-11-28T10:17:00.000000Z", "event": "decision",
                                 "call_id": "1.1", "decision": "skip", "trigger": "dtmf",
                                 "purposes_recorded": [],
                                 "reasons": [{"purpose": "quality", "reason": "consent_withdrawn"}]})
    assert change == ("2026-11-28 10:17:00Z  decision             call 1.1  skip  on dtmf  "
                      "(quality: consent_withdrawn)")


def test_human_readable_output_with_damaged_lines(log_file: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_logs(["--log", str(log_file)], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 6  # the blank line is skipped
    assert lines[0].startswith("2026-11-28 10:12:03Z  decision")
    assert "record order,quality" in lines[0]
    assert "call 1700000001.3  skip  (general_info: purpose_forbidden)" in lines[1]
    assert lines[2] == "? this is { not json"
    assert "recording_deleted" in lines[3] and "reason=no_transaction" in lines[3]
    assert "WARNING" in lines[4] and "started_by=Queue" in lines[4]
    assert lines[5] == "? [1, 2]"


def test_json_passes_lines_through_unchanged(log_file: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_logs(["--log", str(log_file), "--json"], capsys)
    assert code == 0
    source = [raw for raw in log_file.read_text().splitlines() if raw.startswith("{")]
    source = [raw for raw in source if raw != "this is { not json"]
    assert out.splitlines() == source
    for raw in out.splitlines():
        json.loads(raw)  # stdout stays jq-readable
    assert err.splitlines() == ["? this is { not json", "? [1, 2]"]


def test_filter_by_call_and_event(log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_logs(["--log", str(log_file), "--call", "1700000000.12", "--json"], capsys)
    assert [json.loads(r)["event"] for r in out.splitlines()] == ["decision", "recording_deleted"]
    _, out, _ = run_logs(["--log", str(log_file), "--event", "recording_deleted",
                          "--event", "unauthorized_recording", "--json"], capsys)
    assert [json.loads(r)["event"] for r in out.splitlines()] == [
        "recording_deleted", "unauthorized_recording"]
    _, out, _ = run_logs(["--log", str(log_file), "--call", "1700000001.3",
                          "--event", "decision", "--json"], capsys)
    assert [json.loads(r)["call_id"] for r in out.splitlines()] == ["1700000001.3"]


def test_last_n_lines(log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_logs(["--log", str(log_file), "--event", "decision", "-n", "1", "--json"],
                         capsys)
    assert [json.loads(r)["call_id"] for r in out.splitlines()] == ["1700000001.3"]
    # Damaged lines do not count, but those inside the window are shown.
    _, out, err = run_logs(["--log", str(log_file), "-n", "2", "--json"], capsys)
    assert [json.loads(r)["event"] for r in out.splitlines()] == [
        "recording_deleted", "unauthorized_recording"]
    assert err.splitlines() == ["? [1, 2]"]
    _, out, err = run_logs(["--log", str(log_file), "-n", "0"], capsys)
    assert (out, err) == ("", "")


def test_missing_log_is_a_clear_error_through_the_real_cli(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.jsonl"
    code = cli.main(["logs", "--log", str(missing)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.startswith(f"recguard: error: no decisions logged yet at {missing}")
    assert "--log PATH" in captured.err
    assert len(captured.err.splitlines()) == 1 and "Traceback" not in captured.err


def test_log_path_from_settings(tmp_path: Path, clean_env: None,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "r.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in REQUIRED.items())
                   + f"RECGUARD_DECISION_LOG={tmp_path}/full.jsonl\n")
    env.chmod(0o600)
    assert logs.decision_log_path(None, str(env)) == tmp_path / "full.jsonl"
    # An incomplete configuration (no passwords) still names the log.
    partial = tmp_path / "partial.env"
    partial.write_text(f"RECGUARD_DECISION_LOG={tmp_path}/partial.jsonl\n")
    assert logs.decision_log_path(None, str(partial)) == tmp_path / "partial.jsonl"
    monkeypatch.setenv("RECGUARD_DECISION_LOG", str(tmp_path / "env.jsonl"))
    assert logs.decision_log_path(None, None) == tmp_path / "env.jsonl"
    assert logs.decision_log_path(str(tmp_path / "flag.jsonl"), str(env)) == tmp_path / "flag.jsonl"


def test_default_log_path(clean_env: None) -> None:
    assert logs.decision_log_path(None, None) == DEFAULT_DECISION_LOG


def test_missing_env_file_given_explicitly_is_an_error(tmp_path: Path, clean_env: None,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_logs(["--env-file", str(tmp_path / "nope.env")], capsys)
    assert code == 2 and "does not exist" in err


# --- follow ---------------------------------------------------------------------


class Follower:
    """Runs ``show(..., follow_on=True)`` in a thread, collecting output."""

    def __init__(self, path: Path, **kw: Any) -> None:
        self.out: list[str] = []
        self._stop = threading.Event()
        self._errors: list[BaseException] = []

        def target() -> None:
            try:
                logs.show(path, follow_on=True, out=self.out.append, err=self.out.append,
                          stop=self._stop.is_set, poll=0.01, **kw)
            except BaseException as exc:  # noqa: BLE001 - reported in stop()
                self._errors.append(exc)

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.out):
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out; output so far: {self.out}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()
        assert self._errors == []


def events(out: list[str]) -> list[Any]:
    return [json.loads(r).get("n") for r in out]


def test_follow_starts_with_the_last_lines_and_prints_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(line(event="decision", n=i) + "\n" for i in range(15)))
    follower = Follower(path, as_json=True)
    try:
        follower.wait_for(lambda out: len(out) == 10)
        assert events(follower.out) == list(range(5, 15))
        with open(path, "a") as f:
            f.write(line(event="decision", n=15) + "\n")
        follower.wait_for(lambda out: len(out) == 11)
        # A line written in two pieces is printed once, whole.
        with open(path, "a") as f:
            f.write('{"event":"decision",')
            f.flush()
            time.sleep(0.1)
            f.write('"n":16}\n')
        follower.wait_for(lambda out: len(out) == 12)
    finally:
        follower.stop()
    assert events(follower.out) == list(range(5, 17))


def test_follow_survives_rotation_and_truncation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LineFile, "reopen_check_s", 0.0)  # the writer reopens at its next line
    path = tmp_path / "d.jsonl"
    clock = lambda: datetime(2026, 11, 28, tzinfo=timezone.utc)  # noqa: E731
    writer = DecisionLog(path, clock=clock)
    writer.emit("decision", n=0)
    follower = Follower(path, as_json=True)
    try:
        follower.wait_for(lambda out: len(out) == 1)
        writer.emit("decision", n=1)
        os.rename(path, tmp_path / "d.jsonl.1")  # logrotate
        writer.emit("decision", n=2)  # the writer reopens a new file
        follower.wait_for(lambda out: len(out) == 3)
        writer.emit("decision", n=3)
        follower.wait_for(lambda out: len(out) == 4)
        # copytruncate-style rotation: the file shrinks under the reader.
        with open(path, "r+") as f:
            f.truncate(0)
        time.sleep(0.1)
        writer.emit("decision", n=4)
        follower.wait_for(lambda out: len(out) == 5)
    finally:
        follower.stop()
        writer.close()
    assert events(follower.out) == [0, 1, 2, 3, 4]


def test_follow_with_no_history(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(line(event="decision", n=0) + "\n")
    follower = Follower(path, as_json=True, lines=0)
    try:
        time.sleep(0.1)
        with open(path, "a") as f:
            f.write(line(event="decision", n=1) + "\n")
        follower.wait_for(lambda out: len(out) == 1)
    finally:
        follower.stop()
    assert events(follower.out) == [1]


def test_follow_shows_damaged_lines_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("")
    follower = Follower(path, call="7.7")
    try:
        with open(path, "a") as f:
            f.write(line(ts="2026-11-28T10:00:00.000000Z", event="decision", call_id="1.1",
                         decision="skip") + "\n")
            f.write("garbage\n")
            f.write(line(ts="2026-11-28T10:00:01.000000Z", event="decision", call_id="7.7",
                         decision="skip") + "\n")
        follower.wait_for(lambda out: len(out) == 2)
    finally:
        follower.stop()
    assert follower.out == ["? garbage",
                            "2026-11-28 10:00:01Z  decision             call 7.7  skip"]
