"""Every export attempt is in the access log, whatever stops it: a key file
that cannot be used, a recording not ready, a directory that cannot be
written, a failure or an interruption half-way. Only a request that is
itself wrong (no reason, no purpose, an unknown purpose or recording id)
stops before any recording is touched, as a usage error, and is not one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from asterisk_recguard import exporting
from asterisk_recguard.errors import UserError
from asterisk_recguard.exporting import (
    REQUEST_RECORDING,
    REQUEST_SUBJECT,
    ExportFailed,
    export_recordings,
)
from asterisk_recguard.ledger import AccessEntry
from asterisk_recguard.vault import Keyring, VaultError

from .cli_support import run
from .recfixtures import NUMBER, T0, World, env_file, export, non_empty_dir

DEADLINE = T0 + timedelta(days=1095)

pytestmark = pytest.mark.usefixtures("clean_env")


def failed_exports(world: World) -> list[tuple[str | None, str]]:
    """(recording id, error) of each failed export in the access log."""
    entries = [e for e in world.ledger.access_log() if e.action == "export"]
    assert all(e.detail.get("outcome") == "failed" for e in entries), [e.detail for e in entries]
    return [(e.recording_id, e.detail["error"]) for e in entries]


def attempt(world: World, recs: list[Any], to: Path, keyring: Any) -> None:
    """A data subject's export with this key file loader."""
    export_recordings(world.ledger, world.log, recs, to, reason="DSAR-17", actor="alice",
                      keyring=keyring, request=REQUEST_SUBJECT)


# --- through export_recordings ---------------------------------------------------------------


def test_a_key_file_that_cannot_be_read_is_a_logged_attempt(world: World, tmp_path: Path) -> None:
    recs = [world.add(deadline=DEADLINE, seed=i) for i in range(2)]

    def keyring() -> Keyring:
        raise VaultError("key file /etc/recguard/keys is accessible by group or others (mode 0644)")

    with pytest.raises(VaultError, match="mode 0644"):
        attempt(world, recs, tmp_path / "out", keyring)
    assert not (tmp_path / "out").exists()
    failed = failed_exports(world)
    assert sorted(rid for rid, _ in failed) == sorted(r.recording_id for r in recs)
    assert all("mode 0644" in error for _, error in failed)
    assert len(world.events("export_failed")) == 2


def test_a_recording_not_ready_is_a_logged_attempt(world: World, tmp_path: Path) -> None:
    done = world.add(deadline=DEADLINE, seed=1)
    live = world.add(deadline=DEADLINE, seed=2, finalize=False)
    with pytest.raises(ExportFailed, match="still recording"):
        export(world, [done, live], tmp_path / "out")
    ((rid, error),) = failed_exports(world)
    assert rid == live.recording_id and "still recording" in error


def test_a_directory_that_cannot_be_used_is_a_logged_attempt(world: World, tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)
    to = non_empty_dir(tmp_path)
    with pytest.raises(UserError, match="not empty"):
        export(world, [rec], to)
    assert failed_exports(world) == [(rec.recording_id, f"--to {to} is not empty; give a new "
                                      "directory so that the export and its manifest stand alone")]


def test_a_failure_after_the_audio_is_written_is_logged_and_leaves_nothing(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recs = [world.add(deadline=DEADLINE, seed=i) for i in range(2)]

    def disk_full(path: Path, text: str) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(exporting, "_write_private", disk_full)
    with pytest.raises(OSError):
        export(world, recs, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    failed = failed_exports(world)
    assert len(failed) == 2 and all("No space left on device" in error for _, error in failed)
    assert world.events("export") == []


def test_an_interrupted_export_is_logged(world: World, tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)

    def interrupted() -> Keyring:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        attempt(world, [rec], tmp_path / "out", interrupted)
    assert failed_exports(world) == [(rec.recording_id, "interrupted")]


def test_a_refusal_is_logged_once(world: World, tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)
    with pytest.raises(ExportFailed):
        export(world, [rec], tmp_path / "out", reason="qa", request=REQUEST_RECORDING,
               for_purpose="quality")
    (entry,) = world.ledger.access_log()
    assert entry.detail["outcome"] == "refused"


def test_the_failure_each_entry_names_is_one_short_line(world: World, tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)

    def keyring() -> Keyring:
        raise VaultError("key file\nforged line " + "x" * 5000)

    with pytest.raises(VaultError):
        export_recordings(world.ledger, world.log, [rec], tmp_path / "out", reason="r",
                          actor="alice", keyring=keyring, request=REQUEST_RECORDING,
                          for_purpose="order")
    ((_, error),) = failed_exports(world)
    assert "\n" not in error and len(error) < 600


# --- through the command line ----------------------------------------------------------------


def export_argv(world: World, rec: Any, to: Path) -> list[str]:
    return ["export", rec.recording_id, "--to", str(to), "--for", "order", "--reason", "review",
            "--env-file", str(env_file(world))]


def only_entry(world: World) -> AccessEntry:
    (entry,) = world.ledger.access_log()
    assert entry.action == "export" and entry.detail["outcome"] == "failed"
    return entry


def test_export_with_a_key_file_of_the_wrong_mode_is_logged(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    world.key_file.chmod(0o644)
    status, out, err = run(capsys, *export_argv(world, rec, tmp_path / "out"))
    assert (status, out) == (2, "") and err.count("\n") == 1 and "mode 0644" in err
    entry = only_entry(world)
    assert entry.recording_id == rec.recording_id and "mode 0644" in entry.detail["error"]
    assert entry.reason == "review" and entry.detail["for_purpose"] == "order"


def test_export_with_a_missing_key_file_is_logged(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    world.key_file.rename(tmp_path / "elsewhere")
    status, _, err = run(capsys, *export_argv(world, rec, tmp_path / "out"))
    assert status == 2 and "does not exist" in err
    assert "does not exist" in only_entry(world).detail["error"]


def test_subject_export_with_a_key_file_of_the_wrong_mode_is_logged(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=DEADLINE)
    world.key_file.chmod(0o640)
    status, _, err = run(capsys, "subject", "export", "--caller", NUMBER, "--to",
                         str(tmp_path / "out"), "--reason", "DSAR-17",
                         "--env-file", str(env_file(world)))
    assert status == 2 and "mode 0640" in err
    entry = only_entry(world)
    assert entry.recording_id == rec.recording_id and entry.detail["request"] == "data_subject"
    assert "caller_hash" in entry.detail
