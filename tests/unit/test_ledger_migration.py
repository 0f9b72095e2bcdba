"""A ledger written by the first schema is migrated in place, its history intact.

SQLite only: a PostgreSQL ledger is always made at the current version (there
are no old ones to upgrade); test_ledger_engines.py checks its migrations
make the same tables as SQLite's."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from asterisk_recguard.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger

from .ledger_support import ledger_file_at

# The SHA-256 of each released migration's text. Ledgers in use ran exactly
# these; a schema change is a new migration (and a new line here), never an
# edit of one of them, however it is spelled in the source.
RELEASED_MIGRATIONS = (
    "ef13bd71a660b70d8637dd5c8cd159a8ecc449903a7ae0751307395e207af214",
    "39fb8c35893a153eead0ceb3a4c89aa882f0f3b61fee62b96c76309d9e9472ac",
    "bc599b76d7dae57766e4ca9e991779ca51a577f0a3377e01e55cc63d2e0631b9",
    "0594757a73fdf9e425fb5a0a39e5cc63588e9f666709e0d4e3a10795a616aba4",
    "ffc6aa37833b038edd7cecf7b4a9e4f1b719e144108ffc3d817515136689d030",
)


def _version_one(path: Path) -> None:
    with ledger_file_at(path, 1) as conn:
        conn.execute(
            "INSERT INTO unauthorized (at, channel, call_id, file, started_by, action) "
            "VALUES ('2026-11-01T10:00:00.000000Z', 'PJSIP/old-00000001', NULL, '/x.wav', 'dialplan a,b,1', 'logged_only')"
        )


def test_version_one_is_migrated_and_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _version_one(path)
    with Ledger(path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION == 5
        (old,) = ledger.unauthorized_log()
        assert (old.channel, old.action, old.file) == ("PJSIP/old-00000001", "logged_only", "/x.wav")
        ledger.log_unauthorized(channel="PJSIP/new-00000002", action="stopped_file_kept")
        assert [u.action for u in ledger.unauthorized_log()] == ["logged_only", "stopped_file_kept"]


def test_the_migrated_table_is_still_append_only(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _version_one(path)
    Ledger(path).close()
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE unauthorized SET action = 'stopped_deleted'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM unauthorized")
    conn.close()


def test_released_migrations_are_unchanged() -> None:
    released = [hashlib.sha256(text.encode()).hexdigest() for text in MIGRATIONS[: len(RELEASED_MIGRATIONS)]]
    assert released == list(RELEASED_MIGRATIONS)


def _schema(path: Path) -> list[tuple[str, str, str | None]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY rowid").fetchall()
    finally:
        conn.close()


def test_a_fresh_ledger_has_the_schema_of_a_migrated_one(tmp_path: Path) -> None:
    fresh, migrated = tmp_path / "fresh.sqlite3", tmp_path / "migrated.sqlite3"
    Ledger.create(fresh, recordings_dir=None).close()
    _version_one(migrated)
    Ledger(migrated).close()
    assert _schema(fresh) == _schema(migrated)
