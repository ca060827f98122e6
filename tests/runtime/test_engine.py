"""The durable loop, in process, on the virtual clock: no real waiting anywhere."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowstate.integrations.functions import FunctionRegistry
from flowstate.runtime.clock import VirtualClock
from flowstate.runtime.engine import Engine, EngineSettings, StartRequest
from flowstate.storage import SQLiteStore, StateMachineRecord, Store, open_store

REGION, ACCOUNT = "us-east-1", "123456789012"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:orders"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/r"
T0 = datetime(2026, 1, 1, tzinfo=UTC)

MIXED = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": {"step": 1}, "ResultPath": "$.prep", "Next": "Hold"},
        "Hold": {"Type": "Wait", "Seconds": 3600, "Next": "Charge"},
        "Charge": {
            "Type": "Task",
            "Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:charge",
            "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 30, "MaxAttempts": 3}],
            "ResultPath": "$.charge",
            "End": True,
        },
    },
}


class Flaky(Exception):
    pass


class Ledger:
    """A function with a side effect per call, failing the first attempt of every order."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, event: Any, context: Any) -> Any:
        self.calls[context.idempotency_key] += 1
        if context.idempotency_key.endswith("/0"):
            raise Flaky("try again")
        return {"charged": event["i"]}


def store_for(kind: str, tmp_path: Path) -> Store:
    return open_store("memory:" if kind == "memory" else str(tmp_path / "flowstate.db"))


def deploy(store: Store, definition: dict[str, Any], type: str = "STANDARD") -> str:
    text = json.dumps(definition)
    if store.get_state_machine(MACHINE_ARN) is None:
        store.create_state_machine(
            StateMachineRecord(MACHINE_ARN, "orders", type, text, ROLE, "r1", T0, T0)
        )
    return text


def request(definition: str, i: int, type: str = "STANDARD") -> StartRequest:
    kind = "express" if type == "EXPRESS" else "execution"
    return StartRequest(
        definition=definition,
        state_machine_arn=MACHINE_ARN,
        state_machine_name="orders",
        revision_id="r1",
        role_arn=ROLE,
        type=type,
        name=f"e{i}",
        arn=f"arn:aws:states:{REGION}:{ACCOUNT}:{kind}:orders:e{i}",
        input=json.dumps({"i": i}),
        input_value={"i": i},
    )


