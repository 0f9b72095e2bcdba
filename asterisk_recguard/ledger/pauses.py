"""The pauses of a recording: when it was muted for card details, when it
came back, and what asked for each. A pause is written when it begins and
closed once when it ends; the schema refuses any other change."""

from __future__ import annotations

from datetime import datetime

from .codecs import check_recording_id, format_ts, utcnow
from .engine import Engine, select
from .recordings import get_recording
from .rows import PauseInterval

PAUSE_TRIGGERS = frozenset({"agent_key", "crm"})
# "stopped": the recording ended while muted (it stopped, or a failed unmute stopped it).
RESUME_TRIGGERS = PAUSE_TRIGGERS | {"hangup", "stopped"}


class PauseTable:
    """The ledger's methods on ``recording_pauses``."""

    _engine: Engine

    def pause_started(self, recording_id: str, *, by: str, at: datetime | None = None) -> PauseInterval:
        """Open a pause of the recording; an open one is kept as it is (a second pause is no new one)."""
        check_recording_id(recording_id)
        if by not in PAUSE_TRIGGERS:
            raise ValueError(f"a pause is begun by one of {sorted(PAUSE_TRIGGERS)}, not {by!r}")
        with self._engine.transaction() as conn:
            get_recording(conn, recording_id)
            row = conn.execute("SELECT * FROM recording_pauses WHERE recording_id = ? AND resumed_at IS NULL",
                               (recording_id,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO recording_pauses (recording_id, paused_at, paused_by) VALUES (?, ?, ?)",
                    (recording_id, format_ts(at or utcnow()), by))
                # The one open pause of the recording: the row just written, on either engine.
                row = conn.execute("SELECT * FROM recording_pauses WHERE recording_id = ? AND resumed_at IS NULL",
                                   (recording_id,)).fetchone()
            return PauseInterval._from_row(row)

    def pauses_closed(self, recording_id: str, *, by: str, at: datetime | None = None) -> list[PauseInterval]:
        """Close the recording's open pause, if any; the pauses closed now."""
        if by not in RESUME_TRIGGERS:
            raise ValueError(f"a pause is ended by one of {sorted(RESUME_TRIGGERS)}, not {by!r}")
        with self._engine.transaction() as conn:
            rows = conn.execute("SELECT id FROM recording_pauses WHERE recording_id = ? AND resumed_at IS NULL",
                                (recording_id,)).fetchall()
            ids = [row["id"] for row in rows]
            when = format_ts(at or utcnow())
            for pause_id in ids:
                # Never before its start: clocks of two threads may disagree by a hair.
                # Never before its start (a clock step back): CASE, as both engines write it.
                conn.execute("UPDATE recording_pauses SET resumed_at = CASE WHEN paused_at > ? THEN paused_at "
                             "ELSE ? END, resumed_by = ? WHERE id = ?", (when, when, by, pause_id))
            return [PauseInterval._from_row(conn.execute("SELECT * FROM recording_pauses WHERE id = ?",
                                                         (pause_id,)).fetchone()) for pause_id in ids]

    def pauses(self, recording_id: str) -> list[PauseInterval]:
        """The recording's pauses in the order they began."""
        return select(self._engine, "SELECT * FROM recording_pauses WHERE recording_id = ? ORDER BY id",
                      (recording_id,), PauseInterval._from_row)
