"""Every deletion removes files inside the recordings directory only: a ledger
row that names a file elsewhere (an edited ledger, a restored backup, a moved
spool) is refused and logged, whichever path asks for the deletion, and the
recording stays 'deleting' for the operator to see."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard import storage
from asterisk_recguard.audit import audit
from asterisk_recguard.commands.purge import render
from asterisk_recguard.ledger import Recording, utcnow
from asterisk_recguard.lifecycle import RecordingStatus
from asterisk_recguard.policy import load_policy
from asterisk_recguard.resources import default_policy_path
from asterisk_recguard.retention import purge
from asterisk_recguard.subjects import erase, subject_hash

from .recfixtures import NUMBER, SECRET, T0, World

ACTOR = "alice"
DEADLINE = T0 + timedelta(days=1095)


def point_at(world: World, rec: Recording, *, stored: Path | None = None,
             clear: Path | None = None) -> Recording:
    """Edit the ledger row behind the guard's back, as a tampered or restored ledger would be."""
    conn = sqlite3.connect(world.ledger.path)
    with conn:
        if stored is not None:
            conn.execute("UPDATE recordings SET stored_path = ? WHERE recording_id = ?",
                         (str(stored), rec.recording_id))
        if clear is not None:
            conn.execute("UPDATE recordings SET path = ? WHERE recording_id = ?",
                         (str(clear), rec.recording_id))
    conn.close()
    edited = world.ledger.recording(rec.recording_id)
    assert edited is not None
    return edited


def victim(tmp_path: Path, name: str = "precious.wav.rgv") -> Path:
    outside = tmp_path / "elsewhere"
    outside.mkdir(exist_ok=True)
    path = outside / name
    path.write_bytes(b"not recguard's to delete")
    return path


def escapes(world: World, tmp_path: Path) -> dict[str, Callable[[], Path]]:
    """Ways a row's path can lead out of the recordings directory."""
    def plain() -> Path:
        return victim(tmp_path)

    def dotdot() -> Path:
        victim(tmp_path)
        return world.recordings / ".." / "elsewhere" / "precious.wav.rgv"

    def linked_directory() -> Path:
        victim(tmp_path)
        (world.recordings / "escape").symlink_to(tmp_path / "elsewhere")
        return world.recordings / "escape" / "precious.wav.rgv"

    def linked_file() -> Path:
        link = world.recordings / ("e" * 32 + ".wav.rgv")
        link.symlink_to(victim(tmp_path))
        return link

    return {"plain": plain, "dotdot": dotdot, "linked_directory": linked_directory,
            "linked_file": linked_file}


ESCAPES = ["plain", "dotdot", "linked_directory", "linked_file"]


def assert_refused(world: World, tmp_path: Path, rec: Recording, path: Path) -> None:
    assert (tmp_path / "elsewhere" / "precious.wav.rgv").read_bytes() == b"not recguard's to delete"
    after = world.ledger.recording(rec.recording_id)
    assert after is not None and after.status == RecordingStatus.DELETING
    (line,) = [e for e in world.events("deletion_refused") if e["recording_id"] == rec.recording_id]
    assert line["file"] == str(path) and line["level"] == "error"
    assert "outside the recordings directory" in line["error"]
    assert not world.events("recording_deleted")


@pytest.mark.parametrize("escape", ESCAPES)
def test_the_purge_batch_refuses_an_expired_row_pointing_outside(world: World, tmp_path: Path,
                                                                 escape: str) -> None:
    path = escapes(world, tmp_path)[escape]()
    rec = point_at(world, world.add(deadline=DEADLINE, seed=1), stored=path)
    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert report.deleted == [] and not report.ok
    (failure,) = report.failures
    assert failure.what == rec.recording_id and "outside the recordings directory" in failure.error
    assert "\n" not in failure.error
    assert_refused(world, tmp_path, rec, path)
    assert any(line.startswith(f"FAILED {rec.recording_id}: ") for line in render(report))


def test_the_rest_of_the_batch_is_still_deleted(world: World, tmp_path: Path) -> None:
    ordinary = world.add(deadline=DEADLINE, seed=2)
    rec = point_at(world, world.add(deadline=DEADLINE, seed=1), stored=victim(tmp_path))
    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert [d.recording_id for d in report.deleted] == [ordinary.recording_id]
    assert [f.what for f in report.failures] == [rec.recording_id]
    assert not Path(ordinary.stored_path or "").exists()


