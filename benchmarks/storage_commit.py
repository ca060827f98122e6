"""Group-commit throughput of the storage backends: commits/s and rows/s per batch size.

A delta is a typical transition of a running Standard execution: the execution row
(status + a 512-byte snapshot) updated under its fencing generation, 2 history events
(~200-byte JSON details), one timer armed and one removed: 5 rows written.
Prints figures; asserts nothing.

    python benchmarks/storage_commit.py [--deltas 30000] [--executions 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flowstate.storage import (
    EventRecord,
    ExecutionDelta,
    ExecutionRecord,
    MemoryStore,
    SQLiteStore,
    Store,
    TimerRecord,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DETAILS = '{"stateEnteredEventDetails":{"name":"Step","input":"' + "x" * 150 + '"}}'
SNAPSHOT = bytes(512)
ROWS_PER_DELTA = 5


def seed(store: Store, count: int) -> list[ExecutionRecord]:
    records = [
        ExecutionRecord(
            arn=f"arn:aws:states:us-east-1:123456789012:execution:bench:e{i}",
            state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:bench",
            name=f"e{i}",
            type="STANDARD",
            status="RUNNING",
            input="{}",
            start_at=T0,
            snapshot=SNAPSHOT,
        )
        for i in range(count)
    ]
    for i in range(0, count, 500):
        store.commit(
            [
                ExecutionDelta(
                    r.arn,
                    r,
                    is_new=True,
                    events=[EventRecord(1, 0, "ExecutionStarted", T0, "{}")],
                    timers_added=[TimerRecord(r.arn, "t1", T0)],
                )
                for r in records[i : i + 500]
            ]
        )
    return records


def batches(records: list[ExecutionRecord], batch: int, count: int) -> list[list[ExecutionDelta]]:
    """``count`` batches of transitions, built up front so only ``commit`` is timed."""
    next_event = {r.arn: 2 for r in records}
    out = []
    cursor = 0
    step = 1
    for _ in range(count):
        deltas = []
        for _ in range(batch):
            r = records[cursor]
            cursor = (cursor + 1) % len(records)
            n = next_event[r.arn]
            next_event[r.arn] = n + 2
            now = T0 + timedelta(microseconds=step)
            step += 1
            deltas.append(
                ExecutionDelta(
                    r.arn,
                    replace(r, snapshot=SNAPSHOT),
                    events=[
                        EventRecord(n, n - 1, "PassStateExited", now, DETAILS),
                        EventRecord(n + 1, n, "WaitStateEntered", now, DETAILS),
                    ],
                    timers_removed=[f"t{n - 1}" if n > 2 else "t1"],
                    timers_added=[TimerRecord(r.arn, f"t{n + 1}", now + timedelta(seconds=60))],
                )
            )
        out.append(deltas)
    return out


def run(store: Store, work: list[list[ExecutionDelta]]) -> tuple[float, float]:
    began = time.perf_counter()
    for deltas in work:
        store.commit(deltas)
    elapsed = time.perf_counter() - began
    deltas_done = sum(len(d) for d in work)
    return len(work) / elapsed, deltas_done * ROWS_PER_DELTA / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deltas", type=int, default=30_000, help="per configuration")
    parser.add_argument("--executions", type=int, default=2000)
    args = parser.parse_args()
    print(f"{'backend':<14}{'batch':>6}{'commits/s':>12}{'deltas/s':>12}{'rows/s':>12}")
    for backend in ["memory", "sqlite NORMAL", "sqlite FULL"]:
        for batch in (1, 10, 100):
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "memory":
                    store: Store = MemoryStore()
                else:
                    level = backend.split()[1]
                    store = SQLiteStore(Path(tmp) / "bench.db", synchronous=level)
                records = seed(store, args.executions)
                work = batches(records, batch, args.deltas // batch)
                commits, rows = run(store, work)
                store.close()
            print(
                f"{backend:<14}{batch:>6}{commits:>12,.0f}{commits * batch:>12,.0f}{rows:>12,.0f}"
            )


if __name__ == "__main__":
    main()
