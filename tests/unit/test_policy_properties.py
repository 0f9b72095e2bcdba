"""Invariants of ``decide`` over random policies and random call facts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from asterisk_recguard.policy import (
    REASON_CODES,
    Basis,
    CallFacts,
    Consent,
    Notice,
    NoticeStatus,
    Outcome,
    Policy,
    Purpose,
    decide,
    load_policy,
)
from asterisk_recguard.resources import default_policy_path

PURPOSE_IDS = ["p0", "p1", "p2", "p3", "p4", "p5"]
NOTICE_IDS = ["n0", "n1", "n2", "n3"]
STRANGERS = ["zz-unknown", "n-stranger"]  # ids no generated policy declares

DEFAULT = load_policy(default_policy_path())


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    ids = draw(st.lists(st.sampled_from(PURPOSE_IDS), min_size=1, unique=True))
    purposes = {}
    for pid in ids:
        basis = draw(st.sampled_from(list(Basis)))
        retention = None if basis is Basis.FORBIDDEN else draw(st.integers(1, 4000))
        purposes[pid] = Purpose(pid, basis, retention, f"purpose {pid}")
    recording = sorted(pid for pid, p in purposes.items() if p.basis is not Basis.FORBIDDEN)
    notices = {}
    for nid in draw(st.lists(st.sampled_from(NOTICE_IDS), unique=True)):
        covers = draw(st.frozensets(st.sampled_from(recording), min_size=1)) if recording else frozenset()
        if covers:
            notices[nid] = Notice(nid, covers, f"recguard/{nid}", f"{nid}.txt", draw(st.booleans()))
    return Policy("random", "1", purposes, notices, "random.toml")


def facts_for(policy: Policy) -> st.SearchStrategy[CallFacts]:
    purpose_pool = sorted(policy.purposes) + PURPOSE_IDS + STRANGERS
    notice_pool = sorted(policy.notices) + NOTICE_IDS + STRANGERS
    return st.builds(
        CallFacts,
        purposes=st.frozensets(st.sampled_from(purpose_pool)),
        notices=st.dictionaries(st.sampled_from(notice_pool), st.sampled_from(list(NoticeStatus))),
        consent=st.sampled_from(list(Consent)),
        outcome=st.sampled_from(list(Outcome)),
    )


policy_and_facts = policies().flatmap(lambda p: st.tuples(st.just(p), facts_for(p)))
default_facts = facts_for(DEFAULT)


def heard(policy: Policy, call: CallFacts, purpose_id: str) -> bool:
    """A notice covering the purpose played to the end, or cut short where allowed."""
    for notice in policy.notices_covering(purpose_id):
        status = call.notices.get(notice.id)
        if status is NoticeStatus.COMPLETE:
            return True
        if status is NoticeStatus.INTERRUPTED and notice.accept_interrupted:
            return True
    return False


def justifies(policy: Policy, call: CallFacts, purpose_id: str) -> bool:
    """The rules of the issue, written out independently of the engine."""
    purpose = policy.purposes.get(purpose_id)
    return (
        purpose is not None
        and purpose.basis in (Basis.EVIDENCE, Basis.CONSENT)
        and heard(policy, call, purpose_id)
        and (purpose.basis is not Basis.CONSENT or call.consent is Consent.GIVEN)
        and (purpose.basis is not Basis.EVIDENCE or call.outcome is not Outcome.NO_TRANSACTION)
    )


@given(policy_and_facts)
def test_nothing_recorded_for_forbidden_or_unknown_purposes_only(pf: tuple[Policy, CallFacts]) -> None:
    policy, call = pf
    only_bad = CallFacts(
        frozenset(p for p in call.purposes if policy.basis_of(p) in (None, Basis.FORBIDDEN)),
        call.notices,
        call.consent,
        call.outcome,
    )
    decision = decide(only_bad, policy)
    assert not decision.record
    assert decision.purposes == ()
    assert decision.retention_days is None
    assert {r.reason for r in decision.rejected} <= {"purpose_forbidden", "purpose_unknown"}


@given(policy_and_facts)
def test_nothing_recorded_without_a_covering_notice_heard_to_the_end(
    pf: tuple[Policy, CallFacts],
) -> None:
    policy, call = pf
    decision = decide(call, policy)
    for purpose_id in decision.purposes:
        assert heard(policy, call, purpose_id)
    cut_short = CallFacts(
        call.purposes,
        {nid: NoticeStatus.INTERRUPTED for nid in call.notices},
        call.consent,
        call.outcome,
    )
    for purpose_id in decide(cut_short, policy).purposes:
        assert any(n.accept_interrupted for n in policy.notices_covering(purpose_id))
    silent = CallFacts(call.purposes, {}, call.consent, call.outcome)
    assert not decide(silent, policy).record


@given(default_facts)
def test_default_policy_never_records_without_a_notice_played_to_the_end(call: CallFacts) -> None:
    decision = decide(call, DEFAULT)
    if decision.record:
        assert NoticeStatus.COMPLETE in call.notices.values()


@given(policy_and_facts)
def test_a_consent_purpose_is_never_recorded_without_given(pf: tuple[Policy, CallFacts]) -> None:
    policy, call = pf
    decision = decide(call, policy)
    if any(policy.basis_of(p) is Basis.CONSENT for p in decision.purposes):
        assert call.consent is Consent.GIVEN


@given(policy_and_facts)
def test_recorded_purposes_are_exactly_the_justifying_ones(pf: tuple[Policy, CallFacts]) -> None:
    policy, call = pf
    decision = decide(call, policy)
    expected = tuple(sorted(p for p in call.purposes if justifies(policy, call, p)))
    assert decision.purposes == expected
    assert decision.record == bool(expected)
    rejected = [r.purpose for r in decision.rejected]
    assert rejected == sorted(call.purposes - set(expected))
    assert all(r.reason in REASON_CODES for r in decision.rejected)


@given(policy_and_facts)
def test_each_purpose_is_judged_on_its_own(pf: tuple[Policy, CallFacts]) -> None:
    policy, call = pf
    together = decide(call, policy)
    for purpose_id in call.purposes:
        alone = decide(
            CallFacts(frozenset({purpose_id}), call.notices, call.consent, call.outcome), policy
        )
        assert (purpose_id in together.purposes) == alone.record


@given(policy_and_facts)
def test_retention_is_the_maximum_of_the_recorded_purposes(pf: tuple[Policy, CallFacts]) -> None:
    policy, call = pf
    decision = decide(call, policy)
    if decision.record:
        assert decision.retention_days == max(
            policy.purposes[p].retention_days or 0 for p in decision.purposes
        )
    else:
        assert decision.retention_days is None


@given(policy_and_facts, st.randoms())
def test_decide_is_deterministic(pf: tuple[Policy, CallFacts], rnd) -> None:  # type: ignore[no-untyped-def]
    policy, call = pf
    items = list(call.notices.items())
    rnd.shuffle(items)
    purposes = list(call.purposes)
    rnd.shuffle(purposes)
    same_call = CallFacts(frozenset(purposes), dict(items), call.consent, call.outcome)
    assert same_call == call and hash(same_call) == hash(call)
    first = decide(call, policy)
    assert decide(same_call, policy) == first
    assert decide(call, policy).to_json_dict() == first.to_json_dict()
    assert list(first.purposes) == sorted(first.purposes)


@given(policy_and_facts)
def test_more_notices_never_remove_a_purpose(pf: tuple[Policy, CallFacts]) -> None:
    policy, call = pf
    all_heard = CallFacts(
        call.purposes,
        {**dict(call.notices), **{nid: NoticeStatus.COMPLETE for nid in policy.notices}},
        call.consent,
        call.outcome,
    )
    assert set(decide(call, policy).purposes) <= set(decide(all_heard, policy).purposes)


@given(policy_and_facts, st.sampled_from([Consent.NONE, Consent.REFUSED, Consent.WITHDRAWN]))
def test_losing_consent_or_the_transaction_never_adds_a_purpose(
    pf: tuple[Policy, CallFacts], lost: Consent
) -> None:
    policy, call = pf
    before = set(decide(call, policy).purposes)
    no_consent = CallFacts(call.purposes, call.notices, lost, call.outcome)
    no_deal = CallFacts(call.purposes, call.notices, call.consent, Outcome.NO_TRANSACTION)
    after_consent = set(decide(no_consent, policy).purposes)
    after_deal = set(decide(no_deal, policy).purposes)
    assert after_consent <= before and after_deal <= before
    assert not any(policy.basis_of(p) is Basis.CONSENT for p in after_consent)
    assert not any(policy.basis_of(p) is Basis.EVIDENCE for p in after_deal)
