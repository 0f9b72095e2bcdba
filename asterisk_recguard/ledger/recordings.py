"""The recordings table and its purpose history: a recording's start, the
purposes and legal bases it is kept for, each change of its status, and
legal holds.

Every change of status goes through :func:`set_status`, which applies the
lifecycle's allowed moves (:mod:`asterisk_recguard.lifecycle`) and the
ledger's own rules on top of them: late or repeated requests leave a recording
unchanged, a held recording cannot be deleted, a recording is finalized once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ..lifecycle import RecordingStatus, check_transition
from .codecs import (
    check_recording_id,
    check_text,
    format_ts,
    is_hex64,
    recording_purposes,
    to_json,
    ts_or,
    utcnow,
)
from .calls import require_call
from .engine import Connection, Engine, select
from .exceptions import InvalidTransition, RecordingHeld, UnknownRecord
from .rows import PurposeChange, Recording

_R = RecordingStatus

# A request for a status the recording already has, or has gone past, leaves
# it unchanged: stop events arrive late or twice, and a deletion may be asked
# for again while an earlier one is being finished.
_ALREADY_THERE: dict[RecordingStatus, frozenset[RecordingStatus]] = {
    _R.STOPPED: frozenset(_R) - {_R.RECORDING},
    _R.DELETING: frozenset({_R.DELETING, _R.DELETED}),
    _R.DELETED: frozenset({_R.DELETED}),
}


def get_recording(conn: Connection, recording_id: str) -> Recording:
    """The recording, or :class:`UnknownRecord`."""
    row = conn.execute(
        "SELECT * FROM recordings WHERE recording_id = ?", (recording_id,)
    ).fetchone()
    if row is None:
        raise UnknownRecord(f"no recording {recording_id!r} in the ledger")
    return Recording._from_row(row)


def set_status(conn: Connection, recording_id: str, new: RecordingStatus,
               changes: Callable[[Recording], Mapping[str, Any]]) -> Recording:
    """Move the recording to ``new`` and set the columns ``changes(current)``
    names (ledger text, not datetimes): the one place a status changes.

    Already there (see ``_ALREADY_THERE``): unchanged. Raises
    :class:`RecordingHeld` for a deletion of a held recording,
    :class:`InvalidTransition` for a move the lifecycle or the ledger refuses;
    ``changes`` may raise too, before anything is written.
    """
    current = get_recording(conn, recording_id)
    if current.status in _ALREADY_THERE.get(new, ()):
        return current
    if new.gone and current.held:
        raise RecordingHeld(
            f"recording {recording_id} is under legal hold ({current.hold_reason}); "
            "release the hold before deleting it"
        )
    # Finalizing twice would overwrite the digest and deadline of the first.
    if new is _R.FINALIZED and not current.status.open:
        raise InvalidTransition(
            f"recording {recording_id} is {current.status}; only a recording or "
            "stopped recording can be finalized"
        )
    columns = dict(changes(current))
    check_transition(f"recording {recording_id}", current.status, new)
    assignments = ", ".join(f"{name} = ?" for name in ("status", *columns))
    conn.execute(f"UPDATE recordings SET {assignments} WHERE recording_id = ?",
                 (new.value, *columns.values(), recording_id))
    return get_recording(conn, recording_id)


def _add_purpose_history(conn: Connection, recording_id: str, when: str, purposes_json: str,
                         bases_json: str, reason: str) -> None:
    conn.execute(
        """INSERT INTO purpose_history (recording_id, at, purposes, bases, reason)
           VALUES (?, ?, ?, ?, ?)""",
        (recording_id, when, purposes_json, bases_json, reason),
    )


class RecordingTable:
    """The ledger's methods that write a recording."""

    _engine: Engine
    server_id: str | None

    def recording_started(self, recording_id: str, *, call_id: str, channel: str,
                          path: str | Path, purposes: Iterable[str], bases: Mapping[str, str],
                          started_at: datetime | None = None,
                          mixmonitor_id: str | None = None) -> None:
        """Record a MixMonitor the guard started, with the purposes that
        justify it and the legal basis of each (read it with :meth:`recording`)."""
        check_recording_id(recording_id)
        check_text(channel, "channel")
        check_text(str(path), "path")
        names, basis_map = recording_purposes(purposes, bases)
        when = format_ts(started_at or utcnow())
        with self._engine.transaction() as conn:
            require_call(conn, call_id)
            purposes_json, bases_json = to_json(names, "purposes"), to_json(basis_map, "bases")
            try:
                conn.execute(
                    """INSERT INTO recordings (recording_id, call_id, channel, path, mixmonitor_id,
                                               purposes, bases, started_at, status, server_id)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (recording_id, call_id, channel, str(path), mixmonitor_id,
                     purposes_json, bases_json, when, _R.RECORDING.value, self.server_id),
                )
            except conn.IntegrityError as exc:
                raise ValueError(
                    f"recording {recording_id} or its path already exists: {exc}"
                ) from None
            _add_purpose_history(conn, recording_id, when, purposes_json, bases_json, "started")

    def set_mixmonitor_id(self, recording_id: str, mixmonitor_id: str) -> None:
        """Store the MixMonitorID when it arrives after the start."""
        check_text(mixmonitor_id, "mixmonitor_id")
        with self._engine.transaction() as conn:
            if conn.execute("UPDATE recordings SET mixmonitor_id = ? WHERE recording_id = ?",
                            (mixmonitor_id, recording_id)).rowcount == 0:
                raise UnknownRecord(f"no recording {recording_id!r} in the ledger")

    def update_recording_purposes(self, recording_id: str, purposes: Iterable[str],
                                  bases: Mapping[str, str], *, reason: str,
                                  at: datetime | None = None) -> Recording:
        """Change the purposes a recording is kept for (e.g. quality withdrawn),
        keeping the history. To drop the last purpose, delete the recording."""
        check_text(reason, "reason")
        names, basis_map = recording_purposes(purposes, bases)
        when = format_ts(at or utcnow())
        purposes_json, bases_json = to_json(names, "purposes"), to_json(basis_map, "bases")
        with self._engine.transaction() as conn:
            current = get_recording(conn, recording_id)
            if current.status.gone:
                raise InvalidTransition(
                    f"recording {recording_id} is {current.status}; its purposes cannot change"
                )
            conn.execute("UPDATE recordings SET purposes = ?, bases = ? WHERE recording_id = ?",
                         (purposes_json, bases_json, recording_id))
            _add_purpose_history(conn, recording_id, when, purposes_json, bases_json, reason)
            return get_recording(conn, recording_id)

    def purpose_history(self, recording_id: str) -> list[PurposeChange]:
        return select(self._engine,
                      "SELECT * FROM purpose_history WHERE recording_id = ? ORDER BY id",
                      (recording_id,), PurposeChange._from_row)

    # -- status --

    def recording_stopped(self, recording_id: str, *,
                          stopped_at: datetime | None = None) -> Recording:
        """MixMonitor stopped. Only a 'recording' recording changes; in any other
        state this is a no-op, because stop events can arrive late or twice."""
        when = format_ts(stopped_at or utcnow())
        with self._engine.transaction() as conn:
            return set_status(conn, recording_id, _R.STOPPED, lambda _: {"stopped_at": when})

    def recording_finalized(self, recording_id: str, *, size_bytes: int, duration_s: float,
                            sha256: str, deadline: datetime, stored_path: str | Path | None = None,
                            key_id: str | None = None,
                            finalized_at: datetime | None = None) -> Recording:
        """The file is complete: store its size, duration, digest, where it is
        kept (the ciphertext when encrypted, with the key id) and the deletion
        deadline."""
        if not is_hex64(sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        if not isinstance(size_bytes, int) or size_bytes < 0:
            raise ValueError("size_bytes must be a non-negative integer")
        if duration_s < 0:
            raise ValueError("duration_s must not be negative")
        if (stored_path is None) != (key_id is None):
            raise ValueError("stored_path and key_id go together (an encrypted copy and its key)")
        deadline_text = format_ts(deadline)
        when = format_ts(finalized_at or utcnow())
        with self._engine.transaction() as conn:
            return set_status(conn, recording_id, _R.FINALIZED, lambda current: {
                "finalized_at": when, "stopped_at": ts_or(current.stopped_at, when),
                "size_bytes": size_bytes, "duration_s": float(duration_s), "sha256": sha256,
                "deadline": deadline_text,
                "stored_path": None if stored_path is None else str(stored_path),
                "key_id": key_id,
            })

    def mark_deleting(self, recording_id: str, *, reason: str, actor: str | None = None,
                      at: datetime | None = None) -> Recording:
        """Declare the intent to delete, before the file is unlinked, so that a
        crash between the two leaves a visible pending deletion. Refused for a
        held recording. Already deleting or deleted: unchanged."""
        check_text(reason, "reason")
        when = format_ts(at or utcnow())
        with self._engine.transaction() as conn:
            return set_status(conn, recording_id, _R.DELETING, lambda current: {
                "deletion_reason": reason, "deleted_by": actor,
                "stopped_at": ts_or(current.stopped_at, when),
            })

    def mark_deleted(self, recording_id: str, *, reason: str | None = None,
                     actor: str | None = None, at: datetime | None = None) -> Recording:
        """The file (and any copy) is gone. ``reason`` defaults to the one given
        to mark_deleting. Refused for a held recording and for one whose deletion
        was not declared first (mark_deleting); already deleted: unchanged."""
        when = format_ts(at or utcnow())

        def changes(current: Recording) -> dict[str, Any]:
            why = reason or current.deletion_reason
            if not why:
                raise ValueError("a deletion needs a reason")
            return {"deleted_at": when, "deletion_reason": why,
                    "deleted_by": current.deleted_by if actor is None else actor,
                    "stopped_at": ts_or(current.stopped_at, when)}

        with self._engine.transaction() as conn:
            return set_status(conn, recording_id, _R.DELETED, changes)

    # -- legal hold --

    def set_hold(self, recording_id: str, *, reason: str, actor: str,
                 at: datetime | None = None) -> Recording:
        """Place a legal hold: the recording is kept past its deadline until released."""
        check_text(reason, "reason")
        check_text(actor, "actor")
        when = format_ts(at or utcnow())
        with self._engine.transaction() as conn:
            current = get_recording(conn, recording_id)
            if current.status.gone:
                raise InvalidTransition(
                    f"recording {recording_id} is {current.status}; it cannot be held"
                )
            conn.execute(
                "UPDATE recordings SET hold_reason = ?, held_at = ?, held_by = ? "
                "WHERE recording_id = ?",
                (reason, when, actor, recording_id),
            )
            return get_recording(conn, recording_id)

    def release_hold(self, recording_id: str, *, actor: str,
                     at: datetime | None = None) -> Recording:
        """Lift a legal hold; the next purge deletes the recording if its
        deadline has passed. Who released it goes to the access log (log_access)."""
        check_text(actor, "actor")
        with self._engine.transaction() as conn:
            current = get_recording(conn, recording_id)
            if not current.held:
                raise InvalidTransition(f"recording {recording_id} is not under legal hold")
            conn.execute(
                "UPDATE recordings SET hold_reason = NULL, held_at = NULL, held_by = NULL "
                "WHERE recording_id = ?",
                (recording_id,),
            )
            return get_recording(conn, recording_id)
