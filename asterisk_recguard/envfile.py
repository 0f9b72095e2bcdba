"""Where the raw RECGUARD_* values come from: the process environment and an
env file, each value with its source, before any validation.

Sources, highest precedence first: the process environment, then the env file
(read with python-dotenv's ``dotenv_values`` without interpolation, so a ``$``
in a password is taken literally, and without touching ``os.environ``). The
env file is the one passed in, else the one named by ``RECGUARD_ENV_FILE``,
else :data:`DEFAULT_ENV_FILE` where an installation puts it, if it is there,
else none. It is read as text first, through ``safefile`` (a regular file of a
sane size only), and python-dotenv is handed that text as a stream.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from .errors import UserError
from .safefile import decode_utf8, open_regular, read_open

__all__ = [
    "DEFAULT_ENV_FILE",
    "ENVIRONMENT",
    "ENV_FILE_VARIABLE",
    "PREFIX",
    "SettingsError",
    "raw_value",
    "read_sources",
]

PREFIX = "RECGUARD_"
MAX_ENV_FILE_BYTES = 1 << 20
ENV_FILE_VARIABLE = "RECGUARD_ENV_FILE"
# Where the README installs it: found without being named, so that an
# installed `recguard purge` or `recguard audit` needs no --env-file.
DEFAULT_ENV_FILE = Path("/etc/recguard/recguard.env")
ENVIRONMENT = "the environment"  # the source named for environment values


class SettingsError(UserError):
    """The configuration cannot be used; the message says which key, where
    it came from, what is wrong and how to fix it."""


def _read_env_file(path: Path, origin: str) -> tuple[dict[str, str | None], list[str]]:
    """Values and warnings of one env file."""
    where = f"env file {path} ({origin})"
    fd = open_regular(
        path, "env file", where=where, error=SettingsError,
        missing=f"{where} does not exist; create it from "
                "config/recguard.env.example or point to another with --env-file",
    )
    try:
        st = os.fstat(fd)
        data = read_open(fd, path, "env file", MAX_ENV_FILE_BYTES, where=where, error=SettingsError)
    finally:
        os.close(fd)
    text = decode_utf8(data, path, "env file", where=where, error=SettingsError)

    warnings: list[str] = []
    if st.st_mode & 0o077:
        warnings.append(
            f"env file {path} holds passwords and is accessible by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}"
        )
    problems = [
        f"{path} line {b.original.line}: cannot parse {b.original.string.strip()[:40]!r}; "
        "write KEY=value, quoting values that contain spaces or #"
        for b in parse_stream(io.StringIO(text))
        if b.error
    ]
    if problems:
        # Stop here: the keys on those lines would otherwise be reported as
        # missing, which hides the real mistake.
        raise SettingsError(problems[0] if len(problems) == 1 else
                            f"{len(problems)} unparsable lines in env file {path}:\n"
                            + "\n".join(f"  {p}" for p in problems))
    # interpolate=False keeps a "$" in a password literal.
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return values, warnings


def _choose_env_file(
    env_file: str | Path | None, environ: Mapping[str, str]
) -> tuple[Path | None, str]:
    if env_file is not None:
        return Path(env_file).expanduser(), "given with --env-file"
    named = environ.get(ENV_FILE_VARIABLE)
    if named:
        return Path(named).expanduser(), f"named by {ENV_FILE_VARIABLE}"
    try:
        DEFAULT_ENV_FILE.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None, ""
    except OSError:
        pass  # there, but not ours to see: reading it says so in one line
    return DEFAULT_ENV_FILE, "the default"


def read_sources(
    env_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, tuple[str | None, str]], Path | None, list[str]]:
    """The raw RECGUARD_* values with where each came from, unvalidated.

    Returns ``(values, env_file, warnings)`` where ``values`` maps a full key
    to ``(raw value or None, source)``; the source is the env file path or
    ``"the environment"``. Raises SettingsError only if the env file itself is
    missing, unreadable or unparsable. Used by :func:`.settings.load_settings`
    and by commands (``recguard logs``) that need one path even when the rest
    of the configuration is incomplete.
    """
    env = os.environ if environ is None else environ
    path, origin = _choose_env_file(env_file, env)
    merged: dict[str, tuple[str | None, str]] = {}
    warnings: list[str] = []
    if path is not None:
        values, warnings = _read_env_file(path, origin)
        for key, value in values.items():
            if key.startswith(PREFIX):
                merged[key] = (value, str(path))
    for key, value in env.items():
        # An empty variable (`RECGUARD_X= recguard ...`) does not hide the file's value.
        if key.startswith(PREFIX) and value != "":
            merged[key] = (value, ENVIRONMENT)
    return merged, path, warnings


def raw_value(
    key: str, env_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """One raw RECGUARD_* value (environment over env file), or None if unset."""
    values, _, _ = read_sources(env_file, environ)
    value, _ = values.get(key, (None, ""))
    return value or None
