"""What the ledger raises when a change is refused or a record is missing."""

from __future__ import annotations

from ..lifecycle import InvalidTransition

__all__ = ["InvalidTransition", "RecordingHeld", "UnknownRecord"]


class RecordingHeld(InvalidTransition):
    """The recording is under legal hold and must not be deleted."""


class UnknownRecord(KeyError):
    """No call or recording with that id."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""
