"""What the dialplan guarantees on its own, whether recguard runs or not:

* the consent question writes RECGUARD_CONSENT once, with the answer, so a
  question asked again while recguard watches the call never shows it a
  passing refusal;
* a call recguard decided keeps its final facts in AstDB when it hangs up,
  for a recguard that was down at that moment;
* the caller's 9 withdraws consent in Asterisk itself while they talk to an
  agent;
* an agent's key keeps ``quality`` wherever it stood among the purposes.

A stand-in Stasis application plays recguard at the gate (dialplan_support).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from asterisk_recguard.ami import AmiClient
from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator, SimulatedCall
from asterisk_recguard.devtools.sandbox import Sandbox

from .dialplan_support import (
    CONTEXT,
    FakeGuard,
    forget_final_facts,
    global_variable,
    run_until_done,
    wait_value,
)

QUESTION = "quality-consent-v1"
NOTICES = "evidence-v1:complete,quality-consent-v1:complete"
WITHDRAW = "recguard-caller-withdraw"


@pytest.fixture(scope="module", autouse=True)
def no_final_facts_left(sandbox_env: dict[str, str], callers: CallerSimulator) -> Iterator[None]:
    yield
    forget_final_facts(sandbox_env, callers)


@pytest.fixture(scope="module")
def ami(sandbox_env: dict[str, str]) -> Iterator[AmiClient]:
    client = AmiClient(
        sandbox_env["RECGUARD_AMI_HOST"],
        int(sandbox_env["RECGUARD_AMI_PORT"]),
        sandbox_env["RECGUARD_AMI_USER"],
        sandbox_env["RECGUARD_AMI_SECRET"],
        events="off",
    )
    client.start()
    assert client.wait_connected(10), client.last_error
    try:
        yield client
    finally:
        client.stop()


def final_facts(ami: AmiClient, unique_id: str) -> str | None:
    """The value the hangup handler wrote for the channel, None when there is none."""
    response = ami.send("DBGet", Family="recguard", Key=unique_id)
    if not response.ok:
        assert response.get("Message") == "Database entry not found", response.headers
        return None
    return response.events[0]["Val"]


def hang_up_and_wait_gone(idle: CallerSimulator, call: SimulatedCall) -> None:
    """The caller hangs up; returns once the centre's channel is destroyed,
    which is after its hangup handlers ran."""
    centre = call.centre_channel()["id"]
    call.hangup()
    call.wait_ended()
    assert wait_until(lambda: centre not in [c["id"] for c in idle.client.channels()], 5), "the centre stayed up"


def hangup_handlers(sandbox: Sandbox, call: SimulatedCall) -> list[str]:
    """The hangup handlers pushed on the centre's channel, as Asterisk lists them."""
    name = call.centre_channel()["name"]
    out = sandbox.cli(f"core show hanguphandlers {name}")
    return [line for line in out.splitlines() if "recguard-final" in line]


def agent_leg(callers: CallerSimulator, half: str) -> dict:
    """The agent's channel once the agent answered and the bridge formed."""

    def bridged() -> dict | None:
        for channel in callers.client.channels():
            name = channel["name"]
            if name.startswith("Local/agent@recguard-test-agent") and name.endswith(half) and channel["state"] == "Up":
                return channel
        return None

    agent = wait_until(bridged, 5)
    assert agent, "the agent never answered"
    time.sleep(0.3)  # Dial bridges the two parties just after the answer
    return agent


# -- consent is written once ------------------------------------------------------


def test_consent_asked_again_while_watched_goes_straight_to_the_answer(
    sandbox_env: dict[str, str], idle: CallerSimulator
) -> None:
    with FakeGuard(sandbox_env, decision="record", subscribe=True) as guard:
        call = idle.call(CONTEXT, "consent-twice")
        call.wait_answered()
        assert wait_value(call, "RECGUARD_NOTICES", f"{QUESTION}:complete", 5)
        call.press("1")
        guard.wait_started(timeout=6)
        assert call.wait_centre_variable("T_GATED", timeout=5) == "yes"
        assert call.centre_variable("RECGUARD_CONSENT") == "given"
        # Asked again (after a transfer, say) while the guard is subscribed.
        again = f"{QUESTION}:complete,{QUESTION}:complete"
        assert wait_value(call, "RECGUARD_NOTICES", again, 5), call.centre_variable("RECGUARD_NOTICES")
        assert call.centre_variable("RECGUARD_CONSENT") == "given"  # unchanged while waiting for the key
        call.press("1")
        assert call.wait_centre_variable("T_DONE", timeout=5) == "yes"
        assert not guard.failures, guard.failures
        # The subscription saw the second question being played...
        assert guard.values("RECGUARD_NOTICES")[:2] == [f"{QUESTION}:complete,{QUESTION}:interrupted", again]
        # ...and RECGUARD_CONSENT written once, with the answer: never "refused".
        assert guard.values("RECGUARD_CONSENT") == ["given"]
    call.hangup()
    call.wait_ended()


