"""The PostgreSQL engine: the ledger in a database that several servers can
share, behind the same :class:`~.face.Ledger` as the SQLite file.

What it keeps of the SQLite engine's guarantees, and how:

* writers take turns across every process on the database: each write
  transaction begins with ``pg_advisory_xact_lock`` on one key (the SQLite
  engine's ``BEGIN IMMEDIATE``). An advisory lock rather than ``LOCK TABLE``
  because that needs UPDATE rights on the table, which the guard's role has
  not on the append-only tables; rather than SERIALIZABLE with retries
  because a group-committed batch cannot be replayed. The transaction is READ
  COMMITTED, so the chain's head is read after the lock is taken, never from
  a snapshot older than it;
* durability: ``synchronous_commit`` is on for the writer, so a write returns
  once its commit is flushed; writes are group-committed (:mod:`.groupcommit`)
  as in SQLite;
* reads run on a connection of the reading thread's own, in a read-only
  snapshot, and never wait behind a commit;
* its own schema and migrations (:mod:`.postgres_schema`), the same versions
  as SQLite's; opening migrates, and a database without a ledger is refused
  (:meth:`PgEngine.create` makes one).

psycopg is loaded only for a PostgreSQL ledger (by this module, and by
:mod:`.location` to read a URL), so an SQLite installation never loads it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from ..errors import UserError
from .connections import Connections
from .location import DatabaseUrl
from .postgres_schema import PG_MIGRATIONS, PG_SCHEMA_VERSION

# The advisory lock every ledger write transaction takes ("recguard" as a number).
WRITERS_LOCK = 0x7265636775617264
# A write returns once its commit is flushed, whatever the server's default.
_DURABLE = "SET synchronous_commit TO on"

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\?|%")


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """The tables' SQL (``?`` placeholders) in psycopg's style (``%s``): ``?``
    outside quotes becomes ``%s``, and every literal ``%`` (in quotes too,
    which psycopg also scans) is doubled."""
    def token(match: re.Match[str]) -> str:
        text = match.group()
        if text == "?":
            return "%s"
        return text.replace("%", "%%")
    return _TOKENS.sub(token, sql)


class PgRow:
    """A row read by column name (``row["status"]``) or position, with ``keys()``."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, key: str | int) -> Any:
        return self._values[key if isinstance(key, int) else self._index[key]]

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Any:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: PgRow(index, values)


class PgCursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def lastrowid(self) -> int | None:
        return None  # the tables never ask for it: chained rows carry their ids

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())


class PgConnection:
    """A psycopg connection as the tables and group commit use it (see :mod:`.engine`)."""

    IntegrityError = psycopg.IntegrityError

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> PgCursor:
        return PgCursor(self.raw.execute(translate(sql), tuple(parameters)))  # type: ignore[call-overload]

    @property
    def in_transaction(self) -> bool:
        """False for a broken connection too: its batch is lost."""
        return self.raw.info.transaction_status in (TransactionStatus.INTRANS,
                                                    TransactionStatus.INERROR,
                                                    TransactionStatus.ACTIVE)

    def close(self) -> None:
        self.raw.close()


def _begin_serialised(conn: PgConnection) -> None:
    conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
    conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITERS_LOCK,))


