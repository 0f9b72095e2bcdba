"""Recording files: where they live, how they are read, and the one way they die.

Every deletion of a recording, whoever asks for it (the guard when a basis
ends, the purge at a deadline, an erasure request), goes through
:func:`delete_recording`: the intent is made durable in the ledger first, the
files are unlinked and the unlink made durable, then the ledger confirms and
one ``recording_deleted`` line is written. An interruption anywhere leaves a
'deleting' row that the next reconcile or purge finishes. Only files inside
the recordings directory are ever removed (:func:`outside_of`): a row that
names a file elsewhere is refused, logged, and stays 'deleting'.

File names are built only from a recording id recguard generates (a uuid4 in
hex) and the configured directory; nothing a caller controls ever reaches one.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .lifecycle import RecordingStatus

if TYPE_CHECKING:  # the ledger imports nothing from here; the guard and retention import both
    from .decisionlog import EventLog
    from .ledger import Ledger, Recording

RECORDING_ID_RE = re.compile(r"[0-9a-f]{32}")
ENCRYPTED_SUFFIX = ".rgv"
_SAFE_PATH = re.compile(r"/[A-Za-z0-9/._-]+")


def is_recording_id(text: object) -> bool:
    return isinstance(text, str) and RECORDING_ID_RE.fullmatch(text) is not None


def recording_path(recordings_dir: Path, recording_id: str) -> Path:
    """The clear WAV MixMonitor writes for a recording."""
    if not is_recording_id(recording_id):
        raise ValueError(f"recording id {recording_id!r} is not 32 lowercase hex digits")
    path = recordings_dir / f"{recording_id}.wav"
    if not _SAFE_PATH.fullmatch(str(path)):
        raise ValueError(f"recordings directory {recordings_dir} must be an absolute path of plain characters")
    return path


def encrypted_path(clear: Path) -> Path:
    """Where the ciphertext of a clear recording is kept."""
    return clear.with_name(clear.name + ENCRYPTED_SUFFIX)


def recordings_in(directory: Path) -> list[Path]:
    """The recordings (clear ``*.wav`` or encrypted ``*.wav.rgv``, in any
    case) in ``directory``, by name; none when it does not exist."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    endings = (".wav", ".wav" + ENCRYPTED_SUFFIX)
    return sorted(Path(entry.path) for entry in entries
                  if entry.name.lower().endswith(endings) and not entry.is_dir())


# --- reading a WAV MixMonitor wrote -------------------------------------------------


@dataclass(frozen=True)
class FileFacts:
    size_bytes: int
    duration_s: float
    sha256: str


def wav_is_closed(path: Path) -> bool:
    """True when the WAV header's sizes match the file: Asterisk writes them on close."""
    try:
        with open(path, "rb") as wav:
            header = wav.read(44)
            size = os.fstat(wav.fileno()).st_size
    except OSError:
        return False
    if len(header) < 44 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return False
    riff_size = struct.unpack("<I", header[4:8])[0]
    data_size = struct.unpack("<I", header[40:44])[0]
    return riff_size == size - 8 and data_size == size - 44


