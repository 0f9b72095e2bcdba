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

The gate (a channel entering Stasis from dialplan/recguard.conf) must never
keep a caller waiting: whatever fails, the channel is continued, unrecorded,
and the failure is logged.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import channelfacts as cf
from .ari import AriClient, AriError
from .callerid import hash_caller
from .decisionlog import DecisionLog
from .ledger import Ledger, format_ts
from .policy import CallFacts, Consent, Decision, Policy, decide
from .recorder import Recorder, RecorderError, delete_file, file_facts, wait_closed
from .vault import Keyring, encrypt_file

log = logging.getLogger(__name__)

GATE_ARG = "gate"
WITHDRAW_KEY = "9"
# Only these event types reach the app (re-applied after every reconnect).
EVENT_TYPES = (
    "StasisStart",
    "StasisEnd",
    "ChannelVarset",
    "ChannelDtmfReceived",
    "ChannelHangupRequest",
    "ChannelDestroyed",
)


@dataclass
class ActiveRecording:
    recording_id: str
    path: Path
    mixmonitor_id: str
    purposes: tuple[str, ...]


@dataclass
class CallState:
    """What the guard knows of one guarded call while it is up."""

    call_id: str
    channel: str
    facts: CallFacts
    decision: Decision | None = None
    recording: ActiveRecording | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)


