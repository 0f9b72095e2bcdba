"""Changes during a call: reclassification, consent withdrawal, transfers, and
recordings started behind the guard's back. Each must be acted upon within a
second, with the ledger and the decision log saying why."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator, SimulatedCall
from asterisk_recguard.daemon import Daemon
from asterisk_recguard.devtools.sandbox import Sandbox

from .guardrun import guard_in_process, read_log

NOTICES = "evidence-v1:complete,quality-consent-v1:complete"


@pytest.fixture(scope="module")
def guard(sandbox: Sandbox) -> Iterator[Daemon]:
    with guard_in_process(sandbox.env_file) as daemon:
        yield daemon


def place(callers: CallerSimulator, purpose: str, consent: str, exten: str = "direct") -> SimulatedCall:
    facts = {"RECGUARD_PURPOSE": purpose, "RECGUARD_NOTICES": NOTICES, "RECGUARD_CONSENT": consent}
    call = callers.call("recguard-test-guard", exten, variables=facts)
    call.wait_answered()
    assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
    return call


def finish(call: SimulatedCall, guard: Daemon) -> None:
    call.hangup()
    call.wait_ended()
    assert wait_until(lambda: guard.guard.tracked_calls() == 0, 5)
    guard.guard.wait_idle()


def recordings(guard: Daemon, call: SimulatedCall) -> list:
    return guard.ledger.recordings_for_call(call.centre_channel()["id"])


def agent_leg(callers: CallerSimulator, half: str) -> dict:
    """The agent's channel once the agent answered and the bridge formed."""
    def bridged() -> dict | None:
        for channel in callers.client.channels():
            if channel["name"].startswith("Local/agent@recguard-test-agent") and channel["name"].endswith(half):
                if channel["state"] == "Up":
                    return channel
        return None

    agent = wait_until(bridged, 5)
    assert agent, "the agent never answered"
    time.sleep(0.3)  # Dial bridges the two parties just after the answer
    return agent


def within(seconds: float, condition) -> float:
    """How long the condition took to hold; fails past ``seconds``."""
    began = time.monotonic()
    assert wait_until(condition, seconds, interval=0.02), f"not within {seconds} s"
    return time.monotonic() - began


def test_crm_reclassifies_general_information_as_order(guard: Daemon, idle: CallerSimulator) -> None:
    call = place(idle, "general_info", "refused")
    assert call.centre_variable("RECGUARD_DECISION") == "skip"
    channel = call.centre_channel()["name"]
    guard.ami.action("Setvar", Channel=channel, Variable="RECGUARD_PURPOSE", Value="order")
    within(1.0, lambda: recordings(guard, call) and recordings(guard, call)[0].status == "recording")
    time.sleep(1.0)
    finish(call, guard)
    (rec,) = recordings(guard, call)
    assert rec.status == "finalized" and rec.purposes == ["order"] and rec.duration_s > 0.5
    actions = [d.action for d in guard.ledger.decisions_for_call(rec.call_id)]
    assert actions == ["none", "start", "keep"]


def test_agent_key_reclassifies_order_as_general_information(guard: Daemon, idle: CallerSimulator) -> None:
    call = place(idle, "order", "refused", exten="withagent")
    (rec,) = recordings(guard, call)
    assert rec.status == "recording"
    agent = agent_leg(idle, ";2")
    pressed = time.monotonic()
    for digit in "*70":
        guard.ami.action("PlayDTMF", Channel=agent["name"], Digit=digit, Duration="100")
        time.sleep(0.15)
    assert wait_until(lambda: guard.ledger.recording(rec.recording_id).status in ("deleting", "deleted"), 2.0)
    stopped_after = time.monotonic() - pressed
    assert wait_until(lambda: guard.ledger.recording(rec.recording_id).status == "deleted", 5)
    assert not Path(rec.path).exists()
    assert call.centre_variable("RECGUARD_PURPOSE") == "general_info"
    finish(call, guard)
    deleted = guard.ledger.recording(rec.recording_id)
    assert deleted.deletion_reason == "reclassified"
    lines = [e for e in read_log(guard.settings.decision_log) if e.get("recording_id") == rec.recording_id]
    assert any(e["event"] == "recording_deleted" and e["reason"] == "reclassified" for e in lines)
    # The last key press lands ~0.3 s after the first; the stop follows it within a second.
    assert stopped_after < 1.5


