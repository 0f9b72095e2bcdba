"""The ledger: recguard's durable record of every call, decision, recording,
deletion and access, in one SQLite file.

It is the accountability record the GDPR asks for (art. 5(2), 7(1), 30):
what was decided for each call and why, which recordings exist, for which
purposes and until when, who exported, held or erased what, and which
recordings were started behind the guard's back. SQLite (stdlib) because it
needs no server on the Asterisk host and, in WAL mode with synchronous=FULL,
survives a killed process or a power cut with every committed transaction.

Rules this module enforces so that callers cannot get them wrong:

* Caller numbers are never stored: only a keyed hash, and ``caller_hash`` must
  look like one (64 lowercase hex digits). JSON fields (facts, details)
  holding a key named like a caller number are refused.
* Recording ids are the guard's uuid4 hex (32 lowercase hex digits), never
  caller-controlled text.
* A recording always has at least one purpose, each with a legal basis.
* A held recording cannot be deleted; release the hold first.
* Deletion is two-step: :meth:`Ledger.mark_deleting` before the file is
  unlinked, :meth:`Ledger.mark_deleted` after; :meth:`Ledger.pending_deletions`
  lists what an interrupted purge or delete left to finish. A purge does the
  same for up to :data:`MAX_BATCH` recordings per transaction
  (:meth:`Ledger.mark_deleting_expired`, :meth:`Ledger.mark_deleted_many`).
* ``decisions``, ``access_log`` and ``unauthorized`` are append-only
  (triggers refuse UPDATE and DELETE).

Timestamps are timezone-aware UTC datetimes in the API and ISO-8601 text
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in the file, which sorts as time does.

One connection is shared by all threads (the guard calls in from its ARI and
AMI threads), serialised by a re-entrant lock; every public method is one
transaction.

Public API (all keyword arguments after the first are keyword-only)::

    Ledger(path); .close(); with Ledger(path) as ledger: ...
    .path; .schema_version
    upsert_call_start(call_id, *, channel, started_at=None, linkedid=None,
                      caller_hash=None, facts=None) -> Call
    record_decision(call_id, *, trigger, facts, record, purposes, rejected,
                    policy, action, retention_days=None, recording_id=None,
                    at=None) -> int
    end_call(call_id, *, ended_at=None, facts=None) -> Call
    call(call_id) -> Call | None;  live_calls() -> list[Call]
    decisions_for_call(call_id) -> list[DecisionRecord]
    recording_started(recording_id, *, call_id, channel, path, purposes,
                      bases, started_at=None, mixmonitor_id=None) -> Recording
    set_mixmonitor_id(recording_id, mixmonitor_id) -> Recording
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
    pending_deletions() -> list[Recording]
    recordings(*, statuses=None) -> list[Recording]
    recording(recording_id) -> Recording | None
    recordings_for_call(call_id) -> list[Recording]
    active_recordings() -> list[Recording]
    expired(now) -> list[Recording]
    held_recordings(*, past_deadline_at=None) -> list[Recording]
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
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from ._redact import find_caller_number_key
from .errors import UserError

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_HASH_RE = re.compile(r"[0-9a-f]{64}")
_RECORDING_ID_RE = re.compile(r"[0-9a-f]{32}")

DECISION_ACTIONS = frozenset({"start", "keep", "stop", "none", "delete"})
ACCESS_ACTIONS = frozenset({"export", "erase", "hold", "release", "purge", "access", "delete"})
UNAUTHORIZED_ACTIONS = frozenset({"stopped_deleted", "stopped_file_kept", "logged_only"})
RECORDING_STATUSES = ("recording", "stopped", "finalized", "deleting", "deleted")

# Recordings per batch deletion; far below SQLite's limit on bound parameters
# (999 in old builds).
MAX_BATCH = 500


class InvalidTransition(ValueError):
    """The recording is not in a state that allows this change."""


class RecordingHeld(InvalidTransition):
    """The recording is under legal hold and must not be deleted."""


class UnknownRecord(KeyError):
    """No call or recording with that id."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


# --- time and JSON ---------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def format_ts(value: datetime) -> str:
    """A timezone-aware datetime as the ledger's sortable UTC text."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware UTC datetime")
    return value.astimezone(timezone.utc).strftime(_TS_FORMAT)


def parse_ts(text: str) -> datetime:
    """The ledger's UTC text back into an aware datetime."""
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=timezone.utc)


def _opt_ts(text: str | None) -> datetime | None:
    return None if text is None else parse_ts(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _to_json(value: Any, what: str) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)
    # Checked on the serialised form, so that nested dataclasses and mappings
    # are covered too.
    bad = find_caller_number_key(json.loads(text))
    if bad:
        raise ValueError(
            f"{what} has a field {bad!r} that could hold a caller number in clear; "
            "store only the keyed hash (caller_hash)"
        )
    return text


def _check_hash(caller_hash: str) -> str:
    if not isinstance(caller_hash, str) or not _HASH_RE.fullmatch(caller_hash):
        raise ValueError(
            "caller_hash must be the 64-character lowercase hex HMAC of the number, "
            "never the number itself"
        )
    return caller_hash


