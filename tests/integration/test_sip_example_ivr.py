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

from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_recguard.ari import wait_until
from asterisk_recguard.daemon import Daemon
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.devtools.scenarios import IvrCaller

from . import ivr_checks as checks
from .guardrun import guard_in_process
from .sip_callers import SipCallResult, SipCaller, SipIvr, sip_agent
from .sipp import SippResult

HOSTILE_NUMBER = "$(id)"
HOSTILE_NAME = '$(touch /tmp/pwned)";../../x'


class Run(checks.IvrRun[SipCallResult]):
    def __init__(self, guard: Daemon, results: dict[str, SipCallResult], agent: SippResult,
                 new_files: set[Path]) -> None:
        super().__init__(guard, results, new_files)
        self.agent = agent


@pytest.fixture(scope="module")
def ivr(sipp_ready: Sandbox, callers: CallerSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    sandbox = sipp_ready
    workdir = tmp_path_factory.mktemp("sip-ivr")
    Path("/tmp/pwned").unlink(missing_ok=True)
    with guard_in_process(sandbox.env_file) as guard:
        table = {row.name: row for row in checks.ivr_table(checks.no_transaction_from_the_crm(guard))}
        rows = [
            SipCaller(table["order_refused"], "5550101"),
            SipCaller(table["complaint_given"], "5550102"),
            SipCaller(table["info_refused"], "5550103"),
            SipCaller(table["info_given"], "5550104"),
            SipCaller(table["info_silent"], "5550105"),
            SipCaller(table["hangup_in_notice"], "5550106"),
            SipCaller(table["key_in_notice"], "5550107"),
            SipCaller(table["order_no_transaction"], "5550108"),
            SipCaller(table["hostile_caller_id"], HOSTILE_NUMBER, display=HOSTILE_NAME),
            SipCaller(IvrCaller("withdraws_in_the_bridge", choice="general_info", consent_key="1", talk_seconds=5),
                      "5550110", keys_while_talking=((2.0, "9"),)),
        ]
        reach_the_agent = sum(not row.ivr.hangup_during_notice for row in rows)
        ivr = SipIvr(sandbox, callers.client, workdir)
        before = set(sandbox.recordings_dir.iterdir())
        with sip_agent(sandbox, workdir, calls=reach_the_agent, timeout=150) as agent:
            results = ivr.call_all(rows)
            answered = agent.wait()
        checks.settle(guard, results)
        yield Run(guard, results, answered, set(sandbox.recordings_dir.iterdir()) - before)


def test_every_call_reaches_the_agent_and_ends_as_scripted(ivr: Run) -> None:
    for name in ivr.results:
        ivr.result(name)
    assert ivr.agent.ok, ivr.agent.report()


def test_order_notice_heard_consent_refused_is_recorded_for_order(ivr: Run) -> None:
    checks.order_refused_is_recorded_for_order(ivr, "sip-order-check.wav")


def test_complaint_with_consent_is_recorded_for_complaint_and_quality(ivr: Run) -> None:
    assert ivr.result("complaint_given").facts["RECGUARD_CONSENT"] == "given"
    checks.complaint_given_is_recorded_for_complaint_and_quality(ivr)


def test_general_information_consent_refused_is_not_recorded(ivr: Run) -> None:
    checks.info_refused_is_not_recorded(ivr)


def test_general_information_with_consent_is_recorded_for_quality_only(ivr: Run) -> None:
    checks.info_given_is_recorded_for_quality_only(ivr)


def test_silence_at_the_consent_question_is_not_consent(ivr: Run) -> None:
    assert ivr.result("info_silent").facts["RECGUARD_NOTICES"] == checks.BOTH_NOTICES
    checks.silence_is_not_consent(ivr)


def test_caller_hanging_up_during_the_notice_is_not_recorded(ivr: Run) -> None:
    outcome = ivr.result("hangup_in_notice")
    assert outcome.call_id is not None
    assert ivr.guard.ledger.call(outcome.call_id) is None  # never reached the gate
    assert ivr.log(outcome.call_id) == []


def test_caller_cutting_the_notice_short_is_not_recorded(ivr: Run) -> None:
    outcome = ivr.result("key_in_notice")
    assert outcome.facts["RECGUARD_NOTICES"] == "evidence-v1:interrupted,quality-consent-v1:complete"
    assert outcome.facts["RECGUARD_PURPOSE"] == "order,quality"
    checks.cut_notice_is_not_recorded(ivr)


def test_order_without_transaction_is_deleted(ivr: Run) -> None:
    checks.no_transaction_is_deleted(ivr)


def test_hostile_caller_id_injects_nothing(ivr: Run, sandbox: Sandbox) -> None:
    log = checks.hostile_caller_id_injects_nothing(ivr, sandbox.recordings_dir)
    assert HOSTILE_NUMBER not in log


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
    checks.every_decision_is_logged_and_the_spool_holds_only_kept_recordings(ivr)
