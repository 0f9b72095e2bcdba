"""Simulated callers for the demo and the integration tests.

A call is a Local channel originated through ARI into a context of the call
centre's dialplan. Its ``;2`` half runs that dialplan, exactly as a caller's
channel would; its ``;1`` half is the caller, parked in a small ARI app of its
own from which it can wait, press keys (DTMF reaches the ``;2`` half) and hang
up at chosen moments.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..ari import AriClient, AriError, EventStream, wait_until

CALLER_APP = "recguard-caller"
POLL_INTERVAL = 0.2  # seconds between two requests that wait for the centre's side


@dataclass
class SimulatedCall:
    """One simulated caller; ``channel_id`` is the caller's half (``;1``)."""

    sim: CallerSimulator
    channel_id: str
    endpoint: str
    events: list[dict[str, Any]] = field(default_factory=list)
    _centre_channel: dict[str, Any] | None = None

    def wait_answered(self, timeout: float = 10.0) -> None:
        """Until the centre's side answered (the caller's half then enters its app)."""
        if not wait_until(lambda: self.has_event("StasisStart") or self.ended, timeout):
            raise TimeoutError(f"{self.endpoint} was not answered within {timeout} s")
        if not self.has_event("StasisStart"):
            raise RuntimeError(f"{self.endpoint} ended before it was answered")

    @property
    def ended(self) -> bool:
        return self.has_event("ChannelDestroyed") or self.has_event("StasisEnd")

    def has_event(self, kind: str) -> bool:
        return any(event.get("type") == kind for event in list(self.events))

    def press(self, digits: str) -> None:
        """The caller presses keys."""
        self.sim.client.send_dtmf(self.channel_id, digits)

    def hangup(self) -> None:
        """The caller hangs up (no error if the centre already did)."""
        try:
            self.sim.client.hangup(self.channel_id)
        except AriError as exc:
            if exc.status != 404:
                raise

    def wait_ended(self, timeout: float = 15.0) -> None:
        if not wait_until(lambda: self.ended, timeout):
            raise TimeoutError(f"{self.endpoint} still up after {timeout} s")

    def centre_channel(self, timeout: float = 5.0) -> dict[str, Any]:
        """The ``;2`` half: the channel that runs the call centre's dialplan.

        Asked for by its id (Asterisk names the second half of a Local channel
        originated with an id ``<id>;2``) rather than by listing every channel,
        which under fifty simultaneous calls would cost Asterisk more than the
        calls themselves."""
        if self._centre_channel is None:
            centre_id = f"{self.channel_id};2"

            def find() -> dict[str, Any] | None:
                try:
                    return self.sim.client.channel(centre_id)
                except AriError as exc:
                    if exc.status == 404:
                        return None
                    raise

            found = wait_until(find, timeout, interval=POLL_INTERVAL)
            if not found:
                raise LookupError(f"no channel {centre_id} in Asterisk")
            self._centre_channel = found
        return self._centre_channel

    def centre_variable(self, name: str) -> str | None:
        """A variable of the centre's side of the call (None once it is gone)."""
        try:
            return self.sim.client.get_variable(self.centre_channel()["id"], name)
        except (AriError, LookupError):
            return None

    def wait_centre_variable(self, name: str, timeout: float = 10.0) -> str | None:
        # Each look is a request to Asterisk: a fifth of a second apart, so that
        # fifty callers waiting at once do not load it more than their calls do.
        return wait_until(lambda: self.centre_variable(name), timeout, interval=POLL_INTERVAL)


class CallerSimulator:
    """Places simulated calls on an Asterisk through ARI."""

    def __init__(self, ari_url: str, user: str, password: str, app: str = CALLER_APP) -> None:
        self.client = AriClient(ari_url, user, password, app)
        self._events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._stream = EventStream(self.client, self._on_event)

    def __enter__(self) -> CallerSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> None:
        self._stream.start()
        if not self._stream.wait_connected(timeout):
            self._stream.stop()
            raise ConnectionError(f"could not open the ARI event stream at {self.client.events_url()}")

    def stop(self) -> None:
        self._stream.stop()

    def _on_event(self, event: dict[str, Any]) -> None:
        channel = event.get("channel") or {}
        channel_id = channel.get("id")
        if channel_id:
            with self._lock:
                self._events[channel_id].append(event)

    def call(
        self,
        context: str,
        exten: str = "s",
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> SimulatedCall:
        """Originate a call into ``exten@context``; returns at once."""
        channel_id = f"sim-{uuid.uuid4().hex[:16]}"
        with self._lock:
            events = self._events[channel_id]
        endpoint = f"Local/{exten}@{context}"
        self.client.originate(
            endpoint=endpoint,
            app=self.client.app,
            caller_id=caller_id,
            variables=variables,
            channel_id=channel_id,
        )
        return SimulatedCall(sim=self, channel_id=channel_id, endpoint=endpoint, events=events)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until Asterisk has no channels left (between tests)."""
        return bool(wait_until(lambda: not self.client.channels(), timeout))


def pause(seconds: float) -> None:
    """The caller listens for a while."""
    time.sleep(seconds)
