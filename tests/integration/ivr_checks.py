"""The example IVR's table and what each of its rows must leave behind in
the ledger, the decision log and the spool: checked the same way whether
the callers come over Local channels or over SIP."""

from __future__ import annotations

import wave
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from asterisk_recguard.ari import wait_until
from asterisk_recguard.daemon import Daemon
from asterisk_recguard.devtools.scenarios import IvrCaller
from asterisk_recguard.ledger import Recording
from asterisk_recguard.lifecycle import CallStatus
from asterisk_recguard.vault import Keyring, decrypt_file

from .guardrun import read_log

BOTH_NOTICES = "evidence-v1:complete,quality-consent-v1:complete"


class Outcome(Protocol):
    """What a caller of the table reports, over either kind of channel."""

    call_id: str | None
    facts: dict[str, str | None]
    decision: str | None
    recording_id: str | None
    error: str | None


O = TypeVar("O", bound=Outcome)


class IvrRun(Generic[O]):
    """The table's calls, made at once, and the guard that watched them."""

    def __init__(self, guard: Daemon, results: dict[str, O], new_files: set[Path]) -> None:
        self.guard = guard
        self.results = results
        self.new_files = new_files

    def result(self, name: str) -> O:
        outcome = self.results[name]
        assert outcome.error is None, outcome.error
        return outcome

    def log(self, call_id: str | None) -> list[dict]:
        return [e for e in read_log(self.guard.settings.decision_log) if e.get("call_id") == call_id]

    def only_recording(self, outcome: Outcome) -> Recording:
        (rec,) = self.guard.ledger.recordings_for_call(outcome.call_id)  # type: ignore[arg-type]
        return rec


def settle(guard: Daemon, results: Mapping[str, Outcome], timeout: float = 60) -> None:
    """Until the guard has seen every call end (a hangup event may still be on
    its way when the caller is gone) and has done, and committed, all it does then."""
    ids = [o.call_id for o in results.values() if o.call_id is not None]

    def ended() -> bool:
        guard.guard.wait_idle(timeout)
        calls = [guard.ledger.call(call_id) for call_id in ids]
        return all(call is None or call.status == CallStatus.ENDED for call in calls)

    assert wait_until(ended, timeout, interval=0.2), "the guard did not see every call end"
    guard.guard.wait_idle(timeout)


def ended_at(run: IvrRun[Any], outcome: Outcome) -> datetime:
    """When the row's call ended: a kept recording's retention counts from then."""
    call = run.guard.ledger.call(outcome.call_id)  # type: ignore[arg-type]
    assert call is not None and call.ended_at is not None
    return call.ended_at


def no_transaction_from_the_crm(guard: Daemon) -> Callable[[str], None]:
    """What a CRM does on a call that ends without a transaction."""
    def set_outcome(channel: str) -> None:
        guard.ami.action("Setvar", Channel=channel, Variable="RECGUARD_OUTCOME", Value="no_transaction")
    return set_outcome


def ivr_table(crm_no_transaction: Callable[[str], None], **hostile: Any) -> list[IvrCaller]:
    """The rows of the guard's acceptance criteria; ``hostile`` is how the
    hostile caller's identity is given on this kind of channel."""
    return [
        IvrCaller("order_refused", choice="order", consent_key="2", talk_seconds=3),
        IvrCaller("complaint_given", choice="complaint", consent_key="1"),
        IvrCaller("info_refused", choice="general_info", consent_key="2"),
        IvrCaller("info_given", choice="general_info", consent_key="1"),
        IvrCaller("info_silent", choice="general_info", consent_key=None),
        IvrCaller("hangup_in_notice", hangup_during_notice=True),
        IvrCaller("key_in_notice", key_during_notice=True, choice="order", consent_key="2"),
        IvrCaller("order_no_transaction", choice="order", consent_key="2", talk_seconds=3,
                  during_call=crm_no_transaction),
        IvrCaller("hostile_caller_id", choice="order", consent_key="2", **hostile),
    ]


