"""A ledger written by the first schema is migrated in place, its history intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from asterisk_recguard.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger, _split_sql


def _version_one(path: Path) -> None:
    conn = sqlite3.connect(path)
    for statement in _split_sql(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO unauthorized (at, channel, call_id, file, started_by, action) "
        "VALUES ('2026-11-01T10:00:00.000000Z', 'PJSIP/old-00000001', NULL, '/x.wav', 'dialplan a,b,1', 'logged_only')"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    path.chmod(0o600)


def test_version_one_is_migrated_and_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _version_one(path)
    with Ledger(path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION == 2
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
