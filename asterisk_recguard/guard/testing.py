"""Fakes of the guard's Asterisk interface, for tests without Asterisk.

In the spirit of ``structlog.testing``: small, honest stand-ins for the
surface the guard is handed (:class:`~.asterisk.CallControl`,
:class:`~.asterisk.MixMonitors`, an event log) that answer at once and
remember what they were asked, plus builders of the ARI and AMI events the
guard is fed. A fake MixMonitor writes a real, closed WAV file, so
finalization hashes, encrypts and deletes real files.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .. import channelfacts as cf
from ..recorder import RecorderError, StartedRecording
from ..storage import recording_path
from .asterisk import AsteriskError, ChannelGone


class FakeCallControl:
    """Remembers every request; ``fail`` makes a named method raise."""

    def __init__(self, app: str = "recguard") -> None:
        self.app = app
        self.url = "http://127.0.0.1:8088/ari (fake)"
        self.requests: list[tuple[Any, ...]] = []
        self.variables: dict[str, dict[str, str]] = {}
        self.live: dict[str, dict[str, Any]] = {}
        self.astdb: dict[str, str] = {}
        self.gone: set[str] = set()  # channels that no longer exist
        self.fail: dict[str, Exception] = {}  # method name -> exception to raise

    def _ask(self, method: str, *args: Any) -> None:
        self.requests.append((method, *args))
        if method in self.fail:
            raise self.fail[method]
        if args and args[0] in self.gone:
            raise ChannelGone(f"{method}: channel {args[0]} not found")

    def set_event_filter(self, event_types: Iterable[str]) -> None:
        self._ask("set_event_filter", tuple(event_types))

    def subscribe(self, call_id: str) -> None:
        self._ask("subscribe", call_id)

    def unsubscribe(self, call_id: str) -> None:
        self.requests.append(("unsubscribe", call_id))

    def continue_call(self, call_id: str) -> None:
        self._ask("continue_call", call_id)

    def set_variables(self, call_id: str, variables: Mapping[str, str], timeout: float) -> None:
        self._ask("set_variables", call_id, dict(variables))
        self.variables.setdefault(call_id, {}).update(variables)

    def live_channels(self) -> dict[str, dict[str, Any]]:
        self._ask("live_channels")
        return dict(self.live)

    def final_facts(self, call_id: str) -> str | None:
        self._ask("final_facts", call_id)
        return self.astdb.get(call_id)

    def forget_final_facts(self, call_id: str) -> None:
        self.requests.append(("forget_final_facts", call_id))
        self.astdb.pop(call_id, None)

    def asked(self, method: str) -> list[tuple[Any, ...]]:
        return [r[1:] for r in self.requests if r[0] == method]


def write_closed_wav(path: Path, seconds: float = 0.25, rate: int = 8000) -> None:
    """A mono 16-bit WAV whose header sizes match the file, as MixMonitor leaves it on close."""
    data = bytes(int(seconds * rate) * 2)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(data))
    path.write_bytes(header + data)


class FakeMixMonitors:
    """MixMonitors per channel; a start writes its file, a stop ends it."""

    def __init__(self, recordings_dir: Path, action_timeout: float = 0.5) -> None:
        self.recordings_dir = recordings_dir
        self.action_timeout = action_timeout
        self.running: dict[str, list[tuple[str, Path]]] = {}  # channel -> [(id, file)], newest last
        self.fail_start: Exception | None = None
        self.started: list[tuple[str, Path]] = []
        self.stopped: list[tuple[str, str | None]] = []
        self.muted: dict[str, bool] = {}  # MixMonitor id -> muted now
        self.mutes: list[tuple[str, str, bool]] = []  # every mute request, as asked
        self.fail_mute: Exception | None = None
        self._ids = itertools.count(1)

    def path_for(self, recording_id: str) -> Path:
        return recording_path(self.recordings_dir, recording_id)

    def start(self, channel: str, recording_id: str, timeout: float | None = None) -> StartedRecording:
        if self.fail_start is not None:
            raise RecorderError(str(self.fail_start))
        path = self.path_for(recording_id)
        return self.start_any(channel, path)

    def start_any(self, channel: str, path: Path) -> StartedRecording:
        """A MixMonitor on ``channel`` writing ``path``: the guard's, or someone else's."""
        mixmonitor_id = f"0x{next(self._ids):x}"
        write_closed_wav(path)
        self.running.setdefault(channel, []).append((mixmonitor_id, path))
        self.started.append((channel, path))
        return StartedRecording(path=path, mixmonitor_id=mixmonitor_id)

    def stop(self, channel: str, mixmonitor_id: str, attempts: int = 3) -> bool:
        self.stopped.append((channel, mixmonitor_id))
        running = self.running.get(channel, [])
        kept = [(i, p) for i, p in running if i != mixmonitor_id]
        self.running[channel] = kept
        return len(kept) != len(running)

    def mute(self, channel: str, mixmonitor_id: str, muted: bool) -> None:
        self.mutes.append((channel, mixmonitor_id, muted))
        if self.fail_mute is not None:
            raise RecorderError(str(self.fail_mute))
        if all(i != mixmonitor_id for i, _ in self.running.get(channel, [])):
            raise RecorderError(f"no MixMonitor {mixmonitor_id} on {channel}")
        self.muted[mixmonitor_id] = muted

    def stop_if_started(self, channel: str, path: Path) -> bool:
        for mixmonitor_id, file in self.running.get(channel, []):
            if file == path:
                return self.stop(channel, mixmonitor_id)
        return False

    def current_file(self, channel: str) -> str | None:
        running = self.running.get(channel)
        return str(running[-1][1]) if running else None

    def stop_all(self, channel: str, limit: int = 8) -> int:
        running = self.running.pop(channel, [])
        self.stopped.extend((channel, None) for _ in running)
        return len(running)


class CapturingLog:
    """An event log that keeps its lines as dicts."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def emit(self, event: str, *, level: str | None = None, **fields: Any) -> None:
        self.lines.append({"event": event, "level": level or "info", **fields})

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == name]


