"""`recguard audit --verify` authenticates every kept recording: the vault
file against its key and the audio against the SHA-256 the ledger took at
finalization; a flipped byte, two swapped files or a lost key are named, with
a progress line on a terminal and none on a pipe."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.ledger import utcnow
from asterisk_recguard.progress import Progress
from asterisk_recguard.vault import generate_key_file

from .cli_support import env, run
from .recfixtures import World

FUTURE = utcnow() + timedelta(days=1000)

pytestmark = pytest.mark.usefixtures("clean_env")


def audit(world: World, capsys: pytest.CaptureFixture[str], *extra: str,
          **settings: str) -> tuple[int, list[str], str]:
    status, out, err = run(capsys, "audit", *extra, *env(world, **settings))
    return status, out.strip().splitlines(), err


def flip(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    where = len(data) // 2 if at is None else at
    data[where] ^= 0x01
    path.write_bytes(bytes(data))


def swap(a: Path, b: Path) -> None:
    tmp = a.with_name("swap.tmp")
    os.replace(a, tmp)
    os.replace(b, a)
    os.replace(tmp, b)


def test_every_kept_recording_is_authenticated(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.add(deadline=FUTURE, seed=1)
    world.add(deadline=FUTURE, seed=2)
    world.add(deadline=FUTURE, seed=3, encrypted=False)
    status, lines, err = audit(world, capsys, "--verify")
    assert status == 0 and len(lines) == 1, lines
    assert lines[0].startswith("OK: 3 recordings and 3 files consistent")
    assert "3 recordings authenticated" in lines[0]
    assert err == ""  # not a terminal: no progress line


def test_a_flipped_byte_in_a_vault_file_is_named(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    good = world.add(deadline=FUTURE, seed=1)
    bad = world.add(deadline=FUTURE, seed=2)
    flip(Path(bad.stored_path))
    status, lines, _ = audit(world, capsys, "--verify")
    assert status == 1 and len(lines) == 1, lines
    assert bad.recording_id in lines[0] and "authentication failed" in lines[0]
    assert good.recording_id not in lines[0]


def test_plain_audit_does_not_read_the_audio(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=FUTURE, seed=1)
    flip(Path(rec.stored_path))
    status, lines, _ = audit(world, capsys)
    assert status == 0 and lines[0].startswith("OK:")


def test_two_swapped_vault_files_are_each_named(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """Each file authenticates under its own key; only its SHA-256 gives it away."""
    a = world.add(deadline=FUTURE, seed=1)
    b = world.add(deadline=FUTURE, seed=2)
    swap(Path(a.stored_path), Path(b.stored_path))
    status, lines, _ = audit(world, capsys, "--verify")
    assert status == 1 and len(lines) == 2, lines
    line_a = next(line for line in lines if line.startswith(f"recording {a.recording_id}"))
    line_b = next(line for line in lines if line.startswith(f"recording {b.recording_id}"))
    assert "SHA-256" in line_a and b.recording_id in line_a  # it holds b's audio
    assert "SHA-256" in line_b and a.recording_id in line_b


def test_a_flipped_byte_in_a_clear_recording_is_named(world: World,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=FUTURE, encrypted=False)
    flip(Path(rec.path), at=100)
    status, lines, _ = audit(world, capsys, "--verify")
    assert status == 1 and len(lines) == 1
    assert rec.recording_id in lines[0] and "SHA-256" in lines[0]


def test_a_recording_whose_key_is_gone_is_named(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=FUTURE)
    other = world.root / "other-keys"
    generate_key_file(other)
    status, lines, _ = audit(world, capsys, "--verify", RECGUARD_KEY_FILE=str(other))
    assert status == 1 and len(lines) == 1
    assert rec.recording_id in lines[0] and rec.key_id in lines[0]


def test_a_missing_file_is_named_once(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=FUTURE)
    Path(rec.stored_path).unlink()
    status, lines, _ = audit(world, capsys, "--verify")
    assert status == 1 and len(lines) == 1 and "has no file" in lines[0]


def test_a_fifo_in_place_of_a_recording_is_named_not_read(world: World,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=FUTURE, encrypted=False)
    Path(rec.path).unlink()
    os.mkfifo(rec.path)
    status, lines, _ = audit(world, capsys, "--verify")
    assert status == 1
    assert any(rec.recording_id in line and "not a regular file" in line for line in lines), lines


def test_a_deleted_recording_is_not_verified(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=FUTURE)
    world.ledger.mark_deleting(rec.recording_id, reason="erasure")
    Path(rec.stored_path).unlink()
    world.ledger.mark_deleted(rec.recording_id)
    status, lines, _ = audit(world, capsys, "--verify")
    assert status == 0 and "0 recordings authenticated" in lines[0]


def test_the_json_report_counts_the_authenticated(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.add(deadline=FUTURE)
    status, lines, _ = audit(world, capsys, "--verify", "--json")
    import json

    report = json.loads(lines[0])
    assert status == 0 and report["authenticated"] == 1


# --- the progress line -----------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_on_a_terminal_is_updated_in_place() -> None:
    out, clock = Terminal(), Clock()
    progress = Progress(4, 4 << 20, stream=out, clock=clock)
    clock.now += 2
    progress.advance(items=1, nbytes=1 << 20)
    clock.now += 2
    progress.advance(items=1, nbytes=1 << 20)
    progress.close()
    text = out.getvalue()
    assert text.startswith("\r") and "\n" not in text
    assert "1/4" in text and "2/4" in text
    assert "2.0 MiB of 4.0 MiB" in text
    assert "4 s left" in text  # 2 MiB in 4 s, 2 MiB to go
    assert text.endswith("\r\x1b[K")  # the line is cleared for the report


def test_progress_is_not_redrawn_more_than_a_few_times_a_second() -> None:
    out, clock = Terminal(), Clock()
    progress = Progress(1000, 0, stream=out, clock=clock)
    for _ in range(1000):
        progress.advance(items=1)
    assert out.getvalue().count("\r") <= 2


def test_no_progress_on_a_pipe() -> None:
    out = io.StringIO()
    progress = Progress(2, 10, stream=out)
    progress.advance(items=2, nbytes=10)
    progress.close()
    assert out.getvalue() == ""


def test_verify_shows_progress_on_a_terminal(world: World, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    world.add(deadline=FUTURE, seed=1)
    world.add(deadline=FUTURE, seed=2)
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    status, lines, _ = audit(world, capsys, "--verify")
    assert status == 0
    assert "2/2" in terminal.getvalue() and lines[0].startswith("OK:")


def test_an_unreadable_key_file_is_one_line(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.add(deadline=FUTURE)
    status, lines, err = audit(world, capsys, "--verify",
                               RECGUARD_KEY_FILE=str(world.root / "no-such-keys"))
    assert status == 2 and lines == []
    assert len(err.strip().splitlines()) == 1 and "no-such-keys" in err
