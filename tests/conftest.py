"""Shared fixtures: a fixed virtual start time and a runner on the virtual clock."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from flowstate.runtime.clock import VirtualClock
from flowstate.runtime.local import ExecutionResult, run_definition

T0 = datetime(2024, 1, 1, tzinfo=UTC)

Runner = Callable[..., ExecutionResult]

_NO_INPUT: Any = object()


@pytest.fixture
def t0() -> datetime:
    """The virtual clock's start: 2024-01-01T00:00:00Z."""
    return T0


@pytest.fixture
def run() -> Runner:
    """``run(definition, input_value={}, functions=..., **kwargs)`` on a VirtualClock at ``t0``."""

    def _run(
        definition: Mapping[str, Any] | str,
        input_value: Any = _NO_INPUT,
        *,
        functions: Mapping[str, Callable[[Any, Any], Any]] | None = None,
        start: datetime = T0,
        **kwargs: Any,
    ) -> ExecutionResult:
        text = definition if isinstance(definition, str) else json.dumps(definition)
        return run_definition(
            text,
            "{}" if input_value is _NO_INPUT else json.dumps(input_value),
            clock=VirtualClock(start),
            functions=functions,
            **kwargs,
        )

    return _run


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test session, dropped at its end (see ``pgdb``)."""
    import pgdb

    url = pgdb.create_database()
    yield url
    pgdb.drop_database(url)
