"""Retention: the purge of recordings past their deadline, legal holds, and
files in the recordings directory that the ledger does not know (orphans).

A recording may be kept only while a purpose justifies it. The guard gives
each recording a deadline when it is finalized; :func:`purge` deletes every
finalized recording whose deadline has passed, unless a legal hold keeps it
(litigation, an authority's request), irreversibly: the ciphertext and any
clear copy.

Every deletion is two-step, as the ledger requires: the recording is marked
'deleting' before its files are unlinked and 'deleted' after. A purge killed
half-way therefore leaves recordings in 'deleting', whose files may or may not
be gone, and the next purge finishes them first. Unlinking a file that is
already gone is not an error, so finishing is always possible.

Every function here takes the ledger, the decision log and the ``actor`` (who
runs it, see :func:`current_actor`), and writes what it did to both: one
``recording_deleted`` line per deletion, one ``purge`` line per run, and the
access log in the ledger.

Two clocks: ``now`` is the point in time retention deadlines are compared
with (``recguard purge --now`` moves it); ``clock`` is the real time, used
for timestamps of what is done and for the ages of files, so that moving
``now`` never makes a file being written look old.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .decisionlog import EventLog
from .errors import UserError
from .ledger import MAX_BATCH, InvalidTransition, Ledger, Recording, format_ts, utcnow

RETENTION_EXPIRED = "retention_expired"
ERASURE_REQUEST = "erasure_request"
ORPHAN_FILE = "orphan_file"
RELEASE_WITHOUT_REASON = "no reason given"

# A deletion marked less than this long ago may still be running in the guard
# (it waits for MixMonitor to close the file); purge leaves it to its owner.
SETTLE = timedelta(seconds=60)

_RECORDING_ID = re.compile(r"[0-9a-f]{32}")
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")

Clock = Callable[[], datetime]


class Refused(UserError):
    """The request is understood but the recording's state does not allow it
    (already held, not held, deleted); exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


# --- who is acting ---------------------------------------------------------------


def current_actor(environ: Mapping[str, str] | None = None) -> str:
    """The OS user running recguard, and through sudo the user who ran sudo:
    ``alice``, ``root (sudo by alice)``.

    SUDO_USER is an environment variable anyone can set, so it is only ever
    added to the real user name, never put in its place.
    """
    env = os.environ if environ is None else environ
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = f"uid {uid}"
    sudo = _UNPRINTABLE.sub("", env.get("SUDO_USER", ""))[:64]
    if sudo and sudo != user:
        return f"{user} (sudo by {sudo})"
    return user


def check_recording_id(text: str) -> str:
    """A recording id as the guard makes them (uuid4 hex), or UserError."""
    value = text.strip().lower()
    if not _RECORDING_ID.fullmatch(value):
        raise UserError(
            f"{text!r} is not a recording id (32 hex digits); "
            "find ids with: recguard subject find --caller NUMBER"
        )
    return value


def require_reason(reason: str | None, what: str) -> str:
    if reason is None or not reason.strip():
        raise UserError(f"{what} needs a reason: add --reason \"...\" (it goes to the access log)")
    return reason.strip()


def get_recording(ledger: Ledger, recording_id: str) -> Recording:
    rec = ledger.recording(check_recording_id(recording_id))
    if rec is None:
        raise UserError(f"no recording {recording_id} in the ledger {ledger.path}")
    return rec


# --- files -----------------------------------------------------------------------


def recording_files(rec: Recording) -> list[Path]:
    """Every file the product made for a recording: the ciphertext and the clear WAV."""
    files = [Path(rec.stored_path)] if rec.stored_path else []
    if rec.path and Path(rec.path) not in files:
        files.append(Path(rec.path))
    return files


def _unlink(path: Path) -> bool:
    """Unlink; True if a file was there. Never follows a symlink."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def _fsync_dirs(directories: set[Path]) -> None:
    """Make unlinks durable before the ledger says 'deleted'."""
    for directory in directories:
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_files(rec: Recording) -> list[str]:
    """Unlink the recording's files and make that durable; the paths that existed."""
    paths = recording_files(rec)
    removed = [str(path) for path in paths if _unlink(path)]
    _fsync_dirs({path.parent for path in paths})
    return removed


