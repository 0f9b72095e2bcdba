"""``recguard ledger init``: create the ledger of a new installation, on
purpose; ``recguard ledger copy``: move an SQLite ledger into PostgreSQL.

No other command creates a ledger: a missing or empty one is a ledger lost,
and beside recordings a new one would take each for an orphan.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..ledger import Ledger
from ..ledger.location import URL_HINT, DatabaseUrl, is_url
from . import _dpo
from ._common import add_command

HELP = """\
Manages the ledger, recguard's durable record of every call, decision,
recording, deletion and access (RECGUARD_LEDGER)."""

INIT_HELP = f"""\
Creates a new, empty ledger at RECGUARD_LEDGER for a new installation. The
first `recguard run` does the same when there is no ledger at all and no
recording yet; this command does it beforehand, e.g. from a provisioning
script.

It refuses, and changes nothing:
  - when a file is already there (an empty one too: an empty ledger is a
    ledger lost, not a new one; restore it from its backup);
  - when RECGUARD_RECORDINGS_DIR holds recordings (*.wav, *.wav.rgv): a new
    ledger would know none of them, so each would look like an orphan and
    `recguard purge --orphans` would delete it. Restore the ledger from its
    backup instead, or point RECGUARD_LEDGER at it.

Every other command refuses a missing or empty ledger in the same way.

{_dpo.CONFIG_NOTE}

examples:
  recguard ledger init --env-file /etc/recguard/recguard.env
  sudo -u recguard recguard ledger init          # as the user `recguard run` runs as
"""


COPY_HELP = f"""\
Copies an SQLite ledger, with all its history, into a PostgreSQL database,
for an installation that moves to a shared ledger. Every row of every table
is copied as it is (ids, hash chains and seals included), in one
transaction; then the copy is checked: the row counts, and each hash chain
walked to the same head as the source's. What was copied is printed.

The database must hold no ledger rows: the command makes the ledger's tables
in an empty database (run it as the role that owns the database), and
refuses one whose ledger already holds rows. The source is upgraded to this
recguard's schema first, as `recguard run` would. Stop `recguard run` before
copying, and point RECGUARD_LEDGER at the database afterwards. The password
goes in ~/.pgpass or PGPASSFILE, not in the URL.

Calls and recordings written before ledgers knew servers (schema version 5)
are given the server id of the server the ledger came from: --server ID,
by default RECGUARD_SERVER_ID. Run the copy on that server, with its
configuration, so that its guard finishes them.

{_dpo.CONFIG_NOTE}

examples:
  recguard ledger copy --from sqlite:/var/lib/recguard/ledger.sqlite3 \\
      --to postgresql://recguard_owner@db.example/recguard
"""


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "ledger", "create the ledger of a new installation", HELP,
                         wrap=True)
    actions = parser.add_subparsers(dest="ledger_action", metavar="ACTION", required=True)
    init = add_command(actions, "init", "create a new, empty ledger (never over recordings)",
                       INIT_HELP, func=_dpo.one_line_errors(run_init))
    _dpo.add_env_file(init)
    copy = add_command(actions, "copy", "copy an SQLite ledger into a PostgreSQL database",
                       COPY_HELP, func=_dpo.one_line_errors(run_copy))
    copy.add_argument("--from", dest="source", required=True, metavar="sqlite:PATH",
                      help="the SQLite ledger to copy")
    copy.add_argument("--to", dest="target", required=True, metavar="postgresql://...",
                      help="the PostgreSQL database to copy it into")
    copy.add_argument("--server", type=_dpo.server_id, metavar="ID",
                      help="the server the SQLite ledger belongs to (default RECGUARD_SERVER_ID)")
    _dpo.add_env_file(copy)


def run_init(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    with Ledger.create(settings.ledger, recordings_dir=settings.recordings_dir) as ledger:
        print(f"created the ledger {ledger.location} (schema version {ledger.schema_version}); "
              "back it up regularly: it cannot be rebuilt from the recordings")
    return 0


def _source(text: str) -> Path:
    raw = text.removeprefix("sqlite:")
    if is_url(raw) or not raw.strip():
        raise UserError("--from names the SQLite ledger to copy, as sqlite:PATH, e.g. "
                        "sqlite:/var/lib/recguard/ledger.sqlite3")
    return Path(raw).expanduser().absolute()


def _target(text: str) -> DatabaseUrl:
    if not is_url(text.strip()):
        raise UserError(f"--to names the PostgreSQL database to copy into; {URL_HINT}")
    try:
        return DatabaseUrl.parse(text)
    except ValueError as exc:
        raise UserError(f"--to is {exc}") from None


def run_copy(args: argparse.Namespace) -> int:
    from ..ledger.copying import copy_ledger  # loads psycopg
    source_path, target_url = _source(args.source), _target(args.target)
    settings = _dpo.settings(args)
    secret, server = settings.hash_secret, args.server or settings.server_id
    made = not Ledger.exists(target_url)
    if made:
        Ledger.create(target_url, recordings_dir=None, seal_secret=secret).close()
    with Ledger(source_path, seal_secret=secret) as source, \
            Ledger(target_url, seal_secret=secret) as target:
        report = copy_ledger(source, target)
        version = target.schema_version
        claimed = target.claim_unowned(server)
    print(f"{'made the ledger in' if made else 'found an empty ledger in'} {target_url} "
          f"(schema version {version})")
    print(f"copied {source_path} into it in one transaction: {report.summary()} rows")
    heads = ", ".join(f"{table} at row {head.head_id}" for table, head in report.chains.heads.items()
                      if head.head_id is not None) or "no rows yet"
    print(f"verified: the row counts match; the hash chains are whole"
          f"{' and sealed' if report.chains.sealed else ''} and end where the source's do "
          f"({heads})")
    if claimed:
        print(f"gave the {claimed} calls and recordings without a server id to server {server}")
    print("next: set RECGUARD_LEDGER to the database's URL; keep the SQLite file as a backup")
    return 0
