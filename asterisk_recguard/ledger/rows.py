"""What the ledger hands back: one frozen dataclass per kind of row, built
from a database row with aware datetimes, decoded JSON and status enums."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..lifecycle import CallStatus, RecordingStatus
from .codecs import opt_ts, parse_ts
from .engine import Row


@dataclass(frozen=True)
class Call:
    call_id: str
    channel: str
    linkedid: str | None
    caller_hash: str | None
    started_at: datetime
    ended_at: datetime | None
    last_facts: dict[str, Any]
    status: CallStatus
    server_id: str | None = None  # None: written before the ledger knew servers

    @classmethod
    def _from_row(cls, row: Row) -> Call:
        return cls(
            call_id=row["call_id"], channel=row["channel"], linkedid=row["linkedid"],
            caller_hash=row["caller_hash"], started_at=parse_ts(row["started_at"]),
            ended_at=opt_ts(row["ended_at"]), last_facts=json.loads(row["last_facts"]),
            status=CallStatus(row["status"]), server_id=row["server_id"],
        )


@dataclass(frozen=True)
class DecisionRecord:
    id: int
    call_id: str
    at: datetime
    trigger: str
    facts: dict[str, Any]
    record: bool
    purposes: list[str]
    rejected: Any  # the purposes refused, with their reasons, as the policy gave them
    retention_days: int | None
    policy: str
    action: str  # one of calls.DECISION_ACTIONS
    recording_id: str | None

    @classmethod
    def _from_row(cls, row: Row) -> DecisionRecord:
        return cls(
            id=row["id"], call_id=row["call_id"], at=parse_ts(row["at"]), trigger=row["trigger"],
            facts=json.loads(row["facts"]), record=bool(row["record"]),
            purposes=json.loads(row["purposes"]), rejected=json.loads(row["rejected"]),
            retention_days=row["retention_days"], policy=row["policy"], action=row["action"],
            recording_id=row["recording_id"],
        )


@dataclass(frozen=True)
class Recording:
    recording_id: str
    call_id: str
    channel: str
    path: str  # the clear WAV MixMonitor writes
    mixmonitor_id: str | None
    purposes: list[str]
    bases: dict[str, str]  # purpose -> legal basis
    # when it started, stopped, was finalized and must be deleted by
    started_at: datetime
    stopped_at: datetime | None
    finalized_at: datetime | None
    deadline: datetime | None
    # the finished file
    size_bytes: int | None
    duration_s: float | None
    sha256: str | None
    stored_path: str | None  # the ciphertext, when encrypted
    key_id: str | None
    # its deletion
    deleted_at: datetime | None
    deletion_reason: str | None
    deleted_by: str | None
    # a legal hold
    hold_reason: str | None
    held_at: datetime | None
    held_by: str | None
    status: RecordingStatus
    server_id: str | None = None  # the server whose guard made it; None: before servers

    @property
    def held(self) -> bool:
        return self.hold_reason is not None

    @property
    def file_path(self) -> str:
        """Where the recording lives now: the ciphertext if encrypted, else the WAV."""
        return self.stored_path or self.path

    @classmethod
    def _from_row(cls, row: Row) -> Recording:
        return cls(
            recording_id=row["recording_id"], call_id=row["call_id"], channel=row["channel"],
            path=row["path"], mixmonitor_id=row["mixmonitor_id"],
            purposes=json.loads(row["purposes"]), bases=json.loads(row["bases"]),
            started_at=parse_ts(row["started_at"]), stopped_at=opt_ts(row["stopped_at"]),
            finalized_at=opt_ts(row["finalized_at"]), deadline=opt_ts(row["deadline"]),
            size_bytes=row["size_bytes"], duration_s=row["duration_s"], sha256=row["sha256"],
            stored_path=row["stored_path"], key_id=row["key_id"],
            deleted_at=opt_ts(row["deleted_at"]), deletion_reason=row["deletion_reason"],
            deleted_by=row["deleted_by"], hold_reason=row["hold_reason"],
            held_at=opt_ts(row["held_at"]), held_by=row["held_by"],
            status=RecordingStatus(row["status"]), server_id=row["server_id"],
        )


@dataclass(frozen=True)
class PurposeChange:
    recording_id: str
    at: datetime
    purposes: list[str]
    bases: dict[str, str]
    reason: str

    @classmethod
    def _from_row(cls, row: Row) -> PurposeChange:
        return cls(row["recording_id"], parse_ts(row["at"]), json.loads(row["purposes"]),
                   json.loads(row["bases"]), row["reason"])


@dataclass(frozen=True)
class AccessEntry:
    id: int
    at: datetime
    actor: str
    action: str  # one of journal.ACCESS_ACTIONS
    recording_id: str | None
    call_id: str | None
    reason: str
    detail: dict[str, Any]
    server_id: str | None = None  # the server the command ran on; None: before servers

    @classmethod
    def _from_row(cls, row: Row) -> AccessEntry:
        return cls(row["id"], parse_ts(row["at"]), row["actor"], row["action"],
                   row["recording_id"], row["call_id"], row["reason"], json.loads(row["detail"]),
                   row["server_id"])


@dataclass(frozen=True)
class UnauthorizedEntry:
    id: int
    at: datetime
    channel: str
    call_id: str | None
    file: str | None
    started_by: str | None
    action: str  # one of journal.UNAUTHORIZED_ACTIONS

    @classmethod
    def _from_row(cls, row: Row) -> UnauthorizedEntry:
        return cls(row["id"], parse_ts(row["at"]), row["channel"], row["call_id"], row["file"],
                   row["started_by"], row["action"])


@dataclass(frozen=True)
class PauseInterval:
    """A stretch of a recording muted for card details; open while ``resumed_at`` is None."""

    id: int
    recording_id: str

    # when it began, and what began it (one of pauses.PAUSE_TRIGGERS)
    paused_at: datetime
    paused_by: str

    # when it ended, and what ended it (one of pauses.RESUME_TRIGGERS); None while open
    resumed_at: datetime | None
    resumed_by: str | None

    @classmethod
    def _from_row(cls, row: Row) -> PauseInterval:
        return cls(
            id=row["id"], recording_id=row["recording_id"], paused_at=parse_ts(row["paused_at"]),
            paused_by=row["paused_by"], resumed_at=opt_ts(row["resumed_at"]), resumed_by=row["resumed_by"],
        )
