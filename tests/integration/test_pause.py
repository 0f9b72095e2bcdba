"""A pause for card details on real calls: a recorded caller talks without a
break (a tone) and hears music on hold or the agent, a CRM (AMI Setvar
RECGUARD_PAUSE) or the agent's keys (*82, *83) pause the recording for 3 s,
and the exported WAV is silent in exactly that stretch and not outside it.
The ledger, the decision log and the export manifest agree on when.

The stretch in the file is measured two ways: sox's RMS amplitude inside and
just outside it, and the edges of the silence found in 20 ms windows. An
edge may lie up to EDGE (0.6 s) from where the manifest places it: in ten
runs on the sandbox most lay within 40 ms, and up to 0.5 s when the machine
was busy (MixMonitor's file then gains or drops audio against the clock)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
import wave
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from asterisk_recguard.ari import wait_until
from asterisk_recguard.daemon import Daemon
from asterisk_recguard.devtools.callsim import CallerSimulator, SimulatedCall
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.ledger import PauseInterval, format_ts

from .guardrun import guard_in_process, read_log

ORDER_FACTS = {
    "RECGUARD_PURPOSE": "order",
    "RECGUARD_NOTICES": "evidence-v1:complete",
    "RECGUARD_CONSENT": "none",
    "RECGUARD_OUTCOME": "transaction",
}
BEFORE, PAUSED, AFTER = 2.5, 3.0, 2.5  # seconds of the call: talk, paused, talk
EDGE = 0.6  # how far an edge of the silence may lie from where the manifest places it
SILENT_RMS = 0.001  # sox's RMS amplitude (full scale 1.0) of a muted stretch
HEARD_RMS = 0.003  # ...and of the caller's tone with music on hold (0.005 to 0.09 here)


@dataclass
class Paused:
    recording_id: str
    pause: PauseInterval
    wav: Path
    manifest: dict
    log: list[dict]


@pytest.fixture(scope="module")
def guard(sandbox: Sandbox) -> Iterator[Daemon]:
    with guard_in_process(sandbox.env_file) as daemon:
        yield daemon


def recguard(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")}
    return subprocess.run(
        [sys.executable, "-m", "asterisk_recguard", *args, "--env-file", str(sandbox.env_file)],
        env=env, capture_output=True, text=True, timeout=60,
    )


def paused_call(guard: Daemon, sandbox: Sandbox, call: SimulatedCall, out: Path,
                pause: Callable[[], None], resume: Callable[[], None]) -> Paused:
    """Record ``call``, pause it for PAUSED seconds, hang up, export its recording."""
    call.wait_answered()
    talk(call)
    assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
    recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
    assert recording_id, "the guard did not record the order"
    time.sleep(BEFORE)
    pause()
    assert wait_until(lambda: guard.ledger.pauses(recording_id), 2), "no pause within 2 s"
    time.sleep(PAUSED)
    resume()
    assert wait_until(lambda: guard.ledger.pauses(recording_id)[0].resumed_at, 2), "no resume within 2 s"
    time.sleep(AFTER)
    call.hangup()
    call.wait_ended()
    assert wait_until(lambda: guard.guard.tracked_calls() == 0, 5)
    guard.guard.wait_idle()
    rec = guard.ledger.recording(recording_id)
    assert rec is not None and rec.status == "finalized"
    exported = recguard(sandbox, "export", recording_id, "--to", str(out), "--for", "order",
                        "--reason", "pause check, ticket 13")
    assert exported.returncode == 0, exported.stderr
    (pause_,) = guard.ledger.pauses(recording_id)
    log = [e for e in read_log(guard.settings.decision_log) if e.get("recording_id") == recording_id]
    return Paused(recording_id, pause_, out / f"{recording_id}.wav",
                  json.loads((out / "manifest.json").read_text()), log)


def talk(call: SimulatedCall) -> None:
    """The caller "talks" without a break (a 440 Hz tone), as a real caller's RTP
    keeps coming: with one direction silent, MixMonitor's file loses the time
    Asterisk drops frames (while a DTMF digit is in progress, for one)."""
    call.sim.client.request("POST", f"/channels/{call.channel_id}/play", params={"media": "tone:440"})


def sox_rms(wav: Path, start: float, duration: float) -> float:
    """sox's RMS amplitude of ``duration`` seconds from ``start``."""
    done = subprocess.run(["sox", str(wav), "-n", "trim", f"{start:.3f}", f"{duration:.3f}", "stat"],
                          capture_output=True, text=True, timeout=30, check=True)
    found = re.search(r"RMS\s+amplitude:\s+([0-9.]+)", done.stderr)
    assert found, done.stderr
    return float(found.group(1))


