"""The lawful-basis policy engine.

``decide(facts, policy)`` answers, from the facts of a call and a policy,
whether the call may be recorded, for which purposes, for how long, and why
not. It is the only place where the recording rules of DESIGN.md §1 live; the
guard only turns the difference between two decisions into start, keep, or
stop-and-delete.

Everything here is pure except ``load_policy``, which reads the TOML file and
hands its text to ``parse_policy`` for validation.

The rules, in the order they are checked for each declared purpose (the first
that fails gives the purpose's one reason code):

1. the policy knows the purpose (``purpose_unknown``) and its basis is not
   ``forbidden`` (``purpose_forbidden``);
2. a notice covering the purpose played to the end, or was cut short and the
   notice accepts that (``notice_missing`` when no notice played at all,
   ``notice_interrupted`` when a covering one was cut short,
   ``notice_not_covering_purpose`` when only other notices played);
3. a ``consent`` purpose has ``consent = given`` (``consent_missing``,
   ``consent_refused``, ``consent_withdrawn``);
4. an ``evidence`` purpose has not lost its transaction (``no_transaction``).

The call is recorded if and only if at least one purpose passes all of them;
the retention is the longest among those purposes.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from .errors import UserError

__all__ = [
    "Basis",
    "CallFacts",
    "Consent",
    "Decision",
    "FrozenMap",
    "MAX_RETENTION_DAYS",
    "Notice",
    "NoticeStatus",
    "Outcome",
    "Policy",
    "PolicyError",
    "Purpose",
    "REASON_CODES",
    "REASON_TEXT",
    "Reason",
    "Rejection",
    "decide",
    "explain",
    "load_policy",
    "parse_policy",
]


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

#: Plain-language explanation of each reason code, for a data-protection
#: officer and for the decision log.
REASON_TEXT: dict[str, str] = {
    Reason.PURPOSE_UNKNOWN: (
        "the policy does not know this purpose, so it cannot justify a recording"
    ),
    Reason.PURPOSE_FORBIDDEN: "the law does not allow recording calls for this purpose",
    Reason.NOTICE_MISSING: (
        "the caller was not told beforehand: no notice was played"
    ),
    Reason.NOTICE_NOT_COVERING_PURPOSE: (
        "the notice that was played does not tell the caller about this purpose"
    ),
    Reason.NOTICE_INTERRUPTED: (
        "the notice about this purpose was cut short, so the caller may not have "
        "heard it to the end"
    ),
    Reason.CONSENT_MISSING: (
        "this purpose needs the caller's consent, and the caller did not give it "
        "(silence or staying on the line is not consent)"
    ),
    Reason.CONSENT_REFUSED: "the caller refused consent",
    Reason.CONSENT_WITHDRAWN: "the caller withdrew consent",
    Reason.NO_TRANSACTION: (
        "the call led to no transaction, so there is nothing to keep as evidence"
    ),
}

#: What each basis means, in plain words.
BASIS_TEXT: dict[str, str] = {
    Basis.EVIDENCE: "evidence of a business transaction",
    Basis.CONSENT: "the caller's prior consent",
    Basis.FORBIDDEN: "none: never recorded",
}

#: The general limitation period (five years); longer retention needs a
#: written justification in the policy.
MAX_RETENTION_DAYS = 1825


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


def _notice_reason(purpose_id: str, facts: CallFacts, policy: Policy) -> Reason | None:
    heard_interrupted = False
    for notice in policy.notices_covering(purpose_id):
        status = facts.notices.get(notice.id)
        if status is NoticeStatus.COMPLETE:
            return None
        if status is NoticeStatus.INTERRUPTED:
            if notice.accept_interrupted:
                return None
            heard_interrupted = True
    if heard_interrupted:
        return Reason.NOTICE_INTERRUPTED
    if facts.notices:
        return Reason.NOTICE_NOT_COVERING_PURPOSE
    return Reason.NOTICE_MISSING


_CONSENT_REASON = {
    Consent.NONE: Reason.CONSENT_MISSING,
    Consent.REFUSED: Reason.CONSENT_REFUSED,
    Consent.WITHDRAWN: Reason.CONSENT_WITHDRAWN,
}


def _reason(purpose_id: str, facts: CallFacts, policy: Policy) -> Reason | None:
    """Why this purpose does not justify recording, or None if it does."""
    purpose = policy.purposes.get(purpose_id)
    if purpose is None:
        return Reason.PURPOSE_UNKNOWN
    if purpose.basis is Basis.FORBIDDEN:
        return Reason.PURPOSE_FORBIDDEN
    notice_reason = _notice_reason(purpose_id, facts, policy)
    if notice_reason is not None:
        return notice_reason
    if purpose.basis is Basis.CONSENT and facts.consent is not Consent.GIVEN:
        return _CONSENT_REASON[facts.consent]
    if purpose.basis is Basis.EVIDENCE and facts.outcome is Outcome.NO_TRANSACTION:
        return Reason.NO_TRANSACTION
    return None


def decide(facts: CallFacts, policy: Policy) -> Decision:
    """Whether the call may be recorded, for which purposes, how long, and why not.

    Called again with changed facts mid-call, it gives the new set of purposes.
    """
    justifying: list[str] = []
    rejected: list[Rejection] = []
    for purpose_id in sorted(facts.purposes):
        reason = _reason(purpose_id, facts, policy)
        if reason is None:
            justifying.append(purpose_id)
        else:
            rejected.append(Rejection(purpose_id, reason))
    retentions = [
        days
        for days in (policy.purposes[purpose_id].retention_days for purpose_id in justifying)
        if days is not None
    ]
    return Decision(
        record=bool(justifying),
        purposes=tuple(justifying),
        rejected=tuple(rejected),
        retention_days=max(retentions) if retentions else None,
        policy=policy.label,
    )


def _status_text(status: NoticeStatus) -> str:
    return "played to the end" if status is NoticeStatus.COMPLETE else "cut short"


def explain(decision: Decision, policy: Policy, facts: CallFacts | None = None) -> str:
    """A short explanation of a decision that a data-protection officer can read."""
    lines: list[str] = []
    if facts is not None:
        notices = (
            ", ".join(
                f"{notice_id} ({_status_text(status)}"
                + ("" if notice_id in policy.notices else ", not in this policy")
                + ")"
                for notice_id, status in facts.notices.items()
            )
            or "none"
        )
        lines.append(
            f"Call: purposes {', '.join(sorted(facts.purposes)) or 'none'}; "
            f"notices {notices}; consent {facts.consent}; outcome {facts.outcome}."
        )
    if decision.record:
        lines.append(f"RECORD this call (policy {decision.policy}).")
        lines.append("Recorded for:")
        for purpose_id in decision.purposes:
            purpose = policy.purposes[purpose_id]
            lines.append(f"  {purpose_id} — {purpose.description}")
            lines.append(
                f"    basis: {BASIS_TEXT[purpose.basis]}; "
                f"its retention: {purpose.retention_days} days"
            )
        lines.append(
            f"Kept for {decision.retention_days} days after the call ends, then deleted."
        )
        evidence = [p for p in decision.purposes if policy.basis_of(p) is Basis.EVIDENCE]
        if evidence and facts is not None and facts.outcome is Outcome.UNKNOWN:
            lines.append("If the call ends with no transaction, the evidence purposes lapse;")
            lines.append("with no other purpose left, the recording is deleted at once.")
    else:
        lines.append(f"DO NOT RECORD this call (policy {decision.policy}).")
        if not decision.rejected:
            lines.append("No purpose was declared; recording needs a declared purpose.")
    if decision.rejected:
        lines.append("Not recorded for:")
        for rejection in decision.rejected:
            known = policy.purposes.get(rejection.purpose)
            about = f" — {known.description}" if known else ""
            lines.append(f"  {rejection.purpose}{about}")
            lines.append(f"    why: {REASON_TEXT[rejection.reason]}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Loading and validating a policy file


class PolicyError(UserError):
    """A policy file that cannot be used: the message names the file, the key,
    and what to do."""


_ID_RE = re.compile(r"[a-z][a-z0-9_-]*\Z")
_PROMPT_RE = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\Z")
_WILDCARD_CHARS = frozenset("*?%[]{}!^$+|\\")
# Words that would name a "record everything" switch or purpose.
_RECORD_ALL_WORDS = frozenset(
    {
        "all",
        "any",
        "always",
        "every",
        "everything",
        "every_call",
        "all_calls",
        "record_all",
        "record_all_calls",
        "record_every_call",
        "record_everything",
        "catch_all",
        "catchall",
        "default",
        "defaults",
        "default_purpose",
        "fallback",
        "wildcard",
    }
)

_TOP_KEYS = ("policy", "purposes", "notices")
_POLICY_KEYS = ("name", "version", "description")
_PURPOSE_KEYS = ("basis", "retention_days", "description", "justification")
_NOTICE_KEYS = ("covers", "prompt", "text", "accept_interrupted")

_INDISCRIMINATE = (
    "there is no setting to record every call: the law forbids indiscriminate "
    "recording; declare each purpose with its own basis, retention and notice instead"
)

_TOML_POSITION = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_TOML_TWICE = re.compile(r"^Cannot declare \((?P<path>.*)\) twice$")
_KEY_AT_LINE = re.compile(r"""^\s*(?P<key>[A-Za-z0-9_.'"\- ]+?)\s*=""")


def _is_record_all(key: str) -> bool:
    normalised = key.strip().lower().replace("-", "_")
    return normalised in _RECORD_ALL_WORDS or any(char in _WILDCARD_CHARS for char in key)


class _Validator:
    """Walks the parsed TOML and raises the first problem as one line."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> PolicyError:
        return PolicyError(f"{self.source}: {where}: {problem}")

    def check_keys(self, table: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        for key in table:
            path = f"{where}.{key}" if where else key
            if _is_record_all(key):
                raise self.fail(path, _INDISCRIMINATE)
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(
                    path,
                    f"unknown key; {hint}allowed here: {', '.join(allowed)}; "
                    "fix the spelling or remove it",
                )

    def table(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table ([{where}]), not {_kind(value)}")
        return value

    def text(self, table: Mapping[str, Any], key: str, where: str, *, required: bool) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(f"{where}.{key}", f'missing; add {key} = "…" to [{where}]')
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}", f'must be a non-empty quoted string, e.g. {key} = "…"')
        return value.strip()

    def ids(self, table: Mapping[str, Any], where: str) -> None:
        """Ids must look alike in the file, the dialplan and the log."""
        seen: dict[str, str] = {}
        for key in table:
            path = f"{where}.{key}"
            if _is_record_all(key):
                raise self.fail(path, _INDISCRIMINATE)
            folded = key.lower().replace("-", "_")
            if folded in seen:
                raise self.fail(
                    path,
                    f"duplicate id: differs from {seen[folded]!r} only by case or '-'/'_'; "
                    "keep one of them",
                )
            seen[folded] = key
            if not _ID_RE.match(key):
                raise self.fail(
                    path,
                    "invalid id: use lower-case letters, digits, '_' and '-', "
                    "starting with a letter (e.g. order, evidence-v1)",
                )

    def policy(self, data: Mapping[str, Any]) -> tuple[str, str]:
        if "policy" not in data:
            raise self.fail(
                "policy", 'missing table; add [policy] with name = "…" and version = "…"'
            )
        table = self.table(data["policy"], "policy")
        self.check_keys(table, "policy", _POLICY_KEYS)
        name = self.text(table, "name", "policy", required=True)
        version = self.text(table, "version", "policy", required=True)
        assert name is not None and version is not None
        return name, version

    def purpose(self, purpose_id: str, raw: Any) -> Purpose:
        where = f"purposes.{purpose_id}"
        table = self.table(raw, where)
        self.check_keys(table, where, _PURPOSE_KEYS)
        if "basis" not in table:
            raise self.fail(
                f"{where}.basis",
                'missing; add basis = "evidence", "consent" or "forbidden"',
            )
        try:
            basis = Basis(table["basis"])
        except (ValueError, TypeError):
            raise self.fail(
                f"{where}.basis",
                f"invalid basis {table['basis']!r}; use \"evidence\", \"consent\" or \"forbidden\"",
            ) from None
        description = self.text(table, "description", where, required=True)
        assert description is not None
        justification = self.text(table, "justification", where, required=False)
        retention = table.get("retention_days")
        if basis is Basis.FORBIDDEN:
            if retention is not None:
                raise self.fail(
                    f"{where}.retention_days",
                    "a forbidden purpose is never recorded, so it keeps nothing; "
                    "remove retention_days",
                )
            if justification is not None:
                raise self.fail(
                    f"{where}.justification",
                    "a forbidden purpose is never recorded, so there is no retention "
                    "to justify; remove justification",
                )
            return Purpose(purpose_id, basis, None, description, None)
        if retention is None:
            raise self.fail(
                f"{where}.retention_days",
                f"missing; a purpose with basis {basis.value!r} records, so it needs "
                "retention_days = <days> (a positive whole number)",
            )
        if isinstance(retention, bool) or not isinstance(retention, int) or retention <= 0:
            raise self.fail(
                f"{where}.retention_days",
                f"must be a positive whole number of days, not {retention!r}",
            )
        if retention > MAX_RETENTION_DAYS and justification is None:
            raise self.fail(
                f"{where}.retention_days",
                f"{retention} days is longer than the general limitation period "
                f"({MAX_RETENTION_DAYS} days); shorten it, or add "
                'justification = "…" saying why the recording must be kept that long',
            )
        return Purpose(purpose_id, basis, retention, description, justification)

    def notice(self, notice_id: str, raw: Any, purposes: Mapping[str, Purpose]) -> Notice:
        where = f"notices.{notice_id}"
        table = self.table(raw, where)
        self.check_keys(table, where, _NOTICE_KEYS)
        covers = table.get("covers")
        if covers is None:
            raise self.fail(
                f"{where}.covers",
                'missing; list the purposes this notice tells the caller about, '
                'e.g. covers = ["order"]',
            )
        if isinstance(covers, str) and _is_record_all(covers):
            raise self.fail(f"{where}.covers", _INDISCRIMINATE)
        if not isinstance(covers, list) or not covers or not all(isinstance(c, str) for c in covers):
            raise self.fail(
                f"{where}.covers",
                'must be a non-empty list of purpose ids, e.g. covers = ["order"]',
            )
        for purpose_id in covers:
            if _is_record_all(purpose_id):
                raise self.fail(f"{where}.covers", f"{purpose_id!r}: {_INDISCRIMINATE}")
            purpose = purposes.get(purpose_id)
            if purpose is None:
                raise self.fail(
                    f"{where}.covers",
                    f"unknown purpose {purpose_id!r}; declare [purposes.{purpose_id}] "
                    "or remove it from covers",
                )
            if purpose.basis is Basis.FORBIDDEN:
                raise self.fail(
                    f"{where}.covers",
                    f"purpose {purpose_id!r} is forbidden and is never recorded, so no "
                    "notice may announce recording for it; remove it from covers",
                )
        prompt = self.text(table, "prompt", where, required=True)
        assert prompt is not None
        if not _PROMPT_RE.match(prompt):
            raise self.fail(
                f"{where}.prompt",
                f"{prompt!r} is not an Asterisk sound name; use letters, digits, '_', "
                "'-' and '/', without extension (e.g. recguard/evidence-v1)",
            )
        text = self.text(table, "text", where, required=True)
        assert text is not None
        text_path = PurePosixPath(text)
        if text_path.is_absolute() or ".." in text_path.parts or "\\" in text:
            raise self.fail(
                f"{where}.text",
                f"{text!r} must be a path relative to the policy file's folder, "
                "inside it (e.g. prompts/sl/evidence-v1.txt)",
            )
        accept = table.get("accept_interrupted", False)
        if not isinstance(accept, bool):
            raise self.fail(
                f"{where}.accept_interrupted", f"must be true or false, not {accept!r}"
            )
        return Notice(notice_id, frozenset(covers), prompt, text, accept)

    def run(self, data: Mapping[str, Any]) -> Policy:
        self.check_keys(data, "", _TOP_KEYS)
        name, version = self.policy(data)
        if "purposes" not in data or not data["purposes"]:
            raise self.fail(
                "purposes",
                "no purposes; declare each one as [purposes.<id>] with its basis",
            )
        raw_purposes = self.table(data["purposes"], "purposes")
        self.ids(raw_purposes, "purposes")
        purposes = {pid: self.purpose(pid, raw) for pid, raw in raw_purposes.items()}
        raw_notices = self.table(data.get("notices", {}), "notices")
        self.ids(raw_notices, "notices")
        notices = {nid: self.notice(nid, raw, purposes) for nid, raw in raw_notices.items()}
        covered = {pid for notice in notices.values() for pid in notice.covers}
        for purpose in purposes.values():
            if purpose.records and purpose.id not in covered:
                raise self.fail(
                    f"purposes.{purpose.id}",
                    f"no notice covers this {purpose.basis.value} purpose, so the caller "
                    "could never be told and it could never be recorded; add it to a "
                    "notice's covers, or make its basis \"forbidden\"",
                )
        return Policy(name, version, purposes, notices, self.source)


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
    }.get(type(value), type(value).__name__)


def _toml_error(source: str, text: str, error: tomllib.TOMLDecodeError) -> PolicyError:
    """One line from tomllib's message, naming the spot and what is wrong."""
    message = str(error)
    if message.endswith(" (at end of document)"):
        problem = message.removesuffix(" (at end of document)")
        return PolicyError(
            f"{source}: end of file: invalid TOML: {problem}; something was left open "
            "(a string, list or table header): close it"
        )
    match = _TOML_POSITION.match(message)
    if not match:
        return PolicyError(f"{source}: invalid TOML: {message}; fix the syntax")
    line, column, problem = int(match["line"]), match["col"], match["msg"]
    where = f"{source}: line {line}, column {column}"
    twice = _TOML_TWICE.match(problem)
    if twice:
        parts = re.findall(r"'([^']*)'", twice["path"])
        table = ".".join(parts)
        return PolicyError(
            f"{where}: duplicate id: [{table}] is declared twice; each table and id may "
            "appear only once: merge the two or rename one"
        )
    if problem == "Cannot overwrite a value":
        lines = text.splitlines()
        key_match = _KEY_AT_LINE.match(lines[line - 1]) if 0 < line <= len(lines) else None
        key = f" {key_match['key'].strip()!r}" if key_match else ""
        return PolicyError(
            f"{where}: duplicate key{key}: it is already set in this table; keep only one"
        )
    return PolicyError(f"{where}: invalid TOML: {problem}; fix the syntax there")


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate the text of a policy file. Pure: ``source`` only names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _toml_error(source, text, error) from None
    return _Validator(source).run(data)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; raises ``PolicyError`` with one clear line."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise PolicyError(
            f"{source}: no such policy file; give --policy PATH or set RECGUARD_POLICY"
        ) from None
    except OSError as error:
        raise PolicyError(f"{source}: cannot read the policy file: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PolicyError(
            f"{source}: not UTF-8 text (byte {error.start}); save the policy file as UTF-8"
        ) from None
    return parse_policy(text, source)
