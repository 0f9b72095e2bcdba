"""Exports: recordings handed over decrypted and verified, with a manifest,
all or nothing, for the purposes they were recorded for.

Each recording is decrypted (or, unencrypted, copied) into the export
directory and its SHA-256 compared with the one the ledger took at
finalization; if any recording fails (its ciphertext does not authenticate,
its file is missing or is not the recording finalized), every file already
written is removed and the export fails naming each failure. The directory is
then either a complete, verified export with its ``manifest.json``, or
nothing.

Every attempt goes to the access log, whatever stops it: a purpose the
recordings lack (outcome ``refused``), a recording not ready, a key file that
cannot be read, a directory that cannot be used, a failure or an interruption
half-way (outcome ``failed``, with the reason). All are written in one
place, :meth:`exportlog.Attempt.stopped`, as the attempt unwinds. Only a
request that is itself wrong (no reason; for one recording, no purpose)
fails before, as a usage error: the commands likewise settle the purpose and
the recording id before they call :func:`export_recordings`.

An export for any other reason than the data subject's own request states
the purpose it serves, and is refused unless every recording was made for
that purpose: a recording is tagged with exactly the purposes that justify
it, and using it for another (an order recording for a quality review) is
processing without a basis (GDPR art. 5(1)(b), purpose limitation). The data
subject's export has no such purpose: they are entitled to all their
recordings (GDPR art. 15).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import __version__
from .access import Clock, moment, require_reason
from .decisionlog import EventLog
from .errors import UserError
from .exportlog import Attempt, ExportFailed, ExportRefused
from .ledger import Ledger, Recording, format_ts, utcnow
from .lifecycle import RecordingStatus
from .vault import Keyring, VaultError, atomic_output, decrypt_file

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "recguard-export-1"
REQUEST_SUBJECT = "data_subject"
REQUEST_RECORDING = "recording"


def call_date(ledger: Ledger, rec: Recording) -> datetime | None:
    """When the recording's call started, if the ledger has the call."""
    call = ledger.call(rec.call_id)
    return call.started_at if call else None


@dataclass
class ExportResult:
    directory: Path
    manifest: Path | None
    files: list[Path] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)


def _prepare_directory(directory: Path) -> bool:
    """Make ``directory`` private (0700) and check that it is empty; True if created."""
    if directory.exists() or directory.is_symlink():
        if not directory.is_dir() or directory.is_symlink():
            raise UserError(f"--to {directory} exists and is not a directory")
        if any(directory.iterdir()):
            raise UserError(
                f"--to {directory} is not empty; give a new directory so that the export "
                "and its manifest stand alone"
            )
        os.chmod(directory, 0o700)
        return False
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=0o700)
    except OSError as exc:
        raise UserError(f"cannot create --to {directory}: {exc.strerror}") from None
    os.chmod(directory, 0o700)  # the umask may have narrowed it, never widened
    return True


