"""The rules of ``decide``: one table row per rule and reason code, on the
shipped default policy and on small policies built in the test."""

from __future__ import annotations

import json

import pytest

from asterisk_recguard.policy import (
    REASON_CODES,
    REASON_TEXT,
    Basis,
    CallFacts,
    Consent,
    Decision,
    FrozenMap,
    Notice,
    NoticeStatus,
    Outcome,
    Policy,
    Purpose,
    Reason,
    Rejection,
    decide,
    explain,
    load_policy,
)
from asterisk_recguard.resources import default_policy_path

C = NoticeStatus.COMPLETE
I = NoticeStatus.INTERRUPTED
EV = "evidence-v1"
QC = "quality-consent-v1"


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy(default_policy_path())


def facts(
    *purposes: str,
    notices: dict[str, NoticeStatus] | None = None,
    consent: Consent = Consent.NONE,
    outcome: Outcome = Outcome.UNKNOWN,
) -> CallFacts:
    return CallFacts(frozenset(purposes), notices or {}, consent, outcome)


def small_policy(*, accept_interrupted: bool = False) -> Policy:
    purposes = {
        "order": Purpose("order", Basis.EVIDENCE, 1095, "ordering"),
        "quality": Purpose("quality", Basis.CONSENT, 90, "quality"),
        "spam": Purpose("spam", Basis.FORBIDDEN, None, "never"),
    }
    notices = {
        "n-order": Notice("n-order", frozenset({"order"}), "x/order", "o.txt", accept_interrupted),
        "n-quality": Notice("n-quality", frozenset({"quality"}), "x/quality", "q.txt"),
    }
    return Policy("small", "1", purposes, notices, "/tmp/small.toml")


# --- the shipped default policy is the table of the issue -------------------


def test_default_policy_matches_the_published_table(default: Policy) -> None:
    table = {
        pid: (p.basis, p.retention_days) for pid, p in default.purposes.items()
    }
    assert table == {
        "order": (Basis.EVIDENCE, 1095),
        "change": (Basis.EVIDENCE, 1095),
        "cancellation": (Basis.EVIDENCE, 1095),
        "complaint": (Basis.EVIDENCE, 730),
        "quality": (Basis.CONSENT, 90),
        "general_info": (Basis.FORBIDDEN, None),
        "employee_supervision": (Basis.FORBIDDEN, None),
        "deterrence": (Basis.FORBIDDEN, None),
    }
    assert default.label == "sl-call-centre 2026-11"
    assert default.notices[EV].covers == {"order", "change", "cancellation", "complaint"}
    assert default.notices[QC].covers == {"quality"}
    assert default.notices[EV].prompt == "recguard/evidence-v1"
    assert default.notices[EV].text == "prompts/sl/evidence-v1.txt"
    assert not any(n.accept_interrupted for n in default.notices.values())
    assert default.text_path(EV) == default_policy_path().parent / "prompts/sl/evidence-v1.txt"


# --- every rule and reason code, table-driven on the default policy --------

