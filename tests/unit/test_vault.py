"""Encryption at rest (asterisk_recguard.vault): the chunked AES-GCM format and the key file."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
import tracemalloc
from pathlib import Path

import pytest

from asterisk_recguard import vault
from asterisk_recguard.errors import UserError
from asterisk_recguard.vault import (
    DEFAULT_CHUNK_SIZE,
    IntegrityError,
    Keyring,
    VaultError,
    decrypt_file,
    encrypt_file,
    generate_key_file,
    rotate,
    verify_file,
)

CHUNK = 16
TAG = 16
KEY1 = ("k1", bytes(range(32)))
KEY2 = ("k2", bytes(range(32, 64)))


def header_size(key_id: str) -> int:
    # magic, version, id length, id, salt, nonce prefix, chunk size
    return 8 + 1 + 1 + len(key_id) + 32 + 7 + 4


def chunk_count(size: int, chunk: int = CHUNK) -> int:
    return max(1, -(-size // chunk))


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def seal(
    directory: Path, data: bytes, keyring: Keyring, name: str = "rec", chunk_size: int = CHUNK
) -> Path:
    plain = directory / f"{name}.wav"
    plain.write_bytes(data)
    sealed = directory / f"{name}.wav.enc"
    encrypt_file(plain, sealed, keyring, chunk_size=chunk_size)
    return sealed


def chunk_span(index: int, key_id: str = "k1", chunk: int = CHUNK) -> slice:
    start = header_size(key_id) + index * (chunk + TAG)
    return slice(start, start + chunk + TAG)


@pytest.fixture
def keyring() -> Keyring:
    return Keyring([KEY1])


def assert_refused(src: Path, keyring: Keyring, match: str | None) -> IntegrityError:
    """Decryption fails, says why, and leaves no plaintext behind."""
    out_dir = src.parent / "out"
    out_dir.mkdir(exist_ok=True)
    dst = out_dir / "plain.wav"
    with pytest.raises(IntegrityError, match=match) as info:
        decrypt_file(src, dst, keyring)
    assert not dst.exists()
    assert list(out_dir.iterdir()) == []
    with pytest.raises(IntegrityError, match=match):
        verify_file(src, keyring)
    assert str(src) in str(info.value)
    return info.value


# --- round trips ---------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 7 * CHUNK, 7 * CHUNK + 5]
)
def test_round_trip(tmp_path: Path, keyring: Keyring, size: int) -> None:
    data = os.urandom(size)
    plain = tmp_path / "rec.wav"
    plain.write_bytes(data)
    sealed = tmp_path / "rec.wav.enc"

    result = encrypt_file(plain, sealed, keyring, chunk_size=CHUNK)

    assert result.key_id == "k1"
    assert result.plaintext_size == size
    assert result.plaintext_sha256 == hashlib.sha256(data).hexdigest()
    assert result.ciphertext_size == sealed.stat().st_size
    assert result.ciphertext_size == header_size("k1") + size + TAG * chunk_count(size)
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
    if size >= 8:  # shorter strings can occur in random bytes by chance
        assert data not in sealed.read_bytes()

    out = tmp_path / "out.wav"
    decrypted = decrypt_file(sealed, out, keyring)
    assert out.read_bytes() == data
    assert decrypted == vault.DecryptionResult("k1", hashlib.sha256(data).hexdigest(), size)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert verify_file(sealed, keyring) == decrypted
    assert temp_files(tmp_path) == []


def test_round_trip_with_default_chunk_size(tmp_path: Path, keyring: Keyring) -> None:
    data = os.urandom(2 * DEFAULT_CHUNK_SIZE + 3)
    sealed = seal(tmp_path, data, keyring, chunk_size=DEFAULT_CHUNK_SIZE)
    assert sealed.stat().st_size == header_size("k1") + len(data) + 3 * TAG
    decrypt_file(sealed, tmp_path / "out.wav", keyring)
    assert (tmp_path / "out.wav").read_bytes() == data


def test_same_plaintext_encrypts_differently_each_time(tmp_path: Path, keyring: Keyring) -> None:
    data = b"\x00" * 100
    a = seal(tmp_path, data, keyring, "a").read_bytes()
    b = seal(tmp_path, data, keyring, "b").read_bytes()
    assert a[: len(vault.MAGIC)] == b[: len(vault.MAGIC)] == b"RGVAULT1"
    assert a[header_size("k1") :] != b[header_size("k1") :]


def test_memory_stays_flat_for_a_large_file(tmp_path: Path, keyring: Keyring) -> None:
    size = 16 * DEFAULT_CHUNK_SIZE
    plain = tmp_path / "big.wav"
    with plain.open("wb") as f:
        for _ in range(16):
            f.write(os.urandom(DEFAULT_CHUNK_SIZE))
    sealed = tmp_path / "big.wav.enc"
    out = tmp_path / "out.wav"

    tracemalloc.start()
    try:
        encrypt_file(plain, sealed, keyring)
        _, peak_encrypt = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        decrypt_file(sealed, out, keyring)
        _, peak_decrypt = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # A few chunks in flight, not the 16 MiB file.
    assert peak_encrypt < 6 * DEFAULT_CHUNK_SIZE, peak_encrypt
    assert peak_decrypt < 6 * DEFAULT_CHUNK_SIZE, peak_decrypt
    assert out.stat().st_size == size


@pytest.mark.parametrize("chunk_size", [0, -1, vault.MAX_CHUNK_SIZE + 1])
def test_chunk_size_out_of_range_is_refused(
    tmp_path: Path, keyring: Keyring, chunk_size: int
) -> None:
    (tmp_path / "a").write_bytes(b"x")
    with pytest.raises(ValueError, match="chunk size"):
        encrypt_file(tmp_path / "a", tmp_path / "b", keyring, chunk_size=chunk_size)
    assert not (tmp_path / "b").exists()


# --- atomic output -------------------------------------------------------------


def test_encrypt_failure_midway_leaves_no_ciphertext(
    tmp_path: Path, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "rec.wav"
    plain.write_bytes(os.urandom(10 * CHUNK))
    sealed = tmp_path / "rec.wav.enc"
    sealed.write_bytes(b"previous")
    real_read_full = vault._read_full
    calls = 0

    def failing_read(fin, size):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 4:
            raise OSError(5, "Input/output error")
        return real_read_full(fin, size)

    monkeypatch.setattr(vault, "_read_full", failing_read)
    with pytest.raises(VaultError, match="Input/output error"):
        encrypt_file(plain, sealed, keyring, chunk_size=CHUNK)
    assert calls == 4
    assert sealed.read_bytes() == b"previous"
    assert temp_files(tmp_path) == []


def test_encrypt_missing_source(tmp_path: Path, keyring: Keyring) -> None:
    with pytest.raises(VaultError, match="missing.wav"):
        encrypt_file(tmp_path / "missing.wav", tmp_path / "x.enc", keyring)
    assert list(tmp_path.iterdir()) == []


def test_encrypt_into_missing_directory(tmp_path: Path, keyring: Keyring) -> None:
    (tmp_path / "a.wav").write_bytes(b"x")
    with pytest.raises(VaultError, match="cannot encrypt"):
        encrypt_file(tmp_path / "a.wav", tmp_path / "nodir" / "a.enc", keyring)


def test_failed_decrypt_keeps_an_existing_destination(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, os.urandom(50), keyring)
    data = bytearray(sealed.read_bytes())
    data[-1] ^= 1
    sealed.write_bytes(data)
    dst = tmp_path / "export.wav"
    dst.write_bytes(b"earlier export")
    with pytest.raises(IntegrityError):
        decrypt_file(sealed, dst, keyring)
    assert dst.read_bytes() == b"earlier export"
    assert temp_files(tmp_path) == []


# --- tampering -----------------------------------------------------------------


def test_every_header_byte_is_authenticated(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, os.urandom(3 * CHUNK + 2), keyring)
    original = sealed.read_bytes()
    for offset in range(header_size("k1")):
        for bit in (0x01, 0x80):
            data = bytearray(original)
            data[offset] ^= bit
            sealed.write_bytes(data)
            assert_refused(sealed, keyring, None)


@pytest.mark.parametrize("position", ["first", "middle", "tag"])
def test_every_chunk_is_authenticated(tmp_path: Path, keyring: Keyring, position: str) -> None:
    sealed = seal(tmp_path, os.urandom(4 * CHUNK + 5), keyring)
    original = sealed.read_bytes()
    for index in range(5):
        span = chunk_span(index)
        offset = {
            "first": span.start,
            "middle": span.start + 7,
            "tag": min(span.stop, len(original)) - 1,
        }[position]
        data = bytearray(original)
        data[offset] ^= 0x01
        sealed.write_bytes(data)
        assert_refused(
            sealed, keyring, rf"authentication failed at chunk {index} \(byte {span.start}\)"
        )


def test_truncated_at_a_chunk_boundary(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, os.urandom(3 * CHUNK + 5), keyring)
    sealed.write_bytes(sealed.read_bytes()[: chunk_span(2).stop])
    assert_refused(
        sealed, keyring, "truncated: the file ends after chunk 2, which is not the final chunk"
    )


def test_truncated_exact_multiple_loses_its_final_full_chunk(
    tmp_path: Path, keyring: Keyring
) -> None:
    sealed = seal(tmp_path, os.urandom(3 * CHUNK), keyring)
    assert sealed.stat().st_size == chunk_span(2).stop
    sealed.write_bytes(sealed.read_bytes()[: chunk_span(1).stop])
    assert_refused(sealed, keyring, "truncated: the file ends after chunk 1")


def test_truncated_inside_a_chunk(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, os.urandom(3 * CHUNK + 5), keyring)
    sealed.write_bytes(sealed.read_bytes()[:-1])
    assert_refused(sealed, keyring, "authentication failed at chunk 3")


def test_truncated_to_the_header(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, b"", keyring)
    sealed.write_bytes(sealed.read_bytes()[: header_size("k1")])
    assert_refused(sealed, keyring, "truncated: the file ends inside chunk 0")


@pytest.mark.parametrize("keep", [3, 8, 10, 20, header_size("k1") - 1])
def test_truncated_inside_the_header(tmp_path: Path, keyring: Keyring, keep: int) -> None:
    sealed = seal(tmp_path, b"hello", keyring)
    sealed.write_bytes(sealed.read_bytes()[:keep])
    assert_refused(sealed, keyring, "truncated header")


def test_empty_file(tmp_path: Path, keyring: Keyring) -> None:
    (tmp_path / "empty.enc").write_bytes(b"")
    assert_refused(tmp_path / "empty.enc", keyring, "empty file")


@pytest.mark.parametrize("extra", [b"\x00", b"x" * (CHUNK + TAG), b"x" * 5])
def test_appended_data(tmp_path: Path, keyring: Keyring, extra: bytes) -> None:
    sealed = seal(tmp_path, os.urandom(2 * CHUNK), keyring)
    sealed.write_bytes(sealed.read_bytes() + extra)
    assert_refused(sealed, keyring, "unexpected data after the final chunk 1")


def test_appended_copy_of_the_final_chunk(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, os.urandom(2 * CHUNK), keyring)
    data = sealed.read_bytes()
    sealed.write_bytes(data + data[chunk_span(1)])
    assert_refused(sealed, keyring, "unexpected data after the final chunk 1")


def test_swapped_chunks(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, os.urandom(3 * CHUNK + 1), keyring)
    data = bytearray(sealed.read_bytes())
    first, second = data[chunk_span(0)], data[chunk_span(1)]
    data[chunk_span(0)], data[chunk_span(1)] = second, first
    sealed.write_bytes(data)
    assert_refused(sealed, keyring, "authentication failed at chunk 0")


def test_duplicated_chunk(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, os.urandom(3 * CHUNK + 1), keyring)
    data = bytearray(sealed.read_bytes())
    data[chunk_span(1)] = data[chunk_span(0)]
    sealed.write_bytes(data)
    assert_refused(sealed, keyring, "authentication failed at chunk 1")


def test_chunk_from_another_file_under_the_same_key(tmp_path: Path, keyring: Keyring) -> None:
    a = seal(tmp_path, os.urandom(3 * CHUNK), keyring, "a")
    b = seal(tmp_path, os.urandom(3 * CHUNK), keyring, "b")
    data = bytearray(a.read_bytes())
    data[chunk_span(1)] = b.read_bytes()[chunk_span(1)]
    a.write_bytes(data)
    assert_refused(a, keyring, "authentication failed at chunk 1")


def test_header_from_another_file_under_the_same_key(tmp_path: Path, keyring: Keyring) -> None:
    a = seal(tmp_path, os.urandom(3 * CHUNK), keyring, "a")
    b = seal(tmp_path, os.urandom(3 * CHUNK), keyring, "b")
    cut = header_size("k1")
    a.write_bytes(b.read_bytes()[:cut] + a.read_bytes()[cut:])
    assert_refused(a, keyring, "authentication failed at chunk 0")


def test_wrong_key_with_the_same_id(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, os.urandom(40), keyring)
    impostor = Keyring([("k1", bytes(32))])
    assert_refused(sealed, impostor, "authentication failed at chunk 0 .* key k1 is not the key")


def test_unknown_key_id(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, os.urandom(40), keyring)
    assert_refused(
        sealed, Keyring([KEY2]), "encrypted with key id k1, which is not in the key file"
    )


def test_not_a_vault_file(tmp_path: Path, keyring: Keyring) -> None:
    wav = tmp_path / "clear.wav"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100))
    assert_refused(wav, keyring, "not a recguard vault file")


def test_unsupported_version(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, b"abc", keyring)
    data = bytearray(sealed.read_bytes())
    data[8] = 2
    sealed.write_bytes(data)
    assert_refused(sealed, keyring, "unsupported vault format version 2")


def test_hostile_chunk_size_is_refused_before_reading(tmp_path: Path, keyring: Keyring) -> None:
    sealed = seal(tmp_path, b"abc", keyring)
    data = bytearray(sealed.read_bytes())
    size_at = header_size("k1") - 4
    data[size_at : size_at + 4] = b"\xff\xff\xff\xff"
    sealed.write_bytes(data)
    assert_refused(sealed, keyring, "invalid chunk size 4294967295")


def test_control_characters_in_a_header_key_id_are_not_echoed(
    tmp_path: Path, keyring: Keyring
) -> None:
    sealed = seal(tmp_path, b"abc", keyring)
    data = bytearray(sealed.read_bytes())
    data[10:12] = b"\x1b["
    sealed.write_bytes(data)
    error = assert_refused(sealed, keyring, "malformed key id")
    assert "\x1b" not in str(error)


def test_integrity_error_is_a_user_error() -> None:
    assert issubclass(IntegrityError, VaultError)
    assert issubclass(VaultError, UserError)


# --- keyring -------------------------------------------------------------------


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def write_key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_key_file_with_comments_blank_lines_and_rotation_order(tmp_path: Path) -> None:
    path = write_key_file(
        tmp_path / "keys",
        f"# recordings keys\n\n{KEY1[0]} {b64(KEY1[1])}\n   # old one above\n  {KEY2[0]}\t{b64(KEY2[1])}  \r\n\n",
    )
    keyring = Keyring.load(path)
    assert keyring.key_ids == ("k1", "k2")
    assert keyring.active_key_id == "k2"
    assert "k1" in keyring and "k3" not in keyring
    assert len(keyring) == 2


def test_keyring_repr_shows_no_key_material() -> None:
    keyring = Keyring([KEY1, KEY2])
    text = repr(keyring)
    assert "k1" in text and "k2" in text
    assert b64(KEY1[1]) not in text and repr(KEY1[1]) not in text and KEY1[1].hex() not in text


@pytest.mark.parametrize(
    "keys, match",
    [
        ([], "no keys"),
        ([("bad id", bytes(32))], "invalid key id"),
        ([("k", bytes(31))], "31 bytes"),
        ([("k", bytes(32)), ("k", bytes(range(32)))], "duplicate"),
    ],
)
def test_keyring_in_memory_validation(keys: list[tuple[str, bytes]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Keyring(keys)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="does not exist; create it with: recguard keys generate"):
        Keyring.load(tmp_path / "nokeys")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o610, 0o660])
def test_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = write_key_file(tmp_path / "keys", f"k1 {b64(KEY1[1])}\n", mode)
    with pytest.raises(VaultError) as info:
        Keyring.load(path)
    assert f"chmod 600 {path}" in str(info.value)
    assert f"{mode:04o}" in str(info.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_private_key_file_is_accepted(tmp_path: Path, mode: int) -> None:
    path = write_key_file(tmp_path / "keys", f"k1 {b64(KEY1[1])}\n", mode)
    assert Keyring.load(path).key_ids == ("k1",)


def test_key_file_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    with pytest.raises(VaultError, match="not a regular file"):
        Keyring.load(tmp_path / "keys")


GOOD = b64(KEY1[1])


@pytest.mark.parametrize(
    "text, line, match",
    [
        ("k1\n", 1, "expected '<key-id> <base64 key>', found 1 fields"),
        (f"# c\nk1 {GOOD} extra\n", 2, "found 3 fields"),
        (f"k/1 {GOOD}\n", 1, "invalid key id"),
        (f"{'k' * 65} {GOOD}\n", 1, "invalid key id"),
        (f"k1 {GOOD}\n\nk2 not*base64\n", 3, "key k2 is not valid base64"),
        (f"k1 {b64(bytes(31))}\n", 1, "key k1 is 31 bytes; AES-256 needs exactly 32"),
        (f"k1 {b64(bytes(33))}\n", 1, "key k1 is 33 bytes"),
        (
            f"k1 {GOOD}\n# x\nk2 {b64(KEY2[1])}\nk1 {b64(bytes(32))}\n",
            4,
            "duplicate key id k1 \\(first on line 1\\)",
        ),
        (f"k1 {GOOD}\nk2 klju\u010d\n", 2, "not ASCII"),
    ],
)
def test_key_file_syntax_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, match: str
) -> None:
    path = write_key_file(tmp_path / "keys", text)
    with pytest.raises(VaultError, match=match) as info:
        Keyring.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ")
    assert "\n" not in message
    for secret in (GOOD, b64(KEY2[1]), b64(bytes(31)), b64(bytes(32)), b64(bytes(33))):
        assert secret not in message


def test_key_file_with_only_comments(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "keys", "# nothing yet\n\n")
    with pytest.raises(VaultError, match="holds no keys"):
        Keyring.load(path)


# --- generate and rotate -------------------------------------------------------

KEY_ID = re.compile(r"k-[0-9]{8}-[0-9a-f]{6}")


def key_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_generate_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    old_umask = os.umask(0)
    try:
        key_id = generate_key_file(path)
    finally:
        os.umask(old_umask)
    assert KEY_ID.fullmatch(key_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keyring = Keyring.load(path)
    assert keyring.key_ids == (key_id,)
    [line] = key_lines(path)
    assert len(base64.b64decode(line.split()[1], validate=True)) == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"]


def test_two_generated_key_files_differ(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "a")
    generate_key_file(tmp_path / "b")
    assert key_lines(tmp_path / "a")[0].split()[1] != key_lines(tmp_path / "b")[0].split()[1]


def test_generate_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    generate_key_file(path)
    before = path.read_bytes()
    with pytest.raises(VaultError, match="already exists; add a key with: recguard keys rotate"):
        generate_key_file(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"]


def test_generate_in_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="cannot create key file"):
        generate_key_file(tmp_path / "nodir" / "keys")


def test_rotate_appends_in_place(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    first = generate_key_file(path)
    before = path.read_text()
    inode = path.stat().st_ino

    second = rotate(path)

    assert KEY_ID.fullmatch(second) and second != first
    assert path.read_text().startswith(before)
    assert path.stat().st_ino == inode
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keyring = Keyring.load(path)
    assert keyring.key_ids == (first, second)
    assert keyring.active_key_id == second


def test_rotate_file_without_final_newline_or_keys(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "keys", f"k1 {GOOD}")
    new = rotate(path)
    assert Keyring.load(path).key_ids == ("k1", new)
    empty = write_key_file(tmp_path / "empty", "# to be filled\n")
    only = rotate(empty)
    assert Keyring.load(empty).key_ids == (only,)


def test_rotate_refuses_a_bad_key_file_and_leaves_it_alone(tmp_path: Path) -> None:
    public = write_key_file(tmp_path / "public", f"k1 {GOOD}\n", 0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        rotate(public)
    assert public.read_text() == f"k1 {GOOD}\n"
    broken = write_key_file(tmp_path / "broken", f"k1 {GOOD}\nk1 {GOOD}\n")
    with pytest.raises(VaultError, match=":2: duplicate"):
        rotate(broken)
    assert broken.read_text() == f"k1 {GOOD}\nk1 {GOOD}\n"
    with pytest.raises(VaultError, match="does not exist"):
        rotate(tmp_path / "missing")


def test_rotation_keeps_old_recordings_readable(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    first = generate_key_file(key_file)
    before_rotation = Keyring.load(key_file)
    old_data, new_data = os.urandom(100), os.urandom(100)
    old = seal(tmp_path, old_data, before_rotation, "old")

    second = rotate(key_file)
    after_rotation = Keyring.load(key_file)
    new_plain = tmp_path / "new.wav"
    new_plain.write_bytes(new_data)
    result = encrypt_file(new_plain, tmp_path / "new.wav.enc", after_rotation)

    assert result.key_id == second
    assert decrypt_file(old, tmp_path / "old.out", after_rotation).key_id == first
    assert (
        decrypt_file(tmp_path / "new.wav.enc", tmp_path / "new.out", after_rotation).key_id
        == second
    )
    assert (tmp_path / "old.out").read_bytes() == old_data
    assert (tmp_path / "new.out").read_bytes() == new_data
    # A keyring from before the rotation cannot read the new recording.
    with pytest.raises(IntegrityError, match=f"key id {second}, which is not in the key file"):
        verify_file(tmp_path / "new.wav.enc", before_rotation)