def encrypted_path(clear: Path) -> Path:
    return clear.with_name(clear.name + ".rgv")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Guard:
    def __init__(
        self,
        policy: Policy,
        ari: AriClient,
        recorder: Recorder,
        ledger: Ledger,
        decision_log: DecisionLog,
        hash_secret: str,
        default_country_code: str = "386",
        keyring: Keyring | None = None,
        enforce_unauthorized: bool = True,
        gate_timeout: float = 2.0,
        finalize_workers: int = 4,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.policy = policy
        self.ari = ari
        self.recorder = recorder
        self.ledger = ledger
        self.log = decision_log
        self.hash_secret = hash_secret
        self.default_country_code = default_country_code
        self.keyring = keyring
        self.enforce_unauthorized = enforce_unauthorized
        self.gate_timeout = gate_timeout
        self.clock = clock
        # Files of the MixMonitors the guard itself started; any other is unauthorized.
        self._own_files: set[str] = set()
        # Deletions and finalizations under way on this guard's own threads
        # (reconcile leaves them be).
        self._deleting: set[str] = set()
        self._finalizing: set[str] = set()
        self.gate_seconds: deque[float] = deque(maxlen=100_000)
        self.calls: dict[str, CallState] = {}
        self._calls_lock = threading.Lock()
        self._finalizer = ThreadPoolExecutor(max_workers=finalize_workers, thread_name_prefix="finalize")
        self._pending: set[Future[None]] = set()
        self.accepting = True

    # -- wiring ----------------------------------------------------------------

    def on_ari_connected(self) -> None:
        """After every (re)connect: cut the event stream to what the guard uses,
        and subscribe again to the calls it is tracking."""
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
        kind = event.get("type")
        channel = event.get("channel")
        if not isinstance(channel, dict) or not isinstance(channel.get("id"), str):
            return
        if kind == "StasisStart":
            args = event.get("args") or []
            if args and args[0] == GATE_ARG:
                self.gate(channel)
        elif kind == "ChannelVarset":
            if event.get("variable") in cf.FACT_VARS:
                self.facts_changed(channel, trigger="change")
        elif kind == "ChannelDtmfReceived":
            if event.get("digit") == WITHDRAW_KEY:
                self.consent_withdrawn_by_key(channel)
        elif kind == "ChannelDestroyed":
            self.hangup(channel)

    # -- the gate -----------------------------------------------------------------

    def gate(self, channel: dict[str, Any]) -> None:
        began = time.perf_counter()
        try:
            self._gate(channel, began)
        finally:
            self.gate_seconds.append(time.perf_counter() - began)

    def _gate(self, channel: dict[str, Any], began: float) -> None:
        call_id = channel["id"]
        name = str(channel.get("name", ""))
        outcome = "skip"
        recording_id = ""
        first_pass = False
        subscribed = False
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
                subscribed = True
                if time.perf_counter() - began > self.gate_timeout:
                    # Too slow to decide in time: the caller goes on, unrecorded.
                    raise TimeoutError(f"the gate took over {self.gate_timeout:g} s before deciding")
                self._apply(state, facts, trigger="gate")
                if state.recording:
                    outcome, recording_id = "record", state.recording.recording_id
        except Exception as exc:  # the caller must go on whatever happened
            log.exception("gate failed for %s", name)
            self.log.emit("gate_failed", call_id=call_id, channel=name, error=f"{type(exc).__name__}: {exc}")
            outcome = "skip"
            with self._calls_lock:
                state = self.calls.get(call_id)
                if state is not None and first_pass and not subscribed:
                    # Its hangup will never be seen; a ledger entry, if any, is
                    # finalized by the next reconcile.
                    self.calls.pop(call_id, None)
            if state is not None and state.recording is not None:
                self._discard(state, reason="gate_failed", trigger="gate")
                recording_id = ""
        finally:
            self._continue(call_id, name, outcome, recording_id)

    def _continue(self, call_id: str, name: str, outcome: str, recording_id: str) -> None:
        try:
            self.ari.set_variable(call_id, cf.DECISION_VAR, outcome)
            if recording_id:
                self.ari.set_variable(call_id, cf.RECORDING_ID_VAR, recording_id)
        except AriError as exc:
            self.log.emit("gate_failed", call_id=call_id, channel=name, error=str(exc))
        try:
            self.ari.continue_in_dialplan(call_id)
        except AriError as exc:
            # 404: the caller hung up meanwhile; the hangup event finalizes the call.
            if exc.status != 404:
                self.log.emit("gate_failed", call_id=call_id, channel=name, error=str(exc))

    # -- changes during the call -----------------------------------------------

    def facts_changed(self, channel: dict[str, Any], trigger: str) -> None:
        state = self._tracked(channel["id"])
        if state is None:
            return
        facts = cf.facts_from_channelvars(channel.get("channelvars") or {})
        with state.lock:
            # A key press withdrew consent; a stale snapshot must not bring it back.
            if state.facts.consent is Consent.WITHDRAWN and facts.consent is Consent.GIVEN:
                facts = replace(facts, consent=Consent.WITHDRAWN)
            if facts == state.facts:
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
            self.recorder.ami.action("Setvar", Channel=state.channel, Variable=cf.CONSENT_VAR, Value="withdrawn")
        except Exception as exc:
            self.log.emit("setvar_failed", call_id=state.call_id, channel=state.channel, error=str(exc))

    # -- hangup and finalization -------------------------------------------------

    def hangup(self, channel: dict[str, Any]) -> None:
        state = self._tracked(channel["id"])
        if state is None:
            return
        facts = cf.facts_from_channelvars(channel.get("channelvars") or {})
        self._schedule_finalize(channel["id"], facts)

    def _schedule_finalize(self, call_id: str, final_facts: CallFacts | None, trigger: str = "hangup") -> None:
        with self._calls_lock:
            state = self.calls.pop(call_id, None)
        if state is None:
            return
        self._submit(self._finalize, state, final_facts, trigger)

    def _finalize(self, state: CallState, final_facts: CallFacts | None, trigger: str = "hangup") -> None:
        try:
            with state.lock:
                facts = final_facts or state.facts
                if state.facts.consent is Consent.WITHDRAWN and facts.consent is Consent.GIVEN:
                    facts = replace(facts, consent=Consent.WITHDRAWN)
                ended = self.clock()
                decision = decide(facts, self.policy)
                self.ledger.end_call(state.call_id, ended_at=ended, facts=facts.to_dict())
                rec = state.recording
                if rec is None:
                    self._record_decision(state, facts, decision, trigger, "none", None)
                    return
                kept = self._kept_purposes(rec, decision)
                if not kept:
                    self._record_decision(state, facts, decision, trigger, "delete", rec.recording_id)
                    self._delete_after_close(state, rec, self._loss_reason(rec, decision), wait=True)
                    return
                if tuple(kept) != rec.purposes:
                    self._update_purposes(rec, kept, reason=trigger)
                self._record_decision(state, facts, decision, trigger, "keep", rec.recording_id)
                self.ledger.recording_stopped(rec.recording_id, stopped_at=ended)
                self._store(state, rec, ended)
        except Exception as exc:
            log.exception("finalizing %s failed", state.call_id)
            self.log.emit("finalize_failed", call_id=state.call_id, channel=state.channel, error=str(exc))

    def _store(self, state: CallState, rec: ActiveRecording, ended: datetime) -> None:
        if rec.recording_id in self._finalizing:
            return
        self._finalizing.add(rec.recording_id)
        try:
            self._store_once(state, rec, ended)
        finally:
            self._finalizing.discard(rec.recording_id)

    def _store_once(self, state: CallState, rec: ActiveRecording, ended: datetime) -> None:
        self._own_files.discard(str(rec.path))
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
        """Until every scheduled finalization has finished (shutdown, tests)."""
        for future in list(self._pending):
            future.result(timeout=timeout)

    def shutdown(self, timeout: float = 30.0) -> None:
        self.accepting = False
        self.wait_idle(timeout)
        self._finalizer.shutdown(wait=True)

    # -- recordings started behind the guard's back ---------------------------------

    def on_ami_event(self, event: dict[str, str]) -> None:
        if event.get("Event") == "MixMonitorStart":
            self._submit(self._check_mixmonitor, event)

    def _check_mixmonitor(self, event: dict[str, str]) -> None:
        """Every MixMonitor the guard did not start is indiscriminate recording."""
        channel = event.get("Channel", "")
        call_id = event.get("Uniqueid") or None
        try:
            filename = self.recorder.current_file(channel)
        except RecorderError as exc:
            filename = None
            if "no such channel" in str(exc).lower():
                return
        if filename and self._is_own(filename):
            return
        started_by = "channel at {},{},{}".format(
            event.get("Context", "?"), event.get("Exten", "?"), event.get("Priority", "?")
        )
        with self._calls_lock:
            state = self.calls.get(call_id or "")
        action = "logged_only"
        deleted = False
        if self.enforce_unauthorized:
            action = "stopped_deleted"
            stopped = self.recorder.stop_unidentified(channel, self._local(filename))
            if state is not None:
                self._resume_if_stopped(state)
            target = self._local(filename)
            if target is not None and stopped:
                wait_closed(target, timeout=3.0)
                deleted = delete_file(target)
        self.ledger.log_unauthorized(
            channel=channel, action=action, call_id=call_id if state else None,
            file=filename, started_by=started_by,
        )
        self.log.emit(
            "unauthorized_recording",
            level="warning",
            call_id=call_id,
            channel=channel,
            file=filename,
            started_by=started_by,
            enforced=self.enforce_unauthorized,
            file_deleted=deleted,
        )

    def _is_own(self, filename: str) -> bool:
        """A file the guard started: one it is recording now, or any recording the ledger knows."""
        if filename in self._own_files:
            return True
        path = Path(filename)
        if path.parent != self.recorder.recordings_dir or not path.name.endswith(".wav"):
            return False
        recording_id = path.name[: -len(".wav")]
        try:
            return self.recorder.path_for(recording_id) == path and self.ledger.recording(recording_id) is not None
        except ValueError:
            return False

    def _local(self, filename: str | None) -> Path | None:
        """The unauthorized file as recguard can reach it: only inside the recordings directory."""
        if not filename:
            return None
        path = Path(filename)
        if not path.is_absolute():
            path = self.recorder.recordings_dir / path
        try:
            path.resolve().relative_to(self.recorder.recordings_dir.resolve())
        except ValueError:
            return None
        return path

    def _resume_if_stopped(self, state: CallState) -> None:
        """Stopping an unidentified MixMonitor may have stopped the guard's own one
        (Asterisk stops the newest); a lawful recording then goes on in a new file."""
        with state.lock:
            rec = state.recording
            if rec is None or not wait_closed(rec.path, timeout=0.3, absent_grace=0.0):
                return
            state.recording = None
            self._own_files.discard(str(rec.path))
            self.ledger.recording_stopped(rec.recording_id, stopped_at=self.clock())
            self._submit(self._store, state, rec, self.clock())
            if state.decision is not None and state.decision.record:
                new = self._start(state, state.decision)
                self._record_decision(state, state.facts, state.decision, "resume", "start", new.recording_id)

    # -- reconciliation after a (re)connect or a restart ---------------------------------

    def reconcile(self) -> None:
        """Match what the guard and the ledger believe against Asterisk's live channels.

        Calls still up are tracked again (re-subscribed, re-decided on their
        current facts); calls that ended while the guard was away or
        disconnected are finalized from their last known facts; deletions
        that were interrupted are finished.
        """
        live = {c["id"]: c for c in self.ari.channels() if isinstance(c, dict) and "id" in c}
        with self._calls_lock:
            tracked = dict(self.calls)
        for call in self.ledger.live_calls():
            if call.call_id in tracked:
                continue
            state = CallState(call_id=call.call_id, channel=call.channel,
                              facts=CallFacts.from_dict(call.last_facts))
            for rec in self.ledger.recordings_for_call(call.call_id):
                if rec.status == "recording":
                    state.recording = ActiveRecording(
                        rec.recording_id, Path(rec.path), rec.mixmonitor_id or "", tuple(rec.purposes)
                    )
                    self._own_files.add(rec.path)
            state.decision = decide(state.facts, self.policy)
            with self._calls_lock:
                self.calls[call.call_id] = state
            tracked[call.call_id] = state
            self.log.emit("call_resumed", call_id=call.call_id, channel=call.channel,
                          recording_id=state.recording.recording_id if state.recording else None)
        for call_id, state in tracked.items():
            channel = live.get(call_id)
            if channel is None:
                self._schedule_finalize(call_id, None, trigger="reconcile")
                continue
            try:
                self.ari.subscribe(f"channel:{call_id}")
            except AriError:
                self._schedule_finalize(call_id, None, trigger="reconcile")
                continue
            self.facts_changed(channel, trigger="reconcile")
        # A finalization cut short (a crash between the hangup and the encryption).
        for rec in self.ledger.active_recordings():
            call = self.ledger.call(rec.call_id)
            if (rec.status == "stopped" and call is not None and call.status == "ended"
                    and rec.recording_id not in self._finalizing):
                stale = CallState(call_id=call.call_id, channel=call.channel,
                                  facts=CallFacts.from_dict(call.last_facts))
                active = ActiveRecording(rec.recording_id, Path(rec.path), rec.mixmonitor_id or "",
                                         tuple(rec.purposes))
                self._submit(self._store, stale, active, call.ended_at or self.clock())
        for rec in self.ledger.pending_deletions():
            if rec.recording_id not in self._deleting:
                self._submit(self._erase, rec.recording_id, (rec.path, rec.stored_path),
                             rec.deletion_reason or "deletion_resumed", {"trigger": "reconcile"})

    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        future = self._finalizer.submit(fn, *args)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    # -- the core: act on the difference ------------------------------------------

    def _apply(self, state: CallState, facts: CallFacts, trigger: str) -> None:
        decision = decide(facts, self.policy)
        state.facts = facts
        state.decision = decision
        rec = state.recording
        if rec is None:
            if decision.record:
                rec = self._start(state, decision)
                self._record_decision(state, facts, decision, trigger, "start", rec.recording_id)
            else:
                self._record_decision(state, facts, decision, trigger, "none", None)
            return
        kept = self._kept_purposes(rec, decision)
        if kept:
            if tuple(kept) != rec.purposes:
                self._update_purposes(rec, kept, reason=trigger)
            self._record_decision(state, facts, decision, trigger, "keep", rec.recording_id)
            return
        self._record_decision(state, facts, decision, trigger, "delete", rec.recording_id)
        self._discard(state, reason=self._loss_reason(rec, decision), trigger=trigger)

    def _kept_purposes(self, rec: ActiveRecording, decision: Decision) -> list[str]:
        """What the recording may be kept for now.

        A purpose that joins mid-call (an agent reclassifies a call as an
        order) justifies the recording from then on, so it is added.
        """
        return sorted(decision.purposes) if decision.record else []

    def _start(self, state: CallState, decision: Decision) -> ActiveRecording:
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
        self._own_files.add(str(path))
        try:
            started = self.recorder.start(state.channel, recording_id)
        except RecorderError as exc:
            self._own_files.discard(str(path))
            self._erase(recording_id, (path,), "start_failed", {"call_id": state.call_id, "channel": state.channel})
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

    def _update_purposes(self, rec: ActiveRecording, purposes: list[str], reason: str) -> None:
        bases = {p: str(self.policy.basis_of(p)) for p in purposes}
        self.ledger.update_recording_purposes(rec.recording_id, purposes, bases, reason=reason)
        rec.purposes = tuple(purposes)

    def _discard(self, state: CallState, reason: str, trigger: str) -> None:
        """Stop the recording at once and delete its file: nothing justifies it any more."""
        rec = state.recording
        if rec is None:
            return
        state.recording = None
        stopped = False
        try:
            stopped = self.recorder.stop(state.channel, rec.mixmonitor_id)
        except RecorderError as exc:
            self.log.emit("stop_failed", call_id=state.call_id, channel=state.channel,
                          recording_id=rec.recording_id, error=str(exc))
        self.ledger.recording_stopped(rec.recording_id, stopped_at=self.clock())
        self.log.emit("recording_stopped", call_id=state.call_id, channel=state.channel,
                      recording_id=rec.recording_id, reason=reason, trigger=trigger)
        # The file is closed on MixMonitor's own thread; delete it off the event thread.
        self._submit(self._delete_after_close, state, rec, reason, stopped)

    def _delete_after_close(self, state: CallState, rec: ActiveRecording, reason: str, wait: bool) -> None:
        self._own_files.discard(str(rec.path))
        self._deleting.add(rec.recording_id)
        try:
            self.ledger.mark_deleting(rec.recording_id, reason=reason)
            # Wait for MixMonitor to close the file, so it cannot reappear after the unlink.
            wait_closed(rec.path, timeout=5.0 if wait else 1.0)
            self._erase(rec.recording_id, (rec.path,), reason, {"call_id": state.call_id, "channel": state.channel})
        finally:
            self._deleting.discard(rec.recording_id)

    def _erase(self, recording_id: str, paths: Iterable[str | Path | None], reason: str,
               log_fields: dict[str, Any] | None = None) -> bool:
        """Delete a recording's files, intent first and confirmation after, so an
        interruption in between is finished by the next reconcile or purge."""
        self.ledger.mark_deleting(recording_id, reason=reason)
        existed = False
        for path in paths:
            if path:
                existed = delete_file(Path(path)) or existed
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