def test_caller_withdraws_consent_order_goes_on(guard: Daemon, idle: CallerSimulator) -> None:
    call = place(idle, "order,quality", "given")
    (rec,) = recordings(guard, call)
    assert rec.purposes == ["order", "quality"]
    call.press("9")
    within(1.0, lambda: guard.ledger.recording(rec.recording_id).purposes == ["order"])
    assert guard.ledger.recording(rec.recording_id).status == "recording"
    assert wait_until(lambda: call.centre_variable("RECGUARD_CONSENT") == "withdrawn", 2)
    finish(call, guard)
    final = guard.ledger.recording(rec.recording_id)
    assert final.status == "finalized" and final.purposes == ["order"]
    # Retention follows the remaining purpose only (order: 1095 days, not quality's 90).
    ended = guard.ledger.call(rec.call_id).ended_at
    assert (final.deadline - ended).days == 1095
    history = guard.ledger.purpose_history(rec.recording_id)
    assert [h.purposes for h in history][-1] == ["order"]


def test_caller_withdraws_consent_nothing_else_justifies(guard: Daemon, idle: CallerSimulator) -> None:
    call = place(idle, "general_info,quality", "given")
    (rec,) = recordings(guard, call)
    assert rec.purposes == ["quality"]
    call.press("9")
    within(1.0, lambda: guard.ledger.recording(rec.recording_id).status in ("deleting", "deleted"))
    assert wait_until(lambda: not Path(rec.path).exists(), 3)
    finish(call, guard)
    assert guard.ledger.recording(rec.recording_id).deletion_reason == "consent_withdrawn"


def test_blind_transfer_keeps_one_recording_to_the_end(guard: Daemon, idle: CallerSimulator) -> None:
    call = place(idle, "order", "refused", exten="withagent")
    agent = agent_leg(idle, ";1")
    time.sleep(0.7)
    guard.ami.action("BlindTransfer", Channel=agent["name"], Context="recguard-test-guard", Exten="transferred")
    assert call.wait_centre_variable("TEST_TRANSFERRED", timeout=5) == "yes"
    time.sleep(1.5)
    (rec,) = recordings(guard, call)
    assert rec.status == "recording"
    finish(call, guard)
    (rec,) = recordings(guard, call)
    assert rec.status == "finalized"
    assert rec.duration_s > 2.0  # audio from before and after the transfer


def test_transfer_to_a_destination_without_basis_stops_and_deletes(guard: Daemon, idle: CallerSimulator) -> None:
    call = place(idle, "order", "refused", exten="withagent")
    agent = agent_leg(idle, ";1")
    (rec,) = recordings(guard, call)
    guard.ami.action("BlindTransfer", Channel=agent["name"], Context="recguard-test-guard", Exten="transferred-info")
    assert call.wait_centre_variable("TEST_TRANSFERRED", timeout=5) == "yes"
    assert wait_until(lambda: guard.ledger.recording(rec.recording_id).status == "deleted", 3)
    finish(call, guard)
    decided = [(d.trigger, d.action) for d in guard.ledger.decisions_for_call(rec.call_id)]
    # The new destination's purpose is seen when it is set (a change) or at its gate.
    assert decided[0] == ("gate", "start")
    assert ("change", "delete") in decided or ("gate", "delete") in decided
    assert decided[-1] == ("hangup", "none")


def test_mixmonitor_started_behind_the_guards_back_is_stopped_and_deleted(
    guard: Daemon, sandbox: Sandbox, idle: CallerSimulator
) -> None:
    rogue = sandbox.recordings_dir / "rogue-recording.wav"
    call = idle.call("recguard-test-guard", "rogue", variables={"ROGUE_FILE": str(rogue)})
    call.wait_answered()
    assert call.wait_centre_variable("TEST_ROGUE") == "yes"
    assert wait_until(lambda: any(u.channel == call.centre_channel()["name"]
                                  for u in guard.ledger.unauthorized_log()), 3)
    assert wait_until(lambda: not rogue.exists(), 3)
    (entry,) = [u for u in guard.ledger.unauthorized_log() if u.channel == call.centre_channel()["name"]]
    assert entry.action == "stopped_deleted" and entry.file == str(rogue)
    assert "recguard-test-guard,rogue" in entry.started_by
    time.sleep(1.0)
    assert not rogue.exists()  # MixMonitor did not write it again
    lines = [e for e in read_log(guard.settings.decision_log) if e["event"] == "unauthorized_recording"]
    assert any(e["file"] == str(rogue) and e["enforced"] for e in lines)
    call.hangup()
    call.wait_ended()


