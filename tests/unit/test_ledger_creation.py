"""A ledger is created only on purpose: opening never takes a missing, empty
or blank file for a new ledger, and creating refuses to start one beside
recordings it would know nothing of.

SQLite only: these are about files (missing, 0 bytes, half-made, modes).
A PostgreSQL database without a ledger is refused in test_ledger_engines.py."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from asterisk_recguard.daemon import ledger_for_run
from asterisk_recguard.errors import UserError
from asterisk_recguard.ledger import SCHEMA_VERSION, Ledger
from asterisk_recguard.ledger import sqlite as ledger_sqlite
from asterisk_recguard.settings import Settings

from .ledger_support import start_call


def spool_with_recordings(root: Path) -> Path:
    spool = root / "spool"
    spool.mkdir()
    (spool / ("a" * 32 + ".wav.rgv")).write_bytes(b"RGVAULT1 a kept recording")
    (spool / ("b" * 32 + ".wav")).write_bytes(b"RIFF a clear one")
    return spool


def settings_for(ledger: Path, recordings: Path) -> Settings:
    return Settings(ari_user="recguard", ari_password="p", ami_user="recguard", ami_secret="s",
                    hash_secret="h" * 40, ledger=ledger, recordings_dir=recordings)


# --- opening ----------------------------------------------------------------------------


def test_a_missing_ledger_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "lib" / "ledger.sqlite3"
    with pytest.raises(UserError) as info:
        Ledger(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "backup" in message and "recguard ledger init" in message
    assert not path.exists() and not path.parent.exists()


def test_a_zero_byte_ledger_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.touch()
    with pytest.raises(UserError) as info:
        Ledger(path)
    message = str(info.value)
    assert str(path) in message and "empty" in message and "backup" in message
    assert path.stat().st_size == 0
    assert not Path(f"{path}-wal").exists()


def test_a_blank_sqlite_database_is_not_a_new_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")  # a header, but no tables and no version
    conn.close()
    assert path.stat().st_size > 0
    with pytest.raises(UserError, match="no recguard tables"):
        Ledger(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    conn.close()


# --- creating ---------------------------------------------------------------------------


def test_create_makes_a_private_migrated_ledger_that_then_opens(tmp_path: Path) -> None:
    path = tmp_path / "new" / "ledger.sqlite3"
    with Ledger.create(path, recordings_dir=tmp_path / "spool") as ledger:
        assert ledger.schema_version == SCHEMA_VERSION
        start_call(ledger)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["ledger.sqlite3"]
    with Ledger(path) as reopened:
        assert reopened.call("1700000000.12") is not None


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\0 a ledger"])
def test_create_never_replaces_a_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(content)
    with pytest.raises(UserError) as info:
        Ledger.create(path, recordings_dir=None)
    assert str(path) in str(info.value) and "already exists" in str(info.value)
    assert path.read_bytes() == content


def test_create_refuses_a_recordings_directory_that_holds_recordings(tmp_path: Path) -> None:
    spool = spool_with_recordings(tmp_path)
    path = tmp_path / "ledger.sqlite3"
    with pytest.raises(UserError) as info:
        Ledger.create(path, recordings_dir=spool)
    message = str(info.value)
    assert str(spool) in message and "2 recordings" in message and "orphan" in message
    assert "backup" in message and "\n" not in message
    assert not path.exists()


def test_a_recordings_directory_that_cannot_be_listed_is_not_taken_for_empty(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(path: object) -> object:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("asterisk_recguard.ledger.face.recordings_in", denied)
    path = tmp_path / "ledger.sqlite3"
    with pytest.raises(UserError, match="cannot list the recordings directory"):
        Ledger.create(path, recordings_dir=tmp_path / "spool")
    assert not path.exists()


def test_other_files_in_the_recordings_directory_do_not_count(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "README").write_text("not a recording")
    (spool / "sub.wav").mkdir()
    with Ledger.create(tmp_path / "ledger.sqlite3", recordings_dir=spool) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION


def test_a_creation_cut_short_leaves_no_ledger_file(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(conn: sqlite3.Connection, version: int, after: object = None) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(ledger_sqlite.SqliteEngine, "_migrate", staticmethod(broken))
    path = tmp_path / "ledger.sqlite3"
    with pytest.raises(UserError, match="cannot be created"):
        Ledger.create(path, recordings_dir=None)
    assert os.listdir(tmp_path) == []


# --- who creates: the first start of `recguard run` ---------------------------------------


def test_the_first_run_creates_the_ledger_beside_an_empty_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    path = tmp_path / "ledger.sqlite3"
    with ledger_for_run(settings_for(path, spool)) as ledger:
        start_call(ledger)
    with ledger_for_run(settings_for(path, spool)) as again:  # later starts open it
        assert again.call("1700000000.12") is not None


def test_run_refuses_a_lost_ledger_beside_recordings(tmp_path: Path) -> None:
    spool = spool_with_recordings(tmp_path)
    path = tmp_path / "ledger.sqlite3"
    with pytest.raises(UserError, match="orphan"):
        ledger_for_run(settings_for(path, spool))
    assert not path.exists()


def test_run_refuses_an_emptied_ledger_even_beside_an_empty_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    path = tmp_path / "ledger.sqlite3"
    path.touch()
    with pytest.raises(UserError, match="empty"):
        ledger_for_run(settings_for(path, spool))
    assert path.stat().st_size == 0
