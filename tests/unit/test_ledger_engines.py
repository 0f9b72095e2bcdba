"""The PostgreSQL engine against the SQLite one: the same schema, the same
hashes for the same history, the same refusals; and what only a database
server has (a URL, a password that must not show, TRUNCATE)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from asterisk_recguard.errors import UserError
from asterisk_recguard.ledger import SCHEMA_VERSION, Ledger
from asterisk_recguard.ledger.location import DatabaseUrl
from asterisk_recguard.ledger.postgres import translate
from asterisk_recguard.ledger.postgres_schema import PG_MIGRATIONS, TABLES

from .ledger_support import DATABASE_ERRORS, T0, raw_execute, start_call, start_recording
from .recfixtures import SECRET


def test_every_sqlite_migration_has_its_postgresql_twin() -> None:
    assert len(PG_MIGRATIONS) == SCHEMA_VERSION


def sqlite_columns(path: Path) -> dict[str, list[tuple[str, bool]]]:
    conn = sqlite3.connect(path)
    try:
        return {table: [(row[1], bool(row[3]) or bool(row[5]))
                        for row in conn.execute(f"PRAGMA table_info({table})")]
                for table in TABLES}
    finally:
        conn.close()


def pg_columns(url: str) -> dict[str, list[tuple[str, bool]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, is_nullable = 'NO' FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        ).fetchall()
    return {table: [(name, required) for t, name, required in rows if t == table] for table in TABLES}


def test_both_engines_make_the_same_tables(tmp_path: Path, pg_url: str) -> None:
    Ledger.create(tmp_path / "l.sqlite3", recordings_dir=None).close()
    Ledger.create(pg_url, recordings_dir=None).close()
    assert pg_columns(pg_url) == sqlite_columns(tmp_path / "l.sqlite3")
    # TABLES (what a copy copies) is every table of both.
    conn = sqlite3.connect(tmp_path / "l.sqlite3")
    in_sqlite = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite%'")}
    conn.close()
    with psycopg.connect(pg_url) as pg:
        in_pg = {r[0] for r in pg.execute("SELECT tablename FROM pg_tables "
                                          "WHERE schemaname = current_schema()")}
    assert in_sqlite == set(TABLES) == in_pg - {"ledger_schema"}


def history(ledger: Ledger) -> None:
    """The same writes, at the same times, whatever the engine."""
    start_call(ledger)
    recording_id = "0" * 31 + "1"
    ledger.record_decision("1700000000.12", trigger="gate", facts={"n": 1.5, "ok": True},
                           record=True, purposes=["order"], rejected=[{"quality": "no consent"}],
                           policy="p1", action="start", retention_days=90,
                           recording_id=recording_id, at=T0)
    ledger.log_access(actor="dpo", action="export", reason="DSAR 7", call_id="1700000000.12",
                      detail={"files": 1}, at=T0 + timedelta(seconds=1))
    ledger.log_unauthorized(channel="PJSIP/x-1", action="logged_only", at=T0)


def chain_rows(ledger: Ledger) -> list[tuple[str, int, str]]:
    with ledger._engine.transaction(write=False) as conn:
        return [(table, row["id"], row["row_hash"])
                for table in ("decisions", "access_log", "unauthorized")
                for row in conn.execute(f"SELECT id, row_hash FROM {table} ORDER BY id").fetchall()]


def test_the_same_history_hashes_the_same_in_both_engines(tmp_path: Path, pg_url: str) -> None:
    hashes = []
    for where in (tmp_path / "l.sqlite3", pg_url):
        with Ledger.create(where, recordings_dir=None, seal_secret=SECRET) as ledger:
            history(ledger)
            assert ledger.verify_chains().breaks == []
            hashes.append(chain_rows(ledger))
    assert len(hashes[0]) == 3 and hashes[0] == hashes[1]


def test_a_row_rewritten_behind_the_triggers_is_named(pg_url: str) -> None:
    with Ledger.create(pg_url, recordings_dir=None, seal_secret=SECRET) as ledger:
        for i in range(3):
            ledger.log_access(actor="dpo", action="access", reason=f"case {i}")
    # What the database's owner can do: lift the triggers, rewrite, put them back.
    for sql in ("ALTER TABLE access_log DISABLE TRIGGER USER",
                "UPDATE access_log SET reason = 'nothing to see' WHERE id = 2",
                "ALTER TABLE access_log ENABLE TRIGGER USER"):
        raw_execute(pg_url, sql)
    with Ledger(pg_url, seal_secret=SECRET) as ledger:
        (broken,) = ledger.verify_chains().breaks
    assert (broken.table, broken.row_id) == ("access_log", 2)


def test_truncate_is_refused(pg_url: str) -> None:
    with Ledger.create(pg_url, recordings_dir=None) as ledger:
        ledger.log_access(actor="dpo", action="access", reason="kept")
        for table in ("decisions", "access_log", "unauthorized"):
            with pytest.raises(DATABASE_ERRORS, match="append-only"):
                raw_execute(ledger, f"TRUNCATE {table} CASCADE")
        assert [e.reason for e in ledger.access_log()] == ["kept"]


def test_a_rolled_back_write_with_a_database_error_leaves_the_ledger_usable(
        location: Path | str) -> None:
    with Ledger.create(location, recordings_dir=None) as ledger:
        start_call(ledger)
        recording_id = start_recording(ledger)
        with pytest.raises(ValueError, match="already exists"):
            ledger.recording_started(recording_id, call_id="1700000000.12", channel="c",
                                     path="/elsewhere.wav", purposes=["order"],
                                     bases={"order": "contract_evidence"})
        assert start_recording(ledger) != recording_id
        assert len(ledger.recordings()) == 2


# --- refusals --------------------------------------------------------------------------


def test_a_database_without_a_ledger_is_refused(pg_url: str) -> None:
    with pytest.raises(UserError, match="holds no ledger.*ledger init"):
        Ledger(pg_url)


def test_a_database_of_another_program_is_refused(pg_url: str) -> None:
    raw_execute(pg_url, "CREATE TABLE invoices (id integer)")
    with pytest.raises(UserError, match="another program"):
        Ledger(pg_url)
    with pytest.raises(UserError, match="another program.*invoices"):
        Ledger.create(pg_url, recordings_dir=None)


def test_a_second_create_is_refused(pg_url: str) -> None:
    Ledger.create(pg_url, recordings_dir=None).close()
    with pytest.raises(UserError, match="already exists"):
        Ledger.create(pg_url, recordings_dir=None)
    assert Ledger.exists(pg_url)


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    Ledger.create(pg_url, recordings_dir=None).close()
    raw_execute(pg_url, f"UPDATE ledger_schema SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(UserError, match="newer recguard"):
        Ledger(pg_url)


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://guard:s3cret-pw@/recguard?host={tmp_path}&connect_timeout=2"
    with pytest.raises(UserError) as raised:
        Ledger(url)
    message = str(raised.value)
    assert "cannot be reached" in message and "\n" not in message
    assert "s3cret-pw" not in message and "guard@" in message


def test_a_url_shows_its_server_and_database_never_its_password() -> None:
    url = DatabaseUrl.parse("postgresql://guard:s3cret-pw@db.example:5433/recguard")
    assert str(url) == "postgresql://guard@db.example:5433/recguard"
    assert "s3cret-pw" not in repr(url)
    # psycopg's own message quotes the whole URL, password and all.
    for bad in ("postgresql://guard:s3cret-pw@db/x?bogus=1", "postgresql://guard:s3cret-pw@[db/x"):
        with pytest.raises(ValueError, match="not a valid PostgreSQL URL") as raised:
            DatabaseUrl.parse(bad)
        assert "s3cret-pw" not in str(raised.value)


# --- placeholders ---------------------------------------------------------------------


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("SELECT '?' , ?", "SELECT '?' , %s"),
    ("SELECT 'it''s ?' || ?", "SELECT 'it''s ?' || %s"),
    ("SELECT \"odd?name\" FROM t WHERE x LIKE '5%' AND y = ?",
     "SELECT \"odd?name\" FROM t WHERE x LIKE '5%%' AND y = %s"),
    ("SELECT 1 -- why?\n, ?", "SELECT 1 -- why?\n, %s"),
    ("SELECT 10 % ?", "SELECT 10 %% %s"),
])
def test_placeholders_are_translated_outside_quotes_only(sql: str, expected: str) -> None:
    assert translate(sql) == expected


def test_a_literal_question_mark_reaches_the_database(pg_url: str) -> None:
    with Ledger.create(pg_url, recordings_dir=None) as ledger:
        with ledger._engine.transaction(write=False) as conn:
            row = conn.execute("SELECT '?' AS q, '100%' AS p, ? AS v", ("x",)).fetchone()
    assert (row["q"], row["p"], row["v"]) == ("?", "100%", "x")


# --- RECGUARD_LEDGER --------------------------------------------------------------------

REQUIRED = {"RECGUARD_ARI_USER": "recguard", "RECGUARD_ARI_PASSWORD": "ari-pw",
            "RECGUARD_AMI_USER": "recguard", "RECGUARD_AMI_SECRET": "ami-pw",
            "RECGUARD_HASH_SECRET": SECRET}


def test_a_postgresql_url_selects_the_database_and_its_password_is_never_shown() -> None:
    from asterisk_recguard.settings import load_settings
    url = "postgresql://guard:s3cret-pw@db.example/recguard"
    settings = load_settings(environ={**REQUIRED, "RECGUARD_LEDGER": url})
    assert isinstance(settings.ledger, DatabaseUrl) and settings.ledger.url == url
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in str(settings.redacted())
    assert settings.redacted()["ledger"] == "postgresql://guard@db.example/recguard"


def test_a_bad_postgresql_url_is_one_line_that_does_not_echo_it() -> None:
    from asterisk_recguard.settings import SettingsError, load_settings
    with pytest.raises(SettingsError) as raised:
        load_settings(environ={**REQUIRED, "RECGUARD_LEDGER": "postgresql://g:s3cret-pw@db/x?bogus=1"})
    message = str(raised.value)
    assert "RECGUARD_LEDGER" in message and "not a valid PostgreSQL URL" in message
    assert "s3cret-pw" not in message


def test_recguard_run_opens_a_database_ledger_but_never_makes_one(pg_url: str) -> None:
    import dataclasses

    from asterisk_recguard.daemon import ledger_for_run
    from asterisk_recguard.settings import load_settings
    settings = dataclasses.replace(load_settings(environ=REQUIRED), ledger=DatabaseUrl(pg_url),
                                   server_id="pbx-a")
    with pytest.raises(UserError, match="holds no ledger.*recguard ledger init"):
        ledger_for_run(settings)
    assert not Ledger.exists(pg_url)
    Ledger.create(pg_url, recordings_dir=None).close()
    with ledger_for_run(settings) as ledger:
        assert ledger.server_id == "pbx-a"


def test_writes_go_on_after_the_server_dropped_the_session(pg_url: str) -> None:
    with Ledger.create(pg_url, recordings_dir=None, seal_secret=SECRET) as ledger:
        ledger.log_access(actor="dpo", action="access", reason="before")
        assert ledger.access_log()  # this thread's reader is open too
        # With a timeout, it returns once the sessions are gone.
        raw_execute(pg_url, "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        with pytest.raises(psycopg.OperationalError):
            ledger.log_access(actor="dpo", action="access", reason="lost with the session")
        ledger.log_access(actor="dpo", action="access", reason="after")
        assert [e.reason for e in ledger.access_log()] == ["before", "after"]
        assert ledger.verify_chains().breaks == []
