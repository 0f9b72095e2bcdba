"""The guard without Asterisk: real ledger, real files, fakes of the Asterisk side.

Each test feeds the guard the ARI and AMI events a call produces and checks
what it did: what it asked of Asterisk, what the ledger holds, which files
exist and what the decision log says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from asterisk_recguard import channelfacts as cf
from asterisk_recguard.guard import Guard
from asterisk_recguard.guard.testing import (
    CapturingLog,
    FakeCallControl,
    FakeMixMonitors,
    channel,
    destroyed,
    dtmf,
    mixmonitor_start,
    stasis_start,
    varset,
)
from asterisk_recguard.ledger import Ledger, Recording
from asterisk_recguard.lifecycle import RecordingStatus
from asterisk_recguard.policy import Policy, load_policy, parse_policy
from asterisk_recguard.resources import default_policy_path
from asterisk_recguard.vault import Keyring

SECRET = "s" * 40
EVIDENCE = "evidence-v1:complete"
CONSENT_NOTICES = "evidence-v1:complete,quality-consent-v1:complete"


@dataclass
class Rig:
    guard: Guard
    control: FakeCallControl
    mixmonitors: FakeMixMonitors
    ledger: Ledger
    log: CapturingLog
    recordings: Path

    def feed(self, *events: dict) -> None:
        for event in events:
            if "Event" in event:
                self.guard.on_ami_event(event)
            else:
                self.guard.on_ari_event(event)
        self.guard.wait_idle(10)

    def recordings_of(self, call_id: str) -> list[Recording]:
        return self.ledger.recordings_for_call(call_id)

    def decisions(self, call_id: str) -> list[tuple[str, str]]:
        return [(d.trigger, d.action) for d in self.ledger.decisions_for_call(call_id)]


def default_policy() -> Policy:
    return load_policy(default_policy_path())


def make_rig(tmp_path: Path, policy: Policy | None = None, keyring: Keyring | None = None) -> Rig:
    recordings = tmp_path / "recordings"
    recordings.mkdir(parents=True)
    ledger = Ledger.create(tmp_path / "ledger.sqlite3", recordings_dir=recordings)
    control, mixmonitors, log = FakeCallControl(), FakeMixMonitors(recordings), CapturingLog()
    guard = Guard(policy=policy or default_policy(), control=control, mixmonitors=mixmonitors, ledger=ledger,
                  decision_log=log, hash_secret=SECRET, keyring=keyring, lanes=2, workers=2)
    return Rig(guard, control, mixmonitors, ledger, log, recordings)


def running(r: Rig) -> Iterator[Rig]:
    """``r`` for one test: its guard shut down and its ledger closed afterwards."""
    try:
        yield r
    finally:
        r.guard.shutdown(10)
        r.ledger.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from running(make_rig(tmp_path))


def test_gate_records_an_order_after_the_notice_and_tells_the_dialplan(rig: Rig) -> None:
    chan = channel("c1", purposes="order", notices=EVIDENCE)
    rig.feed(stasis_start(chan))
    (rec,) = rig.recordings_of("c1")
    assert rec.status == RecordingStatus.RECORDING and rec.purposes == ["order"]
    assert Path(rec.path).exists()
    assert rig.control.variables["c1"] == {cf.DECISION_VAR: "record", cf.RECORDING_ID_VAR: rec.recording_id}
    # Subscribed before the call went on, so no later change is missed.
    order = [r[0] for r in rig.control.requests]
    assert order.index("subscribe") < order.index("continue_call")
    assert rig.decisions("c1") == [("gate", "start")]
    assert rig.guard.tracked_calls() == 1


def test_gate_skips_general_information_and_records_nothing(rig: Rig) -> None:
    rig.feed(stasis_start(channel("c2", purposes="general_info", notices=EVIDENCE)))
    assert rig.recordings_of("c2") == []
    assert rig.mixmonitors.started == []
    assert rig.control.variables["c2"] == {cf.DECISION_VAR: "skip"}
    assert rig.control.asked("continue_call") == [("c2",)]
    (line,) = rig.log.events("decision")
    assert line["decision"] == "skip" and line["reasons"] == [{"purpose": "general_info", "reason": "purpose_forbidden"}]


def test_without_the_notice_heard_to_the_end_nothing_is_recorded(rig: Rig) -> None:
    rig.feed(stasis_start(channel("c3", purposes="order", notices="evidence-v1:interrupted")))
    assert rig.recordings_of("c3") == []
    assert rig.control.variables["c3"][cf.DECISION_VAR] == "skip"


def test_reclassified_to_general_information_the_recording_is_stopped_and_deleted(rig: Rig) -> None:
    rig.feed(stasis_start(channel("c4", purposes="order", notices=EVIDENCE)))
    (rec,) = rig.recordings_of("c4")
    rig.feed(varset(channel("c4", purposes="general_info", notices=EVIDENCE), cf.PURPOSE_VAR))
    after = rig.ledger.recording(rec.recording_id)
    assert after is not None and after.status == RecordingStatus.DELETED
    assert after.deletion_reason == "reclassified"
    assert not Path(rec.path).exists()
    assert rig.mixmonitors.running.get("c4") == []
    assert rig.decisions("c4") == [("gate", "start"), ("change", "delete")]
    (deleted,) = rig.log.events("recording_deleted")
    assert deleted["recording_id"] == rec.recording_id and deleted["files_removed"] == [rec.path]


def test_no_transaction_at_the_end_deletes_the_evidence_recording(rig: Rig) -> None:
    rig.feed(stasis_start(channel("c5", purposes="order", notices=EVIDENCE)))
    (rec,) = rig.recordings_of("c5")
    rig.feed(destroyed(channel("c5", purposes="order", notices=EVIDENCE, outcome="no_transaction")))
    after = rig.ledger.recording(rec.recording_id)
    assert after is not None and after.status == RecordingStatus.DELETED
    assert after.deletion_reason == "no_transaction"
    assert rig.decisions("c5")[-1] == ("hangup", "delete")
    assert rig.guard.tracked_calls() == 0
    assert ("forget_final_facts", "c5") in rig.control.requests


def test_a_lawful_call_is_finalized_at_hangup_with_its_deadline(rig: Rig) -> None:
    rig.feed(stasis_start(channel("c6", purposes="order", notices=EVIDENCE)))
    rig.feed(destroyed(channel("c6", purposes="order", notices=EVIDENCE, outcome="transaction")))
    (rec,) = rig.recordings_of("c6")
    assert rec.status == RecordingStatus.FINALIZED and rec.sha256 and rec.deadline is not None
    ended = rig.ledger.call("c6").ended_at
    assert ended is not None and (rec.deadline - ended).days == 1095
    (line,) = rig.log.events("recording_finalized")
    assert line["retention_days"] == 1095 and line["encrypted"] is False


def test_consent_withdrawn_by_key_deletes_a_quality_only_recording(rig: Rig) -> None:
    chan = channel("c7", purposes="quality", notices=CONSENT_NOTICES, consent="given")
    rig.feed(stasis_start(chan))
    (rec,) = rig.recordings_of("c7")
    assert rec.purposes == ["quality"]
    rig.feed(dtmf(chan, "9"))
    after = rig.ledger.recording(rec.recording_id)
    assert after is not None and after.status == RecordingStatus.DELETED
    assert after.deletion_reason == "consent_withdrawn"
    # The dialplan, the agent's desktop and a later gate pass are told.
    assert rig.control.variables["c7"][cf.CONSENT_VAR] == "withdrawn"
    # A stale snapshot saying "given" does not bring consent back.
    rig.feed(varset(chan, cf.CONSENT_VAR))
    assert len(rig.recordings_of("c7")) == 1


def test_withdrawal_keeps_an_evidence_recording_for_its_evidence_purpose(rig: Rig) -> None:
    chan = channel("c8", purposes="order,quality", notices=CONSENT_NOTICES, consent="given")
    rig.feed(stasis_start(chan))
    (rec,) = rig.recordings_of("c8")
    assert rec.purposes == ["order", "quality"]
    rig.feed(dtmf(chan, "9"))
    after = rig.ledger.recording(rec.recording_id)
    assert after is not None and after.status == RecordingStatus.RECORDING and after.purposes == ["order"]
    assert [c.reason for c in rig.ledger.purpose_history(rec.recording_id)][-1] == "dtmf"


def test_a_transfer_through_the_gate_again_keeps_the_recording_with_the_new_purposes(rig: Rig) -> None:
    rig.feed(stasis_start(channel("c9", purposes="order", notices=EVIDENCE)))
    (rec,) = rig.recordings_of("c9")
    # The second queue's dialplan declares a complaint and passes the gate again.
    rig.feed(stasis_start(channel("c9", purposes="complaint", notices=EVIDENCE)))
    (same,) = rig.recordings_of("c9")
    assert same.recording_id == rec.recording_id and same.purposes == ["complaint"]
    assert rig.decisions("c9") == [("gate", "start"), ("gate", "keep")]
    assert rig.control.variables["c9"][cf.DECISION_VAR] == "record"
    assert len(rig.mixmonitors.started) == 1
    # Transferred to general information: the earlier recording goes.
    rig.feed(stasis_start(channel("c9", purposes="general_info", notices=EVIDENCE)))
    assert rig.ledger.recording(rec.recording_id).status == RecordingStatus.DELETED
    assert rig.control.variables["c9"][cf.DECISION_VAR] == "skip"


def test_a_foreign_mixmonitor_is_stopped_and_deleted_and_the_lawful_one_goes_on(rig: Rig) -> None:
    rig.feed(stasis_start(channel("c10", purposes="order", notices=EVIDENCE)))
    (own,) = rig.recordings_of("c10")
    rig.feed(mixmonitor_start("c10"))  # the guard's own start: expected, not foreign
    assert rig.ledger.unauthorized_log() == []
    rogue = rig.recordings / "rogue.wav"
    rig.mixmonitors.start_any("c10", rogue)
    rig.feed(mixmonitor_start("c10", context="from-trunk", exten="100", priority="7"))
    (entry,) = rig.ledger.unauthorized_log()
    assert entry.action == "stopped_deleted" and entry.file == str(rogue) and entry.call_id == "c10"
    assert "from-trunk,100,7" in (entry.started_by or "")
    assert not rogue.exists()
    parts = rig.recordings_of("c10")
    assert [p.status for p in parts] == ["stopped", "recording"]
    assert parts[0].recording_id == own.recording_id
    assert rig.decisions("c10")[-1] == ("resume", "start")
    # Its own restart's MixMonitorStart is expected, not foreign.
    rig.feed(mixmonitor_start("c10"))
    assert len(rig.ledger.unauthorized_log()) == 1


def test_a_foreign_mixmonitor_outside_the_recordings_directory_is_stopped_but_not_deleted(
        rig: Rig, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.wav"
    rig.mixmonitors.start_any("c11", elsewhere)
    rig.feed(mixmonitor_start("c11"))
    (entry,) = rig.ledger.unauthorized_log()
    assert entry.action == "stopped_file_kept" and entry.call_id is None
    assert elsewhere.exists() and rig.mixmonitors.running.get("c11") is None


def test_a_failed_start_says_unavailable_and_leaves_no_recording(rig: Rig) -> None:
    rig.mixmonitors.fail_start = RuntimeError("MixMonitor: no such channel")
    rig.feed(stasis_start(channel("c12", purposes="order", notices=EVIDENCE)))
    # The law allowed it; the guard could not record: "unavailable", never "skip".
    assert cf.DECISION_VAR not in rig.control.variables.get("c12", {})
    assert rig.control.asked("continue_call") == [("c12",)]
    assert rig.guard.tracked_calls() == 0
    # Subscribed only once MixMonitor has started: a failed start leaves no subscription behind.
    assert rig.control.asked("subscribe") == [] and ("unsubscribe", "c12") not in rig.control.requests
    assert rig.ledger.call("c12").status == "ended"
    (rec,) = rig.recordings_of("c12")
    deadline = time.monotonic() + 10
    while rig.ledger.recording(rec.recording_id).status != RecordingStatus.DELETED and time.monotonic() < deadline:
        time.sleep(0.05)
    after = rig.ledger.recording(rec.recording_id)
    assert after.status == RecordingStatus.DELETED and after.deletion_reason == "start_failed"
    assert rig.decisions("c12") == [("gate", "none")]
    (failed,) = rig.log.events("gate_failed")
    assert "MixMonitor did not start" in failed["error"]


def test_a_decision_the_dialplan_did_not_hear_leaves_the_call_unrecorded_and_untracked(rig: Rig) -> None:
    from asterisk_recguard.guard.asterisk import AsteriskError

    rig.control.fail["set_variables"] = AsteriskError("AMI Setvar: not connected")
    rig.feed(stasis_start(channel("c13", purposes="order", notices=EVIDENCE)))
    # The dialplan says "unavailable" then: nothing may be recorded.
    assert rig.control.asked("continue_call") == [("c13",)]
    assert rig.guard.tracked_calls() == 0
    (rec,) = rig.recordings_of("c13")
    assert rig.ledger.recording(rec.recording_id).status in (RecordingStatus.DELETING, RecordingStatus.DELETED)
    assert rig.ledger.call("c13").status == "ended"
    assert ("unsubscribe", "c13") in rig.control.requests


def test_reconcile_after_a_restart_finalizes_a_call_that_ended_meanwhile(tmp_path: Path) -> None:
    first = make_rig(tmp_path / "one")
    first.feed(stasis_start(channel("c14", purposes="order", notices=EVIDENCE)))
    (rec,) = first.recordings_of("c14")
    first.guard.shutdown(10)  # the guard goes away while the call is up
    # The call ended meanwhile, with no transaction; the hangup handler left that in AstDB.
    ended = int(datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc).timestamp())
    second = Guard(policy=default_policy(), control=first.control, mixmonitors=first.mixmonitors,
                   ledger=first.ledger, decision_log=first.log, hash_secret=SECRET, lanes=2, workers=2)
    first.control.astdb["c14"] = f"{ended}|order|{EVIDENCE}|none|no_transaction"
    try:
        second.reconcile()
        second.wait_idle(10)
        after = first.ledger.recording(rec.recording_id)
        assert after.status == RecordingStatus.DELETED and after.deletion_reason == "no_transaction"
        call = first.ledger.call("c14")
        assert call.status == "ended" and call.ended_at == datetime.fromtimestamp(ended, timezone.utc)
        assert "c14" not in first.control.astdb
    finally:
        second.shutdown(10)
        first.ledger.close()


def test_reconcile_after_a_restart_tracks_a_live_call_again(tmp_path: Path) -> None:
    first = make_rig(tmp_path / "one")
    chan = channel("c15", purposes="order", notices=EVIDENCE)
    first.feed(stasis_start(chan))
    first.guard.shutdown(10)
    first.control.live["c15"] = chan
    second = Guard(policy=default_policy(), control=first.control, mixmonitors=first.mixmonitors,
                   ledger=first.ledger, decision_log=first.log, hash_secret=SECRET, lanes=2, workers=2)
    try:
        second.reconcile()
        second.wait_idle(10)
        assert second.tracked_calls() == 1
        assert first.control.asked("subscribe").count(("c15",)) == 2
        assert [r.status for r in first.recordings_of("c15")] == ["recording"]
        # The call is the new guard's now: a reclassification deletes the recording.
        second.on_ari_event(varset(channel("c15", purposes="general_info", notices=EVIDENCE), cf.PURPOSE_VAR))
        second.wait_idle(10)
        assert [r.status for r in first.recordings_of("c15")] == ["deleted"]
        assert first.log.events("call_resumed")[0]["call_id"] == "c15"
    finally:
        second.shutdown(10)
        first.ledger.close()


def test_a_reconcile_during_a_finalization_does_not_take_the_call_again(rig: Rig) -> None:
    chan = channel("c20", purposes="order", notices=EVIDENCE, outcome="transaction")
    rig.feed(stasis_start(chan))
    real_finalize = rig.guard.passes.finalize
    release = threading.Event()

    def slow_finalize(*args, **kwargs):  # type: ignore[no-untyped-def]
        release.wait(10)  # the hangup's work is under way while reconciles run
        real_finalize(*args, **kwargs)

    rig.guard.passes.finalize = slow_finalize  # type: ignore[method-assign]
    rig.guard.on_ari_event(destroyed(chan))
    assert wait_for(lambda: not rig.guard.lanes.busy(), 5)
    # Two reconciles (an ARI and an AMI reconnect) while the ledger still says "live".
    for _ in range(2):
        rig.guard.reconciler.run()
        assert wait_for(lambda: not rig.guard.lanes.busy(), 5)
    assert rig.guard.tracked_calls() == 0
    release.set()
    rig.guard.wait_idle(10)
    # Once it is finalized, a reconcile that had read it as live leaves it alone too.
    rig.guard.reconciler.run()
    rig.guard.wait_idle(10)
    assert rig.decisions("c20") == [("gate", "start"), ("hangup", "keep")]
    assert [r.status for r in rig.recordings_of("c20")] == ["finalized"]


def test_a_policy_reload_during_a_decision_pass_does_not_mix_two_policies(rig: Rig) -> None:
    newer = parse_policy(default_policy_path().read_text().replace('version = "2026-11"', 'version = "2026-12"'),
                         source=str(default_policy_path()))
    old_label, new_label = rig.guard.policy.label, newer.label
    assert old_label != new_label
    real_start = rig.mixmonitors.start

    def start_then_reload(channel: str, recording_id: str, timeout: float | None = None):  # type: ignore[no-untyped-def]
        rig.guard.set_policy(newer)  # SIGHUP arrives in the middle of the pass
        return real_start(channel, recording_id, timeout)

    rig.mixmonitors.start = start_then_reload  # type: ignore[method-assign]
    rig.feed(stasis_start(channel("c16", purposes="order", notices=EVIDENCE)))
    decisions = rig.ledger.decisions_for_call("c16")
    assert [(d.trigger, d.action, d.policy) for d in decisions] == [
        ("gate", "start", old_label), ("reload", "keep", new_label)]
    (started,) = rig.log.events("recording_started")
    assert started["policy"] == old_label


# --- an overloaded guard sheds gates, and says so truthfully -----------------------------


def test_a_gate_that_waited_past_its_time_is_shed_as_unavailable_with_no_work(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.guard.gate.timeout = 0.000001  # every gate has waited longer than this for its lane
    rig.feed(stasis_start(channel("s1", purposes="order", notices=EVIDENCE)))
    # Nothing told: the dialplan's own answer is "unavailable", never "skip".
    assert "s1" not in rig.control.variables
    assert rig.control.asked("continue_call") == [("s1",)]
    assert rig.control.asked("subscribe") == [] and rig.mixmonitors.started == []
    assert rig.ledger.call("s1") is None and rig.guard.tracked_calls() == 0
    (shed,) = rig.log.events("gate_shed")
    # Whoever came first, the lane or the deadline's own thread, shed it.
    assert shed["stage"] in ("waiting for its turn", "at its deadline") and shed["decision"] == "unavailable"
    assert rig.log.events("gate_failed") == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # one line, no traceback


def test_a_gate_whose_time_ran_out_while_deciding_undoes_its_recording(rig: Rig) -> None:
    rig.guard.gate.timeout = 0.3
    real_start = rig.mixmonitors.start
    continued_before_start_returned: list[bool] = []

    def slow_start(channel: str, recording_id: str, timeout: float | None = None):  # type: ignore[no-untyped-def]
        time.sleep(0.6)  # Asterisk answers, but too late for this caller
        continued_before_start_returned.append(rig.control.asked("continue_call") == [(channel,)])
        return real_start(channel, recording_id, timeout)

    rig.mixmonitors.start = slow_start  # type: ignore[method-assign]
    began = time.monotonic()
    rig.guard.on_ari_event(stasis_start(channel("s2", purposes="order", notices=EVIDENCE)))
    # The caller goes on at the deadline, not when Asterisk answers the gate's request.
    assert wait_for(lambda: rig.control.asked("continue_call") == [("s2",)], 3)
    assert time.monotonic() - began < 0.3 + 0.25
    rig.guard.wait_idle(10)
    assert continued_before_start_returned == [True]
    assert rig.control.asked("continue_call") == [("s2",)]  # once, by the deadline
    assert "s2" not in rig.control.variables
    (rec,) = rig.recordings_of("s2")
    after = rig.ledger.recording(rec.recording_id)
    assert after.status == RecordingStatus.DELETED and after.deletion_reason == "gate_shed"
    assert rig.guard.tracked_calls() == 0 and rig.ledger.call("s2").status == "ended"
    (shed,) = rig.log.events("gate_shed")
    assert shed["stage"] == "at its deadline, while deciding"
    assert list(rig.guard.gate.seconds) == []  # timed by the deadline that answered, not twice


def test_a_gate_that_answers_just_in_time_is_not_shed_by_its_deadline(rig: Rig) -> None:
    rig.guard.gate.timeout = 0.3
    real_set = rig.control.set_variables

    def slow_tell(call_id: str, variables, timeout: float) -> None:  # type: ignore[no-untyped-def]
        time.sleep(0.4)  # the lane claimed the answer before the deadline; Asterisk is slow
        real_set(call_id, variables, timeout)

    rig.control.set_variables = slow_tell  # type: ignore[method-assign]
    rig.feed(stasis_start(channel("s6", purposes="order", notices=EVIDENCE)))
    assert rig.control.variables["s6"][cf.DECISION_VAR] == "record"
    assert rig.control.asked("continue_call") == [("s6",)]
    assert rig.log.events("gate_shed") == []
    assert [r.status for r in rig.recordings_of("s6")] == ["recording"]
    assert len(rig.guard.gate.seconds) == 1


def test_a_shed_re_gate_still_decides_the_new_facts_after_the_caller_went_on(rig: Rig) -> None:
    rig.feed(stasis_start(channel("s3", purposes="order", notices=EVIDENCE)))
    (rec,) = rig.recordings_of("s3")
    rig.guard.gate.timeout = 0.000001
    rig.feed(stasis_start(channel("s3", purposes="general_info", notices=EVIDENCE)))
    # The dialplan was not told (unavailable for this pass) ...
    assert rig.control.variables["s3"][cf.DECISION_VAR] == "record"  # still the first pass's answer
    assert rig.log.events("gate_shed")
    # ... but a transfer to general information still ends the recording.
    assert rig.ledger.recording(rec.recording_id).status == RecordingStatus.DELETED


def test_the_guard_recovers_by_itself_when_the_load_falls(rig: Rig) -> None:
    rig.guard.gate.timeout = 0.000001
    rig.feed(stasis_start(channel("s4", purposes="order", notices=EVIDENCE)))
    rig.guard.gate.timeout = 2.0
    rig.feed(stasis_start(channel("s5", purposes="order", notices=EVIDENCE)))
    assert rig.control.variables["s5"][cf.DECISION_VAR] == "record"
    assert [r.status for r in rig.recordings_of("s5")] == ["recording"]


def _block_the_lanes(rig: Rig) -> threading.Event:
    """Every lane busy with someone else's slow work until the event is set."""
    release = threading.Event()
    rig.guard.lanes.post_all(lambda calls: release.wait(10))
    return release


