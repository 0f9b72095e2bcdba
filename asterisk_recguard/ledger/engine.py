"""What the ledger's tables need from a database engine: transactions on one
connection, and little else.

The table modules (calls, recordings, journal) speak only to these protocols,
so an engine other than the embedded SQLite one can stand behind the same
:class:`~asterisk_recguard.ledger.Ledger`. What such an engine must bring:

* a connection whose ``execute(sql, params)`` returns a cursor, whose rows are
  read by column name (``row["status"]``) and list their columns (``row.keys()``,
  which the hash chain encodes), and which names its integrity error
  as DB-API's optional ``Connection.IntegrityError``;
* the tables' SQL as written here: ``?`` placeholders, ``ON CONFLICT ... DO
  UPDATE``, ``coalesce``; an engine whose driver uses another placeholder
  style translates them;
* its own schema and migrations (those in :mod:`.schema` are SQLite's), kept
  in step with the columns and CHECKs they define;
* transactions that serialise writers: a write transaction must not interleave
  with another process's, as SQLite's ``BEGIN IMMEDIATE`` guarantees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Row(Protocol):
    """One result row, read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def lastrowid(self) -> int | None: ...

    @property
    def rowcount(self) -> int: ...  # rows an UPDATE changed

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the tables use, inside a transaction."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    @property
    def IntegrityError(self) -> type[Exception]: ...  # noqa: N802 (DB-API's name)


class Engine(Protocol):
    """One open ledger database."""

    def transaction(self, write: bool = True) -> AbstractContextManager[Connection]:
        """One transaction, committed when the block ends and rolled back if it
        raises. Safe to call from several threads: they take turns."""
        ...

    def write_behind(self) -> AbstractContextManager[None]:
        """Writes in this block (on this thread) return before their commit,
        which follows within a commit's time."""
        ...

    def sync(self) -> None:
        """Wait until every write made so far (written behind too) is committed."""
        ...

    def observe_commits(self, callback: Callable[[float], None] | None) -> None:
        """Have ``callback`` told the seconds of each commit (None: no one)."""
        ...

    @property
    def schema_version(self) -> int: ...

    @property
    def closed(self) -> bool: ...

    def close(self) -> None:
        """Release the connection; later transactions raise RuntimeError."""
        ...

    def describe(self) -> str:
        """Where the ledger lives, for messages: a file path, a server and database."""
        ...


def select(engine: Engine, sql: str, params: Sequence[Any], make: Callable[[Any], T]) -> list[T]:
    """``make`` applied to each row of one read-only query."""
    with engine.transaction(write=False) as conn:
        return [make(row) for row in conn.execute(sql, params).fetchall()]
