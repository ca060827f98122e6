"""Backends for the shared store suite: every contract test runs on each of them.

PostgreSQL (marker ``postgres``) gets one database per test session (``pg_url``, in the root
conftest), emptied between tests; ``tests/pgdb.py`` says where it comes from and when the
tests skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowstate.storage import MemoryStore, SQLiteStore, Store

BACKENDS = [
    pytest.param("memory"),
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
# The backends that share the SQL lease statements (node leases, takeover, inbox).
SQL_BACKENDS = BACKENDS[1:]


def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if backend == "memory":
        return MemoryStore()
    if backend == "sqlite":
        return SQLiteStore(tmp_path / "flowstate.db")
    if backend == "postgres":
        import pgdb
        from flowstate.storage.postgres import PostgresStore

        url = request.getfixturevalue("pg_url")
        pgdb.empty(url)
        return PostgresStore(url)
    raise AssertionError(f"unknown backend {backend}")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = make_store(request.param, tmp_path, request)
    yield opened
    opened.close()


@pytest.fixture(params=SQL_BACKENDS)
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = make_store(request.param, tmp_path, request)
    yield opened
    opened.close()
