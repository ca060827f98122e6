"""The pipelined loop: callers answered only after their own change lands, and an execution
the interpreter cannot step is failed (``States.Runtime``), never lost nor left hanging."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from test_engine import ACCOUNT, REGION, T0, deploy, request

from flowstate.integrations.functions import FunctionRegistry
from flowstate.runtime.clock import RealClock, VirtualClock
from flowstate.runtime.engine import Engine, EngineSettings
from flowstate.storage import ExecutionDelta, StorageError, Store, open_store

CHARGE = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:charge"
TASK_THEN_WAIT = {
    "StartAt": "Charge",
    "States": {
        "Charge": {"Type": "Task", "Resource": CHARGE, "Next": "Hold"},
        "Hold": {"Type": "Wait", "Seconds": 3600, "End": True},
    },
}


class GatedStore:
    """A store whose commits wait while the gate is closed (a slow disk, on purpose)."""

    blocking = True  # (so the engine calls it from its threads, as it would a disk)

    def __init__(self, store: Store) -> None:
        self.store = store
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def commit(self, batch: Sequence[ExecutionDelta]) -> None:
        self.entered.set()
        self.gate.wait()
        self.store.commit(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_stop_that_arrives_during_a_commit_is_answered_after_its_own_commit() -> None:
    async def main() -> None:
        store = GatedStore(open_store("memory:"))
        text = deploy(store.store, TASK_THEN_WAIT)
        release = asyncio.Event()

        async def charge(event: Any, context: Any) -> Any:
            await release.wait()
            return {"paid": True}

        engine = Engine(
            store,  # type: ignore[arg-type]
            clock=VirtualClock(T0),
            functions=FunctionRegistry({"charge": charge}),
            settings=EngineSettings(),
        )
        await engine.start()
        start = request(text, 1)
        await engine.start_execution(start)
        store.gate.clear()
        store.entered.clear()
        release.set()  # the task's result: a tick whose commit is held
        await asyncio.get_running_loop().run_in_executor(None, store.entered.wait)
        stop = asyncio.create_task(engine.stop_execution(start.arn, "Halt", "by test"))
        await asyncio.sleep(0.02)
        assert not stop.done()
        store.gate.set()
        await stop
        row = store.get_execution(start.arn)
        assert row is not None and (row.status, row.error) == ("ABORTED", "Halt")
        await engine.stop()

    asyncio.run(main())


def test_an_execution_the_interpreter_cannot_step_fails_with_states_runtime(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        store = open_store(str(tmp_path / "f.db"))
        text = deploy(store, TASK_THEN_WAIT)

        calls: list[int] = []

        def charge(event: Any, context: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                return {"odd": "\ud800"}  # a lone surrogate: no UTF-8 for it
            return {"paid": True}

        engine = Engine(
            store, clock=VirtualClock(T0), functions=FunctionRegistry({"charge": charge})
        )
        await engine.start()
        bad, good = request(text, 1), request(text, 2)
        await engine.start_execution(bad)
        await asyncio.wait_for(engine.wait_stopped(bad.arn), 10)
        row = store.get_execution(bad.arn)
        assert row is not None and row.status == "FAILED"
        assert row.error == "States.Runtime"
        assert "UnicodeEncodeError" in (row.cause or "")
        events = store.get_history(bad.arn, 1000).items
        assert [e.id for e in events] == list(range(1, len(events) + 1))
        assert events[-1].type == "ExecutionFailed"
        # The engine carries on with other executions.
        await engine.start_execution(good)
        await engine.until_idle()
        types = [e.type for e in store.get_history(good.arn, 1000).items]
        assert types[-1] == "WaitStateEntered" and "LambdaFunctionSucceeded" in types
        await engine.stop()

    asyncio.run(main())


def test_a_redrive_waits_for_stale_work_on_the_same_execution() -> None:
    async def main() -> None:
        store = open_store("memory:")
        store.blocking = True  # its reads go to a thread, as a disk's do: one is slow below
        fail = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "c"}}}
        text = deploy(store, fail)
        engine = Engine(store, clock=VirtualClock(T0), functions=FunctionRegistry({}))
        await engine.start()
        start = request(text, 1)
        await engine.start_execution(start)
        await engine.wait_stopped(start.arn)
        loading = threading.Event()
        real = engine._read_rows

        def slow_load(arns: list[str]) -> Any:
            loading.wait(5)
            return real(arns)

        engine._read_rows = slow_load  # type: ignore[method-assign]
        late_stop = asyncio.create_task(engine.stop_execution(start.arn, None, None))
        await asyncio.sleep(0.01)
        redrive = asyncio.create_task(engine.redrive_execution(start.arn))
        await asyncio.sleep(0.01)
        assert not redrive.done()  # waits for the stale stop to be dropped
        loading.set()
        engine._read_rows = real  # type: ignore[method-assign]
        row = await asyncio.wait_for(redrive, 5)
        await late_stop
        assert row.redrive_count == 1
        await engine.wait_stopped(start.arn)
        final = store.get_execution(start.arn)
        assert final is not None and (final.status, final.redrive_count) == ("FAILED", 1)
        await engine.stop()

    asyncio.run(main())


def test_a_jsonata_execution_reloaded_from_the_store_runs_on_the_loops_thread(
    tmp_path: Path,
) -> None:
    """jsonatapy's compiled expressions may only be used on the thread that made them: a
    machine parsed when an evicted execution is reloaded must be parsed on the loop."""
    waits = {
        "QueryLanguage": "JSONata",
        "StartAt": "Hold",
        "States": {
            "Hold": {"Type": "Wait", "Seconds": 60, "Next": "Add"},
            "Add": {"Type": "Pass", "Output": "{% $states.input.x + 1 %}", "End": True},
        },
    }

    async def main() -> None:
        path = str(tmp_path / "j.db")
        store = open_store(path)
        text = deploy(store, waits)
        first = Engine(store, clock=VirtualClock(T0), functions=FunctionRegistry({}))
        await first.start()
        start = request(text, 1)
        start = dataclasses.replace(start, input='{"x": 41}', input_value={"x": 41})
        await first.start_execution(start)
        await first.stop()  # the execution waits, stored; a new engine reloads it
        second = Engine(store, clock=VirtualClock(T0), functions=FunctionRegistry({}))
        await second.start()
        await asyncio.wait_for(second.wait_stopped(start.arn), 10)
        row = store.get_execution(start.arn)
        assert row is not None and (row.status, row.output) == ("SUCCEEDED", "42")
        await second.stop()

    asyncio.run(main())


def test_stop_still_answers_a_start_queued_in_the_same_turn() -> None:
    async def main() -> None:
        store = open_store("memory:")
        text = deploy(store, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        engine = Engine(store, clock=VirtualClock(T0), functions=FunctionRegistry({}))
        await engine.start()
        start = request(text, 1)
        pending = asyncio.ensure_future(engine.start_execution(start))
        await asyncio.sleep(0)  # enqueued; the pump has not taken it yet
        await engine.stop()
        done, _ = await asyncio.wait({pending}, timeout=5)
        assert done, "start_execution was never answered"
        row = store.get_execution(start.arn)
        assert row is not None and row.status == "SUCCEEDED"

    asyncio.run(main())


def test_a_failed_reload_puts_the_work_and_its_callers_back() -> None:
    async def main() -> None:
        store = open_store("memory:")
        text = deploy(store, TASK_THEN_WAIT)

        def charge(event: Any, context: Any) -> Any:
            return {"paid": True}

        engine = Engine(
            store,
            # (real time: a virtual clock would end the hour's Wait as soon as all is idle)
            clock=RealClock(),
            functions=FunctionRegistry({"charge": charge}),
            settings=EngineSettings(cache_size=0),  # waiting executions leave memory
        )
        await engine.start()
        start = request(text, 1)
        await engine.start_execution(start)
        await engine.until_idle()
        assert engine.live(start.arn) is None  # evicted while it waits
        real = engine._read_rows
        failures = [1]

        def flaky(arns: list[str]) -> Any:
            if failures:
                failures.pop()
                raise RuntimeError("the database hiccuped")
            return real(arns)

        engine._read_rows = flaky  # type: ignore[method-assign]
        await asyncio.wait_for(engine.stop_execution(start.arn, "Halt", "after a retry"), 5)
        row = store.get_execution(start.arn)
        assert row is not None and (row.status, row.error) == ("ABORTED", "Halt")
        assert failures == []
        await engine.stop()

    asyncio.run(main())


class FailOnce:
    """A store whose first commit that ends one of ``arns`` fails (a disk hiccup)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.arns: set[str] = set()
        self.failed: list[list[str]] = []

    def commit(self, batch: Sequence[ExecutionDelta]) -> None:
        ending = [
            d.execution_arn
            for d in batch
            if d.execution_arn in self.arns and d.execution and d.execution.status != "RUNNING"
        ]
        if ending and not self.failed:
            self.failed.append(sorted(d.execution_arn for d in batch))
            raise StorageError("disk hiccup")
        self.store.commit(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_an_express_end_whose_commit_failed_is_written_again() -> None:
    async def main() -> None:
        store = FailOnce(open_store("memory:"))
        one_task = {
            "StartAt": "C",
            "States": {"C": {"Type": "Task", "Resource": CHARGE, "End": True}},
        }
        text = deploy(store.store, one_task)
        release = asyncio.Event()

        async def charge(event: Any, context: Any) -> Any:
            await release.wait()
            return {"paid": True}

        engine = Engine(
            store,  # type: ignore[arg-type]
            clock=VirtualClock(T0),
            functions=FunctionRegistry({"charge": charge}),
        )
        await engine.start()
        express, standard = request(text, 1, "EXPRESS"), request(text, 2)
        await engine.start_execution(express)
        await engine.start_execution(standard)
        while engine._inflight < 2:  # both calls running, waiting for ``release``
            await asyncio.sleep(0.01)
        store.arns = {express.arn}  # the tick that ends the Express execution fails to commit
        release.set()
        for started in (standard, express):
            await asyncio.wait_for(engine.wait_stopped(started.arn), 5)
            row = store.get_execution(started.arn)
            assert row is not None and row.status == "SUCCEEDED", (started.type, row)
        assert store.failed  # the failure did happen
        await engine.stop()

    asyncio.run(main())


def test_an_in_memory_store_is_read_and_committed_on_the_loop() -> None:
    """The in-memory store never waits: no thread hand-over for its commits and reads; a
    store that may wait (``blocking``) is committed from the writer thread."""

    class Recording:
        def __init__(self, store: Store, blocking: bool) -> None:
            self.store = store
            self.blocking = blocking
            self.threads: set[str] = set()

        def commit(self, batch: Sequence[ExecutionDelta]) -> None:
            self.threads.add(threading.current_thread().name)
            self.store.commit(batch)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.store, name)

    async def main(blocking: bool) -> set[str]:
        store = Recording(open_store("memory:"), blocking)
        text = deploy(store.store, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        engine = Engine(store, clock=VirtualClock(T0), functions=FunctionRegistry({}))  # type: ignore[arg-type]
        await engine.start()
        start = request(text, 1)
        await engine.start_execution(start)
        await engine.wait_stopped(start.arn)
        row = store.get_execution(start.arn)
        assert row is not None and row.status == "SUCCEEDED"
        await engine.stop()
        return store.threads

    assert asyncio.run(main(blocking=False)) == {threading.main_thread().name}
    threads = asyncio.run(main(blocking=True))
    assert threads and all(name.startswith("flowstate-commit") for name in threads)
