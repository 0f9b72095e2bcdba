"""Data-subject requests: find a caller's recordings, or erase them.

A caller is identified only by the keyed hash of their number
(:func:`callerid.hash_caller`), so every spelling of the same number
(``+386 40 123 456``, ``0038640123456``, ``040 123 456`` with default country
code 386) finds the same recordings, and the number itself is neither stored
nor logged: the access log records the hash. Their recordings are handed
over by :func:`exporting.export_recordings` with ``REQUEST_SUBJECT``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .access import Clock, moment, require_reason
from .callerid import hash_caller
from .decisionlog import EventLog
from .errors import UserError
from .exporting import call_date
from .ledger import Ledger, Recording, utcnow
from .lifecycle import RecordingStatus
from .storage import Deletion, OutsideRecordingsDir, delete_recording

ERASURE_REQUEST = "erasure_request"
FIND_DEFAULT_REASON = "data-subject look-up (no reason given)"


def subject_hash(raw: str, secret: str, default_country_code: str) -> str:
    """The keyed hash of a caller number in any spelling, or UserError.

    Error messages never repeat the number.
    """
    try:
        hashed = hash_caller(raw, secret, default_country_code)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if hashed is None:
        raise UserError(
            "--caller is not a usable phone number: give digits, optionally with a leading "
            "+ or 00 and spaces, -, ., /, ( ) between them (the number is not repeated here)"
        )
    return hashed


# --- find ------------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectRecording:
    recording: Recording
    call_started_at: datetime | None


def find(ledger: Ledger, log: EventLog, caller_hash: str, *, actor: str,
         reason: str | None = None, clock: Clock = utcnow) -> list[SubjectRecording]:
    """The caller's recordings, deleted ones included (they show when and why).

    A look-up reveals personal data (that this person called, when, why), so it
    is logged in the access log like an export, with the hash, never the number.
    """
    found = [SubjectRecording(rec, call_date(ledger, rec))
             for rec in ledger.recordings_by_caller_hash(caller_hash, include_deleted=True)]
    why = reason.strip() if reason and reason.strip() else FIND_DEFAULT_REASON
    ids = [item.recording.recording_id for item in found]
    ledger.log_access(actor=actor, action="access", reason=why,
                      detail={"request": "subject_find", "caller_hash": caller_hash,
                              "recordings": ids},
                      at=clock())
    log.emit("access", request="subject_find", caller_hash=caller_hash, actor=actor,
             reason=why, recordings=ids)
    return found


# --- erase ----------------------------------------------------------------------------


@dataclass
class EraseReport:
    deleted: list[Deletion] = field(default_factory=list)
    refused: list[tuple[Recording, str]] = field(default_factory=list)


def erase(ledger: Ledger, log: EventLog, caller_hash: str, *, reason: str, actor: str,
          recordings_dir: Path, clock: Clock = utcnow,
          server_id: str | None = None) -> EraseReport:
    """Delete the caller's recordings, irreversibly, except those under legal
    hold or still being recorded, and those whose files the ledger names
    outside ``recordings_dir`` (left 'deleting'), which are refused and named.

    The ledger keeps the calls' decisions (with the hash, never the number):
    they are the accountability record of what was recorded and why. With
    ``server_id``, only the recordings made on that server.
    """
    why = require_reason(reason, "an erasure")
    report = EraseReport()
    for rec in ledger.recordings_by_caller_hash(caller_hash):
        if server_id is not None and rec.server_id != server_id:
            continue
        if rec.held:
            report.refused.append((rec, f"under legal hold since {moment(rec.held_at)} by "
                                        f"{rec.held_by}: {rec.hold_reason}"))
        elif RecordingStatus(rec.status).open:
            report.refused.append((rec, "the call is still being recorded or finalized; "
                                        "run the erasure again after it ends"))
        else:
            try:
                deletion = delete_recording(
                    ledger, log, rec, reason=ERASURE_REQUEST, actor=actor, clock=clock,
                    recordings_dir=recordings_dir, request_reason=why, caller_hash=caller_hash)
            except OutsideRecordingsDir as exc:
                report.refused.append((rec, str(exc)))
                continue
            report.deleted.append(deletion)
            ledger.log_access(actor=actor, action="erase", reason=why,
                              recording_id=rec.recording_id, call_id=rec.call_id,
                              detail={"caller_hash": caller_hash, "outcome": "deleted"},
                              at=clock())
    for rec, refusal in report.refused:
        ledger.log_access(actor=actor, action="erase", reason=why, recording_id=rec.recording_id,
                          call_id=rec.call_id,
                          detail={"caller_hash": caller_hash, "outcome": "refused",
                                  "why": refusal},
                          at=clock())
    if not report.deleted and not report.refused:
        ledger.log_access(actor=actor, action="erase", reason=why,
                          detail={"caller_hash": caller_hash, "outcome": "nothing_found"},
                          at=clock())
    log.emit("erase", caller_hash=caller_hash, actor=actor, reason=why,
             deleted=[d.recording_id for d in report.deleted],
             refused=[rec.recording_id for rec, _ in report.refused],
             level="warning" if report.refused else "info")
    return report

