"""The shared conformance corpus through the HTTP API of a real ``flowstate serve``
(markers ``corpus`` and ``slow``).

Fails when a case fails through the API that neither skip table lists, when a case's outcome
(pass/fail, and whether its history event types follow the recording) differs from the
in-process run's, and when an entry of ``endpoint_skip.toml`` passes or names no case. Cases
that the API cannot show (``api_skip_reason``: asynchronous Express) are left out of the
comparison.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowstate.conformance import CaseResult, LocalEngine, load_cases, load_skip_table, run_cases
from flowstate.conformance.endpoint import EndpointEngine, api_skip_reason, run_cases_concurrently

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "conformance"
SKIP_FILE = Path(__file__).parents[1] / "conformance_skip.toml"
ENDPOINT_SKIP_FILE = Path(__file__).parent / "endpoint_skip.toml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(proc: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited at start:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(endpoint + "/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)  # a subprocess gives no readiness event to wait on
    raise AssertionError(f"server never became healthy:\n{log.read_text()}")


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[str]:
    """A ``flowstate serve --clock virtual --db memory:`` on a free port."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    command = [str(Path(sys.executable).with_name("flowstate")), "serve", "--clock", "virtual"]
    command += ["--db", "memory:", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(proc, url, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _line(result: CaseResult) -> str:
    reason = f" ({result.reason})" if result.reason else ""
    return f"{result.result}{reason}"[:300]


def _listing(lines: list[str], limit: int = 60) -> str:
    shown = [f"  {line}"[:700] for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"  ... and {len(lines) - limit} more")
    return "\n".join(shown)


def test_corpus_through_the_api_agrees_with_in_process(endpoint: str) -> None:
    if not (CORPUS / "cases").is_dir():
        message = f"conformance corpus not found at {CORPUS.resolve()}"
        if os.environ.get("REQUIRE_CORPUS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    cases = load_cases(CORPUS)
    known = load_skip_table(SKIP_FILE)
    server_bugs = load_skip_table(ENDPOINT_SKIP_FILE)

    # Both runs without skip tables: the tables are applied below, to the raw outcomes.
    local = {r.case_id: r for r in run_cases(cases, LocalEngine())}
    with EndpointEngine(endpoint, timeout_seconds=30) as engine:
        api = {r.case_id: r for r in run_cases_concurrently(cases, engine, workers=8)}

    differences = []
    for case in cases:
        if case.case_id in server_bugs or api_skip_reason(case) is not None:
            continue
        here, there = local[case.case_id], api[case.case_id]
        if here.result != there.result:
            differences.append(
                f"{case.case_id}: in process {_line(here)}; through the API {_line(there)}"
            )
        elif here.history_match != there.history_match:
            differences.append(
                f"{case.case_id}: history event types follow the recording: in process "
                f"{here.history_match}, through the API {there.history_match}"
            )
    assert not differences, (
        f"{len(differences)} cases differ between the in-process run and the API run:\n"
        + _listing(differences)
    )

    unexpected = [
        f"{c.case_id}: {_line(api[c.case_id])}"
        for c in cases
        if api[c.case_id].result == "fail"
        and c.case_id not in known
        and c.case_id not in server_bugs
    ]
    assert not unexpected, f"{len(unexpected)} cases fail through the API:\n{_listing(unexpected)}"

    unknown = sorted(set(server_bugs) - set(api))
    assert not unknown, f"{ENDPOINT_SKIP_FILE.name} lists unknown case ids:\n" + _listing(unknown)
    stale = [case_id for case_id in server_bugs if api[case_id].result == "pass"]
    assert not stale, (
        f"{len(stale)} cases pass through the API but are in {ENDPOINT_SKIP_FILE.name}; "
        "remove them:\n" + _listing(stale)
    )
