"""The ledger's timestamp text: one fixed, sortable UTC form, written and
read back exactly, whatever the time zone it came in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_recguard.ledger import format_ts, parse_ts

STRFTIME = "%Y-%m-%dT%H:%M:%S.%fZ"
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                       timezones=offsets)


@given(moments)
def test_a_moment_is_written_as_strftime_would_and_read_back_exactly(moment: datetime) -> None:
    text = format_ts(moment)
    assert text == moment.astimezone(timezone.utc).strftime(STRFTIME)
    assert parse_ts(text) == moment
    assert parse_ts(text).tzinfo == timezone.utc


def test_text_sorts_as_time_does() -> None:
    earlier = datetime(2026, 11, 29, 9, 59, 59, 999999, tzinfo=timezone.utc)
    later = datetime(2026, 11, 29, 11, 0, tzinfo=timezone(timedelta(hours=1)))  # 10:00 UTC
    assert format_ts(earlier) < format_ts(later)
    assert format_ts(later) == "2026-11-29T10:00:00.000000Z"


@pytest.mark.parametrize("text", [
    "2026-11-29 13:14:00.123456Z",  # a space, not T
    "2026-11-29T13:14:00Z",  # no microseconds
    "2026-11-29T13:14:00.123456+00:00",  # an offset, not Z
    "2026-11-29T13:14:00.123456",  # no zone at all
    "2026-13-29T13:14:00.123456Z",  # no 13th month
    "",
])
def test_any_other_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ts(text)


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_ts(datetime(2026, 11, 29, 10, 0))
