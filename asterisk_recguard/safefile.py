"""Reading a file that a person or a setting names (a policy, a key file, an
env file, a prompt text, the decision log): only a regular file, never more
than a limit, and every failure one line, never a hang or a traceback.

A FIFO would block the open until a writer came, a device such as /dev/zero
never ends, and opening some devices has side effects; so the path is checked
before it is opened, opened without blocking, and the open descriptor checked
again (the name may have been swapped in between). Symbolic links are
followed: a configuration linked from elsewhere is usual, and the checks apply
to what is opened. The size is counted as it is read, since the size a file
claims (``/proc``) or had a moment ago is not to be trusted.
"""

from __future__ import annotations

import os
import stat

from .errors import UserError

__all__ = ["decode_utf8", "open_regular", "read_open", "read_regular_file"]

_CHUNK = 1 << 16
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _where(path: str | os.PathLike[str], what: str, where: str | None) -> str:
    return where if where is not None else f"{what} {path}"


def open_regular(
    path: str | os.PathLike[str],
    what: str,
    *,
    missing: str | None,
    where: str | None = None,
    error: type[UserError] = UserError,
    flags: int = os.O_RDONLY,
) -> int:
    """Open ``path`` (``what`` names it in messages, e.g. "key file") and
    return the descriptor, or raise ``error`` with one line.

    ``missing`` is the whole message for a file that does not exist (it says
    what to create); with None, FileNotFoundError is raised as it is, for a
    caller to whom a missing file is not an error. Messages start with
    ``where``, by default "<what> <path>".
    """
    place = _where(path, what, where)
    try:
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            raise _not_regular(place, what, before.st_mode, error)
        fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        if missing is None:
            raise
        raise error(missing) from None
    except OSError as exc:
        raise _unreadable(place, what, exc, error) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(place, what, mode, error)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_open(
    fd: int,
    path: str | os.PathLike[str],
    what: str,
    limit_bytes: int,
    *,
    where: str | None = None,
    error: type[UserError] = UserError,
) -> bytes:
    """The whole content of an open regular file, from its start, or ``error``
    if it holds more than ``limit_bytes``."""
    place = _where(path, what, where)
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            chunk = os.pread(fd, min(_CHUNK, limit_bytes + 1 - size), size)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit_bytes:
                raise error(
                    f"{place}: is larger than {limit_bytes} bytes, too large for a {what}; "
                    "check that the path names the right file"
                )
            chunks.append(chunk)
    except OSError as exc:
        raise _unreadable(place, what, exc, error) from None


def read_regular_file(
    path: str | os.PathLike[str],
    what: str,
    limit_bytes: int,
    *,
    missing: str,
    where: str | None = None,
    error: type[UserError] = UserError,
) -> str:
    """The UTF-8 text of the regular file at ``path``, at most ``limit_bytes``;
    anything else is ``error`` with one line (see :func:`open_regular`)."""
    fd = open_regular(path, what, missing=missing, where=where, error=error)
    try:
        data = read_open(fd, path, what, limit_bytes, where=where, error=error)
    finally:
        os.close(fd)
    return decode_utf8(data, path, what, where=where, error=error)


def decode_utf8(
    data: bytes,
    path: str | os.PathLike[str],
    what: str,
    *,
    where: str | None = None,
    error: type[UserError] = UserError,
) -> str:
    """The bytes read from a file as UTF-8 text, or ``error`` naming the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{_where(path, what, where)}: not UTF-8 text (byte {exc.start}); "
            f"save the {what} as UTF-8"
        ) from None


def _not_regular(place: str, what: str, mode: int, error: type[UserError]) -> UserError:
    return error(f"{place}: is {_kind(mode)}, not a regular file; give the path of the {what} itself")


def _unreadable(place: str, what: str, exc: OSError, error: type[UserError]) -> UserError:
    return error(f"{place}: cannot read the {what}: {exc.strerror or exc}")
