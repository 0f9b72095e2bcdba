"""Which server's calls and recordings a reader means, when several Asterisk
servers share one ledger: the SQL that scopes a listing to one server id,
and how rows written before the ledger knew servers are given one.

A row whose ``server_id`` is NULL was written before schema version 5. Such
rows come from a ledger that had one server (an SQLite file, or a copy of
one), so the first guard to start on it claims them, but only while no
other server's rows are in the ledger: where several servers already
write, an unowned row is nobody's to finalize or delete, and stays unowned
(``recguard audit`` still reports it when overdue).
"""

from __future__ import annotations

from typing import Any

from .codecs import check_server_id
from .engine import Engine

# The tables whose rows belong to one server and are never history (the
# access log's server_id, set once on insert, is part of its hash chain).
_OWNED = ("calls", "recordings")


def scoped(server_id: str | None, column: str = "server_id") -> tuple[str, tuple[Any, ...]]:
    """``AND column = ?`` for one server's rows; nothing for every server's."""
    if server_id is None:
        return "", ()
    return f" AND {column} = ?", (check_server_id(server_id),)


class ServerScope:
    """The ledger's methods on servers."""

    _engine: Engine

    def claim_unowned(self, server_id: str) -> int:
        """Give the calls and recordings without a server to ``server_id``
        when the ledger holds no other server's; how many rows it gave."""
        check_server_id(server_id)
        with self._engine.transaction() as conn:
            others = [conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE server_id IS NOT "
                                   "NULL AND server_id != ?)", (server_id,)).fetchone()[0]
                      for table in _OWNED]
            if any(others):
                return 0
            claimed = 0
            for table in _OWNED:
                count = conn.execute(f"SELECT count(*) FROM {table} WHERE server_id IS NULL"
                                     ).fetchone()[0]
                if count:
                    conn.execute(f"UPDATE {table} SET server_id = ? WHERE server_id IS NULL",
                                 (server_id,))
                claimed += int(count)
            return claimed

    def server_ids(self) -> list[str]:
        """Every server id the ledger's calls and recordings name, sorted."""
        with self._engine.transaction(write=False) as conn:
            rows = conn.execute("SELECT DISTINCT server_id FROM calls WHERE server_id IS NOT NULL "
                                "UNION SELECT DISTINCT server_id FROM recordings "
                                "WHERE server_id IS NOT NULL").fetchall()
        return sorted(str(row[0]) for row in rows)
