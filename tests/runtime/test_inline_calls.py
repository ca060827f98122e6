"""Lambda tasks whose answer is known within the tick that scheduled them: an ``async``
handler that returns without awaiting, a sync handler's batch, a handler's own copy of its
event."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flowstate.integrations.functions import FunctionRegistry
from flowstate.integrations.invoker import FunctionInvoker
from flowstate.interpreter.messages import TaskSucceeded
from flowstate.runtime.clock import VirtualClock
from flowstate.runtime.engine import (
    INLINE_CALLS_PER_TICK,
    QUICK_CALL_SECONDS,
    Engine,
    EngineSettings,
    StartRequest,
)
from flowstate.storage import StateMachineRecord, Store, open_store
from flowstate.testing import run_workflow

REGION, ACCOUNT = "us-east-1", "123456789012"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:chain"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/r"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def chain(length: int, **extra: Any) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for i in range(1, length + 1):
        state: dict[str, Any] = {"Type": "Task", "Resource": FN + "step", **extra}
        state.update({"End": True} if i == length else {"Next": f"T{i + 1}"})
        states[f"T{i}"] = state
    return {"StartAt": "T1", "States": states}


def request(definition: dict[str, Any], name: str, type: str, value: Any) -> StartRequest:
    kind = "express" if type == "EXPRESS" else "execution"
    return StartRequest(
        definition=json.dumps(definition),
        state_machine_arn=MACHINE_ARN,
        state_machine_name="chain",
        revision_id="r1",
        role_arn=ROLE,
        type=type,
        name=name,
        arn=f"arn:aws:states:{REGION}:{ACCOUNT}:{kind}:chain:{name}",
        input=json.dumps(value),
        input_value=value,
    )


def run_one(
    store: Store,
    definition: dict[str, Any],
    handler: Callable[..., Any],
    value: Any,
    type: str = "STANDARD",
    **settings: Any,
) -> tuple[Engine, str]:
    store.create_state_machine(
        StateMachineRecord(MACHINE_ARN, "chain", type, json.dumps(definition), ROLE, "r1", T0, T0)
    )
    start = request(definition, "e1", type, value)

    async def main() -> Engine:
        engine = Engine(
            store,
            clock=VirtualClock(T0),
            functions=FunctionRegistry({"step": handler}),
            settings=EngineSettings(express_history=True, **settings),
        )
        await engine.start()
        await engine.start_execution(start)
        await engine.wait_stopped(start.arn)
        await engine.stop()
        return engine

    return asyncio.run(main()), start.arn


def test_quick_async_calls_complete_within_the_tick_after_the_stored_start(
    tmp_path: Path,
) -> None:
    store = open_store(str(tmp_path / "flowstate.db"))
    stored_when_called: list[bool] = []

    async def step(event: Any, context: Any) -> Any:
        # the execution's start is stored before its first call, as for any side effect
        stored_when_called.append(store.get_execution(arn_of("e1")) is not None)
        return {"n": event["n"] + 1}

    engine, arn = run_one(store, chain(5), step, {"n": 0})
    row = store.get_execution(arn)
    assert (
        row is not None and row.status == "SUCCEEDED" and json.loads(row.output or "") == {"n": 5}
    )
    assert stored_when_called == [True] * 5
    # the start is one commit; the five calls and the end land in a second one
    assert engine.commits == 2
    types = [e.type for e in store.get_history(arn, 1000).items]
    per_task = [
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "TaskStateExited",
    ]
    assert types == ["ExecutionStarted", *per_task * 5, "ExecutionSucceeded"]
    assert store.pending_tasks(arn) == []  # no task row was left behind


def test_an_express_execution_of_quick_calls_lands_start_and_end_in_one_commit(
    tmp_path: Path,
) -> None:
    """Express is at-least-once: its first tick calls too, and its start and its end are
    written together (a Standard execution calls only once its start is stored, above)."""
    store = open_store(str(tmp_path / "flowstate.db"))
    stored_when_called: list[bool] = []

    async def step(event: Any, context: Any) -> Any:
        stored_when_called.append(store.get_execution(express_arn("e1")) is not None)
        return {"n": event["n"] + 1}

    engine, arn = run_one(store, chain(4), step, {"n": 0}, type="EXPRESS")
    assert arn == express_arn("e1")
    row = store.get_execution(arn)
    assert (
        row is not None and row.status == "SUCCEEDED" and json.loads(row.output or "") == {"n": 4}
    )
    assert stored_when_called == [False] * 4  # called before anything was written
    assert engine.commits == 1


def express_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:express:chain:{name}"


def arn_of(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:chain:{name}"


def test_a_long_run_of_quick_calls_is_spread_over_ticks(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "flowstate.db"))
    length = INLINE_CALLS_PER_TICK * 2 + 10

    async def step(event: Any, context: Any) -> Any:
        return event + 1

    engine, arn = run_one(store, chain(length), step, 0)
    row = store.get_execution(arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == str(length)
    # start, then at most INLINE_CALLS_PER_TICK calls per tick
    assert engine.commits == 1 + 3


def test_an_async_call_that_awaits_is_answered_later(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "flowstate.db"))

    async def step(event: Any, context: Any) -> Any:
        await asyncio.sleep(0)
        return [*event, len(event)]

    _, arn = run_one(store, chain(3), step, [])
    row = store.get_execution(arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == "[0,1,2]"
    events = store.get_history(arn, 1000).items
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events].count("LambdaFunctionSucceeded") == 3


def test_a_failure_inside_the_tick_is_caught_and_retried(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "flowstate.db"))
    attempts: list[str] = []

    async def step(event: Any, context: Any) -> Any:
        attempts.append(context.idempotency_key)
        if len(attempts) < 3:
            raise RuntimeError(f"attempt {len(attempts)}")
        return "ok"

    definition = chain(
        1, Retry=[{"ErrorEquals": ["RuntimeError"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    )
    definition["States"]["T1"]["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    _, arn = run_one(store, definition, step, {})
    row = store.get_execution(arn)
    assert row is not None and row.status == "SUCCEEDED"
    # one retry, then the catcher: the error output carries the second attempt's cause
    assert [key.rsplit("/", 1)[1] for key in attempts] == ["0", "1"]
    cause = json.loads(json.loads(row.output or "")["Cause"])
    assert cause["errorType"] == "RuntimeError" and cause["errorMessage"] == "attempt 2"


LOCAL: contextvars.ContextVar[str] = contextvars.ContextVar("local", default="engine")


@pytest.mark.parametrize("type", ["STANDARD", "EXPRESS"])
def test_a_handler_without_await_runs_through_detached_from_the_engine(
    tmp_path: Path, type: str
) -> None:
    """An ``async`` handler that cannot suspend is run in place, not as a task: it sees no
    current task (not the engine's), and what it sets in its context stays there."""
    store = open_store(str(tmp_path / "flowstate.db"))
    seen: list[tuple[Any, str]] = []

    async def step(event: Any, context: Any) -> Any:
        seen.append((asyncio.current_task(), LOCAL.get()))
        LOCAL.set("handler")
        return event + 1

    _, arn = run_one(store, chain(3), step, 0, type=type)
    row = store.get_execution(arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == "3"
    assert seen == [(None, "engine")] * 3  # each call in a fresh copy of the engine's context
    assert LOCAL.get() == "engine"


@pytest.mark.parametrize("raised", ["ValueError", "CancelledError"])
def test_a_handler_without_await_that_raises_fails_its_task(tmp_path: Path, raised: str) -> None:
    store = open_store(str(tmp_path / "flowstate.db"))

    async def step(event: Any, context: Any) -> Any:
        if raised == "ValueError":
            raise ValueError(f"bad {event}")
        raise asyncio.CancelledError()

    _, arn = run_one(store, chain(2), step, 5)
    row = store.get_execution(arn)
    assert row is not None and row.status == "FAILED"
    if raised == "ValueError":  # Lambda's function error, the handler's frame in its trace
        assert row.error == "ValueError"
        cause = json.loads(row.cause or "")
        assert cause["errorMessage"] == "bad 5" and "in step\n" in cause["stackTrace"][0]
    else:  # as a task that was cancelled
        assert row.error == "States.Runtime"
        assert row.cause == "CancelledError: the handler was cancelled"
    types = [e.type for e in store.get_history(arn, 1000).items]
    assert types.count("LambdaFunctionFailed") == 1 and types[-1] == "ExecutionFailed"


@pytest.mark.parametrize("type", ["STANDARD", "EXPRESS"])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_handler_that_changes_its_event_changes_nothing_of_the_execution(
    type: str, kind: str, tmp_path: Path
) -> None:
    store = open_store(str(tmp_path / "flowstate.db"))

    def change(event: Any) -> Any:
        event["payload"]["seen"] = True
        event.pop("id")
        return {"done": True}

    def sync_step(event: Any, context: Any) -> Any:
        return change(event)

    async def async_step(event: Any, context: Any) -> Any:
        return change(event)

    definition = chain(2, ResultPath="$.result")
    value = {"id": 7, "payload": {"a": [1, 2]}}
    _, arn = run_one(store, definition, sync_step if kind == "sync" else async_step, value, type)
    row = store.get_execution(arn.replace(":execution:", ":express:") if type == "EXPRESS" else arn)
    assert row is not None and row.status == "SUCCEEDED"
    assert json.loads(row.output or "") == {**value, "result": {"done": True}}


@pytest.mark.parametrize("type", ["STANDARD", "EXPRESS"])
def test_the_history_shows_the_event_as_sent(type: str) -> None:
    def step(event: Any, context: Any) -> Any:
        event["changed"] = True
        return {"done": True}

    result = run_workflow(
        chain(2, ResultPath="$.result"),
        {"id": 7},
        functions={"step": step},
        state_machine_type=type,
    )
    assert result.output == {"id": 7, "result": {"done": True}}
    sent = [
        json.loads(e["lambdaFunctionScheduledEventDetails"]["input"])
        for e in result.events("LambdaFunctionScheduled")
    ]
    assert sent == [{"id": 7}, {"id": 7, "result": {"done": True}}]


def test_sync_calls_of_many_executions_all_complete(tmp_path: Path) -> None:
    store = open_store("memory:")
    definition = chain(4)
    store.create_state_machine(
        StateMachineRecord(
            MACHINE_ARN, "chain", "EXPRESS", json.dumps(definition), ROLE, "r1", T0, T0
        )
    )
    keys: list[str] = []

    def step(event: Any, context: Any) -> Any:
        keys.append(context.idempotency_key)
        return event + 1

    starts = [request(definition, f"e{i}", "EXPRESS", i) for i in range(60)]

    async def main() -> None:
        engine = Engine(store, clock=VirtualClock(T0), functions=FunctionRegistry({"step": step}))
        await engine.start()
        await asyncio.gather(*(engine.start_execution(s) for s in starts))
        await asyncio.gather(*(engine.wait_stopped(s.arn) for s in starts))
        await engine.stop()

    asyncio.run(main())
    for i, start in enumerate(starts):
        row = store.get_execution(start.arn)
        assert row is not None and row.status == "SUCCEEDED" and row.output == str(i + 4)
    assert len(keys) == len(set(keys)) == 60 * 4  # each attempt once


@pytest.mark.parametrize("hold", [0.0, 60.0])
def test_steps_between_quick_sync_calls_are_committed_together(hold: float, tmp_path: Path) -> None:
    """Sync calls the tick does not wait for (``sync_wait_seconds=0``) answer in later
    ticks; their steps are held and committed together."""
    store = open_store(str(tmp_path / "flowstate.db"))

    def step(event: Any, context: Any) -> Any:
        return event + 1

    engine, arn = run_one(store, chain(6), step, 0, hold_calls_seconds=hold, sync_wait_seconds=0)
    row = store.get_execution(arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == "6"
    events = store.get_history(arn, 1000).items
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events].count("LambdaFunctionSucceeded") == 6
    assert store.pending_tasks(arn) == []
    if hold == 0:
        assert engine.commits == 1 + 6  # the start, then one per call's answer
    else:
        assert engine.commits == 2  # the start (with the first call), then the rest at once


def blocking_second_call(
    store: Store, definition: dict[str, Any], which: int = 2
) -> tuple[StartRequest, list[str], threading.Event, Callable[[Any, Any], Any]]:
    """A Standard machine whose function's second call (or ``which``) blocks until
    ``release`` is set."""
    store.create_state_machine(
        StateMachineRecord(
            MACHINE_ARN, "chain", "STANDARD", json.dumps(definition), ROLE, "r1", T0, T0
        )
    )
    release = threading.Event()
    calls: list[str] = []

    def step(event: Any, context: Any) -> Any:
        calls.append(context.idempotency_key)
        if len(calls) == which:
            release.wait(30)
        return event + 1

    return request(definition, "e1", "STANDARD", 0), calls, release, step


def test_a_long_call_is_committed_as_started_while_it_runs(tmp_path: Path) -> None:
    """A held step is written once its time is up, whether or not the call has answered:
    the history shows the call started and its task row is stored while it runs."""
    store = open_store(str(tmp_path / "flowstate.db"))
    start, calls, release, step = blocking_second_call(store, chain(3))

    async def main() -> list[str]:
        engine = Engine(
            store,
            clock=VirtualClock(T0),
            functions=FunctionRegistry({"step": step}),
            settings=EngineSettings(hold_calls_seconds=0.01),
        )
        await engine.start()
        await engine.start_execution(start)

        def stored() -> list[str]:
            return [e.type for e in store.get_history(start.arn, 1000).items]

        while "LambdaFunctionSucceeded" not in stored():
            await asyncio.sleep(0.005)  # (until the held step is committed)
        seen = stored()
        assert not release.is_set() and len(calls) == 2  # the second call still runs
        assert [t.task_id for t in store.pending_tasks(start.arn)] == ["0:8"]  # the 2nd call
        release.set()
        await engine.wait_stopped(start.arn)
        await engine.stop()
        return seen

    seen = asyncio.run(main())
    # committed while the second call ran: the first call done, the second started
    assert seen[-3:] == ["TaskStateEntered", "LambdaFunctionScheduled", "LambdaFunctionStarted"]
    assert seen.count("LambdaFunctionSucceeded") == 1
    row = store.get_execution(start.arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == "3"
    assert len(calls) == 3


def test_stopping_the_engine_commits_held_steps(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "flowstate.db"))
    # the second call is still running when the engine stops
    start, calls, release, step = blocking_second_call(store, chain(2))

    async def main() -> None:
        engine = Engine(
            store,
            clock=VirtualClock(T0),
            functions=FunctionRegistry({"step": step}),
            settings=EngineSettings(hold_calls_seconds=600),  # held until the stop
        )
        await engine.start()
        await engine.start_execution(start)
        while len(calls) < 2:
            await asyncio.sleep(0.005)
        await engine.stop()

    try:
        asyncio.run(main())
    finally:
        release.set()
    types = [e.type for e in store.get_history(start.arn, 1000).items]
    assert types.count("LambdaFunctionSucceeded") == 1  # the first call's answer is stored
    assert types[-1] == "LambdaFunctionStarted"  # and the second call as started
    assert [t.task_id for t in store.pending_tasks(start.arn)] != []  # re-run on restart


def test_quick_sync_calls_are_answered_within_the_tick_on_the_pool_threads(
    tmp_path: Path,
) -> None:
    """The tick waits briefly for the plain sync calls it made (they run on the pool's
    threads, never on the engine's): an Express chain of them is one commit."""
    store = open_store(str(tmp_path / "flowstate.db"))
    threads: list[threading.Thread] = []

    def step(event: Any, context: Any) -> Any:
        threads.append(threading.current_thread())
        return {"n": event["n"] + 1}

    engine, arn = run_one(store, chain(4), step, {"n": 0}, type="EXPRESS")
    row = store.get_execution(arn)
    assert (
        row is not None and row.status == "SUCCEEDED" and json.loads(row.output or "") == {"n": 4}
    )
    assert len(threads) == 4 and threading.main_thread() not in threads
    assert all(t.name.startswith("flowstate-fn") for t in threads)
    assert engine.commits == 1


def test_a_standard_chain_of_quick_sync_calls_is_two_commits(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "flowstate.db"))
    stored_when_called: list[bool] = []

    def step(event: Any, context: Any) -> Any:
        stored_when_called.append(store.get_execution(arn_of("e1")) is not None)
        return event + 1

    engine, arn = run_one(store, chain(5), step, 0)
    row = store.get_execution(arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == "5"
    assert stored_when_called == [True] * 5  # the start is stored before the first call
    assert engine.commits == 2  # the start; then the five calls and the end
    types = [e.type for e in store.get_history(arn, 1000).items]
    assert types.count("LambdaFunctionSucceeded") == 5 and types[-1] == "ExecutionSucceeded"
    assert store.pending_tasks(arn) == []


def test_a_sync_call_that_outlasts_the_wait_answers_in_a_later_tick(tmp_path: Path) -> None:
    """The tick gives up waiting after ``sync_wait_seconds``: the execution's step is
    committed with the call running (its task row stored), the engine's loop goes on, and
    the answer steps the execution when it comes. The function is then not waited for."""
    store = open_store(str(tmp_path / "flowstate.db"))
    start, calls, release, step = blocking_second_call(store, chain(3))

    async def main() -> tuple[list[str], int]:
        engine = Engine(
            store,
            clock=VirtualClock(T0),
            functions=FunctionRegistry({"step": step}),
            settings=EngineSettings(sync_wait_seconds=0.01, hold_calls_seconds=0),
        )
        await engine.start()
        await engine.start_execution(start)
        running: list[str] = []
        for _ in range(2000):  # (the loop is free while the call runs)
            running = [t.task_id for t in store.pending_tasks(start.arn)]
            if running == ["0:8"]:
                break
            await asyncio.sleep(0.005)
        release.set()
        await engine.wait_stopped(start.arn)
        await engine.stop()
        return running, engine.commits

    running, commits = asyncio.run(main())
    assert running == ["0:8"]  # the second call's row, stored while it ran
    row = store.get_execution(start.arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == "3"
    assert len(calls) == 3
    # the start; the first answer with the second call running; its answer (the third call
    # is not waited for, its function having been slow); the third answer and the end
    assert commits == 4
    types = [e.type for e in store.get_history(start.arn, 1000).items]
    assert types.count("LambdaFunctionSucceeded") == 3 and store.pending_tasks(start.arn) == []


def test_a_failing_sync_call_within_the_tick_is_retried_and_caught(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "flowstate.db"))
    attempts: list[int] = []

    def step(event: Any, context: Any) -> Any:
        attempts.append(event)
        raise KeyError("missing")

    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": FN + "step",
                "Retry": [{"ErrorEquals": ["KeyError"], "MaxAttempts": 1, "IntervalSeconds": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    _, arn = run_one(store, definition, step, 7, type="EXPRESS")
    row = store.get_execution(arn)
    assert row is not None and row.status == "SUCCEEDED"
    output = json.loads(row.output or "")
    assert output["Error"] == "KeyError"
    assert json.loads(output["Cause"])["errorMessage"] == "'missing'"
    assert attempts == [7, 7]


def test_sync_calls_of_parallel_branches_are_waited_for_together(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "flowstate.db"))
    seen: list[Any] = []

    def step(event: Any, context: Any) -> Any:
        seen.append(event)
        return event * 10

    branches = [
        {"StartAt": name, "States": {name: {"Type": "Task", "Resource": FN + "step", "End": True}}}
        for name in ("A", "B", "C")
    ]
    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Parallel", "Branches": branches, "End": True}},
    }
    engine, arn = run_one(store, definition, step, 3, type="EXPRESS")
    row = store.get_execution(arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == "[30,30,30]"
    assert seen == [3, 3, 3] and engine.commits == 1


@pytest.mark.parametrize("type", ["EXPRESS", "STANDARD"])
def test_a_branch_failing_in_the_round_ends_the_parallel_and_drops_the_other_answer(
    type: str, tmp_path: Path
) -> None:
    """Both branches' calls answer in the same round; the first answer fails the Parallel,
    which cancels the second branch's task: its answer, in hand already, is dropped."""
    store = open_store(str(tmp_path / "flowstate.db"))
    calls: list[str] = []

    def bad(event: Any, context: Any) -> Any:
        calls.append("bad")
        raise ValueError("boom")

    def good(event: Any, context: Any) -> Any:
        calls.append("good")
        return event

    branches = [
        {"StartAt": name, "States": {name: {"Type": "Task", "Resource": FN + name, "End": True}}}
        for name in ("bad", "good")
    ]
    definition = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Task", "Resource": FN + "good", "Next": "P"},
            "P": {"Type": "Parallel", "Branches": branches, "End": True},
        },
    }
    store.create_state_machine(
        StateMachineRecord(MACHINE_ARN, "chain", type, json.dumps(definition), ROLE, "r1", T0, T0)
    )
    start = request(definition, "e1", type, 1)

    async def main() -> None:
        engine = Engine(
            store,
            clock=VirtualClock(T0),
            functions=FunctionRegistry({"bad": bad, "good": good}),
            settings=EngineSettings(express_history=True, sync_wait_seconds=1.0),
        )
        await engine.start()
        await asyncio.wait_for(engine.start_execution(start), 10)
        await asyncio.wait_for(engine.wait_stopped(start.arn), 10)
        await engine.stop()

    asyncio.run(main())
    row = store.get_execution(start.arn)
    assert row is not None and (row.status, row.error) == ("FAILED", "ValueError")
    assert sorted(calls) == ["bad", "good", "good"]
    if type == "STANDARD":
        assert store.pending_tasks(start.arn) == []
        types = [e.type for e in store.get_history(start.arn, 1000).items]
        assert types.count("LambdaFunctionFailed") == 1 and types[-1] == "ExecutionFailed"
        assert "LambdaFunctionSucceeded" in types  # the first state's call only
        assert types.count("LambdaFunctionSucceeded") == 1


def test_a_stop_in_the_tick_that_parks_a_call_ends_the_execution(tmp_path: Path) -> None:
    """An answer and a stop in one tick: the answer's step parks the next call, the stop
    then cancels it; the execution ends ABORTED and the call's answer is dropped."""
    store = open_store(str(tmp_path / "flowstate.db"))
    # the first call blocks: the test answers its task instead
    start, calls, release, step = blocking_second_call(store, chain(2), which=1)

    async def main() -> None:
        engine = Engine(
            store,
            clock=VirtualClock(T0),
            functions=FunctionRegistry({"step": step}),
            settings=EngineSettings(hold_calls_seconds=0),
        )
        await engine.start()
        await engine.start_execution(start)
        for _ in range(2000):
            if store.pending_tasks(start.arn) and calls:
                break
            await asyncio.sleep(0.005)
        task_id = store.pending_tasks(start.arn)[0].task_id
        answer = asyncio.ensure_future(engine.apply(start.arn, TaskSucceeded(task_id, 1)))
        stop = asyncio.ensure_future(engine.stop_execution(start.arn, "Stopped", "by the test"))
        await asyncio.wait_for(asyncio.gather(answer, stop), 10)
        release.set()
        await asyncio.wait_for(engine.wait_stopped(start.arn), 10)
        await engine.stop()

    try:
        asyncio.run(main())
    finally:
        release.set()
    row = store.get_execution(start.arn)
    assert row is not None and row.status == "ABORTED"
    assert store.pending_tasks(start.arn) == []
    types = [e.type for e in store.get_history(start.arn, 1000).items]
    assert types[-1] == "ExecutionAborted" and "LambdaFunctionSucceeded" in types


def commits_of_a_waited_chain(tmp_path: Path, length: int, slow_calls: set[int]) -> int:
    """Commits of a Standard chain whose sync calls are waited for (with waits far longer
    than any call); the calls numbered in ``slow_calls`` (from 1) run longer than
    QUICK_CALL_SECONDS. Each step is committed as it is (no hold)."""
    store = open_store(str(tmp_path / "flowstate.db"))
    calls: list[Any] = []

    def step(event: Any, context: Any) -> Any:
        calls.append(event)
        if len(calls) in slow_calls:
            threading.Event().wait(QUICK_CALL_SECONDS * 20)
        return event + 1

    engine, arn = run_one(
        store,
        chain(length),
        step,
        0,
        sync_wait_seconds=2.0,
        sync_wait_tick_seconds=10.0,
        hold_calls_seconds=0,
    )
    row = store.get_execution(arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == str(length)
    return engine.commits


def test_a_function_whose_calls_were_not_quick_is_not_waited_for(tmp_path: Path) -> None:
    """Calls that answer within the wait but ran longer than QUICK_CALL_SECONDS: after the
    second such call (one may be a hiccup), the function's next call is made without waiting
    (it answers in a later tick)."""
    # the start (the first call made after it); the first answer, the second and third calls
    # waited for (answered, not quick), the fourth running; its answer and the end
    assert commits_of_a_waited_chain(tmp_path, 4, slow_calls={1, 2, 3, 4}) == 3


def test_one_slow_call_alone_does_not_stop_the_waiting(tmp_path: Path) -> None:
    # the start; then the four other calls (the second one slow) and the end
    assert commits_of_a_waited_chain(tmp_path, 5, slow_calls={2}) == 2


def test_a_tick_waits_at_most_its_budget_in_all(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "flowstate.db"))

    def step(event: Any, context: Any) -> Any:
        return event + 1

    engine, arn = run_one(
        store, chain(4), step, 0, sync_wait_tick_seconds=0.0, hold_calls_seconds=0
    )
    row = store.get_execution(arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == "4"
    assert engine.commits == 1 + 4  # no call waited for: each answer is a tick of its own
    assert store.pending_tasks(arn) == []


def test_no_call_is_waited_for_while_the_pool_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every pool thread taken by a long call, a round gets no answer: the engine then
    waits for no sync call during the next pause instead of waiting in vain each tick."""
    store = open_store("memory:")
    release = threading.Event()
    rounds: list[int] = []
    original = FunctionInvoker.run_waiting

    def counted(self: FunctionInvoker, calls: Any, *args: Any, **kwargs: Any) -> Any:
        rounds.append(len(calls))
        return original(self, calls, *args, **kwargs)

    monkeypatch.setattr(FunctionInvoker, "run_waiting", counted)

    def stuck(event: Any, context: Any) -> Any:
        release.wait(30)
        return event

    def quick(event: Any, context: Any) -> Any:
        return event + 1

    slow_machine = {
        "StartAt": "S",
        "States": {"S": {"Type": "Task", "Resource": FN + "stuck", "End": True}},
    }
    quick_machine = chain(3)
    quick_machine["States"] = {
        name: {**state, "Resource": FN + "quick"} for name, state in quick_machine["States"].items()
    }
    starts = []
    for name, definition, type in (
        ("slow", slow_machine, "STANDARD"),
        ("quick", quick_machine, "EXPRESS"),
    ):
        machine = f"{MACHINE_ARN}-{name}"
        text = json.dumps(definition)
        store.create_state_machine(
            StateMachineRecord(machine, f"chain-{name}", type, text, ROLE, "r1", T0, T0)
        )
        start = request(definition, name, type, 0)
        starts.append(replace(start, state_machine_arn=machine, state_machine_name=f"chain-{name}"))
    first, second = starts

    async def main() -> None:
        engine = Engine(
            store,
            clock=VirtualClock(T0),
            functions=FunctionRegistry({"stuck": stuck, "quick": quick}),
            settings=EngineSettings(task_threads=1),
        )
        await engine.start()
        await engine.start_execution(first)  # its call takes the one pool thread
        await engine.start_execution(second)
        for _ in range(2000):
            if rounds:
                break
            await asyncio.sleep(0.005)
        release.set()
        await asyncio.wait_for(engine.wait_stopped(second.arn), 10)
        await asyncio.wait_for(engine.wait_stopped(first.arn), 10)
        await engine.stop()

    try:
        asyncio.run(main())
    finally:
        release.set()
    row = store.get_execution(second.arn)
    assert row is not None and row.status == "SUCCEEDED" and row.output == "3"
    assert rounds == [1]  # the first call's round found the pool taken; no round after it
