"""MixMonitor start and stop through AMI (the files themselves are storage's).

File names are made only from a recording id that recguard generates (a
uuid4 in hex) and the configured directory; nothing a caller controls (caller
ID, DTMF, SIP headers) ever reaches a file name, a MixMonitor option or a
command. MixMonitor is always started with ``i(VAR)`` and stopped by the id
it returns, so recguard never stops a MixMonitor it did not start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .ami import AmiClient, AmiError
from .storage import recording_path, wait_closed

MIXMONITOR_ID_VAR = "RECGUARD_MIXMONITOR_ID"


class RecorderError(Exception):
    """MixMonitor could not be started or stopped."""


@dataclass(frozen=True)
class StartedRecording:
    path: Path
    mixmonitor_id: str


class Recorder:
    """Starts and stops MixMonitor on a channel, by the id MixMonitor gives back."""

    def __init__(self, ami: AmiClient, recordings_dir: Path, action_timeout: float = 1.5) -> None:
        self.ami = ami
        self.recordings_dir = recordings_dir
        self.action_timeout = action_timeout

    def path_for(self, recording_id: str) -> Path:
        return recording_path(self.recordings_dir, recording_id)

    def start(self, channel: str, recording_id: str, timeout: float | None = None) -> StartedRecording:
        """Start MixMonitor; ``timeout`` caps each AMI exchange (the gate's time left)."""
        path = self.path_for(recording_id)
        wait = min(self.action_timeout, timeout) if timeout is not None else self.action_timeout
        try:
            reply = self.ami.action(
                "MixMonitor",
                timeout=wait,
                Channel=channel,
                File=str(path),
                Options=f"i({MIXMONITOR_ID_VAR})",
            )
            mixmonitor_id = reply.get("MixMonitorID") or self.ami.action(
                "Getvar", timeout=self.action_timeout, Channel=channel, Variable=MIXMONITOR_ID_VAR
            ).get("Value")
        except AmiError as exc:
            raise RecorderError(str(exc)) from exc
        if not mixmonitor_id:
            # Without its id it could not be stopped by id later: undo at once.
            self._stop_any(channel)
            raise RecorderError(f"MixMonitor on {channel} gave no MixMonitorID")
        return StartedRecording(path=path, mixmonitor_id=mixmonitor_id)

    def stop(self, channel: str, mixmonitor_id: str, attempts: int = 3) -> bool:
        """Stop one MixMonitor; False when the channel (and so the MixMonitor) is already gone.

        A timeout or a lost connection is retried: a MixMonitor left running
        would go on recording what the guard decided not to record.
        """
        for attempt in range(attempts):
            try:
                self.ami.action(
                    "StopMixMonitor", timeout=self.action_timeout, Channel=channel, MixMonitorID=mixmonitor_id
                )
                return True
            except AmiError as exc:
                text = str(exc).lower()
                if "no such channel" in text or "not found" in text or "no mixmonitor" in text:
                    return False
                if attempt == attempts - 1:
                    raise RecorderError(str(exc)) from exc
                time.sleep(0.2)
        return False

    def mute(self, channel: str, mixmonitor_id: str, muted: bool) -> None:
        """Silence one MixMonitor (both directions) without stopping it, or bring its sound back.

        MixMonitorMute takes the MixMonitorID in Asterisk 22, so only the
        guard's own recording is touched. Not retried: the caller of a failed
        mute must know at once, to stop the recording instead.
        """
        try:
            self.ami.action("MixMonitorMute", timeout=self.action_timeout, Channel=channel,
                            MixMonitorID=mixmonitor_id, Direction="both", State="1" if muted else "0")
        except AmiError as exc:
            raise RecorderError(str(exc)) from exc

    def stop_if_started(self, channel: str, path: Path) -> bool:
        """After a start that failed or timed out: stop the MixMonitor if it runs anyway.

        The start may have reached Asterisk even though its answer did not
        come back; then MIXMONITOR_FILENAME names our file and the id variable
        holds its id.
        """
        try:
            if self.current_file(channel) != str(path):
                return False
            mixmonitor_id = self.ami.action(
                "Getvar", timeout=self.action_timeout, Channel=channel, Variable=MIXMONITOR_ID_VAR
            ).get("Value")
        except (AmiError, RecorderError):
            return False
        if mixmonitor_id:
            try:
                return self.stop(channel, mixmonitor_id)
            except RecorderError:
                return False
        self._stop_any(channel)
        return True

    def current_file(self, channel: str) -> str | None:
        """The file of the newest MixMonitor started on the channel (MIXMONITOR_FILENAME)."""
        try:
            return self.ami.action(
                "Getvar", timeout=self.action_timeout, Channel=channel, Variable="MIXMONITOR_FILENAME"
            ).get("Value") or None
        except AmiError as exc:
            raise RecorderError(str(exc)) from exc

    def stop_all(self, channel: str, limit: int = 8) -> int:
        """Stop every MixMonitor left on the channel; how many were stopped.

        StopMixMonitor without an id stops the newest one; repeated until
        Asterisk says there is none left.
        """
        stopped = 0
        for _ in range(limit):
            try:
                self.ami.action("StopMixMonitor", timeout=self.action_timeout, Channel=channel)
            except AmiError:
                break
            stopped += 1
        return stopped

    def _stop_any(self, channel: str) -> None:
        try:
            self.ami.action("StopMixMonitor", timeout=self.action_timeout, Channel=channel)
        except AmiError:
            pass
