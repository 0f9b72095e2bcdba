"""Legal holds: a held recording is kept and listed by the purge and
deleted after its release; every hold and release is in the access log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from asterisk_recguard.errors import UserError
from asterisk_recguard.holds import Refused, place_hold, release_hold
from asterisk_recguard.ledger import utcnow
from asterisk_recguard.retention import purge

from .recfixtures import T0, World, files

ACTOR = "alice"
DEADLINE = T0 + timedelta(days=1095)


def test_held_recording_is_kept_listed_and_deleted_after_release(world: World) -> None:
    rec = world.add(deadline=DEADLINE)
    place_hold(world.ledger, world.log, rec.recording_id, reason="court case P 123/2026",
               actor="bob")

    report = purge(world.ledger, world.log, DEADLINE + timedelta(days=30), ACTOR, recordings_dir=world.recordings)
    assert report.deleted == []
    assert [r.recording_id for r in report.held] == [rec.recording_id]
    assert report.held[0].hold_reason == "court case P 123/2026"
    assert world.ledger.recording(rec.recording_id).status == "finalized"
    assert files(world) == {f"{rec.recording_id}.wav.rgv"}
    assert world.events("purge")[0]["held"] == [rec.recording_id]

    release_hold(world.ledger, world.log, rec.recording_id, actor="carol", reason="case closed")
    report = purge(world.ledger, world.log, DEADLINE + timedelta(days=30), ACTOR, recordings_dir=world.recordings)
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
