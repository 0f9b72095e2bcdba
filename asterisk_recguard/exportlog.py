"""What an export attempt leaves in the records: for each recording it
concerned, one access-log entry in the ledger and one decision-log line,
whether it exported, found nothing, was refused or failed, and why.

The attempt itself is made in :mod:`exporting`; it hands its outcome here,
and here only, so that no way out of an export skips the access log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .access import Clock
from .decisionlog import EventLog
from .errors import UserError
from .ledger import Ledger, Recording


class ExportFailed(UserError):
    """Nothing was exported; the message lists every recording that failed and why."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str]]) -> None:
        super().__init__(message, exit_code=1)
        self.failures = list(failures)


class ExportRefused(ExportFailed):
    """Nothing was exported because a recording was not made for the purpose
    the export serves. Exit status 1 like any refusal: the request was
    understood, and the answer is no."""


@dataclass(frozen=True)
class Attempt:
    """One export request: who asks, why, for what; its lines in the access
    log (the ledger) and the decision log."""

    ledger: Ledger
    log: EventLog
    actor: str
    reason: str
    request: str
    caller_hash: str | None
    for_purpose: str | None
    clock: Clock

    def _detail(self, **fields: Any) -> dict[str, Any]:
        detail: dict[str, Any] = {"request": self.request, **fields}
        if self.caller_hash:
            detail["caller_hash"] = self.caller_hash
        if self.for_purpose is not None:
            detail["for_purpose"] = self.for_purpose
        return detail

    def _access(self, rec: Recording | None, detail: dict[str, Any], at: datetime) -> None:
        self.ledger.log_access(actor=self.actor, action="export", reason=self.reason,
                               recording_id=rec.recording_id if rec else None,
                               call_id=rec.call_id if rec else None, detail=detail, at=at)

    def _emit(self, event: str, rec: Recording | None, **fields: Any) -> None:
        self.log.emit(event, call_id=rec.call_id if rec else None,
                      recording_id=rec.recording_id if rec else None, actor=self.actor,
                      reason=self.reason, request=self.request, caller_hash=self.caller_hash,
                      for_purpose=self.for_purpose, **fields)

    def exported(self, recordings: Sequence[Recording], directory: Path, at: datetime) -> None:
        for rec in recordings:
            self._access(rec, self._detail(to=str(directory), sha256=rec.sha256), at)
            self._emit("export", rec, to=str(directory), sha256=rec.sha256)

    def nothing_found(self) -> None:
        self._access(None, self._detail(outcome="nothing_found"), self.clock())
        self.log.emit("export", actor=self.actor, reason=self.reason, request=self.request,
                      caller_hash=self.caller_hash, recordings=[])

    def stopped(self, recordings: Sequence[Recording], exc: BaseException) -> None:
        """The attempt ended in ``exc``: each recording it concerned goes to the
        access log as refused or failed, with why, and to the decision log.

        The recordings ``exc`` names, if it is a refusal or an export
        failure; otherwise every recording of the request (or, with none,
        the request itself)."""
        at = self.clock()
        by_id = {rec.recording_id: rec for rec in recordings}
        if isinstance(exc, ExportFailed):
            named = [(by_id.get(rid), error) for rid, error in exc.failures]
        else:
            error = describe(exc)
            named = [(rec, error) for rec in recordings] or [(None, error)]
        refused = isinstance(exc, ExportRefused)
        for rec, error in named:
            if refused and rec is not None:
                purposes = list(rec.purposes)
                self._access(rec, self._detail(purposes=purposes, outcome="refused"), at)
                # Nothing is broken, but the DPO wants to see who tried to use a recording for what.
                self._emit("export_failed", rec, level="warning", purposes=purposes,
                           outcome="refused", error=error)
            else:
                self._access(rec, self._detail(outcome="failed", error=error), at)
                self._emit("export_failed", rec, error=error)


# The reason an attempt failed, as the access log keeps it: one line, this long at most.
ERROR_LIMIT = 500


def describe(exc: BaseException) -> str:
    """Why an attempt stopped, for its access-log entry."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.splitlines())
    return text if len(text) <= ERROR_LIMIT else f"{text[:ERROR_LIMIT]}…({len(text)} chars)"