# --- one deletion ------------------------------------------------------------------


@dataclass(frozen=True)
class Deletion:
    """A recording deleted (or, in a dry run, that would be)."""

    recording_id: str
    call_id: str
    reason: str
    purposes: tuple[str, ...]
    deadline: datetime | None
    files_removed: tuple[str, ...] = ()

    @classmethod
    def of(cls, rec: Recording, reason: str, removed: Sequence[str] = ()) -> Deletion:
        return cls(rec.recording_id, rec.call_id, reason, tuple(rec.purposes), rec.deadline,
                   tuple(removed))


def delete_recording(ledger: Ledger, log: EventLog, rec: Recording, *, reason: str,
                     actor: str, clock: Clock = utcnow, **log_fields: Any) -> Deletion:
    """Delete one recording in the ledger's two steps and log it.

    A recording already 'deleting' is finished with the reason it was marked
    with. Raises ``RecordingHeld`` for a held recording, before touching anything.
    """
    if rec.status == "deleted":
        return Deletion.of(rec, rec.deletion_reason or reason)
    if rec.status != "deleting":
        rec = ledger.mark_deleting(rec.recording_id, reason=reason, actor=actor, at=clock())
    why = rec.deletion_reason or reason
    removed = _remove_files(rec)
    # Keep who started an interrupted deletion; record the finisher only if nobody was.
    ledger.mark_deleted(rec.recording_id, actor=None if rec.deleted_by else actor, at=clock())
    log.emit("recording_deleted", call_id=rec.call_id, recording_id=rec.recording_id,
             reason=why, actor=actor, purposes=list(rec.purposes), deadline=rec.deadline,
             files_removed=removed, **log_fields)
    return Deletion.of(rec, why, removed)


# --- orphans -------------------------------------------------------------------------


@dataclass(frozen=True)
class DirEntry:
    path: str
    age_s: float
    size_bytes: int


@dataclass(frozen=True)
class DirectoryScan:
    """The recordings directory compared with the ledger."""

    orphans: tuple[DirEntry, ...]  # no ledger entry, older than the grace period
    in_progress: tuple[DirEntry, ...]  # no ledger entry (yet), younger than it
    irregular: tuple[str, ...]  # directories, symlinks and the like: never ours
    files: int  # regular files seen


def scan_directory(ledger: Ledger, directory: Path, *, grace_s: float,
                   clock: Clock = utcnow) -> DirectoryScan:
    """Which files in ``directory`` the ledger does not account for.

    The directory is listed before the ledger is read: the guard writes a
    recording's ledger entry before MixMonitor creates its file, so any file
    listed here whose recording exists is already in the ledger when it is read.
    """
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        raise UserError(
            f"recordings directory {directory} does not exist; check RECGUARD_RECORDINGS_DIR"
        ) from None
    known = ledger.known_paths()
    real_dir = Path(os.path.realpath(directory))
    now = clock().timestamp()
    orphans: list[DirEntry] = []
    in_progress: list[DirEntry] = []
    irregular: list[str] = []
    files = 0
    for entry in entries:
        path = str(Path(directory) / entry.name)
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed meanwhile
        if not entry.is_file(follow_symlinks=False):
            irregular.append(path)
            continue
        files += 1
        if path in known or str(real_dir / entry.name) in known:
            continue
        # ctime too: a file moved in with an old mtime is still new here.
        age = now - max(st.st_mtime, st.st_ctime)
        item = DirEntry(path, round(max(age, 0.0), 1), st.st_size)
        (orphans if age >= grace_s else in_progress).append(item)
    return DirectoryScan(tuple(orphans), tuple(in_progress), tuple(irregular), files)


