"""History events as GetExecutionHistory returns them: ids, links, types, details, payloads.

Shapes follow the AWS-recorded histories in ``../shared/conformance/cases``: every recorded
execution numbers its events from 1 without gaps, the first state entered after
ExecutionStarted has ``previousEventId`` 0, payloads are compact JSON text.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from flowstate.asl.parse import parse_definition
from flowstate.interpreter.execution import Execution, ExecutionInfo
from flowstate.interpreter.history import HistoryEvent, Payload, dump_json, render_events
from flowstate.interpreter.messages import (
    ScheduleTask,
    StartTimer,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    TimerFired,
)
from flowstate.runtime.local import ExecutionResult

FN = "arn:aws:lambda:us-east-1:123456789012:function:"
TERMINAL = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}

PASS_CHAIN = {
    "StartAt": "A",
    "States": {
        "A": {"Type": "Pass", "Result": {"n": 1}, "ResultPath": "$.a", "Next": "B"},
        "B": {"Type": "Pass", "Result": [1, 2], "ResultPath": "$.b", "Next": "C"},
        "C": {"Type": "Pass", "End": True},
    },
}


def _types(result: ExecutionResult) -> list[str]:
    return [e["type"] for e in result.history]


def _assert_well_formed(history: list[dict[str, Any]]) -> None:
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    for event in history:
        assert 0 <= event["previousEventId"] < event["id"]
    terminal = [e for e in history if e["type"] in TERMINAL]
    assert len(terminal) == 1
    assert history[-1] is terminal[0]
    assert history[0]["type"] == "ExecutionStarted"


# --- ids, links, order ---------------------------------------------------------------------


def test_pass_chain_history_types_in_aws_order(run: Any) -> None:
    result = run(PASS_CHAIN, {"in": True})
    assert _types(result) == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "PassStateEntered",
        "PassStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    _assert_well_formed(result.history)


def test_pass_chain_previous_event_ids(run: Any) -> None:
    # Recorded AWS histories (all 369 that start with a state): the first *StateEntered has
    # previousEventId 0; every later event of a straight chain points at the one before.
    result = run(PASS_CHAIN)
    links = [(e["id"], e["previousEventId"]) for e in result.history]
    assert links == [(1, 0), (2, 0), (3, 2), (4, 3), (5, 4), (6, 5), (7, 6), (8, 7)]


@pytest.mark.parametrize(
    "definition",
    [
        PASS_CHAIN,
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}},
        {
            "StartAt": "W",
            "TimeoutSeconds": 1,
            "States": {"W": {"Type": "Wait", "Seconds": 5, "End": True}},
        },
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "ItemProcessor": {
                        "StartAt": "I",
                        "States": {"I": {"Type": "Pass", "End": True}},
                    },
                    "End": True,
                }
            },
        },
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [
                        {
                            "StartAt": "X",
                            "States": {"X": {"Type": "Wait", "Seconds": 3, "End": True}},
                        },
                        {"StartAt": "Y", "States": {"Y": {"Type": "Fail", "Error": "Y"}}},
                    ],
                    "End": True,
                }
            },
        },
    ],
    ids=["pass-chain", "fail", "timeout", "map", "parallel-fail"],
)
def test_histories_are_contiguous_with_one_terminal_event(run: Any, definition: Any) -> None:
    _assert_well_formed(run(definition, [1, 2, 3] if "M" in definition["States"] else {}).history)


def test_execution_started_details(run: Any) -> None:
    result = run(PASS_CHAIN, {"b": [1, 2], "a": "x"}, role_arn="arn:aws:iam::123456789012:role/R")
    started = result.history[0]
    assert started["previousEventId"] == 0
    assert started["executionStartedEventDetails"] == {
        "input": '{"b":[1,2],"a":"x"}',
        "inputDetails": {"truncated": False},
        "roleArn": "arn:aws:iam::123456789012:role/R",
    }


def test_state_events_render_payloads_as_compact_json_text(run: Any) -> None:
    result = run(PASS_CHAIN, {"in": True})
    entered, exited = result.history[1], result.history[2]
    assert entered["stateEnteredEventDetails"] == {
        "input": '{"in":true}',
        "inputDetails": {"truncated": False},
        "name": "A",
    }
    assert exited["stateExitedEventDetails"] == {
        "name": "A",
        "output": '{"in":true,"a":{"n":1}}',
        "outputDetails": {"truncated": False},
    }
    assert result.history[-1]["executionSucceededEventDetails"] == {
        "output": '{"in":true,"a":{"n":1},"b":[1,2]}',
        "outputDetails": {"truncated": False},
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({}, "{}"),
        ([], "[]"),
        ("s", '"s"'),
        (1.5, "1.5"),
        (None, "null"),
        (True, "true"),
        ({"a": [1, {"b": None}]}, '{"a":[1,{"b":null}]}'),
    ],
)
def test_scalar_and_nested_payloads_render_as_json_text(run: Any, value: Any, text: str) -> None:
    result = run({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}, value)
    assert result.history[0]["executionStartedEventDetails"]["input"] == text
    assert result.history[-1]["executionSucceededEventDetails"]["output"] == text


def test_timestamps_are_aware_datetimes_on_the_virtual_clock(run: Any, t0: datetime) -> None:
    result = run(PASS_CHAIN)
    assert all(e["timestamp"] == t0 for e in result.history)
    assert all(e["timestamp"].tzinfo is not None for e in result.history)


# --- task events ---------------------------------------------------------------------------


def test_lambda_task_success_events(run: Any) -> None:
    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": FN + "echo", "End": True}},
    }
    result = run(definition, {"v": 1}, functions={"echo": lambda e, c: {"got": e}})
    assert _types(result) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    scheduled = result.history[2]
    assert scheduled["lambdaFunctionScheduledEventDetails"] == {
        "input": '{"v":1}',
        "inputDetails": {"truncated": False},
        "resource": FN + "echo",
    }
    assert set(result.history[3]) == {"id", "previousEventId", "timestamp", "type"}
    assert result.history[4]["lambdaFunctionSucceededEventDetails"] == {
        "output": '{"got":{"v":1}}',
        "outputDetails": {"truncated": False},
    }
    assert [(e["id"], e["previousEventId"]) for e in result.history[2:]] == [
        (3, 2),
        (4, 3),
        (5, 4),
        (6, 5),
        (7, 6),
    ]


def test_lambda_task_failure_events(run: Any) -> None:
    def boom(event: Any, context: Any) -> Any:
        raise KeyError("missing")

    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": FN + "boom", "End": True}},
    }
    result = run(definition, functions={"boom": boom})
    assert _types(result) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionFailed",
        "ExecutionFailed",
    ]
    failed = result.history[4]["lambdaFunctionFailedEventDetails"]
    assert failed["error"] == "KeyError"
    assert json.loads(failed["cause"])["errorType"] == "KeyError"
    assert result.history[5]["executionFailedEventDetails"] == failed
    assert result.history[5]["previousEventId"] == 5


def test_lambda_invoke_integration_events(run: Any) -> None:
    # Recorded case services/test_lambda_task_service_test_invoke: Task* events with
    # resourceType "lambda" and resource "invoke".
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
                "End": True,
            }
        },
    }
    result = run(definition, {"p": 1}, functions={"echo": lambda e, c: e})
    assert _types(result) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    assert result.history[2]["taskScheduledEventDetails"] == {
        "parameters": '{"FunctionName":"echo","Payload":{"p":1}}',
        "region": "us-east-1",
        "resource": "invoke",
        "resourceType": "lambda",
    }
    assert result.history[3]["taskStartedEventDetails"] == {
        "resource": "invoke",
        "resourceType": "lambda",
    }
    succeeded = result.history[4]["taskSucceededEventDetails"]
    assert (succeeded["resource"], succeeded["resourceType"]) == ("invoke", "lambda")
    assert json.loads(succeeded["output"])["Payload"] == {"p": 1}


def test_retried_task_repeats_the_schedule_events(run: Any) -> None:
    calls: list[int] = []

    def flaky(event: Any, context: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first")
        return "ok"

    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": FN + "flaky",
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1}],
                "End": True,
            }
        },
    }
    result = run(definition, functions={"flaky": flaky})
    assert _types(result) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionFailed",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    # The second schedule follows the failure (recorded lambda_invoke_with_retry case).
    assert result.history[5]["previousEventId"] == 5


# --- the rendering layer -------------------------------------------------------------------


def test_history_event_render_without_details(t0: datetime) -> None:
    event = HistoryEvent(4, 3, "LambdaFunctionStarted", t0, None, None)
    assert event.render() == {
        "timestamp": t0,
        "type": "LambdaFunctionStarted",
        "id": 4,
        "previousEventId": 3,
    }


def test_history_event_render_serialises_nested_payloads(t0: datetime) -> None:
    event = HistoryEvent(
        2,
        1,
        "X",
        t0,
        "xEventDetails",
        {"output": Payload({"k": [1, "é"]}), "outputDetails": {"truncated": False}, "n": 3},
    )
    (rendered,) = render_events([event])
    assert rendered["xEventDetails"] == {
        "output": '{"k":[1,"é"]}',
        "outputDetails": {"truncated": False},
        "n": 3,
    }


def test_dump_json_is_compact_and_refuses_nan() -> None:
    assert dump_json({"a": 1, "b": [True, None]}) == '{"a":1,"b":[true,null]}'
    with pytest.raises(ValueError):
        dump_json(float("nan"))


@pytest.mark.parametrize(
    "value",
    [
        {"a": None, "b": [1, {"c": float("inf")}]},
        [None, (2, float("-inf"))],
        {"deep": [[[[{"x": None, "y": float("nan")}]]]]},
    ],
)
def test_dump_json_refuses_non_finite_numbers_anywhere(value: Any) -> None:
    # orjson writes them as null: the text's nulls send it to a walk of the value.
    with pytest.raises(ValueError):
        dump_json(value)


def test_dump_json_keeps_nulls_and_finite_floats() -> None:
    assert dump_json({"a": None, "b": [1.5, -0.0, 1e308]}) == '{"a":null,"b":[1.5,-0.0,1e+308]}'


def test_to_json_renders_timestamps_as_iso_text(run: Any) -> None:
    result = run(PASS_CHAIN)
    document = result.to_json()
    assert document["status"] == "SUCCEEDED"
    assert document["output"] == {"a": {"n": 1}, "b": [1, 2]}
    assert document["events"][0]["timestamp"] == "2024-01-01T00:00:00+00:00"
    json.dumps(document)  # every value is JSON-serialisable
    assert "events" not in result.to_json(include_history=False)


# --- purity: identical inputs give identical histories ------------------------------------

T = datetime.fromisoformat("2024-01-01T00:00:00+00:00")

DETERMINISM = {
    "StartAt": "Id",
    "States": {
        "Id": {
            "Type": "Pass",
            "Parameters": {"id.$": "States.UUID()"},
            "ResultPath": "$.id",
            "Next": "Work",
        },
        "Work": {
            "Type": "Task",
            "Resource": FN + "work",
            "Retry": [
                {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "JitterStrategy": "FULL"}
            ],
            "ResultPath": "$.work",
            "Next": "Fan",
        },
        "Fan": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "StartAt": "Nap",
                "States": {"Nap": {"Type": "Wait", "SecondsPath": "$", "End": True}},
            },
            "ResultPath": "$.fan",
            "End": True,
        },
    },
}


def _drive(seed: int) -> tuple[list[dict[str, Any]], Any]:
    """Run DETERMINISM by hand: the task fails once, then succeeds; timers fire in order."""
    prefix = "arn:aws:states:us-east-1:123456789012"
    info = ExecutionInfo(
        arn=f"{prefix}:execution:M:e",
        name="e",
        state_machine_arn=f"{prefix}:stateMachine:M",
        state_machine_name="M",
        role_arn="arn:aws:iam::123456789012:role/r",
        start_time=T,
    )
    execution = Execution(
        parse_definition(json.dumps(DETERMINISM)), info, {"items": [3, 1, 2]}, seed=seed
    )
    now = T
    pending = execution.start(now)
    timers: list[tuple[datetime, str]] = []
    failed_once = False
    while execution.status == "RUNNING":
        for command in pending:
            if isinstance(command, StartTimer):
                timers.append((command.fire_at, command.timer_id))
        tasks = [c for c in pending if isinstance(c, ScheduleTask)]
        pending = []
        for task in tasks:
            pending += execution.step(TaskStarted(task.task_id), now)
            if not failed_once:
                failed_once = True
                pending += execution.step(TaskFailed(task.task_id, "Flaky", "once"), now)
            else:
                pending += execution.step(TaskSucceeded(task.task_id, {"done": True}), now)
        if not pending and timers:
            timers.sort()
            fire_at, timer_id = timers.pop(0)
            now = max(now, fire_at)
            pending = execution.step(TimerFired(timer_id), now)
        elif not pending:
            break
    return render_events(execution.events), execution.output


def test_same_seed_same_history() -> None:
    first, output = _drive(seed=42)
    second, _ = _drive(seed=42)
    assert first == second
    assert first[-1]["type"] == "ExecutionSucceeded"
    assert output["fan"] == [3, 1, 2]
    assert output["work"] == {"done": True}


def test_different_seed_changes_only_the_random_parts() -> None:
    first, out_a = _drive(seed=1)
    second, out_b = _drive(seed=2)
    assert [e["type"] for e in first] == [e["type"] for e in second]
    assert out_a["id"]["id"] != out_b["id"]["id"]


def test_interpreter_timestamps_come_from_now_only() -> None:
    history, _ = _drive(seed=5)
    stamps = [e["timestamp"] for e in history]
    assert stamps == sorted(stamps)
    assert stamps[0] == T
    # The map's longest wait is 3 s after the retried task finished; jitter ≤ 10 s.
    assert stamps[-1] <= T + timedelta(seconds=13)


def _by_id(result: ExecutionResult) -> dict[int, dict[str, Any]]:
    return {e["id"]: e for e in result.history}


def test_branch_first_state_links_to_parallel_state_started(run: Any) -> None:
    # Recorded case scenarios/test_parallel_state_catch: FailStateEntered (4) → 3.
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}},
                ],
                "End": True,
            }
        },
    }
    result = run(definition)
    by_id = _by_id(result)
    for entered in (e for e in result.history if e["type"] == "PassStateEntered"):
        assert by_id[entered["previousEventId"]]["type"] == "ParallelStateStarted"


def test_iteration_first_state_links_to_map_iteration_started(run: Any) -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    result = run(definition, ["a", "b"])
    by_id = _by_id(result)
    for entered in (e for e in result.history if e["type"] == "PassStateEntered"):
        assert by_id[entered["previousEventId"]]["type"] == "MapIterationStarted"


def test_caught_task_exit_links_to_the_failure(run: Any) -> None:
    # Recorded case error_handling/test_task_lambda_test_raise_custom_exception:
    # LambdaFunctionFailed (5) → TaskStateExited (6) → PassStateEntered (7).
    def boom(event: Any, context: Any) -> Any:
        raise ValueError("x")

    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": FN + "boom",
                "Catch": [{"ErrorEquals": ["ValueError"], "Next": "H"}],
                "End": True,
            },
            "H": {"Type": "Pass", "End": True},
        },
    }
    result = run(definition, functions={"boom": boom})
    assert _types(result)[4:7] == ["LambdaFunctionFailed", "TaskStateExited", "PassStateEntered"]
    assert [e["previousEventId"] for e in result.history[5:7]] == [5, 6]
    exited = result.history[5]["stateExitedEventDetails"]
    assert json.loads(exited["output"])["Error"] == "ValueError"