def order_refused_is_recorded_for_order(run: IvrRun[Any], check_file: str) -> None:
    """Kept for the order alone, 1095 days, and its audio decrypts to the ~3 s talked."""
    outcome = run.result("order_refused")
    assert outcome.decision == "record"
    assert outcome.facts["RECGUARD_NOTICES"] == BOTH_NOTICES
    assert outcome.facts["RECGUARD_CONSENT"] == "refused"
    rec = run.only_recording(outcome)
    assert rec.recording_id == outcome.recording_id
    assert rec.status == "finalized" and rec.purposes == ["order"] and rec.bases == {"order": "evidence"}
    ended = ended_at(run, outcome)
    assert rec.deadline == ended + timedelta(days=1095)
    clear = Path(rec.path).with_name(check_file)
    assert rec.stored_path is not None
    decrypt_file(rec.stored_path, clear, Keyring.load(run.guard.settings.key_file))
    try:
        with wave.open(str(clear)) as audio:
            assert audio.getnframes() > 8000 * 2  # the caller talked about 3 s
    finally:
        clear.unlink()


def complaint_given_is_recorded_for_complaint_and_quality(run: IvrRun[Any]) -> None:
    outcome = run.result("complaint_given")
    rec = run.only_recording(outcome)
    assert rec.status == "finalized" and rec.purposes == ["complaint", "quality"]
    ended = ended_at(run, outcome)
    assert rec.deadline == ended + timedelta(days=730)  # the longer of 730 and 90


def info_refused_is_not_recorded(run: IvrRun[Any]) -> dict:
    """The row's gate decision in the log, after its reasons are checked."""
    outcome = run.result("info_refused")
    assert outcome.decision == "skip" and outcome.recording_id is None
    assert run.guard.ledger.recordings_for_call(outcome.call_id) == []
    gate = [e for e in run.log(outcome.call_id) if e["event"] == "decision" and e["trigger"] == "gate"][0]
    assert {"purpose": "general_info", "reason": "purpose_forbidden"} in gate["reasons"]
    assert {"purpose": "quality", "reason": "consent_refused"} in gate["reasons"]
    return gate


def info_given_is_recorded_for_quality_only(run: IvrRun[Any]) -> None:
    outcome = run.result("info_given")
    rec = run.only_recording(outcome)
    assert rec.status == "finalized" and rec.purposes == ["quality"] and rec.bases == {"quality": "consent"}
    ended = ended_at(run, outcome)
    assert rec.deadline == ended + timedelta(days=90)


def silence_is_not_consent(run: IvrRun[Any]) -> None:
    outcome = run.result("info_silent")
    assert outcome.facts["RECGUARD_CONSENT"] == "refused"
    assert outcome.decision == "skip"
    assert run.guard.ledger.recordings_for_call(outcome.call_id) == []


def cut_notice_is_not_recorded(run: IvrRun[Any]) -> None:
    outcome = run.result("key_in_notice")
    assert outcome.decision == "skip"
    assert run.guard.ledger.recordings_for_call(outcome.call_id) == []
    gate = [e for e in run.log(outcome.call_id) if e["event"] == "decision"][0]
    assert {"purpose": "order", "reason": "notice_interrupted"} in gate["reasons"]


def no_transaction_is_deleted(run: IvrRun[Any]) -> None:
    outcome = run.result("order_no_transaction")
    assert outcome.decision == "record"
    rec = run.only_recording(outcome)
    assert rec.status == "deleted" and rec.deletion_reason == "no_transaction"
    assert not Path(rec.path).exists() and rec.stored_path is None
    assert any(e["event"] == "recording_deleted" and e["reason"] == "no_transaction"
               for e in run.log(outcome.call_id))


def hostile_caller_id_injects_nothing(run: IvrRun[Any], recordings_dir: Path) -> str:
    """The decision log's text, after it is checked for the caller's injected command."""
    outcome = run.result("hostile_caller_id")
    assert outcome.decision == "record"
    rec = run.only_recording(outcome)
    assert Path(rec.path) == recordings_dir / f"{rec.recording_id}.wav"
    assert rec.status == "finalized"
    assert not Path("/tmp/pwned").exists()
    log = run.guard.settings.decision_log.read_text()
    assert "pwned" not in log
    return log


def every_decision_is_logged_and_the_spool_holds_only_kept_recordings(run: IvrRun[Any]) -> None:
    kept: set[Path] = set()
    for name, outcome in run.results.items():
        if outcome.call_id is None or name == "hangup_in_notice":
            continue
        decisions = run.guard.ledger.decisions_for_call(outcome.call_id)
        lines = [e for e in run.log(outcome.call_id) if e["event"] == "decision"]
        assert len(decisions) == len(lines) >= 2, name
        assert [d.trigger for d in decisions] == [e["trigger"] for e in lines]
        for rec in run.guard.ledger.recordings_for_call(outcome.call_id):
            if rec.status == "finalized":
                kept.add(Path(rec.file_path))
    assert run.new_files == kept
