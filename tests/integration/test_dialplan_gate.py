"""recguard-gate: declares the purposes, hands the channel to recguard, and
fails closed (RECGUARD_DECISION=unavailable, call goes on) when it is not there."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox

from .dialplan_support import CONTEXT, AsteriskLog, FakeGuard, facts, forget_final_facts, run_until_done, wait_value

CALLER_NUMBER = "+38640111222"


@pytest.fixture(scope="module", autouse=True)
def no_final_facts_left(sandbox_env: dict[str, str], callers: CallerSimulator) -> Iterator[None]:
    yield
    forget_final_facts(sandbox_env, callers)


def test_without_recguard_the_call_goes_on_unrecorded(sandbox: Sandbox, idle: CallerSimulator) -> None:
    log = AsteriskLog(sandbox)
    call = idle.call(CONTEXT, "gate", caller_id=f"Caller <{CALLER_NUMBER}>")
    began = time.monotonic()
    run_until_done(call, timeout=5)
    # Stasis() failed at once: nothing waited for a guard.
    assert time.monotonic() - began < 3
    assert facts(call) == {
        "RECGUARD_NOTICES": None,
        "RECGUARD_CONSENT": "none",
        "RECGUARD_PURPOSE": "order,quality",
        "RECGUARD_OUTCOME": "unknown",
        "RECGUARD_DECISION": "unavailable",
    }
    assert call.centre_variable("T_STASISSTATUS") == "FAILED"
    assert not call.ended  # still up, in the dialplan after the gate
    channel = call.centre_channel()["name"]
    warnings = log.wait_warning(f"recguard-gate on {channel}:")
    assert warnings and 'Stasis application "recguard" is not available' in warnings[0]
    assert not [line for line in log.lines() if CALLER_NUMBER in line]
    call.hangup()
    call.wait_ended()


def test_a_decision_left_from_an_earlier_pass_does_not_count(
    sandbox_env: dict[str, str], idle: CallerSimulator
) -> None:
    # The guard answers this pass without deciding: the old "record" must not
    # stand in for a decision it did not make.
    with FakeGuard(sandbox_env, app="recguard", decision=None) as guard:
        call = idle.call(CONTEXT, "gate", variables={"RECGUARD_DECISION": "record"})
        run_until_done(call, timeout=5)
        guard.wait_started()
    assert call.centre_variable("T_STASISSTATUS") == "SUCCESS"
    assert call.centre_variable("RECGUARD_DECISION") == "unavailable"
    call.hangup()
    call.wait_ended()


def test_consent_and_outcome_already_set_are_kept(idle: CallerSimulator) -> None:
    call = idle.call(
        CONTEXT, "gate", variables={"RECGUARD_CONSENT": "given", "RECGUARD_OUTCOME": "transaction"}
    )
    run_until_done(call, timeout=5)
    assert call.centre_variable("RECGUARD_CONSENT") == "given"
    assert call.centre_variable("RECGUARD_OUTCOME") == "transaction"
    call.hangup()
    call.wait_ended()


def test_bad_purposes_are_refused_and_the_good_ones_declared(sandbox: Sandbox, idle: CallerSimulator) -> None:
    log = AsteriskLog(sandbox)
    call = idle.call(CONTEXT, "gate-bad-purposes")
    run_until_done(call, timeout=5)
    assert call.centre_variable("RECGUARD_PURPOSE") == "order,quality"
    channel = call.centre_channel()["name"]
    refused = log.wait_warning(f"recguard-gate on {channel}: refused purpose")
    assert len(refused) == 2
    assert '"Bad Purpose"' in refused[0] and '"x:complete"' in refused[1]
    call.hangup()
    call.wait_ended()


def test_at_most_eight_purposes_are_declared(sandbox: Sandbox, idle: CallerSimulator) -> None:
    log = AsteriskLog(sandbox)
    call = idle.call(CONTEXT, "gate-nine-purposes")
    run_until_done(call, timeout=5)
    assert call.centre_variable("RECGUARD_PURPOSE") == "p1,p2,p3,p4,p5,p6,p7,p8"
    assert log.wait_warning("9 purposes given")
    call.hangup()
    call.wait_ended()


def test_registered_guard_gets_the_facts_and_its_decision_comes_back(
    sandbox_env: dict[str, str], idle: CallerSimulator
) -> None:
    with FakeGuard(sandbox_env, app="recguard", decision="skip") as guard:
        call = idle.call(CONTEXT, "gate-after-notices")
        call.wait_answered()
        both = "evidence-v1:complete,quality-consent-v1:complete"
        assert wait_value(call, "RECGUARD_NOTICES", both, 5), call.centre_variable("RECGUARD_NOTICES")
        call.press("1")  # consent, after the question (a beep) ended
        started = guard.wait_started(timeout=8)
        assert call.wait_centre_variable("T_DONE", timeout=5) == "yes"
        assert not guard.failures, guard.failures
    assert started["args"] == ["gate"]
    delivered = started["channel"]["channelvars"]
    assert delivered["RECGUARD_PURPOSE"] == "complaint,quality"
    assert delivered["RECGUARD_NOTICES"] == "evidence-v1:complete,quality-consent-v1:complete"
    assert delivered["RECGUARD_CONSENT"] == "given"
    assert delivered["RECGUARD_OUTCOME"] == "unknown"
    assert delivered["RECGUARD_DECISION"] == ""  # cleared before entering Stasis
    assert started["channel"]["name"] == call.centre_channel()["name"]
    assert call.centre_variable("RECGUARD_DECISION") == "skip"
    call.hangup()
    call.wait_ended()


def test_guard_that_continues_without_a_decision_means_unavailable(
    sandbox: Sandbox, sandbox_env: dict[str, str], idle: CallerSimulator
) -> None:
    log = AsteriskLog(sandbox)
    with FakeGuard(sandbox_env, app="recguard", decision=None) as guard:
        call = idle.call(CONTEXT, "gate")
        run_until_done(call, timeout=5)
        guard.wait_started()
    assert call.centre_variable("T_STASISSTATUS") == "SUCCESS"
    assert call.centre_variable("RECGUARD_DECISION") == "unavailable"
    channel = call.centre_channel()["name"]
    assert log.wait_warning(f"recguard-gate on {channel}: came back from Stasis application \"recguard\" without a decision")
    call.hangup()
    call.wait_ended()


def test_recguard_app_names_the_stasis_application(sandbox_env: dict[str, str], idle: CallerSimulator) -> None:
    with FakeGuard(sandbox_env, app="recguard-b", decision="record") as guard:
        call = idle.call(CONTEXT, "gate", variables={"RECGUARD_APP": "recguard-b"})
        run_until_done(call, timeout=5)
        guard.wait_started()
    assert call.centre_variable("RECGUARD_DECISION") == "record"
    call.hangup()
    call.wait_ended()


def test_bad_recguard_app_fails_closed(sandbox: Sandbox, idle: CallerSimulator) -> None:
    log = AsteriskLog(sandbox)
    call = idle.call(CONTEXT, "gate", variables={"RECGUARD_APP": "recguard b"})
    run_until_done(call, timeout=5)
    assert call.centre_variable("RECGUARD_DECISION") == "unavailable"
    # Stasis() was never entered.
    assert call.centre_variable("T_STASISSTATUS") in (None, "")
    assert log.wait_warning('RECGUARD_APP "recguard b" is not an application name')
    call.hangup()
    call.wait_ended()


def test_after_the_guard_stops_the_gate_fails_closed_again(
    sandbox_env: dict[str, str], idle: CallerSimulator
) -> None:
    with FakeGuard(sandbox_env, app="recguard", decision="skip"):
        pass
    call = idle.call(CONTEXT, "gate")
    run_until_done(call, timeout=5)
    assert call.centre_variable("RECGUARD_DECISION") == "unavailable"
    assert call.centre_variable("T_STASISSTATUS") == "FAILED"
    call.hangup()
    call.wait_ended()