class PgEngine(Connections[PgConnection]):
    """A ledger database, open; an :class:`~.engine.Engine`."""

    # A snapshot for the whole read; ROLLBACK as it changed nothing.
    READ_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    READ_END = "ROLLBACK"

    def __init__(self, location: DatabaseUrl) -> None:
        super().__init__(str(location), begin=_begin_serialised)
        self.url = location.url
        raw = _connect(self.url, self._where)
        try:
            raw.execute(_DURABLE)
            version = _version(raw, self._where)
            if version > PG_SCHEMA_VERSION:
                raise UserError(
                    f"ledger {self._where} has schema version {version}, but this recguard knows "
                    f"versions up to {PG_SCHEMA_VERSION}; it was written by a newer recguard — "
                    "upgrade recguard (never downgrade against a newer ledger)")
            _migrate(raw, version)
        except psycopg.errors.InsufficientPrivilege as exc:
            raw.close()
            raise UserError(
                f"ledger {self._where} cannot be opened: {_reason(exc)}; a ledger of an older "
                "recguard is upgraded by its owner: open it once as the role that owns the "
                "database (e.g. `recguard audit` with RECGUARD_LEDGER naming that role), then "
                "run config/postgresql/recguard-grants.sql again") from None
        except psycopg.Error as exc:
            raw.close()
            raise UserError(f"ledger {self._where} cannot be opened: {_reason(exc)}") from None
        except BaseException:
            raw.close()
            raise
        self.connection = PgConnection(raw)

    def describe(self) -> str:
        return self._where

    @classmethod
    def create(cls, location: DatabaseUrl) -> None:
        """Make a new ledger in the database ``location`` names, which must hold no tables."""
        where = str(location)
        raw = _connect(location.url, where)
        try:
            tables = _tables(raw)
            if "ledger_schema" in tables:
                raise UserError(f"ledger {where} already exists and is left as it is; a new "
                                "ledger is made only where there is none")
            if tables:
                raise UserError(f"the database {where} holds tables of another program "
                                f"({', '.join(sorted(tables)[:3])}); make the ledger in a "
                                "database of its own")
            _migrate(raw, 0)
        except psycopg.Error as exc:
            raise UserError(f"ledger {where} cannot be created: {_reason(exc)}; run "
                            "`recguard ledger init` as the database role that owns the "
                            "ledger's database") from None
        finally:
            raw.close()

    @property
    def schema_version(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT version FROM ledger_schema").fetchone()[0])

    def _writer(self) -> PgConnection:
        """A new session when the last one broke (the server restarted, or the
        network failed): the writes of the broken one failed with it, and
        the next ones go through once the server answers again."""
        conn = self._require()
        if conn.raw.closed:
            raw = _connect(self.url, self._where)
            raw.execute(_DURABLE)
            conn = self.connection = PgConnection(raw)
        return conn

    def _connect_reader(self) -> PgConnection:
        return PgConnection(_connect(self.url, self._where))

    def _reader_usable(self, conn: PgConnection) -> bool:
        return not conn.raw.closed


def connect_session(location: DatabaseUrl) -> psycopg.Connection[Any]:
    """A session of its own on the ledger's database (autocommit), e.g. for
    a lock held as long as it lives; a UserError when it cannot be reached."""
    return _connect(location.url, str(location))


def exists(location: DatabaseUrl) -> bool:
    """Whether the database holds a ledger (it must be reachable)."""
    raw = _connect(location.url, str(location))
    try:
        return "ledger_schema" in _tables(raw)
    finally:
        raw.close()


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _connect(url: str, where: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=True, row_factory=_row_factory,
                               connect_timeout=10, application_name="recguard")
    except psycopg.Error as exc:
        reason = _reason(exc)
        password = DatabaseUrl(url).parts().get("password")
        if password:
            reason = reason.replace(password, "***")
        raise UserError(f"ledger {where} cannot be reached: {reason}; check that the "
                        "server runs and RECGUARD_LEDGER names it") from None


def _tables(raw: psycopg.Connection[Any]) -> set[str]:
    rows = raw.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return {str(row[0]) for row in rows.fetchall()}


def _version(raw: psycopg.Connection[Any], where: str) -> int:
    tables = _tables(raw)
    if "ledger_schema" in tables:
        return int(raw.execute("SELECT version FROM ledger_schema").fetchone()[0])  # type: ignore[index]
    if tables:
        raise UserError(f"the database {where} holds tables of another program, not a "
                        "recguard ledger; set RECGUARD_LEDGER to the ledger's database")
    raise UserError(f"ledger {where}: the database holds no ledger; restore it from its "
                    "backup, or set RECGUARD_LEDGER to where it is (only an installation with "
                    "no recordings yet starts a new one, with `recguard ledger init`)")


def _migrate(raw: psycopg.Connection[Any], version: int) -> None:
    """Apply the migrations after ``version``, each in its own transaction,
    under the writers' lock (another process may be migrating too)."""
    for number in range(version + 1, PG_SCHEMA_VERSION + 1):
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITERS_LOCK,))
            if "ledger_schema" in _tables(raw):
                done = raw.execute("SELECT version FROM ledger_schema").fetchone()
                if done is not None and int(done[0]) >= number:
                    continue
            raw.execute(PG_MIGRATIONS[number - 1])  # type: ignore[call-overload]
            raw.execute("UPDATE ledger_schema SET version = %s", (number,))
