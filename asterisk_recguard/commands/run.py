"""`recguard run`: the guard daemon."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import ENV_FILE_HELP, add_command

HELP = """\
Runs the guard: registers the ARI app (so Stasis(recguard) in
dialplan/recguard.conf succeeds), decides every call that passes the gate,
starts and stops MixMonitor through AMI, and writes the ledger and the
decision log. While it is not running, calls pass the gate unrecorded.

The ledger: on the very first start (no file at RECGUARD_LEDGER and no
recording in RECGUARD_RECORDINGS_DIR) it is created, as by `recguard ledger
init`. A missing ledger beside recordings, or an empty ledger file, is a
ledger lost: the guard refuses to start and says what to restore.

Configuration: --env-file, else RECGUARD_ENV_FILE, else /etc/recguard/recguard.env
if it exists; RECGUARD_* variables override it (see config/recguard.env.example).
Signals: SIGTERM stops cleanly (exit 0), SIGHUP reloads the policy.

examples:
  recguard run --env-file /etc/recguard/recguard.env
  recguard run --env-file /var/lib/recguard/sandbox/recguard.env   # the sandbox
"""


def _run(args: argparse.Namespace) -> int:
    from ..daemon import run

    return run(args.env_file)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "run", "the guard daemon (ARI events -> decisions -> MixMonitor)",
                         HELP, func=_run)
    parser.add_argument("--env-file", type=Path, metavar="PATH", help=ENV_FILE_HELP)
