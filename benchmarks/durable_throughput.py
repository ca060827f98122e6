"""Durable throughput: Standard executions on SQLite next to Express in memory, same run.

Each workload starts ``--executions`` executions at once (200 by default) into the engine,
in-process, on the virtual clock (Waits and retry back-offs cost no real time), and waits for
all of them; every output is checked against the expected one. Prints transitions/s per mode
and the ratio Standard/Express. Figures only: nothing is asserted about time.

    .venv/bin/python benchmarks/durable_throughput.py [--executions 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.workloads import load_workload

from flowstate.integrations.functions import FunctionRegistry
from flowstate.runtime.clock import VirtualClock
from flowstate.runtime.engine import Engine, EngineSettings, StartRequest
from flowstate.storage import MemoryStore, SQLiteStore, StateMachineRecord, Store

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench"

# A Wait and a Task whose first attempt fails and is retried after a back-off.
WAIT_RETRY = {
    "StartAt": "Hold",
    "States": {
        "Hold": {"Type": "Wait", "Seconds": 5, "Next": "Work"},
        "Work": {
            "Type": "Task",
            "Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:flaky",
            "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 2, "MaxAttempts": 2}],
            "End": True,
        },
    },
}


class Transient(Exception):
    pass


def noop(event: Any, context: Any) -> Any:
    return event


def flaky(event: Any, context: Any) -> Any:
    if context.idempotency_key.endswith("/0"):
        raise Transient("first attempt")
    return event


def workload(name: str) -> tuple[str, Any, Any, int]:
    if name == "wait_retry":
        return json.dumps(WAIT_RETRY), {"n": 1}, {"n": 1}, 3
    work = load_workload(name)
    return work.definition, work.input, work.expected, work.transitions_per_execution


async def run_once(store: Store, machine_type: str, name: str, executions: int) -> float:
    definition, value, expected, transitions = workload(name)
    now = datetime.now(UTC)
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
    if store.get_state_machine(arn) is None:
        store.create_state_machine(
            StateMachineRecord(arn, name, machine_type, definition, ROLE, "r1", now, now)
        )
    engine = Engine(
        store,
        clock=VirtualClock(),
        functions=FunctionRegistry({"noop": noop, "flaky": flaky}),
        settings=EngineSettings(express_history=True),
    )
    await engine.start()
    kind = "express" if machine_type == "EXPRESS" else "execution"
    stamp = time.time_ns()
    requests = [
        StartRequest(
            definition,
            arn,
            name,
            "r1",
            ROLE,
            machine_type,
            f"e{stamp}-{i}",
            f"arn:aws:states:{REGION}:{ACCOUNT}:{kind}:{name}:e{stamp}-{i}"
            + (":run" if kind == "express" else ""),
            json.dumps(value),
            value,
        )
        for i in range(executions)
    ]
    began = time.perf_counter()
    await asyncio.gather(*(engine.start_execution(r) for r in requests))
    await asyncio.gather(*(engine.wait_stopped(r.arn) for r in requests))
    elapsed = time.perf_counter() - began
    await engine.stop()
    for r in requests:
        row = store.get_execution(r.arn)
        if row is None or row.status != "SUCCEEDED" or json.loads(row.output or "") != expected:
            raise SystemExit(f"{name} {machine_type}: wrong result for {r.arn}: {row}")
    return executions * transitions / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--workloads", default="pass_chain_100,task_chain_10,wait_retry", help="comma-separated"
    )
    args = parser.parse_args()
    print(f"{args.executions} concurrent executions per run, median of {args.repeat} runs")
    print(f"{'workload':<16} {'express (memory)':>18} {'standard (sqlite)':>18} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.workloads.split(","):
            express, standard = [], []
            for n in range(args.repeat):
                express.append(
                    asyncio.run(run_once(MemoryStore(), "EXPRESS", name, args.executions))
                )
                sqlite = SQLiteStore(Path(tmp) / f"{name}-{n}.db")
                standard.append(asyncio.run(run_once(sqlite, "STANDARD", name, args.executions)))
                sqlite.close()
            e, s = statistics.median(express), statistics.median(standard)
            print(f"{name:<16} {e:>16,.0f}/s {s:>16,.0f}/s {s / e:>7.2f}")


if __name__ == "__main__":
    main()
