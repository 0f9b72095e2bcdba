"""A throwaway PostgreSQL cluster for the ledger's tests: made once per
session, a fresh database per test. Where PostgreSQL is not installed the
tests that need it are skipped, except under CI, where that fails them."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from asterisk_recguard.devtools.pgcluster import Cluster, server_bin

_numbers = itertools.count()


def _required() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    bin_dir = server_bin()
    if bin_dir is None:
        reason = ("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                  "apt-get install postgresql")
        if _required():
            pytest.fail(reason + " (and CI requires the PostgreSQL ledger tests to run)",
                        pytrace=False)
        pytest.skip(reason)
    cluster = Cluster(bin_dir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def admin(cluster: Cluster, sql: str) -> None:
    """One statement as the cluster's superuser, outside any transaction."""
    import psycopg
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    name = f"ledger_test_{os.getpid()}_{next(_numbers)}"
    admin(pg_cluster, f"CREATE DATABASE {name}")
    try:
        yield pg_cluster.url(name)
    finally:
        admin(pg_cluster, f"DROP DATABASE {name} WITH (FORCE)")
