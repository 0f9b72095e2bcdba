"""The guard's lines in the decision log: one method per event.

Each method names its event and its fields once, so the schema of a line is
read here rather than pieced together from the call sites. The log itself
(structlog, JSON lines, number masking) is :mod:`asterisk_recguard.decisionlog`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..decisionlog import EventLog
from ..ledger import format_ts
from ..policy import CallFacts, Decision
from .state import ActiveRecording, CallState


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class GuardEvents:
    def __init__(self, log: EventLog) -> None:
        # The raw log, for the one deletion path shared with purge and erasure.
        self.log = log

    # -- connections ------------------------------------------------------------

    def ari_connected(self, url: str) -> None:
        self.log.emit("ari_connected", url=url)

    def ari_disconnected(self, reason: str) -> None:
        self.log.emit("ari_disconnected", error=reason)

    def ari_filter_failed(self, error: str) -> None:
        self.log.emit("ari_filter_failed", error=error)

    def app_replaced(self, app: str) -> None:
        self.log.emit("app_replaced", level="error",
                      error=f"another client registered the ARI app {app!r}; this guard no longer sees calls")

    # -- decisions and recordings ---------------------------------------------------

    def decision(self, state: CallState, facts: CallFacts, decision: Decision, trigger: str, action: str,
                 recording_id: str | None, rejected: list[dict[str, str]]) -> None:
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

    def recording_started(self, state: CallState, rec: ActiveRecording, policy: str) -> None:
        self.log.emit("recording_started", call_id=state.call_id, channel=state.channel,
                      recording_id=rec.recording_id, purposes_recorded=list(rec.purposes),
                      file=str(rec.path), policy=policy)

    def recording_stopped(self, state: CallState, rec: ActiveRecording, reason: str, trigger: str) -> None:
        self.log.emit("recording_stopped", call_id=state.call_id, channel=state.channel,
                      recording_id=rec.recording_id, reason=reason, trigger=trigger)

    def recording_paused(self, state: CallState, recording_id: str | None, trigger: str,
                         paused_at: datetime | None) -> None:
        """Muted for card details; ``recording_id`` None: nothing was being recorded (yet)."""
        self.log.emit("recording_paused", call_id=state.call_id, channel=state.channel,
                      recording_id=recording_id, trigger=trigger,
                      paused_at=format_ts(paused_at) if paused_at else None)

    def recording_resumed(self, call_id: str, channel: str, recording_id: str | None, trigger: str,
                          paused_at: datetime | None, resumed_at: datetime | None) -> None:
        self.log.emit("recording_resumed", call_id=call_id, channel=channel, recording_id=recording_id,
                      trigger=trigger, paused_at=format_ts(paused_at) if paused_at else None,
                      resumed_at=format_ts(resumed_at) if resumed_at else None)

    def recording_held_kept(self, call_id: str, recording_id: str, reason: str) -> None:
        self.log.emit("recording_held_kept", call_id=call_id, recording_id=recording_id, reason=reason)

    def recording_finalized(self, call_id: str, channel: str, rec: ActiveRecording, *, file: Path, key_id: str | None,
                            size_bytes: int, duration_s: float, sha256: str, retention_days: int,
                            deadline: datetime, policy: str) -> None:
        self.log.emit(
            "recording_finalized",
            call_id=call_id,
            channel=channel,
            recording_id=rec.recording_id,
            purposes_recorded=list(rec.purposes),
            file=str(file),
            encrypted=key_id is not None,
            key_id=key_id,
            size_bytes=size_bytes,
            duration_s=duration_s,
            sha256=sha256,
            retention_days=retention_days,
            deadline=format_ts(deadline),
            policy=policy,
        )

    def finalize_incomplete(self, call_id: str, rec: ActiveRecording) -> None:
        self.log.emit("finalize_incomplete", level="warning", call_id=call_id,
                      recording_id=rec.recording_id, file=str(rec.path))

    def clear_copy_removed(self, recording_id: str, file: Path) -> None:
        self.log.emit("clear_copy_removed", recording_id=recording_id, file=str(file))

    def call_resumed(self, call_id: str, channel: str, recording_id: str | None) -> None:
        self.log.emit("call_resumed", call_id=call_id, channel=channel, recording_id=recording_id)

    def unauthorized_recording(self, *, call_id: str, channel: str, file: str | None, started_by: str,
                               enforced: bool, action: str) -> None:
        self.log.emit("unauthorized_recording", level="warning", call_id=call_id, channel=channel, file=file,
                      started_by=started_by, enforced=enforced, action=action)

    # -- failures: the caller went on; the line says what did not happen ----------------

    def stasis_unexpected(self, call_id: str, channel: str, app: str, gate_arg: str) -> None:
        self.log.emit("stasis_unexpected", level="warning", call_id=call_id, channel=channel,
                      error=f"Stasis({app}) entered without the '{gate_arg}' argument; continued")

    def gate_shed(self, call_id: str, channel: str, stage: str, waited_ms: int) -> None:
        self.log.emit("gate_shed", level="warning", call_id=call_id, channel=channel, stage=stage,
                      waited_ms=waited_ms, decision="unavailable")

    def gate_failed(self, call_id: str, channel: str | None, error: str) -> None:
        self.log.emit("gate_failed", call_id=call_id, channel=channel, error=error)

    def change_failed(self, state: CallState, error: str) -> None:
        self.log.emit("change_failed", call_id=state.call_id, channel=state.channel, error=error)

    def setvar_failed(self, state: CallState, error: str) -> None:
        self.log.emit("setvar_failed", call_id=state.call_id, channel=state.channel, error=error)

    def pause_failed(self, state: CallState, recording_id: str, trigger: str, error: str) -> None:
        """Asterisk would not mute: the recording is stopped rather than go on unmuted."""
        self.log.emit("pause_failed", level="error", call_id=state.call_id, channel=state.channel,
                      recording_id=recording_id, trigger=trigger, error=error, next_step="stopped")

    def resume_failed(self, state: CallState, recording_id: str, trigger: str, error: str) -> None:
        """Asterisk would not unmute: the muted part is stopped and a new one decided."""
        self.log.emit("resume_failed", level="warning", call_id=state.call_id, channel=state.channel,
                      recording_id=recording_id, trigger=trigger, error=error, next_step="new_part")

    def stop_failed(self, call_id: str, channel: str | None, recording_id: str, error: str) -> None:
        self.log.emit("stop_failed", call_id=call_id, channel=channel, recording_id=recording_id, error=error)

    def finalize_failed(self, state: CallState, error: str) -> None:
        self.log.emit("finalize_failed", call_id=state.call_id, channel=state.channel, error=error)

    def not_kept(self, call_id: str, channel: str, recording_id: str, error: str, *, next_step: str) -> None:
        """A recording's finalization failed; ``next_step`` is what becomes of it:
        ``delete`` now, or ``reconcile`` (finalized again by the next one)."""
        self.log.emit("finalize_failed", call_id=call_id, channel=channel, recording_id=recording_id,
                      error=error, next_step=next_step)

    def reconcile_failed(self, error: str, call_id: str | None = None, channel: str | None = None) -> None:
        self.log.emit("reconcile_failed", call_id=call_id, channel=channel, error=error)

    def event_failed(self, error: str) -> None:
        self.log.emit("event_failed", error=error)

    def task_failed(self, error: str) -> None:
        self.log.emit("task_failed", error=error)
