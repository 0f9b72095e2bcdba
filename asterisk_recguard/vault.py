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

import contextlib
import hashlib
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Key files live in keyring.py; their names are re-exported here, where
# callers have always imported them from.
from .keyring import KEY_ID_PATTERN, KEY_SIZE, Keyring, VaultError, fsync_dir, generate_key_file, rotate

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
SALT_SIZE = 32
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
DEFAULT_CHUNK_SIZE = 1 << 20
# Bounds what a hostile header can make us allocate before it is authenticated.
MAX_CHUNK_SIZE = 64 << 20
_MAX_CHUNKS = 1 << 32  # the 4-byte chunk index in the nonce

_HKDF_INFO = b"recguard vault v1 file key"


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


def _encrypt_stream(fin: BinaryIO, fout: BinaryIO, keyring: Keyring, chunk_size: int) -> EncryptionResult:
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
            raise _diagnose(aead, prefix, index, last, block, header, offset, key_id, name) from None
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
    parts = (MAGIC, bytes((FORMAT_VERSION, len(raw_id))), raw_id, salt, prefix, struct.pack(">I", chunk_size))
    return b"".join(parts)


def _read_header(fin: BinaryIO, keyring: Keyring, name: Path) -> tuple[bytes, str, bytes, bytes, int]:
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
    if not all(0x20 < byte < 0x7F for byte in raw_id) or not KEY_ID_PATTERN.fullmatch(
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
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=_HKDF_INFO).derive(master)


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
    fsync_dir(dst.parent)


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


def _os_reason(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.strerror} ({exc.filename})"
    return str(exc.strerror or exc)


