"""`recguard demo`: the guard on the sandbox with a few simulated calls."""

from __future__ import annotations

import argparse

from ._common import add_command

# One paragraph, re-flowed to the terminal's width.
DESCRIPTION = """\
Brings up the sandbox Asterisk with the example IVR, starts `recguard run`
against it, places six simulated calls of different kinds at once, and shows
the decision log and which calls left a recording."""

def _run(args: argparse.Namespace) -> int:
    from ..devtools.demo import run_demo

    return run_demo(language=args.language, keep=args.keep)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "demo", "see it work: sandbox Asterisk, recguard run, six simulated calls",
                         DESCRIPTION, func=_run, wrap=True)
    parser.add_argument("--language", choices=("sl", "en"), default="sl", help="prompt language (default sl)")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running afterwards")
