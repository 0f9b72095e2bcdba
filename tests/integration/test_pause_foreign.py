"""A pause mutes the guard's own recording only (MixMonitorMute by its
MixMonitorID): with RECGUARD_UNAUTHORIZED_RECORDINGS=log, a MixMonitor an
old dialplan line started on the same call is reported, left alone, and goes
on with sound through the pause."""

from __future__ import annotations

import time
from pathlib import Path

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.storage import wav_is_closed

from .guardrun import guard_in_process
from .test_pause import ORDER_FACTS, PAUSED, recguard, silence, sox_rms, talk


def test_a_pause_leaves_a_recording_the_guard_did_not_start_alone(sandbox: Sandbox, idle: CallerSimulator,
                                                                  tmp_path: Path) -> None:
    rogue = sandbox.recordings_dir / "rogue-during-pause.wav"
    with guard_in_process(sandbox.env_file, RECGUARD_UNAUTHORIZED_RECORDINGS="log") as daemon:
        call = idle.call("recguard-test-guard", "guarded-rogue", variables={**ORDER_FACTS, "ROGUE_FILE": str(rogue)})
        call.wait_answered()
        talk(call)
        assert call.wait_centre_variable("TEST_ROGUE") == "yes"
        recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
        assert recording_id
        name = call.centre_channel()["name"]
        time.sleep(1.0)
        daemon.ami.action("Setvar", Channel=name, Variable="RECGUARD_PAUSE", Value="1")
        assert wait_until(lambda: daemon.ledger.pauses(recording_id), 2)
        time.sleep(PAUSED)
        daemon.ami.action("Setvar", Channel=name, Variable="RECGUARD_PAUSE", Value="0")
        assert wait_until(lambda: daemon.ledger.pauses(recording_id)[0].resumed_at, 2)
        time.sleep(1.0)
        call.hangup()
        call.wait_ended()
        assert wait_until(lambda: daemon.guard.tracked_calls() == 0, 5)
        daemon.guard.wait_idle()
        own = daemon.ledger.recording(recording_id)
        assert own is not None and own.status == "finalized"
    assert wait_until(lambda: rogue.exists() and wav_is_closed(rogue), 3)
    try:
        # The guard's own file has its pause; the other one has no silence anywhere near as long.
        exported = recguard(sandbox, "export", recording_id, "--to", str(tmp_path / "export"), "--for", "order",
                            "--reason", "pause check")
        assert exported.returncode == 0, exported.stderr
        own_from, own_to = silence(tmp_path / "export" / f"{recording_id}.wav")
        assert own_to - own_from > PAUSED - 0.6
        rogue_from, rogue_to = silence(rogue)
        assert rogue_to - rogue_from < 0.5, (rogue_from, rogue_to)
        assert sox_rms(rogue, 0.0, 5.0) > 0.003
    finally:
        rogue.unlink()
