"""Where a ledger lives, as RECGUARD_LEDGER gives it: a SQLite file's path,
or a PostgreSQL database's URL, which is never shown with its password.

Kept apart from the PostgreSQL engine so that naming a location never loads
psycopg; only parsing a URL does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

URL_SCHEMES = ("postgresql://", "postgres://")

URL_HINT = ("write it as postgresql://USER@HOST:PORT/DATABASE, or "
            "postgresql://USER@/DATABASE?host=/run/postgresql for a Unix socket "
            "(the password in ~/.pgpass or PGPASSFILE, not in the URL)")


def is_url(value: object) -> bool:
    """Whether a RECGUARD_LEDGER value names a PostgreSQL database."""
    return isinstance(value, (str, DatabaseUrl)) and str.startswith(
        value.url if isinstance(value, DatabaseUrl) else value, URL_SCHEMES)


@dataclass(frozen=True)
class DatabaseUrl:
    """A PostgreSQL URL; ``str()`` and ``repr()`` give the server and
    database only. :meth:`parse` refuses a URL psycopg cannot read."""

    url: str = field(repr=False)

    @classmethod
    def parse(cls, raw: str) -> DatabaseUrl:
        found = cls(raw.strip())
        found.parts()  # raises ValueError, without echoing the URL
        return found

    def parts(self) -> dict[str, str]:
        from psycopg import Error
        from psycopg.conninfo import conninfo_to_dict
        try:
            return {key: str(value) for key, value in conninfo_to_dict(self.url).items()}
        except Error:
            raise ValueError(f"not a valid PostgreSQL URL; {URL_HINT}") from None

    def __repr__(self) -> str:
        return f"DatabaseUrl({str(self)!r})"

    def __str__(self) -> str:
        try:
            parts = self.parts()
        except ValueError:
            return "postgresql://(an invalid URL)"
        user = f"{parts['user']}@" if parts.get("user") else ""
        port = f":{parts['port']}" if parts.get("port") else ""
        return f"postgresql://{user}{parts.get('host') or 'localhost'}{port}/{parts.get('dbname', '')}"


Location = Path | DatabaseUrl


def location_of(value: str | Path | DatabaseUrl) -> Location:
    """A path or a URL as given, typed."""
    if isinstance(value, (Path, DatabaseUrl)):
        return value
    return DatabaseUrl(value) if is_url(value) else Path(value)
