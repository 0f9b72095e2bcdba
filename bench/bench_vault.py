"""Throughput of encryption at rest: encrypt and decrypt a 64 MiB file, one line each."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

# Runs from a source checkout too, without an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asterisk_recguard.vault import (
    DEFAULT_CHUNK_SIZE,
    Keyring,
    decrypt_file,
    encrypt_file,
)  # noqa: E402

SIZE = 64 << 20


def main() -> None:
    keyring = Keyring([("bench", os.urandom(32))])
    with tempfile.TemporaryDirectory(prefix="recguard-bench-") as tmp:
        directory = Path(tmp)
        plain, sealed, out = directory / "rec.wav", directory / "rec.wav.enc", directory / "out.wav"
        with plain.open("wb") as f:
            for _ in range(SIZE // DEFAULT_CHUNK_SIZE):
                f.write(os.urandom(DEFAULT_CHUNK_SIZE))

        start = time.perf_counter()
        encrypt_file(plain, sealed, keyring)
        encrypt_seconds = time.perf_counter() - start

        start = time.perf_counter()
        decrypt_file(sealed, out, keyring)
        decrypt_seconds = time.perf_counter() - start

    megabytes = SIZE / 1e6
    print(
        f"vault encrypt 64 MiB, 1 MiB chunks, fsync included: {megabytes / encrypt_seconds:.0f} MB/s"
    )
    print(
        f"vault decrypt 64 MiB, 1 MiB chunks, fsync included: {megabytes / decrypt_seconds:.0f} MB/s"
    )


if __name__ == "__main__":
    main()
