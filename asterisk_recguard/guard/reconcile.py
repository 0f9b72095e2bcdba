"""Reconcile: match what the guard and the ledger believe against Asterisk.

After every ARI and AMI (re)connect and at start-up: calls the ledger has as
live and Asterisk still has are tracked again (re-subscribed, decided again
on their current facts); calls that ended while the guard was away or
disconnected are finalized on the final facts their hangup handler left in
AstDB; finalizations and deletions that were cut short are finished.

Only this server's calls and recordings (the ledger's server id): where
several servers share the ledger, each guard reconciles its own.

It runs on a thread of its own, never on the ARI or AMI reader threads, and
never touches a call's state: it posts the work for each call to that call's
lane, and file work to the workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..ledger import Call, Ledger, Recording
from ..lifecycle import CallStatus, RecordingStatus
from ..policy import CallFacts, Policy, decide
from ..storage import delete_file, is_recording_id, outside_of
from .actions import Recordings
from .asterisk import AsteriskError, CallControl, ChannelGone
from .events import GuardEvents, describe
from .lanes import Lanes, Workers
from .state import ActiveRecording, CallState, FinalFacts, parse_final_facts

log = logging.getLogger(__name__)

# Lane jobs the guard provides: a call's facts changed; a call ended.
FactsChanged = Callable[..., None]
CallEnded = Callable[..., None]


def ending_key(call_id: str) -> str:
    """The workers' claim on a call whose finalization is under way."""
    return f"ending:{call_id}"


def part_of(rec: Recording) -> ActiveRecording:
    return ActiveRecording(rec.recording_id, Path(rec.path), rec.mixmonitor_id or "", tuple(rec.purposes),
                           held=rec.held)


@dataclass
class Reconciler:
    control: CallControl
    ledger: Ledger
    lanes: Lanes
    workers: Workers
    recordings: Recordings
    events: GuardEvents
    policy: Callable[[], Policy]
    facts_changed: FactsChanged
    call_ended: CallEnded
    recordings_dir: Path
    clock: Callable[[], datetime]
    # One reconcile at a time; nothing else is taken inside it.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _wanted: threading.Event = field(default_factory=threading.Event, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Reconcile soon, on the reconcile thread (requests while one runs fold into one more run)."""
        self._wanted.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wanted.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while True:
            self._wanted.wait()
            if self._stopping.is_set():
                return
            self._wanted.clear()
            try:
                self.run()
            except Exception as exc:
                log.exception("reconcile failed")
                self.events.reconcile_failed(describe(exc))

    def run(self) -> None:
        with self._lock:
            policy = self.policy()  # one snapshot for the whole run
            live = self.control.live_channels()
            for call in self.ledger.live_calls(server_id=self.ledger.server_id):
                recs = self.ledger.recordings_for_call(call.call_id)
                current = [part_of(r) for r in recs if r.status == RecordingStatus.RECORDING]
                stopped = [part_of(r) for r in recs if r.status == RecordingStatus.STOPPED]
                self.lanes.post(call.call_id, self._adopt, call, stopped, current[-1] if current else None, policy)
            for call_id in self.lanes.call_ids():
                channel = live.get(call_id)
                if channel is None:
                    self._ended_meanwhile(call_id)
                    continue
                if not self._subscribe(call_id):
                    # Still up, but its events may not reach us: say so, keep it tracked.
                    self.events.reconcile_failed("could not subscribe to the channel again", call_id=call_id)
                # Decided again even when the facts look the same: the guard may have
                # died between a decision and its action.
                self.lanes.post(call_id, self.facts_changed, channel, "reconcile", True)
            self._finish_interrupted_work(policy)

    def _adopt(self, calls: dict[str, CallState], call: Call, segments: list[ActiveRecording],
               current: ActiveRecording | None, policy: Policy) -> None:
        """On the call's lane: track a call the ledger has as live, unless it is tracked already."""
        if call.call_id in calls or self.workers.claimed(ending_key(call.call_id)):
            return
        now = self.ledger.call(call.call_id)
        if now is None or now.status != CallStatus.LIVE:
            return  # finalized since this run read it as live
        state = CallState(call_id=call.call_id, channel=call.channel, facts=CallFacts.from_dict(call.last_facts),
                          recording=current, segments=segments)
        state.decision = decide(state.facts, policy)
        if current is not None:
            # A pause open in the ledger is still muted in Asterisk: the resume must unmute it.
            open_pauses = [p for p in self.ledger.pauses(current.recording_id) if p.resumed_at is None]
            if open_pauses:
                current.muted = True
                state.paused_by = open_pauses[-1].paused_by
        calls[call.call_id] = state
        self.events.call_resumed(call.call_id, call.channel,
                                 state.recording.recording_id if state.recording else None)

    def _ended_meanwhile(self, call_id: str) -> None:
        try:
            raw = self.control.final_facts(call_id)
        except AsteriskError:
            # AMI is down: finalizing on stale facts could keep what the final
            # ones delete. The reconcile at AMI's return does it.
            return
        final: FinalFacts | None = parse_final_facts(raw) if raw is not None else None
        self.lanes.post(call_id, self.call_ended, call_id, final, "reconcile")

    def _subscribe(self, call_id: str, attempts: int = 3) -> bool:
        for attempt in range(attempts):
            try:
                self.control.subscribe(call_id)
                return True
            except ChannelGone:
                return False
            except AsteriskError:
                if attempt == attempts - 1:
                    return False
                time.sleep(0.2)
        return False

    def _finish_interrupted_work(self, policy: Policy) -> None:
        # Parts of ended calls never finalized (a crash after the hangup): decided
        # on the call's final facts, then kept or deleted.
        # This server's only: another server's calls are its guard's to finish.
        for rec in self.ledger.active_recordings(server_id=self.ledger.server_id):
            call = self.ledger.call(rec.call_id)
            if call is None or call.status != CallStatus.ENDED:
                continue
            stale = CallState(call_id=call.call_id, channel=call.channel, facts=CallFacts.from_dict(call.last_facts))
            self.workers.submit(self.recordings.settle, stale, part_of(rec), decide(stale.facts, policy), policy,
                                call.ended_at or self.clock(), "reconcile")
        for rec in self.ledger.pending_deletions(server_id=self.ledger.server_id):
            if not self.workers.claimed(f"delete:{rec.recording_id}"):
                self.workers.submit(self.recordings.erase, rec.recording_id,
                                    rec.deletion_reason or "deletion_resumed", trigger="reconcile")
        self._remove_clear_copies()

    def _remove_clear_copies(self) -> None:
        """A clear WAV left beside its ciphertext (a crash between the two steps of finalization).
        Only beside a ciphertext in the recordings directory: a row pointing
        elsewhere is no proof the recording is kept."""
        for clear in self.recordings_dir.glob("*.wav"):
            row = self.ledger.recording(clear.stem) if is_recording_id(clear.stem) else None
            if (row is not None and row.server_id in (self.ledger.server_id, None)
                    and row.status == RecordingStatus.FINALIZED and row.stored_path
                    and outside_of(self.recordings_dir, Path(row.stored_path)) is None
                    and Path(row.stored_path).exists() and delete_file(clear)):
                self.events.clear_copy_removed(row.recording_id, clear)
