"""Key files for encryption at rest: reading one (refusing loose modes),
creating one, rotating in a new key, and the Keyring of master keys by id.

A key file holds one ``<key-id> <base64 of 32 bytes>`` line per key; the last
key encrypts new recordings, every key decrypts the recordings made with it.
The vault (``vault.py``) builds on this module, never the other way round.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import fcntl
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import UserError
from .safefile import open_regular, read_open

KEY_SIZE = 32
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MAX_KEY_FILE_BYTES = 1 << 20
_KEY_FILE_PREAMBLE = (
    "# recguard encryption keys for recordings at rest, one per line: <key-id> <base64 of 32 bytes>\n"
    "# The last key encrypts new recordings; every key decrypts the recordings made with it.\n"
    "# Never remove a key while recordings encrypted with it are kept. Keep this file mode 600.\n"
)


class VaultError(UserError):
    """A key file or vault file problem, reported to the user in one line."""


class Keyring:
    """The master keys by id; the last one is the active key for new encryptions."""

    def __init__(self, keys: Iterable[tuple[str, bytes]], source: str = "<memory>") -> None:
        self.source = source
        self._keys: dict[str, bytes] = {}
        for key_id, key in keys:
            if not isinstance(key_id, str) or not KEY_ID_PATTERN.fullmatch(key_id):
                raise ValueError(
                    f"{source}: invalid key id {key_id!r}; use [A-Za-z0-9_.-], 1 to 64 characters"
                )
            if len(key) != KEY_SIZE:
                raise ValueError(f"{source}: key {key_id} is {len(key)} bytes, must be {KEY_SIZE}")
            if key_id in self._keys:
                raise ValueError(f"{source}: duplicate key id {key_id}")
            self._keys[key_id] = bytes(key)
        if not self._keys:
            raise ValueError(f"{source}: no keys")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Keyring:
        """Read a key file, refusing one that group or others can access."""
        path = Path(path)
        fd = _open_key_file(path, os.O_RDONLY)
        try:
            # A shared lock so that we never read a key line that rotate() is still writing.
            fcntl.flock(fd, fcntl.LOCK_SH)
            data = _read_key_file(fd, path)
        finally:
            os.close(fd)
        return cls(_parse_key_file(data, path), source=str(path))

    @property
    def active_key_id(self) -> str:
        return next(reversed(self._keys))

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        # Ids only: key material must never reach a log or a traceback.
        return f"Keyring(source={self.source!r}, key_ids={self.key_ids!r}, active={self.active_key_id!r})"

    def _key(self, key_id: str) -> bytes:
        return self._keys[key_id]


def _open_key_file(path: Path, flags: int) -> int:
    # Only a regular file, opened without blocking: a FIFO must not hang the command.
    return open_regular(
        path, "key file", flags=flags, error=VaultError,
        missing=f"key file {path} does not exist; create it with: "
                f"recguard keys generate --key-file {path}",
    )


def _key_file_error(path: Path, action: str, exc: OSError) -> VaultError:
    """One line for a failed ``action`` on a key file; an existing file says what to run."""
    if action == "create" and isinstance(exc, FileExistsError):
        return VaultError(
            f"key file {path} already exists; add a key with: recguard keys rotate --key-file {path}"
        )
    return VaultError(f"cannot {action} key file {path}: {exc.strerror}")


def generate_key_file(path: str | os.PathLike[str]) -> str:
    """Create a key file (mode 600) holding one new key; return the key's id.

    Refuses to overwrite an existing file: losing a key loses every recording
    encrypted with it.
    """
    path = Path(path)
    key_id = _new_key_id(())
    content = (_KEY_FILE_PREAMBLE + _key_line(key_id)).encode("ascii")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _key_file_error(path, "create", exc) from None
    try:
        try:
            os.fchmod(fd, 0o600)
            _write_all(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        # link() fails if the name exists, so a complete file appears under the
        # final name at once, and never over an existing one.
        os.link(tmp, path)
    except OSError as exc:
        raise _key_file_error(path, "create", exc) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return key_id


def rotate(path: str | os.PathLike[str]) -> str:
    """Append a new key to an existing key file; it becomes the active key. Return its id.

    The file is appended to in place, so it keeps its inode, owner and mode,
    and the old lines are never rewritten. The exclusive lock keeps
    ``Keyring.load`` (shared lock) from reading a half-written line.
    """
    path = Path(path)
    fd = _open_key_file(path, os.O_RDWR | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = _read_key_file(fd, path)
        existing = [key_id for key_id, _key in _parse_key_file(data, path, allow_empty=True)]
        key_id = _new_key_id(existing)
        line = _key_line(key_id)
        if data and not data.endswith(b"\n"):
            line = "\n" + line
        try:
            _write_all(fd, line.encode("ascii"))
            os.fsync(fd)
        except OSError as exc:
            raise _key_file_error(path, "write", exc) from None
    finally:
        os.close(fd)
    return key_id


def _read_key_file(fd: int, path: Path) -> bytes:
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077:
        raise VaultError(
            f"key file {path} is accessible by group or others (mode {mode:04o}); run: chmod 600 {path}"
        )
    return read_open(fd, path, "key file", _MAX_KEY_FILE_BYTES, error=VaultError)


def _parse_key_file(
    data: bytes, path: Path, *, allow_empty: bool = False
) -> list[tuple[str, bytes]]:
    """Parse ``<key-id> <base64>`` lines; errors name the file and line, never the key."""
    keys: list[tuple[str, bytes]] = []
    first_line: dict[str, int] = {}
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise VaultError(f"{where}: not ASCII; expected '<key-id> <base64 key>'") from None
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise VaultError(
                f"{where}: expected '<key-id> <base64 key>', found {len(fields)} fields"
            )
        key_id, encoded = fields
        if not KEY_ID_PATTERN.fullmatch(key_id):
            raise VaultError(
                f"{where}: invalid key id; use letters, digits and _.- (1 to 64 characters)"
            )
        if key_id in first_line:
            raise VaultError(
                f"{where}: duplicate key id {key_id} (first on line {first_line[key_id]})"
            )
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise VaultError(f"{where}: key {key_id} is not valid base64") from None
        if len(key) != KEY_SIZE:
            raise VaultError(
                f"{where}: key {key_id} is {len(key)} bytes; AES-256 needs exactly {KEY_SIZE}"
            )
        first_line[key_id] = lineno
        keys.append((key_id, key))
    if not keys and not allow_empty:
        raise VaultError(
            f"key file {path} holds no keys; add one with: recguard keys rotate --key-file {path}"
        )
    return keys


def _new_key_id(existing: Iterable[str]) -> str:
    taken = set(existing)
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
    while True:
        key_id = f"k-{today}-{secrets.token_hex(3)}"
        if key_id not in taken:
            return key_id


def _key_line(key_id: str) -> str:
    return f"{key_id} {base64.b64encode(secrets.token_bytes(KEY_SIZE)).decode('ascii')}\n"


# --- durable writes ------------------------------------------------------------


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(directory: Path) -> None:
    # Makes the new name durable, not just the data.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
