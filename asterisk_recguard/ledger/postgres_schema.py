"""The ledger's tables in PostgreSQL: the same schema versions as SQLite's
(:mod:`.schema`), one migration each, with the same columns, CHECKs,
append-only triggers and chain triggers.

Types are chosen so that a row reads back as the same Python values as from
SQLite, which the hash chain encodes: timestamps and JSON stay text (never
``timestamptz`` or ``jsonb``), integers ``bigint``, ``duration_s`` a double.
Every text column sorts bytewise (``COLLATE "C"``), as SQLite's does,
whatever the database's locale: the timestamps are compared as text.

The version applied is the one row of ``ledger_schema``. Migration N here is
SQLite's migration N, so a new SQLite migration needs its PostgreSQL twin
appended to :data:`PG_MIGRATIONS` (tests/unit/test_ledger_engines.py checks
the two agree, table by table and column by column). Append only; never edit
an applied one. A migration that adds a table also adds it to :data:`TABLES`
(parents before children: the order ``recguard ledger copy`` copies in) and
to the guard's grants in config/postgresql/recguard-grants.sql.
"""

from __future__ import annotations

_TEXT = 'TEXT COLLATE "C"'

# Raised as integrity_constraint_violation, the class SQLite's RAISE(ABORT) in
# a trigger maps to (sqlite3.IntegrityError), so callers see one kind of error.
_FUNCTIONS = """
    CREATE FUNCTION recguard_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '23000';
    END $$;
    """

_APPEND_ONLY = ("decisions", "access_log", "unauthorized")


def _append_only(table: str) -> str:
    """The triggers that refuse UPDATE, DELETE and TRUNCATE on ``table``."""
    return f"""
    CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
        FOR EACH ROW EXECUTE FUNCTION recguard_append_only();
    CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION recguard_append_only();
    CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION recguard_append_only();
    """


def _chained(table: str) -> str:
    return f"""
    ALTER TABLE {table} ADD COLUMN prev_hash {_TEXT}, ADD COLUMN row_hash {_TEXT},
        ADD COLUMN seal {_TEXT};
    CREATE TRIGGER {table}_chained BEFORE INSERT ON {table}
        FOR EACH ROW EXECUTE FUNCTION recguard_chained();
    """