def test_a_gate_stuck_behind_a_busy_lane_is_continued_at_its_deadline(rig: Rig) -> None:
    rig.guard.gate.timeout = 0.3
    release = _block_the_lanes(rig)
    began = time.monotonic()
    rig.guard.on_ari_event(stasis_start(channel("d1", purposes="order", notices=EVIDENCE)))
    assert wait_for(lambda: rig.control.asked("continue_call") == [("d1",)], 3)
    held = time.monotonic() - began
    assert held < 0.3 + 0.5, held  # at the deadline, not when the lane is free
    (shed,) = rig.log.events("gate_shed")
    assert shed["stage"] == "at its deadline" and shed["decision"] == "unavailable"
    release.set()
    rig.guard.wait_idle(10)
    # The lane, free at last, leaves the call alone: the dialplan went on without it.
    assert rig.control.asked("continue_call") == [("d1",)]
    assert rig.control.asked("subscribe") == [] and rig.mixmonitors.started == []
    assert rig.ledger.call("d1") is None and rig.guard.tracked_calls() == 0
    assert "d1" not in rig.control.variables


def test_a_re_gate_overtaken_by_its_deadline_still_decides_the_new_facts(rig: Rig) -> None:
    rig.feed(stasis_start(channel("d2", purposes="order", notices=EVIDENCE)))
    (rec,) = rig.recordings_of("d2")
    rig.guard.gate.timeout = 0.2
    release = _block_the_lanes(rig)
    rig.guard.on_ari_event(stasis_start(channel("d2", purposes="general_info", notices=EVIDENCE)))
    assert wait_for(lambda: len(rig.control.asked("continue_call")) == 2, 3)
    release.set()
    rig.guard.wait_idle(10)
    assert rig.ledger.recording(rec.recording_id).status == RecordingStatus.DELETED
    assert rig.log.events("gate_shed")[0]["stage"] == "at its deadline"


def test_a_gate_taken_by_its_lane_in_time_is_not_continued_twice(rig: Rig) -> None:
    rig.guard.gate.timeout = 0.5
    rig.feed(stasis_start(channel("d3", purposes="order", notices=EVIDENCE)))
    time.sleep(rig.guard.gate.timeout + 0.3)  # its deadline passes after the lane answered
    assert rig.control.asked("continue_call") == [("d3",)]
    assert rig.log.events("gate_shed") == []


def wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return bool(predicate())  # type: ignore[operator]
