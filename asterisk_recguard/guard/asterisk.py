"""The small interface through which the guard acts on Asterisk.

The guard is handed a :class:`CallControl` (continue a call, set a channel
variable, follow a channel's events, read what the hangup handler left in
AstDB) and a :class:`MixMonitors` (start and stop recordings), rather than
reaching into the ARI and AMI clients. :class:`LiveCallControl` is the real
one, over ARI for Stasis and subscriptions and AMI for variables and AstDB;
:mod:`asterisk_recguard.guard.testing` has fakes that answer at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from ..ami import AmiClient, AmiError
from ..ari import AriClient, AriError
from ..recorder import StartedRecording

# Where dialplan/recguard.conf leaves a call's final facts at hangup, so that
# a call that ended while the guard was away is finalized on them.
FINAL_FACTS_FAMILY = "recguard"


class AsteriskError(Exception):
    """Asterisk could not be asked, or refused."""


class ChannelGone(AsteriskError):
    """The channel no longer exists (the caller hung up meanwhile)."""


class CallControl(Protocol):
    app: str
    url: str

    def set_event_filter(self, event_types: Iterable[str]) -> None: ...
    def subscribe(self, call_id: str) -> None: ...
    def unsubscribe(self, call_id: str) -> None: ...
    def continue_call(self, call_id: str) -> None: ...
    def set_variables(self, call_id: str, variables: Mapping[str, str], timeout: float) -> None: ...
    def live_channels(self) -> dict[str, dict[str, Any]]: ...
    def final_facts(self, call_id: str) -> str | None: ...
    def forget_final_facts(self, call_id: str) -> None: ...


class MixMonitors(Protocol):
    """What the guard needs of :class:`asterisk_recguard.recorder.Recorder`."""

    recordings_dir: Path
    action_timeout: float

    def path_for(self, recording_id: str) -> Path: ...
    def start(self, channel: str, recording_id: str, timeout: float | None = None) -> StartedRecording: ...
    def stop(self, channel: str, mixmonitor_id: str, attempts: int = 3) -> bool: ...
    def mute(self, channel: str, mixmonitor_id: str, muted: bool) -> None: ...
    def stop_if_started(self, channel: str, path: Path) -> bool: ...
    def current_file(self, channel: str) -> str | None: ...
    def stop_all(self, channel: str, limit: int = 8) -> int: ...


class LiveCallControl:
    """ARI for what needs Stasis or subscriptions; AMI for variables and AstDB.

    Variables go through AMI, not ARI: after an ARI variable request Asterisk
    refuses "dangerous" functions on the channel for the rest of the call, and
    the gate's hangup handler needs DB() for the final facts.
    """

    def __init__(self, ari: AriClient, ami: AmiClient, action_timeout: float) -> None:
        self._ari = ari
        self._ami = ami
        self._timeout = action_timeout
        self.app = ari.app
        self.url = ari.base_url

    def set_event_filter(self, event_types: Iterable[str]) -> None:
        self._ari_call(self._ari.set_event_filter, event_types)

    def subscribe(self, call_id: str) -> None:
        self._ari_call(self._ari.subscribe, f"channel:{call_id}")

    def unsubscribe(self, call_id: str) -> None:
        try:
            self._ari.unsubscribe(f"channel:{call_id}")
        except AriError:
            pass  # a subscription of a channel that is gone goes with it

    def continue_call(self, call_id: str) -> None:
        self._ari_call(self._ari.continue_in_dialplan, call_id)

    def live_channels(self) -> dict[str, dict[str, Any]]:
        channels = self._ari_call(self._ari.channels)
        return {c["id"]: c for c in channels if isinstance(c, dict) and isinstance(c.get("id"), str)}

    def set_variables(self, call_id: str, variables: Mapping[str, str], timeout: float) -> None:
        """All at once: one round trip to Asterisk, however many variables."""
        requests = [("Setvar", {"Channel": call_id, "Variable": name, "Value": value})
                    for name, value in variables.items()]
        try:
            self._ami.actions(requests, timeout=timeout)
        except AmiError as exc:
            raise AsteriskError(str(exc)) from exc

    def final_facts(self, call_id: str) -> str | None:
        try:
            reply = self._ami.send("DBGet", Family=FINAL_FACTS_FAMILY, Key=call_id)
        except AmiError as exc:
            raise AsteriskError(str(exc)) from exc
        if not reply.ok or not reply.events:
            return None
        return reply.events[0].get("Val", "")

    def forget_final_facts(self, call_id: str) -> None:
        # Looked up first: deleting a key that is not there makes Asterisk log a warning.
        try:
            if self.final_facts(call_id) is not None:
                self._ami.send("DBDel", Family=FINAL_FACTS_FAMILY, Key=call_id)
        except (AsteriskError, AmiError):
            pass  # a stale key is harmless; it is only read for calls the ledger has as live

    @staticmethod
    def _ari_call(request: Any, *args: Any) -> Any:
        try:
            return request(*args)
        except AriError as exc:
            if exc.status == 404:
                raise ChannelGone(str(exc)) from exc
            raise AsteriskError(str(exc)) from exc
