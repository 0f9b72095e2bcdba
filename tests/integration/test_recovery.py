"""The guard keeps being right when it, Asterisk or the connection fails:
fail closed while down, reconcile after a restart, reconnect by itself."""

from __future__ import annotations

import os
import sys
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator, SimulatedCall
from asterisk_recguard.ledger import Ledger
from asterisk_recguard.devtools.sandbox import Sandbox

from .guardrun import guard_in_process, guard_process, read_log, spawn_guard, wait_app_registered

NOTICES = "evidence-v1:complete,quality-consent-v1:complete"


@pytest.fixture
def ledger(sandbox_env: dict[str, str]) -> Iterator[Ledger]:
    book = Ledger(sandbox_env["RECGUARD_LEDGER"])
    yield book
    book.close()


def place(callers: CallerSimulator, purpose: str, consent: str) -> SimulatedCall:
    facts = {"RECGUARD_PURPOSE": purpose, "RECGUARD_NOTICES": NOTICES, "RECGUARD_CONSENT": consent}
    call = callers.call("recguard-test-guard", "direct", variables=facts)
    call.wait_answered()
    assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
    return call


def start_guard(sandbox: Sandbox, callers: CallerSimulator) -> subprocess.Popen[bytes]:
    process = spawn_guard(sandbox.env_file)
    assert wait_app_registered(callers.client), "recguard run did not register its app"
    return process


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def test_recguard_down_calls_go_on_unrecorded(sandbox: Sandbox, idle: CallerSimulator) -> None:
    assert not wait_app_registered(idle.client, timeout=0.5)
    before = set(sandbox.recordings_dir.iterdir())
    began = time.monotonic()
    call = place(idle, "order", "given")
    waited = time.monotonic() - began
    assert call.centre_variable("TEST_GATE_STATUS") == "FAILED"
    assert call.centre_variable("RECGUARD_DECISION") is None
    assert waited < 3.0  # Stasis() fails at once; nothing waits for the guard
    call.hangup()
    call.wait_ended()
    assert set(sandbox.recordings_dir.iterdir()) == before


def test_sigkill_mid_call_and_hangup_while_down_is_finalized_at_next_start(
    sandbox: Sandbox, idle: CallerSimulator, ledger: Ledger
) -> None:
    process = start_guard(sandbox, idle)
    try:
        call = place(idle, "order", "refused")
        recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
        assert recording_id
        time.sleep(1.0)
    finally:
        kill(process)
    call.hangup()
    call.wait_ended()
    assert ledger.recording(recording_id).status == "recording"  # nobody saw the hangup yet
    process = start_guard(sandbox, idle)
    try:
        assert wait_until(lambda: ledger.recording(recording_id).status == "finalized", 10)
        rec = ledger.recording(recording_id)
        assert rec.sha256 and rec.size_bytes > 8000 and rec.deadline is not None
        assert Path(rec.file_path).exists() and not Path(rec.path).exists()
        assert ledger.call(rec.call_id).status == "ended"
        assert [d.trigger for d in ledger.decisions_for_call(rec.call_id)] == ["gate", "reconcile"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0


def test_sigkill_then_restart_consent_withdrawn_after_restart_is_acted_upon(
    sandbox: Sandbox, idle: CallerSimulator, ledger: Ledger
) -> None:
    process = start_guard(sandbox, idle)
    try:
        call = place(idle, "general_info,quality", "given")
        recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
        assert recording_id
    finally:
        kill(process)
    process = start_guard(sandbox, idle)
    try:
        log_path = Path(sandbox.credentials()["RECGUARD_DECISION_LOG"])
        assert wait_until(lambda: any(e["event"] == "call_resumed" and e.get("recording_id") == recording_id
                                      for e in read_log(log_path)), 5)
        time.sleep(0.3)
        call.press("9")
        assert wait_until(lambda: ledger.recording(recording_id).status == "deleted", 2)
        assert ledger.recording(recording_id).deletion_reason == "consent_withdrawn"
        assert not Path(ledger.recording(recording_id).path).exists()
        call.hangup()
        call.wait_ended()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0


def test_sigterm_exits_zero_and_new_calls_fail_closed(sandbox: Sandbox, idle: CallerSimulator) -> None:
    process = start_guard(sandbox, idle)
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    assert not wait_app_registered(idle.client, timeout=0.5)
    call = place(idle, "order", "refused")
    assert call.centre_variable("TEST_GATE_STATUS") == "FAILED"
    call.hangup()


def test_sighup_reloads_the_policy_and_keeps_the_old_one_when_invalid(
    sandbox: Sandbox, idle: CallerSimulator, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    shipped = Path(__file__).resolve().parents[2] / "config" / "policy.toml"
    policy.write_text(shipped.read_text())
    with guard_process(sandbox.env_file, RECGUARD_POLICY=str(policy)) as process:
        assert wait_app_registered(idle.client)
        log_path = Path(sandbox.credentials()["RECGUARD_DECISION_LOG"])
        seen = len(read_log(log_path))
        policy.write_text(shipped.read_text().replace('version = "', 'version = "reloaded-', 1))
        process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: any(e["event"] == "policy_reloaded" for e in read_log(log_path)[seen:]), 5)
        policy.write_text("this is [not toml")
        process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: any(e["event"] == "policy_reload_failed" for e in read_log(log_path)[seen:]), 5)
        call = place(idle, "order", "refused")
        assert call.centre_variable("RECGUARD_DECISION") == "record"  # the reloaded policy still applies
        gate = [e for e in read_log(log_path)[seen:] if e["event"] == "decision" and e["trigger"] == "gate"]
        assert gate[-1]["policy"].split()[-1].startswith("reloaded-")
        call.hangup()
        call.wait_ended()
        time.sleep(0.5)


