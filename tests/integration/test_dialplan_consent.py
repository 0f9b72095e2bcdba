"""recguard-consent: only an active 1 is consent; the question is itself a notice.

``beep`` stands in for a short question, ``demo-congrats`` (30 s) for one the
caller answers before it ends.
"""

from __future__ import annotations

import time

from asterisk_recguard.devtools.callsim import CallerSimulator, SimulatedCall
from asterisk_recguard.devtools.sandbox import Sandbox

from .dialplan_support import CONTEXT, AsteriskLog, run_until_done, wait_value

QUESTION = "quality-consent-v1"


def ask(idle: CallerSimulator, prompt: str = "beep", timeout: str = "", notice_id: str = QUESTION) -> SimulatedCall:
    call = idle.call(CONTEXT, "consent", variables={"T_ID": notice_id, "T_PROMPT": prompt, "T_TIMEOUT": timeout})
    call.wait_answered()
    return call


def heard_question(call: SimulatedCall, within: float = 5.0) -> float:
    when = wait_value(call, "RECGUARD_NOTICES", f"{QUESTION}:complete", within)
    assert when, f"the question was not heard to its end: {call.centre_variable('RECGUARD_NOTICES')!r}"
    return when


def finish(call: SimulatedCall) -> None:
    call.hangup()
    call.wait_ended()


def test_one_after_the_question_is_consent(idle: CallerSimulator) -> None:
    call = ask(idle)
    heard_question(call)
    call.press("1")
    assert call.wait_centre_variable("T_DONE", timeout=5) == "yes"
    assert call.centre_variable("RECGUARD_CONSENT") == "given"
    assert call.centre_variable("RECGUARD_NOTICES") == f"{QUESTION}:complete"
    finish(call)


def test_another_key_after_the_question_is_refusal(idle: CallerSimulator) -> None:
    call = ask(idle)
    heard_question(call)
    call.press("2")
    assert call.wait_centre_variable("T_DONE", timeout=5) == "yes"
    assert call.centre_variable("RECGUARD_CONSENT") == "refused"
    assert call.centre_variable("RECGUARD_NOTICES") == f"{QUESTION}:complete"
    finish(call)


def test_silence_is_refusal_after_the_default_five_seconds(idle: CallerSimulator) -> None:
    call = ask(idle)
    heard = heard_question(call)
    # Nothing is written until the answer is known (no passing value for
    # recguard to act upon), and waiting never turns into consent.
    assert call.centre_variable("RECGUARD_CONSENT") is None
    assert call.wait_centre_variable("T_DONE", timeout=8) == "yes"
    waited = time.monotonic() - heard
    assert 4.5 <= waited <= 7.0, waited
    assert call.centre_variable("RECGUARD_CONSENT") == "refused"
    finish(call)


def test_timeout_argument_shortens_the_wait(idle: CallerSimulator) -> None:
    call = ask(idle, timeout="1.5")
    heard = heard_question(call)
    assert call.wait_centre_variable("T_DONE", timeout=5) == "yes"
    assert time.monotonic() - heard < 3.5
    assert call.centre_variable("RECGUARD_CONSENT") == "refused"
    finish(call)


def test_one_during_the_question_is_consent_but_the_question_is_interrupted(idle: CallerSimulator) -> None:
    call = ask(idle, prompt="demo-congrats")
    assert wait_value(call, "RECGUARD_NOTICES", f"{QUESTION}:interrupted", 5)
    time.sleep(0.3)
    call.press("1")
    assert call.wait_centre_variable("T_DONE", timeout=5) == "yes"
    assert call.centre_variable("RECGUARD_CONSENT") == "given"
    # Strict: consent given before the question ended does not count as an
    # informed one; the policy sees the question as not heard.
    assert call.centre_variable("RECGUARD_NOTICES") == f"{QUESTION}:interrupted"
    finish(call)


def test_other_key_during_the_question_is_refusal_at_once(idle: CallerSimulator) -> None:
    call = ask(idle, prompt="demo-congrats")
    assert wait_value(call, "RECGUARD_NOTICES", f"{QUESTION}:interrupted", 5)
    time.sleep(0.3)
    pressed = time.monotonic()
    call.press("9")
    assert call.wait_centre_variable("T_DONE", timeout=5) == "yes"
    assert time.monotonic() - pressed < 3  # no wait for another key
    assert call.centre_variable("RECGUARD_CONSENT") == "refused"
    assert call.centre_variable("RECGUARD_NOTICES") == f"{QUESTION}:interrupted"
    finish(call)


def test_missing_question_prompt_asks_nothing_and_refuses(idle: CallerSimulator) -> None:
    call = ask(idle, prompt="recguard/no-such-question")
    run_until_done(call, timeout=3)
    assert call.centre_variable("RECGUARD_CONSENT") == "refused"
    assert call.centre_variable("RECGUARD_NOTICES") == f"{QUESTION}:interrupted"
    finish(call)


def test_a_stale_stop_key_from_an_earlier_prompt_is_not_consent(idle: CallerSimulator) -> None:
    # CPLAYBACKSTOPKEY=1 left over from an earlier prompt, then a question that
    # cannot play: the old key must not be taken as the answer.
    call = idle.call(
        CONTEXT,
        "consent",
        variables={"T_ID": QUESTION, "T_PROMPT": "recguard/no-such-question", "T_TIMEOUT": "",
                   "CPLAYBACKSTOPKEY": "1", "CPLAYBACKSTATUS": "USERSTOPPED"},
    )
    run_until_done(call, timeout=3)
    assert call.centre_variable("RECGUARD_CONSENT") == "refused"
    finish(call)


def test_bad_arguments_are_refused_with_a_warning(sandbox: Sandbox, idle: CallerSimulator) -> None:
    log = AsteriskLog(sandbox)
    call = ask(idle, notice_id="Quality:complete")
    run_until_done(call, timeout=3)
    channel = call.centre_channel()["name"]
    assert call.centre_variable("RECGUARD_CONSENT") is None
    assert call.centre_variable("RECGUARD_NOTICES") is None
    assert log.wait_warning(f"recguard-consent on {channel}: refused notice id \"Quality:complete\"")
    finish(call)

    log = AsteriskLog(sandbox)
    call = ask(idle, timeout="0")
    heard = heard_question(call)
    channel = call.centre_channel()["name"]
    assert log.wait_warning(f'recguard-consent on {channel}: timeout "0"')
    assert call.wait_centre_variable("T_DONE", timeout=8) == "yes"
    assert 4.5 <= time.monotonic() - heard <= 7.0  # the default instead
    assert call.centre_variable("RECGUARD_CONSENT") == "refused"
    finish(call)
