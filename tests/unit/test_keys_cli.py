"""``recguard keys generate|rotate|list`` through the real command line."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from asterisk_recguard import cli
from asterisk_recguard.vault import Keyring

KEY_ID = r"k-[0-9]{8}-[0-9a-f]{6}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def key_material(path: Path) -> list[str]:
    return [
        line.split()[1]
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_generate_rotate_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "recguard.keys"

    status, out, err = run(capsys, "keys", "generate", "--key-file", str(key_file))
    assert (status, err) == (0, "")
    first = re.search(KEY_ID, out).group(0)  # type: ignore[union-attr]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    status, out, err = run(capsys, "keys", "rotate", "--key-file", str(key_file))
    assert (status, err) == (0, "")
    second = re.search(KEY_ID, out).group(0)  # type: ignore[union-attr]
    assert second != first
    assert Keyring.load(key_file).active_key_id == second

    status, listing, err = run(capsys, "keys", "list", "--key-file", str(key_file))
    assert (status, err) == (0, "")
    assert listing.splitlines() == [f"  {first}", f"* {second}  (active)"]

    for material in key_material(key_file):
        assert material not in out and material not in listing


def test_generate_refuses_an_existing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "keys"
    run(capsys, "keys", "generate", "--key-file", str(key_file))
    before = key_file.read_text()
    status, out, err = run(capsys, "keys", "generate", "--key-file", str(key_file))
    assert status == 2
    assert out == ""
    assert (
        err
        == f"recguard: error: key file {key_file} already exists; add a key with: recguard keys rotate --key-file {key_file}\n"
    )
    assert key_file.read_text() == before


def test_list_refuses_a_group_readable_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "keys"
    run(capsys, "keys", "generate", "--key-file", str(key_file))
    key_file.chmod(0o640)
    status, out, err = run(capsys, "keys", "list", "--key-file", str(key_file))
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert f"run: chmod 600 {key_file}" in err


def test_rotate_reports_a_syntax_error_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# keys\nk1 too-short\n")
    key_file.chmod(0o600)
    status, out, err = run(capsys, "keys", "rotate", "--key-file", str(key_file))
    assert status == 2
    assert out == ""
    assert err.startswith(f"recguard: error: {key_file}:2: ")
    assert key_file.read_text() == "# keys\nk1 too-short\n"


def test_list_of_a_missing_file_says_how_to_create_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _out, err = run(capsys, "keys", "list", "--key-file", str(tmp_path / "none"))
    assert status == 2
    assert "recguard keys generate --key-file" in err


@pytest.mark.parametrize("argv", [["keys"], ["keys", "list"], ["keys", "shred", "--key-file", "x"]])
def test_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage: recguard keys" in capsys.readouterr().err