# --- purge -----------------------------------------------------------------------------


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

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def did_something(self) -> bool:
        return bool(self.resumed or self.deleted or self.orphans)


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
          *, orphans_dir: Path | None = None, orphan_grace: float = 3600,
          clock: Clock = utcnow) -> PurgeReport:
    """Delete every finalized recording whose deadline is at or before ``now``
    and that is not held; first finish deletions an interrupted run left.

    With ``orphans_dir``, also delete files there that have no ledger entry
    and are at least ``orphan_grace`` seconds old. With ``dry_run``, change
    nothing and report what would be done. Unlink errors do not stop the
    purge: they are reported in ``failures`` (the recording stays 'deleting'
    and the next purge retries it).

    Safe to call from the daemon's timer thread and from the command line at
    the same time: the runs take turns.
    """
    began = time.monotonic()
    report = PurgeReport(now=now, actor=actor, dry_run=dry_run)
    lock = contextlib.nullcontext() if dry_run else _purge_lock(ledger.path)
    with lock:
        _finish_pending(ledger, log, report, clock)
        _delete_expired(ledger, log, report, clock)
        report.held = ledger.held_recordings(past_deadline_at=now)
        if orphans_dir is not None:
            _delete_orphans(ledger, log, report, orphans_dir, orphan_grace, clock)
    report.duration_s = round(time.monotonic() - began, 3)

    log.emit(
        "purge", actor=actor, now=now, dry_run=dry_run, deleted=len(report.deleted),
        resumed=len(report.resumed), held=[r.recording_id for r in report.held],
        in_flight=[r.recording_id for r in report.in_flight], orphans=len(report.orphans),
        failed=len(report.failures), duration_s=report.duration_s,
        level="info" if report.ok else "error",
    )
    if not dry_run and report.did_something:
        reasons = ([RETENTION_EXPIRED] if report.deleted or report.resumed else []) + (
            [ORPHAN_FILE] if report.orphans else [])
        ledger.log_access(
            actor=actor, action="purge", reason=", ".join(reasons),
            detail={"now": format_ts(now), "deleted": len(report.deleted),
                    "resumed": len(report.resumed), "orphans": len(report.orphans),
                    "held": len(report.held), "failed": len(report.failures)},
            at=clock(),
        )
    return report


def _finish_pending(ledger: Ledger, log: EventLog, report: PurgeReport, clock: Clock) -> None:
    settled_before = clock() - SETTLE
    for rec in ledger.pending_deletions():
        if rec.stopped_at is not None and rec.stopped_at > settled_before:
            report.in_flight.append(rec)
            continue
        if report.dry_run:
            report.resumed.append(Deletion.of(rec, rec.deletion_reason or RETENTION_EXPIRED))
            continue
        try:
            report.resumed.append(delete_recording(
                ledger, log, rec, reason=rec.deletion_reason or RETENTION_EXPIRED,
                actor=report.actor, clock=clock, resumed=True))
        except (OSError, InvalidTransition) as exc:
            _fail(log, report, rec.recording_id, exc)


def _delete_expired(ledger: Ledger, log: EventLog, report: PurgeReport, clock: Clock) -> None:
    expired = ledger.expired(report.now)
    if report.dry_run:
        report.deleted.extend(Deletion.of(rec, RETENTION_EXPIRED) for rec in expired)
        return
    for start in range(0, len(expired), MAX_BATCH):
        batch = {rec.recording_id: rec for rec in expired[start:start + MAX_BATCH]}
        marked = ledger.mark_deleting_expired(list(batch), now=report.now,
                                              reason=RETENTION_EXPIRED, actor=report.actor,
                                              at=clock())
        gone: list[tuple[Recording, list[str]]] = []
        directories: set[Path] = set()
        for recording_id in marked:
            rec = batch[recording_id]
            paths = recording_files(rec)
            try:
                removed = [str(path) for path in paths if _unlink(path)]
            except OSError as exc:
                _fail(log, report, recording_id, exc)
                continue
            directories.update(path.parent for path in paths)
            gone.append((rec, removed))
        _fsync_dirs(directories)
        if gone:
            ledger.mark_deleted_many([rec.recording_id for rec, _ in gone], at=clock())
        for rec, removed in gone:
            log.emit("recording_deleted", call_id=rec.call_id, recording_id=rec.recording_id,
                     reason=RETENTION_EXPIRED, actor=report.actor, purposes=list(rec.purposes),
                     deadline=rec.deadline, files_removed=removed)
            report.deleted.append(Deletion.of(rec, RETENTION_EXPIRED, removed))


