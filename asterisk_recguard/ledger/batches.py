"""Batch deletion, for the purge: many recordings' status changed in one
transaction.

Every public call commits with synchronous=FULL, about 0.25 ms of fsync on a
local disk, so deleting 100,000 expired recordings one by one spends close to
a minute in fsync alone. These apply the rules of
:meth:`~.recordings.RecordingTable.mark_deleting` and ``mark_deleted`` (intent
before unlink, held recordings untouchable, confirmation after) to a batch, as
set-based SQL making only the lifecycle's moves FINALIZED → DELETING and
DELETING → DELETED.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..lifecycle import RecordingStatus
from .codecs import format_ts
from .engine import Engine

# Recordings per batch deletion; far below SQLite's limit on bound parameters
# (999 in old builds).
MAX_BATCH = 500

_R = RecordingStatus


def _batch_placeholders(count: int) -> str:
    """``?,?,...`` for an IN list of ``count`` ids, refusing an empty batch
    (invalid SQL) and one over MAX_BATCH (past the bound-parameter limit)."""
    if not 0 < count <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} recordings, not {count}")
    return ",".join("?" * count)


class RecordingBatches:
    """The ledger's batch deletion methods."""

    _engine: Engine

    def mark_deleting_expired(self, recording_ids: Sequence[str], *, now: datetime,
                              reason: str, actor: str, at: datetime) -> list[str]:
        """Of ``recording_ids`` (1 to MAX_BATCH), mark those still finalized,
        past their deadline at ``now`` and not held as 'deleting', in one
        transaction; return them.

        The conditions are checked inside the transaction, so a hold placed
        after the caller listed the recordings is respected.
        """
        ids = list(recording_ids)
        marks = _batch_placeholders(len(ids))
        with self._engine.transaction() as conn:
            rows = conn.execute(
                f"""SELECT recording_id FROM recordings
                    WHERE recording_id IN ({marks}) AND status = ?
                      AND hold_reason IS NULL AND deadline <= ?""",
                (*ids, _R.FINALIZED.value, format_ts(now)),
            ).fetchall()
            eligible = [row[0] for row in rows]
            if eligible:
                conn.execute(
                    f"""UPDATE recordings SET status = ?, deletion_reason = ?,
                            deleted_by = ?, stopped_at = coalesce(stopped_at, ?)
                        WHERE recording_id IN ({_batch_placeholders(len(eligible))})""",
                    (_R.DELETING.value, reason, actor, format_ts(at), *eligible),
                )
        return eligible

    def mark_deleted_many(self, recording_ids: Sequence[str], *, at: datetime) -> None:
        """Confirm, in one transaction, the deletion of recordings (1 to
        MAX_BATCH) marked 'deleting' whose files are gone. Ids in any other
        state, or held, are left unchanged."""
        ids = list(recording_ids)
        marks = _batch_placeholders(len(ids))
        when = format_ts(at)
        with self._engine.transaction() as conn:
            conn.execute(
                f"""UPDATE recordings SET status = ?, deleted_at = ?,
                        stopped_at = coalesce(stopped_at, ?)
                    WHERE recording_id IN ({marks}) AND status = ?
                      AND hold_reason IS NULL""",
                (_R.DELETED.value, when, when, *ids, _R.DELETING.value),
            )
