"""``recguard subject find|export|erase``: answer a data subject's request
for access to, or erasure of, the recordings of their calls."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..access import current_actor
from ..display import printable
from ..exporting import REQUEST_SUBJECT, export_recordings
from ..ledger import Ledger, Recording
from ..lifecycle import RecordingStatus
from ..reach import of_server, out_of_reach, refusal
from ..subjects import SubjectRecording, erase, find, subject_hash
from ..vault import Keyring
from . import _dpo
from ._common import add_command

HELP = f"""\
Finds, exports or erases the recordings of one caller. The number may be
written in any usual form: +386 40 123 456, 0038640123456 and 040 123 456 (with
RECGUARD_DEFAULT_COUNTRY_CODE=386) are the same caller. It is turned into the
keyed hash the ledger keeps; the number itself is never stored, logged or
printed. Give --caller - to read it from standard input instead of the
command line (shell history, process list).

Every request goes to the access log with your user name and the reason.

{_dpo.CONFIG_NOTE}

examples:
  recguard subject find --caller "+386 40 123 456"
  recguard subject export --caller "040 123 456" --to /root/dsar-2026-11-28 \\
      --reason "access request of 2026-11-20, ref. DSAR-17"
  recguard subject erase --caller 0038640123456 --reason "erasure request, ref. DSAR-18"
"""

FIND_HELP = f"""\
Lists the caller's recordings: id, call date, purposes, status, deadline and
legal hold, deleted ones included (with when and why). The look-up is logged.

{_dpo.CONFIG_NOTE}

examples:
  recguard subject find --caller "+386 40 123 456"
  echo "040 123 456" | recguard subject find --caller - --reason "DSAR-17"
"""

EXPORT_HELP = f"""\
Decrypts every recording of the caller into DIR/<recording id>.wav, checks
each against its SHA-256 in the ledger and writes DIR/manifest.json (ids, call
dates, purposes, legal bases, deadlines, sha256; never the number). All or
nothing: if one recording fails authentication or verification, or is still
being recorded, nothing is written and each failure is named. DIR is created
with mode 0700 (or must be empty); files are 0600. The export goes to the
access log, and so does an attempt that stops short, whatever stops it.
Where several servers share the ledger, a recording of another server whose
file cannot be opened here stops the whole export (it says where each is);
--server ID exports only the recordings made on that server.

{_dpo.CONFIG_NOTE}

examples:
  recguard subject export --caller "040 123 456" --to /root/dsar-17 \\
      --reason "access request of 2026-11-20, ref. DSAR-17"

exit status: 0 exported (or nothing to export); 1 a recording failed; 2 a bad argument.
"""

ERASE_HELP = f"""\
Deletes the caller's recordings irreversibly (reason erasure_request in the
ledger), except those under legal hold or still being recorded: they are
named with the reason they are kept. The ledger keeps the calls' decisions
(with the hash only) as the record of what was done. Where several servers
share the ledger, a recording of another server whose file cannot be opened
here stops the whole erasure (it says where each is and what to run there);
--server ID erases only the recordings made on that server.

{_dpo.CONFIG_NOTE}

examples:
  recguard subject erase --caller 0038640123456 --reason "erasure request, ref. DSAR-18"

