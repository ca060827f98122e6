"""How calls run: limits per function, async handlers, abandonment, process isolation."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

import flowstate
from flowstate.asl.errors import StatesError
from flowstate.integrations.functions import FunctionRegistry, prepare_lambda_call
from flowstate.integrations.invoker import FunctionInvoker
from flowstate.testing import run_workflow

FN = "arn:aws:lambda:us-east-1:123456789012:function:"


def _call(registry: FunctionRegistry, name: str, event: Any = None) -> Any:
    return prepare_lambda_call(
        FN + name, event, idempotency_key="k", functions=registry, region="r", account="a"
    )


def test_a_function_runs_at_most_its_concurrency_at_once() -> None:
    gate = threading.Event()
    entered = threading.Semaphore(0)
    lock = threading.Lock()
    running = [0, 0]  # now, most

    @flowstate.function(concurrency=2)
    def work(event: Any, context: Any) -> Any:
        entered.release()
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        gate.wait(10)
        with lock:
            running[0] -= 1
        return event

    registry = FunctionRegistry({"work": work})
    invoker = FunctionInvoker(threads=8)
    try:
        futures = [invoker.submit(_call(registry, "work", i)) for i in range(5)]
        assert invoker.running_of("work") == 2  # the other three wait their turn
        assert entered.acquire(timeout=10) and entered.acquire(timeout=10)
        assert not entered.acquire(blocking=False)  # no third call got in
        gate.set()
        assert [f.result(10) for f in futures] == [0, 1, 2, 3, 4]
        assert running[1] == 2
    finally:
        invoker.close()


def test_an_abandoned_call_never_blocks_and_its_waiting_turn_is_dropped() -> None:
    release = threading.Event()

    @flowstate.function(concurrency=1)
    def stuck(event: Any, context: Any) -> Any:
        release.wait(10)
        return "late"

    registry = FunctionRegistry({"stuck": stuck})
    invoker = FunctionInvoker(threads=2)
    try:
        first = invoker.submit(_call(registry, "stuck"))
        second = invoker.submit(_call(registry, "stuck"))
        invoker.abandon(second)  # still waiting: cancelled outright
        assert second.cancelled()
        invoker.abandon(first)  # running on a thread: left to finish, nobody waits
        release.set()
        assert first.result(10) == "late"
        assert invoker.running_of("stuck") == 0
    finally:
        invoker.close()


def test_async_handlers_run_on_the_loop_and_can_be_cancelled() -> None:
    invoker = FunctionInvoker()
    try:

        async def hello(event: Any, context: Any) -> Any:
            return {"hello": event}

        registry = FunctionRegistry({"hello": hello})
        assert invoker.submit(_call(registry, "hello", 3)).result(10) == {"hello": 3}
    finally:
        invoker.close()


def test_timeout_seconds_ends_a_stuck_attempt_with_states_timeout() -> None:
    release = threading.Event()

    def stuck(event: Any, context: Any) -> Any:
        release.wait(30)
        return event

    definition = {
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": FN + "stuck", "TimeoutSeconds": 1, "End": True}
        },
    }
    try:
        result = run_workflow(definition, {}, functions={"stuck": stuck})
    finally:
        release.set()
    assert (result.status, result.error) == ("FAILED", "States.Timeout")
    assert "LambdaFunctionTimedOut" in result.event_types
    assert "LambdaFunctionSucceeded" not in result.event_types  # the stray result is dropped


@flowstate.function(isolate=True)
def isolated_fail(event: Any, context: Any) -> Any:
    raise KeyError(event["key"])


@flowstate.function(isolate=True)
def isolated_pid(event: Any, context: Any) -> Any:
    import os

    return {"pid": os.getpid(), "name": context.function_name}


@pytest.mark.slow
def test_isolated_functions_run_in_their_own_process_with_the_same_error_shape() -> None:
    import os

    registry = FunctionRegistry({"iso-pid": isolated_pid, "iso-fail": isolated_fail})
    invoker = FunctionInvoker()
    try:
        answer = invoker.submit(_call(registry, "iso-pid", {})).result(60)
        assert answer["pid"] != os.getpid() and answer["name"] == "iso-pid"
        with pytest.raises(StatesError) as failure:
            invoker.submit(_call(registry, "iso-fail", {"key": "k"})).result(60)
    finally:
        invoker.close()
    cause = json.loads(failure.value.cause or "")
    assert failure.value.error == "KeyError" and cause["errorMessage"] == "'k'"
    assert len(cause["stackTrace"]) == 1 and "in isolated_fail\n" in cause["stackTrace"][0]


def test_run_waiting_returns_the_answers_that_came_in_time_and_passes_on_the_rest() -> None:
    release = threading.Event()
    threads: list[str] = []

    def work(event: Any, context: Any) -> Any:
        threads.append(threading.current_thread().name)
        if event == "stuck":
            release.wait(10)
        if event == "bad":
            raise ValueError("no")
        return {"got": event}

    registry = FunctionRegistry({"work": work})
    invoker = FunctionInvoker(threads=4)
    late_answers: list[tuple[int, Any, StatesError | None]] = []
    answered_late = threading.Event()
    asked: list[int] = []

    def late(index: int, item: Any) -> Any:
        asked.append(index)
        assert not item.abandoned

        def report(result: Any, failure: StatesError | None) -> None:
            late_answers.append((index, result, failure))
            answered_late.set()

        return report

    try:
        calls = [_call(registry, "work", e) for e in (1, "bad", "stuck", 4)]
        answers, slow = invoker.run_waiting(calls, 0.2, late, slow_after=0.1)
        assert answers[0] == ({"got": 1}, None)
        result, failure = answers[1]  # type: ignore[misc]
        assert result is None and isinstance(failure, StatesError)
        assert failure.error == "ValueError" and "no" in failure.cause
        # the stuck call, and the one queued behind it on the same thread, came too late
        assert not isinstance(answers[2], tuple) and not isinstance(answers[3], tuple)
        assert asked == [2, 3]
        assert slow == [2]  # still running at the end of the wait; the fourth never started
        assert late_answers == []
        release.set()
        assert answered_late.wait(10)
        for _ in range(100):  # the fourth follows the third on its thread
            if len(late_answers) == 2:
                break
            threading.Event().wait(0.01)
        assert sorted(late_answers, key=lambda a: a[0]) == [
            (2, {"got": "stuck"}, None),
            (3, {"got": 4}, None),
        ]
        assert all(name.startswith("flowstate-fn") for name in threads)
    finally:
        release.set()
        invoker.close()
