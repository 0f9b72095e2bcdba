"""`recguard demo`: the guard on the sandbox with a few simulated calls."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from ..devtools.demo import run_demo

    return run_demo(language=args.language, keep=args.keep)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="see it work: sandbox Asterisk, recguard run, six simulated calls",
        description=(
            "Brings up the sandbox Asterisk with the example IVR, starts `recguard run` "
            "against it, places six simulated calls of different kinds at once, and "
            "shows the decision log and which calls left a recording."
        ),
    )
    parser.add_argument("--language", choices=("sl", "en"), default="sl", help="prompt language (default sl)")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running afterwards")
    parser.set_defaults(func=_run)
