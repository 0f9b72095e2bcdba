"""The hash chain over the append-only tables (``decisions``, ``access_log``,
``unauthorized``): how a row is linked and sealed when it is written, how the
rows of an older ledger are linked when it is upgraded, and how each chain is
walked to name its first broken row.

Each row carries three columns, computed inside the write transaction that
inserts it (the engine serialises writers, so the head it chains onto cannot
move under it):

* ``prev_hash``, the ``row_hash`` of the row before it (64 zeros for the first);
* ``row_hash``, SHA-256 over a canonical encoding of the table name, the row's
  id, ``prev_hash`` and every other column of the row;
* ``seal``, HMAC-SHA256 of ``row_hash`` under a key derived from
  RECGUARD_HASH_SECRET, which lives in the settings, not in the ledger.

Why the key is the anchor, and on every row: a plain SHA-256 chain only shows
careless edits, since anyone can recompute it after changing a row; what
makes a rewrite detectable is something the rewriter cannot compute. An HMAC
of the head alone, stored in the ledger, would do that too, but then a
rewritten chain shows only as "the head does not match" with no row to name,
and a head written to a side file would put a second fsync on every write.
A seal per row costs one HMAC per write, names the first forged row, and
needs nothing beyond the secret every recguard command already has. The
secret is RECGUARD_HASH_SECRET rather than a key of the key file because the
key file is optional (encryption can be off) and its active key changes on
rotation, while the hash secret must stay the same for the life of the ledger
anyway (the caller hashes depend on it).

What a verified chain proves: no row before the newest one was changed,
removed, inserted or reordered since it was written, unless by someone who
knows RECGUARD_HASH_SECRET. What it does not prove: that the newest rows were
not cut off, or that the whole ledger was not replaced by an older copy of
itself (an older chain is a valid chain; only a head kept somewhere else, e.g.
from an earlier ``recguard audit --json``, shows that); and nothing at all
against someone who has the secret (root, or whoever reads the env file).
A ledger opened without a secret (tests, tools) writes rows without a seal and
checks only the links; recguard's commands and daemon always pass the secret,
and with it an unsealed row is a broken one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from .engine import Connection

CHAINED = ("decisions", "access_log", "unauthorized")
LINK_COLUMNS = ("prev_hash", "row_hash", "seal")
GENESIS = "0" * 64
_SEAL_LABEL = b"recguard ledger seal v1"
_PAGE = 2000  # rows read at a time when walking a chain


def row_hash(table: str, row_id: int, prev_hash: str, content: Mapping[str, Any]) -> str:
    """The SHA-256 of one row: its table, id, predecessor and content.

    A column holding NULL is left out, so that a column a later migration
    adds (NULL in the rows before it) leaves their hashes as they were."""
    body = {name: int(value) if isinstance(value, bool) else value
            for name, value in content.items() if value is not None}
    encoded = json.dumps([table, row_id, prev_hash, body], sort_keys=True, ensure_ascii=True,
                         separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def _content(row: Any) -> dict[str, Any]:
    return {name: row[name] for name in row.keys() if name != "id" and name not in LINK_COLUMNS}


@dataclass(frozen=True)
class Break:
    """The first row of a table whose chain does not hold, and why."""

    table: str
    row_id: int
    what: str

    @property
    def message(self) -> str:
        return f"{self.table} row {self.row_id}: {self.what}"


@dataclass(frozen=True)
class Head:
    """How long a table's chain is and where it ends."""

    rows: int
    head_id: int | None
    head_hash: str | None


@dataclass(frozen=True)
class ChainReport:
    breaks: list[Break]
    heads: dict[str, Head]
    sealed: bool  # False when no secret was given: the seals were not checked