@pytest.mark.parametrize("escape", ESCAPES)
def test_finishing_an_interrupted_deletion_refuses_a_row_pointing_outside(
        world: World, tmp_path: Path, escape: str) -> None:
    path = escapes(world, tmp_path)[escape]()
    rec = world.add(deadline=DEADLINE + timedelta(days=400), seed=1)
    world.ledger.mark_deleting(rec.recording_id, reason="erasure_request", actor="bob", at=T0)
    rec = point_at(world, rec, clear=path)
    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert report.resumed == [] and [f.what for f in report.failures] == [rec.recording_id]
    assert_refused(world, tmp_path, rec, path)
    again = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert [f.what for f in again.failures] == [rec.recording_id]  # still refused, still shown


def test_an_erasure_refuses_a_row_pointing_outside_and_says_so(world: World, tmp_path: Path) -> None:
    path = victim(tmp_path)
    rec = point_at(world, world.add(deadline=DEADLINE, seed=1), stored=path)
    report = erase(world.ledger, world.log, subject_hash(NUMBER, SECRET, "386"),
                   reason="DSAR-9", actor=ACTOR, recordings_dir=world.recordings)
    assert report.deleted == []
    ((refused, why),) = report.refused
    assert refused.recording_id == rec.recording_id and "outside the recordings directory" in why
    assert_refused(world, tmp_path, rec, path)
    (entry,) = world.ledger.access_log()
    assert entry.detail["outcome"] == "refused"


def test_the_one_deletion_refuses_and_leaves_the_row_deleting(world: World, tmp_path: Path) -> None:
    path = victim(tmp_path)
    rec = point_at(world, world.add(deadline=DEADLINE, seed=1), stored=path)
    with pytest.raises(storage.OutsideRecordingsDir) as info:
        storage.delete_recording(world.ledger, world.log, rec, reason="reclassified", actor=ACTOR,
                                 clock=utcnow, recordings_dir=world.recordings)
    assert str(path) in str(info.value) and str(world.recordings) in str(info.value)
    assert_refused(world, tmp_path, rec, path)


def test_a_recordings_directory_reached_through_a_symlink_is_inside(world: World,
                                                                    tmp_path: Path) -> None:
    alias = tmp_path / "spool-alias"
    alias.symlink_to(world.recordings)
    rec = world.add(deadline=DEADLINE, seed=1)
    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=alias)
    assert [d.recording_id for d in report.deleted] == [rec.recording_id] and report.ok
    assert os.listdir(world.recordings) == []


def test_the_containment_check_itself() -> None:
    spool = Path("/var/spool/asterisk/recguard")
    assert storage.outside_of(spool, spool / ("a" * 32 + ".wav")) is None
    for path in (Path("/etc/passwd"), spool, spool / ".." / "x.wav", Path("x.wav"),
                 Path("/var/spool/asterisk/recguard-other/x.wav")):
        assert storage.outside_of(spool, path) is not None, path


def test_the_audit_names_a_row_pointing_outside_before_and_after_a_purge(world: World,
                                                                      tmp_path: Path) -> None:
    path = victim(tmp_path)
    kept = point_at(world, world.add(deadline=utcnow() + timedelta(days=900), seed=1), stored=path)
    expired = point_at(world, world.add(deadline=DEADLINE, seed=2), stored=path)
    purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)

    def problems() -> dict[str, str]:
        report = audit(world.ledger, load_policy(default_policy_path()), world.recordings,
                       orphan_grace=3600)
        return {p.recording_id or "": p.message for p in report.problems
                if p.kind == "outside_recordings_dir"}

    found = problems()
    assert set(found) == {kept.recording_id, expired.recording_id}
    assert all(str(path) in message and "outside the recordings directory" in message
               for message in found.values())
    assert "'deleting'" in found[expired.recording_id]


def test_a_moved_spool_is_neither_deleted_as_orphans_nor_by_the_purge(world: World,
                                                                     tmp_path: Path) -> None:
    kept = world.add(deadline=utcnow() + timedelta(days=900), seed=1)
    expired = world.add(deadline=DEADLINE, seed=2, encrypted=False)
    old_spool = tmp_path / "old-spool"  # where the rows say the files are; gone now
    for rec in (kept, expired):
        point_at(world, rec, clear=old_spool / Path(rec.path).name,
                 stored=old_spool / Path(rec.stored_path).name if rec.stored_path else None)
    before = sorted(os.listdir(world.recordings))
    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings,
                   orphans_dir=world.recordings, orphan_grace=0)
    assert report.orphans == [] and report.deleted == []
    assert [f.what for f in report.failures] == [expired.recording_id]
    assert sorted(os.listdir(world.recordings)) == before
    report = audit(world.ledger, load_policy(default_policy_path()), world.recordings, orphan_grace=0)
    assert sorted(p.kind for p in report.problems) == ["outside_recordings_dir"] * 2
