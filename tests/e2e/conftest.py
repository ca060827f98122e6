"""Fixtures for the end-to-end tests: real ``flowstate serve`` processes.

- ``flowstate_server``: one server per test module, on the virtual clock, so a Wait of a day
  ends at once; ``endpoint`` is its URL, ``sfn``/``sfn_sync`` boto3 clients for it.
- ``servers``: ``servers(clock=...)`` starts a fresh server for one test, which it may
  ``terminate()`` or ``kill()`` and ``start()`` again on the same database; every one still
  running is stopped afterwards.
- ``gate``: a file a gated Lambda (``e2e_functions.gate``) waits for, opened at the latest
  when the test ends.

When a test fails, the tail of each of its servers' logs is attached to the report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_client import client
from e2e_server import GRACEFUL_EXIT_CODES, FlowstateServer, Gate, ServerError, Servers

FUNCTIONS = Path(__file__).with_name("e2e_functions.py")


@pytest.fixture(scope="module")
def flowstate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowstateServer]:
    server = FlowstateServer(
        tmp_path_factory.mktemp("flowstate"), functions=FUNCTIONS, clock="virtual"
    )
    server.start()
    yield server
    code = server.terminate()
    if code not in GRACEFUL_EXIT_CODES:
        raise ServerError(f"flowstate serve exited with {code} on SIGTERM:\n{server.log()}")


@pytest.fixture(scope="module")
def endpoint(flowstate_server: FlowstateServer) -> str:
    return flowstate_server.endpoint


@pytest.fixture(scope="module")
def sfn(endpoint: str) -> Any:
    return client(endpoint)


@pytest.fixture(scope="module")
def sfn_sync(endpoint: str) -> Any:
    """For StartSyncExecution and TestState (no ``sync-`` host prefix)."""
    return client(endpoint, sync=True)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path, functions=FUNCTIONS)
    yield started
    started.stop_all()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    opened = Gate(tmp_path / "gate")
    yield opened
    opened.open()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for server in _servers_of(item):
            report.sections.append((f"flowstate serve log ({server.workdir.name})", server.log()))
    return report


def _servers_of(item: pytest.Item) -> list[FlowstateServer]:
    found: list[FlowstateServer] = []
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, FlowstateServer):
            found.append(value)
        elif isinstance(value, Servers):
            found.extend(value.started)
    return found
