"""Backends for the shared store suite: every contract test runs on each of them.

A PostgreSQL backend joins with ``pytest.param("postgres", marks=pytest.mark.postgres)`` in
``BACKENDS`` and a branch in ``make_store`` (a fresh database per test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowstate.storage import MemoryStore, SQLiteStore, Store

BACKENDS = [pytest.param("memory"), pytest.param("sqlite")]


def make_store(backend: str, tmp_path: Path) -> Store:
    if backend == "memory":
        return MemoryStore()
    if backend == "sqlite":
        return SQLiteStore(tmp_path / "flowstate.db")
    raise AssertionError(f"unknown backend {backend}")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = make_store(request.param, tmp_path)
    yield opened
    opened.close()
