"""RECGUARD_GATE_TIMEOUT: a guard too slow to decide lets the caller go on,
unrecorded, and says "unavailable" (never "skip", which means the law does
not allow the recording)."""

from __future__ import annotations

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox

from .guardrun import guard_in_process, read_log


def test_a_gate_over_its_time_continues_unrecorded(sandbox: Sandbox, idle: CallerSimulator) -> None:
    # Through the real gate subroutine, which turns "no decision" into "unavailable".
    facts = {"TEST_PURPOSE": "order", "RECGUARD_NOTICES": "evidence-v1:complete"}
    # No real gate decides within a microsecond: the limit is always exceeded.
    with guard_in_process(sandbox.env_file, RECGUARD_GATE_TIMEOUT="0.000001") as daemon:
        call = idle.call("recguard-test-guard", "viagate", variables=facts)
        call.wait_answered()
        assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
        assert call.centre_variable("RECGUARD_DECISION") == "unavailable"
        call_id = call.centre_channel()["id"]
        assert daemon.ledger.recordings_for_call(call_id) == []
        lines = [e for e in read_log(daemon.settings.decision_log) if e.get("call_id") == call_id]
        assert [e["event"] for e in lines] == ["gate_shed"]
        assert lines[0]["decision"] == "unavailable" and lines[0]["level"] == "warning"
        call.hangup()
        call.wait_ended()
        assert wait_until(lambda: daemon.guard.tracked_calls() == 0, 5)
        daemon.guard.wait_idle()
