"""The policy's vocabulary and data: the facts of a call, a validated policy,
and the decision about it. Pure values with no rules and no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar


# --------------------------------------------------------------------------
# Vocabulary


class NoticeStatus(StrEnum):
    """How a notice played: to the end, or cut short (key press, playback failure)."""

    COMPLETE = "complete"
    INTERRUPTED = "interrupted"


class Consent(StrEnum):
    """The caller's answer to the consent question.

    ``NONE`` covers "never asked" and "no answer": silence or staying on the
    line is not consent (GDPR recital 32).
    """

    NONE = "none"
    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class Outcome(StrEnum):
    """Whether the call led to a business transaction (set by the agent or CRM)."""

    UNKNOWN = "unknown"
    TRANSACTION = "transaction"
    NO_TRANSACTION = "no_transaction"


class Basis(StrEnum):
    """The legal basis a purpose rests on."""

    EVIDENCE = "evidence"  # evidence of a business transaction
    CONSENT = "consent"  # the caller's prior, active consent
    FORBIDDEN = "forbidden"  # the law allows no recording for it


class Reason(StrEnum):
    """Why a declared purpose does not justify recording.

    Declared in precedence order: when several apply to one purpose, the first
    one listed here is the one reported.
    """

    PURPOSE_UNKNOWN = "purpose_unknown"
    PURPOSE_FORBIDDEN = "purpose_forbidden"
    NOTICE_MISSING = "notice_missing"  # no notice played at all
    NOTICE_INTERRUPTED = "notice_interrupted"  # a covering notice was cut short
    NOTICE_NOT_COVERING_PURPOSE = "notice_not_covering_purpose"  # others played
    CONSENT_MISSING = "consent_missing"
    CONSENT_REFUSED = "consent_refused"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NO_TRANSACTION = "no_transaction"


#: Every reason code, in precedence order.
REASON_CODES: tuple[str, ...] = tuple(reason.value for reason in Reason)

#: The general limitation period (five years); longer retention needs a
#: written justification in the policy.
MAX_RETENTION_DAYS = 1825

#: The longest purpose or notice id: the channel variables that declare them
#: to the guard carry no longer ones, so a longer id could never match a call.
MAX_ID_LENGTH = 64

#: The longest any justification may keep a recording: ten years (leap days
#: included), the longest period business records are kept for. Every
#: deadline then stays far inside what a date can hold.
MAX_JUSTIFIED_RETENTION_DAYS = 3653


# --------------------------------------------------------------------------
# An immutable, hashable mapping, so that facts and policies can be compared,
# hashed and cached.

_K = TypeVar("_K")
_V = TypeVar("_V")


class FrozenMap(Mapping[_K, _V]):
    """A read-only mapping that keeps insertion order and is hashable."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[_K, _V] | Iterable[tuple[_K, _V]] = ()) -> None:
        self._data: dict[_K, _V] = dict(items)

    def __getitem__(self, key: _K) -> _V:
        return self._data[key]

    def __iter__(self) -> Iterator[_K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


# --------------------------------------------------------------------------
# Facts and policy


@dataclass(frozen=True)
class CallFacts:
    """What is known about a call at one moment.

    Accepts any iterable of purpose ids and any mapping (or pairs) of notice id
    to status, with plain strings for the enums; stores them immutably.
    """

    purposes: frozenset[str]
    notices: Mapping[str, NoticeStatus] = field(default_factory=FrozenMap)
    consent: Consent = Consent.NONE
    outcome: Outcome = Outcome.UNKNOWN

    def __post_init__(self) -> None:
        if isinstance(self.purposes, str):
            # A bare string would silently become a set of its letters.
            raise TypeError("CallFacts.purposes must be a collection of purpose ids, not a string")
        purposes = frozenset(self.purposes)
        for purpose in purposes:
            if not isinstance(purpose, str):
                raise TypeError(f"purpose id must be a string, got {purpose!r}")
        pairs = self.notices.items() if isinstance(self.notices, Mapping) else self.notices
        notices = {str(key): NoticeStatus(value) for key, value in pairs}
        object.__setattr__(self, "purposes", purposes)
        object.__setattr__(self, "notices", FrozenMap(sorted(notices.items())))
        object.__setattr__(self, "consent", Consent(self.consent))
        object.__setattr__(self, "outcome", Outcome(self.outcome))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict with a stable order, for the ledger and the log."""
        return {
            "purposes": sorted(self.purposes),
            "notices": {key: str(value) for key, value in self.notices.items()},
            "consent": str(self.consent),
            "outcome": str(self.outcome),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallFacts:
        """The inverse of ``to_dict``."""
        return cls(
            purposes=frozenset(data.get("purposes", ())),
            notices=dict(data.get("notices", {})),
            consent=Consent(data.get("consent", Consent.NONE)),
            outcome=Outcome(data.get("outcome", Outcome.UNKNOWN)),
        )


@dataclass(frozen=True)
class Purpose:
    """A reason for which a call may be declared, with its legal basis."""

    id: str
    basis: Basis
    retention_days: int | None
    description: str
    justification: str | None = None

    @property
    def records(self) -> bool:
        """Whether this purpose can ever justify a recording."""
        return self.basis is not Basis.FORBIDDEN


@dataclass(frozen=True)
class Notice:
    """An announcement played to the caller before recording.

    ``prompt`` is the Asterisk sound name; ``text`` the file with its words,
    relative to the policy file's folder.
    """

    id: str
    covers: frozenset[str]
    prompt: str
    text: str
    accept_interrupted: bool = False


@dataclass(frozen=True)
class Policy:
    """A validated policy: its purposes and the notices that cover them."""

    name: str
    version: str
    purposes: Mapping[str, Purpose]
    notices: Mapping[str, Notice]
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "purposes", FrozenMap(self.purposes))
        object.__setattr__(self, "notices", FrozenMap(self.notices))

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def basis_of(self, purpose_id: str) -> Basis | None:
        purpose = self.purposes.get(purpose_id)
        return purpose.basis if purpose else None

    def notices_covering(self, purpose_id: str) -> tuple[Notice, ...]:
        """The notices that tell the caller about this purpose, by id."""
        return tuple(
            self.notices[notice_id]
            for notice_id in sorted(self.notices)
            if purpose_id in self.notices[notice_id].covers
        )

    def text_path(self, notice_id: str) -> Path:
        """Where the text of a notice is, resolved against the policy's folder."""
        return Path(self.source).parent / self.notices[notice_id].text


# --------------------------------------------------------------------------
# The decision


@dataclass(frozen=True)
class Rejection:
    """A declared purpose that does not justify recording, and why."""

    purpose: str
    reason: str


@dataclass(frozen=True)
class Decision:
    """The answer for one set of facts."""

    record: bool
    purposes: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    retention_days: int | None
    policy: str

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "purposes": list(self.purposes),
            "rejected": [
                {"purpose": rejection.purpose, "reason": str(rejection.reason)}
                for rejection in self.rejected
            ],
            "retention_days": self.retention_days,
            "policy": self.policy,
        }
