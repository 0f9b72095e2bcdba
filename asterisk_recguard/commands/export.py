"""``recguard export``: one recording, decrypted, with a manifest, for a reason."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..retention import current_actor, get_recording
from ..subjects import REQUEST_RECORDING, export_recordings
from ..vault import Keyring
from . import _dpo

HELP = f"""\
Decrypts one recording into DIR/<recording id>.wav, checks it against the
SHA-256 the ledger took when the recording was finalized, and writes
DIR/manifest.json (recording id, call date, purposes, legal bases, deadline,
sha256, size, duration, who exported it, when and why; never the caller's
number). DIR is created with mode 0700 (or must be empty), files are 0600.

A reason is mandatory: reading a recording through recguard without one is
not possible. The export goes to the access log with your user name.

A recording whose ciphertext fails authentication, or that does not match
its SHA-256, is reported and nothing is written.

{_dpo.CONFIG_NOTE}

examples:
  recguard export 3f2a9c0d5b7e4f1a8c6d2e9b0a1f3c5d --to /root/export-2026-11 \\
      --reason "complaint review, ticket 4711"

exit status: 0 exported; 1 the recording failed verification or is not
finalized; 2 no such recording, a missing reason or another bad argument.
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="export one recording, decrypted, with a manifest",
        description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording_id", metavar="RECORDING_ID")
    parser.add_argument("--to", required=True, type=Path, metavar="DIR",
                        help="a new or empty directory to export into")
    parser.add_argument("--reason", required=True, type=_dpo.reason,
                        help="why the recording is read; mandatory, goes to the access log")
    _dpo.add_env_file(parser)
    parser.set_defaults(func=_dpo.one_line_errors(run))


def run(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    with _dpo.open_ledger(settings) as ledger, _dpo.open_log(settings) as log:
        rec = get_recording(ledger, args.recording_id)
        result = export_recordings(
            ledger, log, [rec], args.to, reason=args.reason, actor=current_actor(),
            keyring=lambda: Keyring.load(settings.key_file), request=REQUEST_RECORDING)
    for path in result.files:
        print(f"exported {path}")
    print(f"manifest {result.manifest}")
    return 0
