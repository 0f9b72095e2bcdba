"""The agent's keys in a real SIP bridge: the agent (a SIPp registered as the
sandbox's "agent") presses *71 (order) and later *70 (general information)
as RFC 4733 events, and recguard acts on each within a second of the key.

Two callers reach the agent through the example IVR at once, and the agent
presses the same keys on both calls: one call was not recorded at the gate
(general information, consent refused), so *71 starts its recording and *70
deletes it; the other was recorded for an order, so *71 changes nothing and
*70 stops and deletes the recording.

A key's moment is taken from the agent's side: its SIPp starts its media at
the ACK of the call (its message log gives the time) and sends each digit at
a fixed offset into it. The ledger's own times say when recguard acted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from asterisk_recguard.ari import wait_until
from asterisk_recguard.daemon import Daemon
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.rtppcap import CallerMedia
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.devtools.scenarios import IvrCaller

from .guardrun import guard_in_process, read_log
from .sip_callers import SipCallResult, SipCaller, SipIvr, answered_at, sip_agent

# Seconds after the agent answers; the caller talks for TALK seconds from about then.
ORDER_KEY_AT = 3.0
INFO_KEY_AT = 7.0
# The digits of one code come well within Asterisk's feature digit timeout (1 s).
DIGIT_GAP = 0.3
TALK = 12.0
WITHIN = timedelta(seconds=1)


def agent_keys() -> CallerMedia:
    media = CallerMedia(TALK + 20)
    for at, code in ((ORDER_KEY_AT, "*71"), (INFO_KEY_AT, "*70")):
        for n, digit in enumerate(code):
            media.key(at + n * DIGIT_GAP, digit)
    return media


def last_digit(at: float) -> float:
    """When the last digit of a three-digit code starts, from the answer."""
    return at + 2 * DIGIT_GAP


@dataclass
class Run:
    guard: Daemon
    results: dict[str, SipCallResult]
    agent_log: Path
    agent_ok: bool
    agent_report: str

    def result(self, name: str) -> SipCallResult:
        outcome = self.results[name]
        assert outcome.error is None, outcome.error
        return outcome

    def key_sent(self, name: str, at: float) -> datetime:
        answered = answered_at(self.agent_log, self.results[name].caller.number)
        return answered + timedelta(seconds=last_digit(at))

    def log(self, call_id: str | None) -> list[dict]:
        return [e for e in read_log(self.guard.settings.decision_log) if e.get("call_id") == call_id]


@pytest.fixture(scope="module")
def keys(sipp_ready: Sandbox, callers: CallerSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    sandbox = sipp_ready
    workdir = tmp_path_factory.mktemp("sip-agent-keys")
    rows = [
        SipCaller(IvrCaller("info_then_order", choice="general_info", consent_key="2", talk_seconds=TALK),
                  "5550301", answers_during_question=True),
        SipCaller(IvrCaller("order_then_info", choice="order", consent_key="2", talk_seconds=TALK),
                  "5550302", answers_during_question=True),
    ]
    with guard_in_process(sandbox.env_file) as guard:
        ivr = SipIvr(sandbox, callers.client, workdir)
        with sip_agent(sandbox, workdir, calls=len(rows), timeout=120, media=agent_keys()) as agent:
            results = ivr.call_all(rows)
            answered = agent.wait()
        guard.guard.wait_idle(60)
        yield Run(guard, results, answered.log_dir, answered.ok, answered.report())


def test_both_calls_reach_the_agent_and_end_as_scripted(keys: Run) -> None:
    for name in keys.results:
        keys.result(name)
    assert keys.agent_ok, keys.agent_report


def test_order_key_on_an_unrecorded_call_starts_recording_within_a_second(keys: Run) -> None:
    outcome = keys.result("info_then_order")
    assert outcome.decision == "skip" and outcome.recording_id is None
    (rec,) = keys.guard.ledger.recordings_for_call(outcome.call_id)
    decisions = keys.guard.ledger.decisions_for_call(outcome.call_id)
    assert [(d.trigger, d.action) for d in decisions][:2] == [("gate", "none"), ("change", "start")]
    pressed = keys.key_sent("info_then_order", ORDER_KEY_AT)
    assert timedelta(0) < decisions[1].at - pressed < WITHIN, (pressed, decisions[1].at)
    assert timedelta(0) < rec.started_at - pressed < WITHIN, (pressed, rec.started_at)
    assert decisions[1].purposes == ["order"] and decisions[1].recording_id == rec.recording_id
    assert keys.guard.ledger.purpose_history(rec.recording_id)[0].purposes == ["order"]


def test_information_key_deletes_the_recording_it_started_within_a_second(keys: Run) -> None:
    outcome = keys.result("info_then_order")
    (rec,) = keys.guard.ledger.recordings_for_call(outcome.call_id)
    pressed = keys.key_sent("info_then_order", INFO_KEY_AT)
    assert rec.status == "deleted" and rec.deleted_at is not None
    assert timedelta(0) < rec.deleted_at - pressed < WITHIN, (pressed, rec.deleted_at)
    assert not Path(rec.path).exists() and rec.stored_path is None
    deleted = [e for e in keys.log(outcome.call_id) if e["event"] == "recording_deleted"]
    assert [e["recording_id"] for e in deleted] == [rec.recording_id]


def test_information_key_on_a_recorded_order_call_stops_and_deletes_within_a_second(keys: Run) -> None:
    outcome = keys.result("order_then_info")
    assert outcome.decision == "record"
    (rec,) = keys.guard.ledger.recordings_for_call(outcome.call_id)
    assert rec.recording_id == outcome.recording_id
    decisions = keys.guard.ledger.decisions_for_call(outcome.call_id)
    actions = [(d.trigger, d.action) for d in decisions]
    assert actions[0] == ("gate", "start") and ("change", "delete") in actions
    assert ("change", "start") not in actions  # *71 on an order call changed nothing
    pressed = keys.key_sent("order_then_info", INFO_KEY_AT)
    deleting = next(d for d in decisions if d.action == "delete")
    assert timedelta(0) < deleting.at - pressed < WITHIN, (pressed, deleting.at)
    assert rec.status == "deleted" and rec.deleted_at is not None
    assert timedelta(0) < rec.deleted_at - pressed < WITHIN, (pressed, rec.deleted_at)
    assert wait_until(lambda: not Path(rec.path).exists(), 3)
