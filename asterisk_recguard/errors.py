"""Errors that reach the user as one clear line, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: bad input, bad configuration, a missing tool.

    The message says what is wrong, where, and how to fix it. The CLI prints it
    on one line and exits with ``exit_code`` (2 by default, as for usage errors).
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
