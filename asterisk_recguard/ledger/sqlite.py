"""The embedded engine: the ledger in one SQLite file.

SQLite (stdlib) because it needs no server on the Asterisk host and, in WAL
mode with synchronous=FULL, survives a killed process or a power cut with
every committed transaction. Opening migrates an existing ledger to
:data:`SCHEMA_VERSION` and refuses anything else: a missing or empty file, a
database of another program, or a ledger written by a newer recguard. A
missing or empty file is never taken for a new ledger (beside a spool full of
recordings it would make each one an orphan); :meth:`SqliteEngine.create`
makes a new one, private (0600, missing parent directories 0700), complete
under a temporary name before it appears at its path.

Writes share one connection, serialised by a lock, and are group-committed
(:mod:`.groupcommit`): each write runs in a savepoint of the transaction that
is open, returns once a COMMIT covering it is durable, and a write that fails
rolls back only its own savepoint. Reads run on a connection of the reading
thread's own, so they never wait behind a commit; they see only committed
data, which includes every write the thread itself has made.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import quote

from ..errors import UserError
from .connections import Connections
from .schema import MIGRATIONS, SCHEMA_VERSION, _split_sql


def _make_private_dirs(directory: Path) -> None:
    """Create missing parent directories with mode 0700 (the umask cannot widen it)."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)


def _already_exists(path: Path) -> UserError:
    return UserError(f"ledger {path} already exists and is left as it is; a new ledger is "
                     "made only where there is none")


def _existing(path: Path) -> str:
    """The URI that opens ``path`` only if it exists: SQLite never creates it."""
    return f"file:{quote(str(path.absolute()))}?mode=rw"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SqliteEngine(Connections[sqlite3.Connection]):
    """The ledger file, open; an :class:`~.engine.Engine`."""

    def __init__(self, path: Path, *,
                 after_migration: Mapping[int, Callable[[sqlite3.Connection], None]] | None = None
                 ) -> None:
        """``after_migration``: Python steps by schema version, each run after
        that migration's SQL and in its transaction (filling new columns of
        the rows already there)."""
        super().__init__(str(path))
        self.path = path
        self._after_migration = dict(after_migration or {})
        self.connection = self._open()

    def describe(self) -> str:
        return str(self.path)

    # -- creating --

    @classmethod
    def create(cls, path: Path,
               after_migration: Mapping[int, Callable[[sqlite3.Connection], None]] | None = None) -> None:
        """Make a new ledger at ``path``, where no file may exist.

        It is built and migrated under a temporary name beside ``path`` and
        linked into place only when complete, so no crash ever leaves an
        empty or half-made file at ``path``.
        """
        if path.is_dir():
            raise UserError(f"ledger {path} is a directory, not a file; set RECGUARD_LEDGER "
                            "to a file's path")
        if os.path.lexists(path):
            raise _already_exists(path)
        building = path.with_name(f".{path.name}.new-{os.getpid()}-{threading.get_ident()}")
        try:
            _make_private_dirs(path.parent)
            os.close(os.open(building, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            conn = sqlite3.connect(str(building), isolation_level=None)
            try:
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA synchronous = FULL")
                # The same steps as an upgrade, so a new ledger's schema is an upgraded one's.
                cls._migrate(conn, 0, after_migration or {})
            finally:
                conn.close()
            _fsync(building)
            cls._link(building, path)
            _fsync(path.parent)
        except (OSError, sqlite3.Error) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UserError(f"ledger {path} cannot be created: {why}; create its directory "
                            "or set RECGUARD_LEDGER to a writable path") from None
        finally:
            for leftover in (building, building.with_name(building.name + "-journal")):
                leftover.unlink(missing_ok=True)

    @staticmethod
    def _link(building: Path, path: Path) -> None:
        """Put the finished file at ``path``, never over a file another process put there."""
        try:
            os.link(building, path)
        except FileExistsError:
            raise _already_exists(path) from None
        except OSError:  # a file system without hard links
            if os.path.lexists(path):
                raise _already_exists(path) from None
            os.rename(building, path)

    # -- opening --

    def _fail(self, what: str) -> UserError:
        return UserError(
            f"ledger {self.path} {what}; restore it from a backup or set RECGUARD_LEDGER "
            "to another path"
        )

    def _lost(self, what: str) -> UserError:
        # Said the same for a missing file, an empty one and a blank database.
        return UserError(
            f"ledger {self.path} {what}; restore it from its backup, or set RECGUARD_LEDGER to "
            f"where it is (only an installation with no recordings yet starts a new one, with "
            f"`recguard ledger init`)"
        )

    def _check_file(self) -> None:
        path = self.path
        if path.is_dir():
            raise self._fail("is a directory, not a file")
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise self._lost("does not exist") from None
        except OSError as exc:
            raise UserError(
                f"ledger {path} cannot be opened: {exc.strerror}; run recguard as the user "
                "that owns it"
            ) from None
        if size == 0:
            raise self._lost("is empty (0 bytes): it was truncated or replaced, no ledger is empty")

    def _open(self) -> sqlite3.Connection:
        self._check_file()
        try:
            conn = sqlite3.connect(_existing(self.path), uri=True, timeout=5.0,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._fail(f"cannot be opened ({exc})") from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 5000")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            self._check_version(conn, version)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn, version, self._after_migration)
        except UserError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._fail(f"is not a usable recguard ledger ({exc})") from None
        return conn

    def _check_version(self, conn: sqlite3.Connection, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise UserError(
                f"ledger {self.path} has schema version {version}, but this recguard knows "
                f"versions up to {SCHEMA_VERSION}; it was written by a newer recguard — "
                "upgrade recguard (never downgrade against a newer ledger)"
            )
        if version == 0:
            tables = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]
            if tables:
                raise self._fail(
                    "is an SQLite database of another program, not a recguard ledger"
                )
            # A new ledger is made complete by create(); a blank one is a lost one.
            raise self._lost("is an SQLite database with no recguard tables, not a ledger")

    @staticmethod
    def _migrate(conn: sqlite3.Connection, version: int,
                 after: Mapping[int, Callable[[sqlite3.Connection], None]]) -> None:
        for number in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-check inside the lock: another process may have migrated.
                if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                    conn.execute("COMMIT")
                    continue
                for statement in _split_sql(MIGRATIONS[number - 1]):
                    conn.execute(statement)
                if number in after:
                    after[number](conn)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # -- use --

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._require().execute("PRAGMA user_version").fetchone()[0])

    def _connect_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(_existing(self.path), uri=True, timeout=5.0,
                               isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA query_only = ON")
        return conn