def test_asterisk_restart_guard_reconnects_by_itself(sandbox: Sandbox, idle: CallerSimulator) -> None:
    with guard_in_process(sandbox.env_file) as daemon:
        sandbox.cli("core restart now")
        assert wait_until(lambda: not daemon.events.connected.is_set(), 10)
        assert daemon.events.wait_connected(30), "the guard did not reconnect to ARI"
        assert daemon.ami.wait_connected(30), "the guard did not reconnect to AMI"
        assert wait_app_registered(idle.client, timeout=10)
        assert idle._stream.wait_connected(30)
        call = place(idle, "order", "refused")
        assert call.centre_variable("RECGUARD_DECISION") == "record"
        call.hangup()
        call.wait_ended()
        assert wait_until(lambda: daemon.guard.tracked_calls() == 0, 5)
        daemon.guard.wait_idle()
        events = [e["event"] for e in read_log(daemon.settings.decision_log)]
        assert "ari_disconnected" in events and events.count("ari_connected") >= 2


def test_a_second_guard_on_the_same_app_refuses_to_start(sandbox: Sandbox, idle: CallerSimulator) -> None:
    first = start_guard(sandbox, idle)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "asterisk_recguard", "run", "--env-file", str(sandbox.env_file)],
            env={k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")},
            capture_output=True, text=True, timeout=30,
        )
        assert second.returncode == 2
        assert "another recguard run already uses the ledger" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the first one is untouched
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(15) == 0


