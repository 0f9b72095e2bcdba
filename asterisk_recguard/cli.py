"""The ``recguard`` command line: parses arguments and hands each subcommand
to its module under ``asterisk_recguard.commands``.

Every command module exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (taking the parsed namespace, returning an exit status).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .display import printable, printable_lines
from .errors import UserError

# Order here is the order in `recguard --help`.
COMMAND_MODULES = (
    "run",
    "decide",
    "logs",
    "audit",
    "purge",
    "hold",
    "subject",
    "export",
    "access_log",
    "report",
    "ledger",
    "keys",
    "prompts",
    "sandbox",
    "demo",
)

EPILOG = """\
typical use:
  recguard check-config --env-file /etc/recguard/recguard.env
                                        validate the policy and the settings
  recguard decide --purpose order --notice evidence-v1
                                        ask the policy what it would do
  recguard run --env-file /etc/recguard/recguard.env
                                        the guard daemon (see README)
  recguard logs -f                      tail the decision log
  recguard sandbox up                   a local Asterisk 22 to try it on

Configuration comes from RECGUARD_* environment variables or an env file;
see config/recguard.env.example.
"""


# argparse's own messages are short; what makes one long is the argument it quotes.
USAGE_LIMIT = 300


class _Parser(argparse.ArgumentParser):
    """argparse's usage errors quote the argument given (``invalid choice: '…'``):
    they are escaped and shortened like every other echo. Subcommands' parsers
    are of this class too."""

    def error(self, message: str) -> NoReturn:
        super().error(printable(message, USAGE_LIMIT))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recguard",
        description=(
            "Lawful call recording for Asterisk: records a call only when a "
            "purpose with a legal basis is declared and its notice played to "
            "the end, and logs every decision."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recguard {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f".commands.{name}", __package__).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        # Each line escaped: the message is ours, but may quote what is not.
        print(f"recguard: error: {printable_lines(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
