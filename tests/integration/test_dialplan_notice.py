"""recguard-notice: a notice counts as heard only when it played to its very end.

Short stock prompts stand in for the spoken notices (the example IVR test
plays the real ones): ``hello-world`` to be heard in full, ``demo-congrats``
(30 s) to be cut short.
"""

from __future__ import annotations

import time
import uuid

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox

from .dialplan_support import CONTEXT, AsteriskLog, global_variable, run_until_done, seconds, sound_file, wait_value


def test_notice_played_to_the_end_is_complete(sandbox: Sandbox, idle: CallerSimulator) -> None:
    length = seconds(sound_file(sandbox, "en/hello-world.gsm"))
    call = idle.call(CONTEXT, "notice", variables={"T_ID": "evidence-v1", "T_PROMPT": "hello-world"})
    call.wait_answered()
    # Marked interrupted before the prompt starts, complete only after its end.
    started = wait_value(call, "RECGUARD_NOTICES", "evidence-v1:interrupted", 5)
    assert started, "the notice was not marked as playing"
    heard = wait_value(call, "RECGUARD_NOTICES", "evidence-v1:complete", length + 5)
    assert heard, f"the notice was not marked complete: {call.centre_variable('RECGUARD_NOTICES')!r}"
    assert heard - started >= length - 0.25
    assert call.wait_centre_variable("T_DONE") == "yes"
    call.hangup()
    call.wait_ended()


def test_key_during_the_notice_interrupts_it_and_the_call_goes_on(sandbox: Sandbox, idle: CallerSimulator) -> None:
    call = idle.call(CONTEXT, "notice", variables={"T_ID": "evidence-v1", "T_PROMPT": "demo-congrats"})
    call.wait_answered()
    assert wait_value(call, "RECGUARD_NOTICES", "evidence-v1:interrupted", 5)
    time.sleep(0.3)  # the prompt is playing
    pressed = time.monotonic()
    call.press("5")
    assert call.wait_centre_variable("T_DONE", timeout=5) == "yes"
    # The key stopped the 30 s prompt at once.
    assert time.monotonic() - pressed < 3
    assert call.centre_variable("RECGUARD_NOTICES") == "evidence-v1:interrupted"
    assert call.centre_variable("CPLAYBACKSTATUS") == "USERSTOPPED"
    call.hangup()
    call.wait_ended()


def test_hash_and_star_stop_the_notice_instead_of_skipping_through_it(idle: CallerSimulator) -> None:
    # ControlPlayback's default fast-forward (#) and rewind (*) keys must not
    # let a caller jump to the end and have the notice count as heard.
    for key in ("#", "*"):
        call = idle.call(CONTEXT, "notice", variables={"T_ID": "evidence-v1", "T_PROMPT": "demo-congrats"})
        call.wait_answered()
        assert wait_value(call, "RECGUARD_NOTICES", "evidence-v1:interrupted", 5)
        time.sleep(0.3)
        call.press(key)
        assert call.wait_centre_variable("T_DONE", timeout=5) == "yes", key
        assert call.centre_variable("RECGUARD_NOTICES") == "evidence-v1:interrupted", key
        assert call.centre_variable("CPLAYBACKSTOPKEY") == key
        call.hangup()
        call.wait_ended()


def test_missing_prompt_file_is_interrupted(sandbox: Sandbox, idle: CallerSimulator) -> None:
    log = AsteriskLog(sandbox)
    call = idle.call(CONTEXT, "notice", variables={"T_ID": "evidence-v9", "T_PROMPT": "recguard/no-such-notice"})
    run_until_done(call, timeout=5)
    assert call.centre_variable("RECGUARD_NOTICES") == "evidence-v9:interrupted"
    assert log.wait_warning("no-such-notice"), "Asterisk did not log the missing file"
    call.hangup()
    call.wait_ended()


def test_default_prompt_is_recguard_slash_notice_id(sandbox: Sandbox, idle: CallerSimulator) -> None:
    # No PROMPT argument: recguard/<id> is played; for an id without a sound
    # file that is a failed playback, named in the Asterisk log.
    log = AsteriskLog(sandbox)
    call = idle.call(CONTEXT, "notice", variables={"T_ID": "unknown-notice-v1", "T_PROMPT": ""})
    run_until_done(call, timeout=5)
    assert call.centre_variable("RECGUARD_NOTICES") == "unknown-notice-v1:interrupted"
    assert log.wait_warning("recguard/unknown-notice-v1")
    call.hangup()
    call.wait_ended()


def test_two_notices_are_appended_in_order(idle: CallerSimulator) -> None:
    call = idle.call(
        CONTEXT,
        "two-notices",
        variables={"T_ID": "evidence-v1", "T_PROMPT": "demo-congrats", "T_ID2": "extra_notice-v2", "T_PROMPT2": "beep"},
    )
    call.wait_answered()
    assert wait_value(call, "RECGUARD_NOTICES", "evidence-v1:interrupted", 5)
    time.sleep(0.3)
    call.press("3")
    assert call.wait_centre_variable("T_DONE", timeout=8) == "yes"
    assert call.centre_variable("RECGUARD_NOTICES") == "evidence-v1:interrupted,extra_notice-v2:complete"
    call.hangup()
    call.wait_ended()


def test_notices_already_on_the_channel_are_kept(idle: CallerSimulator) -> None:
    call = idle.call(
        CONTEXT,
        "notice",
        variables={"T_ID": "evidence-v1", "T_PROMPT": "beep", "RECGUARD_NOTICES": "earlier-v1:complete"},
    )
    run_until_done(call, timeout=5)
    assert call.centre_variable("RECGUARD_NOTICES") == "earlier-v1:complete,evidence-v1:complete"
    call.hangup()
    call.wait_ended()


def test_hangup_during_the_notice_ends_the_call_and_leaves_it_interrupted(idle: CallerSimulator) -> None:
    key = uuid.uuid4().hex[:12]
    call = idle.call(
        CONTEXT, "notice-hangup", variables={"T_ID": "evidence-v1", "T_PROMPT": "demo-congrats", "T_KEY": key}
    )
    call.wait_answered()
    assert wait_value(call, "RECGUARD_NOTICES", "evidence-v1:interrupted", 5)
    time.sleep(0.3)
    call.hangup()
    call.wait_ended()
    assert idle.wait_idle(5), "the centre's side of the call did not end"
    final = wait_until(lambda: global_variable(idle.client, f"T_FINAL_{key}"), 3)
    assert final == "evidence-v1:interrupted"
    # Nothing after the notice ran: the call just ended.
    assert global_variable(idle.client, f"T_AFTER_{key}") == ""


def test_bad_notice_ids_are_refused_with_a_warning(sandbox: Sandbox, idle: CallerSimulator) -> None:
    for bad in ("Evidence-v1", "x:complete", "evidence v1", ""):
        log = AsteriskLog(sandbox)
        call = idle.call(CONTEXT, "notice", variables={"T_ID": bad, "T_PROMPT": "beep"})
        run_until_done(call, timeout=5)
        assert call.centre_variable("RECGUARD_NOTICES") is None, bad
        channel = call.centre_channel()["name"]
        warnings = log.wait_warning(f"recguard-notice on {channel}: refused notice id")
        assert warnings and f'"{bad}"' in warnings[0], bad
        call.hangup()
        call.wait_ended()
