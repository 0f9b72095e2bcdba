"""The example IVR end to end, with the shipped Slovenian prompts and no guard.

The test follows the call by its facts rather than by sleeping: it presses
the menu key once the evidence notice is marked complete and answers the
consent question once that is marked complete, so it takes about as long as
the two spoken notices.
"""

from __future__ import annotations

import time

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox

from .dialplan_support import AsteriskLog, facts, seconds, sound_file, wait_value

CONTEXT = "recguard-example-inbound"


def test_order_call_without_consent_reaches_the_gate_with_its_facts(
    sandbox: Sandbox, idle: CallerSimulator
) -> None:
    evidence = seconds(sound_file(sandbox, "sl/recguard/evidence-v1.wav"))
    question = seconds(sound_file(sandbox, "sl/recguard/quality-consent-v1.wav"))
    log = AsteriskLog(sandbox)
    call = idle.call(CONTEXT, "s")
    call.wait_answered()
    began = time.monotonic()

    heard = wait_value(call, "RECGUARD_NOTICES", "evidence-v1:complete", evidence + 5)
    assert heard, f"evidence notice not heard to the end: {call.centre_variable('RECGUARD_NOTICES')!r}"
    assert heard - began >= evidence - 0.5
    assert call.centre_variable("CHANNEL(language)") == "sl"

    call.press("1")  # order, while the menu plays
    asked = wait_value(
        call, "RECGUARD_NOTICES", "evidence-v1:complete,quality-consent-v1:complete", question + 8
    )
    assert asked, f"consent question not heard to the end: {call.centre_variable('RECGUARD_NOTICES')!r}"
    assert asked - heard >= question - 0.5

    call.press("2")  # not consent
    assert wait_value(call, "RECGUARD_DECISION", "unavailable", 5)
    assert facts(call) == {
        "RECGUARD_NOTICES": "evidence-v1:complete,quality-consent-v1:complete",
        "RECGUARD_CONSENT": "refused",
        "RECGUARD_PURPOSE": "order,quality",
        "RECGUARD_OUTCOME": "unknown",
        "RECGUARD_DECISION": "unavailable",
    }
    # The stand-in agent keeps the call up until the caller hangs up.
    centre = call.centre_channel()["name"]
    assert wait_until(lambda: [line for line in log.lines() if "Started music on hold" in line and centre in line], 3)
    time.sleep(1.0)
    assert not call.ended
    assert centre in [c["name"] for c in idle.client.channels()]
    call.hangup()
    call.wait_ended()
