"""Which of a data subject's recordings a command on this server can act on,
when several servers share the ledger: its own server's, and another's whose
file is in this server's recordings directory (the directory shared, mounted
at the same path on every server). The others are named by server, so that
an export or erasure does nothing rather than part of what was asked."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .errors import UserError
from .ledger import Recording
from .lifecycle import RecordingStatus
from .storage import outside_of


def of_server(recordings: Iterable[Recording], server_id: str | None) -> list[Recording]:
    """Those made on ``server_id`` (all of them for None)."""
    return [rec for rec in recordings if server_id is None or rec.server_id == server_id]


def elsewhere(rec: Recording, here: str | None, recordings_dir: Path) -> bool:
    """Whether ``rec`` is another server's and its file is not in this
    server's (``here``) recordings directory."""
    if rec.server_id is None or here is None or rec.server_id == here:
        return False
    path = Path(rec.file_path)
    return outside_of(recordings_dir, path) is not None or not path.exists()


def out_of_reach(recordings: Iterable[Recording], here: str,
                 recordings_dir: Path) -> dict[str, list[Recording]]:
    """Per other server, its recordings not yet deleted whose files are out of reach here."""
    away: dict[str, list[Recording]] = {}
    for rec in recordings:
        if rec.status != RecordingStatus.DELETED and elsewhere(rec, here, recordings_dir):
            assert rec.server_id is not None
            away.setdefault(rec.server_id, []).append(rec)
    return away


def refusal(away: dict[str, list[Recording]], here: str, command: str) -> UserError:
    """The one line that says what was not done, where each file is, and what to run there."""
    where = "; ".join(f"{len(recs)} on {server} ({', '.join(r.recording_id for r in recs[:3])}"
                      f"{', ...' if len(recs) > 3 else ''})" for server, recs in sorted(away.items()))
    runs = ", ".join(f"`recguard subject {command} --server {server} ...` on {server}"
                     for server in sorted(away))
    return UserError(
        f"this caller has recordings whose files this server ({here}) cannot reach: {where}; "
        f"nothing was done: run {runs}, and `--server {here}` here, or mount the shared "
        "recordings directory at the same path on every server (README: Several servers)")
