"""``recguard audit``: check that the recordings directory, the ledger and
the policy agree, that the ledger's journals were not rewritten, and with
``--verify`` that every kept recording is authentic."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..audit import audit
from ..display import printable
from ..policy import load_policy
from ..vault import Keyring
from ..verification import verify_recordings
from . import _dpo
from ._common import add_command

HELP = f"""\
Checks, reading only:
  - every file in the recordings directory has a ledger entry (files younger
    than RECGUARD_ORPHAN_GRACE seconds may be a recording being written or
    finalized: they are listed as in progress);
  - every recording not deleted has its file, and an encrypted one no clear copy;
  - every finalized recording is justified by its call's final facts under
    the current policy, and none is kept past its deadline without a legal hold;
  - no recording is stuck half-recorded after its call ended, or half-deleted;
  - the decisions, the access log and the unauthorized log are as recguard
    wrote them: each row is hash-chained to the one before it and sealed with
    RECGUARD_HASH_SECRET; the first row changed, removed or forged is named.

With --verify it also reads every kept recording whole: an encrypted one must
authenticate under its key in RECGUARD_KEY_FILE, and its audio (or an
unencrypted file) must have the SHA-256 taken when it was finalized, which
catches a damaged file, a lost key and two files swapped. On a terminal a
progress line shows how far it is.

{_dpo.CONFIG_NOTE}

examples:
  recguard audit
  recguard audit --verify
  recguard audit --json | jq '.problems[]'

exit status: 0 and one OK line when consistent; 1 and one line per problem
when not; 2 on a configuration error.
"""


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "audit", "check that recordings, ledger and policy agree", HELP,
                         func=_dpo.one_line_errors(run))
    parser.add_argument("--json", action="store_true", help="the report as one JSON object")
    parser.add_argument("--verify", action="store_true",
                        help="also authenticate every kept recording (reads every file)")
    _dpo.add_env_file(parser)


def run(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    policy = load_policy(settings.policy)
    with _dpo.open_ledger(settings) as ledger:
        report = audit(ledger, policy, settings.recordings_dir,
                       orphan_grace=settings.orphan_grace,
                       purge_interval=settings.purge_interval)
        if args.verify:
            verified = verify_recordings(ledger, lambda: Keyring.load(settings.key_file))
            report.problems.extend(verified.problems)
            report.authenticated = verified.authenticated
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        return 0 if report.ok else 1
    if report.ok:
        print(f"OK: {report.summary()}")
    # A problem names files and ledger values: a file name may hold a line break.
    for problem in report.problems:
        print(printable(problem.message))
    for entry in report.in_progress:
        print(printable(f"in progress: {entry.path} ({entry.age_s:.0f} s old, no ledger entry yet)"))
    return 0 if report.ok else 1
