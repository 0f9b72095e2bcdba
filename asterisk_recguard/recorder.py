"""MixMonitor start, stop and deletion through AMI, and the recording files.

File names are made only from a recording id that recguard generates (a
uuid4 in hex) and the configured directory; nothing a caller controls (caller
ID, DTMF, SIP headers) ever reaches a file name, a MixMonitor option or a
command. MixMonitor is always started with ``i(VAR)`` and stopped by the id
it returns, so recguard never stops a MixMonitor it did not start.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from .ami import AmiClient, AmiError

MIXMONITOR_ID_VAR = "RECGUARD_MIXMONITOR_ID"
_RECORDING_ID = re.compile(r"[0-9a-f]{32}")
_SAFE_PATH = re.compile(r"/[A-Za-z0-9/._-]+")


class RecorderError(Exception):
    """MixMonitor could not be started or stopped."""


@dataclass(frozen=True)
class StartedRecording:
    path: Path
    mixmonitor_id: str


@dataclass(frozen=True)
class FileFacts:
    size_bytes: int
    duration_s: float
    sha256: str


def recording_path(recordings_dir: Path, recording_id: str) -> Path:
    if not _RECORDING_ID.fullmatch(recording_id):
        raise ValueError(f"recording id {recording_id!r} is not 32 lowercase hex digits")
    path = recordings_dir / f"{recording_id}.wav"
    if not _SAFE_PATH.fullmatch(str(path)):
        raise ValueError(f"recordings directory {recordings_dir} must be an absolute path of plain characters")
    return path


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


def delete_file(path: Path) -> bool:
    """Unlink and make the removal durable; True if a file was there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


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
