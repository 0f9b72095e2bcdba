"""The guard on real calls: the gate decides, MixMonitor follows, the ledger and log say why."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator, SimulatedCall
from asterisk_recguard.daemon import Daemon
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.vault import Keyring, decrypt_file

from .guardrun import guard_in_process, read_log

ORDER_FACTS = {
    "RECGUARD_PURPOSE": "order,quality",
    "RECGUARD_NOTICES": "evidence-v1:complete,quality-consent-v1:complete",
    "RECGUARD_CONSENT": "refused",
    "RECGUARD_OUTCOME": "unknown",
}


@pytest.fixture(scope="module")
def guard(sandbox: Sandbox) -> Iterator[Daemon]:
    with guard_in_process(sandbox.env_file) as daemon:
        yield daemon


def place(callers: CallerSimulator, facts: dict[str, str], caller_id: str | None = None) -> SimulatedCall:
    call = callers.call("recguard-test-guard", "direct", variables=facts, caller_id=caller_id)
    call.wait_answered()
    assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
    return call


def end(call: SimulatedCall, guard: Daemon) -> None:
    call.hangup()
    call.wait_ended()
    assert wait_until(lambda: call.centre_variable("TEST_AFTER_GATE") is None, 5)
    # The guard sees ChannelDestroyed a moment later, then finalizes.
    assert wait_until(lambda: guard.guard.tracked_calls() == 0, 5)
    guard.guard.wait_idle()


def decisions(guard: Daemon, call_id: str) -> list[dict]:
    return [e for e in read_log(guard.settings.decision_log) if e.get("call_id") == call_id]


def test_order_with_notice_heard_is_recorded_for_order_only(guard: Daemon, idle: CallerSimulator) -> None:
    call = place(idle, ORDER_FACTS)
    assert call.centre_variable("RECGUARD_DECISION") == "record"
    recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
    assert recording_id and len(recording_id) == 32
    call_id = call.centre_channel()["id"]
    idle_seconds = 1.5
    wait_until(lambda: False, idle_seconds)
    end(call, guard)

    rec = guard.ledger.recording(recording_id)
    assert rec is not None and rec.status == "finalized"
    assert rec.purposes == ["order"]
    assert rec.call_id == call_id
    ended = guard.ledger.call(call_id).ended_at
    assert rec.deadline == ended + timedelta(days=1095)
    assert rec.size_bytes and rec.size_bytes > 8000
    assert rec.sha256 and len(rec.sha256) == 64
    # Encrypted at rest: no clear WAV left, the ciphertext decrypts to a real recording.
    assert not Path(rec.path).exists()
    clear = Path(rec.path).with_name("check.wav")
    decrypt_file(rec.stored_path, clear, Keyring.load(guard.settings.key_file))
    with wave.open(str(clear)) as audio:
        assert audio.getnframes() > 8000 * 1.0
    clear.unlink()

    lines = decisions(guard, call_id)
    gate = [e for e in lines if e["event"] == "decision" and e["trigger"] == "gate"]
    assert gate and gate[0]["decision"] == "record" and gate[0]["purposes_recorded"] == ["order"]
    assert {"purpose": "quality", "reason": "consent_refused"} in gate[0]["reasons"]
    assert any(e["event"] == "recording_finalized" for e in lines)


def test_general_information_without_consent_is_not_recorded(
    guard: Daemon, sandbox: Sandbox, idle: CallerSimulator
) -> None:
    before = set(sandbox.recordings_dir.iterdir())
    call = place(idle, {**ORDER_FACTS, "RECGUARD_PURPOSE": "general_info,quality"})
    assert call.centre_variable("RECGUARD_DECISION") == "skip"
    assert call.centre_variable("RECGUARD_RECORDING_ID") is None
    call_id = call.centre_channel()["id"]
    end(call, guard)
    assert set(sandbox.recordings_dir.iterdir()) == before
    assert guard.ledger.recordings_for_call(call_id) == []
    gate = [e for e in decisions(guard, call_id) if e["event"] == "decision"][0]
    assert gate["decision"] == "skip"
    assert {"purpose": "general_info", "reason": "purpose_forbidden"} in gate["reasons"]
    assert [d.action for d in guard.ledger.decisions_for_call(call_id)] == ["none", "none"]


def test_no_transaction_set_during_the_call_deletes_the_recording(
    guard: Daemon, sandbox: Sandbox, idle: CallerSimulator
) -> None:
    call = place(idle, ORDER_FACTS)
    recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
    assert recording_id
    channel = call.centre_channel()["name"]
    guard.ami.action("Setvar", Channel=channel, Variable="RECGUARD_OUTCOME", Value="no_transaction")
    assert wait_until(lambda: guard.ledger.recording(recording_id).status == "deleted", 3)
    end(call, guard)
    rec = guard.ledger.recording(recording_id)
    assert rec.status == "deleted" and rec.deletion_reason == "no_transaction"
    assert not Path(rec.path).exists()
    assert not Path(rec.path + ".rgv").exists()
    deleted = [e for e in decisions(guard, rec.call_id) if e["event"] == "recording_deleted"]
    assert deleted and deleted[0]["reason"] == "no_transaction"


def test_hostile_caller_id_reaches_neither_file_name_nor_log(
    guard: Daemon, sandbox: Sandbox, idle: CallerSimulator
) -> None:
    hostile = '"$(touch /tmp/pwned)\\";../../x" <040123456>'
    Path("/tmp/pwned").unlink(missing_ok=True)
    call = place(idle, ORDER_FACTS, caller_id=hostile)
    recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
    call_id = call.centre_channel()["id"]
    end(call, guard)
    assert not Path("/tmp/pwned").exists()
    rec = guard.ledger.recording(recording_id)
    assert Path(rec.path).name == f"{recording_id}.wav"
    assert Path(rec.path).parent == sandbox.recordings_dir
    text = guard.settings.decision_log.read_text()
    assert "pwned" not in text and "040123456" not in text
    assert guard.ledger.call(call_id).caller_hash  # kept only as a keyed hash
