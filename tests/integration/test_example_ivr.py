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
from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.devtools.scenarios import IvrCaller, IvrResult, run_caller

from . import ivr_checks as checks
from .guardrun import guard_in_process, read_log

HOSTILE_CALLER_ID = '"$(touch /tmp/pwned)\\";../../x\r\nAction: Originate" <$(id)>'


Run = checks.IvrRun[IvrResult]


@pytest.fixture(scope="module")
def ivr(sandbox: Sandbox, callers: CallerSimulator) -> Iterator[Run]:
    Path("/tmp/pwned").unlink(missing_ok=True)
    with guard_in_process(sandbox.env_file) as guard:
        scenarios = checks.ivr_table(checks.no_transaction_from_the_crm(guard), caller_id=HOSTILE_CALLER_ID)
        before = set(sandbox.recordings_dir.iterdir())
        results: dict[str, IvrResult] = {}

        def play(caller: IvrCaller) -> None:
            results[caller.name] = run_caller(callers, caller)

        threads = [threading.Thread(target=play, args=(s,)) for s in scenarios]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(240)
        checks.settle(guard, results)
        yield Run(guard, results, set(sandbox.recordings_dir.iterdir()) - before)


def test_order_notice_heard_consent_refused_is_recorded_for_order(ivr: Run) -> None:
    checks.order_refused_is_recorded_for_order(ivr, "order-check.wav")


def test_complaint_with_consent_is_recorded_for_complaint_and_quality(ivr: Run) -> None:
    checks.complaint_given_is_recorded_for_complaint_and_quality(ivr)


def test_general_information_consent_refused_is_not_recorded(ivr: Run) -> None:
    gate = checks.info_refused_is_not_recorded(ivr)
    assert gate["decision"] == "skip"


def test_general_information_with_consent_is_recorded_for_quality_only(ivr: Run) -> None:
    checks.info_given_is_recorded_for_quality_only(ivr)


def test_silence_at_the_consent_question_is_not_consent(ivr: Run) -> None:
    checks.silence_is_not_consent(ivr)


def test_caller_hanging_up_during_the_notice_is_not_recorded(ivr: Run) -> None:
    outcome = ivr.result("hangup_in_notice")
    assert ivr.guard.ledger.call(outcome.call_id) is None  # never reached the gate
    assert not any(outcome.call_id in e.get("call_id", "") for e in read_log(ivr.guard.settings.decision_log))


def test_caller_cutting_the_notice_short_is_not_recorded(ivr: Run) -> None:
    assert ivr.result("key_in_notice").facts["RECGUARD_NOTICES"].startswith("evidence-v1:interrupted")
    checks.cut_notice_is_not_recorded(ivr)


def test_order_without_transaction_is_deleted(ivr: Run) -> None:
    checks.no_transaction_is_deleted(ivr)


def test_hostile_caller_id_injects_nothing(ivr: Run, sandbox: Sandbox) -> None:
    checks.hostile_caller_id_injects_nothing(ivr, sandbox.recordings_dir)


def test_every_decision_is_in_the_ledger_and_the_log_and_the_spool_holds_only_kept_recordings(ivr: Run) -> None:
    checks.every_decision_is_logged_and_the_spool_holds_only_kept_recordings(ivr)


def test_recguard_audit_finds_the_ledger_and_the_spool_consistent(ivr: Run, sandbox: Sandbox) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asterisk_recguard", "audit", "--env-file", str(sandbox.env_file)],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout
