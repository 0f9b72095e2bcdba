"""``recguard purge``: delete the recordings past their retention deadline."""

from __future__ import annotations

import argparse
from typing import Any

from ..access import current_actor
from ..display import printable
from ..ledger import utcnow
from ..retention import PurgeReport, purge
from . import _dpo
from ._common import add_command

LIST_LIMIT = 100  # recordings listed per section; the decision log has every one

HELP = f"""\
Deletes, irreversibly, every finalized recording whose retention deadline has
passed and that is not under legal hold: its encrypted file and any clear
copy. Each deletion is recorded in the ledger (reason retention_expired, who,
when) and as one recording_deleted line in the decision log; the run as one
purge line and in the access log. Deletions left half-done by an interrupted
purge are finished first. Held recordings past their deadline are kept and
listed.

The guard (`recguard run`) also purges every RECGUARD_PURGE_INTERVAL seconds;
config/recguard-purge.timer runs this command hourly instead, if you prefer.

{_dpo.CONFIG_NOTE}

examples:
  recguard purge --dry-run                  what would be deleted now
  recguard purge                            delete what is past its deadline
  recguard purge --now 2027-01-01           as if it were that day (deadlines only)
  recguard purge --orphans                  also delete files the ledger does not know
  recguard purge --server pbx-b             the recordings of server pbx-b (a shared
                                            ledger; its files must be reachable here)

exit status: 0 when everything due was deleted, 1 when some file could not
be deleted (it is retried by the next purge), 2 on a configuration error.
"""


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "purge", "delete recordings past their retention deadline", HELP,
                         func=_dpo.one_line_errors(run))
    parser.add_argument("--dry-run", action="store_true",
                        help="change nothing; show what would be deleted")
    parser.add_argument("--now", type=_dpo.timestamp, metavar="TIMESTAMP",
                        help="compare deadlines with this time instead of the current one "
                             "(ISO 8601, UTC unless a zone is given)")
    parser.add_argument("--server", type=_dpo.server_id, metavar="ID",
                        help="purge the recordings of this server (default RECGUARD_SERVER_ID); "
                             "on a ledger several servers share, each purges its own")
    parser.add_argument("--orphans", action="store_true",
                        help="also delete files in the recordings directory that have no "
                             "ledger entry and are older than RECGUARD_ORPHAN_GRACE seconds")
    _dpo.add_env_file(parser)


def run(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    now = args.now or utcnow()
    with _dpo.open_ledger(settings) as ledger, _dpo.open_log(settings) as log:
        report = purge(ledger, log, now, current_actor(), dry_run=args.dry_run,
                       recordings_dir=settings.recordings_dir,
                       orphans_dir=settings.recordings_dir if args.orphans else None,
                       orphan_grace=settings.orphan_grace,
                       server_id=args.server or settings.server_id)
    for line in render(report, orphans=args.orphans, grace=settings.orphan_grace):
        print(printable(line))  # file names and hold reasons are not ours
    return 0 if report.ok else 1


def _listed(lines: list[str], items: list[str]) -> None:
    lines.extend(f"  {item}" for item in items[:LIST_LIMIT])
    if len(items) > LIST_LIMIT:
        lines.append(f"  ... and {len(items) - LIST_LIMIT} more (each one is in the decision log)")


def render(report: PurgeReport, *, orphans: bool = False, grace: float = 0) -> list[str]:
    dry = report.dry_run
    server = f" of server {report.server_id}" if report.server_id else ""
    lines = [f"purge{' (dry run, nothing changed)' if dry else ''}{server} at "
             f"{_dpo.when(report.now)} by {report.actor}"]
    if report.resumed:
        lines.append(f"{'would finish' if dry else 'finished'} {len(report.resumed)} "
                     "deletion(s) an earlier run left half-done:")
        _listed(lines, [f"{d.recording_id}  {d.reason}" for d in report.resumed])
    verb = "would delete" if dry else "deleted"
    if report.deleted:
        lines.append(f"{verb} {len(report.deleted)} recording(s) past their deadline:")
        _listed(lines, [f"{d.recording_id}  deadline {_dpo.when(d.deadline)}  "
                        f"{','.join(d.purposes)}" for d in report.deleted])
    else:
        lines.append("no recording is past its deadline")
    if report.held:
        lines.append(f"kept {len(report.held)} held recording(s) past their deadline:")
        lines.extend(f"  {r.recording_id}  deadline {_dpo.when(r.deadline)}  held since "
                     f"{_dpo.when(r.held_at)} by {r.held_by}: {r.hold_reason}"
                     for r in report.held)
    if report.in_flight:
        lines.append(f"left {len(report.in_flight)} deletion(s) the guard is doing right now:")
        _listed(lines, [f"{r.recording_id}  {r.deletion_reason}" for r in report.in_flight])
    if orphans:
        if report.orphans:
            lines.append(f"{verb} {len(report.orphans)} orphan file(s) (no ledger entry, "
                         f"older than {grace:g} s):")
            _listed(lines, [f"{o.path}  ({o.age_s:.0f} s old, {o.size_bytes} bytes)"
                            for o in report.orphans])
        else:
            lines.append("no orphan files")
        if report.orphans_in_progress:
            lines.append(f"left {len(report.orphans_in_progress)} file(s) without a ledger "
                         f"entry younger than {grace:g} s (maybe being written):")
            _listed(lines, [f"{o.path}  ({o.age_s:.0f} s old)"
                            for o in report.orphans_in_progress])
    for failure in report.failures:
        lines.append(f"FAILED {failure.what}: {failure.error} (the next purge retries it)")
    counts = (f"{len(report.deleted)} {'to delete' if dry else 'deleted'}, "
              f"{len(report.resumed)} {'to finish' if dry else 'finished'}, "
              f"{len(report.held)} held")
    if orphans:
        counts += f", {len(report.orphans)} orphan(s)"
    if report.failures:
        counts += f", {len(report.failures)} FAILED"
    lines.append(f"purge: {counts} in {report.duration_s:.2f} s")
    return lines
