"""Ledger file: created private with durable settings, refused when it is not
a recguard ledger or is newer than this recguard (these tests are of the
SQLite file: its modes, pragmas and contents), timestamps as UTC text, and
shared safely by threads and by a second process (these in both engines)."""

from __future__ import annotations

import sqlite3
import stat
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from asterisk_recguard.errors import UserError
from asterisk_recguard.ledger import SCHEMA_VERSION, Ledger, format_ts, parse_ts

from .ledger_support import (  # noqa: F401 - ledger is a fixture
    HASH_A,
    T0,
    TS_RE,
    ledger,
    sqlite_connection,
    start_call,
    start_recording,
)


# --- opening ---------------------------------------------------------------------


def test_creates_private_dirs_and_file_with_durable_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "ledger.sqlite3"
    with Ledger.create(path, recordings_dir=None) as ledger:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
        conn = sqlite_connection(ledger)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert ledger.schema_version == SCHEMA_VERSION


def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with Ledger.create(path, recordings_dir=None) as ledger:
        start_call(ledger)
    with Ledger(path) as ledger:
        call = ledger.call("1700000000.12")
        assert call is not None and call.caller_hash == HASH_A


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    Ledger.create(path, recordings_dir=None).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(UserError) as info:
        Ledger(path)
    message = str(info.value)
    assert str(path) in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "upgrade recguard" in message


def test_non_sqlite_file_is_refused_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not a database " * 200)
    with pytest.raises(UserError) as info:
        Ledger(path)
    assert str(path) in str(info.value)
    assert path.read_bytes().startswith(b"this is not a database")  # left untouched


def test_other_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="another program"):
        Ledger(path)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a directory"):
        Ledger(tmp_path)


def test_closed_ledger_refuses_use(tmp_path: Path) -> None:
    ledger = Ledger.create(tmp_path / "l.sqlite3", recordings_dir=None)
    ledger.close()
    assert ledger.closed
    with pytest.raises(RuntimeError, match="closed"):
        ledger.live_calls()


# --- timestamps --------------------------------------------------------------------


def test_timestamps_are_utc_text_and_aware_datetimes(ledger: Ledger) -> None:
    cet = timezone(timedelta(hours=1))
    start_call(ledger, at=datetime(2026, 11, 28, 11, 0, tzinfo=cet))
    with ledger._engine.transaction(write=False) as conn:
        raw = conn.execute("SELECT started_at FROM calls").fetchone()[0]
    assert raw == "2026-11-28T10:00:00.000000Z"
    assert TS_RE.fullmatch(raw)
    call = ledger.call("1700000000.12")
    assert call is not None and call.started_at == T0 and call.started_at.tzinfo is not None
    assert parse_ts(format_ts(T0)) == T0


def test_naive_datetimes_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="naive"):
        ledger.upsert_call_start("1.1", channel="c", started_at=datetime(2026, 1, 1))


# --- threads and processes ----------------------------------------------------------------


def test_concurrent_writers_from_threads(ledger: Ledger) -> None:
    threads_n, per_thread = 8, 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            call_id = f"17000.{n}"
            ledger.upsert_call_start(call_id, channel=f"PJSIP/t-{n}")
            recording_id = start_recording(ledger, call_id)
            for i in range(per_thread):
                ledger.record_decision(call_id, trigger="change", facts={"i": i}, record=True,
                                       purposes=["order"], rejected=[], policy="v1",
                                       action="keep", recording_id=recording_id)
                ledger.log_access(actor=f"t{n}", action="access", reason=f"r{i}")
            ledger.recording_stopped(recording_id)
            ledger.end_call(call_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    for n in range(threads_n):
        decisions = ledger.decisions_for_call(f"17000.{n}")
        assert len(decisions) == per_thread
        assert [d.facts["i"] for d in decisions] == list(range(per_thread))
    assert len(ledger.access_log()) == threads_n * per_thread
    assert ledger.live_calls() == []
    active = ledger.active_recordings()
    assert len(active) == threads_n and all(r.status == "stopped" for r in active)


def test_two_connections_share_committed_writes(location: Path | str) -> None:
    # The daemon and a CLI command (hold, purge) open the same ledger.
    path = location
    with Ledger.create(path, recordings_dir=None) as daemon, Ledger(path) as cli:
        start_call(daemon)
        recording_id = start_recording(daemon)
        cli.set_hold(recording_id, reason="court", actor="dpo")
        rec = daemon.recording(recording_id)
        assert rec is not None and rec.held
