"""The shared workloads (``../shared/bench/workloads``): loading, run modes, output checking.

Standard library only: moto's interpreter imports this module too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "WORKLOADS_DIR",
    "Workload",
    "count_transitions",
    "load_workload",
    "modes",
    "same_json",
    "with_wait_seconds",
    "workload_names",
]

# FLOWSTATE_BENCH_WORKLOADS points elsewhere (tests use a tiny fixture folder).
WORKLOADS_DIR = Path(
    os.environ.get(
        "FLOWSTATE_BENCH_WORKLOADS",
        Path(__file__).resolve().parents[3] / "shared" / "bench" / "workloads",
    )
)

# The workloads README: pass_chain_100 runs one at a time and all at once; map_inline_1000
# measures the wall time of one execution, so it runs one at a time; wait_fleet is a memory
# measurement; every other unit is started all at once.
_MODES = {
    "pass_chain_100": ("sequential", "concurrent"),
    "map_inline_1000": ("sequential",),
    "wait_fleet": ("fleet",),
}


@dataclass(frozen=True)
class Workload:
    name: str
    definition: str  # JSON text, as the engines are given it
    input: Any
    expected: Any
    transitions_per_execution: int
    executions_per_unit: int
    metric: str


def workload_names(directory: Path = WORKLOADS_DIR) -> list[str]:
    """The manifest's workloads, in its order."""
    return list(json.loads((directory / "manifest.json").read_text()))


def load_workload(name: str, directory: Path = WORKLOADS_DIR) -> Workload:
    manifest = json.loads((directory / "manifest.json").read_text())
    if name not in manifest:
        raise KeyError(f"unknown workload {name!r}; known: {', '.join(manifest)}")
    entry = manifest[name]
    return Workload(
        name=name,
        definition=(directory / entry["definition"]).read_text(),
        input=json.loads((directory / entry["input"]).read_text()),
        expected=json.loads((directory / entry["expected_output"]).read_text()),
        transitions_per_execution=int(entry["transitions_per_execution"]),
        executions_per_unit=int(entry["executions_per_unit"]),
        metric=entry["metric"],
    )


def modes(name: str) -> tuple[str, ...]:
    return _MODES.get(name, ("concurrent",))


def same_json(actual: Any, expected: Any) -> bool:
    """Equal as JSON values: ``75 == 75.0`` (the workloads README), but ``true != 1``."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return actual == expected
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            same_json(actual[key], expected[key]) for key in expected
        )
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            same_json(a, e) for a, e in zip(actual, expected)
        )
    return type(actual) is type(expected) and actual == expected


def count_transitions(event_types: list[str]) -> int:
    """Transitions as the workloads README defines them: the ``*StateEntered`` events."""
    return sum(1 for kind in event_types if kind.endswith("StateEntered"))


def with_wait_seconds(definition: str, seconds: int) -> str:
    """``definition`` with every top-level Wait state's ``Seconds`` set to ``seconds``."""
    document = json.loads(definition)
    for state in document["States"].values():
        if state.get("Type") == "Wait":
            state["Seconds"] = seconds
    return json.dumps(document)
