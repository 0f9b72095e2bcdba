"""A pause for card details, without Asterisk: the recording is muted and goes
on, the ledger and the decision log keep the pause, and a mute Asterisk refuses
stops the recording rather than let card details into it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_recguard import channelfacts as cf
from asterisk_recguard.guard import Guard
from asterisk_recguard.guard.pause import PAUSE_KEY_VAR, PAUSE_VAR
from asterisk_recguard.guard.testing import channel, destroyed, mixmonitor_start, stasis_start, varset
from asterisk_recguard.lifecycle import RecordingStatus

from .test_guard import EVIDENCE, SECRET, Rig, default_policy, make_rig, running

ORDER = {"purposes": "order", "notices": EVIDENCE}


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from running(make_rig(tmp_path))


def pause(call_id: str, value: str, variable: str = PAUSE_VAR, **facts: str) -> dict:
    return varset(channel(call_id, **(facts or ORDER)), variable, value)


def mixmonitor_id(rig: Rig, call_id: str) -> str:
    return rig.mixmonitors.running[call_id][-1][0]


def test_a_crm_pause_mutes_the_recording_until_the_resume(rig: Rig) -> None:
    rig.feed(stasis_start(channel("p1", **ORDER)))
    (rec,) = rig.recordings_of("p1")
    own = mixmonitor_id(rig, "p1")
    rig.feed(pause("p1", "1"))
    assert rig.mixmonitors.mutes == [("p1", own, True)]
    assert rig.mixmonitors.running["p1"] == [(own, Path(rec.path))]  # muted, not stopped
    (open_,) = rig.ledger.pauses(rec.recording_id)
    assert (open_.paused_by, open_.resumed_at) == ("crm", None)
    rig.feed(pause("p1", "0", PAUSE_KEY_VAR))
    assert rig.mixmonitors.muted == {own: False}
    (closed,) = rig.ledger.pauses(rec.recording_id)
    assert closed.resumed_by == "agent_key" and closed.resumed_at is not None
    assert closed.resumed_at >= closed.paused_at
    (paused,) = rig.log.events("recording_paused")
    (resumed,) = rig.log.events("recording_resumed")
    assert (paused["recording_id"], paused["trigger"]) == (rec.recording_id, "crm")
    assert (resumed["recording_id"], resumed["trigger"]) == (rec.recording_id, "agent_key")
    assert resumed["paused_at"] == paused["paused_at"]
    # Still the one recording, with its decisions untouched by the pause.
    assert rig.decisions("p1") == [("gate", "start")]


def test_a_second_pause_is_the_same_pause_and_a_stray_resume_does_nothing(rig: Rig) -> None:
    rig.feed(stasis_start(channel("p2", **ORDER)))
    (rec,) = rig.recordings_of("p2")
    rig.feed(pause("p2", "0"))  # not paused: nothing to end
    rig.feed(pause("p2", "1", PAUSE_KEY_VAR), pause("p2", "1"), pause("p2", "1", PAUSE_KEY_VAR))
    assert [m[2] for m in rig.mixmonitors.mutes] == [True]
    assert len(rig.ledger.pauses(rec.recording_id)) == 1
    assert len(rig.log.events("recording_paused")) == 1
    assert rig.log.events("recording_resumed") == []
    rig.feed(pause("p2", "garbage"))  # neither 1 nor 0: ignored
    assert [m[2] for m in rig.mixmonitors.mutes] == [True]


def test_the_hangup_ends_a_pause_at_the_end_of_the_call(rig: Rig) -> None:
    rig.feed(stasis_start(channel("p3", **ORDER)))
    (rec,) = rig.recordings_of("p3")
    rig.feed(pause("p3", "1", PAUSE_KEY_VAR))
    rig.feed(destroyed(channel("p3", **ORDER, outcome="transaction")))
    (pause_,) = rig.ledger.pauses(rec.recording_id)
    ended = rig.ledger.call("p3").ended_at
    assert (pause_.resumed_by, pause_.resumed_at) == ("hangup", ended)
    after = rig.ledger.recording(rec.recording_id)
    assert after is not None and after.status == RecordingStatus.FINALIZED
    (resumed,) = rig.log.events("recording_resumed")
    assert resumed["trigger"] == "hangup"


def test_a_pause_with_nothing_recorded_mutes_a_recording_that_starts_during_it(rig: Rig) -> None:
    rig.feed(stasis_start(channel("p4", purposes="general_info", notices=EVIDENCE)))
    assert rig.recordings_of("p4") == []
    rig.feed(pause("p4", "1", PAUSE_KEY_VAR, purposes="general_info", notices=EVIDENCE))
    (paused,) = rig.log.events("recording_paused")
    assert paused["recording_id"] is None and rig.mixmonitors.mutes == []
    # The agent reclassifies the call as an order during the pause: it starts muted at once.
    rig.feed(varset(channel("p4", **ORDER), cf.PURPOSE_VAR))
    (rec,) = rig.recordings_of("p4")
    assert rig.mixmonitors.mutes == [("p4", mixmonitor_id(rig, "p4"), True)]
    (open_,) = rig.ledger.pauses(rec.recording_id)
    assert open_.paused_by == "agent_key" and open_.resumed_at is None
    rig.feed(pause("p4", "0", PAUSE_KEY_VAR))
    assert rig.mixmonitors.muted[mixmonitor_id(rig, "p4")] is False


def test_a_retag_keeps_the_pause_and_a_restart_is_muted_at_once(rig: Rig) -> None:
    rig.feed(stasis_start(channel("p5", **ORDER)))
    (first,) = rig.recordings_of("p5")
    rig.feed(pause("p5", "1"))
    # Retagged while paused: the same MixMonitor, still muted, no new mute asked.
    rig.feed(varset(channel("p5", purposes="complaint", notices=EVIDENCE), cf.PURPOSE_VAR))
    assert rig.recordings_of("p5")[0].purposes == ["complaint"]
    assert len(rig.mixmonitors.mutes) == 1
    # A foreign MixMonitor makes the guard restart its own in a new part: muted at once.
    rig.feed(mixmonitor_start("p5"))  # the guard's own start, expected
    rig.mixmonitors.start_any("p5", rig.recordings / "rogue.wav")
    rig.feed(mixmonitor_start("p5", exten="100"))
    old, new = rig.recordings_of("p5")
    assert (old.recording_id, new.status) == (first.recording_id, RecordingStatus.RECORDING)
    assert rig.mixmonitors.mutes[-1] == ("p5", mixmonitor_id(rig, "p5"), True)
    (old_pause,) = rig.ledger.pauses(old.recording_id)
    assert old_pause.resumed_by == "stopped"
    (new_pause,) = rig.ledger.pauses(new.recording_id)
    assert (new_pause.paused_by, new_pause.resumed_at) == ("crm", None)


def test_a_failed_mute_stops_the_recording_and_claims_no_pause(rig: Rig) -> None:
    rig.feed(stasis_start(channel("p6", **ORDER)))
    (rec,) = rig.recordings_of("p6")
    rig.mixmonitors.fail_mute = RuntimeError("Cannot set mute flag")
    rig.feed(pause("p6", "1"))
    assert rig.mixmonitors.running["p6"] == []  # stopped: no card details on file
    after = rig.ledger.recording(rec.recording_id)
    assert after is not None and after.status == RecordingStatus.STOPPED
    assert rig.ledger.pauses(rec.recording_id) == []
    assert rig.log.events("recording_paused") == []
    (failed,) = rig.log.events("pause_failed")
    assert failed["level"] == "error" and "mute flag" in failed["error"]
    (stopped,) = rig.log.events("recording_stopped")
    assert stopped["reason"] == "pause_failed"
    # At the resume the call's recording goes on in a new part (muting works again).
    rig.mixmonitors.fail_mute = None
    rig.feed(pause("p6", "0"))
    old, new = rig.recordings_of("p6")
    assert old.recording_id == rec.recording_id and new.status == RecordingStatus.RECORDING
    assert rig.decisions("p6")[-1] == ("resume", "start")
    # The stopped part is kept with the call at the hangup.
    rig.feed(destroyed(channel("p6", **ORDER, outcome="transaction")))
    assert {r.status for r in rig.recordings_of("p6")} == {RecordingStatus.FINALIZED}


def test_a_failed_unmute_ends_the_silent_part_and_goes_on_in_a_new_one(rig: Rig) -> None:
    rig.feed(stasis_start(channel("p7", **ORDER)))
    (rec,) = rig.recordings_of("p7")
    rig.feed(pause("p7", "1"))
    rig.mixmonitors.fail_mute = RuntimeError("No such channel")
    rig.feed(pause("p7", "0"))
    old, new = rig.recordings_of("p7")
    assert old.recording_id == rec.recording_id and old.status == RecordingStatus.STOPPED
    (pause_,) = rig.ledger.pauses(rec.recording_id)
    assert pause_.resumed_by == "stopped"
    assert new.status == RecordingStatus.RECORDING and rig.ledger.pauses(new.recording_id) == []
    (failed,) = rig.log.events("resume_failed")
    assert failed["recording_id"] == rec.recording_id


def test_a_pause_on_a_call_the_guard_does_not_track_does_nothing(rig: Rig) -> None:
    rig.feed(pause("p8", "1"))
    assert rig.mixmonitors.mutes == [] and rig.log.events("recording_paused") == []


def test_a_guard_restarted_during_a_pause_knows_it_and_the_resume_unmutes(tmp_path: Path) -> None:
    first = make_rig(tmp_path / "one")
    chan = channel("p9", **ORDER)
    first.feed(stasis_start(chan), pause("p9", "1"))
    (rec,) = first.recordings_of("p9")
    own = mixmonitor_id(first, "p9")
    first.guard.shutdown(10)  # the guard goes away while the call is paused
    first.control.live["p9"] = chan
    second = Guard(policy=default_policy(), control=first.control, mixmonitors=first.mixmonitors,
                   ledger=first.ledger, decision_log=first.log, hash_secret=SECRET, lanes=2, workers=2)
    try:
        second.reconcile()
        second.wait_idle(10)
        second.on_ari_event(pause("p9", "1"))  # still the same pause: no second mute
        second.on_ari_event(pause("p9", "0", PAUSE_KEY_VAR))
        second.wait_idle(10)
        assert [(m[1], m[2]) for m in first.mixmonitors.mutes] == [(own, True), (own, False)]
        (closed,) = first.ledger.pauses(rec.recording_id)
        assert closed.resumed_by == "agent_key"
    finally:
        second.shutdown(10)
        first.ledger.close()
