"""Memory per waiting Standard execution: ``wait_fleet`` with its Wait lengthened to an hour.

Starts ``--executions`` executions (100,000 by default) in-process on an SQLite store, checks
that every one of them is inside its Wait at the moment of measurement (one durable timer row
each, none finished), reads the process's resident memory before and after, then lets the
clock reach the deadline and checks that all of them complete with the expected output.
Figures only: nothing is asserted about time or size.

    .venv/bin/python benchmarks/wait_fleet_memory.py [--executions 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.protocol import rss_kb
from harness.workloads import load_workload, with_wait_seconds

from flowstate.runtime.clock import VirtualClock
from flowstate.runtime.engine import Engine, StartRequest
from flowstate.storage import SQLiteStore, StateMachineRecord

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:wait_fleet"
ROLE = "arn:aws:iam::123456789012:role/bench"


class HeldClock(VirtualClock):
    """A virtual clock that does not move until released: every execution stays waiting."""

    held = True

    def advance_to(self, moment: datetime) -> None:
        if not self.held:
            super().advance_to(moment)


async def main(executions: int, db: Path) -> None:
    work = load_workload("wait_fleet")
    text = with_wait_seconds(work.definition, 3600)
    value, expected = work.input, work.expected
    store = SQLiteStore(db)
    now = datetime.now(UTC)
    store.create_state_machine(
        StateMachineRecord(ARN, "wait_fleet", "STANDARD", text, ROLE, "r1", now, now)
    )
    clock = HeldClock(now)
    engine = Engine(store, clock=clock)
    await engine.start()
    requests = [
        StartRequest(
            text,
            ARN,
            "wait_fleet",
            "r1",
            ROLE,
            "STANDARD",
            f"w{i}",
            f"arn:aws:states:us-east-1:123456789012:execution:wait_fleet:w{i}",
            json.dumps(value),
            value,
        )
        for i in range(executions)
    ]
    # warm up (imports, caches, the SQLite page cache) before the baseline
    await engine.start_execution(requests[0])
    gc.collect()
    before = rss_kb()
    began = time.perf_counter()
    chunk = 5000
    for start in range(1, executions, chunk):
        await asyncio.gather(*(engine.start_execution(r) for r in requests[start : start + chunk]))
    started = time.perf_counter() - began
    gc.collect()
    after = rss_kb()
    timers = len(store.due_timers(now + timedelta(days=1), limit=executions + 1))
    running = sum(
        1
        for r in requests[:: max(1, executions // 1000)]
        if (row := store.get_execution(r.arn)) and row.status == "RUNNING"
    )
    print(f"executions started: {executions:,} in {started:.1f} s ({executions / started:,.0f}/s)")
    print(f"durable timers armed (executions inside the Wait): {timers:,}")
    print(
        f"sampled executions RUNNING: {running} of {len(requests[:: max(1, executions // 1000)])}"
    )
    print(f"executions held in memory: {len(engine._live):,} (LRU cache)")
    print(f"resident memory: {before:,} KB -> {after:,} KB")
    print(f"growth per waiting execution: {(after - before) * 1024 / executions:,.0f} bytes")
    print(f"peak RSS (ru_maxrss): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss:,} KB")
    clock.held = False
    began = time.perf_counter()
    await asyncio.gather(*(engine.wait_stopped(r.arn) for r in requests))
    finished = time.perf_counter() - began
    await engine.stop()
    wrong = 0
    for r in requests:
        row = store.get_execution(r.arn)
        if row is None or row.status != "SUCCEEDED" or json.loads(row.output or "") != expected:
            wrong += 1
    print(
        f"completed after the deadline: {executions - wrong:,} correct, {wrong} wrong, in {finished:.1f} s"
    )
    store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(args.executions, Path(tmp) / "fleet.db"))
