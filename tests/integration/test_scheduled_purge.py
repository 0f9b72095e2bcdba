"""`recguard run` purges recordings past their deadline on its own schedule."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from asterisk_recguard.ari import wait_until
from asterisk_recguard.ledger import Ledger, utcnow
from asterisk_recguard.devtools.sandbox import Sandbox

from .guardrun import guard_in_process, read_log


def test_daemon_purges_expired_recordings_by_itself(sandbox: Sandbox) -> None:
    env = sandbox.credentials()
    recording_id = uuid.uuid4().hex
    stored = sandbox.recordings_dir / f"{recording_id}.wav.rgv"
    stored.write_bytes(b"ciphertext stand-in")
    call_id = f"expired-{recording_id[:8]}"
    long_ago = utcnow() - timedelta(days=800)
    with Ledger(env["RECGUARD_LEDGER"]) as ledger:
        ledger.upsert_call_start(call_id, channel="PJSIP/old-00000001", started_at=long_ago)
        ledger.recording_started(recording_id, call_id=call_id, channel="PJSIP/old-00000001",
                                 path=sandbox.recordings_dir / f"{recording_id}.wav",
                                 purposes=["complaint"], bases={"complaint": "evidence"}, started_at=long_ago)
        ledger.end_call(call_id, ended_at=long_ago)
        ledger.recording_stopped(recording_id, stopped_at=long_ago)
        ledger.recording_finalized(recording_id, size_bytes=19, duration_s=1.0, sha256="0" * 64,
                                   deadline=long_ago + timedelta(days=730), stored_path=stored,
                                   key_id="k-test", finalized_at=long_ago)
    with guard_in_process(sandbox.env_file, RECGUARD_PURGE_INTERVAL="1") as daemon:
        assert wait_until(lambda: daemon.ledger.recording(recording_id).status == "deleted", 5)
        assert daemon.ledger.recording(recording_id).deletion_reason == "retention_expired"
        assert not stored.exists()
        lines = [e for e in read_log(Path(env["RECGUARD_DECISION_LOG"])) if e.get("recording_id") == recording_id]
        assert any(e["event"] == "recording_deleted" and e["reason"] == "retention_expired" for e in lines)
