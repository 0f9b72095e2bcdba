"""Transfers on real SIP: a caller recorded for an order reaches the agent (a
SIPp registered as the sandbox's "agent") through the example IVR, and the
agent hands the caller on to a second agent (a SIPp registered as "agent2",
on the sandbox's transfer number). The caller's channel stays in the call
throughout, so its one recording goes on across the transfer and is
finalized once, for the purposes it had.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from asterisk_recguard.daemon import Daemon
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.rtppcap import CallerMedia
from asterisk_recguard.devtools.sandbox import Sandbox, sip
from asterisk_recguard.devtools.scenarios import IvrCaller

from .guardrun import guard_in_process, read_log
from .sip_callers import SipCallResult, SipCaller, SipIvr, answered_at, sip_agent, sip_target
from .sipp import SippResult, messages

TALK = 16.0  # the caller's talk, from about the first agent's answer
TRANSFER_AT = 3.0  # seconds after the first agent answers
# Attended: the agent dials the transfer number after the "transfer" prompt,
# digits well within transferdigittimeout (3 s), talks to the second agent,
# and hangs up, which completes the transfer.
DIGIT_GAP = 0.3
NUMBER_AT = TRANSFER_AT + 2.0
HANGUP_AT = TRANSFER_AT + 8.0


@pytest.fixture(scope="module")
def guard(sipp_ready: Sandbox) -> Iterator[Daemon]:
    with guard_in_process(sipp_ready.env_file) as daemon:
        yield daemon


@dataclass
class Transfer:
    outcome: SipCallResult
    first: SippResult
    second: SippResult


def order_caller(name: str, number: str) -> SipCaller:
    return SipCaller(IvrCaller(name, choice="order", consent_key="2", talk_seconds=TALK), number,
                     answers_during_question=True)


def sip_time(log_dir: Path, method: str, *, received: bool) -> datetime:
    """When a SIPp first sent (or received) a request of ``method``."""
    return next(m.at for m in messages(log_dir) if m.received == received and m.first_line.startswith(f"{method} "))


def check_one_recording_kept_across(transfer: Transfer, guard: Daemon) -> None:
    """The call went as scripted on all three phones, and its recording was
    kept across the transfer and finalized once, for the order."""
    outcome = transfer.outcome
    assert outcome.error is None, outcome.error
    assert outcome.sipp is not None
    assert transfer.first.ok, transfer.first.report()
    assert transfer.second.ok, transfer.second.report()
    # The caller talked to the second agent to the end: the caller's hangup ended the second agent's call.
    caller_bye = sip_time(transfer.outcome.sipp.log_dir, "BYE", received=False)
    assert timedelta(0) <= sip_time(transfer.second.log_dir, "BYE", received=True) - caller_bye < timedelta(seconds=2)
    assert outcome.decision == "record"
    (rec,) = guard.ledger.recordings_for_call(outcome.call_id)
    assert rec.recording_id == outcome.recording_id
    assert rec.status == "finalized" and rec.purposes == ["order"] and rec.bases == {"order": "evidence"}
    assert [h.purposes for h in guard.ledger.purpose_history(rec.recording_id)] == [["order"]]
    assert rec.duration_s is not None and rec.duration_s > TALK - 2  # before and after the transfer
    log = [e for e in read_log(guard.settings.decision_log) if e.get("call_id") == outcome.call_id]
    assert [e["recording_id"] for e in log if e["event"] == "recording_finalized"] == [rec.recording_id]
    assert not [e for e in log if e["event"] == "recording_deleted"]
    actions = [d.action for d in guard.ledger.decisions_for_call(outcome.call_id)]
    assert actions[0] == "start" and "delete" not in actions and actions.count("start") == 1
    assert Path(rec.stored_path or rec.path).exists()


def test_blind_transfer_by_refer_keeps_the_recording_and_finalizes_it_once(
    sipp_ready: Sandbox, idle: CallerSimulator, guard: Daemon, tmp_path: Path
) -> None:
    sandbox = sipp_ready
    env = sandbox.credentials()
    ivr = SipIvr(sandbox, idle.client, tmp_path)
    with (
        sip_agent(sandbox, tmp_path, calls=1, timeout=90, scenario="agent-refer",
                  password=env[sip.password_key("agent")], target=env[sip.TRANSFER_KEY], registrar=sip_target(sandbox),
                  refer_ms=round(TRANSFER_AT * 1000), media=CallerMedia(TRANSFER_AT + 1)) as first,
        sip_agent(sandbox, tmp_path, calls=1, timeout=90, extension="agent2", media=CallerMedia(TALK)) as second,
    ):
        outcome = ivr.call(order_caller("blind_transfer", "5550401"))
        transfer = Transfer(outcome, first.wait(), second.wait())
    guard.guard.wait_idle(60)
    check_one_recording_kept_across(transfer, guard)
    # Asterisk called the second agent for the caller after the REFER.
    assert answered_at(transfer.second.log_dir, outcome.caller.number) > sip_time(transfer.first.log_dir, "REFER", received=False)


def keys(media: CallerMedia, at: float, digits: str) -> CallerMedia:
    for n, digit in enumerate(digits):
        media.key(at + n * DIGIT_GAP, digit)
    return media


def test_attended_transfer_with_the_agents_star_2_keeps_the_recording_and_finalizes_it_once(
    sipp_ready: Sandbox, idle: CallerSimulator, guard: Daemon, tmp_path: Path
) -> None:
    """*2 (features.conf atxfer), the transfer number, a word with the second
    agent while the caller waits, then the first agent hangs up: Asterisk
    itself completes the transfer and bridges the caller to the second agent."""
    sandbox = sipp_ready
    number = sandbox.credentials()[sip.TRANSFER_KEY]
    media = keys(keys(CallerMedia(HANGUP_AT + 1), TRANSFER_AT, "*2"), NUMBER_AT, number)
    ivr = SipIvr(sandbox, idle.client, tmp_path)
    with (
        sip_agent(sandbox, tmp_path, calls=1, timeout=90, scenario="agent-hangup", media=media,
                  hangup_ms=round(HANGUP_AT * 1000)) as first,
        sip_agent(sandbox, tmp_path, calls=1, timeout=90, extension="agent2", media=CallerMedia(TALK)) as second,
    ):
        outcome = ivr.call(order_caller("attended_transfer", "5550402"))
        transfer = Transfer(outcome, first.wait(), second.wait())
    guard.guard.wait_idle(60)
    check_one_recording_kept_across(transfer, guard)
    # The second agent was called while the first was still on the line: a consultation.
    assert sip_time(transfer.second.log_dir, "ACK", received=True) < sip_time(transfer.first.log_dir, "BYE", received=False)
