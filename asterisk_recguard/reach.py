"""Which of a data subject's recordings a command on this server can act on,
when several servers share the ledger: its own server's, and another's whose
file it can open here (the recordings directory shared, mounted at the same
path). The others are named by server, so that an export or erasure does
nothing rather than part of what was asked."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .errors import UserError
from .ledger import Recording
from .lifecycle import RecordingStatus


def of_server(recordings: Iterable[Recording], server_id: str | None) -> list[Recording]:
    """Those made on ``server_id`` (all of them for None)."""
    return [rec for rec in recordings if server_id is None or rec.server_id == server_id]


def out_of_reach(recordings: Iterable[Recording], here: str) -> dict[str, list[Recording]]:
    """Per other server, its recordings not yet deleted whose file cannot be
    opened on this one (``here``)."""
    away: dict[str, list[Recording]] = {}
    for rec in recordings:
        if rec.server_id in (None, here) or rec.status == RecordingStatus.DELETED:
            continue
        if not Path(rec.file_path).exists():
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
