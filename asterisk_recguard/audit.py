"""The consistency audit: do the recordings directory, the ledger and the
policy agree?

Checked, each problem one line:

* every file in the recordings directory has a ledger entry (files younger
  than the orphan grace period may be a recording being written or
  finalized: they are listed as in progress, not as problems);
* every recording the ledger has not deleted has its file, and an encrypted
  one has no clear copy left beside it;
* every finalized recording is justified by its call's final facts under the
  current policy (``decide()`` on them includes each of its purposes) or is
  under legal hold, and is not kept past its deadline without a legal hold;
* no recording is stuck half-recorded after its call ended, or half-deleted;
* the hash chains of the decisions, the access log and the unauthorized log
  hold (:mod:`.ledger.chain`): the first broken row of each is named.

Authenticating the recordings' audio, which reads every file, is apart:
:mod:`.verification` (``recguard audit --verify``).
* no recording names a file outside the recordings directory (a ledger
  edited or restored from an old backup, a spool moved): recguard never
  deletes there, so such a recording would outlive its deadline.

Where several servers share the ledger, a recording of another server
whose file is not in this server's recordings directory (not shared) is
checked only for what the ledger alone tells: whether it is overdue, naming
its server; its files are that server's audit to check.

It reads and never changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .access import Clock
from .ledger import Head, Ledger, Recording, format_ts, utcnow
from .lifecycle import RecordingStatus
from .orphans import DirEntry, scan_directory
from .reach import elsewhere
from .policy import CallFacts, Policy, decide
from .retention import SETTLE
from .storage import outside_of, recording_files

# What the audit checks: every recording the ledger has not deleted.
_NOT_DELETED = tuple(s for s in RecordingStatus if s != RecordingStatus.DELETED)


@dataclass(frozen=True)
class Problem:
    kind: str
    message: str
    recording_id: str | None = None
    file: str | None = None
    server: str | None = None  # the server whose recording it is, when the ledger knows


@dataclass
class AuditReport:
    problems: list[Problem] = field(default_factory=list)
    in_progress: list[DirEntry] = field(default_factory=list)
    files_checked: int = 0
    recordings_checked: int = 0
    chains: dict[str, Head] = field(default_factory=dict)
    authenticated: int | None = None  # recordings whose audio was verified, if it was

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        text = (f"{self.recordings_checked} recordings and {self.files_checked} files "
                "consistent with the ledger and the policy")
        if self.authenticated is not None:
            text += f"; {self.authenticated} recordings authenticated"
        if self.in_progress:
            text += f"; {len(self.in_progress)} file(s) in progress not checked"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "recordings_checked": self.recordings_checked,
            "files_checked": self.files_checked,
            "authenticated": self.authenticated,
            "chains": {table: asdict(head) for table, head in self.chains.items()},
            "problems": [asdict(p) for p in self.problems],
            "in_progress": [asdict(e) for e in self.in_progress],
        }


def _age(now: datetime, then: datetime | None) -> timedelta:
    return timedelta(0) if then is None else now - then


def _hours(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 3600:
        return f"{seconds:.0f} s"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.0f} days"


def audit(ledger: Ledger, policy: Policy, recordings_dir: Path, *, orphan_grace: float,
          purge_interval: float = 3600, clock: Clock = utcnow) -> AuditReport:
    """Compare the directory, the ledger and the policy; see the module docstring.

    ``purge_interval`` is how late a purge may come: a recording past its
    deadline by more than that (and not held) is reported as kept too long.
    """
    report = AuditReport()
    scan = scan_directory(ledger, recordings_dir, grace_s=orphan_grace, clock=clock)
    now = clock()
    grace = timedelta(seconds=orphan_grace)
    report.files_checked = scan.files
    report.in_progress = list(scan.in_progress)
    chains = ledger.verify_chains()
    report.chains = chains.heads
    for broken in chains.breaks:
        report.problems.append(Problem(
            "chain_broken", f"the ledger was changed behind recguard's back: {broken.message}; "
            "keep the file as it is for the investigation and compare it with your backups"))
    for orphan in scan.orphans:
        report.problems.append(Problem(
            "orphan", f"orphan file {orphan.path}: no ledger entry, {_hours(timedelta(seconds=orphan.age_s))} "
            "old (recguard purge --orphans deletes it)", file=orphan.path))
    for path in scan.irregular:
        report.problems.append(Problem(
            "not_a_file", f"{path} in the recordings directory is not a regular file",
            file=path))

    recordings = ledger.recordings(statuses=_NOT_DELETED)
    report.recordings_checked = len(recordings)
    for rec in recordings:
        if elsewhere(rec, ledger.server_id, recordings_dir):
            # Another server's, its file out of reach here (a directory not
            # shared): only what the ledger alone tells is checked.
            report.problems.extend(_ledger_only(rec, now, timedelta(seconds=max(purge_interval, 3600))))
            continue
        astray = _outside(rec, recordings_dir)
        if astray is not None:
            report.problems.append(astray)
            continue
        report.problems.extend(_check(ledger, policy, rec, now, grace,
                                      timedelta(seconds=max(purge_interval, 3600))))
    return report


def _outside(rec: Recording, recordings_dir: Path) -> Problem | None:
    for path in recording_files(rec):
        why = outside_of(recordings_dir, path)
        if why is not None:
            return Problem("outside_recordings_dir",
                           f"recording {rec.recording_id} ('{rec.status}') names {path}, which "
                           f"{why}; recguard deletes nothing there (a moved spool: make its old "
                           "path a symlink to the new one)",
                           recording_id=rec.recording_id, file=str(path))
    return None


def _ledger_only(rec: Recording, now: datetime, purge_lag: timedelta) -> Iterable[Problem]:
    if rec.status == RecordingStatus.FINALIZED:
        yield from _overdue(rec, now, purge_lag)


def _overdue(rec: Recording, now: datetime, purge_lag: timedelta) -> Iterable[Problem]:
    if rec.deadline is not None and not rec.held and now - rec.deadline > purge_lag:
        # Every server's, named: a server that is down does not purge its own.
        of, where = ((f" of server {rec.server_id}", f" on {rec.server_id} (or `recguard purge "
                      f"--server {rec.server_id}` where its files can be reached)")
                     if rec.server_id else ("", ""))
        yield Problem("overdue",
                      f"recording {rec.recording_id}{of} is kept {_hours(now - rec.deadline)} past "
                      f"its deadline {format_ts(rec.deadline)} without a legal hold; run recguard "
                      f"purge{where}", recording_id=rec.recording_id, file=rec.file_path,
                      server=rec.server_id)


def _check(ledger: Ledger, policy: Policy, rec: Recording, now: datetime, grace: timedelta,
           purge_lag: timedelta) -> Iterable[Problem]:
    rid = rec.recording_id
    status = RecordingStatus(rec.status)
    if status == RecordingStatus.DELETING:
        if _age(now, rec.stopped_at) > SETTLE:
            yield Problem("stuck_deleting",
                          f"recording {rid} is stuck in 'deleting' ({rec.deletion_reason}): "
                          "its deletion was interrupted; recguard purge finishes it",
                          recording_id=rid, file=rec.file_path)
        return

    call = ledger.call(rec.call_id)
    if status.open:
        if call is not None and call.ended_at is not None and _age(now, call.ended_at) > grace:
            yield Problem("not_finalized",
                          f"recording {rid} is still '{rec.status}' though its call ended "
                          f"{_hours(now - call.ended_at)} ago; restarting recguard finalizes it",
                          recording_id=rid, file=rec.path)
        elif not Path(rec.path).exists() and _age(now, rec.started_at) > grace:
            yield Problem("missing_file",
                          f"recording {rid} ('{rec.status}' since {format_ts(rec.started_at)}) "
                          f"has no file {rec.path}", recording_id=rid, file=rec.path)
        return

    # finalized
    if not Path(rec.file_path).exists():
        yield Problem("missing_file",
                      f"finalized recording {rid} has no file {rec.file_path}",
                      recording_id=rid, file=rec.file_path)
    if rec.stored_path and Path(rec.path).exists():
        yield Problem("clear_copy",
                      f"encrypted recording {rid} still has its clear file {rec.path}",
                      recording_id=rid, file=rec.path)
    yield from _overdue(rec, now, purge_lag)
    yield from _justification(rec, call, policy)


def _justification(rec: Recording, call: Any, policy: Policy) -> Iterable[Problem]:
    rid = rec.recording_id
    if call is None:
        yield Problem("unjustified", f"recording {rid} belongs to call {rec.call_id}, "
                      "which is not in the ledger", recording_id=rid)
        return
    try:
        decision = decide(CallFacts.from_dict(call.last_facts), policy)
    except (TypeError, ValueError) as exc:
        yield Problem("unjustified", f"recording {rid}: the final facts of call {rec.call_id} "
                      f"cannot be read ({exc})", recording_id=rid)
        return
    missing = sorted(set(rec.purposes) - set(decision.purposes))
    # A legal hold (a litigation, an authority's request) is itself the reason
    # to keep it (GDPR art. 17(3)(e)); the hold is listed by purge and the access log.
    if missing and not rec.held:
        why = ", ".join(f"{r.purpose}: {r.reason}" for r in decision.rejected
                        if r.purpose in missing) or "not declared in the final facts"
        yield Problem("unjustified",
                      f"recording {rid} is kept for {','.join(missing)}, which the final "
                      f"facts of call {rec.call_id} do not justify under policy "
                      f"{policy.label} ({why})", recording_id=rid)
