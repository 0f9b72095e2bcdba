"""Reading one period back: the calls, decisions, deletions and journal
entries between two moments, for the data-protection officer's report.
Read-only queries, each one transaction."""

from __future__ import annotations

from datetime import datetime

from .codecs import format_ts, parse_ts
from .engine import Engine, select
from .rows import AccessEntry, Call, DecisionRecord, Recording, UnauthorizedEntry


class PeriodReads:
    """The ledger's methods that read a period ``[since, until)``."""

    _engine: Engine

    def calls_started_between(self, since: datetime, until: datetime) -> list[Call]:
        """Calls the gate first saw in the period, oldest first."""
        return select(self._engine,
                      """SELECT * FROM calls WHERE started_at >= ? AND started_at < ?
                         ORDER BY started_at, call_id""",
                      (format_ts(since), format_ts(until)), Call._from_row)

    def decisions_of_calls_started_between(self, since: datetime,
                                           until: datetime) -> list[DecisionRecord]:
        """Every decision, whenever made, about the calls that started in the
        period, by call and then in order: a call is counted in the period it
        started in, with all it came to."""
        return select(self._engine,
                      """SELECT d.* FROM decisions d JOIN calls c ON c.call_id = d.call_id
                         WHERE c.started_at >= ? AND c.started_at < ?
                         ORDER BY d.call_id, d.id""",
                      (format_ts(since), format_ts(until)), DecisionRecord._from_row)

    def policies_used_between(self, since: datetime,
                              until: datetime) -> list[tuple[str, datetime, datetime, int]]:
        """Each policy label decisions were made under in the period, with its
        first and last use and how many decisions, in order of first use."""
        with self._engine.transaction(write=False) as conn:
            rows = conn.execute(
                """SELECT policy, min(at) AS first, max(at) AS last, count(*) AS n
                   FROM decisions WHERE at >= ? AND at < ?
                   GROUP BY policy ORDER BY first, policy""",
                (format_ts(since), format_ts(until)),
            ).fetchall()
        return [(r["policy"], parse_ts(r["first"]), parse_ts(r["last"]), r["n"]) for r in rows]

    def recordings_deleted_between(self, since: datetime, until: datetime) -> list[Recording]:
        """Recordings whose deletion was confirmed in the period, in that order."""
        return select(self._engine,
                      """SELECT * FROM recordings
                         WHERE status = 'deleted' AND deleted_at >= ? AND deleted_at < ?
                         ORDER BY deleted_at, recording_id""",
                      (format_ts(since), format_ts(until)), Recording._from_row)

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
