"""What every logged request on recordings (a purge, a hold, an export, an
erasure) establishes first: who asks, for which recording, and why.

The answers go to the ledger's access log, so they are checked here once:
the actor is the real OS user, a recording id is one recguard made, and a
reason, where the law wants one, is not blank.
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Callable, Mapping
from datetime import datetime

from .display import quoted
from .errors import UserError
from .ledger import Ledger, Recording
from .storage import is_recording_id

# The real time: what is done is stamped with it (a purge's ``now`` may be moved, this never is).
Clock = Callable[[], datetime]

_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")


def current_actor(environ: Mapping[str, str] | None = None) -> str:
    """The OS user running recguard, and through sudo the user who ran sudo:
    ``alice``, ``root (sudo by alice)``.

    SUDO_USER is an environment variable anyone can set, so it is only ever
    added to the real user name, never put in its place.
    """
    env = os.environ if environ is None else environ
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = f"uid {uid}"
    sudo = _UNPRINTABLE.sub("", env.get("SUDO_USER", ""))[:64]
    if sudo and sudo != user:
        return f"{user} (sudo by {sudo})"
    return user


def check_recording_id(text: str) -> str:
    """A recording id as the guard makes them (uuid4 hex), or UserError."""
    value = text.strip().lower()
    if not is_recording_id(value):
        raise UserError(
            f"{quoted(text)} is not a recording id (32 hex digits); "
            "find ids with: recguard subject find --caller NUMBER"
        )
    return value


def get_recording(ledger: Ledger, recording_id: str) -> Recording:
    rec = ledger.recording(check_recording_id(recording_id))
    if rec is None:
        raise UserError(f"no recording {recording_id} in the ledger {ledger.location}")
    return rec


def require_reason(reason: str | None, what: str) -> str:
    if reason is None or not reason.strip():
        raise UserError(f"{what} needs a reason: add --reason \"...\" (it goes to the access log)")
    return reason.strip()


def moment(value: datetime | None) -> str:
    """A time as refusals name it: when a hold was placed, a recording deleted."""
    return "?" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")
