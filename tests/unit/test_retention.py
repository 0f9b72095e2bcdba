"""Purge: deleted at the deadline and not before, an interrupted purge
finished by the next one, every step in the ledger, the access log and the
decision log."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard import retention, storage
from asterisk_recguard.ledger import utcnow
from asterisk_recguard.retention import purge

from .recfixtures import T0, World, files

ACTOR = "alice"
DEADLINE = T0 + timedelta(days=1095)


# --- the deadline ------------------------------------------------------------------


def test_deleted_at_the_deadline_and_not_before(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}

    early = purge(world.ledger, world.log, DEADLINE - timedelta(seconds=1), ACTOR, recordings_dir=world.recordings)
    assert early.deleted == [] and early.ok
    assert world.ledger.recording(rec.recording_id).status == "finalized"
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}

    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert [d.recording_id for d in report.deleted] == [rec.recording_id]
    assert report.deleted[0].files_removed == (rec.stored_path,)
    after = world.ledger.recording(rec.recording_id)
    assert after.status == "deleted"
    assert after.deletion_reason == "retention_expired"
    assert after.deleted_by == ACTOR
    assert after.deleted_at is not None and after.deleted_at > T0
    assert files(world) == set()


def test_clear_copy_is_deleted_with_the_ciphertext(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    Path(rec.path).write_bytes(b"a clear copy left by a crash during finalization")
    purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert files(world) == set()


def test_unencrypted_recording_is_deleted(world: World) -> None:
    rec = world.add(deadline=DEADLINE, encrypted=False)
    assert files(world) == {f"{rec.recording_id}.wav"}
    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert report.deleted[0].files_removed == (rec.path,)
    assert files(world) == set()


def test_only_expired_recordings_go(world: World) -> None:
    old = world.add(deadline=DEADLINE, seed=1)
    young = world.add(deadline=DEADLINE + timedelta(days=1), seed=2)
    live = world.add(deadline=DEADLINE, seed=3, finalize=False)
    purge(world.ledger, world.log, DEADLINE + timedelta(hours=1), ACTOR, recordings_dir=world.recordings)
    assert world.ledger.recording(old.recording_id).status == "deleted"
    assert world.ledger.recording(young.recording_id).status == "finalized"
    assert world.ledger.recording(live.recording_id).status == "recording"
    assert files(world) == {f"{young.recording_id}.wav.rgv", f"{live.recording_id}.wav"}


def test_each_deletion_and_the_run_are_logged(world: World) -> None:
    a = world.add(deadline=DEADLINE, seed=1)
    b = world.add(deadline=DEADLINE, seed=2)
    purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)

    deleted = world.events("recording_deleted")
    assert {e["recording_id"] for e in deleted} == {a.recording_id, b.recording_id}
    assert all(e["reason"] == "retention_expired" and e["actor"] == ACTOR for e in deleted)
    assert all(e["call_id"] for e in deleted)
    (summary,) = world.events("purge")
    assert summary["deleted"] == 2 and summary["actor"] == ACTOR and summary["dry_run"] is False
    assert summary["now"] == "2028-01-10T10:00:00.000000Z"

    (entry,) = world.ledger.access_log()
    assert (entry.action, entry.actor, entry.reason) == ("purge", ACTOR, "retention_expired")
    assert entry.detail["deleted"] == 2


def test_a_purge_with_nothing_to_do_is_logged_but_not_an_access(world: World) -> None:
    world.add(deadline=DEADLINE)
    purge(world.ledger, world.log, T0, ACTOR, recordings_dir=world.recordings)
    assert [e["deleted"] for e in world.events("purge")] == [0]
    assert world.ledger.access_log() == []


def test_dry_run_changes_nothing(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    report = purge(world.ledger, world.log, DEADLINE, ACTOR, dry_run=True, recordings_dir=world.recordings)
    assert [d.recording_id for d in report.deleted] == [rec.recording_id]
    assert world.ledger.recording(rec.recording_id).status == "finalized"
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}
    assert world.ledger.access_log() == []
    assert world.events("recording_deleted") == []
    assert world.events("purge")[0]["dry_run"] is True


# --- interrupted purges ------------------------------------------------------------------


def test_marked_deleting_then_killed_before_the_unlink(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    world.ledger.mark_deleting(rec.recording_id, reason="retention_expired", actor="earlier")
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}

    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert [d.recording_id for d in report.resumed] == [rec.recording_id]
    assert report.deleted == []
    after = world.ledger.recording(rec.recording_id)
    assert (after.status, after.deletion_reason, after.deleted_by) == (
        "deleted", "retention_expired", "earlier")
    assert files(world) == set()
    assert world.ledger.pending_deletions() == []
    assert world.events("recording_deleted")[0]["resumed"] is True


def test_unlinked_then_killed_before_marked_deleted(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    world.ledger.mark_deleting(rec.recording_id, reason="retention_expired", actor="earlier")
    Path(rec.stored_path).unlink()

    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert [d.recording_id for d in report.resumed] == [rec.recording_id]
    assert report.resumed[0].files_removed == ()
    assert world.ledger.recording(rec.recording_id).status == "deleted"
    assert world.ledger.pending_deletions() == []


def test_a_deletion_the_guard_is_doing_right_now_is_left_to_it(world: World) -> None:
    rec = world.add(deadline=DEADLINE, finalize=False)
    world.ledger.mark_deleting(rec.recording_id, reason="no_transaction")  # stopped_at: now
    report = purge(world.ledger, world.log, utcnow(), ACTOR, recordings_dir=world.recordings)
    assert [r.recording_id for r in report.in_flight] == [rec.recording_id]
    assert world.ledger.recording(rec.recording_id).status == "deleting"
    later = purge(world.ledger, world.log, utcnow(), ACTOR,
                  clock=lambda: utcnow() + retention.SETTLE + timedelta(seconds=1), recordings_dir=world.recordings)
    assert [d.reason for d in later.resumed] == ["no_transaction"]
    assert world.ledger.recording(rec.recording_id).status == "deleted"


KILLER = textwrap.dedent("""
    import os, signal, sys
    from datetime import datetime
    from pathlib import Path
    from asterisk_recguard import retention, storage
    from asterisk_recguard.decisionlog import DecisionLog
    from asterisk_recguard.ledger import Ledger

    calls = 0
    real_unlink = storage._unlink

    def unlink_then_die(path):
        global calls
        calls += 1
        if calls == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_unlink(path)

    storage._unlink = unlink_then_die
    retention.purge(Ledger(sys.argv[1]), DecisionLog(sys.argv[2]),
                    datetime.fromisoformat(sys.argv[4]), "killed-run", recordings_dir=Path(sys.argv[5]))