CASES = [
    # (id, facts, record, purposes, rejected, retention)
    ("evidence after its notice", facts("order", notices={EV: C}),
     True, ("order",), (), 1095),
    ("complaint retention", facts("complaint", notices={EV: C}),
     True, ("complaint",), (), 730),
    ("evidence with a transaction", facts("cancellation", notices={EV: C}, outcome=Outcome.TRANSACTION),
     True, ("cancellation",), (), 1095),
    ("rule 1: forbidden", facts("general_info", notices={EV: C, QC: C}, consent=Consent.GIVEN),
     False, (), (("general_info", "purpose_forbidden"),), None),
    ("rule 1: supervision forbidden", facts("employee_supervision", notices={EV: C}),
     False, (), (("employee_supervision", "purpose_forbidden"),), None),
    ("rule 1: deterrence forbidden", facts("deterrence", notices={EV: C}),
     False, (), (("deterrence", "purpose_forbidden"),), None),
    ("rule 1: unknown", facts("marketing", notices={EV: C}, consent=Consent.GIVEN),
     False, (), (("marketing", "purpose_unknown"),), None),
    ("rule 1: wildcard is just unknown", facts("*", notices={EV: C, QC: C}, consent=Consent.GIVEN),
     False, (), (("*", "purpose_unknown"),), None),
    ("rule 2: no notice at all", facts("order"),
     False, (), (("order", "notice_missing"),), None),
    ("rule 2: notice for another purpose", facts("order", notices={QC: C}),
     False, (), (("order", "notice_not_covering_purpose"),), None),
    ("rule 2: a notice the policy does not know", facts("order", notices={"evidence-v0": C}),
     False, (), (("order", "notice_not_covering_purpose"),), None),
    ("rule 2: notice cut short", facts("order", notices={EV: I}),
     False, (), (("order", "notice_interrupted"),), None),
    ("rule 2: cut short beats not covering", facts("order", notices={EV: I, QC: C}),
     False, (), (("order", "notice_interrupted"),), None),
    ("rule 3: consent given", facts("quality", notices={QC: C}, consent=Consent.GIVEN),
     True, ("quality",), (), 90),
    ("rule 3: silence is not consent", facts("quality", notices={QC: C}),
     False, (), (("quality", "consent_missing"),), None),
    ("rule 3: consent refused", facts("quality", notices={QC: C}, consent=Consent.REFUSED),
     False, (), (("quality", "consent_refused"),), None),
    ("rule 3: consent withdrawn", facts("quality", notices={QC: C}, consent=Consent.WITHDRAWN),
     False, (), (("quality", "consent_withdrawn"),), None),
    ("rule 3: consent without the question", facts("quality", notices={EV: C}, consent=Consent.GIVEN),
     False, (), (("quality", "notice_not_covering_purpose"),), None),
    ("rule 4: no transaction", facts("order", notices={EV: C}, outcome=Outcome.NO_TRANSACTION),
     False, (), (("order", "no_transaction"),), None),
    ("rule 4: no transaction leaves consent purposes alone",
     facts("order", "quality", notices={EV: C, QC: C}, consent=Consent.GIVEN,
           outcome=Outcome.NO_TRANSACTION),
     True, ("quality",), (("order", "no_transaction"),), 90),
    ("rule 5: general_info with quality consent records quality only",
     facts("general_info", "quality", notices={QC: C}, consent=Consent.GIVEN),
     True, ("quality",), (("general_info", "purpose_forbidden"),), 90),
    ("rule 5: retention is the longest", facts("complaint", "order", "quality",
     notices={EV: C, QC: C}, consent=Consent.GIVEN),
     True, ("complaint", "order", "quality"), (), 1095),
    ("rule 5: the shorter evidence purpose alone", facts("complaint", "quality",
     notices={EV: C, QC: C}, consent=Consent.GIVEN),
     True, ("complaint", "quality"), (), 730),
    ("rule 5: nothing declared", facts(notices={EV: C}),
     False, (), (), None),
    ("rule 5: rejected listed by purpose",
     facts("quality", "deterrence", "zzz", "change", notices={EV: C}),
     True, ("change",),
     (("deterrence", "purpose_forbidden"), ("quality", "notice_not_covering_purpose"),
      ("zzz", "purpose_unknown")), 1095),
]