def silence(wav: Path, window: float = 0.02) -> tuple[float, float]:
    """The first and last moment of the longest silent run of ``window``-long stretches."""
    with wave.open(str(wav)) as audio:
        assert audio.getsampwidth() == 2 and audio.getnchannels() == 1
        rate = audio.getframerate()
        samples = array("h", audio.readframes(audio.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    step = int(rate * window)
    quiet = [math.sqrt(sum(s * s for s in samples[i:i + step]) / step) / 32768 < SILENT_RMS
             for i in range(0, len(samples) - step + 1, step)]
    best, run_start = (0, 0), None
    for i, q in enumerate([*quiet, False]):
        if q and run_start is None:
            run_start = i
        elif not q and run_start is not None:
            if i - run_start > best[1] - best[0]:
                best = (run_start, i)
            run_start = None
    return best[0] * window, best[1] * window


def check_silent_in_the_pause(result: Paused, paused_by: str, resumed_by: str) -> dict[str, float]:
    pause = result.pause
    assert (pause.paused_by, pause.resumed_by) == (paused_by, resumed_by)
    assert pause.resumed_at is not None
    (entry,) = result.manifest["recordings"]
    (listed,) = entry["pauses"]
    # The manifest, the ledger and the decision log say the same.
    assert (listed["paused_at"], listed["resumed_at"]) == (format_ts(pause.paused_at), format_ts(pause.resumed_at))
    assert (listed["paused_by"], listed["resumed_by"]) == (paused_by, resumed_by)
    (paused_line,) = [e for e in result.log if e["event"] == "recording_paused"]
    (resumed_line,) = [e for e in result.log if e["event"] == "recording_resumed"]
    assert paused_line["paused_at"] == listed["paused_at"] and paused_line["trigger"] == paused_by
    assert resumed_line["resumed_at"] == listed["resumed_at"] and resumed_line["trigger"] == resumed_by
    start, end = listed["from_s"], listed["to_s"]
    # PAUSED s; the keys take a little longer: three digits each, about 0.45 s (more on a busy machine).
    assert PAUSED - 0.2 < end - start < PAUSED + 1.5, (start, end)
    # In the file: silent inside, sound just before and just after, and the silence's edges.
    inside = sox_rms(result.wav, start + EDGE, end - start - 2 * EDGE)
    before = sox_rms(result.wav, start - EDGE - 1.0, 1.0)
    after = sox_rms(result.wav, end + EDGE, 1.0)
    silent_from, silent_to = silence(result.wav)
    seen = {"pause": (start, end), "silence": (silent_from, silent_to), "rms": (before, inside, after)}
    assert inside < SILENT_RMS, seen
    assert before > HEARD_RMS and after > HEARD_RMS, seen
    assert abs(silent_from - start) < EDGE and abs(silent_to - end) < EDGE, seen
    return {"inside": inside, "before": before, "after": after,
            "edge_in": silent_from - start, "edge_out": silent_to - end}


def test_a_crm_pause_silences_exactly_its_interval(guard: Daemon, sandbox: Sandbox, idle: CallerSimulator,
                                                   tmp_path: Path) -> None:
    call = idle.call("recguard-test-guard", "direct", variables=ORDER_FACTS)

    def crm(value: str) -> Callable[[], None]:
        return lambda: guard.ami.action("Setvar", Channel=call.centre_channel()["name"],
                                        Variable="RECGUARD_PAUSE", Value=value)

    result = paused_call(guard, sandbox, call, tmp_path / "crm", crm("1"), crm("0"))
    figures = check_silent_in_the_pause(result, "crm", "crm")
    print(f"crm pause: {figures}")


def test_the_agent_keys_silence_exactly_their_interval(
        guard: Daemon, sandbox: Sandbox, idle: CallerSimulator, tmp_path: Path) -> None:
    call = idle.call("recguard-test-guard", "withagent", variables=ORDER_FACTS)

    def key(code: str) -> Callable[[], None]:
        def press() -> None:
            agent = agent_leg(idle)
            for digit in code:
                guard.ami.action("PlayDTMF", Channel=agent["name"], Digit=digit, Duration="100")
                time.sleep(0.15)
        return press

    result = paused_call(guard, sandbox, call, tmp_path / "keys", key("*82"), key("*83"))
    figures = check_silent_in_the_pause(result, "agent_key", "agent_key")
    print(f"agent key pause: {figures}")


def test_a_pause_left_open_ends_at_the_hangup(guard: Daemon, idle: CallerSimulator) -> None:
    call = idle.call("recguard-test-guard", "direct", variables=ORDER_FACTS)
    call.wait_answered()
    assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
    recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
    assert recording_id
    guard.ami.action("Setvar", Channel=call.centre_channel()["name"], Variable="RECGUARD_PAUSE", Value="1")
    assert wait_until(lambda: guard.ledger.pauses(recording_id), 2)
    call.hangup()
    call.wait_ended()
    assert wait_until(lambda: guard.guard.tracked_calls() == 0, 5)
    guard.guard.wait_idle()
    (pause,) = guard.ledger.pauses(recording_id)
    ended = guard.ledger.call(pause_call_id(guard, recording_id)).ended_at
    assert pause.resumed_by == "hangup" and pause.resumed_at == ended


def pause_call_id(guard: Daemon, recording_id: str) -> str:
    rec = guard.ledger.recording(recording_id)
    assert rec is not None
    return rec.call_id


def agent_leg(callers: CallerSimulator) -> dict:
    """The agent's half of the bridge, once it is up (as test_midcall presses agent keys)."""
    def bridged() -> dict | None:
        for channel in callers.client.channels():
            if channel["name"].startswith("Local/agent@recguard-test-agent") and channel["name"].endswith(";2"):
                if channel["state"] == "Up":
                    return channel
        return None

    agent = wait_until(bridged, 5)
    assert agent, "the agent never answered"
    return agent