def _delete_orphans(ledger: Ledger, log: EventLog, report: PurgeReport, directory: Path,
                    grace_s: float, clock: Clock) -> None:
    scan = scan_directory(ledger, directory, grace_s=grace_s, clock=clock)
    report.orphans_in_progress.extend(scan.in_progress)
    for orphan in scan.orphans:
        if report.dry_run:
            report.orphans.append(orphan)
            continue
        try:
            existed = _unlink(Path(orphan.path))
        except OSError as exc:
            _fail(log, report, orphan.path, exc)
            continue
        if existed:
            _fsync_dirs({Path(orphan.path).parent})
            log.emit("orphan_deleted", file=orphan.path, age_s=orphan.age_s,
                     size_bytes=orphan.size_bytes, actor=report.actor, reason=ORPHAN_FILE)
            report.orphans.append(orphan)


def _fail(log: EventLog, report: PurgeReport, what: str, exc: BaseException) -> None:
    error = f"{type(exc).__name__}: {exc}"
    report.failures.append(Failure(what, error))
    log.emit("purge_failed", recording_id=what if _RECORDING_ID.fullmatch(what) else None,
             file=None if _RECORDING_ID.fullmatch(what) else what, actor=report.actor, error=error)


# --- legal hold ---------------------------------------------------------------------


def place_hold(ledger: Ledger, log: EventLog, recording_id: str, *, reason: str,
               actor: str, clock: Clock = utcnow) -> Recording:
    """Keep a recording past its deadline until released; logged with the reason."""
    why = require_reason(reason, "a legal hold")
    rec = get_recording(ledger, recording_id)
    if rec.held:
        raise Refused(
            f"recording {rec.recording_id} is already under legal hold since "
            f"{_day(rec.held_at)} by {rec.held_by}: {rec.hold_reason}; "
            "release it first to place a hold with another reason"
        )
    try:
        held = ledger.set_hold(rec.recording_id, reason=why, actor=actor, at=clock())
    except InvalidTransition as exc:
        raise Refused(str(exc)) from None
    ledger.log_access(actor=actor, action="hold", reason=why, recording_id=held.recording_id,
                      call_id=held.call_id, detail={"deadline": held.deadline}, at=clock())
    log.emit("hold", call_id=held.call_id, recording_id=held.recording_id, reason=why,
             actor=actor, deadline=held.deadline)
    return held


def release_hold(ledger: Ledger, log: EventLog, recording_id: str, *, actor: str,
                 reason: str | None = None, clock: Clock = utcnow) -> Recording:
    """Lift a legal hold; the next purge deletes the recording if its deadline has passed."""
    rec = get_recording(ledger, recording_id)
    if not rec.held:
        raise Refused(f"recording {rec.recording_id} is not under legal hold")
    why = reason.strip() if reason and reason.strip() else RELEASE_WITHOUT_REASON
    released = ledger.release_hold(rec.recording_id, actor=actor, at=clock())
    detail = {"hold_reason": rec.hold_reason, "held_by": rec.held_by, "held_at": rec.held_at,
              "deadline": rec.deadline}
    ledger.log_access(actor=actor, action="release", reason=why,
                      recording_id=rec.recording_id, call_id=rec.call_id, detail=detail,
                      at=clock())
    log.emit("release", call_id=rec.call_id, recording_id=rec.recording_id, reason=why,
             actor=actor, hold_reason=rec.hold_reason, deadline=rec.deadline)
    return released


def _day(value: datetime | None) -> str:
    return "?" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")
