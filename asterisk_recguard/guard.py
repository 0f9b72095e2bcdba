"""The guard: turns channel events into decisions and decisions into actions.

Every rule lives in :func:`policy.decide`; the guard only gathers the facts,
asks, and acts on the difference between what is recorded now and what the
decision allows:

    not recording, decision records        -> start MixMonitor   (action "start")
    recording, decision still records      -> keep, purposes updated ("keep")
    recording, decision no longer records  -> stop and delete at once ("delete")
    not recording, decision does not record -> nothing           ("none")

Every decision goes to the ledger and to the decision log, with its facts and
reasons. The guard knows nothing of HTTP or sockets: it is handed an ARI
client, a recorder and a ledger, and is fed events by the daemon.

Events are handled on a few "lanes" (threads), each call always on the same
lane, so a call's events keep their order while one slow call does not hold
up the gate of the next. File work (waiting for MixMonitor to close a file,
hashing, encrypting, deleting) runs on a separate pool.

The gate (a channel entering Stasis from dialplan/recguard.conf) must never
keep a caller waiting: whatever fails, the channel is continued, unrecorded,
and the failure is logged.

AMI actions address channels by their uniqueid (Asterisk accepts it where a
channel name is expected), so channel names, which may be built from dialled
numbers, are kept only masked (``_redact.mask_numbers``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import channelfacts as cf
from ._redact import mask_numbers
from .ami import AmiError
from .ari import AriClient, AriError
from .callerid import hash_caller
from .decisionlog import DecisionLog, EventLog, TolerantLog
from .ledger import Ledger, RecordingHeld, format_ts
from .policy import CallFacts, Consent, Decision, Policy, decide
from .recorder import Recorder, RecorderError
from .storage import delete_file, encrypted_path, file_facts, wait_closed
from .vault import Keyring, encrypt_file

log = logging.getLogger(__name__)

GATE_ARG = "gate"
WITHDRAW_KEY = "9"
# Where dialplan/recguard.conf leaves a call's final facts at hangup, so that
# a call that ended while the guard was away is finalized on them.
FINAL_FACTS_FAMILY = "recguard"
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


@dataclass
class ActiveRecording:
    recording_id: str
    path: Path
    mixmonitor_id: str
    purposes: tuple[str, ...]
    # Under legal hold: kept whatever the decisions say, finalized at hangup.
    held: bool = False


@dataclass
class CallState:
    """What the guard knows of one guarded call while it is up.

    ``call_id`` is the channel's uniqueid (what AMI and ARI actions use);
    ``channel`` is its name with any number masked (what the logs show).
    """

    call_id: str
    channel: str
    facts: CallFacts
    decision: Decision | None = None
    recording: ActiveRecording | None = None
    # Earlier parts of this call's recording, stopped but kept with it: they
    # follow every later decision and are finalized (or deleted) at hangup.
    segments: list[ActiveRecording] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def parts(self) -> list[ActiveRecording]:
        return [*self.segments, *([self.recording] if self.recording else [])]


@dataclass(frozen=True)
class FinalFacts:
    """What the hangup handler left in AstDB for a call."""

    facts: CallFacts
    ended_at: datetime


def _now() -> datetime:
    return datetime.now(timezone.utc)


def parse_final_facts(value: str) -> FinalFacts | None:
    """``epoch|purposes|notices|consent|outcome`` as written by the hangup handler."""
    parts = value.split("|")
    if len(parts) != 5:
        return None
    epoch, purposes, notices, consent, outcome = parts
    try:
        ended = datetime.fromtimestamp(int(epoch), timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    facts = cf.facts_from_channelvars({
        cf.PURPOSE_VAR: purposes, cf.NOTICES_VAR: notices, cf.CONSENT_VAR: consent, cf.OUTCOME_VAR: outcome,
    })
    return FinalFacts(facts, ended)


class Guard:
    def __init__(
        self,
        policy: Policy,
        ari: AriClient,
        recorder: Recorder,
        ledger: Ledger,
        decision_log: EventLog,
        hash_secret: str,
        default_country_code: str = "386",
        keyring: Keyring | None = None,
        enforce_unauthorized: bool = True,
        gate_timeout: float = 2.0,
        monitor_dirs: Iterable[Path] = (),
        lanes: int = 4,
        finalize_workers: int = 4,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.policy = policy
        self.ari = ari
        self.recorder = recorder
        self.ledger = ledger
        self.log: EventLog = TolerantLog(decision_log) if isinstance(decision_log, DecisionLog) else decision_log
        self.hash_secret = hash_secret
        self.default_country_code = default_country_code
        self.keyring = keyring
        self.enforce_unauthorized = enforce_unauthorized
        self.gate_timeout = gate_timeout
        # Where a recording started behind the guard's back may be deleted:
        # the recordings directory and Asterisk's monitor spool, nowhere else.
        self.deletable_dirs = [recorder.recordings_dir, *monitor_dirs]
        self.clock = clock
        self.on_replaced: Callable[[], None] | None = None
        # Deletions and finalizations under way on the pool (reconcile leaves them be).
        self._deleting: set[str] = set()
        self._finalizing: set[str] = set()
        self._work_lock = threading.Lock()
        self.gate_seconds: deque[float] = deque(maxlen=100_000)
        self.calls: dict[str, CallState] = {}
        self._calls_lock = threading.Lock()
        # MixMonitor starts the guard has asked for, per channel, not yet seen
        # as a MixMonitorStart event: a start beyond them is someone else's.
        self._expected_starts: dict[str, int] = {}
        self._reconcile_lock = threading.Lock()
        self._finalizer = ThreadPoolExecutor(max_workers=finalize_workers, thread_name_prefix="finalize")
        # Its own worker, so slow file work never delays catching a foreign recording.
        self._watcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unauthorized")
        self._pending: set[Future[Any]] = set()
        self._lanes: list[queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None]] = [
            queue.Queue() for _ in range(max(1, lanes))
        ]
        self._lane_threads = [
            threading.Thread(target=self._lane, args=(q,), name=f"lane-{i}", daemon=True)
            for i, q in enumerate(self._lanes)
        ]
        for thread in self._lane_threads:
            thread.start()
        self.accepting = True

    # -- wiring ----------------------------------------------------------------

    def on_ari_connected(self) -> None:
        """After every (re)connect: cut the event stream to what the guard uses,
        and reconcile with what Asterisk has now."""
        try:
            self.ari.set_event_filter(EVENT_TYPES)
        except AriError as exc:
            self.log.emit("ari_filter_failed", error=str(exc))
        self.log.emit("ari_connected", url=self.ari.base_url)
        try:
            self.reconcile()
        except Exception as exc:
            log.exception("reconcile failed")
            self.log.emit("reconcile_failed", error=f"{type(exc).__name__}: {exc}")

    def on_ari_disconnected(self, reason: str) -> None:
        self.log.emit("ari_disconnected", error=reason)

    def on_ari_event(self, event: dict[str, Any]) -> None:
        """Called on the ARI thread: route the event to its call's lane."""
        kind = event.get("type")
        if kind == "ApplicationReplaced":
            self.log.emit("app_replaced", level="error", error=(
                f"another client registered the ARI app {self.ari.app!r}; this guard no longer sees calls"))
            if self.on_replaced:
                self.on_replaced()
            return
        channel = event.get("channel")
        if not isinstance(channel, dict) or not isinstance(channel.get("id"), str):
            return
        # The gate's time is counted from here, on our own clock (Asterisk's may differ).
        received = time.perf_counter()
        if kind == "StasisStart":
            self._on_lane(channel["id"], self._stasis_start, event, channel, received)
        elif kind == "ChannelVarset" and event.get("variable") in cf.FACT_VARS:
            self._on_lane(channel["id"], self.facts_changed, channel, "change")
        elif kind == "ChannelDtmfReceived" and event.get("digit") == WITHDRAW_KEY:
            self._on_lane(channel["id"], self.consent_withdrawn_by_key, channel)
        elif kind == "ChannelDestroyed":
            self._on_lane(channel["id"], self.hangup, channel)

    def _on_lane(self, call_id: str, handler: Callable[..., None], *args: Any) -> None:
        lane = self._lanes[zlib.crc32(call_id.encode()) % len(self._lanes)]
        lane.put((handler, args))

    def _lane(self, work: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None]) -> None:
        while True:
            item = work.get()
            try:
                if item is None:
                    return
                handler, args = item
                try:
                    handler(*args)
                except Exception as exc:  # one bad event must not stop the lane
                    log.exception("handling %s failed", getattr(handler, "__name__", handler))
                    self.log.emit("event_failed", error=f"{type(exc).__name__}: {exc}")
            finally:
                work.task_done()

    def _stasis_start(self, event: dict[str, Any], channel: dict[str, Any], received: float) -> None:
        args = event.get("args") or []
        if args and args[0] == GATE_ARG:
            self.gate(channel, received)
            return
        # Not the gate: whoever sent it here, the caller must not wait in Stasis.
        self.log.emit("stasis_unexpected", level="warning", call_id=channel["id"],
                      channel=mask_numbers(str(channel.get("name", ""))),
                      error=f"Stasis({self.ari.app}) entered without the '{GATE_ARG}' argument; continued")
        try:
            self.ari.continue_in_dialplan(channel["id"])
        except AriError as exc:
            if exc.status != 404:
                self.log.emit("gate_failed", call_id=channel["id"], error=str(exc))

    # -- the gate -----------------------------------------------------------------

    def gate(self, channel: dict[str, Any], received: float | None = None) -> None:
        began = received if received is not None else time.perf_counter()
        try:
            self._gate(channel, began)
        finally:
            self.gate_seconds.append(time.perf_counter() - began)

    def _gate(self, channel: dict[str, Any], began: float) -> None:
        call_id = channel["id"]
        name = mask_numbers(str(channel.get("name", "")))
        deadline = began + self.gate_timeout
        first_pass = False
        subscribed = False
        state: CallState | None = None
        before: ActiveRecording | None = None  # a recording an earlier pass started
        try:
            if not self.accepting:
                raise RuntimeError("recguard is shutting down")
            facts = cf.facts_from_channelvars(channel.get("channelvars") or {})
            caller = (channel.get("caller") or {}).get("number") or ""
            caller_hash = self._hash(caller)
            with self._calls_lock:
                state = self.calls.get(call_id)
                first_pass = state is None
                if state is None:
                    state = CallState(call_id=call_id, channel=name, facts=facts)
                    self.calls[call_id] = state
            with state.lock:
                before = state.recording
                if first_pass:
                    self.ledger.upsert_call_start(
                        call_id,
                        channel=name,
                        linkedid=channel.get("linkedid"),
                        caller_hash=caller_hash,
                        facts=facts.to_dict(),
                    )
                    # Before continuing, so no change after the gate is missed.
                    self.ari.subscribe(f"channel:{call_id}")
                else:
                    facts = self._keep_withdrawal(state, facts)
                subscribed = True
                if time.perf_counter() > deadline:
                    # Too slow to decide in time: the caller goes on, unrecorded.
                    raise TimeoutError(f"the gate took over {self.gate_timeout:g} s before deciding")
                self._apply(state, facts, trigger="gate", deadline=deadline)
        except Exception as exc:  # the caller must go on whatever happened
            log.exception("gate failed for %s", name)
            self.log.emit("gate_failed", call_id=call_id, channel=name, error=f"{type(exc).__name__}: {exc}")
            with self._calls_lock:
                if state is not None and first_pass and not subscribed:
                    # Its hangup will never be seen; a ledger entry, if any, is
                    # finalized by the next reconcile.
                    self.calls.pop(call_id, None)
            # Only what this pass started goes; a lawful recording from an
            # earlier pass (before a transfer) is not this pass's to undo.
            if state is not None and state.recording is not None and state.recording is not before:
                self._discard(state, reason="gate_failed", trigger="gate", only_current=True)
        finally:
            recording = state.recording if state is not None else None
            told = self._continue(call_id, name, "record" if recording else "skip",
                                  recording.recording_id if recording else "", deadline)
            if not told and state is not None and subscribed:
                self._untrack_after_silent_gate(state, before, first_pass)

    def _continue(self, call_id: str, name: str, outcome: str, recording_id: str, deadline: float) -> bool:
        """Tell the dialplan the decision and let the call go on; True if it was told.

        The variables go through AMI, not ARI: after an ARI variable request
        Asterisk refuses "dangerous" functions on the channel for the rest of
        the call, and the gate's hangup handler needs DB() for the final facts.
        The call is continued whatever happens here.
        """
        told = False
        try:
            for variable, value in ((cf.DECISION_VAR, outcome), (cf.RECORDING_ID_VAR, recording_id)):
                if value:
                    wait = max(0.3, min(self.recorder.action_timeout, deadline - time.perf_counter()))
                    self.recorder.ami.action("Setvar", timeout=wait, Channel=call_id, Variable=variable, Value=value)
            told = True
        except AmiError as exc:
            self.log.emit("gate_failed", call_id=call_id, channel=name, error=str(exc))
        finally:
            try:
                self.ari.continue_in_dialplan(call_id)
            except AriError as exc:
                # 404: the caller hung up meanwhile; the hangup event finalizes the call.
                if exc.status != 404:
                    self.log.emit("gate_failed", call_id=call_id, channel=name, error=str(exc))
        return told

    def _untrack_after_silent_gate(self, state: CallState, before: ActiveRecording | None, first_pass: bool) -> None:
        """The dialplan did not hear the decision, so it says "unavailable" and
        skips the gate's hangup handler and withdrawal key: make that true."""
        with state.lock:
            if state.recording is not None and state.recording is not before:
                self._discard(state, reason="gate_failed", trigger="gate", only_current=True)
            if not first_pass:
                return
            with self._calls_lock:
                self.calls.pop(state.call_id, None)
            try:
                self.ari.unsubscribe(f"channel:{state.call_id}")
            except AriError:
                pass
            self.ledger.end_call(state.call_id, ended_at=self.clock(), facts=state.facts.to_dict())

    # -- changes during the call -----------------------------------------------

    @staticmethod
    def _keep_withdrawal(state: CallState, facts: CallFacts) -> CallFacts:
        """Consent withdrawn in this call stays withdrawn: a stale snapshot, a
        failed Setvar or the consent question asked again does not bring it back."""
        if state.facts.consent is Consent.WITHDRAWN and facts.consent is not Consent.WITHDRAWN:
            return replace(facts, consent=Consent.WITHDRAWN)
        return facts

    def facts_changed(self, channel: dict[str, Any], trigger: str, force: bool = False) -> None:
        state = self._tracked(channel["id"])
        if state is None:
            return
        facts = cf.facts_from_channelvars(channel.get("channelvars") or {})
        with state.lock:
            facts = self._keep_withdrawal(state, facts)
            if facts == state.facts and not force:
                return
            self._reapply(state, facts, trigger)

    def _reapply(self, state: CallState, facts: CallFacts, trigger: str) -> None:
        try:
            self._apply(state, facts, trigger=trigger)
        except Exception as exc:
            log.exception("re-decision failed for %s", state.channel)
            self.log.emit("change_failed", call_id=state.call_id, channel=state.channel,
                          error=f"{type(exc).__name__}: {exc}")

    def consent_withdrawn_by_key(self, channel: dict[str, Any]) -> None:
        state = self._tracked(channel["id"])
        if state is None:
            return
        with state.lock:
            if state.facts.consent is not Consent.GIVEN:
                return
            self._reapply(state, replace(state.facts, consent=Consent.WITHDRAWN), "dtmf")
        try:
            # Tell the dialplan, the agent's desktop and a later gate pass.
            self.recorder.ami.action("Setvar", timeout=self.recorder.action_timeout, Channel=state.call_id,
                                     Variable=cf.CONSENT_VAR, Value="withdrawn")
        except Exception as exc:
            self.log.emit("setvar_failed", call_id=state.call_id, channel=state.channel, error=str(exc))

    def set_policy(self, policy: Policy) -> None:
        """A reloaded policy applies to the calls in progress too, from now on."""
        self.policy = policy
        with self._calls_lock:
            tracked = list(self.calls.values())
        for state in tracked:
            self._on_lane(state.call_id, self._redecide, state.call_id, "reload")

    def _redecide(self, call_id: str, trigger: str) -> None:
        state = self._tracked(call_id)
        if state is not None:
            with state.lock:
                self._reapply(state, state.facts, trigger)

    # -- hangup and finalization -------------------------------------------------

    def hangup(self, channel: dict[str, Any]) -> None:
        state = self._tracked(channel["id"])
        if state is None:
            return
        facts = cf.facts_from_channelvars(channel.get("channelvars") or {})
        self._schedule_finalize(channel["id"], FinalFacts(facts, self.clock()))

    def _schedule_finalize(self, call_id: str, final: FinalFacts | None, trigger: str = "hangup") -> None:
        with self._calls_lock:
            state = self.calls.pop(call_id, None)
        if state is None:
            return
        self._submit(self._finalize, state, final, trigger)

    def _finalize(self, state: CallState, final: FinalFacts | None, trigger: str = "hangup") -> None:
        try:
            with state.lock:
                facts = self._keep_withdrawal(state, final.facts) if final else state.facts
                ended = final.ended_at if final else self.clock()
                decision = decide(facts, self.policy)
                self.ledger.end_call(state.call_id, ended_at=ended, facts=facts.to_dict())
                parts = state.parts()
                last = parts[-1].recording_id if parts else None
                if not parts:
                    self._record_decision(state, facts, decision, trigger, "none", None)
                elif decision.record:
                    self._record_decision(state, facts, decision, trigger, "keep", last)
                else:
                    self._record_decision(state, facts, decision, trigger, "delete", last)
                for part in parts:
                    self._settle(state, part, decision, ended, trigger)
        except Exception as exc:
            log.exception("finalizing %s failed", state.call_id)
            self.log.emit("finalize_failed", call_id=state.call_id, channel=state.channel, error=str(exc))
        finally:
            self._forget_final_facts(state.call_id)
            with self._work_lock:
                self._expected_starts.pop(state.call_id, None)

    def _settle(self, state: CallState, part: ActiveRecording, decision: Decision, ended: datetime,
                trigger: str) -> None:
        """At the end of a call: keep a part for the purposes that justify it, or delete it."""
        if decision.record or part.held:
            if decision.record and tuple(sorted(decision.purposes)) != part.purposes and not part.held:
                self._update_purposes(part, sorted(decision.purposes), reason=trigger)
            self.ledger.recording_stopped(part.recording_id, stopped_at=ended)
            self._store(state, part, ended)
        else:
            self._delete_after_close(state, part, self._loss_reason(part, decision), stopped=True)

    def _store(self, state: CallState, rec: ActiveRecording, ended: datetime) -> None:
        """Finalize a recording once: hash, encrypt, set its deadline."""
        with self._work_lock:
            if rec.recording_id in self._finalizing:
                return
            self._finalizing.add(rec.recording_id)
        try:
            row = self.ledger.recording(rec.recording_id)
            # Someone else (an earlier run, a reconcile) finished or deleted it already.
            if row is None or row.status not in ("recording", "stopped"):
                return
            self._store_once(state, rec, ended)
        finally:
            with self._work_lock:
                self._finalizing.discard(rec.recording_id)

    def _store_once(self, state: CallState, rec: ActiveRecording, ended: datetime) -> None:
        if not wait_closed(rec.path):
            if not rec.path.exists():
                self._erase(rec.recording_id, (rec.path,), "no_audio_written", {"call_id": state.call_id})
                return
            # Still open long after the hangup: keep what was written, and say so.
            self.log.emit("finalize_incomplete", level="warning", call_id=state.call_id,
                          recording_id=rec.recording_id, file=str(rec.path))
        facts = file_facts(rec.path)
        retention = self._retention(rec.purposes)
        deadline = ended + timedelta(days=retention)
        stored_path: Path | None = None
        key_id: str | None = None
        if self.keyring is not None:
            stored_path = encrypted_path(rec.path)
            key_id = encrypt_file(rec.path, stored_path, self.keyring).key_id
        self.ledger.recording_finalized(
            rec.recording_id,
            size_bytes=facts.size_bytes,
            duration_s=facts.duration_s,
            sha256=facts.sha256,
            deadline=deadline,
            stored_path=stored_path,
            key_id=key_id,
            finalized_at=self.clock(),
        )
        if stored_path is not None:
            # The ledger points at the ciphertext now; the clear file goes.
            delete_file(rec.path)
        self.log.emit(
            "recording_finalized",
            call_id=state.call_id,
            channel=state.channel,
            recording_id=rec.recording_id,
            purposes_recorded=list(rec.purposes),
            file=str(stored_path or rec.path),
            encrypted=stored_path is not None,
            key_id=key_id,
            size_bytes=facts.size_bytes,
            duration_s=facts.duration_s,
            sha256=facts.sha256,
            retention_days=retention,
            deadline=format_ts(deadline),
            policy=self.policy.label,
        )

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until the lanes are empty and every scheduled file task has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._work_lock:
                pending = list(self._pending)
            busy = any(lane.unfinished_tasks for lane in self._lanes)
            if not pending and not busy:
                return
            for future in pending:
                try:
                    future.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:  # already logged by _task_done
                    pass
            time.sleep(0.02)

    def shutdown(self, timeout: float = 30.0) -> None:
        self.accepting = False
        self.wait_idle(timeout)
        for lane in self._lanes:
            lane.put(None)
        for thread in self._lane_threads:
            thread.join(5)
        self._watcher.shutdown(wait=True)
        self._finalizer.shutdown(wait=True)

    # -- recordings started behind the guard's back ---------------------------------

    def on_ami_event(self, event: dict[str, str]) -> None:
        if event.get("Event") == "MixMonitorStart":
            future = self._watcher.submit(self._check_mixmonitor, event)
            with self._work_lock:
                self._pending.add(future)
            future.add_done_callback(self._task_done)

    def _check_mixmonitor(self, event: dict[str, str]) -> None:
        """Every MixMonitor the guard did not start is indiscriminate recording.

        The guard counts the starts it asked for on each channel; a start event
        beyond that count is someone else's, whatever the timing.
        """
        uniqueid = event.get("Uniqueid") or ""
        if not uniqueid:
            return
        with self._work_lock:
            expected = self._expected_starts.get(uniqueid, 0)
            if expected > 0:
                self._expected_starts[uniqueid] = expected - 1
                return
        channel = mask_numbers(event.get("Channel", ""))
        try:
            filename = self.recorder.current_file(uniqueid)
        except RecorderError:
            filename = None
        if filename and self._known_recording_file(filename):
            filename = None  # the newest is one of the guard's own: theirs is unnamed
        started_by = mask_numbers("dialplan {},{},{}".format(
            event.get("Context", "?"), event.get("Exten", "?"), event.get("Priority", "?")))
        state = self._tracked(uniqueid)
        action = "logged_only"
        if self.enforce_unauthorized:
            action = self._remove_foreign(uniqueid, state, filename)
        shown_file = mask_numbers(filename) if filename else None
        self.ledger.log_unauthorized(
            channel=channel or "?", action=action, call_id=uniqueid if state else None,
            file=shown_file, started_by=started_by,
        )
        self.log.emit(
            "unauthorized_recording",
            level="warning",
            call_id=uniqueid,
            channel=channel,
            file=shown_file,
            started_by=started_by,
            enforced=self.enforce_unauthorized,
            action=action,
        )

    def _remove_foreign(self, uniqueid: str, state: CallState | None, filename: str | None) -> str:
        """Stop every MixMonitor on the channel, delete the foreign file where
        recguard may, and let a lawful recording go on in a new part."""
        target = self._deletable(filename)
        if state is None:
            self.recorder.stop_all(uniqueid)
        else:
            with state.lock:
                own = state.recording
                if own is not None:
                    # Stopped by its id first, so the blind stops below reach only the foreign one.
                    try:
                        self.recorder.stop(uniqueid, own.mixmonitor_id)
                    except RecorderError as exc:
                        self.log.emit("stop_failed", call_id=uniqueid, recording_id=own.recording_id,
                                      error=str(exc))
                    self.ledger.recording_stopped(own.recording_id, stopped_at=self.clock())
                    state.segments.append(own)
                    state.recording = None
                self.recorder.stop_all(uniqueid)
                if own is not None and state.decision is not None and state.decision.record:
                    new = self._start(state, state.decision)
                    self._record_decision(state, state.facts, state.decision, "resume", "start", new.recording_id)
        if target is None:
            return "stopped_file_kept"
        wait_closed(target, timeout=3.0, absent_grace=0.5)
        delete_file(target)
        return "stopped_deleted"

    def _known_recording_file(self, filename: str) -> bool:
        """A file the guard made: any recording the ledger knows."""
        path = Path(filename)
        if path.parent != self.recorder.recordings_dir or not path.name.endswith(".wav"):
            return False
        recording_id = path.name[: -len(".wav")]
        try:
            if self.recorder.path_for(recording_id) != path:
                return False
        except ValueError:
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
        for folder in self.deletable_dirs:
            try:
                resolved.relative_to(folder.resolve())
            except ValueError:
                continue
            return path
        return None

    # -- reconciliation after a (re)connect or a restart ---------------------------------

    def reconcile(self) -> None:
        """Match what the guard and the ledger believe against Asterisk's live channels.

        Calls still up are tracked again (re-subscribed, decided again on
        their current facts); calls that ended while the guard was away or
        disconnected are finalized on the final facts their hangup handler
        left in AstDB; finalizations and deletions that were cut short are
        finished. Runs after every ARI and every AMI (re)connect.
        """
        with self._reconcile_lock:
            self._reconcile()

    def _reconcile(self) -> None:
        live = {c["id"]: c for c in self.ari.channels() if isinstance(c, dict) and "id" in c}
        for call in self.ledger.live_calls():
            with self._calls_lock:
                if call.call_id in self.calls:
                    continue
                state = CallState(call_id=call.call_id, channel=call.channel,
                                  facts=CallFacts.from_dict(call.last_facts))
                # Reserved before any lane can start its own state for this call.
                self.calls[call.call_id] = state
            with state.lock:
                for rec in self.ledger.recordings_for_call(call.call_id):
                    part = ActiveRecording(rec.recording_id, Path(rec.path), rec.mixmonitor_id or "",
                                           tuple(rec.purposes), held=rec.held)
                    if rec.status == "recording":
                        state.recording = part
                    elif rec.status == "stopped":
                        state.segments.append(part)
                state.decision = decide(state.facts, self.policy)
            self.log.emit("call_resumed", call_id=call.call_id, channel=call.channel,
                          recording_id=state.recording.recording_id if state.recording else None)
        with self._calls_lock:
            tracked = dict(self.calls)
        for call_id, state in tracked.items():
            channel = live.get(call_id)
            if channel is None:
                final, known = self._final_facts(call_id)
                if not known:
                    # AMI is down: finalizing on stale facts could keep what the
                    # final ones delete. The reconcile at AMI's return does it.
                    continue
                self._schedule_finalize(call_id, final, trigger="reconcile")
                continue
            if not self._subscribe(call_id):
                # Still up, but its events may not reach us: say so, keep it tracked.
                self.log.emit("reconcile_failed", call_id=call_id, channel=state.channel,
                              error="could not subscribe to the channel again")
            # Decided again even when the facts look the same: the guard may have
            # died between a decision and its action.
            self._on_lane(call_id, self.facts_changed, channel, "reconcile", True)
        self._finish_interrupted_work()

    def _subscribe(self, call_id: str, attempts: int = 3) -> bool:
        for attempt in range(attempts):
            try:
                self.ari.subscribe(f"channel:{call_id}")
                return True
            except AriError as exc:
                if exc.status == 404 or attempt == attempts - 1:
                    return False
                time.sleep(0.2)
        return False

    def _finish_interrupted_work(self) -> None:
        # Parts of ended calls never finalized (a crash after the hangup): decided
        # on the call's final facts, then kept or deleted.
        for rec in self.ledger.active_recordings():
            call = self.ledger.call(rec.call_id)
            if call is None or call.status != "ended":
                continue
            stale = CallState(call_id=call.call_id, channel=call.channel,
                              facts=CallFacts.from_dict(call.last_facts))
            part = ActiveRecording(rec.recording_id, Path(rec.path), rec.mixmonitor_id or "",
                                   tuple(rec.purposes), held=rec.held)
            self._submit(self._settle, stale, part, decide(stale.facts, self.policy),
                         call.ended_at or self.clock(), "reconcile")
        for rec in self.ledger.pending_deletions():
            with self._work_lock:
                busy = rec.recording_id in self._deleting
            if not busy:
                self._submit(self._erase, rec.recording_id, (rec.path, rec.stored_path),
                             rec.deletion_reason or "deletion_resumed", {"trigger": "reconcile"})
        # A clear WAV left beside its ciphertext (a crash between the two steps of finalization).
        for clear in self.recorder.recordings_dir.glob("*.wav"):
            try:
                row = self.ledger.recording(clear.stem)
            except ValueError:
                continue
            if row is not None and row.status == "finalized" and row.stored_path and Path(row.stored_path).exists():
                delete_file(clear)
                self.log.emit("clear_copy_removed", recording_id=row.recording_id, file=str(clear))

    def _final_facts(self, call_id: str) -> tuple[FinalFacts | None, bool]:
        """The facts the hangup handler stored for a call that ended while the
        guard was away, and whether AstDB could be asked at all."""
        try:
            reply = self.recorder.ami.send("DBGet", Family=FINAL_FACTS_FAMILY, Key=call_id)
        except AmiError:
            return None, False
        if not reply.ok or not reply.events:
            return None, True
        return parse_final_facts(reply.events[0].get("Val", "")), True

    def _forget_final_facts(self, call_id: str) -> None:
        # Looked up first: deleting a key that is not there makes Asterisk log a warning.
        try:
            found = self.recorder.ami.send("DBGet", Family=FINAL_FACTS_FAMILY, Key=call_id)
            if found.ok and found.events:
                self.recorder.ami.send("DBDel", Family=FINAL_FACTS_FAMILY, Key=call_id)
        except AmiError:
            pass  # a stale key is harmless; it is only read for calls the ledger has as live

    def _submit(self, fn: Callable[..., object], *args: Any) -> None:
        future = self._finalizer.submit(fn, *args)
        with self._work_lock:
            self._pending.add(future)
        future.add_done_callback(self._task_done)

    def _task_done(self, future: Future[Any]) -> None:
        with self._work_lock:
            self._pending.discard(future)
        exc = future.exception()
        if exc is not None:
            log.error("background task failed: %s", exc, exc_info=exc)
            self.log.emit("task_failed", error=f"{type(exc).__name__}: {exc}")

    # -- the core: act on the difference ------------------------------------------

    def _apply(self, state: CallState, facts: CallFacts, trigger: str, deadline: float | None = None) -> None:
        decision = decide(facts, self.policy)
        state.facts = facts
        state.decision = decision
        parts = state.parts()
        if decision.record:
            kept = sorted(decision.purposes)
            for part in parts:
                if tuple(kept) != part.purposes and not part.held:
                    self._update_purposes(part, kept, reason=trigger)
            if state.recording is None:
                try:
                    rec = self._start(state, decision, deadline)
                except Exception:
                    self._record_decision(state, facts, decision, trigger, "none", None)
                    raise
                self._record_decision(state, facts, decision, trigger, "start", rec.recording_id)
            else:
                self._record_decision(state, facts, decision, trigger, "keep", state.recording.recording_id)
            return
        if parts:
            self._record_decision(state, facts, decision, trigger, "delete", parts[-1].recording_id)
            self._discard(state, reason=self._loss_reason(parts[-1], decision), trigger=trigger)
        else:
            self._record_decision(state, facts, decision, trigger, "none", None)

    def _start(self, state: CallState, decision: Decision, deadline: float | None = None) -> ActiveRecording:
        recording_id = uuid.uuid4().hex
        path = self.recorder.path_for(recording_id)
        bases = {p: str(self.policy.basis_of(p)) for p in decision.purposes}
        # The ledger knows of the recording before MixMonitor starts, so a
        # crash in between leaves an entry to reconcile, never a stray file.
        self.ledger.recording_started(
            recording_id,
            call_id=state.call_id,
            channel=state.channel,
            path=path,
            purposes=decision.purposes,
            bases=bases,
            started_at=self.clock(),
        )
        with self._work_lock:
            self._expected_starts[state.call_id] = self._expected_starts.get(state.call_id, 0) + 1
        left = None if deadline is None else max(0.2, deadline - time.perf_counter())
        try:
            started = self.recorder.start(state.call_id, recording_id, timeout=left)
        except RecorderError as exc:
            # Marked at once; the stop and the clean-up run off the lane, after the caller moved on.
            self.ledger.mark_deleting(recording_id, reason="start_failed")
            self._submit(self._abandon_start, state, recording_id, path)
            raise RuntimeError(f"MixMonitor did not start on {state.channel}: {exc}") from exc
        self.ledger.set_mixmonitor_id(recording_id, started.mixmonitor_id)
        rec = ActiveRecording(recording_id, started.path, started.mixmonitor_id, tuple(decision.purposes))
        state.recording = rec
        self.log.emit(
            "recording_started",
            call_id=state.call_id,
            channel=state.channel,
            recording_id=recording_id,
            purposes_recorded=list(rec.purposes),
            file=str(rec.path),
            policy=self.policy.label,
        )
        return rec

    def _abandon_start(self, state: CallState, recording_id: str, path: Path) -> None:
        """A start that failed or timed out may still have started MixMonitor:
        stop it if it runs, and delete whatever it wrote, now and a little later."""
        with self._work_lock:
            # A start event still to come for it is then treated as foreign: stopped, deleted.
            left = self._expected_starts.get(state.call_id, 0)
            if left > 0:
                self._expected_starts[state.call_id] = left - 1
        for pause in (0.0, 3.0):
            time.sleep(pause)
            self.recorder.stop_if_started(state.call_id, path)
            if path.exists() and not wait_closed(path, timeout=2.0):
                continue
            delete_file(path)
        if path.exists():
            # Still being written: left 'deleting'; reconcile and purge finish it.
            self.log.emit("stop_failed", call_id=state.call_id, channel=state.channel,
                          recording_id=recording_id, error="a MixMonitor whose start failed is still writing")
            return
        self._erase(recording_id, (path,), "start_failed", {"call_id": state.call_id, "channel": state.channel})

    def _update_purposes(self, rec: ActiveRecording, purposes: list[str], reason: str) -> None:
        bases = {p: str(self.policy.basis_of(p)) for p in purposes}
        self.ledger.update_recording_purposes(rec.recording_id, purposes, bases, reason=reason)
        rec.purposes = tuple(purposes)

    def _discard(self, state: CallState, reason: str, trigger: str, only_current: bool = False) -> None:
        """Stop the recording at once and delete it, with its earlier parts:
        nothing justifies them any more. A part under legal hold is stopped but kept."""
        parts = [state.recording] if only_current and state.recording else state.parts()
        doomed: list[ActiveRecording] = []
        for part in parts:
            try:
                # The intent is durable before anything else happens.
                self.ledger.mark_deleting(part.recording_id, reason=reason)
                doomed.append(part)
            except RecordingHeld:
                part.held = True
                self.log.emit("recording_held_kept", call_id=state.call_id, recording_id=part.recording_id,
                              reason=reason)
        current = state.recording
        stopped = False
        if current is not None and current in parts:
            state.recording = None
            try:
                stopped = self.recorder.stop(state.call_id, current.mixmonitor_id)
            except RecorderError as exc:
                self.log.emit("stop_failed", call_id=state.call_id, channel=state.channel,
                              recording_id=current.recording_id, error=str(exc))
            self.ledger.recording_stopped(current.recording_id, stopped_at=self.clock())
            self.log.emit("recording_stopped", call_id=state.call_id, channel=state.channel,
                          recording_id=current.recording_id, reason=reason, trigger=trigger)
            if current.held:
                state.segments.append(current)
        state.segments = [part for part in state.segments if part.held or part not in doomed]
        for part in doomed:
            # The file is closed on MixMonitor's own thread; deleted off the event lane.
            self._submit(self._delete_after_close, state, part, reason, stopped)

    def _delete_after_close(self, state: CallState, rec: ActiveRecording, reason: str, stopped: bool) -> None:
        with self._work_lock:
            self._deleting.add(rec.recording_id)
        try:
            try:
                self.ledger.mark_deleting(rec.recording_id, reason=reason)
            except RecordingHeld:
                self.log.emit("recording_held_kept", call_id=state.call_id, recording_id=rec.recording_id,
                              reason=reason)
                self._store(state, rec, self.clock())
                return
            # Wait for MixMonitor to close the file, so it cannot reappear after
            # the unlink; a stop that did not take is tried again meanwhile.
            for _ in range(3):
                if wait_closed(rec.path, timeout=3.0, absent_grace=1.0) or not rec.path.exists():
                    break
                try:
                    self.recorder.stop(state.call_id, rec.mixmonitor_id)
                except RecorderError as exc:
                    self.log.emit("stop_failed", call_id=state.call_id, channel=state.channel,
                                  recording_id=rec.recording_id, error=str(exc))
            self._erase(rec.recording_id, (rec.path,), reason, {"call_id": state.call_id, "channel": state.channel})
        finally:
            with self._work_lock:
                self._deleting.discard(rec.recording_id)

    def _erase(self, recording_id: str, paths: Iterable[str | Path | None], reason: str,
               log_fields: dict[str, Any] | None = None) -> bool:
        """Delete a recording's files (its ciphertext too, wherever it got to),
        intent first and confirmation after, so an interruption in between is
        finished by the next reconcile or purge."""
        self.ledger.mark_deleting(recording_id, reason=reason)
        existed = False
        candidates = {Path(p) for p in paths if p}
        candidates |= {encrypted_path(p) for p in candidates if p.suffix == ".wav"}
        for path in sorted(candidates):
            existed = delete_file(path) or existed
        self.ledger.mark_deleted(recording_id, reason=reason)
        self.log.emit("recording_deleted", recording_id=recording_id, reason=reason, file_existed=existed,
                      **(log_fields or {}))
        return existed

    # -- helpers -----------------------------------------------------------------

    def _record_decision(
        self,
        state: CallState,
        facts: CallFacts,
        decision: Decision,
        trigger: str,
        action: str,
        recording_id: str | None,
    ) -> None:
        rejected = [{"purpose": r.purpose, "reason": str(r.reason)} for r in decision.rejected]
        self.ledger.record_decision(
            state.call_id,
            trigger=trigger,
            facts=facts.to_dict(),
            record=decision.record,
            purposes=decision.purposes,
            rejected=rejected,
            policy=decision.policy,
            action=action,
            retention_days=decision.retention_days,
            recording_id=recording_id,
            at=self.clock(),
        )
        self.log.emit(
            "decision",
            call_id=state.call_id,
            channel=state.channel,
            trigger=trigger,
            purposes_declared=sorted(facts.purposes),
            notices=sorted(n for n, s in facts.notices.items() if s == "complete"),
            notices_interrupted=sorted(n for n, s in facts.notices.items() if s != "complete"),
            consent=str(facts.consent),
            outcome=str(facts.outcome),
            decision="record" if decision.record else "skip",
            action=action,
            purposes_recorded=list(decision.purposes) if decision.record else [],
            reasons=rejected,
            retention_days=decision.retention_days,
            recording_id=recording_id,
            policy=decision.policy,
        )

    def _loss_reason(self, rec: ActiveRecording, decision: Decision) -> str:
        """Why the purposes the recording had no longer justify it.

        A rejection reason when the purpose is still declared (``no_transaction``,
        ``consent_withdrawn``); ``reclassified`` when it is no longer declared at all.
        """
        reasons = sorted({str(r.reason) for r in decision.rejected if r.purpose in rec.purposes})
        return ",".join(reasons) or "reclassified"

    def _retention(self, purposes: tuple[str, ...]) -> int:
        days = [self.policy.purposes[p].retention_days or 0 for p in purposes if p in self.policy.purposes]
        return max(days, default=0)

    def _tracked(self, call_id: str) -> CallState | None:
        with self._calls_lock:
            return self.calls.get(call_id)

    def _hash(self, caller: str) -> str | None:
        try:
            return hash_caller(caller, self.hash_secret, self.default_country_code)
        except ValueError:
            return None
