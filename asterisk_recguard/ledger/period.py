"""Reading one period back for the data-protection officer's report: the
calls, decisions, deletions and journal entries between two moments, and
what is kept now. Read-only queries, each one transaction; what may be many
rows (recordings kept for years) is counted in SQL, not loaded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..lifecycle import RecordingStatus
from .codecs import format_ts, parse_ts
from .engine import Engine, select
from .rows import AccessEntry, DecisionRecord, UnauthorizedEntry

_R = RecordingStatus


@dataclass(frozen=True)
class PolicyUse:
    label: str
    first: datetime
    last: datetime
    decisions: int


@dataclass(frozen=True)
class DeletionCount:
    reason: str | None
    day: str  # YYYY-MM-DD, UTC
    count: int


@dataclass(frozen=True)
class Late:
    """A recording deleted, or still kept, after its deadline."""

    recording_id: str
    deadline: datetime
    at: datetime | None  # when it was deleted; None while it is still kept


@dataclass(frozen=True)
class KeptCount:
    purposes: tuple[str, ...]
    deadline_year: int | None
    held: bool
    finalized: bool  # False: still being recorded or finalized
    count: int


class PeriodReads:
    """The ledger's methods that read a period ``[since, until)`` and the present."""

    _engine: Engine

    def calls_started_between(self, since: datetime,
                              until: datetime) -> list[tuple[str, datetime]]:
        """The id and start of each call the gate first saw in the period, oldest first."""
        with self._engine.transaction(write=False) as conn:
            rows = conn.execute(
                """SELECT call_id, started_at FROM calls WHERE started_at >= ? AND started_at < ?
                   ORDER BY started_at, call_id""",
                (format_ts(since), format_ts(until)),
            ).fetchall()
        return [(r["call_id"], parse_ts(r["started_at"])) for r in rows]

    def decisions_of_calls(self, call_ids: Sequence[str]) -> list[DecisionRecord]:
        """Every decision about these calls (at most a few hundred at a time),
        by call and then in order."""
        if not call_ids:
            return []
        marks = ",".join("?" * len(call_ids))
        return select(self._engine,
                      f"SELECT * FROM decisions WHERE call_id IN ({marks}) ORDER BY call_id, id",
                      list(call_ids), DecisionRecord._from_row)

    def policies_used_between(self, since: datetime, until: datetime) -> list[PolicyUse]:
        """Each policy label decisions were made under in the period, with its
        first and last use and how many decisions, in order of first use."""
        with self._engine.transaction(write=False) as conn:
            rows = conn.execute(
                """SELECT policy, min(at) AS first, max(at) AS last, count(*) AS n
                   FROM decisions WHERE at >= ? AND at < ?
                   GROUP BY policy ORDER BY first, policy""",
                (format_ts(since), format_ts(until)),
            ).fetchall()
        return [PolicyUse(r["policy"], parse_ts(r["first"]), parse_ts(r["last"]), r["n"])
                for r in rows]

    def deletions_between(self, since: datetime, until: datetime) -> list[DeletionCount]:
        """Recordings whose deletion was confirmed in the period, counted by reason and day."""
        with self._engine.transaction(write=False) as conn:
            rows = conn.execute(
                """SELECT deletion_reason AS reason, substr(deleted_at, 1, 10) AS day,
                          count(*) AS n
                   FROM recordings WHERE status = ? AND deleted_at >= ? AND deleted_at < ?
                   GROUP BY reason, day ORDER BY day, reason""",
                (_R.DELETED.value, format_ts(since), format_ts(until)),
            ).fetchall()
        return [DeletionCount(r["reason"], r["day"], r["n"]) for r in rows]

    def deleted_late_between(self, since: datetime, until: datetime) -> list[Late]:
        """Recordings deleted in the period after their deadline."""
        with self._engine.transaction(write=False) as conn:
            rows = conn.execute(
                """SELECT recording_id, deadline, deleted_at FROM recordings
                   WHERE status = ? AND deleted_at >= ? AND deleted_at < ?
                     AND deadline IS NOT NULL AND deleted_at > deadline
                   ORDER BY deleted_at, recording_id""",
                (_R.DELETED.value, format_ts(since), format_ts(until)),
            ).fetchall()
        return [Late(r["recording_id"], parse_ts(r["deadline"]), parse_ts(r["deleted_at"]))
                for r in rows]

    def kept_counts(self) -> list[KeptCount]:
        """Recordings not deleted, counted by purposes, year of deadline, hold
        and whether they are finalized."""
        with self._engine.transaction(write=False) as conn:
            rows = conn.execute(
                """SELECT purposes, substr(deadline, 1, 4) AS year,
                          hold_reason IS NOT NULL AS held, status = ? AS finalized,
                          count(*) AS n
                   FROM recordings WHERE status != ?
                   GROUP BY purposes, year, held, finalized""",
                (_R.FINALIZED.value, _R.DELETED.value),
            ).fetchall()
        return [KeptCount(tuple(json.loads(r["purposes"])),
                          None if r["year"] is None else int(r["year"]),
                          bool(r["held"]), bool(r["finalized"]), r["n"]) for r in rows]

    def overdue(self, now: datetime) -> tuple[int, Late | None]:
        """How many finalized recordings are past their deadline at ``now``
        and not held (what a purge would delete), and the one overdue longest."""
        where = "status = ? AND hold_reason IS NULL AND deadline <= ?"
        params = (_R.FINALIZED.value, format_ts(now))
        with self._engine.transaction(write=False) as conn:
            count = conn.execute(f"SELECT count(*) AS n FROM recordings WHERE {where}",
                                 params).fetchone()["n"]
            oldest = conn.execute(
                f"""SELECT recording_id, deadline FROM recordings WHERE {where}
                    ORDER BY deadline, recording_id LIMIT 1""", params).fetchone()
        if oldest is None:
            return count, None
        return count, Late(oldest["recording_id"], parse_ts(oldest["deadline"]), None)

    def access_between(self, since: datetime, until: datetime) -> list[AccessEntry]:
        """Access-log entries of the period, in time order."""
        return select(self._engine,
                      "SELECT * FROM access_log WHERE at >= ? AND at < ? ORDER BY at, id",
                      (format_ts(since), format_ts(until)), AccessEntry._from_row)

    def unauthorized_between(self, since: datetime, until: datetime) -> list[UnauthorizedEntry]:
        """Recordings found started behind the guard's back in the period, in time order."""
        return select(self._engine,
                      "SELECT * FROM unauthorized WHERE at >= ? AND at < ? ORDER BY at, id",
                      (format_ts(since), format_ts(until)), UnauthorizedEntry._from_row)
