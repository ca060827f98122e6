"""Retry and Catch: back-off timing on the virtual clock, matching rules, error output.

AWS rules exercised (ASL spec "Retrying after an error" / "Error names"):
* retry n (1-based) waits ``IntervalSeconds * BackoffRate ** (n - 1)``, capped by
  ``MaxDelaySeconds``; ``JitterStrategy: FULL`` draws the delay uniformly from [0, that];
* defaults: IntervalSeconds 1, MaxAttempts 3, BackoffRate 2.0; MaxAttempts 0 never retries;
* the first retrier whose ErrorEquals matches is used, with its own attempt counter;
* States.ALL matches every error except States.Runtime (never retried or caught);
  States.TaskFailed matches every error except States.Timeout;
* a caught error becomes ``{"Error", "Cause"}`` placed by the catcher's ResultPath.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from flowstate.asl.model import Retrier
from flowstate.asl.parse import parse_definition
from flowstate.interpreter.execution import Execution, ExecutionInfo
from flowstate.interpreter.messages import ScheduleTask, StartTimer, TaskFailed, TimerFired
from flowstate.interpreter.retry import backoff_seconds, find_catcher, matches_error
from flowstate.runtime.local import ExecutionResult

FN = "arn:aws:lambda:us-east-1:123456789012:function:"


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


def _flaky(failures: int, exc: type[Exception] = Transient) -> tuple[Callable[..., Any], list[Any]]:
    """A handler that raises ``exc`` ``failures`` times, then returns its event."""
    calls: list[Any] = []

    def handler(event: Any, context: Any) -> Any:
        calls.append(event)
        if len(calls) <= failures:
            raise exc(f"attempt {len(calls)}")
        return {"ok": True, "attempt": len(calls)}

    return handler, calls


def _task(retry: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": FN + "work", "End": True, **fields}
    if retry is not None:
        state["Retry"] = retry
    states: dict[str, Any] = {"T": state}
    for catcher in state.get("Catch", []):
        states.setdefault(catcher["Next"], {"Type": "Pass", "End": True})
    return {"StartAt": "T", "States": states}


def _scheduled_gaps(result: ExecutionResult) -> list[float]:
    stamps = [e["timestamp"] for e in result.history if e["type"] == "LambdaFunctionScheduled"]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]


def _types(result: ExecutionResult) -> list[str]:
    return [e["type"] for e in result.history]


# --- back-off on the virtual clock ---------------------------------------------------------


def test_backoff_gaps_between_attempts(run: Any) -> None:
    handler, calls = _flaky(3)
    retry = [
        {"ErrorEquals": ["Transient"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 3}
    ]
    result = run(_task(retry), {"x": 1}, functions={"work": handler})
    assert result.status == "SUCCEEDED"
    assert json.loads(result.output) == {"ok": True, "attempt": 4}
    assert len(calls) == 4
    assert _scheduled_gaps(result) == [2.0, 6.0, 18.0]


def test_default_retrier_values(run: Any, t0: datetime) -> None:
    # Defaults: IntervalSeconds 1, BackoffRate 2.0, MaxAttempts 3.
    handler, calls = _flaky(10)
    result = run(_task([{"ErrorEquals": ["States.ALL"]}]), functions={"work": handler})
    assert result.status == "FAILED"
    assert result.error == "Transient"
    assert len(calls) == 4
    assert _scheduled_gaps(result) == [1.0, 2.0, 4.0]
    assert result.history[-1]["timestamp"] == t0 + timedelta(seconds=7)


def test_max_delay_seconds_caps_the_backoff(run: Any) -> None:
    handler, _ = _flaky(4)
    retry = [
        {
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": 10,
            "BackoffRate": 2,
            "MaxAttempts": 4,
            "MaxDelaySeconds": 25,
        }
    ]
    result = run(_task(retry), functions={"work": handler})
    assert result.status == "SUCCEEDED"
    assert _scheduled_gaps(result) == [10.0, 20.0, 25.0, 25.0]


def test_backoff_rate_one_keeps_the_interval(run: Any) -> None:
    handler, _ = _flaky(3)
    retry = [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 5, "BackoffRate": 1, "MaxAttempts": 3}
    ]
    result = run(_task(retry), functions={"work": handler})
    assert _scheduled_gaps(result) == [5.0, 5.0, 5.0]


def test_full_jitter_stays_between_zero_and_the_backoff(run: Any) -> None:
    handler, _ = _flaky(5)
    retry = [
        {
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": 8,
            "BackoffRate": 2,
            "MaxAttempts": 5,
            "MaxDelaySeconds": 40,
            "JitterStrategy": "FULL",
        }
    ]
    result = run(_task(retry), functions={"work": handler})
    assert result.status == "SUCCEEDED"
    gaps = _scheduled_gaps(result)
    caps = [8, 16, 32, 40, 40]
    assert len(gaps) == 5
    for gap, cap in zip(gaps, caps):
        assert 0 <= gap <= cap
    # Uniform draws: five of them all landing exactly on the un-jittered back-off is not jitter.
    assert gaps != [float(c) for c in caps]


def test_full_jitter_is_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    definition = _task(
        [
            {
                "ErrorEquals": ["States.ALL"],
                "IntervalSeconds": 100,
                "MaxAttempts": 1,
                "JitterStrategy": "FULL",
            }
        ]
    )

    def first_delay(seed: int) -> timedelta:
        execution = _execution(definition, seed=seed)
        (task,) = [c for c in execution.start(T) if isinstance(c, ScheduleTask)]
        commands = execution.step(TaskFailed(task.task_id, "E", None), T)
        (timer,) = [c for c in commands if isinstance(c, StartTimer)]
        return timer.fire_at - T

    delays = {seed: first_delay(seed) for seed in range(1, 9)}
    assert first_delay(3) == delays[3]
    assert all(timedelta(0) <= d <= timedelta(seconds=100) for d in delays.values())
    assert len(set(delays.values())) > 1


# --- $$.State.RetryCount -------------------------------------------------------------------


def test_retry_count_in_the_context_object(run: Any) -> None:
    handler, calls = _flaky(2)
    definition = _task(
        [{"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "MaxAttempts": 5}],
        Parameters={"count.$": "$$.State.RetryCount"},
    )
    result = run(definition, functions={"work": handler})
    assert result.status == "SUCCEEDED"
    assert calls == [{"count": 0}, {"count": 1}, {"count": 2}]


def test_retry_count_resets_in_the_next_state(run: Any) -> None:
    handler, calls = _flaky(1)
    definition = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Task",
                "Resource": FN + "work",
                "Parameters": {"count.$": "$$.State.RetryCount"},
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1}],
                "Next": "B",
            },
            "B": {
                "Type": "Task",
                "Resource": FN + "work",
                "Parameters": {"count.$": "$$.State.RetryCount"},
                "End": True,
            },
        },
    }
    result = run(definition, functions={"work": handler})
    assert result.status == "SUCCEEDED"
    assert calls == [{"count": 0}, {"count": 1}, {"count": 0}]


# --- which retrier / catcher ---------------------------------------------------------------


def test_max_attempts_zero_never_retries(run: Any) -> None:
    handler, calls = _flaky(1)
    result = run(
        _task([{"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}]), functions={"work": handler}
    )
    assert result.status == "FAILED"
    assert len(calls) == 1


def test_unmatched_error_is_not_retried(run: Any) -> None:
    handler, calls = _flaky(1, Permanent)
    result = run(_task([{"ErrorEquals": ["Transient"]}]), functions={"work": handler})
    assert (result.status, result.error) == ("FAILED", "Permanent")
    assert len(calls) == 1


def test_first_matching_retrier_wins_with_its_own_counter(run: Any) -> None:
    errors = iter([Transient, Permanent, Transient])

    def handler(event: Any, context: Any) -> Any:
        raise next(errors)("x")

    retry = [
        {"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "MaxAttempts": 1},
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 5},
    ]
    result = run(_task(retry), functions={"work": handler})
    # Transient uses retrier 0 (1 s), Permanent retrier 1 (10 s); the second Transient finds
    # retrier 0 exhausted and fails — it does not fall through to the States.ALL retrier.
    assert (result.status, result.error) == ("FAILED", "Transient")
    assert _scheduled_gaps(result) == [1.0, 10.0]


def test_states_all_does_not_catch_states_runtime(run: Any) -> None:
    handler, calls = _flaky(0)
    definition = _task(
        [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}],
        InputPath="$.missing",
        Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
    )
    result = run(definition, {"present": 1}, functions={"work": handler})
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert result.cause == (
        "An error occurred while executing the state 'T' (entered at the event id #2). "
        "Invalid path '$.missing' : No results for path: $['missing']"
    )
    assert calls == []
    assert "PassStateEntered" not in _types(result)
    assert _types(result).count("TaskStateEntered") == 1


def test_states_runtime_is_not_caught_even_by_name(run: Any) -> None:
    definition = _task(
        InputPath="$.missing",
        Catch=[{"ErrorEquals": ["States.Runtime"], "Next": "Caught"}],
    )
    result = run(definition, {}, functions={"work": lambda e, c: e})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")


def test_states_task_failed_matches_function_errors(run: Any) -> None:
    handler, calls = _flaky(1)
    result = run(
        _task([{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1}]),
        functions={"work": handler},
    )
    assert result.status == "SUCCEEDED"
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("error_equals", "error", "expected"),
    [
        (["States.ALL"], "Anything", True),
        (["States.ALL"], "States.Timeout", True),
        (["States.ALL"], "States.Runtime", False),
        (["States.TaskFailed"], "Lambda.Unknown", True),
        (["States.TaskFailed"], "States.Timeout", False),
        (["States.Timeout"], "States.Timeout", True),
        (["Other", "Exact"], "Exact", True),
        (["exact"], "Exact", False),
        (["States.Runtime"], "States.Runtime", False),
    ],
)
def test_matches_error(error_equals: list[str], error: str, expected: bool) -> None:
    assert matches_error(error_equals, error) is expected


def test_find_catcher_takes_the_first_match() -> None:
    machine = parse_definition(
        json.dumps(
            _task(
                Catch=[
                    {"ErrorEquals": ["A"], "Next": "First"},
                    {"ErrorEquals": ["States.ALL"], "Next": "Second"},
                ]
            )
        )
    )
    catchers = machine.states["T"].catch  # type: ignore[attr-defined]
    first, second = find_catcher(catchers, "A"), find_catcher(catchers, "B")
    assert first is not None and first.next == "First"
    assert second is not None and second.next == "Second"
    assert find_catcher(catchers, "States.Runtime") is None


def test_backoff_seconds_formula() -> None:
    machine = parse_definition(
        json.dumps(
            _task(
                [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "IntervalSeconds": 3,
                        "BackoffRate": 1.5,
                        "MaxAttempts": 10,
                        "MaxDelaySeconds": 10,
                    }
                ]
            )
        )
    )
    retrier: Retrier = machine.states["T"].retry[0]  # type: ignore[attr-defined]
    assert [backoff_seconds(retrier, n, 0.5) for n in range(4)] == [3.0, 4.5, 6.75, 10.0]


# --- retry exhaustion, then Catch ----------------------------------------------------------


def test_retry_exhaustion_then_catch_with_result_path(run: Any) -> None:
    handler, calls = _flaky(100, Permanent)
    definition = _task(
        [{"ErrorEquals": ["Permanent"], "IntervalSeconds": 1, "MaxAttempts": 2}],
        Catch=[{"ErrorEquals": ["Permanent"], "ResultPath": "$.error", "Next": "Handled"}],
    )
    result = run(definition, {"order": 7}, functions={"work": handler})
    assert result.status == "SUCCEEDED"
    assert len(calls) == 3
    output = json.loads(result.output)
    assert output["order"] == 7
    assert output["error"]["Error"] == "Permanent"
    cause = json.loads(output["error"]["Cause"])
    assert cause["errorType"] == "Permanent"
    assert cause["errorMessage"] == "attempt 3"
    types = _types(result)
    assert types.count("LambdaFunctionFailed") == 3
    assert types[-4:] == [
        "TaskStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]


def test_catch_without_result_path_replaces_the_input(run: Any) -> None:
    handler, _ = _flaky(1, Permanent)
    definition = _task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handled"}])
    result = run(definition, {"lost": True}, functions={"work": handler})
    output = json.loads(result.output)
    assert set(output) == {"Error", "Cause"}
    assert output["Error"] == "Permanent"


def test_catch_result_path_null_keeps_the_input(run: Any) -> None:
    handler, _ = _flaky(1, Permanent)
    definition = _task(
        Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Handled"}]
    )
    result = run(definition, {"kept": True}, functions={"work": handler})
    assert json.loads(result.output) == {"kept": True}


def test_catch_order_first_match(run: Any) -> None:
    handler, _ = _flaky(1, Permanent)
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": FN + "work",
                "Catch": [
                    {"ErrorEquals": ["Transient"], "Next": "Wrong"},
                    {"ErrorEquals": ["Permanent"], "Next": "Right"},
                    {"ErrorEquals": ["States.ALL"], "Next": "Wrong"},
                ],
                "End": True,
            },
            "Wrong": {"Type": "Fail", "Error": "Wrong"},
            "Right": {"Type": "Pass", "Result": "right", "End": True},
        },
    }
    result = run(definition, functions={"work": handler})
    assert json.loads(result.output) == "right"


def test_fail_state_error_retried_on_parallel(run: Any) -> None:
    # A Parallel state retries as a whole: each attempt re-runs every branch.
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "c"}}}
                ],
                "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 4, "MaxAttempts": 2}],
                "End": True,
            }
        },
    }
    result = run(definition)
    assert (result.status, result.error, result.cause) == ("FAILED", "E", "c")
    entered = [e["timestamp"] for e in result.history if e["type"] == "FailStateEntered"]
    assert len(entered) == 3
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(entered)] == [4.0, 8.0]


# --- helpers for driving the interpreter directly ------------------------------------------

T = datetime.fromisoformat("2024-01-01T00:00:00+00:00")


def _execution(definition: dict[str, Any], seed: int) -> Execution:
    prefix = "arn:aws:states:us-east-1:123456789012"
    info = ExecutionInfo(
        arn=f"{prefix}:execution:M:e",
        name="e",
        state_machine_arn=f"{prefix}:stateMachine:M",
        state_machine_name="M",
        role_arn="arn:aws:iam::123456789012:role/r",
        start_time=T,
    )
    return Execution(parse_definition(json.dumps(definition)), info, {}, seed=seed)


def test_retry_timer_fires_a_new_schedule_at_the_deadline() -> None:
    execution = _execution(
        _task([{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 30, "MaxAttempts": 1}]), seed=1
    )
    (task,) = [c for c in execution.start(T) if isinstance(c, ScheduleTask)]
    commands = execution.step(TaskFailed(task.task_id, "E", "c"), T)
    assert [c for c in commands if isinstance(c, ScheduleTask)] == []
    (timer,) = [c for c in commands if isinstance(c, StartTimer)]
    assert timer.fire_at == T + timedelta(seconds=30)
    commands = execution.step(TimerFired(timer.timer_id), T + timedelta(seconds=30))
    (again,) = [c for c in commands if isinstance(c, ScheduleTask)]
    execution.step(TaskFailed(again.task_id, "E", "c"), T + timedelta(seconds=31))
    assert (execution.status, execution.error, execution.cause) == ("FAILED", "E", "c")
    scheduled = [e for e in execution.events if e.type == "LambdaFunctionScheduled"]
    assert [e.timestamp for e in scheduled] == [T, T + timedelta(seconds=30)]