# --- the events the guard is fed ------------------------------------------------------------


def channel(call_id: str, *, purposes: str = "", notices: str = "", consent: str = "", outcome: str = "",
            name: str | None = None, caller: str = "+38640123456") -> dict[str, Any]:
    """A channel as ARI shows it, with the RECGUARD_* variables of ari.conf ``channelvars``."""
    variables: Mapping[str, str] = {cf.PURPOSE_VAR: purposes, cf.NOTICES_VAR: notices,
                                    cf.CONSENT_VAR: consent, cf.OUTCOME_VAR: outcome}
    return {"id": call_id, "name": name or f"PJSIP/caller-{call_id}", "linkedid": call_id,
            "caller": {"number": caller}, "channelvars": dict(variables)}


def stasis_start(chan: dict[str, Any], *args: str) -> dict[str, Any]:
    return {"type": "StasisStart", "args": list(args or ("gate",)), "channel": chan}


def varset(chan: dict[str, Any], variable: str, value: str | None = None) -> dict[str, Any]:
    event = {"type": "ChannelVarset", "variable": variable, "channel": chan}
    if value is not None:
        event["value"] = value
    return event


def dtmf(chan: dict[str, Any], digit: str) -> dict[str, Any]:
    return {"type": "ChannelDtmfReceived", "digit": digit, "channel": chan}


def destroyed(chan: dict[str, Any]) -> dict[str, Any]:
    return {"type": "ChannelDestroyed", "channel": chan}


def mixmonitor_start(call_id: str, channel_name: str = "PJSIP/caller", context: str = "from-trunk",
                     exten: str = "s", priority: str = "3") -> dict[str, str]:
    return {"Event": "MixMonitorStart", "Uniqueid": call_id, "Channel": channel_name,
            "Context": context, "Exten": exten, "Priority": priority}


__all__ = [
    "AsteriskError",
    "CapturingLog",
    "ChannelGone",
    "FakeCallControl",
    "FakeMixMonitors",
    "channel",
    "destroyed",
    "dtmf",
    "mixmonitor_start",
    "stasis_start",
    "varset",
    "write_closed_wav",
]
