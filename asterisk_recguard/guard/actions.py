"""What the guard does to recordings: start, retag, stop and delete, finalize.

Lane-side methods (:meth:`Recordings.start`, :meth:`Recordings.discard`,
:meth:`Recordings.retag`) change the call's state and return quickly;
everything that waits on a file runs on the workers, on parts the call's
state no longer points to. Every deletion ends in
:func:`asterisk_recguard.storage.delete_recording`, the path purge and erasure
use too.

Finalization either ends with the ledger holding the recording as kept, or
leaves no clear copy that should not be there: see :meth:`Recordings._not_kept`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ..ledger import Ledger, RecordingHeld
from ..lifecycle import RecordingStatus
from ..policy import Decision, Policy
from ..recorder import RecorderError
from ..storage import (
    OutsideRecordingsDir,
    check_inside,
    delete_file,
    delete_recording,
    encrypted_path,
    file_facts,
    wait_closed,
)
from ..vault import Keyring, encrypt_file
from . import diff
from .asterisk import MixMonitors
from .events import GuardEvents, describe
from .lanes import Workers
from .state import ActiveRecording, CallState

ACTOR = "recguard"
FINALIZE_FAILED = "finalize_failed"
ORPHANED_CIPHERTEXT = (
    "only its ciphertext is here: a finalization the ledger does not remember (restored from "
    "an older backup?) encrypted it; left as it is for the operator")


class StartFailed(RuntimeError):
    """MixMonitor did not start; nothing of it is left recording."""


@dataclass
class Recordings:
    ledger: Ledger
    mixmonitors: MixMonitors
    events: GuardEvents
    workers: Workers
    keyring: Keyring | None
    clock: Callable[[], datetime]

    # -- on the call's lane ---------------------------------------------------------

    def start(self, state: CallState, decision: Decision, policy: Policy,
              deadline: float | None = None) -> ActiveRecording:
        recording_id = uuid.uuid4().hex
        path = self.mixmonitors.path_for(recording_id)
        # The ledger knows of the recording before MixMonitor starts, so a
        # crash in between leaves an entry to reconcile, never a stray file.
        self.ledger.recording_started(recording_id, call_id=state.call_id, channel=state.channel, path=path,
                                      purposes=decision.purposes, bases=diff.bases(policy, decision.purposes),
                                      started_at=self.clock())
        state.expected_starts += 1
        left = None if deadline is None else max(0.2, deadline - time.perf_counter())
        try:
            started = self.mixmonitors.start(state.call_id, recording_id, timeout=left)
        except RecorderError as exc:
            # A start event still to come for it is then someone else's: stopped, deleted.
            state.expected_starts -= 1
            self.ledger.mark_deleting(recording_id, reason="start_failed")
            self.workers.submit(self._abandon_start, state.call_id, state.channel, recording_id, path)
            raise StartFailed(f"MixMonitor did not start on {state.channel}: {exc}") from exc
        with self.ledger.write_behind():  # the recording itself is durable already
            self.ledger.set_mixmonitor_id(recording_id, started.mixmonitor_id)
        rec = ActiveRecording(recording_id, started.path, started.mixmonitor_id, tuple(decision.purposes))
        state.recording = rec
        self.events.recording_started(state, rec, policy.label)
        if state.paused_by is not None and not self.mute(state, rec, state.paused_by):
            # Started during a pause and could not be muted: not a moment of card details on file.
            self.stop_current(state)
            self.events.recording_stopped(state, rec, "pause_failed", state.paused_by)
        return rec

    def retag(self, parts: tuple[ActiveRecording, ...], decision: Decision, policy: Policy, reason: str) -> None:
        """The recording stays; the purposes that justify it change."""
        purposes = sorted(decision.purposes)
        for part in parts:
            self.ledger.update_recording_purposes(part.recording_id, purposes, diff.bases(policy, purposes),
                                                  reason=reason)
            part.purposes = tuple(purposes)

    def stop_current(self, state: CallState) -> ActiveRecording | None:
        """Stop the MixMonitor writing now, by its id; its part joins the segments."""
        current = state.recording
        if current is None:
            return None
        state.recording = None
        try:
            self.mixmonitors.stop(state.call_id, current.mixmonitor_id)
        except RecorderError as exc:
            self.events.stop_failed(state.call_id, state.channel, current.recording_id, str(exc))
        stopped_at = self.clock()
        self.ledger.recording_stopped(current.recording_id, stopped_at=stopped_at)
        if current.muted:
            self.close_pauses(state.call_id, state.channel, current, "stopped", stopped_at)
        state.segments.append(current)
        return current

    # -- pauses for card details: the recording goes on, silent -------------------------

    def mute(self, state: CallState, rec: ActiveRecording, trigger: str) -> bool:
        """Silence ``rec``; the ledger holds the pause only once Asterisk has muted it.
        False (logged) when Asterisk would not: the caller must then stop the recording."""
        try:
            self.mixmonitors.mute(state.call_id, rec.mixmonitor_id, True)
        except RecorderError as exc:
            self.events.pause_failed(state, rec.recording_id, trigger, str(exc))
            return False
        rec.muted = True
        pause = self.ledger.pause_started(rec.recording_id, by=trigger, at=self.clock())
        self.events.recording_paused(state, rec.recording_id, trigger, pause.paused_at)
        return True

    def unmute(self, state: CallState, rec: ActiveRecording, trigger: str) -> bool:
        """Bring ``rec``'s sound back and close its pause; False (logged) when Asterisk would not."""
        try:
            self.mixmonitors.mute(state.call_id, rec.mixmonitor_id, False)
        except RecorderError as exc:
            self.events.resume_failed(state, rec.recording_id, trigger, str(exc))
            return False
        self.close_pauses(state.call_id, state.channel, rec, trigger, self.clock())
        return True

    def close_pauses(self, call_id: str, channel: str, rec: ActiveRecording, trigger: str, at: datetime) -> None:
        """The ledger's open pause of ``rec`` ends at ``at`` (resumed, stopped, or the hangup)."""
        rec.muted = False
        for pause in self.ledger.pauses_closed(rec.recording_id, by=trigger, at=at):
            self.events.recording_resumed(call_id, channel, rec.recording_id, trigger, pause.paused_at,
                                          pause.resumed_at)

    def discard(self, state: CallState, policy: Policy, reason: str, trigger: str,
                only_current: bool = False) -> None:
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
                self.events.recording_held_kept(state.call_id, part.recording_id, reason)
        if state.recording is not None and state.recording in parts:
            stopped = self.stop_current(state)
            assert stopped is not None
            self.events.recording_stopped(state, stopped, reason, trigger)
        state.segments = [part for part in state.segments if part not in doomed]
        for part in doomed:
            self.workers.submit(self.delete_after_close, state.call_id, state.channel, part, reason, policy)

    # -- on the workers ---------------------------------------------------------------

    def settle(self, state: CallState, part: ActiveRecording, decision: Decision, policy: Policy,
               ended: datetime, trigger: str) -> None:
        """At the end of a call: keep a part for the purposes that justify it, or delete it."""
        # A pause still open (also one a restarted guard did not know of) ends with the call.
        self.close_pauses(state.call_id, state.channel, part, "hangup", ended)
        if not diff.keeps(part, decision):
            self.delete_after_close(state.call_id, state.channel, part, diff.loss_reason(part, decision), policy)
            return
        if decision.record and not part.held and tuple(sorted(decision.purposes)) != part.purposes:
            self.retag((part,), decision, policy, reason=trigger)
        self.ledger.recording_stopped(part.recording_id, stopped_at=ended)
        self.store(state.call_id, state.channel, part, ended, policy)

    def store(self, call_id: str, channel: str, rec: ActiveRecording, ended: datetime, policy: Policy) -> None:
        """Finalize a recording once: hash, encrypt, set its deadline."""
        key = f"finalize:{rec.recording_id}"
        if not self.workers.claim(key):
            return
        try:
            row = self.ledger.recording(rec.recording_id)
            # Someone else (an earlier run, a reconcile) finished or deleted it already.
            if row is None or not RecordingStatus(row.status).open:
                return
            self._store_once(call_id, channel, rec, ended, policy)
        finally:
            self.workers.release(key)

    def _store_once(self, call_id: str, channel: str, rec: ActiveRecording, ended: datetime,
                    policy: Policy) -> None:
        try:
            # Before any file is touched: a deadline that cannot be set, or a
            # file the ledger names outside the recordings directory, ends here.
            retention = diff.retention_days(policy, rec.purposes)
            deadline = ended + timedelta(days=retention)
            check_inside(self.mixmonitors.recordings_dir, rec.recording_id, [rec.path])
        except Exception as exc:
            self._not_kept(call_id, channel, rec, exc, retry=False)
            return
        if not wait_closed(rec.path):
            if encrypted_path(rec.path).exists() and not rec.path.exists():
                # Encrypted by a finalization this ledger does not remember: it
                # was restored from an older backup. Never taken for "no audio".
                self.events.not_kept(call_id, channel, rec.recording_id, ORPHANED_CIPHERTEXT,
                                     next_step="operator")
                return
            if not rec.path.exists():
                self.erase(rec.recording_id, "no_audio_written")
                return
            # Still open long after the hangup: keep what was written, and say so.
            self.events.finalize_incomplete(call_id, rec)
        stored_path: Path | None = None
        key_id: str | None = None
        try:
            facts = file_facts(rec.path)
            if self.keyring is not None:
                stored_path = encrypted_path(rec.path)
                key_id = encrypt_file(rec.path, stored_path, self.keyring).key_id
            self.ledger.recording_finalized(rec.recording_id, size_bytes=facts.size_bytes,
                                            duration_s=facts.duration_s, sha256=facts.sha256,
                                            deadline=deadline, stored_path=stored_path, key_id=key_id,
                                            finalized_at=self.clock())
        except Exception as exc:
            # Trying again helps only where the clear file may stay meanwhile.
            self._not_kept(call_id, channel, rec, exc, retry=self.keyring is None)
            return
        if stored_path is not None:
            # The ledger points at the ciphertext now; the clear file goes.
            delete_file(rec.path)
        self.events.recording_finalized(call_id, channel, rec, file=stored_path or rec.path, key_id=key_id,
                                        size_bytes=facts.size_bytes, duration_s=facts.duration_s,
                                        sha256=facts.sha256, retention_days=retention, deadline=deadline,
                                        policy=policy.label)

    def _not_kept(self, call_id: str, channel: str, rec: ActiveRecording, exc: Exception, *,
                  retry: bool) -> None:
        """A finalization that failed before the ledger held the recording as kept.

        With ``retry`` (encryption off, so the clear WAV is the kept form, and
        the error may pass) the recording stays 'stopped' and the next
        reconcile finalizes it again. Otherwise it is deleted through the one
        deletion path (reason ``finalize_failed``) with any ciphertext this
        attempt left: a clear copy is never kept unencrypted, nor kept without
        a deadline. Should even that fail (the ledger cannot be written), it
        stays 'stopped' for the reconcile, which finalizes or deletes it.
        """
        self.events.not_kept(call_id, channel, rec.recording_id, describe(exc),
                             next_step="reconcile" if retry else "delete")
        if not retry:
            self.erase(rec.recording_id, FINALIZE_FAILED, channel=channel)

    def delete_after_close(self, call_id: str, channel: str, rec: ActiveRecording, reason: str,
                           policy: Policy) -> None:
        key = f"delete:{rec.recording_id}"
        if not self.workers.claim(key):
            return
        try:
            try:
                self.ledger.mark_deleting(rec.recording_id, reason=reason)
            except RecordingHeld:
                self.events.recording_held_kept(call_id, rec.recording_id, reason)
                # A hold placed mid-call keeps the part: it is finalized instead.
                self.ledger.recording_stopped(rec.recording_id, stopped_at=self.clock())
                self.store(call_id, channel, rec, self.clock(), policy)
                return
            # Wait for MixMonitor to close the file, so it cannot reappear after
            # the unlink; a stop that did not take is tried again meanwhile.
            for _ in range(3):
                if wait_closed(rec.path, timeout=3.0, absent_grace=1.0) or not rec.path.exists():
                    break
                try:
                    self.mixmonitors.stop(call_id, rec.mixmonitor_id)
                except RecorderError as exc:
                    self.events.stop_failed(call_id, channel, rec.recording_id, str(exc))
            self.erase(rec.recording_id, reason, channel=channel)
        finally:
            self.workers.release(key)

    def _abandon_start(self, call_id: str, channel: str, recording_id: str, path: Path) -> None:
        """A start that failed or timed out may still have started MixMonitor:
        stop it if it runs, and delete whatever it wrote, now and a little later."""
        for pause in (0.0, 3.0):
            time.sleep(pause)
            self.mixmonitors.stop_if_started(call_id, path)
            if path.exists() and not wait_closed(path, timeout=2.0):
                continue
            delete_file(path)
        if path.exists():
            # Still being written: left 'deleting'; reconcile and purge finish it.
            self.events.stop_failed(call_id, channel, recording_id, "a MixMonitor whose start failed is still writing")
            return
        self.erase(recording_id, "start_failed", channel=channel)

    def erase(self, recording_id: str, reason: str, **context: str | None) -> None:
        """Delete a recording's files through the one deletion path. A row that
        names a file outside the recordings directory is refused there (logged,
        left 'deleting' for the operator)."""
        row = self.ledger.recording(recording_id)
        if row is not None:
            try:
                delete_recording(self.ledger, self.events.log, row, reason=reason, actor=ACTOR,
                                 clock=self.clock, recordings_dir=self.mixmonitors.recordings_dir,
                                 **context)
            except OutsideRecordingsDir:
                pass  # logged as deletion_refused; left 'deleting' for the operator
