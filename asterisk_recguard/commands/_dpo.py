"""What the record-keeping commands (purge, hold, release, subject, export,
access-log, audit) share: settings, the ledger and the decision log opened
the same way as by ``recguard run``, argument types, and time formatting."""

from __future__ import annotations

import argparse
import functools
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path

from ..decisionlog import DecisionLog
from ..display import printable, quoted
from ..envfile import DEFAULT_ENV_FILE, ENV_FILE_VARIABLE
from ..errors import UserError
from ..ledger import Ledger
from ..ledger.codecs import SERVER_ID
from ..settings import Settings, load_settings
from ._common import ENV_FILE_HELP, Command, at_least

CONFIG_NOTE = f"""\
Configuration: --env-file, else {ENV_FILE_VARIABLE}, else {DEFAULT_ENV_FILE}
if it exists; RECGUARD_* variables override it (see config/recguard.env.example).
The ARI and AMI credentials are not needed here."""


def add_env_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, metavar="PATH", help=ENV_FILE_HELP)


def one_line_errors(func: Command) -> Command:
    """An operating-system or SQLite error (a log or directory recguard may
    not write, a full disk) as one line and exit status 2, not a traceback."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            hint = ("; run recguard as the user `recguard run` runs as (it owns the ledger, "
                    "the decision log and the recordings)"
                    if isinstance(exc, PermissionError) else "")
            raise UserError(f"{exc.strerror or exc}{where}{hint}") from None
        except sqlite3.Error as exc:
            raise UserError(f"the ledger failed: {exc}") from None
        except Exception as exc:
            # psycopg's errors, told apart without importing it for an SQLite ledger.
            if not type(exc).__module__.startswith("psycopg"):
                raise
            first = str(exc).strip().splitlines()
            raise UserError(f"the ledger failed: {first[0] if first else type(exc).__name__}"
                            ) from None

    return wrapper


def settings(args: argparse.Namespace) -> Settings:
    loaded = load_settings(args.env_file, need_asterisk=False)
    for warning in loaded.warnings:
        print(f"recguard: warning: {printable(warning)}", file=sys.stderr)
    return loaded


def open_ledger(settings: Settings) -> Ledger:
    """The existing ledger. Never a new, empty one: against an empty ledger
    every recording would look like an orphan (``Ledger`` refuses a missing
    or empty file in one line that says what to restore)."""
    return Ledger(settings.ledger, seal_secret=settings.hash_secret, server_id=settings.server_id)


def open_log(settings: Settings) -> DecisionLog:
    return DecisionLog(settings.decision_log)


def timestamp(text: str) -> datetime:
    """An ISO 8601 date or date and time; without a zone it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{quoted(text)} is not a date or time; write e.g. 2026-11-28 or 2026-11-28T10:00:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def reason(text: str) -> str:
    """A --reason: free text, but not blank."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be blank: say why, it goes to the access log")
    return text.strip()


positive = at_least(1)


def server_id(text: str) -> str:
    """A --server: a server id as RECGUARD_SERVER_ID takes it."""
    if not SERVER_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{quoted(text)} is not a server id (1 to 64 letters, digits, '.', '_' or '-')")
    return text


def read_caller(value: str) -> str:
    """--caller NUMBER, or ``-`` to read it from standard input (so that it
    stays out of the shell history and the process list)."""
    if value != "-":
        return value
    line = sys.stdin.readline()
    if not line.strip():
        raise UserError("--caller -: no number on standard input")
    return line.strip()


def when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def day(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%d")
