"""Shared fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from asterisk_recguard import envfile

from .cli_support import clear_recguard_env
from .ledger_support import location  # noqa: F401 - a fixture
from .pg_support import pg_cluster, pg_url  # noqa: F401 - fixtures
from .recfixtures import World, make_world

# Property tests check what decide() answers, not how fast: Hypothesis's
# per-example deadline only made them fail on a machine busy with other work.
settings.register_profile("recguard", deadline=None)
settings.load_profile("recguard")


@pytest.fixture(autouse=True)
def no_installed_env_file(tmp_path_factory: pytest.TempPathFactory,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own /etc/recguard/recguard.env, if any, stays out of the tests."""
    missing = tmp_path_factory.mktemp("etc") / "recguard.env"
    monkeypatch.setattr(envfile, "DEFAULT_ENV_FILE", missing)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell's own RECGUARD_* settings stay out of a command's test."""
    clear_recguard_env(monkeypatch)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A ledger, a recordings directory, a decision log and a key file, closed afterwards."""
    w = make_world(tmp_path)
    try:
        yield w
    finally:
        w.ledger.close()
        w.log.close()