def test_attended_transfer_keeps_one_recording_to_the_end(guard: Daemon, idle: CallerSimulator) -> None:
    call = place(idle, "order", "refused", exten="withagent")
    agent = agent_leg(idle, ";1")
    agent_far = agent_leg(idle, ";2")
    (rec,) = recordings(guard, call)
    guard.ami.action("Atxfer", Channel=agent["name"], Context="recguard-test-agent", Exten="2002")
    second = wait_until(lambda: next((c for c in idle.client.channels()
                                      if c["name"].startswith("Local/2002@recguard-test-agent")
                                      and c["name"].endswith(";2") and c["state"] == "Up"), None), 10)
    assert second, "the consulted agent never answered"
    time.sleep(1.0)
    # The first agent hangs up: the transfer completes, the caller now talks to the second.
    idle.client.hangup(agent_far["id"])
    time.sleep(1.5)
    assert call.centre_variable("TEST_AFTER_GATE") == "yes"  # the caller's channel is still the same
    (rec,) = recordings(guard, call)
    assert rec.status == "recording"
    finish(call, guard)
    (rec,) = recordings(guard, call)
    assert rec.status == "finalized" and rec.purposes == ["order"]
    assert rec.duration_s > 3.0



def test_a_foreign_mixmonitor_on_a_recorded_call_is_removed_and_the_lawful_recording_goes_on(
    guard: Daemon, sandbox: Sandbox, idle: CallerSimulator
) -> None:
    rogue = sandbox.recordings_dir / "rogue-after-gate.wav"
    facts = {"RECGUARD_PURPOSE": "order", "RECGUARD_NOTICES": NOTICES, "RECGUARD_CONSENT": "refused",
             "ROGUE_FILE": str(rogue)}
    call = idle.call("recguard-test-guard", "guarded-rogue", variables=facts)
    call.wait_answered()
    assert call.wait_centre_variable("TEST_ROGUE", timeout=5) == "yes"
    call_id = call.centre_channel()["id"]
    assert wait_until(lambda: any(u.call_id == call_id for u in guard.ledger.unauthorized_log()), 3)
    assert wait_until(lambda: not rogue.exists(), 3)
    # The guard's own recording was stopped with the foreign one and goes on in a second part.
    assert wait_until(lambda: [r.status for r in guard.ledger.recordings_for_call(call_id)] == ["stopped", "recording"], 3)
    time.sleep(1.0)
    finish(call, guard)
    parts = guard.ledger.recordings_for_call(call_id)
    assert [p.status for p in parts] == ["finalized", "finalized"]
    assert all(p.purposes == ["order"] for p in parts)
    assert not rogue.exists()


def test_earlier_parts_follow_later_decisions(guard: Daemon, sandbox: Sandbox, idle: CallerSimulator) -> None:
    rogue = sandbox.recordings_dir / "rogue-then-no-transaction.wav"
    facts = {"RECGUARD_PURPOSE": "order", "RECGUARD_NOTICES": NOTICES, "RECGUARD_CONSENT": "refused",
             "ROGUE_FILE": str(rogue)}
    call = idle.call("recguard-test-guard", "guarded-rogue", variables=facts)
    call.wait_answered()
    assert call.wait_centre_variable("TEST_ROGUE", timeout=5) == "yes"
    call_id = call.centre_channel()["id"]
    assert wait_until(lambda: len(guard.ledger.recordings_for_call(call_id)) == 2, 3)
    guard.ami.action("Setvar", Channel=call_id, Variable="RECGUARD_OUTCOME", Value="no_transaction")
    assert wait_until(lambda: all(r.status == "deleted" for r in guard.ledger.recordings_for_call(call_id)), 5)
    finish(call, guard)
    for part in guard.ledger.recordings_for_call(call_id):
        assert part.deletion_reason == "no_transaction"
        assert not Path(part.path).exists() and not Path(part.path + ".rgv").exists()


def test_a_recording_under_legal_hold_is_stopped_but_kept_when_its_basis_ends(
    guard: Daemon, idle: CallerSimulator
) -> None:
    call = place(idle, "order", "refused")
    (rec,) = recordings(guard, call)
    guard.ledger.set_hold(rec.recording_id, reason="court case P 7/2026", actor="dpo")
    guard.ami.action("Setvar", Channel=rec.call_id, Variable="RECGUARD_OUTCOME", Value="no_transaction")
    assert wait_until(lambda: guard.ledger.recording(rec.recording_id).status == "stopped", 3)
    finish(call, guard)
    kept = guard.ledger.recording(rec.recording_id)
    assert kept.status == "finalized" and kept.held
    assert Path(kept.file_path).exists()
    assert any(e["event"] == "recording_held_kept" and e["recording_id"] == rec.recording_id
               for e in read_log(guard.settings.decision_log))
    # The case is closed: the hold goes, and with no basis left, so does the recording.
    guard.ledger.release_hold(rec.recording_id, actor="dpo")
    guard.ledger.mark_deleting(rec.recording_id, reason="no_transaction", actor="dpo")
    Path(kept.file_path).unlink()
    guard.ledger.mark_deleted(rec.recording_id)
