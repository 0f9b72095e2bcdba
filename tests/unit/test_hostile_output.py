"""Text recguard did not write itself (a policy's texts, decision-log values,
ledger values, file names, echoed arguments) reaches the terminal escaped and,
when echoed in an error, shortened: it cannot forge a line, move the cursor,
reverse the text, or flood the screen."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest


from .cli_support import env, run
from .recfixtures import T0, World, env_file

DEADLINE = T0 + timedelta(days=1095)
LABEL = "sl-call-centre 2026-11"
# What must never reach a terminal raw.
RAW = ("\x1b", "\x07", "\x7f", "\x9b", "\u2028", "\u202e", "\r")
LONG = "a" * 10_000

pytestmark = pytest.mark.usefixtures("clean_env")


def assert_clean(text: str) -> None:
    found = [char for char in RAW if char in text]
    assert not found, f"raw control characters reached the terminal: {found!r} in {text!r}"


def assert_short_echo(err: str) -> None:
    """One error line that quotes the 10,000 characters only in part."""
    assert err.startswith("recguard: error: ") and err.count("\n") == 1, err[:300]
    assert len(err) < 400 and re.search(r"…\(100\d\d chars\)", err), err[:300]


# --- recguard decide and check-config ----------------------------------------------------


def test_a_declared_purpose_cannot_forge_a_decision_line(capsys: pytest.CaptureFixture[str]) -> None:
    forged = f"marketing\nRECORD this call (policy {LABEL}).\x1b[2J"
    status, out, _ = run(capsys, "decide", "--purpose", forged, "--notice", "evidence-v1\x1b]0;x\x07")
    assert status == 0
    assert not [line for line in out.splitlines() if line.startswith("RECORD")]
    assert out.splitlines()[1] == f"DO NOT RECORD this call (policy {LABEL})."
    assert r"marketing\nRECORD this call" in out and r"\x1b[2J" in out
    assert_clean(out)


HOSTILE_POLICY = """\
[policy]
name = "evil\\u202e"
version = "1\\u001b[2J"

[purposes.order]
basis = "evidence"
retention_days = 10
description = "ordering\\nRECORD this call (policy forged).\\u001b[31m\\u2028x"

