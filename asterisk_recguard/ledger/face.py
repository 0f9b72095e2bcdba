"""The :class:`Ledger`: one object that opens the ledger's engine and offers
every table's methods, each one transaction."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

from ..errors import UserError
from ..storage import recordings_in
from .batches import RecordingBatches
from .calls import CallTable
from .chain import Chain, ChainReport
from .codecs import check_server_id
from .engine import Engine
from .journal import Journal
from .listings import RecordingLists
from .location import DatabaseUrl, Location, location_of
from .pauses import PauseTable
from .period import PeriodReads
from .recordings import RecordingTable
from .servers import ServerScope
from .schema import CHAINED_AT
from .sqlite import SqliteEngine


class Ledger(CallTable, RecordingTable, RecordingBatches, RecordingLists, Journal, PauseTable,
             PeriodReads, ServerScope):
    """The ledger; see the package docstring for the rules and the API.

    ``Ledger(path)`` opens the existing ledger at ``path`` (migrating it as
    needed) and refuses a missing or empty file; :meth:`create` makes a new
    one. A ``postgresql://`` URL in place of the path opens the ledger in
    that PostgreSQL database instead (:mod:`.postgres`). It may be shared by threads: transactions take turns.
    ``seal_secret`` (RECGUARD_HASH_SECRET) seals the rows of the append-only
    tables as they are written and lets :meth:`verify_chains` check the seals;
    without it rows are linked but not sealed (see :mod:`.chain`).
    ``server_id`` (RECGUARD_SERVER_ID) is written on every call, recording
    and access-log row this object creates; None writes none (tools, tests).
    """

    def __init__(self, path: str | Path | DatabaseUrl, *,
                 seal_secret: str | bytes | None = None, server_id: str | None = None) -> None:
        self.server_id = check_server_id(server_id)
        self.location: Location = location_of(path)
        # The SQLite file, for what lives beside it (locks); None for a database.
        self.path: Path | None = self.location if isinstance(self.location, Path) else None
        self._chain = Chain(seal_secret)
        if isinstance(self.location, DatabaseUrl):
            from .postgres import PgEngine  # psycopg is loaded for a PostgreSQL ledger only
            self._engine: Engine = PgEngine(self.location)
        else:
            self._engine = SqliteEngine(self.location,
                                        after_migration={CHAINED_AT: self._chain.backfill})

    @staticmethod
    def exists(path: str | Path | DatabaseUrl) -> bool:
        """Whether there is a ledger (or anything at all, for a file) at ``path``."""
        location = location_of(path)
        if isinstance(location, DatabaseUrl):
            from .postgres import exists
            return exists(location)
        return os.path.lexists(location)

    @classmethod
    def create(cls, path: str | Path | DatabaseUrl, *, recordings_dir: Path | None,
               seal_secret: str | bytes | None = None, server_id: str | None = None) -> Ledger:
        """A new, empty ledger at ``path``, where no file may exist; open.

        Refused while ``recordings_dir`` holds recordings: a new ledger would
        know none of them, so each would look like an orphan (and ``purge
        --orphans`` would delete it). ``None`` only for a ledger that accounts
        for no recordings directory (tests, benchmarks).
        """
        location = location_of(path)
        check_server_id(server_id)
        try:
            found = recordings_in(recordings_dir) if recordings_dir is not None else []
        except OSError as exc:
            # Unknown is not empty: a ledger is made only beside a spool known to hold nothing.
            raise UserError(
                f"cannot list the recordings directory {recordings_dir} ({exc.strerror}), so no "
                f"ledger is made at {location}; run as the user `recguard run` runs as"
            ) from None
        if found:
            count = f"{len(found)} recording{'s' if len(found) > 1 else ''}"
            raise UserError(
                f"no ledger at {location}, but the recordings directory {recordings_dir} holds {count} "
                f"(e.g. {found[0].name}); a new ledger would take every one for an orphan: restore "
                "the ledger from its backup, or set RECGUARD_LEDGER to where it is"
            )
        if isinstance(location, DatabaseUrl):
            from .postgres import PgEngine
            PgEngine.create(location)
        else:
            SqliteEngine.create(location,
                                after_migration={CHAINED_AT: Chain(seal_secret).backfill})
        return cls(location, seal_secret=seal_secret, server_id=server_id)

    def __repr__(self) -> str:
        return f"Ledger({self._engine.describe()!r})"

    def write_behind(self) -> AbstractContextManager[None]:
        """Writes in this block return before their commit (see the engine's)."""
        return self._engine.write_behind()

    def sync(self) -> None:
        """Wait until every write made so far, written behind too, is committed:
        what a reader (another process, a check) sees from then on includes it."""
        self._engine.sync()

    def observe_commits(self, callback: Callable[[float], None] | None) -> None:
        """Have ``callback`` told how many seconds each commit took (for metrics;
        it runs on the committer thread, so it must be quick)."""
        self._engine.observe_commits(callback)

    @property
    def schema_version(self) -> int:
        return self._engine.schema_version

    def verify_chains(self) -> ChainReport:
        """Walk the append-only tables' chains: the first broken row of each, and their heads."""
        return self._chain.verify(lambda: self._engine.transaction(write=False))

    def close(self) -> None:
        self._engine.close()

    @property
    def closed(self) -> bool:
        return self._engine.closed

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
