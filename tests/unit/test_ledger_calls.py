"""Ledger calls and decisions: the record of each call and what was decided,
append-only decisions, and refusal of clear caller numbers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from asterisk_recguard.ledger import Ledger, UnknownRecord

from .ledger_support import (  # noqa: F401 - ledger is a fixture
    DATABASE_ERRORS,
    HASH_A,
    INTEGRITY_ERRORS,
    T0,
    ledger,
    rid,
    raw_execute,
    start_call,
)


# --- calls and decisions --------------------------------------------------------------


def test_call_lifecycle(ledger: Ledger) -> None:
    start_call(ledger)
    # A second pass through the gate keeps the first start and updates the facts.
    ledger.upsert_call_start("1700000000.12", channel="PJSIP/agent-1",
                             started_at=T0 + timedelta(minutes=1),
                             facts={"purposes_declared": ["complaint"]})
    again = ledger.call("1700000000.12")
    assert again is not None
    assert again.started_at == T0
    assert again.channel == "PJSIP/agent-1"
    assert again.caller_hash == HASH_A  # not cleared by an upsert without one
    assert again.last_facts == {"purposes_declared": ["complaint"]}
    assert [c.call_id for c in ledger.live_calls()] == ["1700000000.12"]

    ended = ledger.end_call("1700000000.12", ended_at=T0 + timedelta(minutes=3),
                            facts={"outcome": "transaction"})
    assert ended.status == "ended" and ended.ended_at == T0 + timedelta(minutes=3)
    again_end = ledger.end_call("1700000000.12", ended_at=T0 + timedelta(minutes=9))
    assert again_end.ended_at == T0 + timedelta(minutes=3)  # the first hangup counts
    assert again_end.last_facts == {"outcome": "transaction"}
    assert ledger.live_calls() == []
    with pytest.raises(UnknownRecord):
        ledger.end_call("nope")


def test_decisions_are_kept_with_facts_and_reasons(ledger: Ledger) -> None:
    start_call(ledger)
    recording_id = rid()
    first = ledger.record_decision(
        "1700000000.12", trigger="gate", facts={"purposes_declared": ["order", "general_info"]},
        record=True, purposes=["order"],
        rejected=[{"purpose": "general_info", "reason": "purpose_forbidden"}],
        policy="2026-11-01", action="start", retention_days=1095, recording_id=recording_id,
        at=T0,
    )
    second = ledger.record_decision(
        "1700000000.12", trigger="hangup", facts={"outcome": "no_transaction"}, record=False,
        purposes=[], rejected=[{"purpose": "order", "reason": "no_transaction"}],
        policy="2026-11-01", action="delete", at=T0 + timedelta(minutes=2),
    )
    assert second > first
    decisions = ledger.decisions_for_call("1700000000.12")
    assert [d.trigger for d in decisions] == ["gate", "hangup"]
    assert decisions[0].record is True and decisions[0].purposes == ["order"]
    assert decisions[0].rejected == [{"purpose": "general_info", "reason": "purpose_forbidden"}]
    assert decisions[0].retention_days == 1095 and decisions[0].recording_id == recording_id
    assert decisions[1].action == "delete" and decisions[1].record is False
    call = ledger.call("1700000000.12")
    assert call is not None and call.last_facts == {"outcome": "no_transaction"}


def test_decision_validation(ledger: Ledger) -> None:
    start_call(ledger)
    common = dict(trigger="gate", facts={}, record=False, purposes=[], rejected=[], policy="v1")
    with pytest.raises(ValueError, match="action"):
        ledger.record_decision("1700000000.12", action="record", **common)
    with pytest.raises(UnknownRecord):
        ledger.record_decision("no-such-call", action="none", **common)
    with pytest.raises(ValueError, match="recording_id"):
        ledger.record_decision("1700000000.12", action="none", recording_id="../../etc", **common)
    assert ledger.decisions_for_call("1700000000.12") == []


def test_decisions_and_access_log_are_append_only(ledger: Ledger) -> None:
    start_call(ledger)
    ledger.record_decision("1700000000.12", trigger="gate", facts={}, record=False, purposes=[],
                           rejected=[], policy="v1", action="none")
    ledger.log_access(actor="dpo", action="export", reason="subject request 17")
    for sql in ("UPDATE decisions SET action = 'start'", "DELETE FROM decisions",
                "UPDATE access_log SET reason = 'x'", "DELETE FROM access_log"):
        with pytest.raises(DATABASE_ERRORS, match="append-only"):
            raw_execute(ledger, sql)
    assert ledger.access_log()[0].reason == "subject request 17"


# --- clear numbers ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["+38640123456", "040123456", "A1" * 32, "a1" * 31, "g" * 64, ""])
def test_caller_hash_must_be_a_hash(ledger: Ledger, bad: str) -> None:
    with pytest.raises(ValueError, match="never the number"):
        ledger.upsert_call_start("1.1", channel="c", caller_hash=bad)
    with pytest.raises(ValueError, match="never the number"):
        ledger.recordings_by_caller_hash(bad)
    assert ledger.call("1.1") is None


@pytest.mark.parametrize("key", ["caller", "callerid", "caller_id_number", "number",
                                 "CALLERID(num)", "CALLERIDNUM", "connected", "phone_number"])
def test_facts_with_a_caller_number_field_are_refused(ledger: Ledger, key: str) -> None:
    start_call(ledger)
    with pytest.raises(ValueError, match="caller number"):
        ledger.record_decision("1700000000.12", trigger="gate", facts={"channel": {key: "+386401"}},
                               record=False, purposes=[], rejected=[], policy="v1", action="none")
    with pytest.raises(ValueError, match="caller number"):
        ledger.log_access(actor="dpo", action="export", reason="r", detail={key: "+386401"})
    with pytest.raises(ValueError, match="caller number"):
        ledger.upsert_call_start("2.2", channel="c", facts={key: "+386401"})
    assert ledger.decisions_for_call("1700000000.12") == []
    assert ledger.access_log() == []


def test_the_schema_itself_refuses_a_clear_number(ledger: Ledger) -> None:
    with pytest.raises(INTEGRITY_ERRORS):
        raw_execute(ledger, "INSERT INTO calls (call_id, channel, caller_hash, started_at) "
                            "VALUES ('x', 'c', '+38640123456', '2026-01-01T00:00:00.000000Z')")


def test_policy_objects_are_stored_as_json(ledger: Ledger) -> None:
    from asterisk_recguard.policy import CallFacts

    start_call(ledger)
    facts = CallFacts(purposes={"order", "quality"}, notices={"evidence-v1": "complete"},
                      consent="given")
    ledger.record_decision("1700000000.12", trigger="gate", facts=facts.to_dict(), record=True,
                           purposes=["order", "quality"], rejected=(), policy="v1",
                           action="start")
    ledger.end_call("1700000000.12", facts=facts)  # the object itself, not only its dict
    call = ledger.call("1700000000.12")
    assert call is not None
    assert sorted(call.last_facts["purposes"]) == ["order", "quality"]
    assert call.last_facts["notices"] == {"evidence-v1": "complete"}
    assert call.last_facts["consent"] == "given"
    assert ledger.decisions_for_call("1700000000.12")[0].facts == facts.to_dict()
