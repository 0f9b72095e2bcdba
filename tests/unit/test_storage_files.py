"""storage: file names and the recording files MixMonitor leaves behind."""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import time
import uuid
import wave
from pathlib import Path

import pytest

from asterisk_recguard.storage import (
    delete_file,
    file_facts,
    recording_path,
    wait_closed,
    wav_duration,
    wav_is_closed,
)

RECORDINGS = Path("/var/spool/asterisk/monitor")
GOOD_ID = "0123456789abcdef0123456789abcdef"


def write_wav(path: Path, frames: int = 4000, rate: int = 8000, channels: int = 1, width: int = 2) -> bytes:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(bytes(i % 251 for i in range(frames * channels * width)))
    return path.read_bytes()


class OpenWav:
    """A WAV as a writer leaves it before closing: audio written, header sizes not yet."""

    def __init__(self, path: Path) -> None:
        self.stream = open(path, "wb")
        self.writer = wave.open(self.stream, "wb")
        self.writer.setnchannels(1)
        self.writer.setsampwidth(2)
        self.writer.setframerate(8000)
        # The header is sized from the first write; writeframesraw never
        # patches it afterwards, only close() does.
        self.writer.writeframesraw(b"\x01\x02" * 800)
        self.writer.writeframesraw(b"\x03\x04" * 800)
        self.stream.flush()

    def close(self) -> None:
        self.writer.close()
        self.stream.close()


# --------------------------------------------------------------------------
# recording_path


def test_recording_path_for_a_good_id() -> None:
    assert recording_path(RECORDINGS, GOOD_ID) == RECORDINGS / f"{GOOD_ID}.wav"
    fresh = uuid.uuid4().hex
    assert recording_path(RECORDINGS, fresh).name == f"{fresh}.wav"


@pytest.mark.parametrize(
    "recording_id",
    [
        GOOD_ID.upper(),
        "0123456789ABCDEF0123456789abcdef",
        GOOD_ID[:-1],  # 31
        GOOD_ID + "0",  # 33
        "",
        "../x",
        "../" + GOOD_ID[3:],
        GOOD_ID[:-2] + "/x",
        GOOD_ID + "\n",
        str(uuid.UUID(GOOD_ID)),  # dashed form
        "g" * 32,
    ],
)
def test_recording_path_refuses_bad_ids(recording_id: str) -> None:
    with pytest.raises(ValueError):
        recording_path(RECORDINGS, recording_id)


@pytest.mark.parametrize(
    "recordings_dir",
    [Path("/var/spool/my recordings"), Path("recordings"), Path("spool/monitor"), Path("/tmp/rec;rm -rf")],
)
def test_recording_path_refuses_bad_directories(recordings_dir: Path) -> None:
    with pytest.raises(ValueError):
        recording_path(recordings_dir, GOOD_ID)


# --------------------------------------------------------------------------
# wav_is_closed


def test_closed_wav(tmp_path: Path) -> None:
    path = tmp_path / "closed.wav"
    write_wav(path)
    assert wav_is_closed(path)


def test_wav_still_being_written(tmp_path: Path) -> None:
    path = tmp_path / "open.wav"
    writer = OpenWav(path)
    try:
        assert path.stat().st_size > 44
        assert not wav_is_closed(path)
    finally:
        writer.close()
    assert wav_is_closed(path)


def test_wav_with_audio_appended_after_the_header(tmp_path: Path) -> None:
    path = tmp_path / "grown.wav"
    write_wav(path)
    with open(path, "ab") as more:
        more.write(b"\x00" * 320)
    assert not wav_is_closed(path)


@pytest.mark.parametrize(("offset", "name"), [(4, "RIFF size"), (40, "data size")])
def test_one_wrong_size_is_enough(tmp_path: Path, offset: int, name: str) -> None:
    path = tmp_path / "half.wav"
    data = bytearray(write_wav(path))
    (size,) = struct.unpack_from("<I", data, offset)
    struct.pack_into("<I", data, offset, size + 2)
    path.write_bytes(bytes(data))
    assert not wav_is_closed(path), f"a wrong {name} alone must count as not closed"


