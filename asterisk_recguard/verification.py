"""Authenticating the kept recordings (``recguard audit --verify``): every
finalized recording's file is read whole, an encrypted one authenticated
chunk by chunk under its key (:func:`.vault.verify_file`, no plaintext
written), and the audio's SHA-256 compared with the one the ledger took at
finalization.

The two checks catch different things. Authentication catches a changed,
truncated or extended ciphertext, and a file whose key is gone. The SHA-256
catches a file that is authentic but not this recording's: two vault files
swapped (each still authenticates under its own per-file key) or one copied
over another, and any change to an unencrypted recording. When the audio
found is another kept recording's, that recording is named.

A missing file is left to the audit (``missing_file``); only what is there is
read. Nothing is changed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .audit import Problem
from .ledger import Ledger, Recording
from .lifecycle import RecordingStatus
from .progress import Progress
from .vault import Keyring, VaultError, verify_file

_BLOCK = 1 << 20


@dataclass
class Verification:
    problems: list[Problem] = field(default_factory=list)
    authenticated: int = 0  # recordings whose file is there and is the one finalized


class _Failed(Exception):
    """Why one recording's file is not the recording finalized."""


def verify_recordings(ledger: Ledger, keyring: Callable[[], Keyring], *,
                      stream: TextIO | None = None) -> Verification:
    """Authenticate every finalized recording; progress on ``stream`` (stderr)
    if it is a terminal. ``keyring`` is called once, and only if a recording
    is encrypted; a key file that cannot be read is a UserError."""
    kept = ledger.recordings(statuses=(RecordingStatus.FINALIZED,))
    ring = keyring() if any(rec.key_id for rec in kept) else None
    owner = {rec.sha256: rec.recording_id for rec in kept if rec.sha256}
    sizes = [_size(Path(rec.file_path)) for rec in kept]
    progress = Progress(len(kept), sum(sizes), stream=stream)
    result = Verification()
    try:
        for rec, size in zip(kept, sizes, strict=True):
            try:
                if _authenticate(rec, ring, owner, progress):
                    result.authenticated += 1
            except _Failed as failure:
                result.problems.append(Problem("not_authentic", f"recording {rec.recording_id}: "
                                               f"{failure}", recording_id=rec.recording_id,
                                               file=rec.file_path))
            # A clear file's bytes were counted block by block as they were read.
            progress.advance(items=1, nbytes=size if rec.key_id else 0)
    finally:
        progress.close()
    return result


def _size(path: Path) -> int:
    try:
        info = path.stat()
    except OSError:
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def _authenticate(rec: Recording, ring: Keyring | None, owner: dict[str, str],
                  progress: Progress) -> bool:
    """True if the file is the recording finalized, False if it is missing;
    raises :class:`_Failed` otherwise."""
    path = Path(rec.file_path)
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _Failed(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise _Failed(f"{path} is not a regular file; it was not read")
    if rec.key_id:
        assert ring is not None
        try:
            digest = verify_file(path, ring).sha256
        except VaultError as exc:  # IntegrityError included: the chunk that failed
            raise _Failed(str(exc)) from None
    else:
        digest = _sha256(path, progress)
    if digest != rec.sha256:
        other = owner.get(digest)
        raise _Failed(
            f"{path} is not the recording that was finalized: its audio has SHA-256 "
            f"{digest[:16]}…, the ledger recorded {str(rec.sha256)[:16]}…"
            + (f"; that is the audio of recording {other}: the files were swapped or copied"
               if other and other != rec.recording_id else ""))
    return True


def _sha256(path: Path, progress: Progress) -> str:
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # never wait on a FIFO put in its place
        with os.fdopen(fd, "rb") as fin:
            for block in iter(lambda: fin.read(_BLOCK), b""):
                digest.update(block)
                progress.advance(nbytes=len(block))
    except OSError as exc:
        raise _Failed(f"cannot read {path}: {exc.strerror}") from None
    return digest.hexdigest()

