"""Encryption at rest for recordings: AES-256-GCM in authenticated chunks,
under keys from a key file that supports rotation.

Why our own framing
-------------------

The ``cryptography`` package offers AES-GCM only as one-shot
``AESGCM.encrypt(nonce, data, aad)`` over a buffer in memory; it has no
streaming GCM file format. An hour of 8 kHz 16-bit audio is about 58 MB and
recordings can be longer, so sealing a file in one piece would hold it all in
memory, and decrypting would release plaintext before the tag at the end is
checked. We therefore cut the file into chunks and seal each one separately,
in the "online authenticated encryption" construction of Hoang, Reyhanitabar,
Rogaway and Vizár (2015), the one Google Tink's AES-GCM-HKDF streaming AEAD
uses. Memory stays at a few chunks whatever the file size, and no plaintext is
ever released before its chunk has authenticated.

File format (version 1)
-----------------------

Header::

    magic         8 bytes   b"RGVAULT1"
    version       1 byte    1
    key id        1 byte length, then that many ASCII bytes ([A-Za-z0-9_.-]{1,64})
    salt         32 bytes   random, per file
    nonce prefix  7 bytes   random, per file
    chunk size    4 bytes   big-endian plaintext bytes per chunk

then the chunks, each ``AESGCM(file_key).encrypt(nonce, plaintext, header)``,
that is the chunk's ciphertext followed by its 16-byte tag, where

* ``file_key = HKDF-SHA256(master key of <key id>, salt, info)``,
* ``nonce = nonce prefix (7) || chunk index (4, big-endian) || last flag (1)``,
* every chunk but the last holds exactly ``chunk size`` plaintext bytes; the
  last holds 0 to ``chunk size`` bytes and has last flag 1. An empty
  plaintext is one empty final chunk.

What each part buys:

* The whole header is the associated data of every chunk, so changing the
  magic, version, key id, salt, prefix or chunk size fails authentication.
* The chunk index in the nonce makes reordering, dropping or duplicating
  chunks fail; the last flag makes truncation at a chunk boundary and
  appended chunks fail; the per-file salt and prefix make a chunk moved from
  another file fail.
* The per-file key from HKDF is our addition to the bare 7-byte-prefix
  scheme, as in Tink. With the master key used directly, GCM nonces would be
  unique only as long as no two files drew the same 56-bit prefix; NIST
  SP 800-38D asks for a collision chance below 2^-32, which 56 random bits
  give for only about 6,000 files per key -- a call centre's week. A nonce
  collision under one GCM key reveals the XOR of two recordings and lets
  an attacker forge tags. With a 256-bit salt per file, each file has its own
  key and the limit disappears.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import fcntl
import hashlib
import os
import re
import secrets
import stat
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import UserError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAGIC",
    "MAX_CHUNK_SIZE",
    "DecryptionResult",
    "EncryptionResult",
    "IntegrityError",
    "Keyring",
    "VaultError",
    "decrypt_file",
    "encrypt_file",
    "generate_key_file",
    "rotate",
    "verify_file",
]

MAGIC = b"RGVAULT1"
FORMAT_VERSION = 1
KEY_SIZE = 32
SALT_SIZE = 32
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
DEFAULT_CHUNK_SIZE = 1 << 20
# Bounds what a hostile header can make us allocate before it is authenticated.
MAX_CHUNK_SIZE = 64 << 20
_MAX_CHUNKS = 1 << 32  # the 4-byte chunk index in the nonce

_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HKDF_INFO = b"recguard vault v1 file key"
_MAX_KEY_FILE_BYTES = 1 << 20
_KEY_FILE_PREAMBLE = (
    "# recguard encryption keys for recordings at rest, one per line: <key-id> <base64 of 32 bytes>\n"
    "# The last key encrypts new recordings; every key decrypts the recordings made with it.\n"
    "# Never remove a key while recordings encrypted with it are kept. Keep this file mode 600.\n"
)


class VaultError(UserError):
    """A key file or vault file problem, reported to the user in one line."""


class IntegrityError(VaultError):
    """A vault file failed authentication or is not a well-formed vault file."""


@dataclass(frozen=True)
class EncryptionResult:
    key_id: str
    plaintext_sha256: str
    plaintext_size: int
    ciphertext_size: int


@dataclass(frozen=True)
class DecryptionResult:
    key_id: str
    sha256: str
    size: int


class Keyring:
    """The master keys by id; the last one is the active key for new encryptions."""

    def __init__(self, keys: Iterable[tuple[str, bytes]], source: str = "<memory>") -> None:
        self.source = source
        self._keys: dict[str, bytes] = {}
        for key_id, key in keys:
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
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
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except FileNotFoundError:
        raise VaultError(
            f"key file {path} does not exist; create it with: recguard keys generate --key-file {path}"
        ) from None
    except OSError as exc:
        raise VaultError(f"cannot open key file {path}: {exc.strerror}") from None


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
        raise VaultError(f"cannot create key file {path}: {exc.strerror}") from None
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
    except FileExistsError:
        raise VaultError(
            f"key file {path} already exists; add a key with: recguard keys rotate --key-file {path}"
        ) from None
    except OSError as exc:
        raise VaultError(f"cannot create key file {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(path.parent)
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
            raise VaultError(f"cannot write key file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return key_id


def encrypt_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    keyring: Keyring,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> EncryptionResult:
    """Encrypt ``src`` to ``dst`` with the keyring's active key.

    ``dst`` appears atomically (mode 600): it is either absent, or the
    previous file, or the complete ciphertext, fsynced.
    """
    src, dst = Path(src), Path(dst)
    _check_chunk_size(chunk_size)
    try:
        with open(src, "rb") as fin, atomic_output(dst) as fout:
            return _encrypt_stream(fin, fout, keyring, chunk_size)
    except OSError as exc:
        raise VaultError(f"cannot encrypt {src} to {dst}: {_os_reason(exc)}") from None


def decrypt_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    keyring: Keyring,
) -> DecryptionResult:
    """Decrypt ``src`` to ``dst``; ``dst`` appears only if every chunk authenticated.

    Raises IntegrityError naming the file and what failed; the partial
    plaintext is removed and an existing ``dst`` is left untouched. OS errors
    (unreadable source, full disk) raise VaultError.
    """
    src, dst = Path(src), Path(dst)
    try:
        with open(src, "rb") as fin, atomic_output(dst) as fout:
            return _decrypt_stream(fin, fout.write, keyring, src)
    except OSError as exc:
        raise VaultError(f"cannot decrypt {src} to {dst}: {_os_reason(exc)}") from None


def verify_file(src: str | os.PathLike[str], keyring: Keyring) -> DecryptionResult:
    """Authenticate every chunk of ``src`` without writing plaintext anywhere."""
    src = Path(src)
    try:
        with open(src, "rb") as fin:
            return _decrypt_stream(fin, None, keyring, src)
    except OSError as exc:
        raise VaultError(f"cannot verify {src}: {_os_reason(exc)}") from None


# --- streaming ---------------------------------------------------------------


def _encrypt_stream(
    fin: BinaryIO, fout: BinaryIO, keyring: Keyring, chunk_size: int
) -> EncryptionResult:
    key_id = keyring.active_key_id
    salt = os.urandom(SALT_SIZE)
    prefix = os.urandom(NONCE_PREFIX_SIZE)
    header = _pack_header(key_id, salt, prefix, chunk_size)
    aead = AESGCM(_file_key(keyring._key(key_id), salt))
    fout.write(header)
    written = len(header)
    digest = hashlib.sha256()
    size = 0
    index = 0
    chunk = _read_full(fin, chunk_size)
    while True:
        # Read one chunk ahead: the final chunk is only known when the next read is empty.
        following = _read_full(fin, chunk_size) if len(chunk) == chunk_size else b""
        last = not following
        if index >= _MAX_CHUNKS:
            raise VaultError(f"file too large for chunk size {chunk_size}")
        sealed = aead.encrypt(_nonce(prefix, index, last), chunk, header)
        fout.write(sealed)
        digest.update(chunk)
        size += len(chunk)
        written += len(sealed)
        if last:
            break
        chunk = following
        index += 1
    return EncryptionResult(key_id, digest.hexdigest(), size, written)


def _decrypt_stream(
    fin: BinaryIO,
    sink: Callable[[bytes], object] | None,
    keyring: Keyring,
    name: Path,
) -> DecryptionResult:
    header, key_id, salt, prefix, chunk_size = _read_header(fin, keyring, name)
    aead = AESGCM(_file_key(keyring._key(key_id), salt))
    block_size = chunk_size + TAG_SIZE
    digest = hashlib.sha256()
    size = 0
    index = 0
    offset = len(header)
    block = _read_full(fin, block_size)
    while True:
        if index >= _MAX_CHUNKS:
            raise IntegrityError(f"{name}: more chunks than the format allows")
        if len(block) < TAG_SIZE:
            raise IntegrityError(
                f"{name}: truncated: the file ends inside chunk {index} (at byte {offset + len(block)}), "
                "before the final chunk"
            )
        following = _read_full(fin, block_size) if len(block) == block_size else b""
        last = not following
        try:
            plain = aead.decrypt(_nonce(prefix, index, last), block, header)
        except InvalidTag:
            raise _diagnose(
                aead, prefix, index, last, block, header, offset, key_id, name
            ) from None
        digest.update(plain)
        size += len(plain)
        if sink is not None:
            sink(plain)
        if last:
            break
        offset += len(block)
        block = following
        index += 1
    return DecryptionResult(key_id, digest.hexdigest(), size)


def _diagnose(
    aead: AESGCM,
    prefix: bytes,
    index: int,
    last: bool,
    block: bytes,
    header: bytes,
    offset: int,
    key_id: str,
    name: Path,
) -> IntegrityError:
    """Say why chunk ``index`` failed: a chunk that authenticates with the
    other last-flag shows truncation or appended data rather than damage."""
    try:
        aead.decrypt(_nonce(prefix, index, not last), block, header)
    except InvalidTag:
        return IntegrityError(
            f"{name}: authentication failed at chunk {index} (byte {offset}): "
            f"the file was modified or truncated, or key {key_id} is not the key it was encrypted with"
        )
    if last:
        return IntegrityError(
            f"{name}: truncated: the file ends after chunk {index}, which is not the final chunk"
        )
    return IntegrityError(
        f"{name}: unexpected data after the final chunk {index} (byte {offset + len(block)})"
    )


# --- format ------------------------------------------------------------------


def _pack_header(key_id: str, salt: bytes, prefix: bytes, chunk_size: int) -> bytes:
    raw_id = key_id.encode("ascii")
    return b"".join(
        (
            MAGIC,
            bytes((FORMAT_VERSION, len(raw_id))),
            raw_id,
            salt,
            prefix,
            struct.pack(">I", chunk_size),
        )
    )


def _read_header(
    fin: BinaryIO, keyring: Keyring, name: Path
) -> tuple[bytes, str, bytes, bytes, int]:
    fixed = _read_full(fin, len(MAGIC) + 2)
    if not fixed:
        raise IntegrityError(f"{name}: empty file, not a recguard vault file")
    if fixed[: len(MAGIC)] != MAGIC[: len(fixed)]:
        raise IntegrityError(f"{name}: not a recguard vault file (bad magic)")
    if len(fixed) < len(MAGIC) + 2:
        raise IntegrityError(f"{name}: truncated header")
    version, id_len = fixed[len(MAGIC)], fixed[len(MAGIC) + 1]
    if version != FORMAT_VERSION:
        raise IntegrityError(
            f"{name}: unsupported vault format version {version} (this recguard reads {FORMAT_VERSION})"
        )
    rest = _read_full(fin, id_len + SALT_SIZE + NONCE_PREFIX_SIZE + 4)
    if len(rest) < id_len + SALT_SIZE + NONCE_PREFIX_SIZE + 4:
        raise IntegrityError(f"{name}: truncated header")
    raw_id = rest[:id_len]
    # Checked before it goes into any message: the header is not yet authenticated.
    if not all(0x20 < byte < 0x7F for byte in raw_id) or not _KEY_ID.fullmatch(
        raw_id.decode("ascii")
    ):
        raise IntegrityError(f"{name}: malformed key id in header")
    key_id = raw_id.decode("ascii")
    salt = rest[id_len : id_len + SALT_SIZE]
    prefix = rest[id_len + SALT_SIZE : id_len + SALT_SIZE + NONCE_PREFIX_SIZE]
    (chunk_size,) = struct.unpack(">I", rest[id_len + SALT_SIZE + NONCE_PREFIX_SIZE :])
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise IntegrityError(f"{name}: invalid chunk size {chunk_size} in header")
    if key_id not in keyring:
        raise IntegrityError(
            f"{name}: encrypted with key id {key_id}, which is not in the key file {keyring.source}"
        )
    return fixed + rest, key_id, salt, prefix, chunk_size


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def _file_key(master: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=_HKDF_INFO).derive(
        master
    )


def _check_chunk_size(chunk_size: int) -> None:
    if not isinstance(chunk_size, int) or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size must be between 1 and {MAX_CHUNK_SIZE} bytes")


# --- files -------------------------------------------------------------------


@contextlib.contextmanager
def atomic_output(dst: Path) -> Iterator[BinaryIO]:
    """A mode-600 temporary file next to ``dst``, renamed over it only if the block succeeds."""
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fout:
            yield fout
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(dst.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the new name durable, not just the data.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_full(fin: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes; fewer only at end of file (reads may return short)."""
    data = fin.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    remaining = size - len(data)
    while remaining:
        more = fin.read(remaining)
        if not more:
            break
        parts.append(more)
        remaining -= len(more)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _os_reason(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.strerror} ({exc.filename})"
    return str(exc.strerror or exc)


# --- key file ----------------------------------------------------------------


def _read_key_file(fd: int, path: Path) -> bytes:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise VaultError(f"key file {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise VaultError(
            f"key file {path} is accessible by group or others (mode {mode:04o}); run: chmod 600 {path}"
        )
    if info.st_size > _MAX_KEY_FILE_BYTES:
        raise VaultError(
            f"key file {path} is larger than {_MAX_KEY_FILE_BYTES} bytes; it cannot be a key file"
        )
    return os.pread(fd, _MAX_KEY_FILE_BYTES + 1, 0)


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
        if not _KEY_ID.fullmatch(key_id):
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
