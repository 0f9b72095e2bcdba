"""Purge, legal hold and orphans: deleted at the deadline and not before,
held ones kept and listed, an interrupted purge finished by the next one,
every step in the ledger, the access log and the decision log."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard import retention
from asterisk_recguard.errors import UserError
from asterisk_recguard.ledger import RecordingHeld, utcnow
from asterisk_recguard.retention import (
    Refused,
    current_actor,
    place_hold,
    purge,
    release_hold,
    scan_directory,
)

from .recfixtures import T0, World

ACTOR = "alice"
DEADLINE = T0 + timedelta(days=1095)


def files(world: World) -> set[str]:
    return {p.name for p in world.recordings.iterdir()}


# --- the deadline ------------------------------------------------------------------


def test_deleted_at_the_deadline_and_not_before(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}

    early = purge(world.ledger, world.log, DEADLINE - timedelta(seconds=1), ACTOR)
    assert early.deleted == [] and early.ok
    assert world.ledger.recording(rec.recording_id).status == "finalized"
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}

    report = purge(world.ledger, world.log, DEADLINE, ACTOR)
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
    purge(world.ledger, world.log, DEADLINE, ACTOR)
    assert files(world) == set()


def test_unencrypted_recording_is_deleted(world: World) -> None:
    rec = world.add(deadline=DEADLINE, encrypted=False)
    assert files(world) == {f"{rec.recording_id}.wav"}
    report = purge(world.ledger, world.log, DEADLINE, ACTOR)
    assert report.deleted[0].files_removed == (rec.path,)
    assert files(world) == set()


def test_only_expired_recordings_go(world: World) -> None:
    old = world.add(deadline=DEADLINE, seed=1)
    young = world.add(deadline=DEADLINE + timedelta(days=1), seed=2)
    live = world.add(deadline=DEADLINE, seed=3, finalize=False)
    purge(world.ledger, world.log, DEADLINE + timedelta(hours=1), ACTOR)
    assert world.ledger.recording(old.recording_id).status == "deleted"
    assert world.ledger.recording(young.recording_id).status == "finalized"
    assert world.ledger.recording(live.recording_id).status == "recording"
    assert files(world) == {f"{young.recording_id}.wav.rgv", f"{live.recording_id}.wav"}


def test_each_deletion_and_the_run_are_logged(world: World) -> None:
    a = world.add(deadline=DEADLINE, seed=1)
    b = world.add(deadline=DEADLINE, seed=2)
    purge(world.ledger, world.log, DEADLINE, ACTOR)

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
    purge(world.ledger, world.log, T0, ACTOR)
    assert [e["deleted"] for e in world.events("purge")] == [0]
    assert world.ledger.access_log() == []


def test_dry_run_changes_nothing(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    report = purge(world.ledger, world.log, DEADLINE, ACTOR, dry_run=True)
    assert [d.recording_id for d in report.deleted] == [rec.recording_id]
    assert world.ledger.recording(rec.recording_id).status == "finalized"
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}
    assert world.ledger.access_log() == []
    assert world.events("recording_deleted") == []
    assert world.events("purge")[0]["dry_run"] is True


# --- legal hold ----------------------------------------------------------------------


def test_held_recording_is_kept_listed_and_deleted_after_release(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    place_hold(world.ledger, world.log, rec.recording_id, reason="court case P 123/2026",
               actor="bob")

    report = purge(world.ledger, world.log, DEADLINE + timedelta(days=30), ACTOR)
    assert report.deleted == []
    assert [r.recording_id for r in report.held] == [rec.recording_id]
    assert report.held[0].hold_reason == "court case P 123/2026"
    assert world.ledger.recording(rec.recording_id).status == "finalized"
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}
    assert world.events("purge")[0]["held"] == [rec.recording_id]

    release_hold(world.ledger, world.log, rec.recording_id, actor="carol", reason="case closed")
    report = purge(world.ledger, world.log, DEADLINE + timedelta(days=30), ACTOR)
    assert [d.recording_id for d in report.deleted] == [rec.recording_id]
    assert files(world) == set()

    actions = [(e.action, e.actor, e.reason, e.recording_id) for e in world.ledger.access_log()]
    assert actions == [
        ("hold", "bob", "court case P 123/2026", rec.recording_id),
        ("release", "carol", "case closed", rec.recording_id),
        ("purge", ACTOR, "retention_expired", None),
    ]
    assert world.events("hold")[0]["actor"] == "bob"
    assert world.events("release")[0]["hold_reason"] == "court case P 123/2026"


def test_hold_needs_a_reason(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    for blank in ("", "   "):
        with pytest.raises(UserError, match="reason"):
            place_hold(world.ledger, world.log, rec.recording_id, reason=blank, actor=ACTOR)
    assert not world.ledger.recording(rec.recording_id).held
    assert world.ledger.access_log() == []


def test_hold_refusals(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    with pytest.raises(UserError, match="not a recording id"):
        place_hold(world.ledger, world.log, "../../etc/passwd", reason="x", actor=ACTOR)
    with pytest.raises(UserError, match="no recording"):
        place_hold(world.ledger, world.log, "0" * 32, reason="x", actor=ACTOR)
    with pytest.raises(Refused, match="not under legal hold"):
        release_hold(world.ledger, world.log, rec.recording_id, actor=ACTOR)
    place_hold(world.ledger, world.log, rec.recording_id, reason="first", actor=ACTOR)
    with pytest.raises(Refused, match="already under legal hold") as info:
        place_hold(world.ledger, world.log, rec.recording_id, reason="second", actor=ACTOR)
    assert info.value.exit_code == 1
    assert world.ledger.recording(rec.recording_id).hold_reason == "first"
    gone = world.add(deadline=DEADLINE, seed=5)
    world.ledger.mark_deleting(gone.recording_id, reason="retention_expired")
    world.ledger.mark_deleted(gone.recording_id)
    with pytest.raises(Refused, match="deleted"):
        place_hold(world.ledger, world.log, gone.recording_id, reason="too late", actor=ACTOR)


def test_release_without_reason_is_logged_as_such(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    place_hold(world.ledger, world.log, rec.recording_id, reason="authority request", actor=ACTOR)
    release_hold(world.ledger, world.log, rec.recording_id, actor="dave")
    last = world.ledger.access_log()[-1]
    assert (last.action, last.actor, last.reason) == ("release", "dave", "no reason given")
    assert last.detail["hold_reason"] == "authority request"


def test_a_hold_placed_after_the_listing_is_respected(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    listed = [r.recording_id for r in world.ledger.expired(DEADLINE)]
    world.ledger.set_hold(rec.recording_id, reason="just now", actor="bob")
    marked = world.ledger.mark_deleting_expired(listed, now=DEADLINE, reason="retention_expired",
                                                actor=ACTOR, at=utcnow())
    assert marked == []
    assert world.ledger.recording(rec.recording_id).status == "finalized"


# --- interrupted purges ------------------------------------------------------------------


def test_marked_deleting_then_killed_before_the_unlink(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    world.ledger.mark_deleting(rec.recording_id, reason="retention_expired", actor="earlier")
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}

    report = purge(world.ledger, world.log, DEADLINE, ACTOR)
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

    report = purge(world.ledger, world.log, DEADLINE, ACTOR)
    assert [d.recording_id for d in report.resumed] == [rec.recording_id]
    assert report.resumed[0].files_removed == ()
    assert world.ledger.recording(rec.recording_id).status == "deleted"
    assert world.ledger.pending_deletions() == []


def test_a_deletion_the_guard_is_doing_right_now_is_left_to_it(world: World) -> None:
    rec = world.add(deadline=DEADLINE, finalize=False)
    world.ledger.mark_deleting(rec.recording_id, reason="no_transaction")  # stopped_at: now
    report = purge(world.ledger, world.log, utcnow(), ACTOR)
    assert [r.recording_id for r in report.in_flight] == [rec.recording_id]
    assert world.ledger.recording(rec.recording_id).status == "deleting"
    later = purge(world.ledger, world.log, utcnow(), ACTOR,
                  clock=lambda: utcnow() + retention.SETTLE + timedelta(seconds=1))
    assert [d.reason for d in later.resumed] == ["no_transaction"]
    assert world.ledger.recording(rec.recording_id).status == "deleted"


KILLER = textwrap.dedent("""
    import os, signal, sys
    from datetime import datetime
    from asterisk_recguard import retention
    from asterisk_recguard.decisionlog import DecisionLog
    from asterisk_recguard.ledger import Ledger

    calls = 0
    real_unlink = retention._unlink

    def unlink_then_die(path):
        global calls
        calls += 1
        if calls == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_unlink(path)

    retention._unlink = unlink_then_die
    retention.purge(Ledger(sys.argv[1]), DecisionLog(sys.argv[2]),
                    datetime.fromisoformat(sys.argv[4]), "killed-run")
