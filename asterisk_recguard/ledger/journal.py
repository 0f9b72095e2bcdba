"""The append-only journals: who accessed, exported, held or erased which
recording and why (the access log), and which recordings were started behind
the guard's back (the unauthorized log). Every row is hash-chained (chain.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from .chain import Chain
from .codecs import check_text, format_ts, to_json, utcnow
from .engine import Engine
from .rows import AccessEntry, UnauthorizedEntry

ACCESS_ACTIONS = frozenset({"export", "erase", "hold", "release", "purge", "access", "delete"})
UNAUTHORIZED_ACTIONS = frozenset({"stopped_deleted", "stopped_file_kept", "logged_only"})


def _since(since: datetime | None) -> tuple[str, tuple[Any, ...]]:
    if since is None:
        return "", ()
    return "WHERE at >= ?", (format_ts(since),)


class Journal:
    """The ledger's methods on the access and unauthorized logs."""

    _engine: Engine
    _chain: Chain
    server_id: str | None

    def log_access(self, *, actor: str, action: str, reason: str, recording_id: str | None = None,
                   call_id: str | None = None, detail: Mapping[str, Any] | None = None,
                   at: datetime | None = None) -> int:
        """Append who did what to which recording and why. A reason is mandatory."""
        check_text(actor, "actor")
        check_text(reason, "reason")
        if action not in ACCESS_ACTIONS:
            raise ValueError(f"action must be one of {sorted(ACCESS_ACTIONS)}, not {action!r}")
        detail_json = to_json(detail or {}, "detail")
        when = format_ts(at or utcnow())
        with self._engine.transaction() as conn:
            return self._chain.append(conn, "access_log", {
                "at": when, "actor": actor, "action": action, "recording_id": recording_id,
                "call_id": call_id, "reason": reason, "detail": detail_json,
                "server_id": self.server_id,
            })

    def access_log(self, *, limit: int | None = None,
                   since: datetime | None = None) -> list[AccessEntry]:
        """Access entries in time order; with ``limit``, the most recent ones."""
        return [AccessEntry._from_row(r) for r in reversed(self._latest("access_log", limit, since))]

    def log_unauthorized(self, *, channel: str, action: str, call_id: str | None = None,
                         file: str | Path | None = None, started_by: str | None = None,
                         at: datetime | None = None) -> int:
        """Append a recording that was started behind the guard's back."""
        check_text(channel, "channel")
        if action not in UNAUTHORIZED_ACTIONS:
            raise ValueError(
                f"action must be one of {sorted(UNAUTHORIZED_ACTIONS)}, not {action!r}"
            )
        when = format_ts(at or utcnow())
        with self._engine.transaction() as conn:
            return self._chain.append(conn, "unauthorized", {
                "at": when, "channel": channel, "call_id": call_id,
                "file": None if file is None else str(file), "started_by": started_by,
                "action": action,
            })

    def unauthorized_log(self, *, limit: int | None = None,
                         since: datetime | None = None) -> list[UnauthorizedEntry]:
        """Unauthorized recordings in time order; with ``limit``, the most recent ones."""
        rows = self._latest("unauthorized", limit, since)
        return [UnauthorizedEntry._from_row(r) for r in reversed(rows)]

    def _latest(self, table: str, limit: int | None, since: datetime | None) -> list[Any]:
        """An append-only table's rows since ``since``, the most recent ``limit`` of them,
        newest first (callers reverse them into time order)."""
        where, params = _since(since)
        with self._engine.transaction(write=False) as conn:
            return conn.execute(
                f"SELECT * FROM {table} {where} ORDER BY at DESC, id DESC"
                + (" LIMIT ?" if limit is not None else ""),
                (*params, *([limit] if limit is not None else [])),
            ).fetchall()
