"""Builders for the retention, data-subject and audit tests: a ledger with
calls and finalized recordings whose files really exist, as the guard
leaves them (encrypted ciphertext, or a clear WAV with encryption off)."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import wave
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from asterisk_recguard.callerid import hash_caller
from asterisk_recguard.decisionlog import DecisionLog
from asterisk_recguard.exporting import REQUEST_SUBJECT, ExportResult, export_recordings
from asterisk_recguard.ledger import Ledger, Recording
from asterisk_recguard.vault import Keyring, encrypt_file, generate_key_file

T0 = datetime(2025, 1, 10, 10, 0, 0, tzinfo=timezone.utc)  # in the past: settled
SECRET = "s3cret-for-the-caller-hash-0123456789abcdef"
NUMBER = "+386 40 123 456"
ORDER_FACTS = {"purposes": ["order"], "notices": {"evidence-v1": "complete"},
               "consent": "none", "outcome": "transaction"}


def wav_bytes(seconds: float = 0.5, seed: int = 0) -> bytes:
    frames = int(8000 * seconds)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes((seed + i) % 256 for i in range(frames * 2)))
    return buf.getvalue()


@dataclass
class World:
    """A ledger, a recordings directory, a decision log and a key file."""

    root: Path
    ledger: Ledger
    log: DecisionLog
    recordings: Path
    key_file: Path

    @property
    def keyring(self) -> Keyring:
        return Keyring.load(self.key_file)

    def log_lines(self) -> list[dict[str, Any]]:
        if not self.log.path.exists():
            return []
        return [json.loads(line) for line in self.log.path.read_text().splitlines() if line]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.log_lines() if line["event"] == name]

    def add(self, *, deadline: datetime, caller: str | None = NUMBER, encrypted: bool = True,
            purposes: tuple[str, ...] = ("order",), facts: dict[str, Any] | None = None,
            ended: datetime = T0, seed: int = 0, finalize: bool = True) -> Recording:
        """A call from ``caller`` with one recording, finalized as the guard does it."""
        call_id = f"{1700000000 + seed}.{uuid.uuid4().int % 1000}"
        caller_hash = hash_caller(caller, SECRET, "386") if caller else None
        self.ledger.upsert_call_start(call_id, channel="PJSIP/trunk-00000012",
                                      started_at=ended - timedelta(minutes=3),
                                      caller_hash=caller_hash, facts=facts or ORDER_FACTS)
        recording_id = uuid.uuid4().hex
        clear = self.recordings / f"{recording_id}.wav"
        self.ledger.recording_started(
            recording_id, call_id=call_id, channel="PJSIP/trunk-00000012", path=clear,
            purposes=list(purposes), bases={p: "evidence" for p in purposes},
            started_at=ended - timedelta(minutes=2))
        data = wav_bytes(seed=seed)
        clear.write_bytes(data)
        if not finalize:
            return self.ledger.recording(recording_id)  # type: ignore[return-value]
        self.ledger.end_call(call_id, ended_at=ended, facts=facts or ORDER_FACTS)
        stored: Path | None = None
        key_id: str | None = None
        if encrypted:
            stored = clear.with_name(clear.name + ".rgv")
            key_id = encrypt_file(clear, stored, self.keyring).key_id
        rec = self.ledger.recording_finalized(
            recording_id, size_bytes=len(data), duration_s=0.5,
            sha256=hashlib.sha256(data).hexdigest(), deadline=deadline,
            stored_path=stored, key_id=key_id, finalized_at=ended)
        if encrypted:
            clear.unlink()
        return rec


def files(world: World) -> set[str]:
    """The names of the files in the world's recordings directory."""
    return {p.name for p in world.recordings.iterdir()}


def export(world: World, recordings: list[Recording], to: Path, reason: str = "DSAR-17", *,
           actor: str = "alice", request: str = REQUEST_SUBJECT, **kw: Any) -> ExportResult:
    """Export as a data-subject request unless told otherwise, with the world's keys."""
    return export_recordings(world.ledger, world.log, recordings, to, reason=reason, actor=actor,
                             keyring=lambda: world.keyring, request=request, **kw)


def non_empty_dir(root: Path) -> Path:
    """A directory ``out`` below ``root`` that already holds a file: no place for an export."""
    to = root / "out"
    to.mkdir()
    (to / "other.txt").write_text("x")
    return to


def make_world(root: Path) -> World:
    recordings = root / "spool"
    recordings.mkdir()
    key_file = root / "keys"
    generate_key_file(key_file)
    # Sealed with the secret of env_file(), as recguard's commands open it.
    return World(root=root, ledger=Ledger.create(root / "ledger.sqlite3", recordings_dir=recordings,
                                                 seal_secret=SECRET),
                 log=DecisionLog(root / "decisions.jsonl"), recordings=recordings,
                 key_file=key_file)


def env_file(world: World, **extra: str) -> Path:
    """An env file pointing recguard's commands at ``world``."""
    values = {
        "RECGUARD_ARI_USER": "recguard", "RECGUARD_ARI_PASSWORD": "ari-secret",
        "RECGUARD_AMI_USER": "recguard", "RECGUARD_AMI_SECRET": "ami-secret",
        "RECGUARD_HASH_SECRET": SECRET, "RECGUARD_LEDGER": str(world.ledger.path),
        "RECGUARD_RECORDINGS_DIR": str(world.recordings),
        "RECGUARD_DECISION_LOG": str(world.log.path), "RECGUARD_KEY_FILE": str(world.key_file),
        "RECGUARD_DEFAULT_COUNTRY_CODE": "386",
        **extra,
    }
    path = world.root / "recguard.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path
