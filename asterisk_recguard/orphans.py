"""Orphans: files in the recordings directory that the ledger does not know.

A file no ledger entry accounts for was not recorded under any decision
recguard made (a crash before the ledger entry, a recording someone else
started), so nothing justifies keeping it. A ledger entry accounts for a file
by its name, which only recguard gives (the recording id), so recordings
moved with their spool are never taken for orphans. The scan tells orphans from files
still being written by their age; the audit reports orphans, and the purge
(``--orphans``) deletes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .access import Clock
from .decisionlog import EventLog
from .errors import UserError
from .ledger import Ledger, utcnow
from .storage import ENCRYPTED_SUFFIX, delete_file

ORPHAN_FILE = "orphan_file"


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
    # A file named after a recording the ledger keeps is that recording's, even
    # where the ledger says it lies elsewhere (a moved spool): never an orphan.
    # So is the ciphertext of a recording the ledger knows only as clear (a
    # ledger older than the finalization that encrypted it).
    known_names = {os.path.basename(path) for path in ledger.known_paths()}
    known_names |= {name + ENCRYPTED_SUFFIX for name in known_names}
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
        if entry.name in known_names:
            continue
        # ctime too: a file moved in with an old mtime is still new here.
        age = now - max(st.st_mtime, st.st_ctime)
        item = DirEntry(path, round(max(age, 0.0), 1), st.st_size)
        (orphans if age >= grace_s else in_progress).append(item)
    return DirectoryScan(tuple(orphans), tuple(in_progress), tuple(irregular), files)


def delete_orphans(log: EventLog, scan: DirectoryScan, *, actor: str, dry_run: bool,
                   failed: Callable[[str, OSError], None]) -> list[DirEntry]:
    """Delete the scan's orphans durably, one ``orphan_deleted`` line each;
    the ones deleted (in a dry run, the ones that would be).

    A file that cannot be unlinked goes to ``failed`` and the others are
    still deleted; one that vanished meanwhile is neither deleted nor failed.
    """
    deleted: list[DirEntry] = []
    for orphan in scan.orphans:
        if dry_run:
            deleted.append(orphan)
            continue
        try:
            existed = delete_file(Path(orphan.path))
        except OSError as exc:
            failed(orphan.path, exc)
            continue
        if existed:
            log.emit("orphan_deleted", file=orphan.path, age_s=orphan.age_s,
                     size_bytes=orphan.size_bytes, actor=actor, reason=ORPHAN_FILE)
            deleted.append(orphan)
    return deleted
