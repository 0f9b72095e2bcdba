"""A purpose or notice id the channel variables cannot carry (longer than the
channel-variable parser reads) is refused by the policy, so that no declared
purpose can pass check-config and then never match a call."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_recguard.channelfacts import facts_from_channelvars
from asterisk_recguard.policy import Decision, PolicyError, decide, parse_policy


def policy_text(purpose_id: str = "order", notice_id: str = "evidence-v1") -> str:
    return f"""\
[policy]
name = "test"
version = "1"

[purposes.{purpose_id}]
basis = "evidence"
retention_days = 30
description = "ordering"

[notices.{notice_id}]
covers = ["{purpose_id}"]
prompt = "recguard/evidence-v1"
text = "prompts/sl/evidence-v1.txt"
"""


def decision_for_call(purpose_id: str, notice_id: str) -> Decision:
    policy = parse_policy(policy_text(purpose_id, notice_id))
    facts = facts_from_channelvars({
        "RECGUARD_PURPOSE": purpose_id,
        "RECGUARD_NOTICES": f"{notice_id}:complete",
        "RECGUARD_OUTCOME": "transaction",
    })
    return decide(facts, policy)


def test_the_longest_ids_still_match_a_call() -> None:
    assert decision_for_call("p" * 64, "n" * 64).record


@pytest.mark.parametrize("length", [65, 100, 10_000])
def test_a_purpose_id_longer_than_64_is_refused(length: int) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(policy_text(purpose_id="p" * length))
    message = str(info.value)
    assert "\n" not in message
    assert f"purposes.{'p' * 8}" in message
    assert f"{length} characters long, at most 64" in message


def test_a_notice_id_longer_than_64_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"65 characters long, at most 64"):
        parse_policy(policy_text(notice_id="n" * 65))


def test_the_limit_is_one_constant_shared_with_the_channel_variables() -> None:
    from asterisk_recguard import channelfacts
    from asterisk_recguard.policy.model import MAX_ID_LENGTH

    assert MAX_ID_LENGTH == 64
    assert channelfacts.parse_purposes("a" * MAX_ID_LENGTH) == {"a" * MAX_ID_LENGTH}
    assert channelfacts.parse_purposes("a" * (MAX_ID_LENGTH + 1)) != {"a" * (MAX_ID_LENGTH + 1)}


@given(st.integers(min_value=1, max_value=90))
def test_every_id_the_policy_accepts_can_match_a_call(length: int) -> None:
    purpose_id = ("p" + "x_-9" * 30)[:length]
    notice_id = ("n" + "-y7_" * 30)[:length]
    try:
        decision = decision_for_call(purpose_id, notice_id)
    except PolicyError:
        assert length > 64
    else:
        assert decision.record, length