def test_not_a_wav(tmp_path: Path) -> None:
    path = tmp_path / "text.wav"
    path.write_bytes(b"this is not a wave file at all, just some text " * 4)
    assert not wav_is_closed(path)


def test_riff_that_is_not_a_wave(tmp_path: Path) -> None:
    path = tmp_path / "movie.wav"
    data = bytearray(write_wav(path))
    data[8:12] = b"AVI "  # sizes still match the file
    path.write_bytes(bytes(data))
    assert not wav_is_closed(path)


def test_short_file(tmp_path: Path) -> None:
    full = write_wav(tmp_path / "full.wav")
    path = tmp_path / "short.wav"
    path.write_bytes(full[:30])
    assert not wav_is_closed(path)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert not wav_is_closed(empty)


def test_missing_file(tmp_path: Path) -> None:
    assert not wav_is_closed(tmp_path / "missing.wav")


def test_directory_is_not_a_closed_wav(tmp_path: Path) -> None:
    assert not wav_is_closed(tmp_path)


# --------------------------------------------------------------------------
# wav_duration / file_facts


@pytest.mark.parametrize(
    ("frames", "rate", "channels", "width", "seconds"),
    [
        (4000, 8000, 1, 2, 0.5),
        (16000, 16000, 2, 2, 1.0),
        (10000, 8000, 1, 1, 1.25),
        (0, 8000, 1, 2, 0.0),
    ],
)
def test_wav_duration(tmp_path: Path, frames: int, rate: int, channels: int, width: int, seconds: float) -> None:
    path = tmp_path / "a.wav"
    write_wav(path, frames=frames, rate=rate, channels=channels, width=width)
    assert wav_duration(path) == pytest.approx(seconds)


def test_file_facts(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    data = write_wav(path, frames=12000)
    facts = file_facts(path)
    assert facts.sha256 == hashlib.sha256(data).hexdigest()
    assert facts.size_bytes == os.path.getsize(path) == len(data)
    assert facts.duration_s == pytest.approx(1.5)


def test_file_facts_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        file_facts(tmp_path / "missing.wav")


# --------------------------------------------------------------------------
# wait_closed


def test_wait_closed_gives_up_on_a_file_that_never_appears(tmp_path: Path) -> None:
    began = time.monotonic()
    assert wait_closed(tmp_path / "never.wav", timeout=5.0, absent_grace=0.2) is False
    assert time.monotonic() - began < 1.5


def test_wait_closed_on_a_closed_wav(tmp_path: Path) -> None:
    path = tmp_path / "closed.wav"
    write_wav(path)
    began = time.monotonic()
    assert wait_closed(path, timeout=5.0) is True
    assert time.monotonic() - began < 1.0


def test_wait_closed_waits_for_the_writer_to_close(tmp_path: Path) -> None:
    path = tmp_path / "open.wav"
    writer = OpenWav(path)
    closer = threading.Timer(0.3, writer.close)
    closer.start()
    try:
        began = time.monotonic()
        assert wait_closed(path, timeout=4.0) is True
        # It returned because the header was patched, not because it timed out.
        assert time.monotonic() - began < 3.0
        assert wav_is_closed(path)
    finally:
        closer.join()


def test_wait_closed_is_false_for_a_file_still_open_at_the_timeout(tmp_path: Path) -> None:
    # A MixMonitor still writing is not a finished recording, however long we waited.
    path = tmp_path / "still-open.wav"
    writer = OpenWav(path)
    try:
        assert wait_closed(path, timeout=0.3) is False
        assert path.exists()
    finally:
        writer.close()


# --------------------------------------------------------------------------
# delete_file


def test_delete_file(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    write_wav(path)
    assert delete_file(path) is True
    assert not path.exists()
    assert delete_file(path) is False


def test_delete_absent_file(tmp_path: Path) -> None:
    assert delete_file(tmp_path / "never.wav") is False
