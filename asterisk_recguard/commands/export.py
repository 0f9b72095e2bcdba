"""``recguard export``: one recording, decrypted, with a manifest, for a
reason and for one of the purposes it was recorded for."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..access import current_actor, get_recording
from ..display import printable, quoted
from ..errors import UserError
from ..exporting import REQUEST_RECORDING, export_recordings
from ..policy import Policy, load_policy
from ..vault import Keyring
from . import _dpo
from ._common import add_command

HELP = f"""\
Decrypts one recording into DIR/<recording id>.wav, checks it against the
SHA-256 the ledger took when the recording was finalized, and writes
DIR/manifest.json (recording id, call date, purposes, legal bases, deadline,
sha256, size, duration, who exported it, when, why and for which purpose;
never the caller's number). DIR is created with mode 0700 (or must be
empty), files are 0600.

A reason is mandatory: reading a recording through recguard without one is
not possible. The export goes to the access log with your user name, and so
does every attempt on a recording that stops short, whatever stops it (a key
file that cannot be read, a directory that cannot be used, an interruption).

A purpose is mandatory too (--for PURPOSE, a purpose id of the policy): the
one the export serves. A recording is tagged with exactly the purposes that
justify it, and may be used only for those (GDPR art. 5(1)(b)): an order
recording is evidence of the order, and is not reused for a quality review
unless the caller consented to quality monitoring, which makes `quality` one
of its purposes. An export for a purpose the recording lacks is refused,
names the recording's purposes, writes nothing, and goes to the access log
(action export, outcome refused) and the decision log. A data subject's own
request is answered with `recguard subject export`, which exports all their
recordings whatever their purposes.

A recording whose ciphertext fails authentication, or that does not match
its SHA-256, is reported and nothing is written.

{_dpo.CONFIG_NOTE}

examples:
  # a complaint call's recording, to handle that complaint
  recguard export 3f2a9c0d5b7e4f1a8c6d2e9b0a1f3c5d --to /root/export-4711 \\
      --for complaint --reason "complaint review, ticket 4711"

  # a quality review: only a recording the caller consented to (purpose
  # quality); any other is refused with exit 1 and the attempt is logged
  recguard export 9b1e4d7a2c8f4e0b9a3d5c7e1f2a4b6c --to /root/qa-2026-11 \\
      --for quality --reason "monthly quality review, agent team B"

exit status: 0 exported; 1 refused: the recording was not recorded for
PURPOSE, failed verification or is not finalized; 2 no such recording, a
PURPOSE the policy does not have, a missing --for or --reason, or another
bad argument. A purpose the recording lacks is 1, not 2: the command is
well-formed and understood, and the answer is no, because the law does not
allow that use of this recording; 2 means the command itself is wrong (a
typo in PURPOSE included) and is fixed by correcting it.
"""


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "export", "export one recording, decrypted, with a manifest", HELP,
                         func=_dpo.one_line_errors(run))
    parser.add_argument("recording_id", metavar="RECORDING_ID")
    parser.add_argument("--to", required=True, type=Path, metavar="DIR",
                        help="a new or empty directory to export into")
    parser.add_argument("--for", dest="for_purpose", required=True, metavar="PURPOSE",
                        help="the purpose the export serves (a purpose id of the policy, e.g. "
                             "complaint); it must be one of the recording's purposes")
    parser.add_argument("--reason", required=True, type=_dpo.reason,
                        help="why the recording is read; mandatory, goes to the access log")
    _dpo.add_env_file(parser)


def known_purpose(policy: Policy, purpose_id: str) -> str:
    """``purpose_id`` if the policy has it, else a usage error (exit 2) that
    lists the policy's purposes.

    A typo must not read as a lawful refusal: "not recorded for qualty" would
    tell the DPO something false about the recording. Purposes the policy
    forbids are known too (an export for them is refused like any purpose the
    recording lacks), but are listed apart since no recording ever has them.
    """
    wanted = purpose_id.strip()
    if wanted in policy.purposes:
        return wanted
    recorded = [p.id for p in policy.purposes.values() if p.records]
    never = [p.id for p in policy.purposes.values() if not p.records]
    listed = ", ".join(recorded) + (f" (never recorded: {', '.join(never)})" if never else "")
    raise UserError(f"--for {quoted(purpose_id)} is not a purpose of the policy {policy.label} "
                    f"({policy.source}); its purposes: {listed}")


def run(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    for_purpose = known_purpose(load_policy(settings.policy), args.for_purpose)
    with _dpo.open_ledger(settings) as ledger, _dpo.open_log(settings) as log:
        rec = get_recording(ledger, args.recording_id)
        result = export_recordings(
            ledger, log, [rec], args.to, reason=args.reason, actor=current_actor(),
            keyring=lambda: Keyring.load(settings.key_file), request=REQUEST_RECORDING,
            for_purpose=for_purpose)
    for path in result.files:
        print(printable(f"exported {path}"))
    print(printable(f"manifest {result.manifest}"))
    return 0
