"""Data-subject requests: every spelling of a number finds the same
recordings; erasure spares held recordings and says so; no clear number is
ever stored or logged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.callerid import hash_caller
from asterisk_recguard.errors import UserError
from asterisk_recguard.subjects import erase, find, subject_hash

from .recfixtures import NUMBER, SECRET, T0, World, export

ACTOR = "alice"
DEADLINE = T0 + timedelta(days=1095)
SPELLINGS = ["+386 40 123 456", "0038640123456", "040 123 456", "+386 (0)40 123-456"]


def caller_hash() -> str:
    return subject_hash(NUMBER, SECRET, "386")


# --- find -----------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_finds_the_same_recordings(world: World, spelling: str) -> None:
    mine = [world.add(deadline=DEADLINE, seed=i) for i in range(2)]
    world.add(deadline=DEADLINE, caller="+386 41 999 888", seed=7)  # someone else
    found = find(world.ledger, world.log, subject_hash(spelling, SECRET, "386"), actor=ACTOR)
    assert sorted(f.recording.recording_id for f in found) == sorted(r.recording_id for r in mine)
    assert all(f.call_started_at == T0 - timedelta(minutes=3) for f in found)


def test_find_is_logged_with_the_hash_and_shows_deleted_ones(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    gone = world.add(deadline=DEADLINE, seed=2)
    world.ledger.mark_deleting(gone.recording_id, reason="retention_expired")
    world.ledger.mark_deleted(gone.recording_id)
    found = find(world.ledger, world.log, caller_hash(), actor=ACTOR, reason="DSAR-17")
    assert {f.recording.recording_id: f.recording.status for f in found} == {
        rec.recording_id: "finalized", gone.recording_id: "deleted"}
    (entry,) = world.ledger.access_log()
    assert (entry.action, entry.actor, entry.reason) == ("access", ACTOR, "DSAR-17")
    assert entry.detail["caller_hash"] == caller_hash()
    assert world.events("access")[0]["caller_hash"] == caller_hash()


def test_find_without_a_reason_is_still_logged(world: World) -> None:
    find(world.ledger, world.log, caller_hash(), actor=ACTOR)
    assert world.ledger.access_log()[0].reason.startswith("data-subject look-up")


def test_an_unusable_number_is_refused_without_repeating_it() -> None:
    with pytest.raises(UserError) as info:
        subject_hash("anonymous 040 123", SECRET, "386")
    assert "040" not in str(info.value) and "anonymous" not in str(info.value)


def test_no_clear_number_is_stored_or_logged(world: World, tmp_path: Path) -> None:
    world.add(deadline=DEADLINE)
    for spelling in SPELLINGS:
        find(world.ledger, world.log, subject_hash(spelling, SECRET, "386"), actor=ACTOR)
    export(world, world.ledger.recordings_by_caller_hash(caller_hash()), tmp_path / "out")
    erase(world.ledger, world.log, caller_hash(), reason="erasure request", actor=ACTOR, recordings_dir=world.recordings)
    world.ledger.close()
    stored = b"".join(p.read_bytes() for p in world.root.rglob("*") if p.is_file()
                      and p.suffix not in (".wav", ".rgv"))
    for needle in ("38640123456", "40123456", "40 123 456", "123 456"):
        assert needle.encode() not in stored


# --- erase -----------------------------------------------------------------------------------


def test_erase_deletes_all_but_held_ones_and_names_those(world: World) -> None:
    a = world.add(deadline=DEADLINE, seed=1)
    b = world.add(deadline=DEADLINE, seed=2)
    held = world.add(deadline=DEADLINE, seed=3)
    other = world.add(deadline=DEADLINE, caller="+386 41 999 888", seed=4)
    world.ledger.set_hold(held.recording_id, reason="court case P 1/2026", actor="bob")

    report = erase(world.ledger, world.log, subject_hash("040 123 456", SECRET, "386"),
                   reason="erasure request DSAR-18", actor=ACTOR, recordings_dir=world.recordings)
    assert {d.recording_id for d in report.deleted} == {a.recording_id, b.recording_id}
    assert [(r.recording_id, "court case P 1/2026" in why) for r, why in report.refused] == [
        (held.recording_id, True)]
    for rec in (a, b):
        after = world.ledger.recording(rec.recording_id)
        assert (after.status, after.deletion_reason, after.deleted_by) == (
            "deleted", "erasure_request", ACTOR)
        assert not Path(rec.stored_path).exists()
    assert Path(held.stored_path).exists() and Path(other.stored_path).exists()

    entries = [(e.action, e.recording_id, e.detail["outcome"]) for e in world.ledger.access_log()]
    assert sorted(entries) == sorted([("erase", a.recording_id, "deleted"),
                                      ("erase", b.recording_id, "deleted"),
                                      ("erase", held.recording_id, "refused")])
    (summary,) = world.events("erase")
    assert summary["refused"] == [held.recording_id] and summary["level"] == "warning"
    reasons = {e["recording_id"]: e["reason"] for e in world.events("recording_deleted")}
    assert reasons == {a.recording_id: "erasure_request", b.recording_id: "erasure_request"}


def test_erase_needs_a_reason(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    with pytest.raises(UserError, match="reason"):
        erase(world.ledger, world.log, caller_hash(), reason=" ", actor=ACTOR, recordings_dir=world.recordings)
    assert world.ledger.recording(rec.recording_id).status == "finalized"


def test_erase_refuses_a_recording_still_being_made(world: World) -> None:
    live = world.add(deadline=DEADLINE, finalize=False)
    report = erase(world.ledger, world.log, caller_hash(), reason="DSAR", actor=ACTOR, recordings_dir=world.recordings)
    assert report.deleted == [] and report.refused[0][0].recording_id == live.recording_id
    assert Path(live.path).exists()


def test_erase_with_nothing_found_is_logged(world: World) -> None:
    report = erase(world.ledger, world.log, caller_hash(), reason="DSAR-19", actor=ACTOR, recordings_dir=world.recordings)
    assert report.deleted == [] and report.refused == []
    (entry,) = world.ledger.access_log()
    assert entry.detail == {"caller_hash": caller_hash(), "outcome": "nothing_found"}


def test_hash_matches_the_guard(world: World) -> None:
    assert caller_hash() == hash_caller("+38640123456", SECRET, "386")