def wav_duration(path: Path) -> float:
    with open(path, "rb") as wav:
        header = wav.read(44)
    channels, rate = struct.unpack("<HI", header[22:28])
    bits = struct.unpack("<H", header[34:36])[0]
    data_size = struct.unpack("<I", header[40:44])[0]
    frame = max(1, channels * bits // 8)
    return round(data_size / frame / rate, 3) if rate else 0.0


def file_facts(path: Path) -> FileFacts:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return FileFacts(path.stat().st_size, wav_duration(path), digest.hexdigest())


def wait_closed(path: Path, timeout: float = 10.0, absent_grace: float = 1.5) -> bool:
    """Wait until MixMonitor has closed the file; True only once it is closed.

    MixMonitor opens its file at the first audio frame and writes the WAV
    header sizes when it closes it, on its own thread, shortly after the
    channel hangs up or StopMixMonitor. False when no file appeared within
    ``absent_grace`` or the file is still open after ``timeout``.
    """
    began = time.monotonic()
    deadline = began + timeout
    while time.monotonic() < deadline:
        if path.exists():
            if wav_is_closed(path):
                return True
        elif time.monotonic() - began > absent_grace:
            return False
        time.sleep(0.05)
    return False


# --- unlinking ------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> bool:
    """Unlink without following a symlink; True if a file was there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def unlink_durably(paths: Iterable[Path], *,
                   failed: dict[Path, OSError] | None = None) -> list[Path]:
    """Unlink each path (never following a symlink) and make the removals
    durable before returning; the paths that were there.

    The directory of every path is synced, not only of those removed just
    now: a file an interrupted run unlinked may not be durably gone yet. Without
    ``failed`` an unlink error is raised; with it, the error is put there and
    the other paths are still unlinked, so that one batch costs one sync per
    directory however many files fail.
    """
    candidates = list(dict.fromkeys(paths))
    removed: list[Path] = []
    for path in candidates:
        try:
            if _unlink(path):
                removed.append(path)
        except OSError as exc:
            if failed is None:
                raise
            failed[path] = exc
    for directory in {path.parent for path in candidates}:
        _fsync_dir(directory)
    return removed


def delete_file(path: Path) -> bool:
    """Unlink one file durably; True if it was there."""
    return bool(unlink_durably([path]))


def recording_files(rec: Recording) -> list[Path]:
    """Every file the product may have made for a recording: the ciphertext
    it is kept as, the clear WAV, and a ciphertext a finalization cut short
    left beside the WAV."""
    files: list[Path] = []
    if rec.stored_path:
        files.append(Path(rec.stored_path))
    if rec.path:
        clear = Path(rec.path)
        files += [clear, encrypted_path(clear)]
    return list(dict.fromkeys(files))


# --- where a deletion may reach --------------------------------------------------------


class OutsideRecordingsDir(Exception):
    """A recording's file that does not lie inside the recordings directory:
    recguard neither deletes it nor writes beside it."""

    def __init__(self, recording_id: str, path: Path, why: str) -> None:
        super().__init__(
            f"refused to touch {path} for recording {recording_id}: it {why}; nothing was "
            "deleted and the recording stays 'deleting' (if the spool moved, make its old "
            "path a symlink to the new one)"
        )
        self.recording_id = recording_id
        self.path = path
        self.why = why


def outside_of(recordings_dir: Path, path: Path) -> str | None:
    """Why ``path`` is not a file inside ``recordings_dir``, or None when it is.

    Both are resolved first (symlinks, ``..``), so neither a link in the
    spool nor a row naming ``spool/../x`` leads a deletion out of it.
    """
    if not path.is_absolute():
        return "is not an absolute path"
    base = Path(os.path.realpath(recordings_dir))
    real = Path(os.path.realpath(path))
    if real != base and real.is_relative_to(base):
        return None
    resolved = f" (it resolves to {real})" if real != path else ""
    return f"lies outside the recordings directory {recordings_dir}{resolved}"


def check_inside(recordings_dir: Path, recording_id: str, paths: Iterable[Path]) -> None:
    """Raise :class:`OutsideRecordingsDir` for the first of a recording's
    ``paths`` that lies outside ``recordings_dir``."""
    for path in paths:
        why = outside_of(recordings_dir, path)
        if why is not None:
            raise OutsideRecordingsDir(recording_id, path, why)


def refused(log: EventLog, rec: Recording, exc: OutsideRecordingsDir, *, reason: str,
            actor: str, **context: Any) -> None:
    """The one ``deletion_refused`` line of a deletion that would leave the spool."""
    log.emit("deletion_refused", level="error", call_id=rec.call_id,
             recording_id=rec.recording_id, file=str(exc.path), reason=reason, actor=actor,
             error=f"it {exc.why}", **context)


# --- the one deletion -------------------------------------------------------------------


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
    def of(cls, rec: Recording, reason: str, removed: Iterable[str] = ()) -> Deletion:
        return cls(rec.recording_id, rec.call_id, reason, tuple(rec.purposes), rec.deadline, tuple(removed))


def delete_recording(ledger: Ledger, log: EventLog, rec: Recording, *, reason: str, actor: str,
                     clock: Callable[[], datetime], recordings_dir: Path,
                     **context: Any) -> Deletion:
    """Delete one recording: intent, unlink, confirmation, one log line.

    A recording already 'deleting' is finished with the reason it was marked
    with; one already 'deleted' is left as it is. Raises ``RecordingHeld`` for
    a held recording, before touching anything, and
    :class:`OutsideRecordingsDir` (after one ``deletion_refused`` line, the
    recording left 'deleting') when a file of it lies outside
    ``recordings_dir``. ``context`` adds fields such as ``trigger`` or
    ``channel`` to the log line; the rest of its schema is the same for every
    caller.
    """
    if rec.status == RecordingStatus.DELETED:
        return Deletion.of(rec, rec.deletion_reason or reason)
    if rec.status != RecordingStatus.DELETING:
        rec = ledger.mark_deleting(rec.recording_id, reason=reason, actor=actor, at=clock())
    why = rec.deletion_reason or reason
    files = recording_files(rec)
    try:
        check_inside(recordings_dir, rec.recording_id, files)
    except OutsideRecordingsDir as exc:
        refused(log, rec, exc, reason=why, actor=actor, **context)
        raise
    removed = unlink_durably(files)
    # Keep who started an interrupted deletion; record the finisher only if nobody was.
    ledger.mark_deleted(rec.recording_id, actor=None if rec.deleted_by else actor, at=clock())
    return log_deleted(log, rec, reason=why, actor=actor, removed=removed, **context)


def log_deleted(log: EventLog, rec: Recording, *, reason: str, actor: str,
                removed: Iterable[Path | str], **context: Any) -> Deletion:
    """Write the one ``recording_deleted`` line of a deletion the ledger has
    confirmed, the same for a single deletion and a batch; the Deletion."""
    files = [str(path) for path in removed]
    log.emit("recording_deleted", call_id=rec.call_id, recording_id=rec.recording_id,
             reason=reason, actor=actor, purposes=list(rec.purposes), deadline=rec.deadline,
             files_removed=files, **context)
    return Deletion.of(rec, reason, files)
