"""Group commit for the writer connection: many writes, one fsync.

Every write runs in a savepoint of the one transaction that is open on the
writer connection (a :class:`Batch`). One committer thread commits whatever
was written since its last commit: writes that arrive while it waits on the
disk share the next fsync instead of paying one each. A writer waits until
its batch is durable (or failed); inside :meth:`GroupCommit.behind` it does
not wait, and its write is made durable with the next batch.

Written here rather than taken from a library: the standard library's
sqlite3 has no group commit, and the ledger's rule (a write is on disk before
the guard acts on it) needs the commit to stay synchronous for the caller.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

# A writer waits this long for the commit of its write before it gives up
# with an error; only a stalled disk comes near it.
COMMIT_WAIT_S = 60.0


class CommitError(sqlite3.OperationalError):
    """A write's commit failed or did not come: the write is not in the ledger.
    An OperationalError whatever the engine, as it always was for SQLite's."""


class Writer(Protocol):
    """The writer connection, as group commit uses it (sqlite3's, or an engine's adapter)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    @property
    def in_transaction(self) -> bool: ...


W = TypeVar("W", bound=Writer)


def begin_immediate(conn: Writer) -> None:
    # IMMEDIATE so that a second process (a CLI purge next to the daemon)
    # waits at BEGIN rather than failing half-way.
    conn.execute("BEGIN IMMEDIATE")


class Batch:
    """The writes made since the last commit, committed (or failed) together."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


class GroupCommit(Generic[W]):
    def __init__(self, lock: threading.RLock, connection: Callable[[], W | None],
                 describe: str, begin: Callable[[W], None] = begin_immediate) -> None:
        """``begin`` opens a write transaction that no other process's can
        interleave with (the engine's way of serialising writers)."""
        self._lock = lock  # the writer connection's: held to write, and to commit
        self._connection = connection
        self._begin = begin
        self._describe = describe
        self._batch: Batch | None = None
        self._wake = threading.Condition()
        self._wanted = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._behind = threading.local()
        # Told each COMMIT's seconds (the daemon's metrics), on the committer thread.
        self.on_commit: Callable[[float], None] | None = None
        self._depth = 0  # nesting of write blocks on the thread holding the lock

    @contextmanager
    def write(self, require: Callable[[], W]) -> Iterator[W]:
        """One write block on the connection ``require`` gives (or raises for,
        once closed): a savepoint of the open batch, durable when the block's
        caller gets control back; a block that raises rolls back only itself.
        Nested blocks of one thread share the outer one's commit."""
        with self._lock:
            conn = require()
            batch = self.batch(conn)
            conn.execute("SAVEPOINT ledger_write")
            self._depth += 1
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK TO ledger_write")
                    conn.execute("RELEASE ledger_write")
                else:
                    self.lost(batch)
                raise
            else:
                conn.execute("RELEASE ledger_write")
            finally:
                self._depth -= 1
            if self._depth:
                return  # an outer block of this thread commits
        self.written(batch)

    def batch(self, conn: W) -> Batch:
        """The open batch a write joins (the caller holds the lock); one is begun if none is."""
        if not conn.in_transaction:
            self._begin(conn)
            self._batch = Batch()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ledger-commit", daemon=True)
                self._thread.start()
        assert self._batch is not None
        return self._batch

    def lost(self, batch: Batch) -> None:
        """SQLite rolled the whole transaction back (disk full, I/O error):
        every write of the batch is lost, and each waiting writer hears so."""
        self._resolve(batch, RuntimeError("the transaction was rolled back by an error"))

    def written(self, batch: Batch) -> None:
        """A write of ``batch`` is done: wait for its commit, unless written behind."""
        self._want()
        if getattr(self._behind, "on", False):
            return
        if not batch.done.wait(COMMIT_WAIT_S):
            raise CommitError(
                f"ledger {self._describe}: no commit within {COMMIT_WAIT_S:g} s (is the disk stalled?)")
        if batch.error is not None:
            raise CommitError(
                f"ledger {self._describe}: the commit failed ({batch.error})") from batch.error

    def sync(self) -> None:
        """Wait until every write made so far, written behind or not, is committed."""
        with self._lock:
            batch = self._batch
        if batch is not None:
            self._want()
            if not batch.done.wait(COMMIT_WAIT_S):
                raise CommitError(
                    f"ledger {self._describe}: no commit within {COMMIT_WAIT_S:g} s (is the disk stalled?)")

    @contextmanager
    def behind(self) -> Iterator[None]:
        """Writes in this block (on this thread) return before their commit:
        for writes whose loss in a crash leaves nothing unexplained. A commit
        that fails is logged, as no caller waits to hear of it."""
        before = getattr(self._behind, "on", False)
        self._behind.on = True
        try:
            yield
        finally:
            self._behind.on = before

    def stop(self) -> None:
        """Commit what is still open, then end the committer."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _want(self) -> None:
        with self._wake:
            self._wanted = True
            self._wake.notify()

    def _resolve(self, batch: Batch, error: BaseException | None) -> None:
        batch.error = error
        batch.done.set()
        if self._batch is batch:
            self._batch = None

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._wanted and not self._stopping:
                    self._wake.wait()
                self._wanted = False
                stopping = self._stopping
            self._commit_open_batch()
            if stopping:
                return

    def _commit_open_batch(self) -> None:
        with self._lock:
            batch, conn = self._batch, self._connection()
            if batch is None or conn is None:
                return
            try:
                began = time.perf_counter()
                conn.execute("COMMIT")
                self._resolve(batch, None)
                if self.on_commit is not None:
                    self.on_commit(time.perf_counter() - began)
            except BaseException as exc:
                log.error("ledger %s: a commit failed, its writes are lost: %s", self._describe, exc)
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._resolve(batch, exc)