def _copy_verified(src: Path, dst: Path) -> tuple[str, int]:
    """Copy an unencrypted recording; dst appears (mode 0600) only when complete."""
    digest = hashlib.sha256()
    size = 0
    with atomic_output(dst) as out, open(src, "rb") as fin:
        for block in iter(lambda: fin.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
            out.write(block)
    return digest.hexdigest(), size


def _export_one(rec: Recording, out: Path, keyring: Callable[[], Keyring]) -> str | None:
    """Write the recording's audio to ``out``; the reason it failed, or None."""
    src = Path(rec.file_path)
    if not src.exists():
        return f"its file {src} is missing"
    try:
        if rec.key_id:
            result = decrypt_file(src, out, keyring())
            digest, size = result.sha256, result.size
        else:
            digest, size = _copy_verified(src, out)
    except VaultError as exc:  # IntegrityError included: authentication failed
        return str(exc)
    except OSError as exc:
        return f"cannot read {src}: {exc.strerror}"
    if digest != rec.sha256:
        out.unlink(missing_ok=True)
        return (f"{src} is not the recording that was finalized: its audio has SHA-256 "
                f"{digest[:16]}..., the ledger recorded {str(rec.sha256)[:16]}...")
    if rec.size_bytes is not None and size != rec.size_bytes:
        out.unlink(missing_ok=True)
        return f"{src} decrypts to {size} bytes, the ledger recorded {rec.size_bytes}"
    return None


def _manifest_entry(ledger: Ledger, rec: Recording) -> dict[str, Any]:
    return {
        "recording_id": rec.recording_id,
        "file": f"{rec.recording_id}.wav",
        "call_id": rec.call_id,
        "call_date": call_date(ledger, rec),
        "recording_started_at": rec.started_at,
        "recording_stopped_at": rec.stopped_at,
        "purposes": list(rec.purposes),
        "bases": dict(rec.bases),
        "deadline": rec.deadline,
        "held": rec.held,
        "sha256": rec.sha256,
        "size_bytes": rec.size_bytes,
        "duration_s": rec.duration_s,
        "pauses": _pauses(ledger, rec),
    }


def _pauses(ledger: Ledger, rec: Recording) -> list[dict[str, Any]]:
    """Where the recording is silent for card details: UTC times, and seconds into the file."""
    return [{"paused_at": p.paused_at, "resumed_at": p.resumed_at, "paused_by": p.paused_by,
             "resumed_by": p.resumed_by, "from_s": offset_in_file(rec, p.paused_at),
             "to_s": offset_in_file(rec, p.resumed_at)}
            for p in ledger.pauses(rec.recording_id)]


def offset_in_file(rec: Recording, at: datetime | None) -> float | None:
    """Seconds into the recording's file at ``at``. Counted back from the file's
    end when its length and stop are known: MixMonitor's file begins with a few
    hundred ms more audio than the clock shows (measured on the sandbox), while
    its end is when it stopped. Otherwise counted from the recording's start."""
    if at is None:
        return None
    if rec.duration_s is not None and rec.stopped_at is not None:
        seconds = rec.duration_s - (rec.stopped_at - at).total_seconds()
        return round(min(max(seconds, 0.0), rec.duration_s), 3)
    return round((at - rec.started_at).total_seconds(), 3)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_ts(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_private(path: Path, text: str) -> None:
    with atomic_output(path) as out:
        out.write(text.encode("utf-8"))


def _undo(written: Sequence[Path], directory: Path, created: bool) -> None:
    for path in written:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if created:
        with contextlib.suppress(OSError):
            directory.rmdir()


def export_recordings(ledger: Ledger, log: EventLog, recordings: Sequence[Recording],
                      directory: Path, *, reason: str, actor: str,
                      keyring: Callable[[], Keyring], request: str,
                      caller_hash: str | None = None, for_purpose: str | None = None,
                      clock: Clock = utcnow) -> ExportResult:
    """Export ``recordings`` decrypted into ``directory`` with a manifest, all or nothing.

    ``for_purpose`` is the purpose the export serves. It is mandatory for a
    ``REQUEST_RECORDING`` export, which is refused (ExportRefused, logged,
    nothing written) unless every recording carries that purpose; the
    manifest and the access log record it. A data subject's export has none.

    ``keyring`` is called once, and only if a recording is encrypted. Raises
    ExportFailed (nothing left behind) when any recording cannot be exported;
    whatever is raised, the attempt is in the access log first.
    """
    why = require_reason(reason, "an export")
    if request == REQUEST_RECORDING and for_purpose is None:
        raise UserError("an export of a recording needs the purpose it serves: add --for PURPOSE")
    attempt = Attempt(ledger, log, actor=actor, reason=why, request=request,
                      caller_hash=caller_hash, for_purpose=for_purpose, clock=clock)
    try:
        return _export(attempt, recordings, directory, keyring)
    except BaseException as exc:
        attempt.stopped(recordings, exc)
        raise


def _export(attempt: Attempt, recordings: Sequence[Recording], directory: Path,
            keyring: Callable[[], Keyring]) -> ExportResult:
    if attempt.for_purpose is not None:
        _refuse_other_purposes(recordings, attempt.for_purpose)
    not_ready = [(rec.recording_id, _not_exportable(rec))
                 for rec in recordings if rec.status != RecordingStatus.FINALIZED]
    if not_ready:
        raise ExportFailed(_failure_message(not_ready, nothing_written=True), not_ready)
    result = ExportResult(directory=directory, manifest=None)
    if not recordings:
        attempt.nothing_found()  # the request was answered: that is on record too
        return result

    loaded: list[Keyring] = []

    def cached_keyring() -> Keyring:
        if not loaded:
            loaded.append(keyring())
        return loaded[0]

    if any(rec.key_id for rec in recordings):
        cached_keyring()  # a missing key file is reported before a directory is made
    created = _prepare_directory(directory)
    written: list[Path] = []
    failures: list[tuple[str, str]] = []
    try:
        for rec in recordings:
            out = directory / f"{rec.recording_id}.wav"
            error = _export_one(rec, out, cached_keyring)
            if error:
                failures.append((rec.recording_id, error))
            else:
                written.append(out)
        if failures:
            raise ExportFailed(_failure_message(failures, nothing_written=True), failures)
        entries = [_manifest_entry(attempt.ledger, rec) for rec in recordings]
        exported_at = attempt.clock()
        manifest = {
            "format": MANIFEST_FORMAT,
            "exported_at": exported_at,
            "exported_by": attempt.actor,
            "reason": attempt.reason,
            "request": attempt.request,
            **({"for_purpose": attempt.for_purpose} if attempt.for_purpose is not None else {}),
            "tool": f"recguard {__version__}",
            "recordings": entries,
        }
        manifest_path = directory / MANIFEST
        _write_private(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False,
                                                 default=_json_value) + "\n")
        written.append(manifest_path)
        attempt.exported(recordings, directory, exported_at)
    except BaseException:
        _undo(written, directory, created)
        raise
    result.manifest = manifest_path
    result.files = written[:-1]
    result.entries = entries
    return result


def _refuse_other_purposes(recordings: Sequence[Recording], for_purpose: str) -> None:
    """Raise ExportRefused, before anything is read or written, if a recording
    was not made for ``for_purpose``.

    The refused attempt is an attempt to read personal data beyond its
    purpose: each refused recording goes to the access log (action
    ``export``, outcome ``refused``) and to the decision log as
    ``export_failed`` with level warning, as the attempt unwinds.
    """
    refused = [rec for rec in recordings if for_purpose not in rec.purposes]
    if not refused:
        return
    failures = [(rec.recording_id, f"it was recorded for {_purposes(rec)}, not for {for_purpose}")
                for rec in refused]
    rule = "a recording is used only for the purposes it was recorded for"
    if len(refused) == 1:
        rec = refused[0]
        message = (f"export refused: recording {rec.recording_id} may not be used for "
                   f"{for_purpose}: it was recorded for {_purposes(rec)}, and {rule}; "
                   "nothing was written")
    else:
        message = "\n".join([
            f"export refused: {len(refused)} recording(s) may not be used for {for_purpose} "
            f"({rule}); nothing was written",
            *(f"  {rid}: {why}" for rid, why in failures)])
    raise ExportRefused(message, failures)


def _purposes(rec: Recording) -> str:
    """The purposes as the refusal names them to the DPO, in words rather than
    a Python list: ``order``, ``order and quality``, ``order, change and quality``."""
    names = list(rec.purposes)
    if not names:
        return "no purpose"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _not_exportable(rec: Recording) -> str:
    status = RecordingStatus(rec.status)
    if status.open:
        return (f"it is still {status} (the call is being recorded or finalized); "
                "try again after it ends")
    if status == RecordingStatus.DELETED:
        return f"it was deleted on {moment(rec.deleted_at)} ({rec.deletion_reason})"
    return f"it is being deleted ({rec.deletion_reason})"


def _failure_message(failures: Sequence[tuple[str, str]], *, nothing_written: bool) -> str:
    head = (f"export refused: {len(failures)} recording(s) cannot be exported"
            + ("; nothing was written" if nothing_written else ""))
    return "\n".join([head, *(f"  {rid}: {error}" for rid, error in failures)])
