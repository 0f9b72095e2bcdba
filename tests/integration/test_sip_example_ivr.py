"""The example IVR over real SIP: SIPp callers dial the sandbox's IVR number,
hear the spoken Slovenian notices, press RFC 4733 keys, and after the gate
talk to an agent (a SIPp registered as the sandbox's "agent") in a real
bridge, while recguard guards them. One test per row of the IVR table, as
test_example_ivr.py does with Local channels, and the caller's key 9 in the
bridge.

The calls run at once (each hears two notices of about 20 s), and each test
then checks its own call in the ledger, the decision log and the spool.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.ari import wait_until
from asterisk_recguard.daemon import Daemon
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.devtools.scenarios import IvrCaller
from asterisk_recguard.vault import Keyring, decrypt_file

from .guardrun import guard_in_process, read_log
from .sip_callers import SipCallResult, SipCaller, SipIvr, sip_agent
from .sipp import SippResult

HOSTILE_NUMBER = "$(id)"
HOSTILE_NAME = '$(touch /tmp/pwned)";../../x'
BOTH_NOTICES = "evidence-v1:complete,quality-consent-v1:complete"


class Run:
    def __init__(self, guard: Daemon, results: dict[str, SipCallResult], agent: SippResult,
                 new_files: set[Path]) -> None:
        self.guard = guard
        self.results = results
        self.agent = agent
        self.new_files = new_files

    def result(self, name: str) -> SipCallResult:
        outcome = self.results[name]
        assert outcome.error is None, outcome.error
        return outcome

    def log(self, call_id: str | None) -> list[dict]:
        return [e for e in read_log(self.guard.settings.decision_log) if e.get("call_id") == call_id]

    def only_recording(self, outcome: SipCallResult):
        (rec,) = self.guard.ledger.recordings_for_call(outcome.call_id)
        return rec


@pytest.fixture(scope="module")
def ivr(sipp_ready: Sandbox, callers: CallerSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    sandbox = sipp_ready
    workdir = tmp_path_factory.mktemp("sip-ivr")
    Path("/tmp/pwned").unlink(missing_ok=True)
    with guard_in_process(sandbox.env_file) as guard:
        def crm_no_transaction(channel: str) -> None:
            guard.ami.action("Setvar", Channel=channel, Variable="RECGUARD_OUTCOME", Value="no_transaction")

        rows = [
            SipCaller(IvrCaller("order_refused", choice="order", consent_key="2", talk_seconds=3), "5550101"),
            SipCaller(IvrCaller("complaint_given", choice="complaint", consent_key="1"), "5550102"),
            SipCaller(IvrCaller("info_refused", choice="general_info", consent_key="2"), "5550103"),
            SipCaller(IvrCaller("info_given", choice="general_info", consent_key="1"), "5550104"),
            SipCaller(IvrCaller("info_silent", choice="general_info", consent_key=None), "5550105"),
            SipCaller(IvrCaller("hangup_in_notice", hangup_during_notice=True), "5550106"),
            SipCaller(IvrCaller("key_in_notice", key_during_notice=True, choice="order", consent_key="2"), "5550107"),
            SipCaller(IvrCaller("order_no_transaction", choice="order", consent_key="2", talk_seconds=3,
                                during_call=crm_no_transaction), "5550108"),
            SipCaller(IvrCaller("hostile_caller_id", choice="order", consent_key="2"), HOSTILE_NUMBER,
                      display=HOSTILE_NAME),
            SipCaller(IvrCaller("withdraws_in_the_bridge", choice="general_info", consent_key="1", talk_seconds=5),
                      "5550110", keys_while_talking=((2.0, "9"),)),
        ]
        reach_the_agent = sum(not row.ivr.hangup_during_notice for row in rows)
        ivr = SipIvr(sandbox, callers.client, workdir)
        before = set(sandbox.recordings_dir.iterdir())
        with sip_agent(sandbox, workdir, calls=reach_the_agent, timeout=150) as agent:
            results = ivr.call_all(rows)
            answered = agent.wait()
        guard.guard.wait_idle(60)
        yield Run(guard, results, answered, set(sandbox.recordings_dir.iterdir()) - before)


def test_every_call_reaches_the_agent_and_ends_as_scripted(ivr: Run) -> None:
    for name in ivr.results:
        ivr.result(name)
    assert ivr.agent.ok, ivr.agent.report()


def test_order_notice_heard_consent_refused_is_recorded_for_order(ivr: Run) -> None:
    outcome = ivr.result("order_refused")
    assert outcome.decision == "record"
    assert outcome.facts["RECGUARD_NOTICES"] == BOTH_NOTICES
    assert outcome.facts["RECGUARD_CONSENT"] == "refused"
    rec = ivr.only_recording(outcome)
    assert rec.recording_id == outcome.recording_id
    assert rec.status == "finalized" and rec.purposes == ["order"] and rec.bases == {"order": "evidence"}
    ended = ivr.guard.ledger.call(outcome.call_id).ended_at
    assert rec.deadline == ended + timedelta(days=1095)
    clear = Path(rec.path).with_name("sip-order-check.wav")
    decrypt_file(rec.stored_path, clear, Keyring.load(ivr.guard.settings.key_file))
    try:
        with wave.open(str(clear)) as audio:
            assert audio.getnframes() > 8000 * 2  # the caller talked about 3 s
    finally:
        clear.unlink()


def test_complaint_with_consent_is_recorded_for_complaint_and_quality(ivr: Run) -> None:
    outcome = ivr.result("complaint_given")
    assert outcome.facts["RECGUARD_CONSENT"] == "given"
    rec = ivr.only_recording(outcome)
    assert rec.status == "finalized" and rec.purposes == ["complaint", "quality"]
    ended = ivr.guard.ledger.call(outcome.call_id).ended_at
    assert rec.deadline == ended + timedelta(days=730)


def test_general_information_consent_refused_is_not_recorded(ivr: Run) -> None:
    outcome = ivr.result("info_refused")
    assert outcome.decision == "skip" and outcome.recording_id is None
    assert ivr.guard.ledger.recordings_for_call(outcome.call_id) == []
    gate = [e for e in ivr.log(outcome.call_id) if e["event"] == "decision" and e["trigger"] == "gate"][0]
    assert {"purpose": "general_info", "reason": "purpose_forbidden"} in gate["reasons"]
    assert {"purpose": "quality", "reason": "consent_refused"} in gate["reasons"]


def test_general_information_with_consent_is_recorded_for_quality_only(ivr: Run) -> None:
    outcome = ivr.result("info_given")
    rec = ivr.only_recording(outcome)
    assert rec.status == "finalized" and rec.purposes == ["quality"] and rec.bases == {"quality": "consent"}
    ended = ivr.guard.ledger.call(outcome.call_id).ended_at
    assert rec.deadline == ended + timedelta(days=90)


def test_silence_at_the_consent_question_is_not_consent(ivr: Run) -> None:
    outcome = ivr.result("info_silent")
    assert outcome.facts["RECGUARD_NOTICES"] == BOTH_NOTICES
    assert outcome.facts["RECGUARD_CONSENT"] == "refused"
    assert outcome.decision == "skip"
    assert ivr.guard.ledger.recordings_for_call(outcome.call_id) == []


def test_caller_hanging_up_during_the_notice_is_not_recorded(ivr: Run) -> None:
    outcome = ivr.result("hangup_in_notice")
    assert outcome.call_id is not None
    assert ivr.guard.ledger.call(outcome.call_id) is None  # never reached the gate
    assert ivr.log(outcome.call_id) == []


def test_caller_cutting_the_notice_short_is_not_recorded(ivr: Run) -> None:
    outcome = ivr.result("key_in_notice")
    assert outcome.facts["RECGUARD_NOTICES"] == "evidence-v1:interrupted,quality-consent-v1:complete"
    assert outcome.facts["RECGUARD_PURPOSE"] == "order,quality"
    assert outcome.decision == "skip"
    assert ivr.guard.ledger.recordings_for_call(outcome.call_id) == []
    gate = [e for e in ivr.log(outcome.call_id) if e["event"] == "decision"][0]
    assert {"purpose": "order", "reason": "notice_interrupted"} in gate["reasons"]


def test_order_without_transaction_is_deleted(ivr: Run) -> None:
    outcome = ivr.result("order_no_transaction")
    assert outcome.decision == "record"
    rec = ivr.only_recording(outcome)
    assert rec.status == "deleted" and rec.deletion_reason == "no_transaction"
    assert not Path(rec.path).exists() and rec.stored_path is None
    assert any(e["event"] == "recording_deleted" and e["reason"] == "no_transaction"
               for e in ivr.log(outcome.call_id))


def test_hostile_caller_id_injects_nothing(ivr: Run, sandbox: Sandbox) -> None:
    outcome = ivr.result("hostile_caller_id")
    assert outcome.decision == "record"
    rec = ivr.only_recording(outcome)
    assert Path(rec.path) == sandbox.recordings_dir / f"{rec.recording_id}.wav"
    assert rec.status == "finalized"
    assert not Path("/tmp/pwned").exists()
    log = ivr.guard.settings.decision_log.read_text()
    assert "pwned" not in log and HOSTILE_NUMBER not in log


def test_caller_key_9_in_the_bridge_withdraws_consent_and_deletes(ivr: Run) -> None:
    outcome = ivr.result("withdraws_in_the_bridge")
    assert outcome.decision == "record" and outcome.facts["RECGUARD_CONSENT"] == "given"
    rec = ivr.only_recording(outcome)
    assert rec.purposes == ["quality"]
    assert rec.status == "deleted" and rec.deletion_reason == "consent_withdrawn"
    assert wait_until(lambda: not Path(rec.path).exists(), 3)
    assert any(e["event"] == "recording_deleted" and e["reason"] == "consent_withdrawn"
               for e in ivr.log(outcome.call_id))


def test_every_decision_is_in_the_ledger_and_the_log_and_the_spool_holds_only_kept_recordings(ivr: Run) -> None:
    kept: set[Path] = set()
    for name, outcome in ivr.results.items():
        if outcome.call_id is None or name == "hangup_in_notice":
            continue
        decisions = ivr.guard.ledger.decisions_for_call(outcome.call_id)
        lines = [e for e in ivr.log(outcome.call_id) if e["event"] == "decision"]
        assert len(decisions) == len(lines) >= 2, name
        assert [d.trigger for d in decisions] == [e["trigger"] for e in lines]
        for rec in ivr.guard.ledger.recordings_for_call(outcome.call_id):
            if rec.status == "finalized":
                kept.add(Path(rec.file_path))
    assert ivr.new_files == kept
