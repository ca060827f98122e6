"""Which engine runs which workload, in which mode, at which size: the benchmark's plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.workloads import modes

__all__ = ["ENGINES", "FLEET_EXECUTIONS", "MOTO_EXECUTIONS", "Job", "make_plan"]

ENGINES = (
    "flowstate-express",
    "flowstate-standard-sqlite",
    "flowstate-standard-postgres",
    "flowstate-http",
    "moto",
    "aws-local-stepfunctions",
)
IN_PROCESS_FLOWSTATE = ENGINES[:3]

FLEET_EXECUTIONS = 10_000  # the workloads README's unit

# moto runs ~80-1,200 transitions/s here, one thread per execution: a full unit of
# pass_chain_100 (20,000 transitions) would take ~40 s per run. It runs a fraction of each
# unit by default (the row says how many); EXECUTIONS= overrides this for every engine.
MOTO_EXECUTIONS = {
    "pass_chain_100": 20,
    "choice_loop_1000": 2,
    "map_inline_1000": 1,
    "parallel_fanout": 10,
    "jsonata_transform": 10,
    "task_chain_10": 40,
    "wait_fleet": 1_000,
}


@dataclass(frozen=True)
class Job:
    engine: str
    workload: str
    mode: str
    executions: int
    skip: str | None = None  # the n/a reason, when the job is not run


def _modes(engine: str, workload: str) -> tuple[str, ...]:
    found = modes(workload)
    # task_chain_10: flowstate serves the Task with a sync function (thread pool) and with an
    # async one (event loop); the peers have one kind each.
    if workload == "task_chain_10" and engine in IN_PROCESS_FLOWSTATE:
        return (*found, *(f"{m}-async" for m in found))
    return found


def _size(engine: str, workload: str, unit: int, executions: int | None) -> int:
    if executions is not None:
        return executions
    if workload == "wait_fleet":
        return MOTO_EXECUTIONS[workload] if engine == "moto" else FLEET_EXECUTIONS
    if engine == "moto":
        return min(unit, MOTO_EXECUTIONS.get(workload, unit))
    return unit


def make_plan(
    workloads: Sequence[str],
    units: dict[str, int],
    *,
    engines: Sequence[str] = ENGINES,
    executions: int | None = None,
) -> list[Job]:
    """Every (workload, mode, engine), grouped by workload then mode, engines in ENGINES order.

    ``units`` maps each workload to its manifest ``executions_per_unit``; ``executions``
    overrides every size (``make bench-json EXECUTIONS=200``).
    """
    jobs: list[Job] = []
    for workload in workloads:
        by_mode: dict[str, list[Job]] = {}
        for engine in (e for e in ENGINES if e in engines):
            for mode in _modes(engine, workload):
                size = _size(engine, workload, units[workload], executions)
                skip = None
                if engine == "flowstate-http" and mode == "fleet":
                    skip = "wait_fleet is measured in-process; the HTTP row measures throughput"
                by_mode.setdefault(mode.split("-", 1)[0], []).append(
                    Job(engine, workload, mode, size, skip)
                )
        for group in by_mode.values():
            jobs.extend(group)
    return jobs
