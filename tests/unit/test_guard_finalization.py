"""The guard's finalization never leaves a clear copy behind on an error, and
neither it nor the guard's deletions touch a file the ledger names outside the
recordings directory. Real ledger and files, fakes of Asterisk."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from asterisk_recguard import channelfacts as cf
from asterisk_recguard.guard import Guard, actions
from asterisk_recguard.guard.testing import channel, destroyed, stasis_start, varset, write_closed_wav
from asterisk_recguard.ledger import Recording
from asterisk_recguard.lifecycle import RecordingStatus
from asterisk_recguard.orphans import scan_directory
from asterisk_recguard.vault import Keyring, VaultError, generate_key_file

from .test_guard import EVIDENCE, SECRET, Rig, default_policy, make_rig, running


def keyring(tmp_path: Path) -> Keyring:
    generate_key_file(tmp_path / "keys")
    return Keyring.load(tmp_path / "keys")


@pytest.fixture
def sealed(tmp_path: Path) -> Iterator[Rig]:
    """A guard that encrypts what it keeps."""
    yield from running(make_rig(tmp_path, keyring=keyring(tmp_path)))


@pytest.fixture
def clear(tmp_path: Path) -> Iterator[Rig]:
    """A guard with encryption off: the clear WAV is what it keeps."""
    yield from running(make_rig(tmp_path))


def a_kept_call(rig: Rig, call_id: str) -> Recording:
    chan = channel(call_id, purposes="order", notices=EVIDENCE)
    rig.feed(stasis_start(chan))
    rig.feed(destroyed(channel(call_id, purposes="order", notices=EVIDENCE, outcome="transaction")))
    (rec,) = rig.recordings_of(call_id)
    return rec


def spool(rig: Rig) -> list[str]:
    return sorted(p.name for p in rig.recordings.iterdir())


def assert_deleted_not_kept(rig: Rig, rec: Recording) -> None:
    assert spool(rig) == []  # no clear WAV, no ciphertext
    assert rec.status == RecordingStatus.DELETED and rec.deletion_reason == "finalize_failed"
    (failed,) = rig.log.events("finalize_failed")
    assert failed["recording_id"] == rec.recording_id and failed["next_step"] == "delete"
    assert not rig.log.events("recording_finalized")


# --- nothing clear is left behind ----------------------------------------------------------


@pytest.mark.parametrize("rig_name", ["sealed", "clear"])
def test_a_deadline_that_cannot_be_computed_leaves_no_recording(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, rig_name: str) -> None:
    rig: Rig = request.getfixturevalue(rig_name)
    monkeypatch.setattr(actions.diff, "retention_days", lambda policy, purposes: 3_000_000)
    rec = a_kept_call(rig, "f1")
    assert_deleted_not_kept(rig, rec)
    assert "OverflowError" in rig.log.events("finalize_failed")[0]["error"]


def test_an_encryption_failure_leaves_neither_the_clear_file_nor_a_partial_ciphertext(
        sealed: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    def fails_half_way(src: Path, dst: Path, keyring: Keyring, **kw: Any) -> Any:
        Path(dst).write_bytes(b"RGVAULT1 half a ciphertext")
        raise VaultError(f"cannot encrypt {src} to {dst}: No space left on device")

    monkeypatch.setattr(actions, "encrypt_file", fails_half_way)
    rec = a_kept_call(sealed, "f2")
    assert_deleted_not_kept(sealed, rec)


def test_a_ledger_failure_at_finalization_leaves_no_clear_file(sealed: Rig,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_error(*args: Any, **kw: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sealed.ledger, "recording_finalized", disk_error)
    rec = a_kept_call(sealed, "f3")
    assert_deleted_not_kept(sealed, rec)


def test_without_encryption_a_ledger_failure_leaves_the_recording_for_the_reconcile(
        clear: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_error(*args: Any, **kw: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(clear.ledger, "recording_finalized", disk_error)
        rec = a_kept_call(clear, "f4")
    assert rec.status == RecordingStatus.STOPPED and spool(clear) == [f"{rec.recording_id}.wav"]
    (failed,) = clear.log.events("finalize_failed")
    assert failed["recording_id"] == rec.recording_id and failed["next_step"] == "reconcile"
    clear.guard.reconcile()
    clear.guard.wait_idle(10)
    after = clear.ledger.recording(rec.recording_id)
    assert after is not None and after.status == RecordingStatus.FINALIZED


def test_when_even_the_deletion_fails_the_reconcile_finishes_it(sealed: Rig,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_error(*args: Any, **kw: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:  # the ledger cannot be written at all
        patch.setattr(sealed.ledger, "recording_finalized", disk_error)
        patch.setattr(sealed.ledger, "mark_deleting", disk_error)
        rec = a_kept_call(sealed, "f5")
    assert rec.status == RecordingStatus.STOPPED
    sealed.guard.reconcile()  # the ledger is back
    sealed.guard.wait_idle(10)
    after = sealed.ledger.recording(rec.recording_id)
    assert after is not None and after.status == RecordingStatus.FINALIZED
    assert spool(sealed) == [f"{rec.recording_id}.wav.rgv"]


# --- nothing outside the recordings directory is touched -------------------------------------


def point_at(rig: Rig, rec: Recording, path: Path) -> None:
    conn = sqlite3.connect(rig.ledger.path)
    with conn:
        conn.execute("UPDATE recordings SET path = ? WHERE recording_id = ?", (str(path), rec.recording_id))
    conn.close()


def outside(tmp_path: Path) -> Path:
    victim = tmp_path / "elsewhere" / "precious.wav"
    victim.parent.mkdir()
    write_closed_wav(victim)
    return victim


def test_the_guard_refuses_to_delete_a_file_its_ledger_row_names_outside(sealed: Rig, tmp_path: Path) -> None:
    victim = outside(tmp_path)
    before = victim.read_bytes()
    sealed.feed(stasis_start(channel("f6", purposes="order", notices=EVIDENCE)))
    (rec,) = sealed.recordings_of("f6")
    point_at(sealed, rec, victim)
    sealed.feed(varset(channel("f6", purposes="general_info", notices=EVIDENCE), cf.PURPOSE_VAR))
    assert victim.read_bytes() == before
    after = sealed.ledger.recording(rec.recording_id)
    assert after is not None and after.status == RecordingStatus.DELETING
    (line,) = sealed.log.events("deletion_refused")
    assert line["recording_id"] == rec.recording_id and line["file"] == str(victim)


def test_finalization_never_touches_a_file_its_ledger_row_names_outside(tmp_path: Path) -> None:
    ring = keyring(tmp_path)
    first = make_rig(tmp_path / "one", keyring=ring)
    first.feed(stasis_start(channel("f7", purposes="order", notices=EVIDENCE)))
    (rec,) = first.recordings_of("f7")
    first.guard.shutdown(10)  # the guard goes away while the call is up
    victim = outside(tmp_path)
    before = victim.read_bytes()
    point_at(first, rec, victim)  # and the ledger is edited meanwhile
    ended = int(datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc).timestamp())
    first.control.astdb["f7"] = f"{ended}|order|{EVIDENCE}|none|transaction"
    second = Guard(policy=default_policy(), control=first.control, mixmonitors=first.mixmonitors,
                   ledger=first.ledger, decision_log=first.log, hash_secret=SECRET,
                   keyring=ring, lanes=2, workers=2)
    try:
        second.reconcile()
        second.wait_idle(10)
        assert victim.read_bytes() == before
        assert sorted(p.name for p in victim.parent.iterdir()) == ["precious.wav"]
        after = first.ledger.recording(rec.recording_id)
        assert after is not None and after.status == RecordingStatus.DELETING
        assert [e["recording_id"] for e in first.log.events("deletion_refused")] == [rec.recording_id]
    finally:
        second.shutdown(10)
        first.ledger.close()


def test_a_clear_copy_is_removed_only_beside_a_ciphertext_in_the_recordings_directory(
        sealed: Rig, tmp_path: Path) -> None:
    rec = a_kept_call(sealed, "f8")
    assert rec.status == RecordingStatus.FINALIZED and rec.stored_path
    Path(rec.stored_path).unlink()  # the only copy left is clear ...
    write_closed_wav(Path(rec.path))
    conn = sqlite3.connect(sealed.ledger.path)
    with conn:  # ... and the row names a "ciphertext" elsewhere
        conn.execute("UPDATE recordings SET stored_path = ? WHERE recording_id = ?",
                     (str(outside(tmp_path)), rec.recording_id))
    conn.close()
    sealed.guard.reconcile()
    sealed.guard.wait_idle(10)
    assert spool(sealed) == [f"{rec.recording_id}.wav"]
    assert not sealed.log.events("clear_copy_removed")


def test_a_recording_an_older_ledger_does_not_know_as_finalized_keeps_its_ciphertext(sealed: Rig) -> None:
    rec = a_kept_call(sealed, "f9")
    assert spool(sealed) == [f"{rec.recording_id}.wav.rgv"]
    conn = sqlite3.connect(sealed.ledger.path)
    with conn:  # the ledger restored from a backup taken before the finalization
        conn.execute("UPDATE recordings SET status = 'stopped', stored_path = NULL, key_id = NULL, "
                     "finalized_at = NULL, deadline = NULL, sha256 = NULL WHERE recording_id = ?",
                     (rec.recording_id,))
    conn.close()
    sealed.guard.reconcile()
    sealed.guard.wait_idle(10)
    assert spool(sealed) == [f"{rec.recording_id}.wav.rgv"]
    after = sealed.ledger.recording(rec.recording_id)
    assert after is not None and after.status == RecordingStatus.STOPPED
    (failed,) = sealed.log.events("finalize_failed")
    assert failed["recording_id"] == rec.recording_id and failed["next_step"] == "operator"
    assert "backup" in failed["error"]
    assert scan_directory(sealed.ledger, sealed.recordings, grace_s=0).orphans == ()
