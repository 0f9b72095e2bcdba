"""Retention and data-subject requests on real recordings: a call the guard
recorded on the sandbox is found by another spelling of the caller's number,
refused for a purpose it was not recorded for, exported decrypted with a
manifest for the one it was, held past its deadline, and purged after the
release; every step through `recguard` as an administrator runs it, and
every step in the access log."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import wave
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.daemon import Daemon
from asterisk_recguard.devtools.sandbox import Sandbox

from .guardrun import guard_in_process, read_log

ORDER_FACTS = {
    "RECGUARD_PURPOSE": "order",
    "RECGUARD_NOTICES": "evidence-v1:complete",
    "RECGUARD_CONSENT": "none",
    "RECGUARD_OUTCOME": "transaction",
}
# The call comes in as +38640123456; the DPO types the number as the caller said it.
CALLER_ID = "Ana <+38640123456>"
SPOKEN = "040 123 456"
WRITTEN = "0038640123456"


@pytest.fixture(scope="module")
def guard(sandbox: Sandbox) -> Iterator[Daemon]:
    with guard_in_process(sandbox.env_file) as daemon:
        yield daemon


def recguard(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")}
    env["SUDO_USER"] = "dpo-anna"
    return subprocess.run(
        [sys.executable, "-m", "asterisk_recguard", *args, "--env-file", str(sandbox.env_file)],
        env=env, capture_output=True, text=True, timeout=60,
    )


def record_a_call(guard: Daemon, callers: CallerSimulator) -> str:
    call = callers.call("recguard-test-guard", "direct", variables=ORDER_FACTS, caller_id=CALLER_ID)
    call.wait_answered()
    assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
    recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
    assert recording_id, "the guard did not record an order after its notice"
    wait_until(lambda: False, 1.5)  # 1.5 s of audio
    call.hangup()
    call.wait_ended()
    assert wait_until(lambda: guard.guard.tracked_calls() == 0, 5)
    guard.guard.wait_idle()
    rec = guard.ledger.recording(recording_id)
    assert rec is not None and rec.status == "finalized" and rec.stored_path
    return recording_id


def test_find_export_hold_and_purge_a_real_recording(
        guard: Daemon, sandbox: Sandbox, idle: CallerSimulator, tmp_path: Path) -> None:
    recording_id = record_a_call(guard, idle)
    rec = guard.ledger.recording(recording_id)

    # Found by a spelling other than the one the call came with; the number is never shown.
    found = recguard(sandbox, "subject", "find", "--caller", SPOKEN, "--reason", "DSAR-17")
    assert found.returncode == 0, found.stderr
    assert recording_id in found.stdout and "finalized" in found.stdout
    assert "123456" not in found.stdout.replace(" ", "")

    # Reading it without a reason, or without the purpose the export serves, is not possible.
    refused = recguard(sandbox, "export", recording_id, "--to", str(tmp_path / "no"),
                       "--for", "order")
    assert refused.returncode == 2 and "--reason" in refused.stderr
    refused = recguard(sandbox, "export", recording_id, "--to", str(tmp_path / "no"),
                       "--reason", "complaint review, ticket 4711")
    assert refused.returncode == 2 and "--for" in refused.stderr
    # A purpose the policy does not have is a usage error that lists the policy's purposes.
    refused = recguard(sandbox, "export", recording_id, "--to", str(tmp_path / "no"),
                       "--for", "review", "--reason", "complaint review, ticket 4711")
    assert refused.returncode == 2 and "its purposes: order, change" in refused.stderr
    # The order recording is evidence of the order: it is not reused for a quality review.
    refused = recguard(sandbox, "export", recording_id, "--to", str(tmp_path / "no"),
                       "--for", "quality", "--reason", "quality review November")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (f"recguard: error: export refused: recording {recording_id} may "
                              "not be used for quality: it was recorded for order, and a "
                              "recording is used only for the purposes it was recorded for; "
                              "nothing was written\n")
    assert not (tmp_path / "no").exists()
    refusals = [e for e in read_log(guard.settings.decision_log)
                if e["event"] == "export_failed" and e.get("recording_id") == recording_id]
    assert [(e["outcome"], e["for_purpose"], e["purposes"]) for e in refusals] == [
        ("refused", "quality", ["order"])]

    # Exported decrypted, verified, with a manifest, for the purpose it was recorded for.
    to = tmp_path / "export"
    exported = recguard(sandbox, "export", recording_id, "--to", str(to),
                        "--for", "order", "--reason", "complaint review, ticket 4711")
    assert exported.returncode == 0, exported.stderr
    audio = to / f"{recording_id}.wav"
    with wave.open(str(audio)) as wav:
        assert wav.getframerate() == 8000 and wav.getnframes() > 8000
    assert hashlib.sha256(audio.read_bytes()).hexdigest() == rec.sha256
    manifest = json.loads((to / "manifest.json").read_text())
    (entry,) = manifest["recordings"]
    assert entry["recording_id"] == recording_id and entry["purposes"] == ["order"]
    assert entry["sha256"] == rec.sha256 and entry["deadline"]
    assert manifest["reason"] == "complaint review, ticket 4711"
    assert manifest["for_purpose"] == "order"
    assert "(sudo by dpo-anna)" in manifest["exported_by"]
    assert oct(to.stat().st_mode & 0o777) == "0o700" and oct(audio.stat().st_mode & 0o777) == "0o600"

    # The subject's own export, found by yet another spelling.
    dsar = recguard(sandbox, "subject", "export", "--caller", WRITTEN, "--to",
                    str(tmp_path / "dsar"), "--reason", "access request DSAR-17")
    assert dsar.returncode == 0, dsar.stderr
    assert (tmp_path / "dsar" / f"{recording_id}.wav").exists()

    audit = recguard(sandbox, "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert audit.stdout.startswith("OK:")

    # Held past its deadline: the purge keeps it and says so; released, it goes.
    after_deadline = (rec.deadline + timedelta(days=1)).isoformat()
    held = recguard(sandbox, "hold", recording_id, "--reason", "court case P 123/2026")
    assert held.returncode == 0, held.stderr
    kept = recguard(sandbox, "purge", "--now", after_deadline)
    assert kept.returncode == 0, kept.stderr
    assert "kept 1 held recording(s)" in kept.stdout and recording_id in kept.stdout
    assert guard.ledger.recording(recording_id).status == "finalized"
    assert Path(rec.stored_path).exists()

    released = recguard(sandbox, "release", recording_id, "--reason", "case closed")
    assert released.returncode == 0, released.stderr
    before = recguard(sandbox, "purge", "--now", (rec.deadline - timedelta(seconds=1)).isoformat())
    assert recording_id not in before.stdout
    assert guard.ledger.recording(recording_id).status == "finalized"

    purged = recguard(sandbox, "purge", "--now", after_deadline)
    assert purged.returncode == 0, purged.stderr
    assert recording_id in purged.stdout
    after = guard.ledger.recording(recording_id)
    assert (after.status, after.deletion_reason) == ("deleted", "retention_expired")
    assert not Path(after.stored_path).exists() and not Path(after.path).exists()
    assert recording_id not in {p.name.split(".")[0] for p in sandbox.recordings_dir.iterdir()}
    deleted = [e for e in read_log(guard.settings.decision_log)
               if e["event"] == "recording_deleted" and e.get("recording_id") == recording_id]
    assert [e["reason"] for e in deleted] == ["retention_expired"]

    # Every step is in the access log, with who did it and why.
    log = recguard(sandbox, "access-log", "--json")
    entries = [json.loads(line) for line in log.stdout.splitlines()]
    mine = [(e["action"], e["reason"], e["detail"].get("for_purpose"),
             e["detail"].get("outcome"))
            for e in entries
            if e["recording_id"] == recording_id or recording_id in e["detail"].get("recordings", [])]
    assert mine == [
        ("access", "DSAR-17", None, None),
        ("export", "quality review November", "quality", "refused"),
        ("export", "complaint review, ticket 4711", "order", None),
        ("export", "access request DSAR-17", None, None),
        ("hold", "court case P 123/2026", None, None),
        ("release", "case closed", None, None),
    ]
    assert entries[-1]["action"] == "purge" and entries[-1]["reason"] == "retention_expired"
    assert all("(sudo by dpo-anna)" in e["actor"] for e in entries[-6:])


def test_erasure_request_on_a_real_recording(
        guard: Daemon, sandbox: Sandbox, idle: CallerSimulator) -> None:
    recording_id = record_a_call(guard, idle)
    rec = guard.ledger.recording(recording_id)
    erased = recguard(sandbox, "subject", "erase", "--caller", SPOKEN,
                      "--reason", "erasure request DSAR-18")
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert f"erased {recording_id}" in erased.stdout
    after = guard.ledger.recording(recording_id)
    assert (after.status, after.deletion_reason) == ("deleted", "erasure_request")
    assert not Path(rec.stored_path).exists()
    again = recguard(sandbox, "subject", "find", "--caller", WRITTEN)
    assert "deleted" in again.stdout and "erasure_request" in again.stdout
