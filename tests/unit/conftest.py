"""Shared fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .recfixtures import World, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A ledger, a recordings directory, a decision log and a key file, closed afterwards."""
    w = make_world(tmp_path)
    try:
        yield w
    finally:
        w.ledger.close()
        w.log.close()