def test_an_earlier_answer_stands_until_the_new_one_is_known(idle: CallerSimulator) -> None:
    call = idle.call(
        CONTEXT, "consent", variables={"T_ID": QUESTION, "T_PROMPT": "beep", "T_TIMEOUT": "", "RECGUARD_CONSENT": "given"}
    )
    call.wait_answered()
    assert wait_value(call, "RECGUARD_NOTICES", f"{QUESTION}:complete", 5)
    time.sleep(1.0)  # waiting for the key
    assert call.centre_variable("RECGUARD_CONSENT") == "given"
    call.press("2")
    assert call.wait_centre_variable("T_DONE", timeout=5) == "yes"
    assert call.centre_variable("RECGUARD_CONSENT") == "refused"
    call.hangup()
    call.wait_ended()


@pytest.mark.parametrize(("before", "prompt"), [("given", "demo-congrats"), ("given", "beep"), (None, "demo-congrats")])
def test_hanging_up_during_the_question_leaves_consent_as_it_was(
    idle: CallerSimulator, before: str | None, prompt: str
) -> None:
    key = uuid.uuid4().hex[:12]
    variables = {"T_KEY": key, "T_PROMPT": prompt}
    if before is not None:
        variables["RECGUARD_CONSENT"] = before
    call = idle.call(CONTEXT, "consent-hangup", variables=variables)
    call.wait_answered()
    # demo-congrats: while the question plays; beep: while waiting for the key.
    state = "interrupted" if prompt == "demo-congrats" else "complete"
    assert wait_value(call, "RECGUARD_NOTICES", f"{QUESTION}:{state}", 5)
    time.sleep(0.5)
    call.hangup()
    call.wait_ended()
    assert wait_until(lambda: global_variable(idle.client, f"T_FINAL_{key}"), 5) == (before or "unset")
    assert global_variable(idle.client, f"T_AFTER_{key}") == ""


# -- final facts in AstDB --------------------------------------------------------


@pytest.mark.parametrize("decision", ["record", "skip"])
def test_a_decided_call_leaves_its_final_facts_at_the_hangup(
    sandbox_env: dict[str, str], idle: CallerSimulator, ami: AmiClient, decision: str
) -> None:
    with FakeGuard(sandbox_env, decision=decision) as guard:
        call = idle.call(CONTEXT, "gate", variables={"RECGUARD_NOTICES": NOTICES, "RECGUARD_CONSENT": "given"})
        run_until_done(call, timeout=5)
        guard.wait_started()
    centre = call.centre_channel()
    assert call.centre_variable("RECGUARD_DECISION") == decision
    assert call.centre_variable("RECGUARD_FINAL_HANDLER") == "1"
    assert final_facts(ami, centre["id"]) is None  # written at the hangup, not before
    # The guard is gone; the CRM closes the call without a transaction.
    ami.action("Setvar", Channel=centre["name"], Variable="RECGUARD_OUTCOME", Value="no_transaction")
    assert wait_value(call, "RECGUARD_OUTCOME", "no_transaction", 3)
    before = int(time.time())
    hang_up_and_wait_gone(idle, call)
    after = int(time.time())
    value = final_facts(ami, centre["id"])
    assert value is not None, "no final facts in AstDB"
    epoch, *rest = value.split("|")
    assert rest == ["order,quality", NOTICES, "given", "no_transaction"], value
    assert epoch.isdigit() and before <= int(epoch) <= after, (before, value, after)
    ami.action("DBDel", Family="recguard", Key=centre["id"])


def test_the_final_facts_are_those_of_the_hangup_with_defaults(
    sandbox_env: dict[str, str], idle: CallerSimulator, ami: AmiClient
) -> None:
    # No notice, no question: the gate's own defaults are the facts.
    with FakeGuard(sandbox_env, decision="skip") as guard:
        call = idle.call(CONTEXT, "gate")
        run_until_done(call, timeout=5)
        guard.wait_started()
    unique_id = call.centre_channel()["id"]
    hang_up_and_wait_gone(idle, call)
    value = final_facts(ami, unique_id)
    assert value is not None
    epoch, rest = value.split("|", 1)
    assert epoch.isdigit() and rest == "order,quality||none|unknown", value
    ami.action("DBDel", Family="recguard", Key=unique_id)


@pytest.mark.parametrize("guard_decides", [False, True], ids=["no-guard", "guard-without-decision"])
def test_nothing_is_written_when_the_gate_said_unavailable(
    sandbox_env: dict[str, str], idle: CallerSimulator, ami: AmiClient, guard_decides: bool
) -> None:
    variables = {"RECGUARD_NOTICES": NOTICES, "RECGUARD_CONSENT": "given"}
    if guard_decides:
        with FakeGuard(sandbox_env, decision=None) as guard:
            call = idle.call(CONTEXT, "gate", variables=variables)
            run_until_done(call, timeout=5)
            guard.wait_started()
    else:
        call = idle.call(CONTEXT, "gate", variables=variables)
        run_until_done(call, timeout=5)
    assert call.centre_variable("RECGUARD_DECISION") == "unavailable"
    assert call.centre_variable("RECGUARD_FINAL_HANDLER") is None
    assert call.centre_variable("DYNAMIC_FEATURES") is None  # no withdrawal key either
    unique_id = call.centre_channel()["id"]
    hang_up_and_wait_gone(idle, call)
    assert final_facts(ami, unique_id) is None


