"""Copying an SQLite ledger into a PostgreSQL one, with its history: every
row of every table as it is (ids, hashes and seals included), in one
transaction, into a ledger with no rows yet; then the copy is checked (row
counts, and each hash chain walked to the same head as the source's)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from .chain import ChainReport
from .face import Ledger
from .postgres import PgConnection, PgEngine
from .postgres_schema import IDENTITY_TABLES, TABLES
from .sqlite import SqliteEngine

_PAGE = 5000  # source rows read at a time


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int]  # per table, in copy order
    chains: ChainReport  # the target's, walked after the commit

    def summary(self) -> str:
        return ", ".join(f"{table} {count}" for table, count in self.rows.items())


def copy_ledger(source: Ledger, target: Ledger) -> CopyReport:
    """Copy ``source`` (SQLite) into ``target`` (PostgreSQL, no rows), checked.

    Refused, with nothing written: a source whose chains are broken (the copy
    would carry the break, and hide where it began), a target that holds any
    row, or two ledgers of different schema versions."""
    src, dst = source._engine, target._engine
    if not isinstance(src, SqliteEngine) or not isinstance(dst, PgEngine):
        raise UserError("a ledger is copied from an SQLite file into a PostgreSQL database")
    before = source.verify_chains()
    if before.breaks:
        raise UserError(f"the ledger {source.location} has a broken chain ({before.breaks[0].message}); "
                        "nothing was copied: run `recguard audit --verify` on it first")
    if source.schema_version != target.schema_version:
        raise UserError(f"the ledger {source.location} has schema version {source.schema_version} "
                        f"and {target.location} {target.schema_version}; open both with this "
                        "recguard first")
    rows: dict[str, int] = {}
    with dst.transaction() as conn, src.transaction(write=False) as read:
        unknown = {r[0] for r in read.execute("SELECT name FROM sqlite_master WHERE type = "
                                              "'table' AND name NOT LIKE 'sqlite%'").fetchall()}
        if unknown - set(TABLES):
            raise UserError(f"the ledger {source.location} has tables this recguard does not "
                            f"copy ({', '.join(sorted(unknown - set(TABLES)))}); nothing was "
                            "copied: use the recguard that wrote it")
        _refuse_rows(conn, str(target.location))
        for table in TABLES:
            rows[table] = _copy_table(read, conn, table)
        for table in IDENTITY_TABLES:
            if rows[table]:
                # Its ids came from SQLite: the identity continues after them.
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"(SELECT max(id) FROM {table}))")
    report = CopyReport(rows, target.verify_chains())
    _check(source, target, rows, before, report.chains)
    return report


def _refuse_rows(conn: PgConnection, where: str) -> None:
    """Under the writers' lock, so no write slips in between the look and the copy."""
    held = [table for table in TABLES
            if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]]
    if held:
        raise UserError(f"the ledger {where} is not empty ({', '.join(held)} hold rows); a "
                        "ledger is copied only into a new one: give a new, empty database")


def _pages(read: Any, table: str) -> Iterator[list[Any]]:
    """The source's rows of ``table`` in rowid order, a page at a time."""
    after = 0
    while True:
        page = read.execute(f"SELECT rowid AS rowid_, * FROM {table} WHERE rowid > ? "
                            "ORDER BY rowid LIMIT ?", (after, _PAGE)).fetchall()
        if not page:
            return
        yield page
        after = int(page[-1]["rowid_"])


def _copy_table(read: Any, conn: PgConnection, table: str) -> int:
    """Every row of ``table``, by COPY (the inserts' triggers still check
    each row); how many."""
    pages = _pages(read, table)
    first = next(pages, None)
    if first is None:
        return 0
    names = [name for name in first[0].keys() if name != "rowid_"]
    count = 0
    with conn.raw.cursor() as cursor, \
            cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
        for page in itertools.chain([first], pages):
            for row in page:
                copy.write_row([row[name] for name in names])
            count += len(page)
    return count


def _check(source: Ledger, target: Ledger, rows: dict[str, int], before: ChainReport,
           after: ChainReport) -> None:
    """The copy holds what was copied, and its chains end where the source's do."""
    with target._engine.transaction(write=False) as conn:
        counted = {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}
    problems = [f"{t} has {counted[t]} rows, {rows[t]} were copied"
                for t in TABLES if counted[t] != rows[t]]
    problems += [b.message for b in after.breaks]
    problems += [f"the {t} chain ends at row {after.heads[t].head_id}, the source's at "
                 f"{head.head_id}" for t, head in before.heads.items() if after.heads[t] != head]
    if problems:
        raise UserError(f"the copy in {target.location} does not match {source.location}: "
                        f"{problems[0]}; do not use it: drop its tables and copy again")