""")


def test_a_purge_killed_mid_run_is_finished_by_the_next(world: World) -> None:
    recs = [world.add(deadline=DEADLINE, seed=i) for i in range(30)]
    keep = world.add(deadline=DEADLINE + timedelta(days=365), seed=99)
    child = subprocess.run(
        [sys.executable, "-c", KILLER, str(world.ledger.path), str(world.log.path), "12",
         DEADLINE.isoformat()],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr

    # Killed half-way: some files gone, the batch marked 'deleting', nothing 'deleted' yet.
    statuses = {r.recording_id: world.ledger.recording(r.recording_id).status for r in recs}
    assert set(statuses.values()) == {"deleting"}
    assert 0 < len(files(world)) < 31

    report = purge(world.ledger, world.log, DEADLINE, ACTOR)
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
    real = retention._unlink

    def refuse(path: Path) -> bool:
        if bad.recording_id in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(retention, "_unlink", refuse)
    report = purge(world.ledger, world.log, DEADLINE, ACTOR)
    assert not report.ok
    assert [f.what for f in report.failures] == [bad.recording_id]
    assert "Permission denied" in report.failures[0].error
    assert world.ledger.recording(bad.recording_id).status == "deleting"
    assert world.ledger.recording(good.recording_id).status == "deleted"
    assert world.events("purge_failed")[0]["recording_id"] == bad.recording_id
    assert world.events("purge")[0]["level"] == "error"

    monkeypatch.setattr(retention, "_unlink", real)
    again = purge(world.ledger, world.log, DEADLINE, ACTOR)
    assert again.ok and [d.recording_id for d in again.resumed] == [bad.recording_id]
    assert files(world) == set()


def test_a_held_recording_cannot_be_deleted_by_the_two_steps(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    world.ledger.set_hold(rec.recording_id, reason="x", actor="bob")
    with pytest.raises(RecordingHeld):
        retention.delete_recording(world.ledger, world.log, rec, reason="erasure_request",
                                   actor=ACTOR)
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}


# --- orphans ------------------------------------------------------------------------


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
                   orphan_grace=3600, clock=later)
    assert {o.path for o in report.orphans} == {str(old), str(young)}
    assert files(world) == {f"{rec.recording_id}.wav.rgv", "subdir"}
    logged = world.events("orphan_deleted")
    assert {e["file"] for e in logged} == {str(old), str(young)}
    assert world.ledger.access_log()[-1].reason == "orphan_file"


def test_a_young_file_is_never_an_orphan_even_with_now_moved(world: World) -> None:
    young = world.recordings / "being-finalized.wav"
    young.write_bytes(b"RIFF")
    report = purge(world.ledger, world.log, T0 + timedelta(days=10_000), ACTOR,
                   orphans_dir=world.recordings, orphan_grace=3600)
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
                   orphans_dir=world.recordings, orphan_grace=0)
    assert [o.path for o in report.orphans] == [str(stray)] and stray.exists()


# --- who acts ------------------------------------------------------------------------------


def test_actor_is_the_os_user_and_the_sudo_user_behind_it() -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    assert current_actor({}) == me
    assert current_actor({"SUDO_USER": "alice"}) == f"{me} (sudo by alice)"
    assert current_actor({"SUDO_USER": me}) == me
    assert current_actor({"SUDO_USER": "ev\nil\x1b[2J"}) == f"{me} (sudo by evil[2J)"
