"""RECGUARD_UNAUTHORIZED_RECORDINGS=log: a first look at an existing installation
reports recordings started behind the guard's back without stopping them."""

from __future__ import annotations

import time

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.storage import wav_duration, wav_is_closed
from asterisk_recguard.devtools.sandbox import Sandbox

from .guardrun import guard_in_process


def test_log_only_setting_reports_but_does_not_stop(sandbox: Sandbox, idle: CallerSimulator) -> None:
    rogue = sandbox.recordings_dir / "rogue-logged.wav"
    with guard_in_process(sandbox.env_file, RECGUARD_UNAUTHORIZED_RECORDINGS="log") as daemon:
        call = idle.call("recguard-test-guard", "rogue", variables={"ROGUE_FILE": str(rogue)})
        call.wait_answered()
        assert call.wait_centre_variable("TEST_ROGUE") == "yes"
        name = call.centre_channel()["name"]
        assert wait_until(lambda: any(u.channel == name for u in daemon.ledger.unauthorized_log()), 3)
        (entry,) = [u for u in daemon.ledger.unauthorized_log() if u.channel == name]
        assert entry.action == "logged_only"
        time.sleep(2.0)
        call.hangup()
        call.wait_ended()
    # Only reported: the file is still there, with the whole call in it.
    assert wait_until(lambda: rogue.exists() and wav_is_closed(rogue), 3)
    assert wav_duration(rogue) > 1.5
    rogue.unlink()
