"""flowstate's durable engine, in-process, as a benchmark driver (the protocol of
``harness.protocol``).

Engines: ``flowstate-express`` (Express, in memory, history recorded in memory),
``flowstate-standard-sqlite`` (Standard on a fresh SQLite file per run) and
``flowstate-standard-postgres`` (Standard on a fresh PostgreSQL database per run, when
``flowstate.storage`` can open a ``postgresql://`` URL). Executions go through
``Engine.start_execution``/``wait_stopped`` on the real clock — the path the HTTP API calls.
The mode ``concurrent-async`` serves task_chain_10's Tasks with an ``async`` no-op function
on the event loop instead of the sync one on the thread pool.

    .venv/bin/python -m harness.flowstate_driver --engine flowstate-express \\
        --workload pass_chain_100 --mode concurrent --executions 200   # from benchmarks/
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import flowstate
from flowstate.cli.serve import tune_collector
from flowstate.integrations.functions import FunctionRegistry
from flowstate.runtime.clock import RealClock
from flowstate.runtime.engine import Engine, EngineSettings, StartRequest
from flowstate.storage import MemoryStore, SQLiteStore, StateMachineRecord, Store, open_store
from harness.noop_functions import noop, noop_async
from harness.protocol import DriverArgs, emit, parse_driver_args, rss_kb, timed, total_runs
from harness.workloads import (
    Workload,
    count_transitions,
    load_workload,
    same_json,
    with_wait_seconds,
)

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench"
POSTGRES_URL = os.environ.get(
    "FLOWSTATE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
FLEET_CHUNK = 5000  # executions started per gather in wait_fleet


def postgres_unavailable() -> str | None:
    """Why the PostgreSQL row cannot run, or None when ``flowstate.storage`` opens it."""
    try:
        store = open_store(POSTGRES_URL)
    except Exception as exc:
        return f"PostgreSQL backend not available ({type(exc).__name__})"
    close = getattr(store, "close", None)
    if close is not None:
        close()
    return None


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", POSTGRES_URL, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True,
        capture_output=True,
    )


@contextmanager
def fresh_store(engine: str, tmp: Path, run: int) -> Iterator[Store]:
    store: Store
    if engine == "flowstate-express":
        yield MemoryStore()
        return
    if engine == "flowstate-standard-sqlite":
        store = SQLiteStore(tmp / f"run{run}.db")
        try:
            yield store
        finally:
            store.close()
        return
    if engine == "flowstate-standard-postgres":
        database = f"flowstate_bench_{os.getpid()}_{run}"
        _psql(f"CREATE DATABASE {database}")
        store = open_store(POSTGRES_URL.rsplit("/", 1)[0] + "/" + database)
        try:
            yield store
        finally:
            close = getattr(store, "close", None)
            if close is not None:
                close()
            _psql(f"DROP DATABASE IF EXISTS {database}")
        return
    raise SystemExit(f"unknown engine {engine}")


class Runner:
    """One engine over one store, for one run: warm-up, then the timed unit."""

    def __init__(self, engine: Engine, store: Store, work: Workload, kind: str) -> None:
        self.engine, self.store, self.work = engine, store, work
        self.type = "EXPRESS" if kind == "flowstate-express" else "STANDARD"
        self.definition = work.definition
        self.machine_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{work.name}"
        self.serial = 0
        self.text = json.dumps(work.input)

    def create_machine(self, definition: str) -> None:
        self.definition = definition
        now = RealClock().now()
        self.store.create_state_machine(
            StateMachineRecord(
                self.machine_arn, self.work.name, self.type, definition, ROLE, "r1", now, now
            )
        )

    def request(self) -> StartRequest:
        self.serial += 1
        name = f"e{self.serial}"
        if self.type == "EXPRESS":
            arn = f"arn:aws:states:{REGION}:{ACCOUNT}:express:{self.work.name}:{name}:run"
        else:
            arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{self.work.name}:{name}"
        return StartRequest(
            self.definition,
            self.machine_arn,
            self.work.name,
            "r1",
            ROLE,
            self.type,
            name,
            arn,
            self.text,
            self.work.input,
        )

    async def run_one(self) -> str:
        request = self.request()
        await self.engine.start_execution(request)
        await self.engine.wait_stopped(request.arn)
        return request.arn

    async def warm_up(self) -> int:
        """One execution, not timed; the ``*StateEntered`` events of its history."""
        if self.type == "EXPRESS":
            # an Express history is not stored; StartSyncExecution's run keeps it in memory
            live = await self.engine.run_sync(self.request())
            self.check_value(live.execution.status, live.execution.output)
            return count_transitions([event.type for event in live.execution.events])
        arn = await self.run_one()
        self.check([arn])
        types: list[str] = []
        token: str | None = None
        while True:
            page = self.store.get_history(arn, max_results=1000, next_token=token)
            types.extend(event.type for event in page.items)
            token = page.next_token
            if token is None:
                return count_transitions(types)

    async def unit(self, mode: str, executions: int) -> list[str]:
        if mode == "sequential":
            return [await self.run_one() for _ in range(executions)]
        requests = [self.request() for _ in range(executions)]
        await asyncio.gather(*(self.engine.start_execution(r) for r in requests))
        await asyncio.gather(*(self.engine.wait_stopped(r.arn) for r in requests))
        return [r.arn for r in requests]

    def check_value(self, status: str, output: Any) -> None:
        if status != "SUCCEEDED":
            raise WrongResult(f"{status}")
        if not same_json(output, self.work.expected):
            raise WrongResult(f"wrong output {json.dumps(output)[:200]}")

    def check(self, arns: list[str]) -> None:
        for arn in arns:
            row = self.store.get_execution(arn)
            if row is None:
                raise WrongResult(f"{arn}: no execution row")
            if row.status != "SUCCEEDED":
                raise WrongResult(f"{arn}: {row.status} {row.error} {(row.cause or '')[:200]}")
            self.check_value(row.status, json.loads(row.output or "null"))


class WrongResult(Exception):
    pass


async def fleet(runner: Runner, executions: int, hold_seconds: int) -> dict[str, Any]:
    gc.collect()
    before = rss_kb()
    began = time.perf_counter()
    requests = [runner.request() for _ in range(executions)]
    for start in range(0, executions, FLEET_CHUNK):
        chunk = requests[start : start + FLEET_CHUNK]
        await asyncio.gather(*(runner.engine.start_execution(r) for r in chunk))
    started = time.perf_counter() - began
    after = rss_kb()
    await asyncio.gather(*(runner.engine.wait_stopped(r.arn) for r in requests))
    finished = time.perf_counter() - began
    runner.check([r.arn for r in requests])
    return {
        "hold_seconds": hold_seconds,
        "start_s": started,
        "all_done_s": finished,
        # a Wait never ends early: measured before the first deadline, all are waiting
        "waiting": executions if started < hold_seconds else None,
        "rss_before_kb": before,
        "rss_waiting_kb": after,
        "threads_per_waiting": 0,
    }


async def run(args: DriverArgs) -> dict[str, Any]:
    work = load_workload(args.workload)
    handler: Callable[..., Any] = noop_async if args.mode.endswith("-async") else noop
    walls: list[float] = []
    history: int | None = None
    fleet_figures: dict[str, Any] | None = None
    error: str | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(total_runs(args)):
            with fresh_store(args.engine, Path(tmp), n) as store:
                engine = Engine(
                    store,
                    clock=RealClock(),
                    functions=FunctionRegistry({"noop": handler}),
                    settings=EngineSettings(express_history=True),
                )
                await engine.start()
                tune_collector()  # as `flowstate serve` does once it has started
                runner = Runner(engine, store, work, args.engine)
                definition = work.definition
                if args.mode == "fleet":
                    definition = with_wait_seconds(definition, args.hold_seconds)
                runner.create_machine(definition)
                try:
                    history = await runner.warm_up()
                    if args.mode == "fleet":
                        fleet_figures = await fleet(runner, args.executions, args.hold_seconds)
                        walls.append(fleet_figures["all_done_s"])
                    else:
                        began = time.perf_counter()
                        arns = await runner.unit(args.mode.split("-")[0], args.executions)
                        walls.append(time.perf_counter() - began)
                        runner.check(arns)
                except WrongResult as wrong:
                    error = error or str(wrong)
                finally:
                    await engine.stop()
    return {
        "walls": timed(args, walls),
        "output_ok": error is None,
        "error": error,
        "history_transitions": history,
        "fleet": fleet_figures,
    }


def main() -> None:
    args = parse_driver_args()
    line: dict[str, Any] = {
        "engine": args.engine,
        "workload": args.workload,
        "mode": args.mode,
        "executions": args.executions,
        "version": f"flowstate {flowstate.__version__}",
        "note": None,
    }
    if args.engine == "flowstate-standard-postgres":
        reason = postgres_unavailable()
        if reason is not None:
            emit({**line, "unavailable": reason})
            return
    emit({**line, **asyncio.run(run(args))})


if __name__ == "__main__":
    main()