def test_a_finalization_cut_short_is_finished_at_the_next_start(sandbox: Sandbox, idle: CallerSimulator) -> None:
    """The guard died between the hangup and the encryption: the ledger says
    'stopped' for an ended call, and the clear WAV is still there."""
    import uuid
    import wave

    from asterisk_recguard.ledger import utcnow

    env = sandbox.credentials()
    recording_id = uuid.uuid4().hex
    clear = sandbox.recordings_dir / f"{recording_id}.wav"
    with wave.open(str(clear), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x01\x00" * 16000)
    call_id = f"cut-{recording_id[:8]}"
    ended = utcnow()
    with Ledger(env["RECGUARD_LEDGER"]) as book:
        book.upsert_call_start(call_id, channel="PJSIP/cut-00000001", facts={
            "purposes": ["order"], "notices": {"evidence-v1": "complete"}, "consent": "none", "outcome": "unknown"})
        book.recording_started(recording_id, call_id=call_id, channel="PJSIP/cut-00000001", path=clear,
                               purposes=["order"], bases={"order": "evidence"})
        book.end_call(call_id, ended_at=ended)
        book.recording_stopped(recording_id, stopped_at=ended)
    process = start_guard(sandbox, idle)
    try:
        with Ledger(env["RECGUARD_LEDGER"]) as book:
            assert wait_until(lambda: book.recording(recording_id).status == "finalized", 10)
            rec = book.recording(recording_id)
            assert rec.duration_s == 2.0 and rec.stored_path and Path(rec.stored_path).exists()
            assert not clear.exists()
            assert (rec.deadline - ended).days == 1095
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0


def test_stasis_without_the_gate_argument_is_continued(sandbox: Sandbox, idle: CallerSimulator) -> None:
    with guard_in_process(sandbox.env_file) as daemon:
        call = idle.call("recguard-test-guard", "nogate")
        call.wait_answered()
        assert call.wait_centre_variable("TEST_AFTER_GATE", timeout=5) == "yes"
        call_id = call.centre_channel()["id"]
        assert daemon.ledger.call(call_id) is None
        assert any(e["event"] == "stasis_unexpected" and e["call_id"] == call_id
                   for e in read_log(daemon.settings.decision_log))
        call.hangup()
        call.wait_ended()


def test_a_reloaded_policy_applies_to_calls_in_progress(
    sandbox: Sandbox, idle: CallerSimulator, tmp_path: Path
) -> None:
    shipped = Path(__file__).resolve().parents[2] / "config" / "policy.toml"
    policy = tmp_path / "policy.toml"
    policy.write_text(shipped.read_text())
    with guard_in_process(sandbox.env_file, RECGUARD_POLICY=str(policy)) as daemon:
        call = place(idle, "order", "refused")
        recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
        assert recording_id
        # The DPO decides orders are no longer recorded: the policy now forbids them.
        text = shipped.read_text()
        start = text.index("[purposes.order]")
        end = text.index("[purposes.", start + 1)
        policy.write_text(text[:start] + '[purposes.order]\nbasis = "forbidden"\ndescription = "ordering"\n\n'
                          + text[end:].replace('"order", ', "").replace(', "order"', ""))
        daemon.reload_policy()
        assert wait_until(lambda: daemon.ledger.recording(recording_id).status == "deleted", 5)
        assert daemon.ledger.recording(recording_id).deletion_reason == "purpose_forbidden"
        triggers = [d.trigger for d in daemon.ledger.decisions_for_call(daemon.ledger.recording(recording_id).call_id)]
        assert triggers[-1] == "reload"
        call.hangup()
        call.wait_ended()
        assert wait_until(lambda: daemon.guard.tracked_calls() == 0, 5)
        daemon.guard.wait_idle()


def test_a_clear_copy_beside_its_ciphertext_is_removed_at_start(sandbox: Sandbox, idle: CallerSimulator) -> None:
    with guard_in_process(sandbox.env_file) as daemon:
        call = place(idle, "order", "refused")
        recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
        call.hangup()
        call.wait_ended()
        assert wait_until(lambda: daemon.ledger.recording(recording_id).status == "finalized", 10)
        rec = daemon.ledger.recording(recording_id)
    # As if the guard died between writing the ledger and removing the clear file.
    Path(rec.path).write_bytes(b"RIFF leftover")
    with guard_in_process(sandbox.env_file) as daemon:
        assert wait_until(lambda: not Path(rec.path).exists(), 5)
        assert Path(rec.stored_path).exists()
        assert any(e["event"] == "clear_copy_removed" and e["recording_id"] == recording_id
                   for e in read_log(daemon.settings.decision_log))


def test_facts_changed_while_the_guard_was_down_decide_the_end(
    sandbox: Sandbox, idle: CallerSimulator, ledger: Ledger, sandbox_env: dict[str, str]
) -> None:
    from datetime import timedelta

    from asterisk_recguard.ami import AmiClient
    from asterisk_recguard.ledger import utcnow

    process = start_guard(sandbox, idle)
    try:
        call = idle.call("recguard-test-guard", "viagate", variables={
            "TEST_PURPOSE": "order", "RECGUARD_NOTICES": NOTICES, "RECGUARD_CONSENT": "refused"})
        call.wait_answered()
        assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
        assert call.centre_variable("RECGUARD_DECISION") == "record"
        recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
        assert recording_id
        uniqueid = call.centre_channel()["id"]
    finally:
        kill(process)
    ami = AmiClient(sandbox_env["RECGUARD_AMI_HOST"], int(sandbox_env["RECGUARD_AMI_PORT"]),
                    sandbox_env["RECGUARD_AMI_USER"], sandbox_env["RECGUARD_AMI_SECRET"])
    ami.start()
    try:
        assert ami.wait_connected(5)
        # The CRM marks the call "no transaction" while recguard is down; then the caller hangs up.
        ami.action("Setvar", Channel=uniqueid, Variable="RECGUARD_OUTCOME", Value="no_transaction")
        hung_up = utcnow()
        call.hangup()
        call.wait_ended()
        time.sleep(2.0)
        process = start_guard(sandbox, idle)
        try:
            assert wait_until(lambda: ledger.recording(recording_id).status == "deleted", 10)
            assert ledger.recording(recording_id).deletion_reason == "no_transaction"
            ended = ledger.call(uniqueid).ended_at
            assert abs(ended - hung_up) < timedelta(seconds=1.5)  # the real end, not the restart
            assert ledger.call(uniqueid).last_facts["outcome"] == "no_transaction"
            # The final facts are cleared once used.
            assert wait_until(lambda: not ami.send("DBGet", Family="recguard", Key=uniqueid).events, 5)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0
    finally:
        ami.stop()


def test_a_guard_whose_app_is_taken_over_stops_with_status_3(
    sandbox: Sandbox, idle: CallerSimulator, sandbox_env: dict[str, str]
) -> None:
    from asterisk_recguard.ari import AriClient, EventStream
    from asterisk_recguard.daemon import EXIT_REPLACED

    with guard_in_process(sandbox.env_file) as daemon:
        intruder = EventStream(AriClient(sandbox_env["RECGUARD_ARI_URL"], sandbox_env["RECGUARD_ARI_USER"],
                                         sandbox_env["RECGUARD_ARI_PASSWORD"], "recguard"), on_event=lambda e: None)
        intruder.start()
        try:
            assert intruder.wait_connected(5)
            assert wait_until(daemon._stop.is_set, 5), "the guard did not notice it was replaced"
            assert daemon.exit_status == EXIT_REPLACED == 3
            assert any(e["event"] == "app_replaced" for e in read_log(daemon.settings.decision_log))
        finally:
            intruder.stop()