exit status: 0 all erased (or none found); 1 some were refused; 2 a bad argument.
"""


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "subject",
                         "data-subject requests: find, export or erase a caller's recordings", HELP)
    actions = parser.add_subparsers(dest="subject_action", metavar="ACTION", required=True)

    find_p = add_command(actions, "find", "list the caller's recordings", FIND_HELP,
                         func=_dpo.one_line_errors(run_find))
    find_p.add_argument("--reason", type=_dpo.reason,
                        help="why you look (optional, logged)")
    find_p.add_argument("--json", action="store_true", help="one JSON object per recording")

    export_p = add_command(actions, "export", "export the caller's recordings, decrypted", EXPORT_HELP,
                           func=_dpo.one_line_errors(run_export))
    export_p.add_argument("--to", required=True, type=Path, metavar="DIR",
                          help="a new or empty directory to export into")
    export_p.add_argument("--reason", required=True, type=_dpo.reason,
                          help="the request being answered; mandatory, logged")

    erase_p = add_command(actions, "erase", "delete the caller's recordings", ERASE_HELP,
                          func=_dpo.one_line_errors(run_erase))
    erase_p.add_argument("--reason", required=True, type=_dpo.reason,
                         help="the request being answered; mandatory, logged")

    for action in (export_p, erase_p):
        action.add_argument("--server", type=_dpo.server_id, metavar="ID",
                            help="only the recordings made on this server (default: every "
                                 "server's, whose files must then all be reachable here)")
    for action in (find_p, export_p, erase_p):
        action.add_argument("--caller", required=True, metavar="NUMBER",
                            help="the caller's number in any usual spelling, or - for stdin")
        _dpo.add_env_file(action)


def _hash(args: argparse.Namespace, settings: Any) -> str:
    return subject_hash(_dpo.read_caller(args.caller), settings.hash_secret,
                        settings.default_country_code)


def _status(item: SubjectRecording) -> str:
    rec = item.recording
    if rec.status == RecordingStatus.DELETED:
        return f"deleted {_dpo.day(rec.deleted_at)} ({rec.deletion_reason})"
    return rec.status


def run_find(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    caller_hash = _hash(args, settings)
    with _dpo.open_ledger(settings) as ledger, _dpo.open_log(settings) as log:
        found = find(ledger, log, caller_hash, actor=current_actor(), reason=args.reason)
    if args.json:
        for item in found:
            rec = item.recording
            print(json.dumps({
                "recording_id": rec.recording_id, "call_date": _dpo.when(item.call_started_at),
                "purposes": rec.purposes, "status": rec.status, "deadline": _dpo.when(rec.deadline),
                "held": rec.held, "hold_reason": rec.hold_reason,
                "deleted_at": _dpo.when(rec.deleted_at) if rec.deleted_at else None,
                "deletion_reason": rec.deletion_reason, "server": rec.server_id,
            }, ensure_ascii=False))
        return 0
    if not found:
        print(f"no recordings for this caller (caller hash {caller_hash[:12]}...)")
        return 0
    print(f"{len(found)} recording(s) for this caller (caller hash {caller_hash[:12]}...):")
    rows: list[tuple[str, ...]] = [("RECORDING", "SERVER", "CALL DATE", "PURPOSES", "STATUS",
                                    "DEADLINE", "HELD")]
    # Cells escaped before they are measured: a hold reason may hold a line break.
    rows += [tuple(printable(cell) for cell in (
                 item.recording.recording_id, item.recording.server_id or "-",
                 _dpo.when(item.call_started_at),
                 ",".join(item.recording.purposes), _status(item),
                 _dpo.day(item.recording.deadline),
                 f"held: {item.recording.hold_reason}" if item.recording.held else "-"))
             for item in found]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]))
    return 0


def _refuse_out_of_reach(ledger: Ledger, recordings: list[Recording], settings: Any,
                         command: str, reason: str, caller_hash: str) -> None:
    """Nothing partial: a request that includes files on another server that
    this one cannot reach is refused whole (and the refusal logged)."""
    here = settings.server_id
    away = out_of_reach(recordings, here, settings.recordings_dir)
    if not away:
        return
    refused = refusal(away, here, command)
    ledger.log_access(actor=current_actor(), action=command, reason=reason,
                      detail={"caller_hash": caller_hash, "outcome": "refused",
                              "why": f"files on other servers: {', '.join(sorted(away))}"})
    raise refused


def run_export(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    caller_hash = _hash(args, settings)
    with _dpo.open_ledger(settings) as ledger, _dpo.open_log(settings) as log:
        recordings = of_server(ledger.recordings_by_caller_hash(caller_hash), args.server)
        _refuse_out_of_reach(ledger, recordings, settings, "export", args.reason, caller_hash)
        result = export_recordings(
            ledger, log, recordings, args.to, reason=args.reason, actor=current_actor(),
            keyring=lambda: Keyring.load(settings.key_file), request=REQUEST_SUBJECT,
            caller_hash=caller_hash)
    if not recordings:
        print("no recordings for this caller; nothing exported")
        return 0
    for path in result.files:
        print(printable(f"exported {path}"))
    print(printable(f"manifest {result.manifest}  ({len(result.files)} recording(s))"))
    return 0


def run_erase(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    caller_hash = _hash(args, settings)
    with _dpo.open_ledger(settings) as ledger, _dpo.open_log(settings) as log:
        _refuse_out_of_reach(ledger, of_server(ledger.recordings_by_caller_hash(caller_hash),
                                               args.server),
                             settings, "erase", args.reason, caller_hash)
        report = erase(ledger, log, caller_hash, reason=args.reason, actor=current_actor(),
                       recordings_dir=settings.recordings_dir, server_id=args.server)
    if not report.deleted and not report.refused:
        print("no recordings for this caller; nothing to erase")
        return 0
    for deletion in report.deleted:
        print(printable(f"erased {deletion.recording_id}  ({','.join(deletion.purposes)})"))
    for rec, why in report.refused:
        print(printable(f"NOT erased {rec.recording_id}: {why}"))
    print(f"erase: {len(report.deleted)} erased, {len(report.refused)} refused")
    if report.refused:
        print("the refused recordings are kept; tell the data subject why "
              "(e.g. a legal hold under GDPR art. 17(3)(e))")
        return 1
    return 0
