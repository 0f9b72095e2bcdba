"""`recguard ledger init` creates a ledger on purpose, and no other command
takes a lost or emptied ledger for a new one: they refuse in one line and
touch neither the ledger nor a recording."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.ledger import SCHEMA_VERSION, Ledger

from .cli_support import run
from .recfixtures import NUMBER, T0, World, env_file

DEADLINE = T0 + timedelta(days=1095)

pytestmark = pytest.mark.usefixtures("clean_env")


def spool(world: World) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in world.recordings.iterdir()}


EVERY_COMMAND = [
    ["purge"], ["purge", "--orphans"], ["audit"], ["access-log"],
    ["subject", "find", "--caller", NUMBER],
    ["subject", "erase", "--caller", NUMBER, "--reason", "DSAR-1"],
    ["hold", "0" * 32, "--reason", "court"], ["release", "0" * 32],
    ["export", "0" * 32, "--to", "/nonexistent/export", "--for", "order", "--reason", "DSAR-2"],
]


@pytest.mark.parametrize("argv", EVERY_COMMAND, ids=lambda argv: " ".join(argv[:2]))
def test_an_emptied_ledger_beside_recordings_is_refused_by_every_command(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    world.add(deadline=DEADLINE, seed=1)
    world.add(deadline=DEADLINE + timedelta(days=9000), seed=2, encrypted=False)
    before = spool(world)
    emptied = tmp_path / "emptied.sqlite3"
    emptied.touch()
    path = env_file(world, RECGUARD_LEDGER=str(emptied), RECGUARD_ORPHAN_GRACE="0")
    status, out, err = run(capsys, *argv, "--env-file", str(path))
    assert status == 2 and out == ""
    assert err.startswith(f"recguard: error: ledger {emptied} is empty") and err.count("\n") == 1
    assert "backup" in err
    assert emptied.stat().st_size == 0
    assert spool(world) == before


def test_init_creates_the_ledger_once(world: World, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "lib" / "ledger.sqlite3"
    empty_spool = tmp_path / "empty-spool"
    empty_spool.mkdir()
    path = env_file(world, RECGUARD_LEDGER=str(new), RECGUARD_RECORDINGS_DIR=str(empty_spool))
    status, out, err = run(capsys, "ledger", "init", "--env-file", str(path))
    assert (status, err) == (0, "")
    assert str(new) in out
    with Ledger(new) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION
    status, out, err = run(capsys, "ledger", "init", "--env-file", str(path))
    assert status == 2 and "already exists" in err and err.count("\n") == 1
    status, out, _ = run(capsys, "audit", "--env-file", str(path))
    assert status == 0 and out.startswith("OK")


def test_init_refuses_a_spool_that_holds_recordings(world: World, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    world.add(deadline=DEADLINE)
    lost = tmp_path / "lost.sqlite3"
    path = env_file(world, RECGUARD_LEDGER=str(lost))
    status, out, err = run(capsys, "ledger", "init", "--env-file", str(path))
    assert status == 2 and out == ""
    assert "1 recording" in err and "orphan" in err and err.count("\n") == 1
    assert not lost.exists()


def test_init_has_help_that_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "ledger", "init", "--help")
    assert status == 0 and "examples:" in out and "recguard ledger init" in out
    assert "backup" in out
    status, out, _ = run(capsys, "--help")
    assert "ledger" in out
