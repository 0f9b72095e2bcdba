"""``recguard hold`` and ``recguard release``: keep a recording past its
deadline for a litigation or an authority's request, and lift that again."""

from __future__ import annotations

import argparse
from typing import Any

from ..access import current_actor
from ..holds import place_hold, release_hold
from ..display import printable
from ..ledger import utcnow
from . import _dpo
from ._common import add_command

HOLD_HELP = f"""\
Places a legal hold on a recording: the purge keeps it past its deadline
(and lists it) until it is released, and a data-subject erasure refuses to
delete it. The reason is mandatory; it goes with your user name to the
ledger's access log and to the decision log.

{_dpo.CONFIG_NOTE}

examples:
  recguard hold 3f2a9c0d5b7e4f1a8c6d2e9b0a1f3c5d --reason "court case P 123/2026"
  recguard subject find --caller "+386 40 123 456"      to find the recording id

exit status: 0 held; 1 already held or deleted; 2 no such recording or a bad argument.
"""

RELEASE_HELP = f"""\
Releases a legal hold. If the recording's deadline has passed, the next purge
deletes it. Who released it, and why if given, goes to the access log.

{_dpo.CONFIG_NOTE}

examples:
  recguard release 3f2a9c0d5b7e4f1a8c6d2e9b0a1f3c5d --reason "case P 123/2026 closed"

exit status: 0 released; 1 not held; 2 no such recording or a bad argument.
"""


def register(subparsers: Any) -> None:
    hold = add_command(subparsers, "hold", "keep a recording past its deadline (legal hold)", HOLD_HELP,
                       func=_dpo.one_line_errors(run_hold))
    hold.add_argument("recording_id", metavar="RECORDING_ID")
    hold.add_argument("--reason", required=True, type=_dpo.reason,
                      help="why (litigation, an authority's request); mandatory")
    _dpo.add_env_file(hold)

    release = add_command(subparsers, "release", "release a legal hold", RELEASE_HELP,
                          func=_dpo.one_line_errors(run_release))
    release.add_argument("recording_id", metavar="RECORDING_ID")
    release.add_argument("--reason", type=_dpo.reason, help="why the hold ends")
    _dpo.add_env_file(release)


def run_hold(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    with _dpo.open_ledger(settings) as ledger, _dpo.open_log(settings) as log:
        rec = place_hold(ledger, log, args.recording_id, reason=args.reason,
                         actor=current_actor())
    print(printable(f"recording {rec.recording_id} is under legal hold: {rec.hold_reason}"))
    print(printable(f"  held by {rec.held_by} at {_dpo.when(rec.held_at)}; deadline "
                    f"{_dpo.when(rec.deadline)} no longer applies until it is released"))
    return 0


def run_release(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    with _dpo.open_ledger(settings) as ledger, _dpo.open_log(settings) as log:
        rec = release_hold(ledger, log, args.recording_id, actor=current_actor(),
                           reason=args.reason)
    print(f"recording {rec.recording_id}: legal hold released")
    if rec.deadline is not None and rec.deadline <= utcnow():
        print(f"  its deadline {_dpo.when(rec.deadline)} has passed: the next purge deletes it")
    elif rec.deadline is not None:
        print(f"  it will be deleted after its deadline {_dpo.when(rec.deadline)}")
    return 0
