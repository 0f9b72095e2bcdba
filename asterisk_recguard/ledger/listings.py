"""Reading recordings: the lists the guard, the purge, the audit and subject
requests ask for, each one query."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..lifecycle import RecordingStatus
from .codecs import check_hash, format_ts, parse_ts
from .engine import Engine, select
from .rows import Recording
from .servers import scoped

RECORDING_STATUSES: tuple[str, ...] = tuple(status.value for status in RecordingStatus)

_R = RecordingStatus


class RecordingLists:
    """The ledger's methods that list recordings."""

    _engine: Engine

    def _recordings(self, where: str, params: Sequence[Any] = ()) -> list[Recording]:
        return select(self._engine, f"SELECT * FROM recordings WHERE {where}", params,
                      Recording._from_row)

    def recordings(self, *, statuses: Iterable[str] | None = None) -> list[Recording]:
        """Every recording, or those in ``statuses`` (of RECORDING_STATUSES),
        ordered by start: one query for readers that need the whole picture
        (the consistency audit) rather than a union of the purpose-built ones."""
        if statuses is None:
            return self._recordings("TRUE ORDER BY started_at, recording_id")
        if isinstance(statuses, str):
            raise TypeError("statuses must be a collection of status names, not one string")
        wanted = sorted(set(statuses))
        unknown = [s for s in wanted if s not in RECORDING_STATUSES]
        if unknown:
            raise ValueError(
                f"unknown recording status(es) {unknown}; known: {list(RECORDING_STATUSES)}"
            )
        if not wanted:
            return []
        return self._recordings(
            f"status IN ({','.join('?' * len(wanted))}) ORDER BY started_at, recording_id",
            [str(s) for s in wanted],
        )

    def pending_deletions(self, *, server_id: str | None = None) -> list[Recording]:
        """Recordings whose deletion was started but not confirmed (with
        ``server_id``, of that server only, as in the lists below)."""
        only, params = scoped(server_id)
        return self._recordings(f"status = ?{only} ORDER BY started_at, recording_id",
                                (_R.DELETING.value, *params))

    def recording(self, recording_id: str) -> Recording | None:
        found = self._recordings("recording_id = ?", (recording_id,))
        return found[0] if found else None

    def recordings_for_call(self, call_id: str) -> list[Recording]:
        return self._recordings("call_id = ? ORDER BY started_at, recording_id", (call_id,))

    def active_recordings(self, *, server_id: str | None = None) -> list[Recording]:
        """Recordings not yet finalized or deleted (status recording or stopped)."""
        only, params = scoped(server_id)
        return self._recordings(f"status IN (?, ?){only} ORDER BY started_at, recording_id",
                                (_R.RECORDING.value, _R.STOPPED.value, *params))

    def expired(self, now: datetime, *, server_id: str | None = None) -> list[Recording]:
        """Finalized recordings past their deadline and not held: what purge deletes."""
        only, params = scoped(server_id)
        return self._recordings(
            f"""status = ? AND deadline <= ? AND hold_reason IS NULL{only}
               ORDER BY deadline, recording_id""",
            (_R.FINALIZED.value, format_ts(now), *params),
        )

    def held_recordings(self, *, past_deadline_at: datetime | None = None,
                        server_id: str | None = None) -> list[Recording]:
        """Recordings under legal hold; with ``past_deadline_at``, only those
        a purge at that time would have deleted but for the hold."""
        only, params = scoped(server_id)
        if past_deadline_at is None:
            return self._recordings(f"hold_reason IS NOT NULL{only} ORDER BY held_at, recording_id",
                                    params)
        return self._recordings(
            f"""hold_reason IS NOT NULL AND status = ? AND deadline <= ?{only}
               ORDER BY deadline, recording_id""",
            (_R.FINALIZED.value, format_ts(past_deadline_at), *params),
        )

    def recordings_by_caller_hash(self, caller_hash: str, *,
                                  include_deleted: bool = False) -> list[Recording]:
        """A data subject's recordings, found by the keyed hash of their number."""
        check_hash(caller_hash)
        deleted = "" if include_deleted else "AND r.status != ?"
        params = (caller_hash,) if include_deleted else (caller_hash, _R.DELETED.value)
        return select(
            self._engine,
            f"""SELECT r.* FROM recordings r JOIN calls c ON c.call_id = r.call_id
                WHERE c.caller_hash = ? {deleted}
                ORDER BY r.started_at, r.recording_id""",
            params, Recording._from_row,
        )

    def known_paths(self) -> frozenset[str]:
        """Every file path the ledger accounts for (clear and encrypted) of
        recordings not yet deleted: the orphan audit's allow-list. A file of a
        deleted recording that still exists is therefore an orphan."""
        with self._engine.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT path, stored_path FROM recordings WHERE status != ?",
                (_R.DELETED.value,),
            ).fetchall()
        paths = {r["path"] for r in rows}
        paths.update(r["stored_path"] for r in rows if r["stored_path"])
        return frozenset(paths)

    def recording_counts(self, now: datetime) -> dict[str, int]:
        """How many recordings are in progress (recording, stopped), being
        deleted, past their deadline at ``now`` and not deleted nor held
        (overdue: a purge has yet to delete them), and held past their
        deadline; and ``overdue_seconds``, how long the longest overdue one
        has been past its deadline (0 if none). One read; each part walks the
        (status, deadline) index, so it stays cheap however many recordings
        the ledger holds."""
        when = format_ts(now)
        with self._engine.transaction(write=False) as conn:
            row = conn.execute(
                """SELECT
                     (SELECT count(*) FROM recordings WHERE status IN (?, ?)),
                     (SELECT count(*) FROM recordings WHERE status = ?),
                     (SELECT count(*) FROM recordings WHERE status IN (?, ?) AND deadline <= ?
                        AND hold_reason IS NULL),
                     (SELECT count(*) FROM recordings WHERE status IN (?, ?) AND deadline <= ?
                        AND hold_reason IS NOT NULL),
                     (SELECT min(deadline) FROM recordings WHERE status IN (?, ?) AND deadline <= ?
                        AND hold_reason IS NULL)""",
                (_R.RECORDING.value, _R.STOPPED.value, _R.DELETING.value,
                 *(_R.FINALIZED.value, _R.DELETING.value, when) * 3),
            ).fetchone()
        counts = dict(zip(("in_progress", "deleting", "overdue", "held_past_deadline"), row[:4]))
        counts["overdue_seconds"] = int((now - parse_ts(row[4])).total_seconds()) if row[4] else 0
        return counts
