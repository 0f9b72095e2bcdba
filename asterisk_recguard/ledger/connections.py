"""What both engines do alike with their connections: one writer connection
shared by every thread under a lock and group-committed (:mod:`.groupcommit`),
a reader connection per thread that never waits behind a commit, and closing
them all (the writers' lock first, then the readers')."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Generic, Protocol, TypeVar

from .groupcommit import GroupCommit, Writer, begin_immediate


class Connection(Writer, Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Connection)


class Connections(Generic[C]):
    """The connections of one open ledger. An engine sets ``connection`` (the
    writer) once open, and says how a reader connection is made and how a
    read transaction begins and ends."""

    READ_BEGIN = "BEGIN"
    READ_END = "COMMIT"

    def __init__(self, where: str, begin: Callable[[C], None] = begin_immediate) -> None:
        """``where``: the ledger in messages; ``begin``: how a write transaction
        begins so that no other process's interleaves with it."""
        self._where = where
        self._lock = threading.RLock()
        self._commits: GroupCommit[C] = GroupCommit(self._lock, lambda: self.connection, where,
                                                    begin)
        self._readers = threading.local()
        self._reader_connections: list[C] = []
        self._readers_lock = threading.Lock()
        self.connection: C | None = None

    def _connect_reader(self) -> C:
        raise NotImplementedError

    def _reader_usable(self, conn: C) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self.connection is None

    def _require(self) -> C:
        if self.connection is None:
            raise RuntimeError(f"ledger {self._where} is closed")
        return self.connection

    def _writer(self) -> C:
        """The writer connection for the next write (the caller holds the writers' lock)."""
        return self._require()

    def close(self) -> None:
        self._commits.stop()  # it commits what is still open first
        with self._lock, self._readers_lock:
            for reader in self._reader_connections:
                reader.close()
            self._reader_connections.clear()
            self._readers = threading.local()
            if self.connection is not None:
                self.connection.close()
                self.connection = None

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[C]:
        """A write block: in a savepoint of the open transaction, durable when
        the block's caller gets control back. A read: a snapshot of what is
        committed, on the thread's own connection."""
        if not write:
            with self._read() as conn:
                yield conn
            return
        with self._commits.write(self._writer) as conn:
            yield conn

    def sync(self) -> None:
        self._commits.sync()

    def observe_commits(self, callback: Callable[[float], None] | None) -> None:
        self._commits.on_commit = callback

    def write_behind(self) -> AbstractContextManager[None]:
        """Writes in this block return before their commit (see :mod:`.groupcommit`)."""
        return self._commits.behind()

    @contextmanager
    def _read(self) -> Iterator[C]:
        conn: C | None = getattr(self._readers, "connection", None)
        if conn is None or not self._reader_usable(conn):
            conn = self._open_reader(conn)
        try:
            conn.execute(self.READ_BEGIN)
        except Exception:
            if self._reader_usable(conn):
                raise
            # The server dropped the session; nothing was read yet, so read on a new one.
            conn = self._open_reader(conn)
            conn.execute(self.READ_BEGIN)
        try:
            yield conn
        finally:
            if self._reader_usable(conn):
                conn.execute(self.READ_END)

    def _open_reader(self, dead: C | None = None) -> C:
        """A new reader for this thread, in place of ``dead`` if it had one."""
        with self._readers_lock:  # not the writers' lock: a read never waits for a commit
            self._require()
            if dead is not None and dead in self._reader_connections:
                self._reader_connections.remove(dead)
                dead.close()
            conn = self._connect_reader()
            self._reader_connections.append(conn)
        self._readers.connection = conn
        return conn
