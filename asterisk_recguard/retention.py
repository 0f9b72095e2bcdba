"""Retention: the purge of recordings past their deadline.

A recording may be kept only while a purpose justifies it. The guard gives
each recording a deadline when it is finalized; :func:`purge` deletes every
finalized recording whose deadline has passed, unless a legal hold keeps it
(litigation, an authority's request; see :mod:`.holds`), irreversibly: the
ciphertext and any clear copy. With ``orphans_dir`` it also deletes the files
the ledger does not know (see :mod:`.orphans`).

Every deletion is two-step, as the ledger requires: the recording is marked
'deleting' before its files are unlinked and 'deleted' after. A purge killed
half-way therefore leaves recordings in 'deleting', whose files may or may not
be gone, and the next purge finishes them first. Unlinking a file that is
already gone is not an error, so finishing is always possible. One deletion
is :func:`storage.delete_recording`; expired recordings go in batches of the
same steps, one ledger transaction and one directory sync per batch, and log
the same ``recording_deleted`` line. Either way, a recording whose ledger row
names a file outside the recordings directory is refused
(:func:`storage.check_inside`): it stays 'deleting' and is a failure of the
purge, every run, until the operator sets it right.

A purge takes the ledger, the decision log and the ``actor`` (who runs it,
see :func:`access.current_actor`), and writes what it did to both: one
``recording_deleted`` line per deletion, one ``purge`` line per run, and the
access log in the ledger. A run without failures also touches the stamp
file beside the ledger (:func:`last_purge`), whoever ran it, so that
monitoring sees purges that had nothing to delete.

Two clocks: ``now`` is the point in time retention deadlines are compared
with (``recguard purge --now`` moves it); ``clock`` is the real time, used
for timestamps of what is done and for the ages of files, so that moving
``now`` never makes a file being written look old.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from .access import Clock
from .access import current_actor as current_actor  # where the daemon imports it from
from .decisionlog import EventLog
from .ledger import MAX_BATCH, InvalidTransition, Ledger, Recording, format_ts, utcnow
from .orphans import ORPHAN_FILE, DirEntry, delete_orphans, scan_directory
from .storage import (
    Deletion,
    OutsideRecordingsDir,
    check_inside,
    delete_recording,
    is_recording_id,
    log_deleted,
    recording_files,
    refused,
    unlink_durably,
)

RETENTION_EXPIRED = "retention_expired"

# A deletion marked less than this long ago may still be running in the guard
# (it waits for MixMonitor to close the file); purge leaves it to its owner.
SETTLE = timedelta(seconds=60)


@dataclass(frozen=True)
class Failure:
    what: str  # a recording id or a file
    error: str


@dataclass
class PurgeReport:
    """What one purge did, or (``dry_run``) would do."""

    now: datetime
    actor: str
    dry_run: bool
    resumed: list[Deletion] = field(default_factory=list)  # interrupted deletions finished
    deleted: list[Deletion] = field(default_factory=list)  # past the deadline
    held: list[Recording] = field(default_factory=list)  # past the deadline, kept by a hold
    in_flight: list[Recording] = field(default_factory=list)  # deletions the guard is doing
    orphans: list[DirEntry] = field(default_factory=list)
    orphans_in_progress: list[DirEntry] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    duration_s: float = 0.0
    server_id: str | None = None  # whose recordings; None: every server's

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def did_something(self) -> bool:
        return bool(self.resumed or self.deleted or self.orphans)


def _stamp_path(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".last-purge")


def last_purge(ledger_path: Path) -> float | None:
    """When (epoch seconds) the last purge without failures ended, by any
    process on this ledger; None if none has yet."""
    try:
        return os.stat(_stamp_path(ledger_path)).st_mtime
    except FileNotFoundError:
        return None


def _stamp(ledger_path: Path) -> None:
    try:
        _stamp_path(ledger_path).touch(mode=0o600)
    except OSError as exc:  # only monitoring reads it; the purge itself is done
        logging.getLogger(__name__).warning("could not mark the purge done: %s", exc)


@contextlib.contextmanager
def _purge_lock(ledger_path: Path) -> Iterator[None]:
    """One purge at a time per ledger (the daemon's timer and a manual run),
    so that no deletion is done or logged twice."""
    lock_path = ledger_path.with_name(ledger_path.name + ".purge-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def purge(ledger: Ledger, log: EventLog, now: datetime, actor: str, dry_run: bool = False,
          *, recordings_dir: Path, orphans_dir: Path | None = None, orphan_grace: float = 3600,
          clock: Clock = utcnow, server_id: str | None = None) -> PurgeReport:
    """Delete every finalized recording whose deadline is at or before ``now``
    and that is not held; first finish deletions an interrupted run left.
    With ``server_id``, only that server's recordings (a ledger several
    servers share: each purges its own, whose files it can reach).

    Only files inside ``recordings_dir`` are deleted; a recording with a file
    elsewhere is a failure. With ``orphans_dir``, also delete files there that have no ledger entry
    and are at least ``orphan_grace`` seconds old. With ``dry_run``, change
    nothing and report what would be done. Unlink errors do not stop the
    purge: they are reported in ``failures`` (the recording stays 'deleting'
    and the next purge retries it).

    Safe to call from the daemon's timer thread and from the command line at
    the same time: the runs take turns.
    """
    began = time.monotonic()
    report = PurgeReport(now=now, actor=actor, dry_run=dry_run, server_id=server_id)
    # A database ledger has no file to lock beside it; its writers take turns in the database.
    lock = (contextlib.nullcontext() if dry_run or ledger.path is None
            else _purge_lock(ledger.path))
    with lock:
        _finish_pending(ledger, log, report, clock, recordings_dir)
        _delete_expired(ledger, log, report, clock, recordings_dir)
        report.held = ledger.held_recordings(past_deadline_at=now, server_id=server_id)
        if orphans_dir is not None:
            scan = scan_directory(ledger, orphans_dir, grace_s=orphan_grace, clock=clock)
            report.orphans_in_progress.extend(scan.in_progress)
            report.orphans.extend(delete_orphans(
                log, scan, actor=report.actor, dry_run=dry_run,
                failed=lambda what, exc: _fail(log, report, what, exc)))
    report.duration_s = round(time.monotonic() - began, 3)
    if report.ok and not dry_run and ledger.path is not None:
        # Beside an SQLite ledger; a database ledger's guard has no stamp yet
        # (recguard run takes only an SQLite ledger so far).
        _stamp(ledger.path)

    log.emit(
        "purge", actor=actor, now=now, dry_run=dry_run, deleted=len(report.deleted),
        resumed=len(report.resumed), held=[r.recording_id for r in report.held],
        in_flight=[r.recording_id for r in report.in_flight], orphans=len(report.orphans),
        failed=len(report.failures), duration_s=report.duration_s, server=server_id,
        level="info" if report.ok else "error",
    )
    if not dry_run and report.did_something:
        reasons = ([RETENTION_EXPIRED] if report.deleted or report.resumed else []) + (
            [ORPHAN_FILE] if report.orphans else [])
        ledger.log_access(
            actor=actor, action="purge", reason=", ".join(reasons),
            detail={"now": format_ts(now), "deleted": len(report.deleted),
                    "resumed": len(report.resumed), "orphans": len(report.orphans),
                    "held": len(report.held), "failed": len(report.failures),
                    **({"server": server_id} if server_id is not None else {})},
            at=clock(),
        )
    return report


def _finish_pending(ledger: Ledger, log: EventLog, report: PurgeReport, clock: Clock,
                    recordings_dir: Path) -> None:
    settled_before = clock() - SETTLE
    for rec in ledger.pending_deletions(server_id=report.server_id):
        if rec.stopped_at is not None and rec.stopped_at > settled_before:
            report.in_flight.append(rec)
            continue
        if report.dry_run:
            if _inside(report, rec, recordings_dir):
                report.resumed.append(Deletion.of(rec, rec.deletion_reason or RETENTION_EXPIRED))
            continue
        try:
            report.resumed.append(delete_recording(
                ledger, log, rec, reason=rec.deletion_reason or RETENTION_EXPIRED,
                actor=report.actor, clock=clock, recordings_dir=recordings_dir, resumed=True))
        except (OSError, InvalidTransition, OutsideRecordingsDir) as exc:
            _fail(log, report, rec.recording_id, exc)


def _inside(report: PurgeReport, rec: Recording, recordings_dir: Path) -> bool:
    """In a dry run: would the recording's files be deleted, or refused (a failure)?"""
    try:
        check_inside(recordings_dir, rec.recording_id, recording_files(rec))
    except OutsideRecordingsDir as exc:
        report.failures.append(Failure(rec.recording_id, _describe(exc)))
        return False
    return True