class Chain:
    """Links and seals rows as they are written; walks the chains to verify them."""

    def __init__(self, secret: str | bytes | None) -> None:
        if secret is None:
            self._key: bytes | None = None
        else:
            raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
            self._key = hmac.new(raw, _SEAL_LABEL, hashlib.sha256).digest()

    def _seal(self, digest: str) -> str | None:
        if self._key is None:
            return None
        return hmac.new(self._key, digest.encode("ascii"), hashlib.sha256).hexdigest()

    def append(self, conn: Connection, table: str, content: Mapping[str, Any]) -> int:
        """Insert one row of ``table`` (every column but id and the links),
        chained onto the table's newest row; its id. Read from the table, not
        cached: another process (a command next to the daemon) may have moved it."""
        if table not in CHAINED:
            raise ValueError(f"{table} is not a chained table")
        for name, value in content.items():
            # Anything else would be stored as another type than it was hashed as.
            if value is not None and not isinstance(value, (str, int, float)):
                raise TypeError(f"{table}.{name}: {type(value).__name__} cannot be chained")
        head = conn.execute(f"SELECT id, row_hash FROM {table} ORDER BY id DESC LIMIT 1").fetchone()
        row_id = 1 if head is None else int(head["id"]) + 1
        prev = GENESIS if head is None else str(head["row_hash"] or "")
        digest = row_hash(table, row_id, prev, content)
        names = ("id", *content, *LINK_COLUMNS)
        conn.execute(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            (row_id, *content.values(), prev, digest, self._seal(digest)),
        )
        return row_id

    def backfill(self, conn: Connection) -> None:
        """Link and seal the rows a ledger had before it was chained, oldest
        first. Runs inside the migration that adds the columns; the tables'
        update triggers are lifted for it and put back exactly as they were."""
        for table in CHAINED:
            triggers = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? "
                "AND name = ?", (table, f"{table}_no_update")).fetchall()
            for trigger in triggers:
                conn.execute(f"DROP TRIGGER {trigger['name']}")
            prev = GENESIS
            for row in _rows(lambda: nullcontext(conn), table):
                digest = row_hash(table, int(row["id"]), prev, _content(row))
                conn.execute(f"UPDATE {table} SET prev_hash = ?, row_hash = ?, seal = ? WHERE id = ?",
                             (prev, digest, self._seal(digest), row["id"]))
                prev = digest
            for trigger in triggers:
                conn.execute(trigger["sql"])

    def verify(self, read: Callable[[], AbstractContextManager[Connection]]) -> ChainReport:
        """Walk every chain, oldest row first; the first broken row of each
        table, and each table's head. ``read`` opens a read transaction."""
        breaks: list[Break] = []
        heads: dict[str, Head] = {}
        for table in CHAINED:
            found, heads[table] = self._walk(read, table)
            if found is not None:
                breaks.append(found)
        return ChainReport(breaks, heads, sealed=self._key is not None)

    def _walk(self, read: Callable[[], AbstractContextManager[Connection]],
              table: str) -> tuple[Break | None, Head]:
        found: Break | None = None
        prev_id: int | None = None
        prev_hash: str | None = GENESIS
        rows = 0
        for row in _rows(read, table):
            rows += 1
            if found is None:
                what = self._check(table, row, prev_id, prev_hash)
                if what is not None:
                    found = Break(table, int(row["id"]), what)
            prev_id, prev_hash = int(row["id"]), row["row_hash"]
        return found, Head(rows, prev_id, prev_hash if rows else None)

    def _check(self, table: str, row: Any, prev_id: int | None, expected: str | None) -> str | None:
        """What is wrong with one row, given the row before it; None if nothing."""
        if row["row_hash"] is None or row["prev_hash"] is None:
            return "it has no chain hash: it was written around recguard"
        if row["prev_hash"] != expected:
            if prev_id is None:
                return "it is the oldest row but does not start the chain: rows before it were removed"
            return (f"its prev_hash is not the hash of row {prev_id}: rows between them were "
                    f"removed or inserted, or row {prev_id} was rewritten")
        if row_hash(table, int(row["id"]), row["prev_hash"], _content(row)) != row["row_hash"]:
            return "its content does not match its hash: the row was changed after it was written"
        if self._key is None:
            return None
        if row["seal"] is None:
            return ("it has no seal: it was written without RECGUARD_HASH_SECRET, "
                    "or its seal was removed")
        if not hmac.compare_digest(str(row["seal"]), self._seal(row["row_hash"]) or ""):
            return ("its seal does not match RECGUARD_HASH_SECRET: the row was forged or "
                    "rewritten by someone without the secret"
                    + (", or the secret was changed since it was written" if prev_id is None else ""))
        return None


def _rows(read: Callable[[], AbstractContextManager[Connection]], table: str) -> Iterator[Any]:
    """A table's rows in id order, a page at a time (a chain may be millions of rows)."""
    after: int | None = None
    while True:
        with read() as conn:
            if after is None:
                page = conn.execute(f"SELECT * FROM {table} ORDER BY id LIMIT ?", (_PAGE,)).fetchall()
            else:
                page = conn.execute(f"SELECT * FROM {table} WHERE id > ? ORDER BY id LIMIT ?",
                                    (after, _PAGE)).fetchall()
        yield from page
        if len(page) < _PAGE:
            return
        after = int(page[-1]["id"])