def _check_recording_id(recording_id: str) -> str:
    if not isinstance(recording_id, str) or not _RECORDING_ID_RE.fullmatch(recording_id):
        raise ValueError("recording_id must be a uuid4 hex string (32 lowercase hex digits)")
    return recording_id


def _check_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    return value


def _purposes(purposes: Iterable[str]) -> list[str]:
    if isinstance(purposes, str):
        raise TypeError("purposes must be a list of purpose names, not one string")
    out: list[str] = []
    for purpose in purposes:
        _check_text(purpose, "each purpose")
        if purpose not in out:
            out.append(purpose)
    return out


def _batch_placeholders(count: int) -> str:
    """``?,?,...`` for an IN list of ``count`` ids, refusing an empty batch
    (invalid SQL) and one over MAX_BATCH (past the bound-parameter limit)."""
    if not 0 < count <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} recordings, not {count}")
    return ",".join("?" * count)


def _recording_purposes(
    purposes: Iterable[str], bases: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    names = _purposes(purposes)
    if not names:
        raise ValueError("a recording needs at least one purpose; delete it instead")
    basis_map = dict(bases)
    if set(basis_map) != set(names):
        raise ValueError(
            f"bases must name a legal basis for exactly the purposes {names}, "
            f"got bases for {sorted(basis_map)}"
        )
    for purpose, basis in basis_map.items():
        _check_text(basis, f"the basis of {purpose}")
    return names, basis_map


# --- rows --------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    call_id: str
    channel: str
    linkedid: str | None
    caller_hash: str | None
    started_at: datetime
    ended_at: datetime | None
    last_facts: dict[str, Any]
    status: str  # 'live' | 'ended'

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Call:
        return cls(
            call_id=row["call_id"], channel=row["channel"], linkedid=row["linkedid"],
            caller_hash=row["caller_hash"], started_at=parse_ts(row["started_at"]),
            ended_at=_opt_ts(row["ended_at"]), last_facts=json.loads(row["last_facts"]),
            status=row["status"],
        )


@dataclass(frozen=True)
class DecisionRecord:
    id: int
    call_id: str
    at: datetime
    trigger: str
    facts: dict[str, Any]
    record: bool
    purposes: list[str]
    rejected: Any
    retention_days: int | None
    policy: str
    action: str
    recording_id: str | None

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> DecisionRecord:
        return cls(
            id=row["id"], call_id=row["call_id"], at=parse_ts(row["at"]), trigger=row["trigger"],
            facts=json.loads(row["facts"]), record=bool(row["record"]),
            purposes=json.loads(row["purposes"]), rejected=json.loads(row["rejected"]),
            retention_days=row["retention_days"], policy=row["policy"], action=row["action"],
            recording_id=row["recording_id"],
        )


@dataclass(frozen=True)
class Recording:
    recording_id: str
    call_id: str
    channel: str
    path: str
    mixmonitor_id: str | None
    purposes: list[str]
    bases: dict[str, str]
    started_at: datetime
    stopped_at: datetime | None
    finalized_at: datetime | None
    deadline: datetime | None
    size_bytes: int | None
    duration_s: float | None
    sha256: str | None
    stored_path: str | None
    key_id: str | None
    deleted_at: datetime | None
    deletion_reason: str | None
    deleted_by: str | None
    hold_reason: str | None
    held_at: datetime | None
    held_by: str | None
    status: str  # one of RECORDING_STATUSES

    @property
    def held(self) -> bool:
        return self.hold_reason is not None

    @property
    def file_path(self) -> str:
        """Where the recording lives now: the ciphertext if encrypted, else the WAV."""
        return self.stored_path or self.path

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Recording:
        return cls(
            recording_id=row["recording_id"], call_id=row["call_id"], channel=row["channel"],
            path=row["path"], mixmonitor_id=row["mixmonitor_id"],
            purposes=json.loads(row["purposes"]), bases=json.loads(row["bases"]),
            started_at=parse_ts(row["started_at"]), stopped_at=_opt_ts(row["stopped_at"]),
            finalized_at=_opt_ts(row["finalized_at"]), deadline=_opt_ts(row["deadline"]),
            size_bytes=row["size_bytes"], duration_s=row["duration_s"], sha256=row["sha256"],
            stored_path=row["stored_path"], key_id=row["key_id"],
            deleted_at=_opt_ts(row["deleted_at"]), deletion_reason=row["deletion_reason"],
            deleted_by=row["deleted_by"], hold_reason=row["hold_reason"],
            held_at=_opt_ts(row["held_at"]), held_by=row["held_by"], status=row["status"],
        )


@dataclass(frozen=True)
class PurposeChange:
    recording_id: str
    at: datetime
    purposes: list[str]
    bases: dict[str, str]
    reason: str


@dataclass(frozen=True)
class AccessEntry:
    id: int
    at: datetime
    actor: str
    action: str
    recording_id: str | None
    call_id: str | None
    reason: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class UnauthorizedEntry:
    id: int
    at: datetime
    channel: str
    call_id: str | None
    file: str | None
    started_by: str | None
    action: str


# --- schema --------------------------------------------------------------------
# Each entry upgrades the schema by one version; PRAGMA user_version records
# how many have been applied. Append new entries; never edit an applied one.

_APPEND_ONLY = ("decisions", "access_log", "unauthorized")

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema
    """
    CREATE TABLE calls (
        call_id     TEXT PRIMARY KEY,
        channel     TEXT NOT NULL,
        linkedid    TEXT,
        caller_hash TEXT CHECK (caller_hash IS NULL OR
                                (length(caller_hash) = 64 AND caller_hash NOT GLOB '*[^0-9a-f]*')),
        started_at  TEXT NOT NULL,
        ended_at    TEXT,
        last_facts  TEXT NOT NULL DEFAULT '{}',
        status      TEXT NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'ended'))
    );
    CREATE INDEX calls_status ON calls (status);
    CREATE INDEX calls_caller_hash ON calls (caller_hash);

    CREATE TABLE decisions (
        id             INTEGER PRIMARY KEY,
        call_id        TEXT NOT NULL REFERENCES calls (call_id),
        at             TEXT NOT NULL,
        trigger        TEXT NOT NULL,
        facts          TEXT NOT NULL,
        record         INTEGER NOT NULL CHECK (record IN (0, 1)),
        purposes       TEXT NOT NULL,
        rejected       TEXT NOT NULL,
        retention_days INTEGER,
        policy         TEXT NOT NULL,
        action         TEXT NOT NULL CHECK (action IN ('start', 'keep', 'stop', 'none', 'delete')),
        recording_id   TEXT
    );
    CREATE INDEX decisions_call ON decisions (call_id, id);

    CREATE TABLE recordings (
        recording_id    TEXT PRIMARY KEY,
        call_id         TEXT NOT NULL REFERENCES calls (call_id),
        channel         TEXT NOT NULL,
        path            TEXT NOT NULL UNIQUE,
        mixmonitor_id   TEXT,
        purposes        TEXT NOT NULL,
        bases           TEXT NOT NULL,
        started_at      TEXT NOT NULL,
        stopped_at      TEXT,
        finalized_at    TEXT,
        deadline        TEXT,
        size_bytes      INTEGER,
        duration_s      REAL,
        sha256          TEXT,
        stored_path     TEXT,
        key_id          TEXT,
        deleted_at      TEXT,
        deletion_reason TEXT,
        deleted_by      TEXT,
        hold_reason     TEXT,
        held_at         TEXT,
        held_by         TEXT,
        status          TEXT NOT NULL CHECK (status IN
                            ('recording', 'stopped', 'finalized', 'deleting', 'deleted'))
    );
    CREATE INDEX recordings_call ON recordings (call_id);
    CREATE INDEX recordings_status_deadline ON recordings (status, deadline);

    CREATE TABLE purpose_history (
        id           INTEGER PRIMARY KEY,
        recording_id TEXT NOT NULL REFERENCES recordings (recording_id),
        at           TEXT NOT NULL,
        purposes     TEXT NOT NULL,
        bases        TEXT NOT NULL,
        reason       TEXT NOT NULL
    );
    CREATE INDEX purpose_history_recording ON purpose_history (recording_id, id);

    CREATE TABLE access_log (
        id           INTEGER PRIMARY KEY,
        at           TEXT NOT NULL,
        actor        TEXT NOT NULL,
        action       TEXT NOT NULL CHECK (action IN
                         ('export', 'erase', 'hold', 'release', 'purge', 'access', 'delete')),
        recording_id TEXT,
        call_id      TEXT,
        reason       TEXT NOT NULL,
        detail       TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX access_log_at ON access_log (at);

    CREATE TABLE unauthorized (
        id         INTEGER PRIMARY KEY,
        at         TEXT NOT NULL,
        channel    TEXT NOT NULL,
        call_id    TEXT,
        file       TEXT,
        started_by TEXT,
        action     TEXT NOT NULL CHECK (action IN ('stopped_deleted', 'logged_only'))
    );
    """
    + "".join(
        f"""
    CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
    CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
    """
        for table in _APPEND_ONLY
    ),

    # 2: an unauthorized recording recguard stopped but whose file it could
    # not reach (outside its directories) is recorded as such, not as deleted.
    """
    CREATE TABLE unauthorized_v2 (
        id         INTEGER PRIMARY KEY,
        at         TEXT NOT NULL,
        channel    TEXT NOT NULL,
        call_id    TEXT,
        file       TEXT,
        started_by TEXT,
        action     TEXT NOT NULL
                   CHECK (action IN ('stopped_deleted', 'stopped_file_kept', 'logged_only'))
    );
    INSERT INTO unauthorized_v2 SELECT id, at, channel, call_id, file, started_by, action FROM unauthorized;
    DROP TABLE unauthorized;
    ALTER TABLE unauthorized_v2 RENAME TO unauthorized;
    CREATE TRIGGER unauthorized_no_update BEFORE UPDATE ON unauthorized
        BEGIN SELECT RAISE(ABORT, 'unauthorized is append-only'); END;
    CREATE TRIGGER unauthorized_no_delete BEFORE DELETE ON unauthorized
        BEGIN SELECT RAISE(ABORT, 'unauthorized is append-only'); END;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def _make_private_dirs(directory: Path) -> None:
    """Create missing parent directories with mode 0700 (the umask cannot widen it)."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)


# --- the ledger -------------------------------------------------------------------


class Ledger:
    """The SQLite ledger; see the module docstring for the rules and the API."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = self._open()

    # -- opening and closing --

    def _fail(self, what: str) -> UserError:
        return UserError(
            f"ledger {self.path} {what}; restore it from a backup or set RECGUARD_LEDGER "
            "to another path"
        )

    def _open(self) -> sqlite3.Connection:
        path = self.path
        if path.is_dir():
            raise self._fail("is a directory, not a file")
        try:
            _make_private_dirs(path.parent)
            if not path.exists():
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    os.close(fd)
                except FileExistsError:
                    pass
        except OSError as exc:
            raise UserError(
                f"ledger {path} cannot be created: {exc.strerror}; create its directory "
                "or set RECGUARD_LEDGER to a writable path"
            ) from None

        try:
            conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._fail(f"cannot be opened ({exc})") from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 5000")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UserError(
                    f"ledger {path} has schema version {version}, but this recguard knows "
                    f"versions up to {SCHEMA_VERSION}; it was written by a newer recguard — "
                    "upgrade recguard (never downgrade against a newer ledger)"
                )
            if version == 0:
                tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                ).fetchone()[0]
                if tables:
                    raise self._fail(
                        "is an SQLite database of another program, not a recguard ledger"
                    )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn, version)
        except UserError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._fail(f"is not a usable recguard ledger ({exc})") from None
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection, version: int) -> None:
        for number in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-check inside the lock: another process may have migrated.
                if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                    conn.execute("COMMIT")
                    continue
                for statement in _split_sql(MIGRATIONS[number - 1]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._require().execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"ledger {self.path} is closed")
        return self._conn

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock. IMMEDIATE for writes so that a
        second process (a CLI purge next to the daemon) waits at BEGIN rather
        than failing half-way."""
        with self._lock:
            conn = self._require()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    # -- calls and decisions --

    @staticmethod
    def _get_call(conn: sqlite3.Connection, call_id: str) -> Call:
        row = conn.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        if row is None:
            raise UnknownRecord(f"no call {call_id!r} in the ledger")
        return Call._from_row(row)

    def upsert_call_start(self, call_id: str, *, channel: str, started_at: datetime | None = None,
                          linkedid: str | None = None, caller_hash: str | None = None,
                          facts: Mapping[str, Any] | None = None) -> Call:
        """Record that a guarded call is live. Called again for the same call
        (a transfer through the gate, a reconcile after restart) it updates the
        channel, linkedid, caller hash and facts and keeps the first start."""
        _check_text(call_id, "call_id")
        _check_text(channel, "channel")
        if caller_hash is not None:
            _check_hash(caller_hash)
        started = format_ts(started_at or utcnow())
        facts_json = None if facts is None else _to_json(facts, "facts")
        with self._tx() as conn:
            conn.execute(
                """INSERT INTO calls (call_id, channel, linkedid, caller_hash, started_at,
                                      last_facts, status)
                   VALUES (?, ?, ?, ?, ?, coalesce(?, '{}'), 'live')
                   ON CONFLICT (call_id) DO UPDATE SET
                       channel = excluded.channel,
                       linkedid = coalesce(excluded.linkedid, linkedid),
                       caller_hash = coalesce(excluded.caller_hash, caller_hash),
                       last_facts = coalesce(?, last_facts)""",
                (call_id, channel, linkedid, caller_hash, started, facts_json, facts_json),
            )
            return self._get_call(conn, call_id)

    def record_decision(self, call_id: str, *, trigger: str, facts: Mapping[str, Any],
                        record: bool, purposes: Iterable[str], rejected: Any, policy: str,
                        action: str, retention_days: int | None = None,
                        recording_id: str | None = None, at: datetime | None = None) -> int:
        """Append one decision (with the facts it was made on and the rejected
        purposes with their reasons) and make its facts the call's latest.
        Returns the decision's id."""
        _check_text(trigger, "trigger")
        _check_text(policy, "policy")
        if action not in DECISION_ACTIONS:
            raise ValueError(f"action must be one of {sorted(DECISION_ACTIONS)}, not {action!r}")
        if recording_id is not None:
            _check_recording_id(recording_id)
        if retention_days is not None and (
                not isinstance(retention_days, int) or retention_days < 0):
            raise ValueError("retention_days must be a non-negative integer or None")
        facts_json = _to_json(facts, "facts")
        purposes_json = _to_json(_purposes(purposes), "purposes")
        rejected_json = _to_json(rejected, "rejected")
        when = format_ts(at or utcnow())
        with self._tx() as conn:
            self._get_call(conn, call_id)
            cursor = conn.execute(
                """INSERT INTO decisions (call_id, at, trigger, facts, record, purposes, rejected,
                                          retention_days, policy, action, recording_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (call_id, when, trigger, facts_json, int(bool(record)), purposes_json,
                 rejected_json, retention_days, policy, action, recording_id),
            )
            conn.execute("UPDATE calls SET last_facts = ? WHERE call_id = ?", (facts_json, call_id))
            return int(cursor.lastrowid or 0)

    def end_call(self, call_id: str, *, ended_at: datetime | None = None,
                 facts: Mapping[str, Any] | None = None) -> Call:
        """Mark the call ended (idempotent: a second hangup keeps the first end)."""
        ended = format_ts(ended_at or utcnow())
        facts_json = None if facts is None else _to_json(facts, "facts")
        with self._tx() as conn:
            self._get_call(conn, call_id)
            conn.execute(
                """UPDATE calls SET ended_at = coalesce(ended_at, ?), status = 'ended',
                                    last_facts = coalesce(?, last_facts)
                   WHERE call_id = ?""",
                (ended, facts_json, call_id),
            )
            return self._get_call(conn, call_id)

    def call(self, call_id: str) -> Call | None:
        with self._tx(write=False) as conn:
            row = conn.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
            return None if row is None else Call._from_row(row)

    def live_calls(self) -> list[Call]:
        """Calls not yet ended, oldest first (for reconciliation after a restart)."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM calls WHERE status = 'live' ORDER BY started_at, call_id"
            ).fetchall()
            return [Call._from_row(r) for r in rows]

    def decisions_for_call(self, call_id: str) -> list[DecisionRecord]:
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM decisions WHERE call_id = ? ORDER BY id", (call_id,)
            ).fetchall()
            return [DecisionRecord._from_row(r) for r in rows]

    # -- recordings --

    @staticmethod
    def _get_recording(conn: sqlite3.Connection, recording_id: str) -> Recording:
        row = conn.execute(
            "SELECT * FROM recordings WHERE recording_id = ?", (recording_id,)
        ).fetchone()
        if row is None:
            raise UnknownRecord(f"no recording {recording_id!r} in the ledger")
        return Recording._from_row(row)

    def recording_started(self, recording_id: str, *, call_id: str, channel: str,
                          path: str | Path, purposes: Iterable[str], bases: Mapping[str, str],
                          started_at: datetime | None = None,
                          mixmonitor_id: str | None = None) -> Recording:
        """Record a MixMonitor the guard started, with the purposes that
        justify it and the legal basis of each."""
        _check_recording_id(recording_id)
        _check_text(channel, "channel")
        _check_text(str(path), "path")
        names, basis_map = _recording_purposes(purposes, bases)
        when = format_ts(started_at or utcnow())
        with self._tx() as conn:
            self._get_call(conn, call_id)
            try:
                conn.execute(
                    """INSERT INTO recordings (recording_id, call_id, channel, path, mixmonitor_id,
                                               purposes, bases, started_at, status)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'recording')""",
                    (recording_id, call_id, channel, str(path), mixmonitor_id,
                     _to_json(names, "purposes"), _to_json(basis_map, "bases"), when),
                )
            except sqlite3.IntegrityError as exc:
                raise ValueError(
                    f"recording {recording_id} or its path already exists: {exc}"
                ) from None
            conn.execute(
                """INSERT INTO purpose_history (recording_id, at, purposes, bases, reason)
                   VALUES (?, ?, ?, ?, 'started')""",
                (recording_id, when, _to_json(names, "purposes"), _to_json(basis_map, "bases")),
            )
            return self._get_recording(conn, recording_id)

    def set_mixmonitor_id(self, recording_id: str, mixmonitor_id: str) -> Recording:
        """Store the MixMonitorID when it arrives after the start."""
        _check_text(mixmonitor_id, "mixmonitor_id")
        with self._tx() as conn:
            self._get_recording(conn, recording_id)
            conn.execute("UPDATE recordings SET mixmonitor_id = ? WHERE recording_id = ?",
                         (mixmonitor_id, recording_id))
            return self._get_recording(conn, recording_id)

    def update_recording_purposes(self, recording_id: str, purposes: Iterable[str],
                                  bases: Mapping[str, str], *, reason: str,
                                  at: datetime | None = None) -> Recording:
        """Change the purposes a recording is kept for (e.g. quality withdrawn),
        keeping the history. To drop the last purpose, delete the recording."""
        _check_text(reason, "reason")
        names, basis_map = _recording_purposes(purposes, bases)
        when = format_ts(at or utcnow())
        purposes_json, bases_json = _to_json(names, "purposes"), _to_json(basis_map, "bases")
        with self._tx() as conn:
            current = self._get_recording(conn, recording_id)
            if current.status in ("deleting", "deleted"):
                raise InvalidTransition(
                    f"recording {recording_id} is {current.status}; its purposes cannot change"
                )
            conn.execute("UPDATE recordings SET purposes = ?, bases = ? WHERE recording_id = ?",
                         (purposes_json, bases_json, recording_id))
            conn.execute(
                """INSERT INTO purpose_history (recording_id, at, purposes, bases, reason)
                   VALUES (?, ?, ?, ?, ?)""",
                (recording_id, when, purposes_json, bases_json, reason),
            )
            return self._get_recording(conn, recording_id)

    def purpose_history(self, recording_id: str) -> list[PurposeChange]:
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM purpose_history WHERE recording_id = ? ORDER BY id", (recording_id,)
            ).fetchall()
            return [PurposeChange(r["recording_id"], parse_ts(r["at"]), json.loads(r["purposes"]),
                                  json.loads(r["bases"]), r["reason"]) for r in rows]

    def recording_stopped(self, recording_id: str, *,
                          stopped_at: datetime | None = None) -> Recording:
        """MixMonitor stopped. Only a 'recording' recording changes; in any other
        state this is a no-op, because stop events can arrive late or twice."""
        when = format_ts(stopped_at or utcnow())
        with self._tx() as conn:
            self._get_recording(conn, recording_id)
            conn.execute(
                """UPDATE recordings SET status = 'stopped', stopped_at = ?
                   WHERE recording_id = ? AND status = 'recording'""",
                (when, recording_id),
            )
            return self._get_recording(conn, recording_id)

    def recording_finalized(self, recording_id: str, *, size_bytes: int, duration_s: float,
                            sha256: str, deadline: datetime, stored_path: str | Path | None = None,
                            key_id: str | None = None,
                            finalized_at: datetime | None = None) -> Recording:
        """The file is complete: store its size, duration, digest, where it is
        kept (the ciphertext when encrypted, with the key id) and the deletion
        deadline."""
        if not isinstance(sha256, str) or not _HASH_RE.fullmatch(sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        if not isinstance(size_bytes, int) or size_bytes < 0:
            raise ValueError("size_bytes must be a non-negative integer")
        if duration_s < 0:
            raise ValueError("duration_s must not be negative")
        if (stored_path is None) != (key_id is None):
            raise ValueError("stored_path and key_id go together (an encrypted copy and its key)")
        deadline_text = format_ts(deadline)
        when = format_ts(finalized_at or utcnow())
        with self._tx() as conn:
            current = self._get_recording(conn, recording_id)
            if current.status not in ("recording", "stopped"):
                raise InvalidTransition(
                    f"recording {recording_id} is {current.status}; only a recording or "
                    "stopped recording can be finalized"
                )
            conn.execute(
                """UPDATE recordings SET status = 'finalized', finalized_at = ?,
                       stopped_at = coalesce(stopped_at, ?), size_bytes = ?, duration_s = ?,
                       sha256 = ?, deadline = ?, stored_path = ?, key_id = ?
                   WHERE recording_id = ?""",
                (when, when, size_bytes, float(duration_s), sha256, deadline_text,
                 None if stored_path is None else str(stored_path), key_id, recording_id),
            )
            return self._get_recording(conn, recording_id)

    def mark_deleting(self, recording_id: str, *, reason: str, actor: str | None = None,
                      at: datetime | None = None) -> Recording:
        """Declare the intent to delete, before the file is unlinked, so that a
        crash between the two leaves a visible pending deletion. Refused for a
        held recording. Already deleting or deleted: unchanged."""
        _check_text(reason, "reason")
        when = format_ts(at or utcnow())
        with self._tx() as conn:
            current = self._get_recording(conn, recording_id)
            if current.status in ("deleting", "deleted"):
                return current
            if current.held:
                raise RecordingHeld(
                    f"recording {recording_id} is under legal hold ({current.hold_reason}); "
                    "release the hold before deleting it"
                )
            conn.execute(
                """UPDATE recordings SET status = 'deleting', deletion_reason = ?, deleted_by = ?,
                       stopped_at = coalesce(stopped_at, ?)
                   WHERE recording_id = ?""",
                (reason, actor, when, recording_id),
            )
            return self._get_recording(conn, recording_id)

    def mark_deleted(self, recording_id: str, *, reason: str | None = None,
                     actor: str | None = None, at: datetime | None = None) -> Recording:
        """The file (and any copy) is gone. ``reason`` defaults to the one given
        to mark_deleting. Refused for a held recording; already deleted: unchanged."""
        when = format_ts(at or utcnow())
        with self._tx() as conn:
            current = self._get_recording(conn, recording_id)
            if current.status == "deleted":
                return current
            if current.held:
                raise RecordingHeld(
                    f"recording {recording_id} is under legal hold ({current.hold_reason}); "
                    "release the hold before deleting it"
                )
            why = reason or current.deletion_reason
            if not why:
                raise ValueError("a deletion needs a reason")
            conn.execute(
                """UPDATE recordings SET status = 'deleted', deleted_at = ?, deletion_reason = ?,
                       deleted_by = coalesce(?, deleted_by), stopped_at = coalesce(stopped_at, ?)
                   WHERE recording_id = ?""",
                (when, why, actor, when, recording_id),
            )
            return self._get_recording(conn, recording_id)

    # Batch deletion. Every public call commits with synchronous=FULL, about
    # 0.25 ms of fsync on a local disk, so deleting 100,000 expired recordings
    # one by one spends close to a minute in fsync alone. These two apply the
    # same rules as mark_deleting/mark_deleted (intent before unlink, held
    # recordings untouchable, confirmation after) to a batch in one transaction.

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
        with self._tx() as conn:
            rows = conn.execute(
                f"""SELECT recording_id FROM recordings
                    WHERE recording_id IN ({marks}) AND status = 'finalized'
                      AND hold_reason IS NULL AND deadline <= ?""",
                (*ids, format_ts(now)),
            ).fetchall()
            eligible = [row[0] for row in rows]
            if eligible:
                conn.execute(
                    f"""UPDATE recordings SET status = 'deleting', deletion_reason = ?,
                            deleted_by = ?, stopped_at = coalesce(stopped_at, ?)
                        WHERE recording_id IN ({_batch_placeholders(len(eligible))})""",
                    (reason, actor, format_ts(at), *eligible),
                )
        return eligible

    def mark_deleted_many(self, recording_ids: Sequence[str], *, at: datetime) -> None:
        """Confirm, in one transaction, the deletion of recordings (1 to
        MAX_BATCH) marked 'deleting' whose files are gone. Ids in any other
        state, or held, are left unchanged."""
        ids = list(recording_ids)
        marks = _batch_placeholders(len(ids))
        when = format_ts(at)
        with self._tx() as conn:
            conn.execute(
                f"""UPDATE recordings SET status = 'deleted', deleted_at = ?,
                        stopped_at = coalesce(stopped_at, ?)
                    WHERE recording_id IN ({marks}) AND status = 'deleting'
                      AND hold_reason IS NULL""",
                (when, when, *ids),
            )

    def _recordings(self, where: str, params: Sequence[Any] = ()) -> list[Recording]:
        with self._tx(write=False) as conn:
            rows = conn.execute(f"SELECT * FROM recordings WHERE {where}", params).fetchall()
            return [Recording._from_row(r) for r in rows]

    def recordings(self, *, statuses: Iterable[str] | None = None) -> list[Recording]:
        """Every recording, or those in ``statuses`` (of RECORDING_STATUSES),
        ordered by start: one query for readers that need the whole picture
        (the consistency audit) rather than a union of the purpose-built ones."""
        if statuses is None:
            return self._recordings("1 ORDER BY started_at, recording_id")
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
            wanted,
        )

    def pending_deletions(self) -> list[Recording]:
        """Recordings whose deletion was started but not confirmed."""
        return self._recordings("status = 'deleting' ORDER BY started_at, recording_id")

    def recording(self, recording_id: str) -> Recording | None:
        found = self._recordings("recording_id = ?", (recording_id,))
        return found[0] if found else None

    def recordings_for_call(self, call_id: str) -> list[Recording]:
        return self._recordings("call_id = ? ORDER BY started_at, recording_id", (call_id,))

    def active_recordings(self) -> list[Recording]:
        """Recordings not yet finalized or deleted (status recording or stopped)."""
        return self._recordings(
            "status IN ('recording', 'stopped') ORDER BY started_at, recording_id"
        )

    def expired(self, now: datetime) -> list[Recording]:
        """Finalized recordings past their deadline and not held: what purge deletes."""
        return self._recordings(
            """status = 'finalized' AND deadline <= ? AND hold_reason IS NULL
               ORDER BY deadline, recording_id""",
            (format_ts(now),),
        )

    def held_recordings(self, *, past_deadline_at: datetime | None = None) -> list[Recording]:
        """Recordings under legal hold; with ``past_deadline_at``, only those
        a purge at that time would have deleted but for the hold."""
        if past_deadline_at is None:
            return self._recordings("hold_reason IS NOT NULL ORDER BY held_at, recording_id")
        return self._recordings(
            """hold_reason IS NOT NULL AND status = 'finalized' AND deadline <= ?
               ORDER BY deadline, recording_id""",
            (format_ts(past_deadline_at),),
        )

    def set_hold(self, recording_id: str, *, reason: str, actor: str,
                 at: datetime | None = None) -> Recording:
        """Place a legal hold: the recording is kept past its deadline until released."""
        _check_text(reason, "reason")
        _check_text(actor, "actor")
        when = format_ts(at or utcnow())
        with self._tx() as conn:
            current = self._get_recording(conn, recording_id)
            if current.status in ("deleting", "deleted"):
                raise InvalidTransition(
                    f"recording {recording_id} is {current.status}; it cannot be held"
                )
            conn.execute(
                "UPDATE recordings SET hold_reason = ?, held_at = ?, held_by = ? "
                "WHERE recording_id = ?",
                (reason, when, actor, recording_id),
            )
            return self._get_recording(conn, recording_id)

    def release_hold(self, recording_id: str, *, actor: str,
                     at: datetime | None = None) -> Recording:
        """Lift a legal hold; the next purge deletes the recording if its
        deadline has passed. Who released it goes to the access log (log_access)."""
        _check_text(actor, "actor")
        with self._tx() as conn:
            current = self._get_recording(conn, recording_id)
            if not current.held:
                raise InvalidTransition(f"recording {recording_id} is not under legal hold")
            conn.execute(
                "UPDATE recordings SET hold_reason = NULL, held_at = NULL, held_by = NULL "
                "WHERE recording_id = ?",
                (recording_id,),
            )
            return self._get_recording(conn, recording_id)

    def recordings_by_caller_hash(self, caller_hash: str, *,
                                  include_deleted: bool = False) -> list[Recording]:
        """A data subject's recordings, found by the keyed hash of their number."""
        _check_hash(caller_hash)
        deleted = "" if include_deleted else "AND r.status != 'deleted'"
        with self._tx(write=False) as conn:
            rows = conn.execute(
                f"""SELECT r.* FROM recordings r JOIN calls c ON c.call_id = r.call_id
                    WHERE c.caller_hash = ? {deleted}
                    ORDER BY r.started_at, r.recording_id""",
                (caller_hash,),
            ).fetchall()
            return [Recording._from_row(r) for r in rows]

    def known_paths(self) -> frozenset[str]:
        """Every file path the ledger accounts for (clear and encrypted) of
        recordings not yet deleted: the orphan audit's allow-list. A file of a
        deleted recording that still exists is therefore an orphan."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT path, stored_path FROM recordings WHERE status != 'deleted'"
            ).fetchall()
        paths = {r["path"] for r in rows}
        paths.update(r["stored_path"] for r in rows if r["stored_path"])
        return frozenset(paths)

    # -- access and unauthorized recordings --

    def log_access(self, *, actor: str, action: str, reason: str, recording_id: str | None = None,
                   call_id: str | None = None, detail: Mapping[str, Any] | None = None,
                   at: datetime | None = None) -> int:
        """Append who did what to which recording and why. A reason is mandatory."""
        _check_text(actor, "actor")
        _check_text(reason, "reason")
        if action not in ACCESS_ACTIONS:
            raise ValueError(f"action must be one of {sorted(ACCESS_ACTIONS)}, not {action!r}")
        detail_json = _to_json(detail or {}, "detail")
        when = format_ts(at or utcnow())
        with self._tx() as conn:
            cursor = conn.execute(
                """INSERT INTO access_log (at, actor, action, recording_id, call_id, reason, detail)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (when, actor, action, recording_id, call_id, reason, detail_json),
            )
            return int(cursor.lastrowid or 0)

    def access_log(self, *, limit: int | None = None,
                   since: datetime | None = None) -> list[AccessEntry]:
        """Access entries in time order; with ``limit``, the most recent ones."""
        rows = self._latest("access_log", limit, since)
        return [AccessEntry(r["id"], parse_ts(r["at"]), r["actor"], r["action"], r["recording_id"],
                            r["call_id"], r["reason"], json.loads(r["detail"]))
                for r in reversed(rows)]

    def log_unauthorized(self, *, channel: str, action: str, call_id: str | None = None,
                         file: str | Path | None = None, started_by: str | None = None,
                         at: datetime | None = None) -> int:
        """Append a recording that was started behind the guard's back."""
        _check_text(channel, "channel")
        if action not in UNAUTHORIZED_ACTIONS:
            raise ValueError(
                f"action must be one of {sorted(UNAUTHORIZED_ACTIONS)}, not {action!r}"
            )
        when = format_ts(at or utcnow())
        with self._tx() as conn:
            cursor = conn.execute(
                """INSERT INTO unauthorized (at, channel, call_id, file, started_by, action)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (when, channel, call_id, None if file is None else str(file), started_by, action),
            )
            return int(cursor.lastrowid or 0)

    def unauthorized_log(self, *, limit: int | None = None,
                         since: datetime | None = None) -> list[UnauthorizedEntry]:
        rows = self._latest("unauthorized", limit, since)
        return [UnauthorizedEntry(r["id"], parse_ts(r["at"]), r["channel"], r["call_id"], r["file"],
                                  r["started_by"], r["action"]) for r in reversed(rows)]

    def _latest(self, table: str, limit: int | None, since: datetime | None) -> list[sqlite3.Row]:
        """An append-only table's rows since ``since``, the most recent ``limit`` of them,
        newest first (callers reverse them into time order)."""
        where, params = self._since(since)
        with self._tx(write=False) as conn:
            return conn.execute(
                f"SELECT * FROM {table} {where} ORDER BY at DESC, id DESC"
                + (" LIMIT ?" if limit is not None else ""),
                (*params, *([limit] if limit is not None else [])),
            ).fetchall()

    @staticmethod
    def _since(since: datetime | None) -> tuple[str, tuple[Any, ...]]:
        if since is None:
            return "", ()
        return "WHERE at >= ?", (format_ts(since),)


def _split_sql(script: str) -> list[str]:
    """Statements of a migration script. sqlite3.complete_statement keeps a
    trigger body's inner ';' inside its statement."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement in migration: {current.strip()[:60]}")
    return statements
