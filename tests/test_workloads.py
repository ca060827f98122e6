"""The JSONPath benchmark workloads run to exactly their expected output (marker ``corpus``).

Each workload's ``<name>.expected.json`` is the exact output, and the number of
``*StateEntered`` events equals the manifest's ``transitions_per_execution`` (the README's
definition of a transition). Skipped when the shared folder is missing, unless
``REQUIRE_CORPUS=1``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flowstate.runtime.clock import VirtualClock
from flowstate.runtime.local import run_definition

pytestmark = pytest.mark.corpus

WORKLOADS = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "workloads"
JSONPATH_WORKLOADS = [
    "pass_chain_100",
    "choice_loop_1000",
    "map_inline_1000",
    "parallel_fanout",
    "wait_fleet",
]


def _manifest() -> dict[str, Any]:
    path = WORKLOADS / "manifest.json"
    if not path.is_file():
        message = f"benchmark workloads not found at {WORKLOADS}"
        if os.environ.get("REQUIRE_CORPUS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


@pytest.mark.parametrize("name", JSONPATH_WORKLOADS)
def test_workload_output_and_transitions(name: str) -> None:
    entry = _manifest()[name]
    definition = (WORKLOADS / entry["definition"]).read_text(encoding="utf-8")
    input_text = (WORKLOADS / entry["input"]).read_text(encoding="utf-8")
    expected = json.loads((WORKLOADS / entry["expected_output"]).read_text(encoding="utf-8"))

    result = run_definition(
        definition,
        input_text,
        state_machine_name=name,
        clock=VirtualClock(datetime(2024, 1, 1, tzinfo=UTC)),
    )

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output is not None
    # JSON values compare equal across 75 / 75.0, as the workloads README asks.
    assert json.loads(result.output) == expected
    entered = sum(1 for event in result.history if event["type"].endswith("StateEntered"))
    assert entered == entry["transitions_per_execution"]
    assert [e["id"] for e in result.history] == list(range(1, len(result.history) + 1))
