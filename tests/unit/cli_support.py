"""Running recguard's command line in a unit test: an environment free of
the caller's own settings, and a command's exit status and output."""

from __future__ import annotations

import os

import pytest

from asterisk_recguard import cli

from .recfixtures import World, env_file


def clear_recguard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RECGUARD_* setting, nor a sudo user, of the shell running the tests."""
    for key in list(os.environ):
        if key.startswith("RECGUARD_") or key == "SUDO_USER":
            monkeypatch.delenv(key)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """recguard ``argv``: its exit status, standard output and standard error."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:  # argparse errors
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def env(world: World, **extra: str) -> list[str]:
    """The arguments that point a command at ``world``."""
    return ["--env-file", str(env_file(world, **extra))]