def engine(store: Store, clock: VirtualClock, fn: Callable[[Any, Any], Any], **kw: Any) -> Engine:
    return Engine(
        store,
        clock=clock,
        functions=FunctionRegistry({"charge": fn}),
        settings=EngineSettings(**kw),
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(params=["memory", "sqlite"])
def kind(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def test_standard_executions_run_to_the_end_with_group_commit(kind: str, tmp_path: Path) -> None:
    store = store_for(kind, tmp_path)
    text = deploy(store, MIXED)
    ledger = Ledger()

    async def main() -> Engine:
        eng = engine(store, VirtualClock(T0), ledger)
        await eng.start()
        await asyncio.gather(*(eng.start_execution(request(text, i)) for i in range(50)))
        await asyncio.gather(*(eng.wait_stopped(request(text, i).arn) for i in range(50)))
        await eng.stop()
        return eng

    eng = run(main())
    for i in range(50):
        row = store.get_execution(request(text, i).arn)
        assert row is not None and row.status == "SUCCEEDED"
        assert row.snapshot is None  # nothing can resume a succeeded execution
        assert json.loads(row.output or "") == {
            "i": i,
            "prep": {"step": 1},
            "charge": {"charged": i},
        }
        events = store.get_history(row.arn, 1000).items
        assert [e.id for e in events] == list(range(1, len(events) + 1))
        assert [e.previous_event_id for e in events][:2] == [0, 0]  # AWS: as recorded
        assert [e.type for e in events].count("ExecutionSucceeded") == 1
        assert [e.type for e in events].count("LambdaFunctionFailed") == 1
        wait_entered = next(e for e in events if e.type == "WaitStateEntered")
        wait_exited = next(e for e in events if e.type == "WaitStateExited")
        assert wait_exited.timestamp - wait_entered.timestamp == timedelta(seconds=3600)
    # every attempt ran once, under its own key
    assert set(ledger.calls.values()) == {1} and len(ledger.calls) == 100
    # 50 executions, each with several side-effect boundaries, in far fewer transactions
    assert eng.commits < 50 * 4
    assert store.due_timers(T0 + timedelta(days=3650)) == []


def test_an_api_call_is_answered_after_its_commit(tmp_path: Path) -> None:
    store = store_for("sqlite", tmp_path)
    text = deploy(store, MIXED)

    async def main() -> None:
        eng = engine(store, VirtualClock(T0), Ledger())
        await eng.start()
        record = await eng.start_execution(request(text, 1))
        # as soon as StartExecution returns, another connection sees the execution
        other = SQLiteStore(tmp_path / "flowstate.db")
        stored = other.get_execution(record.arn)
        assert stored is not None and stored.status == "RUNNING"
        assert [e.type for e in other.get_history(record.arn).items][:3] == [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
        ]
        other.close()
        await eng.stop_execution(record.arn, "Stopped.By", "test")
        stopped = store.get_execution(record.arn)
        assert stopped is not None and stopped.status == "ABORTED"
        assert stopped.error == "Stopped.By"
        await eng.stop()

    run(main())


def _crash(eng: Engine) -> None:
    """What SIGKILL leaves: nothing drains, nothing more is written."""
    eng._closing = True
    for task in eng._tasks:
        task.cancel()
    if eng._invoker is not None:
        eng._invoker.close()
    eng._writer.shutdown(wait=True)
    eng._reader.shutdown(wait=True)  # (a real crash ends the threads with the process)


def test_crash_and_recover_keeps_deadlines_and_runs_each_attempt_once(tmp_path: Path) -> None:
    path = tmp_path / "flowstate.db"
    store = SQLiteStore(path)
    text = deploy(store, MIXED)
    ledger = Ledger()
    clock = VirtualClock(T0)

    async def first() -> None:
        eng = engine(store, clock, ledger)
        await eng.start()
        await asyncio.gather(*(eng.start_execution(request(text, i)) for i in range(20)))
        _crash(eng)  # every execution sits in its one-hour Wait

    run(first())
    store.close()
    assert ledger.calls == Counter()
    clock.advance_to(T0 + timedelta(hours=5))  # down for five hours

    reopened = SQLiteStore(path)

    async def second() -> None:
        eng = engine(reopened, clock, ledger)
        await eng.start()
        await asyncio.gather(*(eng.wait_stopped(request(text, i).arn) for i in range(20)))
        await eng.stop()

    run(second())
    for i in range(20):
        row = reopened.get_execution(request(text, i).arn)
        assert row is not None and row.status == "SUCCEEDED"
        events = reopened.get_history(row.arn, 1000).items
        assert [e.id for e in events] == list(range(1, len(events) + 1))
        entered = next(e for e in events if e.type == "WaitStateEntered")
        exited = next(e for e in events if e.type == "WaitStateExited")
        # the overdue timer fired at once on restart: at recovery time, not five hours later
        # again, and never before its original deadline
        assert exited.timestamp >= entered.timestamp + timedelta(hours=1)
        assert exited.timestamp == T0 + timedelta(hours=5)
    assert set(ledger.calls.values()) == {1}


def test_a_task_in_flight_at_the_crash_is_re_run_with_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "flowstate.db"
    store = SQLiteStore(path)
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": {
                "Type": "Task",
                "Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:charge",
                "End": True,
            }
        },
    }
    text = deploy(store, definition)
    keys: list[str] = []
    release = asyncio.Event()

    async def stuck(event: Any, context: Any) -> Any:
        keys.append(context.idempotency_key)
        await release.wait()  # never released: the process dies first
        return {}

    async def first() -> None:
        eng = engine(store, VirtualClock(T0), stuck)
        await eng.start()
        await eng.start_execution(request(text, 1))
        while not keys:
            await asyncio.sleep(0)
        _crash(eng)

    run(first())
    store.close()

    def done(event: Any, context: Any) -> Any:
        keys.append(context.idempotency_key)
        return {"paid": True}

    reopened = SQLiteStore(path)

    async def second() -> None:
        eng = engine(reopened, VirtualClock(T0), done)
        await eng.start()
        await eng.wait_stopped(request(text, 1).arn)
        await eng.stop()

    run(second())
    assert len(keys) == 2 and keys[0] == keys[1]  # the same attempt, the same key
    row = reopened.get_execution(request(text, 1).arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == '{"paid":true}'
    types = [e.type for e in reopened.get_history(row.arn, 100).items]
    assert types.count("LambdaFunctionStarted") == 1  # recorded once, before the crash
    assert types[-1] == "ExecutionSucceeded"


def test_express_async_start_is_written_once_and_re_run_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "flowstate.db"
    store = SQLiteStore(path)
    definition = {
        "StartAt": "Hold",
        "States": {
            "Hold": {"Type": "Wait", "Seconds": 60, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    text = deploy(store, definition, "EXPRESS")

    async def first() -> None:
        eng = engine(store, VirtualClock(T0), Ledger())
        await eng.start()
        record = await eng.start_execution(request(text, 1, "EXPRESS"))
        assert record.snapshot is None
        _crash(eng)

    run(first())
    row = store.get_execution(request(text, 1, "EXPRESS").arn)
    assert row is not None and row.status == "RUNNING" and row.snapshot is None
    assert store.get_history(row.arn).items == []  # no per-transition persistence
    store.close()

    reopened = SQLiteStore(path)

    async def second() -> None:
        eng = engine(reopened, VirtualClock(T0), Ledger())
        await eng.start()
        await eng.wait_stopped(request(text, 1, "EXPRESS").arn)
        await eng.stop()

    run(second())
    row = reopened.get_execution(request(text, 1, "EXPRESS").arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == '{"i":1}'


def test_express_runs_at_most_five_minutes(tmp_path: Path) -> None:
    store = store_for("memory", tmp_path)
    definition = {
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Wait", "Seconds": 600, "End": True}},
    }
    text = deploy(store, definition, "EXPRESS")

    async def main() -> Any:
        eng = engine(store, VirtualClock(T0), Ledger())
        await eng.start()
        live = await eng.run_sync(request(text, 1, "EXPRESS"))
        await eng.stop()
        return live

    live = run(main())
    assert live.execution.status == "TIMED_OUT"
    assert live.execution.stop_time == T0 + timedelta(seconds=300)
    # a synchronous Express execution is never written
    assert store.get_execution(request(text, 1, "EXPRESS").arn) is None


def test_the_history_quota_fails_the_execution(tmp_path: Path) -> None:
    store = store_for("memory", tmp_path)
    loop = {
        "StartAt": "Spin",
        "States": {
            "Spin": {"Type": "Pass", "Next": "Again"},
            "Again": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.stop", "IsPresent": True, "Next": "Done"}],
                "Default": "Spin",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    text = deploy(store, loop)

    async def main() -> None:
        eng = engine(store, VirtualClock(T0), Ledger(), max_history_events=100)
        await eng.start()
        await eng.start_execution(request(text, 1))
        await eng.wait_stopped(request(text, 1).arn)
        await eng.stop()

    run(main())
    row = store.get_execution(request(text, 1).arn)
    assert row is not None and row.status == "FAILED" and row.error == "States.Runtime"
    assert "maximum number of history events (100)" in (row.cause or "")
    events = store.get_history(row.arn, 1000).items
    assert len(events) <= 100 and events[-1].type == "ExecutionFailed"


def test_waiting_executions_are_evicted_from_memory(tmp_path: Path) -> None:
    store = store_for("sqlite", tmp_path)
    text = deploy(store, MIXED)

    async def main() -> int:
        eng = engine(store, VirtualClock(T0), Ledger(), cache_size=10)
        await eng.start()
        await asyncio.gather(*(eng.start_execution(request(text, i)) for i in range(100)))
        held = len(eng._live)
        await asyncio.gather(*(eng.wait_stopped(request(text, i).arn) for i in range(100)))
        await eng.stop()
        return held

    held = run(main())
    assert held <= 10
    assert all(
        (row := store.get_execution(request(text, i).arn)) is not None and row.status == "SUCCEEDED"
        for i in range(100)
    )
