"""Pure helpers of the guard: the final facts a hangup handler leaves in AstDB."""

from __future__ import annotations

from datetime import datetime, timezone

from asterisk_recguard.guard import parse_final_facts
from asterisk_recguard.policy import Consent, NoticeStatus, Outcome


def test_final_facts_as_the_hangup_handler_writes_them() -> None:
    final = parse_final_facts("1764324723|order,quality|evidence-v1:complete,quality-consent-v1:complete|given|no_transaction")
    assert final is not None
    assert final.ended_at == datetime.fromtimestamp(1764324723, timezone.utc)
    assert final.facts.purposes == frozenset({"order", "quality"})
    assert final.facts.notices["evidence-v1"] is NoticeStatus.COMPLETE
    assert final.facts.consent is Consent.GIVEN
    assert final.facts.outcome is Outcome.NO_TRANSACTION


def test_final_facts_with_empty_fields_establish_nothing() -> None:
    final = parse_final_facts("1764324723||||")
    assert final is not None
    assert final.facts.purposes == frozenset()
    assert final.facts.consent is Consent.NONE


def test_malformed_final_facts_are_refused() -> None:
    for value in ("", "x|order|n|given|unknown", "1764324723|order|n|given", "1|2|3|4|5|6", "9" * 40 + "||||"):
        assert parse_final_facts(value) is None, value
