"""Recordings started behind the guard's back: a MixMonitor the guard did not ask for.

Every such MixMonitor is indiscriminate recording. The guard counts the
starts it asked for on each call (``CallState.expected_starts``); a
``MixMonitorStart`` beyond that count is someone else's, whatever the timing.
It is stopped (a lawful recording of the guard's on the same channel goes on
in a new part) and its file deleted where recguard may delete recordings, or,
with ``RECGUARD_UNAUTHORIZED_RECORDINGS=log``, only reported. The check runs
on the call's lane (AMI events are routed there); waiting for the file to
close and deleting it run on a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .._redact import mask_numbers
from ..ledger import Ledger
from ..policy import Policy
from ..recorder import RecorderError
from ..storage import delete_file, is_recording_id, wait_closed
from .actions import Recordings
from .asterisk import MixMonitors
from .decision import Passes
from .events import GuardEvents, describe
from .lanes import Workers
from .state import CallState


@dataclass
class ForeignWatcher:
    ledger: Ledger
    mixmonitors: MixMonitors
    recordings: Recordings
    passes: Passes
    events: GuardEvents
    workers: Workers
    enforce: bool
    # Where a recording started behind the guard's back may be deleted:
    # the recordings directory and Asterisk's monitor spool, nowhere else.
    deletable_dirs: list[Path]

    def __post_init__(self) -> None:
        self.deletable_dirs = [d.resolve() for d in self.deletable_dirs]

    def mixmonitor_started(self, calls: dict[str, CallState], event: dict[str, str], policy: Policy) -> None:
        uniqueid = event.get("Uniqueid") or ""
        if not uniqueid:
            return
        state = calls.get(uniqueid)
        if state is not None and state.expected_starts > 0:
            state.expected_starts -= 1  # one of the guard's own
            return
        try:
            filename = self.mixmonitors.current_file(uniqueid)
        except RecorderError:
            filename = None
        if filename and self._made_by_guard(filename):
            filename = None  # the newest is one of the guard's own: theirs is unnamed
        report = _Report(
            call_id=uniqueid,
            tracked=state is not None,
            channel=mask_numbers(event.get("Channel", "")),
            file=filename,
            started_by=mask_numbers("dialplan {},{},{}".format(
                event.get("Context", "?"), event.get("Exten", "?"), event.get("Priority", "?"))),
        )
        if not self.enforce:
            self._log(report, "logged_only")
            return
        self._stop_foreign(state, uniqueid, policy)
        target = self._deletable(filename)
        if target is None:
            self._log(report, "stopped_file_kept")
        else:
            self.workers.submit(self._delete_and_log, target, report)

    def _stop_foreign(self, state: CallState | None, uniqueid: str, policy: Policy) -> None:
        """Stop every MixMonitor on the channel and let a lawful recording go on in a new part."""
        if state is None:
            self.mixmonitors.stop_all(uniqueid)
            return
        # The guard's own first, by its id, so the blind stops below reach only the foreign one.
        own = self.recordings.stop_current(state)
        self.mixmonitors.stop_all(uniqueid)
        if own is None or state.decision is None or not state.decision.record:
            return
        try:
            new = self.recordings.start(state, state.decision, policy)
        except Exception as exc:
            self.events.change_failed(state, describe(exc))
            return
        self.passes.record(state, state.facts, state.decision, "resume", "start", new.recording_id)

    def _delete_and_log(self, target: Path, report: _Report) -> None:
        wait_closed(target, timeout=3.0, absent_grace=0.5)
        delete_file(target)
        self._log(report, "stopped_deleted")

    def _log(self, report: _Report, action: str) -> None:
        shown_file = mask_numbers(report.file) if report.file else None
        self.ledger.log_unauthorized(channel=report.channel or "?", action=action,
                                     call_id=report.call_id if report.tracked else None,
                                     file=shown_file, started_by=report.started_by)
        self.events.unauthorized_recording(call_id=report.call_id, channel=report.channel, file=shown_file,
                                           started_by=report.started_by, enforced=self.enforce, action=action)

    def _made_by_guard(self, filename: str) -> bool:
        """A file the guard made: any recording the ledger knows."""
        path = Path(filename)
        if path.parent != self.mixmonitors.recordings_dir or path.suffix != ".wav":
            return False
        recording_id = path.stem
        if not is_recording_id(recording_id) or self.mixmonitors.path_for(recording_id) != path:
            return False
        return self.ledger.recording(recording_id) is not None

    def _deletable(self, filename: str | None) -> Path | None:
        """The unauthorized file, if it lies where recguard may delete recordings."""
        if not filename:
            return None
        path = Path(filename)
        if not path.is_absolute():
            return None
        resolved = path.resolve()
        if any(resolved.is_relative_to(folder) for folder in self.deletable_dirs):
            return path
        return None


@dataclass(frozen=True)
class _Report:
    """What one unauthorized MixMonitor was, for the ledger and the log."""

    call_id: str
    tracked: bool
    channel: str
    file: str | None
    started_by: str
