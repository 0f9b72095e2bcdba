"""Real calls through the example IVR with its spoken Slovenian notices, guarded
by recguard: the table of the guard's acceptance criteria, one test per row.

The calls run at once (each must hear two notices of about 20 s), and each
test then checks its own call in the ledger, the decision log and the spool.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.daemon import Daemon
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.devtools.scenarios import IvrCaller, IvrResult, run_caller
from asterisk_recguard.vault import Keyring, decrypt_file

from .guardrun import guard_in_process, read_log

HOSTILE_CALLER_ID = '"$(touch /tmp/pwned)\\";../../x\r\nAction: Originate" <$(id)>'


class Run:
    def __init__(self, guard: Daemon, results: dict[str, IvrResult], new_files: set[Path]) -> None:
        self.guard = guard
        self.results = results
        self.new_files = new_files

    def result(self, name: str) -> IvrResult:
        outcome = self.results[name]
        assert outcome.error is None, outcome.error
        return outcome

    def log(self, call_id: str) -> list[dict]:
        return [e for e in read_log(self.guard.settings.decision_log) if e.get("call_id") == call_id]


@pytest.fixture(scope="module")
def ivr(sandbox: Sandbox, callers: CallerSimulator) -> Iterator[Run]:
    Path("/tmp/pwned").unlink(missing_ok=True)
    with guard_in_process(sandbox.env_file) as guard:
        def crm_no_transaction(channel: str) -> None:
            guard.ami.action("Setvar", Channel=channel, Variable="RECGUARD_OUTCOME", Value="no_transaction")

        scenarios = [
            IvrCaller("order_refused", choice="order", consent_key="2", talk_seconds=3),
            IvrCaller("complaint_given", choice="complaint", consent_key="1"),
            IvrCaller("info_refused", choice="general_info", consent_key="2"),
            IvrCaller("info_given", choice="general_info", consent_key="1"),
            IvrCaller("info_silent", choice="general_info", consent_key=None),
            IvrCaller("hangup_in_notice", hangup_during_notice=True),
            IvrCaller("key_in_notice", key_during_notice=True, choice="order", consent_key="2"),
            IvrCaller("order_no_transaction", choice="order", consent_key="2", talk_seconds=3,
                      during_call=crm_no_transaction),
            IvrCaller("hostile_caller_id", choice="order", consent_key="2", caller_id=HOSTILE_CALLER_ID),
        ]
        before = set(sandbox.recordings_dir.iterdir())
        results: dict[str, IvrResult] = {}

        def play(caller: IvrCaller) -> None:
            results[caller.name] = run_caller(callers, caller)

        threads = [threading.Thread(target=play, args=(s,)) for s in scenarios]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(240)
        guard.guard.wait_idle(60)
        yield Run(guard, results, set(sandbox.recordings_dir.iterdir()) - before)


def only_recording(run: Run, outcome: IvrResult):
    (rec,) = run.guard.ledger.recordings_for_call(outcome.call_id)
    return rec


def test_order_notice_heard_consent_refused_is_recorded_for_order(ivr: Run) -> None:
    outcome = ivr.result("order_refused")
    assert outcome.decision == "record"
    assert outcome.facts["RECGUARD_NOTICES"] == "evidence-v1:complete,quality-consent-v1:complete"
    assert outcome.facts["RECGUARD_CONSENT"] == "refused"
    rec = only_recording(ivr, outcome)
    assert rec.recording_id == outcome.recording_id
    assert rec.status == "finalized" and rec.purposes == ["order"] and rec.bases == {"order": "evidence"}
    ended = ivr.guard.ledger.call(outcome.call_id).ended_at
    assert rec.deadline == ended + timedelta(days=1095)
    clear = Path(rec.path).with_name("order-check.wav")
    decrypt_file(rec.stored_path, clear, Keyring.load(ivr.guard.settings.key_file))
    try:
        with wave.open(str(clear)) as audio:
            assert audio.getnframes() > 8000 * 2  # the caller stayed about 3 s
    finally:
        clear.unlink()


def test_complaint_with_consent_is_recorded_for_complaint_and_quality(ivr: Run) -> None:
    outcome = ivr.result("complaint_given")
    rec = only_recording(ivr, outcome)
    assert rec.status == "finalized" and rec.purposes == ["complaint", "quality"]
    ended = ivr.guard.ledger.call(outcome.call_id).ended_at
    assert rec.deadline == ended + timedelta(days=730)  # the longer of 730 and 90


def test_general_information_consent_refused_is_not_recorded(ivr: Run) -> None:
    outcome = ivr.result("info_refused")
    assert outcome.decision == "skip" and outcome.recording_id is None
    assert ivr.guard.ledger.recordings_for_call(outcome.call_id) == []
    gate = [e for e in ivr.log(outcome.call_id) if e["event"] == "decision" and e["trigger"] == "gate"][0]
    assert gate["decision"] == "skip"
    assert {"purpose": "general_info", "reason": "purpose_forbidden"} in gate["reasons"]
    assert {"purpose": "quality", "reason": "consent_refused"} in gate["reasons"]


def test_general_information_with_consent_is_recorded_for_quality_only(ivr: Run) -> None:
    outcome = ivr.result("info_given")
    rec = only_recording(ivr, outcome)
    assert rec.status == "finalized" and rec.purposes == ["quality"] and rec.bases == {"quality": "consent"}
    ended = ivr.guard.ledger.call(outcome.call_id).ended_at
    assert rec.deadline == ended + timedelta(days=90)


def test_silence_at_the_consent_question_is_not_consent(ivr: Run) -> None:
    outcome = ivr.result("info_silent")
    assert outcome.facts["RECGUARD_CONSENT"] == "refused"
    assert outcome.decision == "skip"
    assert ivr.guard.ledger.recordings_for_call(outcome.call_id) == []


def test_caller_hanging_up_during_the_notice_is_not_recorded(ivr: Run) -> None:
    outcome = ivr.result("hangup_in_notice")
    assert ivr.guard.ledger.call(outcome.call_id) is None  # never reached the gate
    assert not any(outcome.call_id in e.get("call_id", "") for e in read_log(ivr.guard.settings.decision_log))


def test_caller_cutting_the_notice_short_is_not_recorded(ivr: Run) -> None:
    outcome = ivr.result("key_in_notice")
    assert outcome.facts["RECGUARD_NOTICES"].startswith("evidence-v1:interrupted")
    assert outcome.decision == "skip"
    assert ivr.guard.ledger.recordings_for_call(outcome.call_id) == []
    gate = [e for e in ivr.log(outcome.call_id) if e["event"] == "decision"][0]
    assert {"purpose": "order", "reason": "notice_interrupted"} in gate["reasons"]


def test_order_without_transaction_is_deleted(ivr: Run) -> None:
    outcome = ivr.result("order_no_transaction")
    assert outcome.decision == "record"
    rec = only_recording(ivr, outcome)
    assert rec.status == "deleted" and rec.deletion_reason == "no_transaction"
    assert not Path(rec.path).exists() and rec.stored_path is None
    assert any(e["event"] == "recording_deleted" and e["reason"] == "no_transaction"
               for e in ivr.log(outcome.call_id))


def test_hostile_caller_id_injects_nothing(ivr: Run, sandbox: Sandbox) -> None:
    outcome = ivr.result("hostile_caller_id")
    assert outcome.decision == "record"
    rec = only_recording(ivr, outcome)
    assert Path(rec.path) == sandbox.recordings_dir / f"{rec.recording_id}.wav"
    assert rec.status == "finalized"
    assert not Path("/tmp/pwned").exists()
    assert "pwned" not in ivr.guard.settings.decision_log.read_text()


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


def test_recguard_audit_finds_the_ledger_and_the_spool_consistent(ivr: Run, sandbox: Sandbox) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asterisk_recguard", "audit", "--env-file", str(sandbox.env_file)],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout
