"""A PostgreSQL ledger for the integration tests: a throwaway cluster per
test module, and a new ledger database in it per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from asterisk_recguard.devtools.pgcluster import Cluster, server_bin
from asterisk_recguard.ledger import Ledger

from ..unit.pg_support import admin
from .conftest import _unavailable

_numbers = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    bin_dir = server_bin()
    if bin_dir is None:
        _unavailable("PostgreSQL is not installed (apt-get install postgresql)")
    assert bin_dir is not None
    running = Cluster(bin_dir).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def pg_ledger(cluster: Cluster) -> Iterator[str]:
    """The URL of a new ledger in the cluster, dropped afterwards."""
    name = f"ledger_{os.getpid()}_{next(_numbers)}"
    admin(cluster, f"CREATE DATABASE {name}")
    url = cluster.url(name)
    Ledger.create(url, recordings_dir=None).close()
    try:
        yield url
    finally:
        admin(cluster, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
