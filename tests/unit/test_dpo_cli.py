"""The record-keeping commands through the real command line: purge, hold,
release, subject, export, access-log and audit, with their settings from an
env file, their exit statuses, one-line errors and what they print."""

from __future__ import annotations

import io
import json
import os
import pwd
import re
import subprocess
import sys
import wave
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.ledger import utcnow

from .cli_support import env, run
from .recfixtures import NUMBER, T0, World, env_file

DEADLINE = T0 + timedelta(days=1095)
ME = pwd.getpwuid(os.getuid()).pw_name

pytestmark = pytest.mark.usefixtures("clean_env")


# --- help and configuration -----------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["purge"], ["hold"], ["release"], ["subject"], ["subject", "find"], ["subject", "export"],
    ["subject", "erase"], ["export"], ["access-log"], ["audit"],
])
def test_every_command_has_help_with_examples(capsys: pytest.CaptureFixture[str],
                                              argv: list[str]) -> None:
    status, out, _ = run(capsys, *argv, "--help")
    assert status == 0 and "examples:" in out and "recguard " in out


def test_a_missing_ledger_is_one_line_and_never_created(world: World, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo" / "ledger.sqlite3"
    path = env_file(world, RECGUARD_LEDGER=str(missing))
    for argv in (["purge", "--orphans"], ["audit"], ["access-log"]):
        status, out, err = run(capsys, *argv, "--env-file", str(path))
        assert status == 2 and out == ""
        assert err.startswith("recguard: error: ledger") and err.count("\n") == 1
        assert "Traceback" not in err
    assert not missing.exists()


def test_a_configuration_error_is_one_line(world: World, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = env_file(world, RECGUARD_HASH_SECRET="short")
    status, _, err = run(capsys, "subject", "find", "--caller", NUMBER, "--env-file", str(path))
    assert status == 2 and "RECGUARD_HASH_SECRET" in err and err.count("\n") == 1


def test_settings_come_from_the_environment_too(world: World, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RECGUARD_ENV_FILE", str(env_file(world)))
    status, out, _ = run(capsys, "audit")
    assert status == 0 and out.startswith("OK")


# --- purge ---------------------------------------------------------------------------------


def test_purge_prints_what_it_did_and_the_held_ones(world: World,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    gone = world.add(deadline=DEADLINE, seed=1)
    held = world.add(deadline=DEADLINE, seed=2)
    kept = world.add(deadline=DEADLINE + timedelta(days=1), seed=3)
    world.ledger.set_hold(held.recording_id, reason="court case P 9/2026", actor="bob")

    status, out, _ = run(capsys, "purge", "--dry-run", "--now", "2028-01-10T10:00:00Z",
                         *env(world))
    assert status == 0 and "dry run, nothing changed" in out
    assert f"{gone.recording_id}  deadline 2028-01-10 10:00:00Z  order" in out
    assert world.ledger.recording(gone.recording_id).status == "finalized"

    status, out, _ = run(capsys, "purge", "--now", "2028-01-10T10:00:00Z", *env(world))
    assert status == 0
    assert "deleted 1 recording(s) past their deadline:" in out and gone.recording_id in out
    assert "kept 1 held recording(s) past their deadline:" in out
    assert f"{held.recording_id}" in out and "court case P 9/2026" in out and "by bob" in out
    assert kept.recording_id not in out
    assert out.strip().splitlines()[-1].startswith("purge: 1 deleted, 0 finished, 1 held")
    assert world.ledger.recording(gone.recording_id).status == "deleted"
    assert world.ledger.recording(gone.recording_id).deleted_by == ME


def test_purge_now_accepts_a_date_and_a_zone(world: World,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    status, _, _ = run(capsys, "purge", "--now", "2028-01-10T11:59:59+02:00", *env(world))
    assert status == 0 and world.ledger.recording(rec.recording_id).status == "finalized"
    status, _, _ = run(capsys, "purge", "--now", "2028-01-11", *env(world))
    assert status == 0 and world.ledger.recording(rec.recording_id).status == "deleted"
    status, _, err = run(capsys, "purge", "--now", "next tuesday", *env(world))
    assert status == 2 and "not a date" in err


def test_purge_orphans(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    stray = world.recordings / "stray.wav"
    stray.write_bytes(b"x")
    then = utcnow().timestamp() - 7200
    os.utime(stray, (then, then))
    fresh = world.recordings / "fresh.wav"
    fresh.write_bytes(b"x")
    status, out, _ = run(capsys, "purge", "--orphans", *env(world))
    assert status == 0
    # ctime keeps both young right after they were written: nothing is deleted yet.
    assert "no orphan files" in out and "left 2 file(s)" in out
    assert stray.exists() and fresh.exists()
    path = env_file(world, RECGUARD_ORPHAN_GRACE="0")
    status, out, _ = run(capsys, "purge", "--orphans", "--env-file", str(path))
    assert status == 0 and "deleted 2 orphan file(s)" in out
    assert not stray.exists() and not fresh.exists()


# --- hold and release ---------------------------------------------------------------------


def test_hold_and_release(world: World, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    rec = world.add(deadline=T0 + timedelta(days=1))  # already past
    monkeypatch.setenv("SUDO_USER", "alice")
    status, out, _ = run(capsys, "hold", rec.recording_id, "--reason", "court case P 1/2026",
                         *env(world))
    assert status == 0 and "under legal hold: court case P 1/2026" in out
    after = world.ledger.recording(rec.recording_id)
    actor = ME if ME == "alice" else f"{ME} (sudo by alice)"
    assert after.held and after.held_by == actor

    status, _, err = run(capsys, "hold", rec.recording_id, "--reason", "again", *env(world))
    assert status == 1 and "already under legal hold" in err

    status, out, _ = run(capsys, "release", rec.recording_id, *env(world))
    assert status == 0 and "released" in out and "the next purge deletes it" in out
    assert not world.ledger.recording(rec.recording_id).held
    status, _, err = run(capsys, "release", rec.recording_id, *env(world))
    assert status == 1 and "not under legal hold" in err

    entries = [(e.action, e.actor) for e in world.ledger.access_log()]
    assert entries == [("hold", actor), ("release", actor)]


def test_hold_without_a_reason_is_an_argument_error(world: World,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    status, _, err = run(capsys, "hold", rec.recording_id, *env(world))
    assert status == 2 and "--reason" in err
    status, _, err = run(capsys, "hold", rec.recording_id, "--reason", "  ", *env(world))
    assert status == 2 and "must not be blank" in err
    status, _, err = run(capsys, "hold", "nope", "--reason", "x", *env(world))
    assert status == 2 and "not a recording id" in err
    assert not world.ledger.recording(rec.recording_id).held


# --- subject ------------------------------------------------------------------------------


def test_subject_find_prints_the_recordings_never_the_number(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    status, out, err = run(capsys, "subject", "find", "--caller", "040 123 456", *env(world))
    assert status == 0 and rec.recording_id in out
    assert "finalized" in out and "2028-01-10" in out and "2025-01-10 09:57:00Z" in out
    assert "order" in out
    for text in (out, err):
        assert "123 456" not in text and "40123456" not in text

    status, out, _ = run(capsys, "subject", "find", "--caller", "0038640123456", "--json",
                         *env(world))
    (line,) = out.splitlines()
    assert json.loads(line)["recording_id"] == rec.recording_id


def test_subject_find_reads_the_number_from_stdin(world: World, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    monkeypatch.setattr(sys, "stdin", io.StringIO("+386 40 123 456\n"))
    status, out, _ = run(capsys, "subject", "find", "--caller", "-", "--reason", "DSAR-1",
                         *env(world))
    assert status == 0 and rec.recording_id in out
    assert world.ledger.access_log()[-1].reason == "DSAR-1"


def test_subject_find_refuses_a_non_number(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "subject", "find", "--caller", "anonymous", *env(world))
    assert status == 2 and "not a usable phone number" in err and "anonymous" not in err


def test_subject_export_and_erase(world: World, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    a = world.add(deadline=DEADLINE, seed=1)
    held = world.add(deadline=DEADLINE, seed=2)
    world.ledger.set_hold(held.recording_id, reason="authority request 5/2026", actor="bob")

    to = tmp_path / "dsar"
    status, out, _ = run(capsys, "subject", "export", "--caller", "040123456", "--to", str(to),
                         "--reason", "access request DSAR-17", *env(world))
    assert status == 0 and "manifest" in out and "(2 recording(s))" in out
    for rec in (a, held):
        with wave.open(str(to / f"{rec.recording_id}.wav")) as audio:
            assert audio.getnframes() == 4000

    status, out, _ = run(capsys, "subject", "erase", "--caller", "+38640123456",
                         "--reason", "erasure request DSAR-18", *env(world))
    assert status == 1
    assert f"erased {a.recording_id}" in out
    assert f"NOT erased {held.recording_id}: under legal hold" in out
    assert "authority request 5/2026" in out
    assert world.ledger.recording(a.recording_id).status == "deleted"
    assert world.ledger.recording(held.recording_id).status == "finalized"


def test_subject_export_and_erase_need_a_reason(world: World, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    status, _, err = run(capsys, "subject", "export", "--caller", NUMBER, "--to",
                         str(tmp_path / "x"), *env(world))
    assert status == 2 and "--reason" in err
    status, _, err = run(capsys, "subject", "erase", "--caller", NUMBER, *env(world))
    assert status == 2 and "--reason" in err
    assert not (tmp_path / "x").exists()
    assert world.ledger.recording(rec.recording_id).status == "finalized"
    assert world.ledger.access_log() == []


def test_subject_erase_when_everything_goes_exits_0(world: World,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    world.add(deadline=DEADLINE)
    status, out, _ = run(capsys, "subject", "erase", "--caller", NUMBER, "--reason", "DSAR",
                         *env(world))
    assert status == 0 and out.strip().splitlines()[-1] == "erase: 1 erased, 0 refused"


# --- export ---------------------------------------------------------------------------------


def test_export_one_recording(world: World, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE, purposes=("complaint",))
    world.add(deadline=DEADLINE, seed=2)
    to = tmp_path / "one"
    status, out, _ = run(capsys, "export", rec.recording_id, "--to", str(to), "--for",
                         "complaint", "--reason", "complaint review 4711", *env(world))
    assert status == 0 and f"exported {to / (rec.recording_id + '.wav')}" in out
    assert sorted(p.name for p in to.iterdir()) == [f"{rec.recording_id}.wav", "manifest.json"]
    manifest = json.loads((to / "manifest.json").read_text())
    assert manifest["request"] == "recording" and manifest["reason"] == "complaint review 4711"
    assert manifest["for_purpose"] == "complaint"
    (entry,) = world.ledger.access_log()
    assert (entry.action, entry.recording_id) == ("export", rec.recording_id)
    assert entry.detail["for_purpose"] == "complaint" and "outcome" not in entry.detail
    (event,) = world.events("export")
    assert event["for_purpose"] == "complaint"


def test_export_for_a_purpose_the_recording_lacks_is_refused_and_logged(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)  # an order recording: evidence, no consent to quality
    to = tmp_path / "qa"
    status, out, err = run(capsys, "export", rec.recording_id, "--to", str(to), "--for",
                           "quality", "--reason", "monthly quality review", *env(world))
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"recguard: error: export refused: recording {rec.recording_id} "
                          "may not be used for quality: it was recorded for order")
    assert "nothing was written" in err
    assert not to.exists()

    (entry,) = world.ledger.access_log()
    assert (entry.action, entry.actor, entry.reason) == ("export", ME, "monthly quality review")
    assert entry.recording_id == rec.recording_id and entry.call_id == rec.call_id
    assert entry.detail == {"request": "recording", "for_purpose": "quality",
                            "purposes": ["order"], "outcome": "refused"}
    (event,) = world.events("export_failed")
    assert (event["level"], event["outcome"], event["for_purpose"], event["purposes"]) == (
        "warning", "refused", "quality", ["order"])
    assert event["recording_id"] == rec.recording_id and event["actor"] == ME
    assert world.events("export") == []

    status, out, _ = run(capsys, "access-log", *env(world))
    assert status == 0 and "outcome=refused" in out and "for_purpose=quality" in out


def test_export_for_a_purpose_the_recording_has_is_allowed(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE, purposes=("order", "quality"))  # the caller consented
    to = tmp_path / "qa"
    status, out, err = run(capsys, "export", rec.recording_id, "--to", str(to), "--for",
                           "quality", "--reason", "monthly quality review", *env(world))
    assert status == 0, err
    with wave.open(str(to / f"{rec.recording_id}.wav")) as audio:
        assert audio.getnframes() == 4000
    manifest = json.loads((to / "manifest.json").read_text())
    assert manifest["for_purpose"] == "quality"
    assert manifest["recordings"][0]["purposes"] == ["order", "quality"]
    (entry,) = world.ledger.access_log()
    assert entry.detail["for_purpose"] == "quality"


def test_export_for_a_purpose_the_policy_lacks_is_a_usage_error(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    status, out, err = run(capsys, "export", rec.recording_id, "--to", str(tmp_path / "x"),
                           "--for", "qualty", "--reason", "review", *env(world))
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "--for 'qualty' is not a purpose of the policy sl-call-centre 2026-11" in err
    assert ("its purposes: order, change, cancellation, complaint, quality "
            "(never recorded: general_info, employee_supervision, deterrence)") in err
    assert not (tmp_path / "x").exists()
    assert world.ledger.access_log() == [] and world.log_lines() == []


def test_the_purposes_come_from_the_policy_in_the_settings(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "policy"
    (folder / "prompts").mkdir(parents=True)
    (folder / "prompts" / "evidence.txt").write_text("This call is recorded as evidence.\n")
    (folder / "policy.toml").write_text(
        '[policy]\nname = "orders-only"\nversion = "1"\n\n'
        '[purposes.order]\nbasis = "evidence"\nretention_days = 1095\n'
        'description = "ordering"\n\n'
        '[notices.evidence]\ncovers = ["order"]\nprompt = "recguard/evidence"\n'
        'text = "prompts/evidence.txt"\n')
    path = env_file(world, RECGUARD_POLICY=str(folder / "policy.toml"))
    rec = world.add(deadline=DEADLINE, purposes=("order", "quality"))
    status, _, err = run(capsys, "export", rec.recording_id, "--to", str(tmp_path / "x"),
                         "--for", "quality", "--reason", "review", "--env-file", str(path))
    assert status == 2 and "policy orders-only 1" in err and err.rstrip().endswith(
        "its purposes: order")
    status, _, err = run(capsys, "export", rec.recording_id, "--to", str(tmp_path / "x"),
                         "--for", "order", "--reason", "review", "--env-file", str(path))
    assert status == 0, err


def test_export_refusals(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    status, _, err = run(capsys, "export", rec.recording_id, "--to", str(tmp_path / "a"),
                         "--for", "order", *env(world))
    assert status == 2 and "--reason" in err
    status, _, err = run(capsys, "export", rec.recording_id, "--to", str(tmp_path / "a"),
                         "--reason", "review", *env(world))
    assert status == 2 and "--for" in err
    status, _, err = run(capsys, "export", "f" * 32, "--to", str(tmp_path / "a"), "--for",
                         "order", "--reason", "x", *env(world))
    assert status == 2 and "no recording" in err
    assert world.ledger.access_log() == []

    data = bytearray(Path(rec.stored_path).read_bytes())
    data[200] ^= 0xFF
    Path(rec.stored_path).write_bytes(bytes(data))
    status, out, err = run(capsys, "export", rec.recording_id, "--to", str(tmp_path / "a"),
                           "--for", "order", "--reason", "review", *env(world))
    assert status == 1 and out == ""
    assert "export refused" in err and "authentication failed" in err and "Traceback" not in err
    assert not (tmp_path / "a").exists()
    (entry,) = world.ledger.access_log()
    assert (entry.detail["outcome"], entry.detail["for_purpose"]) == ("failed", "order")


# --- access-log -------------------------------------------------------------------------------


def test_access_log_shows_who_did_what_when_and_why(world: World, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    run(capsys, "hold", rec.recording_id, "--reason", "court case", *env(world))
    run(capsys, "export", rec.recording_id, "--to", str(tmp_path / "e"), "--for", "order",
        "--reason", "complaint review", *env(world))
    run(capsys, "release", rec.recording_id, *env(world))
    run(capsys, "subject", "find", "--caller", NUMBER, *env(world))
    run(capsys, "purge", "--now", "2030-01-01", *env(world))

    status, out, _ = run(capsys, "access-log", *env(world))
    assert status == 0
    lines = out.strip().splitlines()
    assert [re.split(r"\s{2,}", line)[1] for line in lines] == [
        "hold", "export", "release", "access", "purge"]
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  ", line) for line in lines)
    assert all(f"  {ME}  " in line for line in lines)
    assert 'reason: "court case"' in lines[0] and f"rec {rec.recording_id}" in lines[0]
    assert 'reason: "complaint review"' in lines[1]
    assert 'reason: "retention_expired"' in lines[4]
    assert "123 456" not in out

    status, out, _ = run(capsys, "access-log", "--json", "--limit", "2", *env(world))
    entries = [json.loads(line) for line in out.splitlines()]
    assert [e["action"] for e in entries] == ["access", "purge"]
    assert entries[0]["detail"]["caller_hash"] and entries[1]["actor"] == ME

    status, out, _ = run(capsys, "access-log", "--since", "2999-01-01", *env(world))
    assert status == 0 and out.strip() == "no access log entries since then"
    status, _, err = run(capsys, "access-log", "--limit", "0", *env(world))
    assert status == 2


# --- audit --------------------------------------------------------------------------------------


def test_audit_ok_is_one_line(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.add(deadline=utcnow() + timedelta(days=30))
    status, out, _ = run(capsys, "audit", *env(world))
    assert status == 0
    assert out.splitlines() == [
        "OK: 1 recordings and 1 files consistent with the ledger and the policy"]


def test_audit_lists_one_line_per_problem(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    a = world.add(deadline=utcnow() + timedelta(days=30), seed=1)
    b = world.add(deadline=utcnow() + timedelta(days=30), seed=2)
    Path(a.stored_path).unlink()
    world.ledger.mark_deleting(b.recording_id, reason="retention_expired")
    status, out, _ = run(capsys, "audit", *env(world))
    assert status == 1
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert any(a.recording_id in line and "has no file" in line for line in lines)
    assert any(b.recording_id in line and "stuck in 'deleting'" in line for line in lines)

    status, out, _ = run(capsys, "audit", "--json", *env(world))
    data = json.loads(out)
    assert status == 1 and sorted(p["kind"] for p in data["problems"]) == [
        "missing_file", "stuck_deleting"]


def test_the_installed_entry_point_runs_as_a_process(world: World) -> None:
    world.add(deadline=utcnow() + timedelta(days=30))
    env_vars = {k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")}
    done = subprocess.run([sys.executable, "-m", "asterisk_recguard", "audit", *env(world)],
                          capture_output=True, text=True, env=env_vars, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and done.stdout.startswith("OK: 1 recordings")


def test_an_unwritable_decision_log_is_one_line(world: World, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    blocked = tmp_path / "log-is-a-dir"
    blocked.mkdir()
    path = env_file(world, RECGUARD_DECISION_LOG=str(blocked))
    status, out, err = run(capsys, "hold", rec.recording_id, "--reason", "x", "--env-file",
                           str(path))
    assert status == 2 and err.count("\n") == 1 and str(blocked) in err
    assert "Traceback" not in err


def test_purge_acts_on_this_servers_recordings_or_those_of_the_server_named(
        capsys: pytest.CaptureFixture[str], world: World) -> None:
    world.ledger.server_id = "pbx-a"
    mine = world.add(deadline=DEADLINE, seed=1)
    world.ledger.server_id = "pbx-b"
    theirs = world.add(deadline=DEADLINE, seed=2)
    at = ["--now", "2028-01-10T10:00:00Z"]
    status, out, _ = run(capsys, "purge", *at, *env(world, RECGUARD_SERVER_ID="pbx-a"))
    assert status == 0 and out.startswith("purge of server pbx-a at ")
    assert mine.recording_id in out and theirs.recording_id not in out
    status, out, _ = run(capsys, "purge", "--server", "pbx-b", *at,
                         *env(world, RECGUARD_SERVER_ID="pbx-a"))
    assert status == 0 and theirs.recording_id in out
    gone = world.ledger.recording(theirs.recording_id)
    assert gone is not None and gone.status == "deleted"
    status, _, err = run(capsys, "purge", "--server", "pbx b", *env(world))
    assert status == 2 and "'pbx b' is not a server id" in err.replace('"', "'")


def _on_two_servers(world: World, tmp_path: Path, shared: bool):
    """A caller's recording made on pbx-a (this server) and one on pbx-b, whose
    file is here only when the recordings directory is shared."""
    world.ledger.server_id = "pbx-a"
    ours = world.add(deadline=DEADLINE, seed=1)
    world.ledger.server_id = "pbx-b"
    theirs = world.add(deadline=DEADLINE, seed=2)
    away = tmp_path / "on-pbx-b"
    if not shared:
        away.write_bytes(Path(theirs.file_path).read_bytes())
        Path(theirs.file_path).unlink()
    return ours, theirs, env(world, RECGUARD_SERVER_ID="pbx-a")


@pytest.mark.parametrize("command", ["export", "erase"])
def test_a_request_with_files_on_another_server_does_nothing_and_says_where(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    ours, theirs, here = _on_two_servers(world, tmp_path, shared=False)
    to = ["--to", str(tmp_path / "dsar")] if command == "export" else []
    status, out, err = run(capsys, "subject", command, "--caller", NUMBER, *to,
                           "--reason", "request DSAR-19", *here)
    assert status == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert "cannot reach: 1 on pbx-b (" + theirs.recording_id + ")" in line
    assert f"nothing was done: run `recguard subject {command} --server pbx-b ...` on pbx-b" in line
    assert "`--server pbx-a` here" in line
    assert not (tmp_path / "dsar").exists()
    for rec in (ours, theirs):
        assert world.ledger.recording(rec.recording_id).status == "finalized"
    assert Path(ours.file_path).exists()
    refused = world.ledger.access_log()[-1]
    assert (refused.action, refused.detail["outcome"], refused.server_id) == (command, "refused",
                                                                             "pbx-a")
    # Its own server's part, here; pbx-b's is left to pbx-b.
    status, out, _ = run(capsys, "subject", command, "--server", "pbx-a", "--caller", NUMBER, *to,
                         "--reason", "request DSAR-19", *here)
    assert status == 0 and ours.recording_id in out and theirs.recording_id not in out
    assert world.ledger.recording(theirs.recording_id).status == "finalized"


def test_on_shared_storage_one_server_erases_every_servers_recordings(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours, theirs, here = _on_two_servers(world, tmp_path, shared=True)
    status, out, _ = run(capsys, "subject", "erase", "--caller", NUMBER,
                         "--reason", "erasure request DSAR-20", *here)
    assert status == 0 and "erase: 2 erased, 0 refused" in out
    for rec in (ours, theirs):
        assert world.ledger.recording(rec.recording_id).status == "deleted"
        assert not Path(rec.file_path).exists()
