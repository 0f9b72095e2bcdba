"""Orphans: files the ledger does not know are deleted by the purge once
older than the grace period, and never while they may still be written."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from asterisk_recguard.ledger import utcnow
from asterisk_recguard.orphans import scan_directory
from asterisk_recguard.retention import purge

from .recfixtures import T0, World

ACTOR = "alice"
DEADLINE = T0 + timedelta(days=1095)


def files(world: World) -> set[str]:
    return {p.name for p in world.recordings.iterdir()}


def age(path: Path, seconds: float) -> None:
    then = utcnow().timestamp() - seconds
    os.utime(path, (then, then))


def test_orphans_older_than_the_grace_are_deleted_and_the_rest_kept(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    old = world.recordings / "stray-queue-recording.wav"
    old.write_bytes(b"RIFF")
    young = world.recordings / "0123456789abcdef0123456789abcdef.wav"
    young.write_bytes(b"RIFF")
    sub = world.recordings / "subdir"
    sub.mkdir()
    age(Path(rec.stored_path), 10 * 86400)  # an old file the ledger knows stays

    # A changed ctime keeps a freshly written file young whatever its mtime.
    scan = scan_directory(world.ledger, world.recordings, grace_s=3600)
    assert scan.orphans == () and {e.path for e in scan.in_progress} == {str(old), str(young)}

    later = lambda: utcnow() + timedelta(hours=2)  # noqa: E731
    report = purge(world.ledger, world.log, T0, ACTOR, orphans_dir=world.recordings,
                   orphan_grace=3600, clock=later, recordings_dir=world.recordings)
    assert {o.path for o in report.orphans} == {str(old), str(young)}
    assert files(world) == {f"{rec.recording_id}.wav.rgv", "subdir"}
    logged = world.events("orphan_deleted")
    assert {e["file"] for e in logged} == {str(old), str(young)}
    assert world.ledger.access_log()[-1].reason == "orphan_file"


def test_a_young_file_is_never_an_orphan_even_with_now_moved(world: World) -> None:
    young = world.recordings / "being-finalized.wav"
    young.write_bytes(b"RIFF")
    report = purge(world.ledger, world.log, T0 + timedelta(days=10_000), ACTOR,
                   orphans_dir=world.recordings, orphan_grace=3600, recordings_dir=world.recordings)
    assert report.orphans == [] and [o.path for o in report.orphans_in_progress] == [str(young)]
    assert young.exists()


def test_the_file_of_a_deleted_recording_is_an_orphan(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    world.ledger.mark_deleting(rec.recording_id, reason="retention_expired")
    world.ledger.mark_deleted(rec.recording_id)  # but the file was never removed
    scan = scan_directory(world.ledger, world.recordings, grace_s=0)
    assert [o.path for o in scan.orphans] == [rec.stored_path]


def test_orphans_dry_run(world: World) -> None:
    stray = world.recordings / "stray.wav"
    stray.write_bytes(b"x")
    report = purge(world.ledger, world.log, T0, ACTOR, dry_run=True,
                   orphans_dir=world.recordings, orphan_grace=0, recordings_dir=world.recordings)
    assert [o.path for o in report.orphans] == [str(stray)] and stray.exists()
