"""The ledger's tables as SQL: the migrations that build them, one schema
version each, and how a migration script is cut into statements.

``decisions``, ``access_log`` and ``unauthorized`` are append-only: triggers
refuse UPDATE and DELETE. The status CHECKs list the values of
:class:`~asterisk_recguard.lifecycle.RecordingStatus` and ``CallStatus``.
"""

from __future__ import annotations

import sqlite3

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
    # It spells the table out again rather than sharing text with 1: an
    # applied migration is history, and nothing may change it by accident.
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
