"""Helpers for the tests of the dialplan snippets: where the sandbox's sounds
are and how long they last, the facts a call carries, the Asterisk log, and a
stand-in for the guard's Stasis application."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asterisk_recguard import prompts
from asterisk_recguard.ami import AmiClient
from asterisk_recguard.ari import AriClient, EventStream, wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator, SimulatedCall
from asterisk_recguard.devtools.sandbox import Sandbox

CONTEXT = "recguard-test-dialplan"
FACTS = (
    "RECGUARD_NOTICES",
    "RECGUARD_CONSENT",
    "RECGUARD_PURPOSE",
    "RECGUARD_OUTCOME",
    "RECGUARD_DECISION",
)
GSM_FRAME_BYTES = 33  # one 20 ms frame
GSM_FRAME_SECONDS = 0.020


def sound_file(sandbox: Sandbox, inside: str) -> Path:
    """The host path of a file under the sandbox Asterisk's sounds directory."""
    info = sandbox.info()
    assert info is not None, "the sandbox is not running"
    if info.root:
        return prompts.resolve_in_root(Path("/usr/share/asterisk/sounds") / inside, Path(info.root))
    return Path(os.environ.get("RECGUARD_SANDBOX_SOUNDS", "/usr/share/asterisk/sounds")) / inside


def seconds(sound: Path) -> float:
    """How long a stock (GSM) or recguard (WAV) prompt plays."""
    if sound.suffix == ".gsm":
        return sound.stat().st_size / GSM_FRAME_BYTES * GSM_FRAME_SECONDS
    return prompts.duration(sound)


def facts(call: SimulatedCall) -> dict[str, str | None]:
    return {name: call.centre_variable(name) for name in FACTS}


def wait_value(call: SimulatedCall, name: str, wanted: str, timeout: float) -> float | None:
    """Until the centre's variable has exactly ``wanted``; the monotonic time then."""
    if wait_until(lambda: call.centre_variable(name) == wanted, timeout, interval=0.02):
        return time.monotonic()
    return None


def global_variable(client: AriClient, name: str) -> str:
    reply = client.request("GET", "/asterisk/variable", params={"variable": name})
    return reply.get("value", "") if isinstance(reply, dict) else ""


class AsteriskLog:
    """The lines the sandbox Asterisk logged after this object was made."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.path = Path(sandbox.log_file)
        self.start = self.path.stat().st_size

    def lines(self) -> list[str]:
        with open(self.path, "rb") as log:
            log.seek(self.start)
            return log.read().decode("utf-8", errors="replace").splitlines()

    def warnings(self, containing: str) -> list[str]:
        return [line for line in self.lines() if " WARNING[" in line and containing in line]

    def wait_warning(self, containing: str, timeout: float = 3.0) -> list[str]:
        return wait_until(lambda: self.warnings(containing), timeout) or []


class FakeGuard:
    """A Stasis application standing in for recguard at the gate.

    On StasisStart it keeps the channel object of the event (with the
    ``channelvars`` ari.conf puts in it), sets RECGUARD_DECISION to
    ``decision`` unless that is None, and continues the channel in the dialplan.
    With ``subscribe``, it first subscribes to the channel, as recguard does,
    and keeps every ChannelVarset event of it until it stops (when it
    unsubscribes again).

    The decision is set through AMI Setvar, as recguard must: an ARI request
    that sets a variable on a channel in Stasis leaves the channel's thread
    unable to run DB() for the rest of the call, and the final-facts hangup
    handler the gate pushes needs it.
    """

    def __init__(
        self, env: dict[str, str], app: str = "recguard", decision: str | None = "skip", subscribe: bool = False
    ) -> None:
        self.client = AriClient(env["RECGUARD_ARI_URL"], env["RECGUARD_ARI_USER"], env["RECGUARD_ARI_PASSWORD"], app)
        self.ami = AmiClient(
            env["RECGUARD_AMI_HOST"], int(env["RECGUARD_AMI_PORT"]), env["RECGUARD_AMI_USER"],
            env["RECGUARD_AMI_SECRET"], events="off",
        )
        self.decision = decision
        self.subscribe = subscribe
        self.started: list[dict[str, Any]] = []
        self.varsets: list[tuple[str, str]] = []
        self.failures: list[str] = []
        self._subscribed: list[str] = []
        self._lock = threading.Lock()
        self._stream = EventStream(self.client, self._on_event)

    def __enter__(self) -> FakeGuard:
        self.ami.start()
        if not self.ami.wait_connected(10):
            self.ami.stop()
            raise AssertionError(f"could not log in to AMI: {self.ami.last_error}")
        self._stream.start()
        assert self._stream.wait_connected(10), f"could not register the Stasis app {self.client.app!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        for source in self._subscribed:
            try:
                self.client.unsubscribe(source)
            except Exception:
                pass  # the channel is gone, and its subscription with it
        self._stream.stop()
        self.ami.stop()

    def values(self, variable: str) -> list[str]:
        """The values ``variable`` took on the subscribed channels, in order."""
        with self._lock:
            return [value for name, value in self.varsets if name == variable]

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "ChannelVarset":
            with self._lock:
                self.varsets.append((event.get("variable", ""), event.get("value", "")))
            return
        if event.get("type") != "StasisStart":
            return
        channel = event["channel"]
        with self._lock:
            self.started.append(event)
        try:
            if self.subscribe:
                source = f"channel:{channel['id']}"
                self.client.subscribe(source)
                self._subscribed.append(source)
            if self.decision is not None:
                self.ami.action("Setvar", Channel=channel["id"], Variable="RECGUARD_DECISION", Value=self.decision)
            self.client.continue_in_dialplan(channel["id"])
        except Exception as exc:  # reported by the test, not lost on the stream thread
            self.failures.append(f"{type(exc).__name__}: {exc}")

    def wait_started(self, timeout: float = 5.0) -> dict[str, Any]:
        found = wait_until(lambda: list(self.started), timeout)
        assert found, f"no StasisStart for {self.client.app!r} within {timeout} s"
        return found[0]


def run_until_done(call: SimulatedCall, timeout: float, during: Callable[[], None] | None = None) -> None:
    """Answer, optionally act, and wait until the test extension set T_DONE."""
    call.wait_answered()
    if during:
        during()
    assert call.wait_centre_variable("T_DONE", timeout=timeout) == "yes", "the dialplan did not get past the snippet"


def forget_final_facts(env: dict[str, str], callers: CallerSimulator) -> None:
    """Ends the calls still up and deletes the final facts their hangup
    handlers wrote to AstDB (family ``recguard``), so that a guard started by
    a later test does not find calls it never saw."""
    for channel in callers.client.channels():
        try:
            callers.client.hangup(channel["id"])
        except Exception:
            pass  # already gone
    assert callers.wait_idle(10), "calls did not end"
    ami = AmiClient(
        env["RECGUARD_AMI_HOST"], int(env["RECGUARD_AMI_PORT"]), env["RECGUARD_AMI_USER"],
        env["RECGUARD_AMI_SECRET"], events="off",
    )
    ami.start()
    try:
        assert ami.wait_connected(10), ami.last_error
        ami.send("DBDelTree", Family="recguard")  # an error only when there is nothing to delete
    finally:
        ami.stop()