def test_two_passes_push_one_handler_and_add_the_key_once(
    sandbox: Sandbox, sandbox_env: dict[str, str], idle: CallerSimulator, ami: AmiClient
) -> None:
    with FakeGuard(sandbox_env, decision="record") as guard:
        call = idle.call(
            CONTEXT, "gate-twice", variables={"RECGUARD_CONSENT": "given", "DYNAMIC_FEATURES": "site-feature"}
        )
        run_until_done(call, timeout=5)
        assert wait_until(lambda: len(guard.started) == 2, 3)
    assert len(hangup_handlers(sandbox, call)) == 1, sandbox.cli(
        f"core show hanguphandlers {call.centre_channel()['name']}"
    )
    # Joined to what the site had, once.
    assert call.centre_variable("DYNAMIC_FEATURES") == f"site-feature#{WITHDRAW}"
    unique_id = call.centre_channel()["id"]
    hang_up_and_wait_gone(idle, call)
    assert final_facts(ami, unique_id) is not None
    ami.action("DBDel", Family="recguard", Key=unique_id)


# -- the caller's withdrawal key --------------------------------------------------


@pytest.mark.parametrize("consent", ["refused", "none", "withdrawn"])
def test_the_withdrawal_key_comes_only_with_consent_given(
    sandbox_env: dict[str, str], idle: CallerSimulator, consent: str
) -> None:
    variables = {} if consent == "none" else {"RECGUARD_CONSENT": consent}
    with FakeGuard(sandbox_env, decision="record") as guard:
        call = idle.call(CONTEXT, "gate", variables=variables)
        run_until_done(call, timeout=5)
        guard.wait_started()
    assert call.centre_variable("RECGUARD_CONSENT") == consent
    assert call.centre_variable("DYNAMIC_FEATURES") is None
    call.hangup()
    call.wait_ended()


def test_callers_nine_withdraws_consent_while_bridged_without_recguard(
    sandbox_env: dict[str, str], idle: CallerSimulator
) -> None:
    with FakeGuard(sandbox_env, decision="record") as guard:
        call = idle.call(CONTEXT, "gate-withagent", variables={"RECGUARD_NOTICES": NOTICES, "RECGUARD_CONSENT": "given"})
        run_until_done(call, timeout=5)
        guard.wait_started()
    # The stand-in continued the call and is gone: nothing outside Asterisk acts on the key.
    assert not guard.client.app_registered("recguard")
    assert call.centre_variable("DYNAMIC_FEATURES") == WITHDRAW
    agent_leg(idle, ";1")
    assert call.centre_variable("RECGUARD_CONSENT") == "given"
    call.press("9")
    assert wait_until(lambda: call.centre_variable("RECGUARD_CONSENT") == "withdrawn", 3), call.centre_variable(
        "RECGUARD_CONSENT"
    )
    # The key acted on the caller's channel only, and the call goes on.
    agent = agent_leg(idle, ";1")
    assert idle.client.get_variable(agent["id"], "RECGUARD_CONSENT") is None
    assert not call.ended
    call.hangup()
    call.wait_ended()


# -- agent keys keep quality ------------------------------------------------------


def press_agent_keys(idle: CallerSimulator, ami: AmiClient, keys: str) -> None:
    agent = agent_leg(idle, ";2")
    for digit in keys:
        ami.action("PlayDTMF", Channel=agent["name"], Digit=digit, Duration="100")


@pytest.mark.parametrize(
    ("purpose", "keys", "expected"),
    [
        ("quality,general_info", "*71", "order,quality"),  # quality first: a match with an empty capture
        ("general_info,quality", "*71", "order,quality"),
        ("order,quality,complaint", "*70", "general_info,quality"),
        ("quality", "*74", "complaint,quality"),
        ("order", "*72", "change"),
        ("qualityx,order", "*73", "cancellation"),  # a whole field, not a substring
        ("", "*71", "order"),
    ],
)
def test_agent_key_keeps_quality_wherever_it_was_declared(
    idle: CallerSimulator, ami: AmiClient, purpose: str, keys: str, expected: str
) -> None:
    call = idle.call(CONTEXT, "withagent", variables={"RECGUARD_PURPOSE": purpose} if purpose else None)
    run_until_done(call, timeout=5)
    press_agent_keys(idle, ami, keys)
    assert wait_until(lambda: call.centre_variable("RECGUARD_PURPOSE") == expected, 3), call.centre_variable(
        "RECGUARD_PURPOSE"
    )
    call.hangup()
    call.wait_ended()