@pytest.mark.parametrize(
    "call, record, purposes, rejected, retention",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rules(
    default: Policy,
    call: CallFacts,
    record: bool,
    purposes: tuple[str, ...],
    rejected: tuple[tuple[str, str], ...],
    retention: int | None,
) -> None:
    decision = decide(call, default)
    assert decision == Decision(
        record=record,
        purposes=purposes,
        rejected=tuple(Rejection(p, r) for p, r in rejected),
        retention_days=retention,
        policy="sl-call-centre 2026-11",
    )


def test_every_reason_code_is_exercised_by_the_table() -> None:
    used = {reason for case in CASES for _, reason in case[4]}
    assert used == set(REASON_CODES)


# --- precedence: forbidden/unknown, then notice, then consent, then outcome -

PRECEDENCE = [
    ("unknown beats notice", "nope", {}, Consent.REFUSED, Outcome.NO_TRANSACTION, "purpose_unknown"),
    ("forbidden beats notice", "spam", {}, Consent.REFUSED, Outcome.NO_TRANSACTION, "purpose_forbidden"),
    ("notice missing beats consent refused", "quality", {}, Consent.REFUSED, Outcome.UNKNOWN,
     "notice_missing"),
    ("notice interrupted beats consent withdrawn", "quality", {"n-quality": I}, Consent.WITHDRAWN,
     Outcome.UNKNOWN, "notice_interrupted"),
    ("notice missing beats no transaction", "order", {}, Consent.NONE, Outcome.NO_TRANSACTION,
     "notice_missing"),
    ("not covering beats no transaction", "order", {"n-quality": C}, Consent.NONE,
     Outcome.NO_TRANSACTION, "notice_not_covering_purpose"),
    ("consent beats outcome for a consent purpose", "quality", {"n-quality": C}, Consent.NONE,
     Outcome.NO_TRANSACTION, "consent_missing"),
]


@pytest.mark.parametrize(
    "purpose, notices, consent, outcome, reason",
    [case[1:] for case in PRECEDENCE],
    ids=[case[0] for case in PRECEDENCE],
)
def test_reason_precedence(
    purpose: str,
    notices: dict[str, NoticeStatus],
    consent: Consent,
    outcome: Outcome,
    reason: str,
) -> None:
    decision = decide(facts(purpose, notices=notices, consent=consent, outcome=outcome), small_policy())
    assert decision.rejected == (Rejection(purpose, reason),)


def test_reason_codes_are_listed_in_precedence_order() -> None:
    assert REASON_CODES == (
        "purpose_unknown",
        "purpose_forbidden",
        "notice_missing",
        "notice_interrupted",
        "notice_not_covering_purpose",
        "consent_missing",
        "consent_refused",
        "consent_withdrawn",
        "no_transaction",
    )


# --- interrupted notices count only where the policy says so ---------------


def test_interrupted_notice_counts_when_the_policy_accepts_it() -> None:
    lenient = small_policy(accept_interrupted=True)
    decision = decide(facts("order", notices={"n-order": I}), lenient)
    assert decision.record and decision.purposes == ("order",)


def test_accepting_interrupted_is_per_notice() -> None:
    lenient = small_policy(accept_interrupted=True)
    decision = decide(
        facts("quality", notices={"n-quality": I}, consent=Consent.GIVEN), lenient
    )
    assert decision.rejected == (Rejection("quality", "notice_interrupted"),)


def test_one_complete_covering_notice_is_enough() -> None:
    purposes = {"order": Purpose("order", Basis.EVIDENCE, 30, "o")}
    notices = {
        "a": Notice("a", frozenset({"order"}), "p/a", "a.txt"),
        "b": Notice("b", frozenset({"order"}), "p/b", "b.txt"),
    }
    policy = Policy("two", "1", purposes, notices)
    assert decide(facts("order", notices={"a": I, "b": C}), policy).record
    assert not decide(facts("order", notices={"a": I, "b": I}), policy).record


# --- rule 6: the same function answers mid-call ----------------------------


def test_re_deciding_mid_call_follows_the_facts(default: Policy) -> None:
    before_notice = facts("order", "quality")
    after_notice = facts("order", "quality", notices={EV: C, QC: C})
    opted_in = facts("order", "quality", notices={EV: C, QC: C}, consent=Consent.GIVEN)
    withdrawn = facts("order", "quality", notices={EV: C, QC: C}, consent=Consent.WITHDRAWN)
    lost = facts(
        "order", "quality", notices={EV: C, QC: C}, consent=Consent.WITHDRAWN,
        outcome=Outcome.NO_TRANSACTION,
    )
    steps = [decide(step, default) for step in (before_notice, after_notice, opted_in, withdrawn, lost)]
    assert [d.purposes for d in steps] == [
        (),
        ("order",),
        ("order", "quality"),
        ("order",),
        (),
    ]
    assert [d.retention_days for d in steps] == [None, 1095, 1095, 1095, None]
    assert steps[-1].rejected == (
        Rejection("order", "no_transaction"),
        Rejection("quality", "consent_withdrawn"),
    )


def test_agent_reclassifying_a_call_changes_the_purposes(default: Policy) -> None:
    played = {EV: C}
    assert not decide(facts("general_info", notices=played), default).record
    reclassified = decide(facts("general_info", "order", notices=played), default)
    assert reclassified.purposes == ("order",)
    assert reclassified.rejected == (Rejection("general_info", "purpose_forbidden"),)


# --- the data types --------------------------------------------------------


def test_json_dict_has_exactly_the_contract_keys(default: Policy) -> None:
    decision = decide(facts("order", "deterrence", notices={EV: C}), default)
    data = decision.to_json_dict()
    assert data == {
        "record": True,
        "purposes": ["order"],
        "rejected": [{"purpose": "deterrence", "reason": "purpose_forbidden"}],
        "retention_days": 1095,
        "policy": "sl-call-centre 2026-11",
    }
    assert json.loads(json.dumps(data)) == data
    assert type(data["rejected"][0]["reason"]) is str


def test_call_facts_accepts_plain_values_and_is_hashable() -> None:
    from_strings = CallFacts(
        purposes=["order", "order"],  # type: ignore[arg-type]
        notices=[("evidence-v1", "complete")],  # type: ignore[arg-type]
        consent="given",  # type: ignore[arg-type]
        outcome="transaction",  # type: ignore[arg-type]
    )
    typed = CallFacts(frozenset({"order"}), {EV: C}, Consent.GIVEN, Outcome.TRANSACTION)
    assert from_strings == typed
    assert hash(from_strings) == hash(typed)
    assert isinstance(typed.notices, FrozenMap)
    with pytest.raises(TypeError):
        typed.notices["x"] = C  # type: ignore[index]


def test_call_facts_refuses_bad_values() -> None:
    with pytest.raises(TypeError, match="not a string"):
        CallFacts("order")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CallFacts(frozenset({"order"}), consent="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CallFacts(frozenset({"order"}), {EV: "half"})  # type: ignore[dict-item]


def test_call_facts_to_dict_is_stable_and_round_trips() -> None:
    call = CallFacts(frozenset({"quality", "order"}), {QC: I, EV: C}, Consent.REFUSED)
    data = call.to_dict()
    assert data == {
        "purposes": ["order", "quality"],
        "notices": {EV: "complete", QC: "interrupted"},
        "consent": "refused",
        "outcome": "unknown",
    }
    assert list(data["notices"]) == [EV, QC]
    assert json.dumps(data) == json.dumps(CallFacts.from_dict(json.loads(json.dumps(data))).to_dict())
    assert CallFacts.from_dict(data) == call


def test_policy_helpers(default: Policy) -> None:
    assert default.basis_of("quality") is Basis.CONSENT
    assert default.basis_of("deterrence") is Basis.FORBIDDEN
    assert default.basis_of("nope") is None
    assert [n.id for n in default.notices_covering("complaint")] == [EV]
    assert default.notices_covering("general_info") == ()
    assert hash(default) == hash(load_policy(default_policy_path()))


def test_every_reason_has_plain_text() -> None:
    assert set(REASON_TEXT) == set(REASON_CODES) == {r.value for r in Reason}
    assert all(text and text[0].islower() and not text.endswith(".") for text in REASON_TEXT.values())


# --- the explanation for the data-protection officer ----------------------


def test_explain_a_recorded_call(default: Policy) -> None:
    call = facts("order", "general_info", notices={EV: C})
    text = explain(decide(call, default), default, call)
    assert "RECORD this call (policy sl-call-centre 2026-11)." in text
    assert "order — ordering a service or goods (naročilo)" in text
    assert "Kept for 1095 days after the call ends, then deleted." in text
    assert "general_info — general-information calls" in text
    assert f"why: {REASON_TEXT['purpose_forbidden']}" in text
    assert "no transaction" in text  # warns that evidence lapses without a transaction


def test_explain_a_call_not_recorded(default: Policy) -> None:
    call = facts("quality", notices={QC: C}, consent=Consent.NONE)
    text = explain(decide(call, default), default, call)
    assert text.splitlines()[1] == "DO NOT RECORD this call (policy sl-call-centre 2026-11)."
    assert "silence or staying on the line is not consent" in text
    assert "Kept for" not in text


def test_explain_flags_notices_the_policy_does_not_know(default: Policy) -> None:
    call = facts("order", notices={"evidence-v0": C})
    text = explain(decide(call, default), default, call)
    assert "evidence-v0 (played to the end, not in this policy)" in text


def test_explain_with_nothing_declared(default: Policy) -> None:
    text = explain(decide(facts(), default), default)
    assert text.splitlines() == [
        "DO NOT RECORD this call (policy sl-call-centre 2026-11).",
        "No purpose was declared; recording needs a declared purpose.",
    ]
