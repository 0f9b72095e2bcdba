"""One guard at a time: per SQLite ledger file, and per server id on a
PostgreSQL ledger (a real one, in the throwaway cluster), where the lock is
taken again after the database dropped its session."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from asterisk_recguard.errors import UserError
from asterisk_recguard.guardlock import FileLock, ServerLock, server_key, take
from asterisk_recguard.ledger.location import DatabaseUrl

from .ledger_support import raw_execute


def _drop_lock_sessions(url: str) -> None:
    raw_execute(url, "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks "
                     "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()")


def _wait(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_one_guard_per_ledger_file(tmp_path: Path) -> None:
    first = take(tmp_path / "ledger.sqlite3", "pbx-a")
    assert isinstance(first, FileLock)
    with pytest.raises(UserError, match="already uses the ledger"):
        take(tmp_path / "ledger.sqlite3", "pbx-b")  # a file ledger has one guard, whatever its id
    first.close()
    take(tmp_path / "ledger.sqlite3", "pbx-a").close()


def test_one_guard_per_server_id_and_servers_side_by_side(pg_url: str) -> None:
    url = DatabaseUrl(pg_url)
    a = take(url, "pbx-a")
    b = take(url, "pbx-b")
    assert isinstance(a, ServerLock) and isinstance(b, ServerLock)
    with pytest.raises(UserError) as refused:
        take(url, "pbx-a")
    message = str(refused.value)
    assert "\n" not in message
    assert "another recguard run already guards server 'pbx-a'" in message
    assert "RECGUARD_SERVER_ID" in message
    a.close()
    again = take(url, "pbx-a")  # the first one's end released it
    for lock in (again, b):
        lock.close()


def test_the_server_keys_differ_and_are_32_bit() -> None:
    keys = {server_key(f"pbx-{n}") for n in range(1000)}
    assert len(keys) == 1000
    assert all(-2**31 <= key < 2**31 for key in keys)


def test_a_dropped_session_is_replaced_and_the_lock_taken_again(pg_url: str) -> None:
    url = DatabaseUrl(pg_url)
    lost: list[str] = []
    regained = threading.Event()
    lock = ServerLock(url, "pbx-a", lost.append, regained.set, check_interval=0.1)
    try:
        first = lock._conn.info.backend_pid
        _drop_lock_sessions(pg_url)
        # Taken again on a new session, and the guard told so (it reconciles then).
        assert regained.wait(10)
        assert _wait(lambda: lock.held and lock._conn.info.backend_pid != first)
        with pytest.raises(UserError, match="already guards server 'pbx-a'"):
            take(url, "pbx-a")
        assert lost == []
    finally:
        lock.close()


def test_a_lock_another_guard_took_meanwhile_is_reported_lost(pg_url: str) -> None:
    url = DatabaseUrl(pg_url)
    told = threading.Event()
    lost: list[str] = []

    def on_lost(message: str) -> None:
        lost.append(message)
        told.set()

    lock = ServerLock(url, "pbx-a", on_lost, check_interval=0.5)
    try:
        _drop_lock_sessions(pg_url)
        other = take(url, "pbx-a")  # before the first one looks again
        assert told.wait(10)
        assert "took over the guarding of server 'pbx-a'" in lost[0]
        other.close()
    finally:
        lock.close()
