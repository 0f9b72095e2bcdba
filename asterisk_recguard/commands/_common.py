"""What every command module shares: adding a (sub)command's parser, the
--env-file help, and the whole-number argument types."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from ..display import quoted
from ..envfile import DEFAULT_ENV_FILE, ENV_FILE_VARIABLE

Command = Callable[[argparse.Namespace], int]

ENV_FILE_DEFAULT = f"default: ${ENV_FILE_VARIABLE}, else {DEFAULT_ENV_FILE} if it exists"
ENV_FILE_HELP = f"env file with the RECGUARD_* settings ({ENV_FILE_DEFAULT})"


def add_command(
    subparsers: Any,
    name: str,
    summary: str,
    description: str | None = None,
    *,
    epilog: str | None = None,
    func: Command | None = None,
    wrap: bool = False,
    parents: Sequence[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    """The parser of one command, or of one action of a command, that runs
    ``func``; ``summary`` is its line in the parent's help.

    Descriptions and epilogs are laid out by hand (lists, examples), so their
    line breaks are kept; ``wrap`` lets argparse re-flow a plain paragraph to
    the terminal's width instead.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        parents=list(parents),
        formatter_class=argparse.HelpFormatter if wrap else argparse.RawDescriptionHelpFormatter,
    )
    if func is not None:
        parser.set_defaults(func=func)
    return parser


def at_least(minimum: int) -> Callable[[str], int]:
    """An argument type: a whole number no smaller than ``minimum``."""

    def number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{quoted(text)} is not a number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more")
        return value

    return number
