"""Group commit, in both engines: many writers, fewer fsyncs, nothing lost,
one writer's failure its own; reads never wait behind a commit."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from asterisk_recguard.ledger import Ledger
from asterisk_recguard.ledger.connections import Connections
from asterisk_recguard.ledger.postgres import PgEngine
from asterisk_recguard.ledger.sqlite import SqliteEngine

from .ledger_support import INTEGRITY_ERRORS, ledger, start_call  # noqa: F401 - ledger is a fixture


def _engine(ledger: Ledger) -> Connections[Any]:
    engine = ledger._engine  # noqa: SLF001 - the test looks behind the face on purpose
    assert isinstance(engine, Connections)
    return engine


def commits_of(engine: Connections[Any]) -> list[str]:
    """The COMMITs the writer connection runs from now on."""
    commits: list[str] = []
    writer = engine.connection
    if isinstance(engine, SqliteEngine):
        writer.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    else:
        assert isinstance(engine, PgEngine)
        execute = writer.execute

        def tracing(sql: str, *params: Any) -> Any:
            if sql == "COMMIT":
                commits.append(sql)
            return execute(sql, *params)

        writer.execute = tracing
    return commits


def test_concurrent_writes_share_commits_and_all_survive_a_reopen(location: Path | str) -> None:
    path = location
    ledger = Ledger.create(path, recordings_dir=None)
    engine = _engine(ledger)
    commits = commits_of(engine)
    threads, per_thread = 8, 40
    real_commit = engine._commits._commit_open_batch  # noqa: SLF001

    def commit_slowly() -> None:
        time.sleep(0.002)  # an fsync's worth: writers queue up meanwhile
        real_commit()

    engine._commits._commit_open_batch = commit_slowly  # type: ignore[method-assign]  # noqa: SLF001

    def writer(n: int) -> None:
        for i in range(per_thread):
            start_call(ledger, call_id=f"call-{n}-{i}")

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    ledger.close()
    assert 0 < len(commits) < threads * per_thread  # writes shared commits
    with Ledger(path) as reopened:
        assert all(reopened.call(f"call-{n}-{i}") is not None
                   for n in range(threads) for i in range(per_thread))


def test_a_failed_write_rolls_back_only_itself_in_a_shared_batch(location: Path | str) -> None:
    ledger = Ledger.create(location, recordings_dir=None)
    engine = _engine(ledger)
    commits = commits_of(engine)
    disk_free = threading.Event()
    real_commit = engine._commits._commit_open_batch  # noqa: SLF001

    def commit_when_the_disk_is_free() -> None:
        disk_free.wait(5)  # both writes go into the open transaction meanwhile
        real_commit()

    engine._commits._commit_open_batch = commit_when_the_disk_is_free  # type: ignore[method-assign]  # noqa: SLF001
    first = threading.Thread(target=start_call, args=(ledger,), kwargs={"call_id": "c1"})
    first.start()
    deadline = time.monotonic() + 5
    while engine._commits._batch is None and time.monotonic() < deadline:  # noqa: SLF001 - c1 is written, not committed
        time.sleep(0.01)
    with pytest.raises(INTEGRITY_ERRORS):
        with engine.transaction() as conn:
            conn.execute("INSERT INTO calls (call_id, channel, started_at, last_facts, status) "
                         "VALUES ('c2', 'x', '2026-11-29T00:00:00.000000Z', '{}', 'live')")
            conn.execute("INSERT INTO calls (call_id) VALUES (NULL)")  # violates NOT NULL
    disk_free.set()
    first.join(5)
    assert ledger.call("c1") is not None
    assert ledger.call("c2") is None  # its own savepoint was rolled back, nothing more
    assert commits == ["COMMIT"]  # one commit for the batch the two shared
    ledger.close()


def test_reads_do_not_wait_behind_a_writer(ledger: Ledger) -> None:
    start_call(ledger, call_id="c1")
    engine = _engine(ledger)
    holding, done = threading.Event(), threading.Event()

    def long_commit() -> None:
        with engine._lock:  # noqa: SLF001 - a writer in the middle of a slow fsync
            holding.set()
            done.wait(5)

    thread = threading.Thread(target=long_commit)
    thread.start()
    holding.wait(5)
    began = time.monotonic()
    try:
        assert ledger.call("c1") is not None
        assert time.monotonic() - began < 1.0
    finally:
        done.set()
        thread.join(5)


def test_reads_after_close_are_refused(location: Path | str) -> None:
    ledger = Ledger.create(location, recordings_dir=None)
    start_call(ledger, call_id="c1")
    assert ledger.call("c1") is not None  # this thread's read connection is open now
    ledger.close()
    with pytest.raises(RuntimeError, match="closed"):
        ledger.call("c1")
