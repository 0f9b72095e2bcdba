"""The ledger: recguard's durable record of every call, decision, recording,
deletion and access, in one SQLite file.

It is the accountability record the GDPR asks for (art. 5(2), 7(1), 30):
what was decided for each call and why, which recordings exist, for which
purposes and until when, who exported, held or erased what, and which
recordings were started behind the guard's back. SQLite (stdlib) because it
needs no server on the Asterisk host and, in WAL mode with synchronous=FULL,
survives a killed process or a power cut with every committed transaction.

Rules this package enforces so that callers cannot get them wrong:

* A ledger is opened, never made, by ``Ledger(path)``: a missing or empty
  file is a ledger lost, and is refused with what to restore. Only
  :meth:`Ledger.create` makes one, and not while the recordings directory
  holds recordings it would know nothing of.

* Caller numbers are never stored: only a keyed hash, and ``caller_hash`` must
  look like one (64 lowercase hex digits). JSON fields (facts, details)
  holding a key named like a caller number are refused.
* Recording ids are the guard's uuid4 hex (32 lowercase hex digits), never
  caller-controlled text.
* A recording always has at least one purpose, each with a legal basis.
* A held recording cannot be deleted; release the hold first.
* Deletion is two-step: :meth:`Ledger.mark_deleting` before the file is
  unlinked, :meth:`Ledger.mark_deleted` after (and only after: a recording
  moves only as :mod:`asterisk_recguard.lifecycle` allows);
  :meth:`Ledger.pending_deletions` lists what an interrupted purge or delete
  left to finish. A purge does the same for up to :data:`MAX_BATCH`
  recordings per transaction (:meth:`Ledger.mark_deleting_expired`,
  :meth:`Ledger.mark_deleted_many`).
* ``decisions``, ``access_log`` and ``unauthorized`` are append-only
  (triggers refuse UPDATE and DELETE) and tamper-evident: each row is
  hash-chained to the one before it and sealed with RECGUARD_HASH_SECRET
  (:mod:`.chain`); :meth:`Ledger.verify_chains` names the first broken row.

Timestamps are timezone-aware UTC datetimes in the API and ISO-8601 text
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in the file, which sorts as time does.

One connection is shared by all threads (the guard calls in from its ARI and
AMI threads), serialised by a re-entrant lock; every public method is one
transaction.

The package: :mod:`.face` (the Ledger), :mod:`.engine` (what a database must
offer), :mod:`.sqlite` (the embedded one) and :mod:`.postgres` (a PostgreSQL
database instead, selected by a ``postgresql://`` URL; :mod:`.copying` moves a
file's ledger into one), :mod:`.schema` (tables and migrations), :mod:`.rows` (what comes back), :mod:`.codecs` (timestamps, JSON,
checks), :mod:`.chain` (the hash chain), and one module per group of tables: :mod:`.calls`,
:mod:`.recordings` (every status change goes through its ``set_status``),
:mod:`.batches`, :mod:`.listings`, :mod:`.journal`, :mod:`.pauses`, :mod:`.period`;
:mod:`.servers` scopes the lists to one server of a ledger several share.

Public API (all keyword arguments after the first are keyword-only)::

    Ledger(path, *, seal_secret=None, server_id=None); .close(); with Ledger(path) as ledger: ...
                                      (an existing ledger only; server_id written on new rows)
    Ledger.create(path, *, recordings_dir, seal_secret=None, server_id=None) -> Ledger
                                      (a new one; never over recordings)
    .path; .schema_version; .server_id
    verify_chains() -> ChainReport (.breaks: list[Break], .heads: dict[str, Head])
    upsert_call_start(call_id, *, channel, started_at=None, linkedid=None,
                      caller_hash=None, facts=None) -> None
    record_decision(call_id, *, trigger, facts, record, purposes, rejected,
                    policy, action, retention_days=None, recording_id=None,
                    at=None) -> int
    end_call(call_id, *, ended_at=None, facts=None) -> Call
    call(call_id) -> Call | None;  live_calls(*, server_id=None) -> list[Call]
    decisions_for_call(call_id) -> list[DecisionRecord]
    recording_started(recording_id, *, call_id, channel, path, purposes,
                      bases, started_at=None, mixmonitor_id=None) -> None
    set_mixmonitor_id(recording_id, mixmonitor_id) -> None
                      (the gate's writes: nothing read back, call() and recording() read)
    update_recording_purposes(recording_id, purposes, bases, *, reason,
                              at=None) -> Recording
    purpose_history(recording_id) -> list[PurposeChange]
    recording_stopped(recording_id, *, stopped_at=None) -> Recording
    recording_finalized(recording_id, *, size_bytes, duration_s, sha256,
                        deadline, stored_path=None, key_id=None,
                        finalized_at=None) -> Recording
    mark_deleting(recording_id, *, reason, actor=None, at=None) -> Recording
    mark_deleted(recording_id, *, reason=None, actor=None, at=None) -> Recording
    mark_deleting_expired(recording_ids, *, now, reason, actor, at) -> list[str]
    mark_deleted_many(recording_ids, *, at) -> None
    pending_deletions(*, server_id=None) -> list[Recording]   (and active_recordings, expired,
                                      held_recordings: with server_id, that server's only)
    recordings(*, statuses=None) -> list[Recording]
    recording(recording_id) -> Recording | None
    recordings_for_call(call_id) -> list[Recording]
    active_recordings(*, server_id=None) -> list[Recording]
    expired(now, *, server_id=None) -> list[Recording]
    held_recordings(*, past_deadline_at=None, server_id=None) -> list[Recording]
    claim_unowned(server_id) -> int;  server_ids() -> list[str]   (servers.py)
    set_hold(recording_id, *, reason, actor, at=None) -> Recording
    release_hold(recording_id, *, actor, at=None) -> Recording
    recordings_by_caller_hash(caller_hash, *, include_deleted=False) -> list[Recording]
    known_paths() -> frozenset[str]
    log_access(*, actor, action, reason, recording_id=None, call_id=None,
               detail=None, at=None) -> int
    access_log(*, limit=None, since=None) -> list[AccessEntry]
    log_unauthorized(*, channel, action, call_id=None, file=None,
                     started_by=None, at=None) -> int
    unauthorized_log(*, limit=None, since=None) -> list[UnauthorizedEntry]
    pause_started(recording_id, *, by, at=None) -> PauseInterval   (an open one is returned as it is)
    pauses_closed(recording_id, *, by, at=None) -> list[PauseInterval]
    pauses(recording_id) -> list[PauseInterval]
    calls_started_between(since, until) -> list[(call_id, started_at)]   (period.py: the report)
    decisions_of_calls(call_ids) -> list[DecisionRecord]
    policies_used_between(since, until) -> list[PolicyUse]
    deletions_between(since, until) -> list[DeletionCount]
    deleted_late_between(since, until) -> list[Late]
    kept_counts() -> list[KeptCount];  overdue(now) -> (count, Late | None)
    access_between(since, until) -> list[AccessEntry]
    unauthorized_between(since, until) -> list[UnauthorizedEntry]
"""

