"""storage: the one deletion of a recording, whoever asks for it, and its
one ``recording_deleted`` line, whether alone or in a purge's batch."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard import storage
from asterisk_recguard.ledger import RecordingHeld, utcnow
from asterisk_recguard.retention import purge

from .recfixtures import T0, World

ACTOR = "alice"
DEADLINE = T0 + timedelta(days=1095)


def files(world: World) -> set[str]:
    return {p.name for p in world.recordings.iterdir()}


def test_one_deletion_and_a_batch_log_the_same_line(world: World) -> None:
    alone = world.add(deadline=DEADLINE + timedelta(days=1), seed=1)
    batched = world.add(deadline=DEADLINE, seed=2)

    storage.delete_recording(world.ledger, world.log, alone, reason="erasure_request",
                             actor=ACTOR, clock=lambda: DEADLINE, recordings_dir=world.recordings)
    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert [d.recording_id for d in report.deleted] == [batched.recording_id]

    lines = {e["recording_id"]: e for e in world.events("recording_deleted")}
    assert set(lines) == {alone.recording_id, batched.recording_id}
    assert set(lines[alone.recording_id]) == set(lines[batched.recording_id])
    assert lines[alone.recording_id]["files_removed"] == [alone.stored_path]
    assert lines[batched.recording_id]["files_removed"] == [batched.stored_path]


def test_a_ciphertext_left_beside_a_clear_recording_goes_with_it(world: World) -> None:
    rec = world.add(deadline=DEADLINE, encrypted=False)
    left = storage.encrypted_path(Path(rec.path))
    left.write_bytes(b"a ciphertext a cut-short finalization left")

    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert report.deleted[0].files_removed == (rec.path, str(left))
    assert files(world) == set()


def test_a_held_recording_cannot_be_deleted_by_the_two_steps(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    world.ledger.set_hold(rec.recording_id, reason="x", actor="bob")
    with pytest.raises(RecordingHeld):
        storage.delete_recording(world.ledger, world.log, rec, reason="erasure_request",
                                 actor=ACTOR, clock=utcnow, recordings_dir=world.recordings)
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}


def test_unlink_errors_collected_leave_the_other_files_deleted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stuck, gone, absent = tmp_path / "stuck.wav", tmp_path / "gone.wav", tmp_path / "absent.wav"
    stuck.write_bytes(b"x")
    gone.write_bytes(b"x")
    real = storage._unlink

    def refuse(path: Path) -> bool:
        if path == stuck:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(storage, "_unlink", refuse)
    with pytest.raises(PermissionError):
        storage.unlink_durably([stuck, gone])
    gone.write_bytes(b"x")
    failed: dict[Path, OSError] = {}
    assert storage.unlink_durably([stuck, gone, absent], failed=failed) == [gone]
    assert list(failed) == [stuck] and isinstance(failed[stuck], PermissionError)
    assert stuck.exists() and not gone.exists()
