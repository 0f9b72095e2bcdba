"""The :class:`Ledger`: one object that opens the ledger's engine and offers
every table's methods, each one transaction."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

from .batches import RecordingBatches
from .calls import CallTable
from .chain import Chain, ChainReport
from .engine import Engine
from .journal import Journal
from .listings import RecordingLists
from .recordings import RecordingTable
from .schema import CHAINED_AT
from .sqlite import SqliteEngine


class Ledger(CallTable, RecordingTable, RecordingBatches, RecordingLists, Journal):
    """The ledger; see the package docstring for the rules and the API.

    ``Ledger(path)`` opens (creating and migrating as needed) the SQLite file
    at ``path``. It may be shared by threads: transactions take turns.
    ``seal_secret`` (RECGUARD_HASH_SECRET) seals the rows of the append-only
    tables as they are written and lets :meth:`verify_chains` check the seals;
    without it rows are linked but not sealed (see :mod:`.chain`).
    """

    def __init__(self, path: str | Path, *, seal_secret: str | bytes | None = None) -> None:
        self.path = Path(path)
        self._chain = Chain(seal_secret)
        self._engine: Engine = SqliteEngine(self.path,
                                            after_migration={CHAINED_AT: self._chain.backfill})

    def __repr__(self) -> str:
        return f"Ledger({self._engine.describe()!r})"

    def write_behind(self) -> AbstractContextManager[None]:
        """Writes in this block return before their commit (see the engine's)."""
        return self._engine.write_behind()

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