""")


def test_a_purge_killed_mid_run_is_finished_by_the_next(world: World) -> None:
    recs = [world.add(deadline=DEADLINE, seed=i) for i in range(30)]
    keep = world.add(deadline=DEADLINE + timedelta(days=365), seed=99)
    child = subprocess.run(
        [sys.executable, "-c", KILLER, str(world.ledger.path), str(world.log.path), "12",
         DEADLINE.isoformat(), str(world.recordings)],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr

    # Killed half-way: some files gone, the batch marked 'deleting', nothing 'deleted' yet.
    statuses = {r.recording_id: world.ledger.recording(r.recording_id).status for r in recs}
    assert set(statuses.values()) == {"deleting"}
    assert 0 < len(files(world)) < 31

    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert report.ok
    assert {d.recording_id for d in report.resumed} == {r.recording_id for r in recs}
    assert {world.ledger.recording(r.recording_id).status for r in recs} == {"deleted"}
    assert all(world.ledger.recording(r.recording_id).deleted_by == "killed-run" for r in recs)
    assert world.ledger.pending_deletions() == []
    assert files(world) == {f"{keep.recording_id}.wav.rgv"}
    assert world.ledger.known_paths() == {keep.path, keep.stored_path}


def test_an_unlink_error_is_reported_and_retried(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = world.add(deadline=DEADLINE, seed=1)
    good = world.add(deadline=DEADLINE, seed=2)
    real = storage._unlink

    def refuse(path: Path) -> bool:
        if bad.recording_id in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(storage, "_unlink", refuse)
    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert not report.ok
    assert [f.what for f in report.failures] == [bad.recording_id]
    assert "Permission denied" in report.failures[0].error
    assert world.ledger.recording(bad.recording_id).status == "deleting"
    assert world.ledger.recording(good.recording_id).status == "deleted"
    assert world.events("purge_failed")[0]["recording_id"] == bad.recording_id
    assert world.events("purge")[0]["level"] == "error"

    monkeypatch.setattr(storage, "_unlink", real)
    again = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings)
    assert again.ok and [d.recording_id for d in again.resumed] == [bad.recording_id]
    assert files(world) == set()


def test_a_purge_for_one_server_deletes_only_that_servers_recordings(world: World) -> None:
    world.ledger.server_id = "pbx-a"
    mine = world.add(deadline=DEADLINE, seed=1)
    world.ledger.server_id = "pbx-b"
    theirs = world.add(deadline=DEADLINE, seed=2)
    world.ledger.server_id = "pbx-a"
    report = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings,
                   server_id="pbx-a")
    assert [d.recording_id for d in report.deleted] == [mine.recording_id]
    kept = world.ledger.recording(theirs.recording_id)
    assert kept is not None and kept.status == "finalized"
    assert Path(kept.file_path).exists()
    (entry,) = world.ledger.access_log()
    assert (entry.server_id, entry.detail["server"]) == ("pbx-a", "pbx-a")
    assert world.events("purge")[-1]["server"] == "pbx-a"
    # pbx-b's own purge (or `recguard purge --server pbx-b`) deletes its one.
    again = purge(world.ledger, world.log, DEADLINE, ACTOR, recordings_dir=world.recordings,
                  server_id="pbx-b")
    assert [d.recording_id for d in again.deleted] == [theirs.recording_id]
