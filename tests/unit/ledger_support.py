"""What the ledger's tests share: a fresh ledger of each engine (an SQLite
file, and a PostgreSQL database of the throwaway cluster), a call and
recordings in it, and raw SQL below the API for tests of the database itself."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from asterisk_recguard.ledger import MIGRATIONS, Ledger, _split_sql
from asterisk_recguard.ledger.location import DatabaseUrl, location_of
from asterisk_recguard.ledger.sqlite import SqliteEngine

T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=timezone.utc)
HASH_A = "a1" * 32
HASH_B = "b2" * 32
SHA = "0f" * 32
TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
EXPIRED_AT = T0 + timedelta(days=90)


def rid() -> str:
    return uuid.uuid4().hex


ENGINES = ("sqlite", "postgresql")


@pytest.fixture(params=ENGINES)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a new ledger may be made, once per engine: a file's path, or an
    empty database's URL."""
    if request.param == "sqlite":
        return tmp_path / "ledger.sqlite3"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def ledger(location: Path | str) -> Iterator[Ledger]:
    """A new ledger, once per engine: the same tests hold for both."""
    with Ledger.create(location, recordings_dir=None) as opened:
        yield opened


def _database_errors() -> tuple[type[Exception], ...]:
    import psycopg
    return (sqlite3.DatabaseError, psycopg.Error)


def _integrity_errors() -> tuple[type[Exception], ...]:
    import psycopg
    return (sqlite3.IntegrityError, psycopg.IntegrityError)


DATABASE_ERRORS = _database_errors()
INTEGRITY_ERRORS = _integrity_errors()


def raw_execute(where: Ledger | Path | str, sql: str) -> None:
    """One statement below the API (no recguard check in the way), committed
    on its own: what the database itself allows."""
    location = where.location if isinstance(where, Ledger) else location_of(where)
    if isinstance(location, DatabaseUrl):
        import psycopg
        with psycopg.connect(location.url, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]
        return
    conn = sqlite3.connect(location, isolation_level=None, timeout=5)
    try:
        conn.execute(sql)
    finally:
        conn.close()


def count_begins(ledger: Ledger, call: Callable[[], object]) -> int:
    """How many write transactions ``call()`` begins on the ledger's writer."""
    commits = ledger._engine._commits  # type: ignore[attr-defined]
    begin = commits._begin
    begun: list[int] = []

    def counting(conn: object) -> None:
        begun.append(1)
        begin(conn)

    commits._begin = counting
    try:
        call()
    finally:
        commits._begin = begin
    return len(begun)


def start_call(ledger: Ledger, call_id: str = "1700000000.12", caller_hash: str | None = HASH_A,
               at: datetime = T0) -> None:
    ledger.upsert_call_start(call_id, channel="PJSIP/trunk-00000012", started_at=at,
                             linkedid=call_id, caller_hash=caller_hash,
                             facts={"purposes_declared": ["order"]})


def start_recording(ledger: Ledger, call_id: str = "1700000000.12", purposes=("order",),
                    at: datetime = T0, directory: str = "/spool") -> str:
    recording_id = rid()
    ledger.recording_started(
        recording_id, call_id=call_id, channel="PJSIP/trunk-00000012",
        path=f"{directory}/{recording_id}.wav", purposes=list(purposes),
        bases={p: ("consent" if p == "quality" else "contract_evidence") for p in purposes},
        started_at=at,
    )
    return recording_id


def finalize(ledger: Ledger, recording_id: str, deadline: datetime, **kw) -> None:
    ledger.recording_finalized(recording_id, size_bytes=1234, duration_s=12.5, sha256=SHA,
                               deadline=deadline, finalized_at=T0 + timedelta(minutes=5), **kw)


def sqlite_connection(ledger: Ledger) -> sqlite3.Connection:
    """The connection of an open SQLite ledger, for checks below the API."""
    engine = ledger._engine
    assert isinstance(engine, SqliteEngine)
    conn = engine.connection
    assert conn is not None
    return conn


@contextmanager
def ledger_file_at(path: Path, version: int) -> Iterator[sqlite3.Connection]:
    """A ledger file as schema ``version`` left it, open for old rows to be
    written in; stamped with that version and closed afterwards."""
    conn = sqlite3.connect(path)
    for migration in MIGRATIONS[:version]:
        for statement in _split_sql(migration):
            conn.execute(statement)
    yield conn
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    path.chmod(0o600)
