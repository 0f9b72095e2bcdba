"""The guard's facade: wires the parts together and routes events to lanes.

Every rule lives in :func:`asterisk_recguard.policy.decide`; the guard only
gathers the facts, asks, and acts on the difference (see :mod:`.diff`). It
knows nothing of HTTP or sockets: it is handed a :class:`~.asterisk.CallControl`,
the MixMonitor starter/stopper, a ledger and a decision log, and is fed
events by the daemon.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import channelfacts as cf
from ..callerid import hash_caller
from ..decisionlog import DecisionLog, EventLog, TolerantLog, flush
from ..ledger import Ledger
from ..policy import Consent, Policy
from ..vault import Keyring
from .actions import Recordings
from .asterisk import AsteriskError, CallControl, MixMonitors
from .decision import Passes
from .events import GuardEvents, describe
from .foreign import ForeignWatcher
from .deadlines import GateDeadlines, PendingGate
from .gate import GATE_ARG, Gate
from .lanes import Lanes, Workers, wait_idle
from .pause import PAUSE_VARS, Pauses, wanted
from .reconcile import Reconciler, ending_key
from .state import CallState, FinalFacts

log = logging.getLogger(__name__)

WITHDRAW_KEY = "9"
# Only these event types reach the app (re-applied after every reconnect).
EVENT_TYPES = (
    "StasisStart",
    "StasisEnd",
    "ChannelVarset",
    "ChannelDtmfReceived",
    "ChannelHangupRequest",
    "ChannelDestroyed",
    "ApplicationReplaced",
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Guard:
    def __init__(
        self,
        policy: Policy,
        control: CallControl,
        mixmonitors: MixMonitors,
        ledger: Ledger,
        decision_log: EventLog,
        hash_secret: str,
        default_country_code: str = "386",
        keyring: Keyring | None = None,
        enforce_unauthorized: bool = True,
        gate_timeout: float = 2.0,
        monitor_dirs: Iterable[Path] = (),
        lanes: int = 4,
        workers: int = 4,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        # Replaced whole on reload, read once per pass: a pass never mixes two policies.
        self._policy = policy
        self.control = control
        self.clock = clock
        self.on_replaced: Callable[[], None] | None = None
        self.accepting = True

        def hash_number(caller: str) -> str | None:
            try:
                return hash_caller(caller, hash_secret, default_country_code)
            except ValueError:
                return None

        log_ = TolerantLog(decision_log) if isinstance(decision_log, DecisionLog) else decision_log
        self.events = GuardEvents(log_)
        self.lanes = Lanes(lanes, self._failed)
        self.workers = Workers(workers, self._failed)
        self.recordings = Recordings(ledger, mixmonitors, self.events, self.workers, keyring, clock)
        self.passes = Passes(ledger, self.recordings, control, self.events, clock)
        self.gate = Gate(control, ledger, self.passes, self.recordings, self.events, hash_number, gate_timeout,
                         mixmonitors.action_timeout, lambda: self.accepting, clock)
        self.pauses = Pauses(self.recordings, self.events)
        self.foreign = ForeignWatcher(ledger, mixmonitors, self.recordings, self.passes, self.events,
                                      self.workers, enforce_unauthorized,
                                      [mixmonitors.recordings_dir, *monitor_dirs])
        self.deadlines = GateDeadlines(control, self.events, on_gate=self._gate_took)
        self.reconciler = Reconciler(control, ledger, self.lanes, self.workers, self.recordings, self.events,
                                     lambda: self._policy, self._facts_changed, self._call_ended,
                                     mixmonitors.recordings_dir, clock)

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def gate_seconds(self) -> Any:
        """Each gate's time from its event to the continue (the newest 100,000)."""
        return self.gate.seconds

    def _gate_took(self, seconds: float) -> None:
        """A gate shed at its deadline is timed like the lane's (``gate.on_gate``)."""
        if self.gate.on_gate is not None:
            self.gate.on_gate(seconds)

    def tracked_calls(self) -> int:
        return self.lanes.tracked()

    # -- from the ARI and AMI reader threads: route, never wait ------------------------

    def on_ari_connected(self) -> None:
        """After every (re)connect: cut the event stream to what the guard uses,
        and reconcile with what Asterisk has now (on the reconcile thread)."""
        try:
            self.control.set_event_filter(EVENT_TYPES)
        except AsteriskError as exc:
            self.events.ari_filter_failed(str(exc))
        self.events.ari_connected(self.control.url)
        self.reconciler.request()

    def on_ari_disconnected(self, reason: str) -> None:
        self.events.ari_disconnected(reason)

    def on_ami_connected(self) -> None:
        """Back after an AMI outage: what could not be settled without AMI
        (final facts, stops, deletions) is settled now."""
        self.reconciler.request()

    def on_ari_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "ApplicationReplaced":
            self.events.app_replaced(self.control.app)
            if self.on_replaced:
                self.on_replaced()
            return
        channel = event.get("channel")
        if not isinstance(channel, dict) or not isinstance(channel.get("id"), str):
            return
        call_id = channel["id"]
        if kind == "StasisStart":
            # The gate's time is counted from here, on our own clock (Asterisk's may differ).
            received = time.perf_counter()
            pending = None
            if (event.get("args") or [None])[0] == GATE_ARG:
                pending = PendingGate(call_id, str(channel.get("name", "")), received,
                                      received + self.gate.timeout)
                self.deadlines.watch(pending)
            self.lanes.post(call_id, self._stasis_start, event, channel, received, pending)
        elif kind == "ChannelVarset" and event.get("variable") in cf.FACT_VARS:
            self.lanes.post(call_id, self._facts_changed, channel, "change")
        elif kind == "ChannelVarset" and event.get("variable") in PAUSE_VARS:
            self.lanes.post(call_id, self._pause_changed, call_id, PAUSE_VARS[event["variable"]],
                            event.get("value"))
        elif kind == "ChannelDtmfReceived" and event.get("digit") == WITHDRAW_KEY:
            self.lanes.post(call_id, self._withdrawn_by_key, channel)
        elif kind == "ChannelDestroyed":
            self.lanes.post(call_id, self._hangup, channel)

    def on_ami_event(self, event: dict[str, str]) -> None:
        if event.get("Event") == "MixMonitorStart" and event.get("Uniqueid"):
            self.lanes.post(event["Uniqueid"], self._mixmonitor_started, event)

    # -- on the call's lane ------------------------------------------------------------

    def _stasis_start(self, calls: dict[str, CallState], event: dict[str, Any], channel: dict[str, Any],
                      received: float, pending: PendingGate | None) -> None:
        self.gate.stasis_start(calls, event, channel, received, self._policy, pending)

    def _mixmonitor_started(self, calls: dict[str, CallState], event: dict[str, str]) -> None:
        self.foreign.mixmonitor_started(calls, event, self._policy)

    def _facts_changed(self, calls: dict[str, CallState], channel: dict[str, Any], trigger: str,
                       force: bool = False) -> None:
        state = calls.get(channel["id"])
        if state is None:
            return
        facts = state.keep_withdrawal(cf.facts_from_channelvars(channel.get("channelvars") or {}))
        if facts != state.facts or force:
            self.passes.reapply(state, facts, self._policy, trigger)

    def _pause_changed(self, calls: dict[str, CallState], call_id: str, trigger: str, value: object) -> None:
        state = calls.get(call_id)
        pause = wanted(value)
        if state is None or pause is None:
            return  # a call the guard does not track records nothing of the guard's
        if self.pauses.request(state, pause, trigger):
            self.passes.reapply(state, state.facts, self._policy, "resume")

    def _withdrawn_by_key(self, calls: dict[str, CallState], channel: dict[str, Any]) -> None:
        state = calls.get(channel["id"])
        if state is None or state.facts.consent is not Consent.GIVEN:
            return
        self.passes.reapply(state, replace(state.facts, consent=Consent.WITHDRAWN), self._policy, "dtmf")
        try:
            # Tell the dialplan, the agent's desktop and a later gate pass.
            self.control.set_variables(state.call_id, {cf.CONSENT_VAR: "withdrawn"},
                                       self.recordings.mixmonitors.action_timeout)
        except AsteriskError as exc:
            self.events.setvar_failed(state, str(exc))

    def _redecide_all(self, calls: dict[str, CallState], trigger: str) -> None:
        for state in list(calls.values()):
            self.passes.reapply(state, state.facts, self._policy, trigger)

    def _hangup(self, calls: dict[str, CallState], channel: dict[str, Any]) -> None:
        facts = cf.facts_from_channelvars(channel.get("channelvars") or {})
        self._call_ended(calls, channel["id"], FinalFacts(facts, self.clock()), "hangup")

    def _call_ended(self, calls: dict[str, CallState], call_id: str, final: FinalFacts | None,
                    trigger: str) -> None:
        """The call leaves its lane; a worker finalizes it (hangup work never delays a gate)."""
        state = calls.pop(call_id, None)
        if state is not None:
            # Until its finalization is done, a reconcile must not take the call
            # for a live one again (the ledger says "live" until then).
            self.workers.claim(ending_key(call_id))
            self.workers.submit(self._finalize, state, final, self._policy, trigger)

    def _finalize(self, state: CallState, final: FinalFacts | None, policy: Policy, trigger: str) -> None:
        try:
            self.passes.finalize(state, final, policy, trigger)
        finally:
            self.workers.release(ending_key(state.call_id))

    # -- from the daemon ----------------------------------------------------------------

    def set_policy(self, policy: Policy) -> None:
        """A reloaded policy applies to the calls in progress too, from now on."""
        self._policy = policy
        self.lanes.post_all(self._redecide_all, "reload")

    def reconcile(self) -> None:
        """Reconcile now, on the calling thread (never an ARI or AMI reader)."""
        self.reconciler.run()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until the lanes are empty, every scheduled file task has finished,
        and what they wrote behind is committed."""
        wait_idle(self.lanes, self.workers, timeout)
        self.passes.ledger.sync()
        flush(self.events.log, timeout)  # lines a background decision log still holds

    def shutdown(self, timeout: float = 30.0) -> None:
        self.accepting = False
        self.reconciler.stop()
        self.deadlines.stop()
        self.wait_idle(timeout)
        self.lanes.stop()
        self.workers.stop()

    def _failed(self, where: str, exc: BaseException) -> None:
        if where == "event":
            self.events.event_failed(describe(exc))
        else:
            self.events.task_failed(describe(exc))