PG_MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema (SQLite's 1)
    f"""
    CREATE TABLE ledger_schema (version integer NOT NULL);
    INSERT INTO ledger_schema VALUES (0);

    CREATE TABLE calls (
        call_id     {_TEXT} PRIMARY KEY,
        channel     {_TEXT} NOT NULL,
        linkedid    {_TEXT},
        caller_hash {_TEXT} CHECK (caller_hash IS NULL OR caller_hash ~ '^[0-9a-f]{{64}}$'),
        started_at  {_TEXT} NOT NULL,
        ended_at    {_TEXT},
        last_facts  {_TEXT} NOT NULL DEFAULT '{{}}',
        status      {_TEXT} NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'ended'))
    );
    CREATE INDEX calls_status ON calls (status);
    CREATE INDEX calls_caller_hash ON calls (caller_hash);

    CREATE TABLE decisions (
        id             bigint PRIMARY KEY,
        call_id        {_TEXT} NOT NULL REFERENCES calls (call_id),
        at             {_TEXT} NOT NULL,
        trigger        {_TEXT} NOT NULL,
        facts          {_TEXT} NOT NULL,
        record         bigint NOT NULL CHECK (record IN (0, 1)),
        purposes       {_TEXT} NOT NULL,
        rejected       {_TEXT} NOT NULL,
        retention_days bigint,
        policy         {_TEXT} NOT NULL,
        action         {_TEXT} NOT NULL
                       CHECK (action IN ('start', 'keep', 'stop', 'none', 'delete')),
        recording_id   {_TEXT}
    );
    CREATE INDEX decisions_call ON decisions (call_id, id);

    CREATE TABLE recordings (
        recording_id    {_TEXT} PRIMARY KEY,
        call_id         {_TEXT} NOT NULL REFERENCES calls (call_id),
        channel         {_TEXT} NOT NULL,
        path            {_TEXT} NOT NULL UNIQUE,
        mixmonitor_id   {_TEXT},
        purposes        {_TEXT} NOT NULL,
        bases           {_TEXT} NOT NULL,
        started_at      {_TEXT} NOT NULL,
        stopped_at      {_TEXT},
        finalized_at    {_TEXT},
        deadline        {_TEXT},
        size_bytes      bigint,
        duration_s      double precision,
        sha256          {_TEXT},
        stored_path     {_TEXT},
        key_id          {_TEXT},
        deleted_at      {_TEXT},
        deletion_reason {_TEXT},
        deleted_by      {_TEXT},
        hold_reason     {_TEXT},
        held_at         {_TEXT},
        held_by         {_TEXT},
        status          {_TEXT} NOT NULL CHECK (status IN
                            ('recording', 'stopped', 'finalized', 'deleting', 'deleted'))
    );
    CREATE INDEX recordings_call ON recordings (call_id);
    CREATE INDEX recordings_status_deadline ON recordings (status, deadline);

    CREATE TABLE purpose_history (
        id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        recording_id {_TEXT} NOT NULL REFERENCES recordings (recording_id),
        at           {_TEXT} NOT NULL,
        purposes     {_TEXT} NOT NULL,
        bases        {_TEXT} NOT NULL,
        reason       {_TEXT} NOT NULL
    );
    CREATE INDEX purpose_history_recording ON purpose_history (recording_id, id);

    CREATE TABLE access_log (
        id           bigint PRIMARY KEY,
        at           {_TEXT} NOT NULL,
        actor        {_TEXT} NOT NULL,
        action       {_TEXT} NOT NULL CHECK (action IN
                         ('export', 'erase', 'hold', 'release', 'purge', 'access', 'delete')),
        recording_id {_TEXT},
        call_id      {_TEXT},
        reason       {_TEXT} NOT NULL,
        detail       {_TEXT} NOT NULL DEFAULT '{{}}'
    );
    CREATE INDEX access_log_at ON access_log (at);

    CREATE TABLE unauthorized (
        id         bigint PRIMARY KEY,
        at         {_TEXT} NOT NULL,
        channel    {_TEXT} NOT NULL,
        call_id    {_TEXT},
        file       {_TEXT},
        started_by {_TEXT},
        action     {_TEXT} NOT NULL CONSTRAINT unauthorized_action
                   CHECK (action IN ('stopped_deleted', 'logged_only'))
    );
    """
    + _FUNCTIONS
    + "".join(_append_only(table) for table in _APPEND_ONLY),

    # 2: unauthorized.action also allows stopped_file_kept (SQLite's 2). The
    # CHECK is replaced in place; the triggers stay.
    """
    ALTER TABLE unauthorized DROP CONSTRAINT unauthorized_action;
    ALTER TABLE unauthorized ADD CONSTRAINT unauthorized_action
        CHECK (action IN ('stopped_deleted', 'stopped_file_kept', 'logged_only'));
    """,

    # 3: the append-only tables are hash-chained (SQLite's 3). A PostgreSQL
    # ledger is always made at version 3 or later, so it has no unchained
    # rows to link (SQLite's backfill step has nothing to do here).
    """
    CREATE FUNCTION recguard_chained() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.prev_hash IS NULL OR NEW.row_hash IS NULL THEN
            RAISE EXCEPTION '% rows must carry their chain hashes', TG_TABLE_NAME
                USING ERRCODE = '23000';
        END IF;
        RETURN NEW;
    END $$;
    """
    + "".join(_chained(table) for table in _APPEND_ONLY),

    # 4: the pause intervals of each recording (SQLite's 4): a pause is closed
    # once and otherwise never changes; none is ever deleted.
    f"""
    CREATE TABLE recording_pauses (
        id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        recording_id {_TEXT} NOT NULL REFERENCES recordings (recording_id),
        paused_at    {_TEXT} NOT NULL,
        paused_by    {_TEXT} NOT NULL CHECK (paused_by IN ('agent_key', 'crm')),
        resumed_at   {_TEXT},
        resumed_by   {_TEXT} CHECK (resumed_by IN ('agent_key', 'crm', 'hangup', 'stopped')),
        CHECK ((resumed_at IS NULL) = (resumed_by IS NULL))
    );
    CREATE INDEX recording_pauses_recording ON recording_pauses (recording_id, id);
    CREATE FUNCTION recguard_pause_closed_once() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.resumed_at IS NOT NULL OR NEW.id IS DISTINCT FROM OLD.id
           OR NEW.recording_id IS DISTINCT FROM OLD.recording_id
           OR NEW.paused_at IS DISTINCT FROM OLD.paused_at
           OR NEW.paused_by IS DISTINCT FROM OLD.paused_by THEN
            RAISE EXCEPTION 'a pause is closed once and otherwise never changes'
                USING ERRCODE = '23000';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER recording_pauses_close_once BEFORE UPDATE ON recording_pauses
        FOR EACH ROW EXECUTE FUNCTION recguard_pause_closed_once();
    CREATE TRIGGER recording_pauses_no_delete BEFORE DELETE ON recording_pauses
        FOR EACH ROW EXECUTE FUNCTION recguard_append_only();
    CREATE TRIGGER recording_pauses_no_truncate BEFORE TRUNCATE ON recording_pauses
        FOR EACH STATEMENT EXECUTE FUNCTION recguard_append_only();
    """,

    # 5: the server of each call, recording and access-log row (SQLite's 5);
    # NULL in older rows.
    f"""
    ALTER TABLE calls ADD COLUMN server_id {_TEXT};
    ALTER TABLE recordings ADD COLUMN server_id {_TEXT};
    ALTER TABLE access_log ADD COLUMN server_id {_TEXT};
    CREATE INDEX calls_server_status ON calls (server_id, status);
    CREATE INDEX recordings_server_status_deadline ON recordings (server_id, status, deadline);
    """,
)

PG_SCHEMA_VERSION = len(PG_MIGRATIONS)

# The tables a ledger holds, parents before children: the order to copy them in.
TABLES = ("calls", "decisions", "recordings", "purpose_history", "access_log", "unauthorized",
          "recording_pauses")
# Tables whose ids an identity gives; a copy moves the identity past the copied ids.
IDENTITY_TABLES = ("purpose_history", "recording_pauses")