def _delete_expired(ledger: Ledger, log: EventLog, report: PurgeReport, clock: Clock,
                    recordings_dir: Path) -> None:
    expired = ledger.expired(report.now, server_id=report.server_id)
    if report.dry_run:
        report.deleted.extend(Deletion.of(rec, RETENTION_EXPIRED) for rec in expired
                              if _inside(report, rec, recordings_dir))
        return
    for start in range(0, len(expired), MAX_BATCH):
        batch = {rec.recording_id: rec for rec in expired[start:start + MAX_BATCH]}
        marked = ledger.mark_deleting_expired(list(batch), now=report.now,
                                              reason=RETENTION_EXPIRED, actor=report.actor,
                                              at=clock())
        files: dict[str, list[Path]] = {}
        for recording_id in marked:
            rec, paths = batch[recording_id], recording_files(batch[recording_id])
            try:
                check_inside(recordings_dir, recording_id, paths)
            except OutsideRecordingsDir as exc:
                refused(log, rec, exc, reason=RETENTION_EXPIRED, actor=report.actor)
                _fail(log, report, recording_id, exc)
                continue
            files[recording_id] = paths
        failed: dict[Path, OSError] = {}
        removed = set(unlink_durably([path for paths in files.values() for path in paths],
                                     failed=failed))
        gone: list[Recording] = []
        for recording_id, paths in files.items():
            error = next((failed[path] for path in paths if path in failed), None)
            if error is not None:
                _fail(log, report, recording_id, error)
            else:
                gone.append(batch[recording_id])
        if gone:
            ledger.mark_deleted_many([rec.recording_id for rec in gone], at=clock())
        for rec in gone:
            report.deleted.append(log_deleted(
                log, rec, reason=RETENTION_EXPIRED, actor=report.actor,
                removed=[path for path in files[rec.recording_id] if path in removed]))


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, OutsideRecordingsDir) else f"{type(exc).__name__}: {exc}"


def _fail(log: EventLog, report: PurgeReport, what: str, exc: BaseException) -> None:
    error = _describe(exc)
    report.failures.append(Failure(what, error))
    one = is_recording_id(what)
    log.emit("purge_failed", recording_id=what if one else None, file=None if one else what,
             actor=report.actor, error=error)
