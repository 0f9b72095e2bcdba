"""Simulated callers who go through the example IVR (dialplan/recguard-example.conf)
the way people do: listening to the notice or not, choosing from the menu,
answering the consent question, and hanging up. Used by the demo and the tests.

A caller listens: they press a key only after the centre's side shows that
the prompt before it has finished (the notice's entry in RECGUARD_NOTICES
turns ``complete``), so the scenarios do not depend on prompt lengths.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..ari import wait_until
from .callsim import CallerSimulator, SimulatedCall

EXAMPLE_CONTEXT = "recguard-example-inbound"
MENU = {"order": "1", "change": "2", "cancellation": "3", "complaint": "4", "general_info": "5"}
PROMPT_TIMEOUT = 90.0  # the longest a spoken notice may take before the caller gives up


@dataclass
class IvrCaller:
    """What one caller does in the example IVR."""

    name: str
    choice: str = "order"  # a key of MENU
    consent_key: str | None = "2"  # "1" consents, another key refuses, None stays silent
    hangup_during_notice: bool = False
    key_during_notice: bool = False
    talk_seconds: float = 2.0
    language: str = "sl"
    caller_id: str | None = "Caller <+38640123456>"
    # Something that happens while the caller talks to the agent (e.g. the
    # CRM sets RECGUARD_OUTCOME); gets the centre's channel name.
    during_call: Callable[[str], object] | None = None


@dataclass
class IvrResult:
    caller: IvrCaller
    call: SimulatedCall | None = None
    call_id: str | None = None
    channel: str | None = None
    facts: dict[str, str | None] = field(default_factory=dict)
    decision: str | None = None
    recording_id: str | None = None
    error: str | None = None


def _notice_state(call: SimulatedCall, notice_id: str) -> str | None:
    notices = call.centre_variable("RECGUARD_NOTICES") or ""
    for entry in notices.split(","):
        key, _, status = entry.partition(":")
        if key == notice_id:
            return status
    return None


def run_caller(sim: CallerSimulator, caller: IvrCaller) -> IvrResult:
    """Place one call through the example IVR and play the caller's part."""
    result = IvrResult(caller)
    try:
        call = sim.call(
            EXAMPLE_CONTEXT, "s", caller_id=caller.caller_id, variables={"RECGUARD_LANGUAGE": caller.language}
        )
        result.call = call
        call.wait_answered(15)
        centre = call.centre_channel()
        result.call_id, result.channel = centre["id"], centre["name"]
        if caller.hangup_during_notice or caller.key_during_notice:
            if not wait_until(lambda: _notice_state(call, "evidence-v1") is not None, 10):
                raise TimeoutError("the evidence notice never started")
            time.sleep(1.0)
            if caller.hangup_during_notice:
                call.hangup()
                call.wait_ended()
                return result
            call.press("0")
        elif not wait_until(lambda: _notice_state(call, "evidence-v1") == "complete", PROMPT_TIMEOUT, 0.1):
            raise TimeoutError("the evidence notice did not finish")
        # The menu's Read() starts as soon as the notice ends.
        time.sleep(0.4)
        call.press(MENU[caller.choice])
        if not wait_until(lambda: _notice_state(call, "quality-consent-v1") == "complete", PROMPT_TIMEOUT, 0.1):
            raise TimeoutError("the consent question did not finish")
        if caller.consent_key is not None:
            time.sleep(0.2)
            call.press(caller.consent_key)
        decision = wait_until(lambda: call.centre_variable("RECGUARD_DECISION"), 15, 0.1)
        if not decision:
            raise TimeoutError("the call never came back from the gate")
        result.decision = decision
        result.recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
        result.facts = {
            name: call.centre_variable(name)
            for name in ("RECGUARD_PURPOSE", "RECGUARD_NOTICES", "RECGUARD_CONSENT", "RECGUARD_OUTCOME")
        }
        if caller.during_call is not None:
            time.sleep(caller.talk_seconds / 2)
            caller.during_call(result.channel)
            time.sleep(caller.talk_seconds / 2)
        else:
            time.sleep(caller.talk_seconds)
        call.hangup()
        call.wait_ended()
    except Exception as exc:  # reported with the scenario's name
        result.error = f"{caller.name}: {type(exc).__name__}: {exc}"
        if result.call is not None:
            result.call.hangup()
    return result