from __future__ import annotations

from .batches import MAX_BATCH
from .calls import DECISION_ACTIONS
from .chain import Break, ChainReport, Head
from .codecs import format_ts, parse_ts, utcnow
from .exceptions import InvalidTransition, RecordingHeld, UnknownRecord
from .face import Ledger
from .journal import ACCESS_ACTIONS, UNAUTHORIZED_ACTIONS
from .listings import RECORDING_STATUSES
from .pauses import PAUSE_TRIGGERS, RESUME_TRIGGERS
from .period import DeletionCount, KeptCount, Late, PolicyUse
from .rows import AccessEntry, Call, DecisionRecord, PauseInterval, PurposeChange, Recording, UnauthorizedEntry
from .schema import MIGRATIONS, SCHEMA_VERSION, _split_sql

__all__ = [
    "ACCESS_ACTIONS",
    "DECISION_ACTIONS",
    "MAX_BATCH",
    "MIGRATIONS",
    "PAUSE_TRIGGERS",
    "RECORDING_STATUSES",
    "RESUME_TRIGGERS",
    "SCHEMA_VERSION",
    "UNAUTHORIZED_ACTIONS",
    "AccessEntry",
    "Break",
    "Call",
    "ChainReport",
    "DecisionRecord",
    "DeletionCount",
    "Head",
    "InvalidTransition",
    "KeptCount",
    "Late",
    "Ledger",
    "PauseInterval",
    "PolicyUse",
    "PurposeChange",
    "Recording",
    "RecordingHeld",
    "UnauthorizedEntry",
    "UnknownRecord",
    "_split_sql",
    "format_ts",
    "parse_ts",
    "utcnow",
]
