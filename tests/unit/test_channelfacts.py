"""channelfacts: the RECGUARD_* channel variables read as call facts.

Whatever a caller, an agent or a broken dialplan leaves in these variables,
the reading must never raise and must only ever count a malformed value as
"not established", so that a bad value can prevent a recording but never
cause one.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_recguard.channelfacts import (
    CONSENT_VAR,
    NOTICES_VAR,
    OUTCOME_VAR,
    PURPOSE_VAR,
    facts_from_channelvars,
    parse_consent,
    parse_notices,
    parse_outcome,
    parse_purposes,
)
from asterisk_recguard.policy import (
    CallFacts,
    Consent,
    NoticeStatus,
    Outcome,
    Reason,
    decide,
    load_policy,
)
from asterisk_recguard.resources import default_policy_path

POLICY = load_policy(default_policy_path())
WELL_FORMED = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
INVALID = "invalid:"


def assert_harmless(ident: str) -> None:
    """An id is either well formed or ``invalid:`` and then inert, printable text."""
    if WELL_FORMED.fullmatch(ident):
        return
    assert ident.startswith(INVALID), ident
    rest = ident[len(INVALID):]
    assert len(rest) <= 64, ident
    assert re.fullmatch(r"[A-Za-z0-9_.?-]*", rest), ident
    for forbidden in ("\r", "\n", ",", ":", '"', "'"):
        assert forbidden not in rest, ident


# --------------------------------------------------------------------------
# parse_purposes


@pytest.mark.parametrize("raw", [None, "", ",", " , ,, ", "   "])
def test_no_purposes(raw: str | None) -> None:
    assert parse_purposes(raw) == frozenset()


def test_purposes_are_split_and_stripped() -> None:
    assert parse_purposes(" order ,quality,  complaint") == {"order", "quality", "complaint"}


def test_duplicate_purposes_collapse() -> None:
    assert parse_purposes("order,order, order ") == {"order"}


@pytest.mark.parametrize(
    "raw",
    [
        "Order",  # upper case is not an id
        "or der",
        "-order",  # must start with a letter or digit
        "order;quality",
        "../../etc/passwd",
        "order\r\nAction: Hangup",
        'order"',
        "order'",
        "ordér",
        "order:evil",
    ],
)
def test_bad_purpose_becomes_invalid_and_harmless(raw: str) -> None:
    (purpose,) = parse_purposes(raw)
    assert purpose.startswith(INVALID)
    assert_harmless(purpose)
    assert purpose not in POLICY.purposes


def test_invalid_purpose_keeps_its_well_formed_neighbours() -> None:
    purposes = parse_purposes("order,Quality")
    assert "order" in purposes
    assert "quality" not in purposes
    assert "invalid:Quality" in purposes


def test_invalid_id_is_capped() -> None:
    (purpose,) = parse_purposes("X" * 500)
    assert purpose == INVALID + "X" * 64


def test_well_formed_id_length_limit() -> None:
    assert parse_purposes("a" * 64) == {"a" * 64}
    (too_long,) = parse_purposes("a" * 65)
    assert too_long == INVALID + "a" * 64


def test_invalid_prefix_cannot_be_forged_into_a_policy_id() -> None:
    # Someone writing the prefix themselves still gets an inert id, not "order".
    (purpose,) = parse_purposes("invalid:order")
    assert purpose == "invalid:invalid?order"
    assert_harmless(purpose)


# --------------------------------------------------------------------------
# parse_notices


def test_no_notices() -> None:
    assert parse_notices(None) == {}
    assert parse_notices("") == {}
    assert parse_notices(" , ,") == {}


def test_complete_and_interrupted() -> None:
    assert parse_notices("evidence-v1:complete, quality-consent-v1:interrupted") == {
        "evidence-v1": NoticeStatus.COMPLETE,
        "quality-consent-v1": NoticeStatus.INTERRUPTED,
    }


def test_status_is_stripped() -> None:
    assert parse_notices(" evidence-v1 : complete ") == {"evidence-v1": NoticeStatus.COMPLETE}


@pytest.mark.parametrize("status", ["", "done", "completed", "complete:extra", "yes", "1"])
def test_unknown_status_counts_as_interrupted(status: str) -> None:
    assert parse_notices(f"evidence-v1:{status}") == {"evidence-v1": NoticeStatus.INTERRUPTED}


def test_notice_without_status_counts_as_interrupted() -> None:
    assert parse_notices("evidence-v1") == {"evidence-v1": NoticeStatus.INTERRUPTED}


def test_heard_once_counts_as_heard_when_later_interrupted() -> None:
    assert parse_notices("evidence-v1:complete,evidence-v1:interrupted") == {
        "evidence-v1": NoticeStatus.COMPLETE
    }


def test_heard_later_counts_as_heard_after_an_interruption() -> None:
    assert parse_notices("evidence-v1:interrupted,evidence-v1:complete") == {
        "evidence-v1": NoticeStatus.COMPLETE
    }


def test_repeated_interruptions_stay_interrupted() -> None:
    assert parse_notices("evidence-v1:interrupted,evidence-v1:bogus") == {
        "evidence-v1": NoticeStatus.INTERRUPTED
    }


def test_entries_without_an_id_are_ignored() -> None:
    assert parse_notices(":complete, :complete,evidence-v1:complete") == {
        "evidence-v1": NoticeStatus.COMPLETE
    }


def test_malformed_notice_id_is_invalid_and_covers_nothing() -> None:
    notices = parse_notices("Evidence-V1:complete,evi dence\r\n:complete")
    assert set(notices) == {"invalid:Evidence-V1", "invalid:evi?dence"}
    for notice_id in notices:
        assert_harmless(notice_id)
        assert notice_id not in POLICY.notices
    facts = CallFacts(purposes={"order"}, notices=notices)
    decision = decide(facts, POLICY)
    assert not decision.record
    assert decision.rejected[0].reason == Reason.NOTICE_NOT_COVERING_PURPOSE


# --------------------------------------------------------------------------
# parse_consent / parse_outcome


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, Consent.NONE),
        ("", Consent.NONE),
        ("none", Consent.NONE),
        ("given", Consent.GIVEN),
        ("GIVEN", Consent.GIVEN),
        ("  Given\n", Consent.GIVEN),
        ("refused", Consent.REFUSED),
        ("Withdrawn ", Consent.WITHDRAWN),
        ("yes", Consent.NONE),
        ("1", Consent.NONE),
        ("given,given", Consent.NONE),
        ("giv en", Consent.NONE),
        ("\x00given", Consent.NONE),
    ],
)
def test_parse_consent(raw: str | None, expected: Consent) -> None:
    assert parse_consent(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, Outcome.UNKNOWN),
        ("", Outcome.UNKNOWN),
        ("unknown", Outcome.UNKNOWN),
        ("transaction", Outcome.TRANSACTION),
        (" TRANSACTION\t", Outcome.TRANSACTION),
        ("no_transaction", Outcome.NO_TRANSACTION),
        ("No_Transaction", Outcome.NO_TRANSACTION),
        ("no-transaction", Outcome.UNKNOWN),
        ("none", Outcome.UNKNOWN),
        ("transaction!", Outcome.UNKNOWN),
    ],
)
def test_parse_outcome(raw: str | None, expected: Outcome) -> None:
    assert parse_outcome(raw) is expected


# --------------------------------------------------------------------------
# facts_from_channelvars


def test_facts_end_to_end() -> None:
    facts = facts_from_channelvars(
        {
            PURPOSE_VAR: "order, quality",
            NOTICES_VAR: "evidence-v1:complete,quality-consent-v1:interrupted",
            CONSENT_VAR: " Given",
            OUTCOME_VAR: "TRANSACTION",
            "RECGUARD_DECISION": "record",  # not a fact: ignored
            "CALLERID(num)": "+38640123456",
        }
    )
    assert facts == CallFacts(
        purposes=frozenset({"order", "quality"}),
        notices={
            "evidence-v1": NoticeStatus.COMPLETE,
            "quality-consent-v1": NoticeStatus.INTERRUPTED,
        },
        consent=Consent.GIVEN,
        outcome=Outcome.TRANSACTION,
    )
    decision = decide(facts, POLICY)
    assert decision.record
    assert decision.purposes == ("order",)
    assert [(r.purpose, r.reason) for r in decision.rejected] == [
        ("quality", Reason.NOTICE_INTERRUPTED)
    ]


def test_facts_from_nothing_establish_nothing() -> None:
    for channelvars in ({}, dict.fromkeys((PURPOSE_VAR, NOTICES_VAR, CONSENT_VAR, OUTCOME_VAR))):
        facts = facts_from_channelvars(channelvars)
        assert facts == CallFacts(purposes=frozenset())
        assert facts.consent is Consent.NONE
        assert facts.outcome is Outcome.UNKNOWN
        assert not decide(facts, POLICY).record


# --------------------------------------------------------------------------
# Property: arbitrary text never raises and never records an invalid id

TOKENS = st.sampled_from(
    [
        *POLICY.purposes,
        *POLICY.notices,
        "complete",
        "interrupted",
        "Order",
        "invalid:order",
        "ORDER",
        "order\r\n",
        ":",
        ",",
        " ",
    ]
)
# Free text, and text built from the real ids mixed with junk so that some
# examples do record (the invalid ids then sit next to justifying purposes).
MIXED = st.lists(st.one_of(TOKENS, st.text(max_size=12)), max_size=8).map("".join)
VALUE = st.one_of(st.none(), st.text(), MIXED)
NOTICES = st.one_of(
    VALUE,
    st.lists(
        st.tuples(st.one_of(TOKENS, st.text(max_size=8)), st.sampled_from(["complete", "interrupted", "x"])),
        max_size=4,
    ).map(lambda pairs: ",".join(f"{n}:{s}" for n, s in pairs)),
)


@given(
    purpose=VALUE,
    notices=NOTICES,
    consent=st.one_of(VALUE, st.sampled_from([c.value for c in Consent])),
    outcome=st.one_of(VALUE, st.sampled_from([o.value for o in Outcome])),
    extra=st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.text())),
)
def test_arbitrary_channelvars_never_raise_nor_record_invalid_ids(
    purpose: str | None,
    notices: str | None,
    consent: str | None,
    outcome: str | None,
    extra: dict[str, str | None],
) -> None:
    channelvars = {
        **extra,
        PURPOSE_VAR: purpose,
        NOTICES_VAR: notices,
        CONSENT_VAR: consent,
        OUTCOME_VAR: outcome,
    }
    facts = facts_from_channelvars(channelvars)
    for ident in (*facts.purposes, *facts.notices):
        assert_harmless(ident)
    decision = decide(facts, POLICY)
    assert not any(p.startswith(INVALID) for p in decision.purposes)
    assert set(decision.purposes) <= set(POLICY.purposes)
    invalid = {p for p in facts.purposes if p.startswith(INVALID)}
    rejected = {r.purpose: r.reason for r in decision.rejected}
    for ident in invalid:
        assert rejected[ident] == Reason.PURPOSE_UNKNOWN
