"""The lawful-basis policy: from the facts of a call and a policy, whether the
call may be recorded, for which purposes, for how long, and why not.

Pure except ``load_policy``, which reads the file. Imports point one way:
``model`` (the data) depends on nothing; ``rules`` (``decide``), ``explain``
(plain words) and ``_parse`` (the TOML file) depend on ``model`` only, and
nothing here depends on the rest of the package but ``errors``.
"""

from __future__ import annotations

from ._parse import PolicyError, load_policy, parse_policy
from .explain import BASIS_TEXT, REASON_TEXT, explain
from .model import (
    MAX_ID_LENGTH,
    MAX_JUSTIFIED_RETENTION_DAYS,
    MAX_RETENTION_DAYS,
    REASON_CODES,
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
)
from .rules import decide

__all__ = [
    "BASIS_TEXT",
    "Basis",
    "CallFacts",
    "Consent",
    "Decision",
    "FrozenMap",
    "MAX_ID_LENGTH",
    "MAX_JUSTIFIED_RETENTION_DAYS",
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
