"""The calls table and its append-only, hash-chained decisions: which
guarded calls are live, and what was decided for each, on which facts and why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..lifecycle import CallStatus
from .chain import Chain
from .codecs import (
    check_hash,
    check_recording_id,
    check_text,
    format_ts,
    purpose_names,
    to_json,
    utcnow,
)
from .engine import Connection, Engine, select
from .exceptions import UnknownRecord
from .rows import Call, DecisionRecord
from .servers import scoped

DECISION_ACTIONS = frozenset({"start", "keep", "stop", "none", "delete"})


def get_call(conn: Connection, call_id: str) -> Call:
    """The call, or :class:`UnknownRecord`."""
    row = conn.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    if row is None:
        raise UnknownRecord(f"no call {call_id!r} in the ledger")
    return Call._from_row(row)


def require_call(conn: Connection, call_id: str) -> None:
    """:class:`UnknownRecord` unless the call is in the ledger (no row read: a gate's writes check it)."""
    if conn.execute("SELECT 1 FROM calls WHERE call_id = ?", (call_id,)).fetchone() is None:
        raise UnknownRecord(f"no call {call_id!r} in the ledger")


class CallTable:
    """The ledger's methods on calls and decisions."""

    _engine: Engine
    _chain: Chain
    server_id: str | None

    def upsert_call_start(self, call_id: str, *, channel: str, started_at: datetime | None = None,
                          linkedid: str | None = None, caller_hash: str | None = None,
                          facts: Mapping[str, Any] | None = None) -> None:
        """Record that a guarded call is live. Called again for the same call
        (a transfer through the gate, a reconcile after restart) it updates the
        channel, linkedid, caller hash and facts and keeps the first start and
        server (an unowned call gets this ledger's server id). Nothing is read
        back: every gate writes this, and :meth:`call` reads it."""
        check_text(call_id, "call_id")
        check_text(channel, "channel")
        if caller_hash is not None:
            check_hash(caller_hash)
        started = format_ts(started_at or utcnow())
        facts_json = None if facts is None else to_json(facts, "facts")
        with self._engine.transaction() as conn:
            conn.execute(
                """INSERT INTO calls (call_id, channel, linkedid, caller_hash, started_at,
                                      last_facts, status, server_id)
                   VALUES (?, ?, ?, ?, ?, coalesce(?, '{}'), ?, ?)
                   ON CONFLICT (call_id) DO UPDATE SET
                       channel = excluded.channel,
                       server_id = coalesce(calls.server_id, excluded.server_id),
                       linkedid = coalesce(excluded.linkedid, calls.linkedid),
                       caller_hash = coalesce(excluded.caller_hash, calls.caller_hash),
                       last_facts = coalesce(?, calls.last_facts)""",
                (call_id, channel, linkedid, caller_hash, started, facts_json,
                 CallStatus.LIVE.value, self.server_id, facts_json),
            )

    def record_decision(self, call_id: str, *, trigger: str, facts: Mapping[str, Any],
                        record: bool, purposes: Iterable[str], rejected: Any, policy: str,
                        action: str, retention_days: int | None = None,
                        recording_id: str | None = None, at: datetime | None = None) -> int:
        """Append one decision (with the facts it was made on and the rejected
        purposes with their reasons) and make its facts the call's latest.
        Returns the decision's id."""
        check_text(trigger, "trigger")
        check_text(policy, "policy")
        if action not in DECISION_ACTIONS:
            raise ValueError(f"action must be one of {sorted(DECISION_ACTIONS)}, not {action!r}")
        if recording_id is not None:
            check_recording_id(recording_id)
        if retention_days is not None and (
                not isinstance(retention_days, int) or retention_days < 0):
            raise ValueError("retention_days must be a non-negative integer or None")
        facts_json = to_json(facts, "facts")
        purposes_json = to_json(purpose_names(purposes), "purposes")
        rejected_json = to_json(rejected, "rejected")
        when = format_ts(at or utcnow())
        with self._engine.transaction() as conn:
            # The facts become the call's latest; no row changed: no such call.
            if conn.execute("UPDATE calls SET last_facts = ? WHERE call_id = ?",
                            (facts_json, call_id)).rowcount == 0:
                raise UnknownRecord(f"no call {call_id!r} in the ledger")
            return self._chain.append(conn, "decisions", {
                "call_id": call_id, "at": when, "trigger": trigger, "facts": facts_json,
                "record": int(bool(record)), "purposes": purposes_json, "rejected": rejected_json,
                "retention_days": retention_days, "policy": policy, "action": action,
                "recording_id": recording_id,
            })

    def end_call(self, call_id: str, *, ended_at: datetime | None = None,
                 facts: Mapping[str, Any] | None = None) -> Call:
        """Mark the call ended (idempotent: a second hangup keeps the first end)."""
        ended = format_ts(ended_at or utcnow())
        facts_json = None if facts is None else to_json(facts, "facts")
        with self._engine.transaction() as conn:
            require_call(conn, call_id)
            conn.execute(
                """UPDATE calls SET ended_at = coalesce(ended_at, ?), status = ?,
                                    last_facts = coalesce(?, last_facts)
                   WHERE call_id = ?""",
                (ended, CallStatus.ENDED.value, facts_json, call_id),
            )
            return get_call(conn, call_id)

    def call(self, call_id: str) -> Call | None:
        with self._engine.transaction(write=False) as conn:
            row = conn.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
            return None if row is None else Call._from_row(row)

    def live_calls(self, *, server_id: str | None = None) -> list[Call]:
        """Calls not yet ended, oldest first (for reconciliation after a
        restart); with ``server_id``, that server's only."""
        only, params = scoped(server_id)
        return select(self._engine,
                      f"SELECT * FROM calls WHERE status = ?{only} ORDER BY started_at, call_id",
                      (CallStatus.LIVE.value, *params), Call._from_row)

    def decisions_for_call(self, call_id: str) -> list[DecisionRecord]:
        return select(self._engine, "SELECT * FROM decisions WHERE call_id = ? ORDER BY id",
                      (call_id,), DecisionRecord._from_row)
