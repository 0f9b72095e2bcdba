"""``recguard ledger init``: create the ledger of a new installation, on purpose.

No other command creates a ledger: a missing or empty one is a ledger lost,
and beside recordings a new one would take each for an orphan.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..ledger import Ledger
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


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "ledger", "create the ledger of a new installation", HELP,
                         wrap=True)
    actions = parser.add_subparsers(dest="ledger_action", metavar="ACTION", required=True)
    init = add_command(actions, "init", "create a new, empty ledger (never over recordings)",
                       INIT_HELP, func=_dpo.one_line_errors(run_init))
    _dpo.add_env_file(init)


def run_init(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    with Ledger.create(settings.ledger, recordings_dir=settings.recordings_dir) as ledger:
        print(f"created the ledger {ledger.location} (schema version {ledger.schema_version}); "
              "back it up regularly: it cannot be rebuilt from the recordings")
    return 0
