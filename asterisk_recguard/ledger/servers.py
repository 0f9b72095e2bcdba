"""Which server's calls and recordings a reader means, when several Asterisk
servers share one ledger: the SQL that scopes a listing to one server id,
and how rows written before the ledger knew servers are given one.

A row whose ``server_id`` is NULL was written before schema version 5. Such
rows come from a ledger that had one server (an SQLite file, or a copy of
one), so they count as that server's while the ledger holds no other
server's rows, and the first guard to start on it claims them for good.
Once several servers write, an unowned row is nobody's to finalize or
delete, and stays so (``recguard audit`` still reports it when overdue).
"""

from __future__ import annotations

from typing import Any

from .codecs import check_server_id
from .engine import Engine

# The tables whose rows belong to one server and are never history (the
# access log's server_id, set once on insert, is part of its hash chain).
_OWNED = ("calls", "recordings")


def scoped(server_id: str | None) -> tuple[str, tuple[Any, ...]]:
    """The condition (``AND ...``) and its parameters for one server's rows:
    its own, and the unowned ones while no other server has any; nothing for
    every server's. ``< ? OR > ?`` rather than ``!=``, so that the look for
    another server's rows walks the server_id indexes."""
    if server_id is None:
        return "", ()
    check_server_id(server_id)
    others = " AND ".join(f"NOT EXISTS (SELECT 1 FROM {table} WHERE server_id < ? OR "
                          "server_id > ?)" for table in _OWNED)
    return (f" AND (server_id = ? OR (server_id IS NULL AND {others}))",
            (server_id, *(server_id,) * 2 * len(_OWNED)))


class ServerScope:
    """The ledger's methods on servers."""

    _engine: Engine

    def claim_unowned(self, server_id: str) -> int:
        """Give the calls and recordings without a server to ``server_id``
        when the ledger holds no other server's; how many rows it gave."""
        check_server_id(server_id)
        with self._engine.transaction() as conn:
            others = [conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE server_id < ? "
                                   "OR server_id > ?)", (server_id, server_id)).fetchone()[0]
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
