"""The ledger's tables as SQL: the migrations that build them, one schema
version each, and how a migration script is cut into statements.

``decisions``, ``access_log`` and ``unauthorized`` are append-only: triggers
refuse UPDATE and DELETE, and since version 3 an INSERT without the hash
chain's columns (chain.py). The status CHECKs list the values of
:class:`~asterisk_recguard.lifecycle.RecordingStatus` and ``CallStatus``.
"""

from __future__ import annotations

import sqlite3

# Each entry upgrades the schema by one version; PRAGMA user_version records
# how many have been applied. Append new entries; never edit an applied one:
# a ledger keeps what a migration made of it for good, and a fresh ledger must
# end up with exactly the schema of one migrated step by step. The texts below
# share pieces (the columns a rebuilt table keeps, the append-only triggers),
# so tests/unit/test_ledger_migration.py pins the SHA-256 of every released
# migration: a change to a shared piece that alters one of them fails there.

_APPEND_ONLY = ("decisions", "access_log", "unauthorized")


def _append_only(table: str) -> str:
    """The triggers that refuse UPDATE and DELETE on ``table``."""
    return f"""
    CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
    CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
    """


def _chained(table: str) -> str:
    """The chain's columns on ``table``, and the trigger that refuses a row without them."""
    return f"""
    ALTER TABLE {table} ADD COLUMN prev_hash TEXT;
    ALTER TABLE {table} ADD COLUMN row_hash TEXT;
    ALTER TABLE {table} ADD COLUMN seal TEXT;
    CREATE TRIGGER {table}_chained BEFORE INSERT ON {table}
        WHEN NEW.prev_hash IS NULL OR NEW.row_hash IS NULL
        BEGIN SELECT RAISE(ABORT, '{table} rows must carry their chain hashes'); END;
    """


# The unauthorized table with its action column left open: each version that
# creates it says what actions it allows.
_UNAUTHORIZED = """
    CREATE TABLE {name} (
        id         INTEGER PRIMARY KEY,
        at         TEXT NOT NULL,
        channel    TEXT NOT NULL,
        call_id    TEXT,
        file       TEXT,
        started_by TEXT,
        action     {action}
    );
    """

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
"""
    + _UNAUTHORIZED.format(
        name="unauthorized",
        action="TEXT NOT NULL CHECK (action IN ('stopped_deleted', 'logged_only'))",
    )
    + "".join(_append_only(table) for table in _APPEND_ONLY),

    # 2: an unauthorized recording recguard stopped but whose file it could
    # not reach (outside its directories) is recorded as such, not as deleted.
    # SQLite cannot change a CHECK in place: the table is built anew under
    # another name, filled, and renamed; dropping the old one dropped its
    # triggers, so they are created again.
    _UNAUTHORIZED.format(
        name="unauthorized_v2",
        action="TEXT NOT NULL\n"
        "                   CHECK (action IN ('stopped_deleted', 'stopped_file_kept', 'logged_only'))",
    )
    + """INSERT INTO unauthorized_v2 SELECT id, at, channel, call_id, file, started_by, action FROM unauthorized;
    DROP TABLE unauthorized;
    ALTER TABLE unauthorized_v2 RENAME TO unauthorized;"""
    + _append_only("unauthorized"),

    # 3: the append-only tables are hash-chained and sealed (chain.py): three
    # columns each, and an insert that does not fill them is refused. The rows
    # already there are linked by the Python step that follows this migration
    # (CHAINED_AT), in the same transaction.
    "".join(_chained(table) for table in _APPEND_ONLY),

    # 4: the pauses of a recording (muted while the caller gives card
    # details). A row is written when a pause begins and closed once when it
    # ends; it is never deleted, and a closed one never changes.
    """
    CREATE TABLE recording_pauses (
        id           INTEGER PRIMARY KEY,
        recording_id TEXT NOT NULL REFERENCES recordings (recording_id),
        paused_at    TEXT NOT NULL,
        paused_by    TEXT NOT NULL CHECK (paused_by IN ('agent_key', 'crm')),
        resumed_at   TEXT,
        resumed_by   TEXT CHECK (resumed_by IN ('agent_key', 'crm', 'hangup', 'stopped')),
        CHECK ((resumed_at IS NULL) = (resumed_by IS NULL))
    );
    CREATE INDEX recording_pauses_recording ON recording_pauses (recording_id, id);
    CREATE TRIGGER recording_pauses_no_delete BEFORE DELETE ON recording_pauses
        BEGIN SELECT RAISE(ABORT, 'recording_pauses is append-only'); END;
    CREATE TRIGGER recording_pauses_close_once BEFORE UPDATE ON recording_pauses
        WHEN OLD.resumed_at IS NOT NULL OR NEW.id IS NOT OLD.id
             OR NEW.recording_id IS NOT OLD.recording_id OR NEW.paused_at IS NOT OLD.paused_at
             OR NEW.paused_by IS NOT OLD.paused_by
        BEGIN SELECT RAISE(ABORT, 'a pause is closed once and otherwise never changes'); END;
    """,

    # 5: the server each call, recording and access-log row belongs to, when
    # several Asterisk servers share one ledger. NULL in the rows written
    # before it: the hash chain leaves NULL columns out, so the access log's
    # old rows keep their hashes.
    """
    ALTER TABLE calls ADD COLUMN server_id TEXT;
    ALTER TABLE recordings ADD COLUMN server_id TEXT;
    ALTER TABLE access_log ADD COLUMN server_id TEXT;
    CREATE INDEX calls_server_status ON calls (server_id, status);
    CREATE INDEX recordings_server_status_deadline ON recordings (server_id, status, deadline);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

# The migration after which the engine runs chain.Chain.backfill.
CHAINED_AT = 3


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