[notices.short]
covers = ["order"]
prompt = "x/short"
text = "short.txt"
"""


def hostile_policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(HOSTILE_POLICY)
    (tmp_path / "short.txt").write_text("the short notice\n")
    return path


def test_policy_texts_cannot_forge_lines_in_decide(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = hostile_policy(tmp_path)
    status, out, _ = run(capsys, "decide", "--purpose", "order", "--notice", "short",
                         "--policy", str(path))
    assert status == 0
    assert [line for line in out.splitlines() if line.startswith("RECORD")] == [
        r"RECORD this call (policy evil\u202e 1\x1b[2J)."]
    assert r"order — ordering\nRECORD this call (policy forged).\x1b[31m\u2028x" in out
    assert_clean(out)


def test_policy_texts_are_escaped_by_check_config(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = hostile_policy(tmp_path)
    status, out, _ = run(capsys, "check-config", "--policy", str(path))
    assert status == 0 and out.count("\n") == 1
    assert r"policy evil\u202e 1\x1b[2J" in out
    assert_clean(out)


def test_a_long_notice_is_shortened_in_its_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "decide", "--purpose", "order", "--notice", LONG,
                           "--notice-interrupted", LONG)
    assert (status, out) == (2, "")
    assert_short_echo(err)


def test_a_path_cannot_forge_a_line_in_its_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "decide", "--purpose", "order", "--policy",
                           "/nonexistent/policy.toml\nRECORD this call\x1b[2J")
    assert (status, out) == (2, "") and err.count("\n") == 1
    assert r"policy.toml\nRECORD this call\x1b[2J: no such policy file" in err


# --- policy and settings errors ----------------------------------------------------------


def test_a_policy_key_cannot_forge_a_line_in_its_error(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = hostile_policy(tmp_path)
    path.write_text(HOSTILE_POLICY.replace(
        "retention_days = 10", 'retention_days = 10\n"x\\nRECORD this call\\u001b" = 1'))
    status, _, err = run(capsys, "decide", "--purpose", "order", "--policy", str(path))
    assert status == 2 and err.count("\n") == 1
    assert r"purposes.order.x\nRECORD this call\x1b: unknown key" in err
    assert_clean(err)


@pytest.mark.parametrize("table", ["purposes.order", "notices.short"])
def test_a_long_policy_key_is_shortened_in_its_error(tmp_path: Path, table: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = hostile_policy(tmp_path)
    text = HOSTILE_POLICY.replace(f"[{table}]\n", f"[{table}]\n{LONG} = 1\n")
    path.write_text(text)
    status, _, err = run(capsys, "decide", "--purpose", "order", "--policy", str(path))
    assert status == 2
    assert_short_echo(err)


def test_a_long_value_in_a_policy_is_shortened_in_its_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = hostile_policy(tmp_path)
    path.write_text(HOSTILE_POLICY.replace('covers = ["order"]', f'covers = ["order", "{LONG}"]'))
    status, _, err = run(capsys, "check-config", "--policy", str(path))
    assert status == 2
    assert_short_echo(err)


def test_settings_values_are_escaped_and_shortened_in_errors(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    path = env_file(world, RECGUARD_ARI_APP="recguard\x1b[2J\u202e")
    status, _, err = run(capsys, "check-config", "--env-file", str(path))
    assert status == 2 and err.count("\n") == 1
    assert r'"recguard\x1b[2J\u202e" may contain only letters' in err
    assert_clean(err)

    path = env_file(world, RECGUARD_AMI_PORT=LONG)
    status, _, err = run(capsys, "check-config", "--env-file", str(path))
    assert status == 2
    assert_short_echo(err)


# --- echoed arguments ----------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["hold", LONG, "--reason", "r"],
    ["release", LONG],
    ["export", LONG, "--for", "order", "--to", "/nonexistent/x", "--reason", "r"],
])
def test_a_long_recording_id_is_shortened_in_its_error(
        world: World, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, *argv, *env(world))
    assert (status, out) == (2, "")
    assert_short_echo(err)


def test_a_recording_id_cannot_forge_a_line_in_its_error(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "hold", "x\nrecguard: all good\x1b[2J", "--reason", "r", *env(world))
    assert status == 2 and err.count("\n") == 1
    assert_clean(err)


def test_a_long_purpose_is_shortened_in_its_error(world: World, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    status, _, err = run(capsys, "export", rec.recording_id, "--to", str(tmp_path / "x"),
                         "--for", LONG, "--reason", "r", *env(world))
    assert status == 2
    assert_short_echo(err)


@pytest.mark.parametrize("argv", [
    ["access-log", "--since", LONG, "--env-file", "/nonexistent"],
    ["access-log", "--limit", LONG, "--env-file", "/nonexistent"],
    ["decide", "--purpose", "order", "--consent", LONG],
])
def test_a_long_argument_is_shortened_in_a_usage_error(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert len(err) < 1000 and "…(" in err, err[:300]


# --- the decision log ----------------------------------------------------------------------


def test_logged_values_are_escaped_by_recguard_logs(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "decisions.jsonl"
    records = [
        {"ts": "2026-11-28T10:12:03.123456Z", "level": "info", "event": "recording_deleted",
         "call_id": "1\n2026-11-28 10:13:00Z  decision  call 2  record order",
         "recording_id": "\x1b[2J", "reason": "\u202eno_transaction", "note\x1b[31m": "\x9b1m"},
        {"ts": "2026-11-28T10:12:04.000000Z", "level": "info", "event": "decision",
         "call_id": "3", "decision": "skip\x07", "purposes_recorded": [],
         "reasons": [{"purpose": "x\u2028y", "reason": "purpose_unknown\x7f"}]},
    ]
    log.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
                   + "damaged \x1b[2J line\r\n")
    status, out, _ = run(capsys, "logs", "--log", str(log))
    assert status == 0
    assert len(out.splitlines()) == 3  # two records and the damaged line, one line each
    assert r"call 1\n2026-11-28 10:13:00Z" in out and r"rec \x1b[2J" in out
    assert r"note\x1b[31m=\x9b1m" in out and r"? damaged \x1b[2J line" in out
    assert_clean(out)


# --- ledger values and file names ----------------------------------------------------------


def test_ledger_values_are_escaped_in_every_listing(world: World, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=T0)  # past its deadline: the purge lists it held
    reason = "court\x1b[2J\nrecguard: forged line\u202e"
    status, out, _ = run(capsys, "hold", rec.recording_id, "--reason", reason, *env(world))
    assert status == 0 and len(out.splitlines()) == 2
    assert_clean(out)
    for argv in (["access-log"], ["subject", "find", "--caller", "+386 40 123 456"],
                 ["purge", "--dry-run"]):
        status, out, _ = run(capsys, *argv, *env(world))
        assert status == 0, argv
        assert r"[2J\nrecguard: forged line\u202e" in out, argv
        assert not [line for line in out.splitlines() if line.startswith("recguard: forged")], argv
        assert_clean(out)


def test_file_names_are_escaped_by_audit_and_purge(world: World,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    orphan = world.recordings / "x\nOK: 0 recordings, all consistent\x1b[2J.wav"
    orphan.write_bytes(b"RIFF")
    grace = ["--env-file", str(env_file(world, RECGUARD_ORPHAN_GRACE="0"))]
    status, out, _ = run(capsys, "audit", *grace)
    assert status == 1 and len(out.splitlines()) == 1
    assert r"x\nOK: 0 recordings, all consistent\x1b[2J.wav" in out
    assert_clean(out)
    status, out, _ = run(capsys, "purge", "--orphans", "--dry-run", *grace)
    assert status == 0
    assert not [line for line in out.splitlines() if line.startswith("OK")]
    assert_clean(out)
