"""One guard at a time: per ledger file for an SQLite ledger (a kernel file
lock beside it), per server id for a PostgreSQL ledger that several servers
share (a session advisory lock on a connection of its own).

Both go with the process however it ends, SIGKILL included: the kernel
drops the file lock, and PostgreSQL the advisory lock when the session ends.
A PostgreSQL session also ends when the database restarts or the network
fails; the lock is then taken again as soon as the database answers
(``on_regained``: the guard reconciles what it could not write meanwhile),
and if another guard of the same server id took it meanwhile, this one is
told to stop (``on_lost``).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .errors import UserError
from .ledger.location import DatabaseUrl

log = logging.getLogger(__name__)

# The advisory lock's first key ("rgrd"); the second is the server id's hash.
# Two keys of 32 bits are a key space apart from the one-key locks the
# ledger's writers take (ledger/postgres.py).
_GUARD_CLASS = 0x72677264
# How often the lock's session is checked, in seconds.
CHECK_INTERVAL = 5.0


def server_key(server_id: str) -> int:
    """The advisory lock's second key for ``server_id``: a signed 32-bit number."""
    digest = hashlib.sha256(f"recguard guard {server_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


class GuardLock:
    """Held from :func:`take` until :meth:`close`."""

    def close(self) -> None:
        raise NotImplementedError


class FileLock(GuardLock):
    """flock on LEDGER.run-lock: one guard per SQLite ledger."""

    def __init__(self, ledger: Path) -> None:
        self.path = ledger.with_name(ledger.name + ".run-lock")
        self._file: IO[str] = open(self.path, "a")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise UserError(f"another recguard run already uses the ledger {ledger} "
                            f"(lock {self.path}); stop it first") from None

    def close(self) -> None:
        self._file.close()


class ServerLock(GuardLock):
    """A PostgreSQL session advisory lock on the server id: one guard per
    server id per ledger database, guards of other servers beside it."""

    def __init__(self, url: DatabaseUrl, server_id: str,
                 on_lost: Callable[[str], None] = lambda message: None,
                 on_regained: Callable[[], None] = lambda: None,
                 check_interval: float = CHECK_INTERVAL) -> None:
        self.url, self.server_id = url, server_id
        self.on_lost, self.on_regained = on_lost, on_regained
        self._key = server_key(server_id)
        self._interval = check_interval
        self._closing = threading.Event()
        self._conn: Any = None
        if not self._take():
            raise UserError(self._taken_message())
        self._thread = threading.Thread(target=self._keep, name="guard-lock", daemon=True)
        self._thread.start()

    def _taken_message(self) -> str:
        return (f"another recguard run already guards server {self.server_id!r} on the ledger "
                f"{self.url}; stop it first, or give this server its own RECGUARD_SERVER_ID")

    def _take(self) -> bool:
        """Connect and try the lock; whether it is ours. Raises UserError when
        the database cannot be reached."""
        from .ledger.postgres import connect_session
        conn = connect_session(self.url)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                               (_GUARD_CLASS, self._key)).fetchone()
        except Exception:
            conn.close()
            raise
        if row is None or not row[0]:
            conn.close()
            return False
        self._conn = conn
        return True

    @property
    def held(self) -> bool:
        """Whether the lock's session was alive at the last look."""
        return self._conn is not None and not self._conn.closed

    def _alive(self) -> bool:
        try:
            self._conn.execute("SELECT 1")
            return True
        except Exception:
            try:
                self._conn.close()
            except Exception:
                pass
            return False

    def _keep(self) -> None:
        """Check the session; when it died, take the lock again once the database answers."""
        while not self._closing.wait(self._interval):
            if self._conn is not None and not self._conn.closed and self._alive():
                continue
            try:
                if self._take():
                    log.warning("the guard lock of server %s was taken again", self.server_id)
                    self.on_regained()
                    continue
            except Exception as exc:  # the database is still away: try again later
                log.warning("the guard lock of server %s cannot be taken again yet: %s",
                            self.server_id, str(exc).splitlines()[0] if str(exc) else exc)
                continue
            self.on_lost(self._taken_message().replace("already guards",
                                                       "took over the guarding of"))
            return

    def close(self) -> None:
        self._closing.set()
        if self._conn is not None:
            try:
                self._conn.close()  # the session's end releases the lock
            except Exception:
                pass


def take(ledger: Path | DatabaseUrl, server_id: str,
         on_lost: Callable[[str], None] = lambda message: None,
         on_regained: Callable[[], None] = lambda: None) -> GuardLock:
    """The guard's lock for this ledger (and server id, for a database); a
    UserError in one line if another guard holds it."""
    if isinstance(ledger, Path):
        return FileLock(ledger)
    return ServerLock(ledger, server_id, on_lost, on_regained)
