"""Execution semantics per state type (JSONPath mode), run on the virtual clock.

Expected values follow the Amazon States Language specification and the AWS-recorded cases in
``../shared/conformance/cases`` (cited by file name where a test mirrors one).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from flowstate.asl.parse import parse_definition
from flowstate.interpreter.execution import Execution, ExecutionInfo
from flowstate.interpreter.messages import (
    CancelTask,
    CancelTimer,
    Command,
    ScheduleTask,
    StartTimer,
    StopRequested,
    TaskFailed,
    TaskHeartbeat,
    TaskStarted,
    TaskSucceeded,
    TimerFired,
)
from flowstate.runtime.local import ExecutionResult

FN = "arn:aws:lambda:us-east-1:123456789012:function:"


def _out(result: ExecutionResult) -> Any:
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output is not None
    return json.loads(result.output)


def _types(result: ExecutionResult) -> list[str]:
    return [event["type"] for event in result.history]


def _of(result: ExecutionResult, type_: str) -> list[dict[str, Any]]:
    return [event for event in result.history if event["type"] == type_]


def _one(result: ExecutionResult, type_: str) -> dict[str, Any]:
    found = _of(result, type_)
    assert len(found) == 1, f"{type_}: {len(found)} events in {_types(result)}"
    return found[0]


def _pass_machine(state: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": "S", "States": {"S": {"Type": "Pass", "End": True, **state}}}


# --- Pass: InputPath → Parameters → Result → ResultPath → OutputPath ------------------------


@pytest.mark.parametrize(
    ("fields", "input_value", "expected"),
    [
        # No fields: the input passes through.
        ({}, {"a": 1}, {"a": 1}),
        # Result replaces the input when ResultPath is absent (ResultPath defaults to "$").
        ({"Result": {"r": 1}}, {"a": 1}, {"r": 1}),
        ({"Result": {"r": 1}, "ResultPath": "$"}, {"a": 1}, {"r": 1}),
        # AWS: "ResultPath": null discards the result and keeps the state's input.
        ({"Result": {"r": 1}, "ResultPath": None}, {"a": 1}, {"a": 1}),
        # ResultPath inserts into the raw input, creating missing objects on the way.
        ({"Result": 7, "ResultPath": "$.x.y"}, {"a": 1}, {"a": 1, "x": {"y": 7}}),
        ({"Result": 7, "ResultPath": "$.a"}, {"a": 1, "b": 2}, {"a": 7, "b": 2}),
        # InputPath selects the effective input, which the Pass state passes on as its result.
        ({"InputPath": "$.a"}, {"a": {"b": 1}, "c": 2}, {"b": 1}),
        ({"InputPath": "$"}, {"a": 1}, {"a": 1}),
        # AWS: "InputPath": null gives {} as the effective input; "OutputPath": null gives {}.
        ({"InputPath": None}, {"a": 1}, {}),
        ({"OutputPath": None}, {"a": 1}, {}),
        ({"OutputPath": "$.a"}, {"a": [1, 2], "b": 2}, [1, 2]),
        ({"OutputPath": "$"}, {"a": 1}, {"a": 1}),
        # Parameters builds the effective input from InputPath's selection.
        (
            {"InputPath": "$.a", "Parameters": {"x.$": "$.b", "lit": "v"}},
            {"a": {"b": 5}},
            {"x": 5, "lit": "v"},
        ),
        # ResultPath places the result into the *raw* input, not the InputPath selection.
        (
            {"InputPath": "$.a", "Parameters": {"x.$": "$.b"}, "ResultPath": "$.out"},
            {"a": {"b": 5}, "c": 3},
            {"a": {"b": 5}, "c": 3, "out": {"x": 5}},
        ),
        # OutputPath applies after ResultPath.
        (
            {"Result": {"k": "v"}, "ResultPath": "$.r", "OutputPath": "$.r"},
            {"a": 1},
            {"k": "v"},
        ),
        # InputPath null with Parameters: "$" in Parameters refers to {} (recorded case
        # base/test_state_pass_result_null_input_output_paths).
        (
            {"InputPath": None, "Parameters": {"FromInput.$": "$"}},
            {"a": 1},
            {"FromInput": {}},
        ),
    ],
)
def test_pass_data_flow(run: Any, fields: dict[str, Any], input_value: Any, expected: Any) -> None:
    assert _out(run(_pass_machine(fields), input_value)) == expected


def test_pass_parameters_read_the_context_object(run: Any) -> None:
    result = run(
        _pass_machine(
            {
                "Parameters": {
                    "state.$": "$$.State.Name",
                    "input.$": "$$.Execution.Input",
                    "name.$": "$$.Execution.Name",
                }
            }
        ),
        {"k": 1},
        execution_name="exec-1",
    )
    assert _out(result) == {"state": "S", "input": {"k": 1}, "name": "exec-1"}


def test_context_object_start_time_is_the_virtual_start(run: Any) -> None:
    result = run(_pass_machine({"Parameters": {"t.$": "$$.Execution.StartTime"}}))
    assert _out(result) == {"t": "2024-01-01T00:00:00.000Z"}


def test_pass_chain_carries_each_output_into_the_next_input(run: Any) -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "B"},
            "B": {"Type": "Pass", "Parameters": {"seen.$": "$.a"}, "Next": "C"},
            "C": {"Type": "Pass", "End": True},
        },
    }
    result = run(definition, {"x": 0})
    assert _out(result) == {"seen": 1}
    entered = [
        json.loads(e["stateEnteredEventDetails"]["input"])
        for e in result.history
        if e["type"] == "PassStateEntered"
    ]
    assert entered == [{"x": 0}, {"x": 0, "a": 1}, {"seen": 1}]


# --- Task data flow ------------------------------------------------------------------------


def test_task_input_path_and_parameters_shape_the_function_event(run: Any) -> None:
    seen: list[Any] = []

    def handler(event: Any, context: Any) -> Any:
        seen.append(event)
        return {"a": 1, "b": 2}

    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": FN + "work",
                "InputPath": "$.order",
                "Parameters": {"id.$": "$.id", "fixed": True},
                "ResultSelector": {"onlyA.$": "$.a"},
                "ResultPath": "$.result",
                "OutputPath": "$.result",
                "End": True,
            }
        },
    }
    result = run(definition, {"order": {"id": "o-1", "extra": 0}}, functions={"work": handler})
    assert seen == [{"id": "o-1", "fixed": True}]
    assert _out(result) == {"onlyA": 1}


def test_task_result_path_merges_into_the_raw_input(run: Any) -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": FN + "work",
                "InputPath": "$.x",
                "ResultPath": "$.r",
                "End": True,
            }
        },
    }
    result = run(definition, {"x": 2, "y": 3}, functions={"work": lambda e, c: e * 10})
    assert _out(result) == {"x": 2, "y": 3, "r": 20}


def test_task_result_path_null_keeps_the_input(run: Any) -> None:
    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": FN + "work", "ResultPath": None, "End": True}},
    }
    result = run(definition, {"keep": 1}, functions={"work": lambda e, c: {"dropped": True}})
    assert _out(result) == {"keep": 1}


def test_task_result_selector_applies_before_result_path(run: Any) -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": FN + "work",
                "ResultSelector": {"n.$": "States.ArrayLength($.items)"},
                "ResultPath": "$.count",
                "End": True,
            }
        },
    }
    result = run(definition, {"in": 1}, functions={"work": lambda e, c: {"items": [1, 2, 3]}})
    assert _out(result) == {"in": 1, "count": {"n": 3}}


# --- Choice --------------------------------------------------------------------------------


def _choice_machine(default: bool = True) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "Type": "Choice",
        "Choices": [
            {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"},
            {"Variable": "$.n", "NumericGreaterThan": 5, "Next": "Medium"},
        ],
    }
    states: dict[str, Any] = {
        "C": choice,
        "Big": {"Type": "Pass", "Result": "big", "End": True},
        "Medium": {"Type": "Pass", "Result": "medium", "End": True},
    }
    if default:
        choice["Default"] = "Small"
        states["Small"] = {"Type": "Pass", "Result": "small", "End": True}
    return {"StartAt": "C", "States": states}


@pytest.mark.parametrize(("n", "expected"), [(11, "big"), (6, "medium"), (5, "small")])
def test_choice_takes_the_first_matching_rule_else_default(run: Any, n: int, expected: str) -> None:
    assert _out(run(_choice_machine(), {"n": n})) == expected


def test_choice_without_match_or_default_fails_with_no_choice_matched(run: Any) -> None:
    result = run(_choice_machine(default=False), {"n": 1})
    assert result.status == "FAILED"
    assert result.error == "States.NoChoiceMatched"
    # The Choice state entered but never exited.
    assert "ChoiceStateEntered" in _types(result)
    assert "ChoiceStateExited" not in _types(result)
    assert _types(result)[-1] == "ExecutionFailed"


def test_choice_applies_input_path_and_output_path(run: Any) -> None:
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "InputPath": "$.inner",
                "OutputPath": "$.v",
                "Choices": [{"Variable": "$.v", "StringEquals": "yes", "Next": "Done"}],
            },
            "Done": {"Type": "Succeed"},
        },
    }
    result = run(definition, {"inner": {"v": "yes"}, "other": 1})
    assert _out(result) == "yes"


def test_choice_is_not_caught_by_a_later_state(run: Any) -> None:
    # A Choice has no Catch: NoChoiceMatched fails the whole execution with its cause.
    result = run(_choice_machine(default=False), {"n": 0})
    failed = _one(result, "ExecutionFailed")["executionFailedEventDetails"]
    assert failed["error"] == "States.NoChoiceMatched"


# --- Succeed and Fail ----------------------------------------------------------------------


def test_succeed_applies_input_path_and_output_path(run: Any) -> None:
    definition = {
        "StartAt": "S",
        "States": {"S": {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}},
    }
    result = run(definition, {"a": {"b": [1]}, "z": 0})
    assert _out(result) == [1]
    assert _types(result) == [
        "ExecutionStarted",
        "SucceedStateEntered",
        "SucceedStateExited",
        "ExecutionSucceeded",
    ]


def test_fail_with_error_and_cause(run: Any) -> None:
    definition = {
        "StartAt": "F",
        "States": {"F": {"Type": "Fail", "Error": "MyError", "Cause": "it broke"}},
    }
    result = run(definition, {"a": 1})
    assert (result.status, result.error, result.cause) == ("FAILED", "MyError", "it broke")
    # A Fail state is entered but never exited.
    assert _types(result) == ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]
    details = result.history[-1]["executionFailedEventDetails"]
    assert details == {"cause": "it broke", "error": "MyError"}


def test_fail_without_error_or_cause_has_empty_details(run: Any) -> None:
    # Recorded case base/test_state_fail_empty: FAILED with no error and no cause.
    result = run({"StartAt": "F", "States": {"F": {"Type": "Fail"}}})
    assert result.status == "FAILED"
    assert result.error is None
    assert result.cause is None
    assert result.history[-1]["executionFailedEventDetails"] == {}


def test_fail_error_path_and_cause_path_read_the_input(run: Any) -> None:
    definition = {
        "StartAt": "F",
        "States": {"F": {"Type": "Fail", "ErrorPath": "$.e.name", "CausePath": "$.e.why"}},
    }
    result = run(definition, {"e": {"name": "Custom", "why": "because"}})
    assert (result.error, result.cause) == ("Custom", "because")


def test_fail_cause_path_with_intrinsic(run: Any) -> None:
    definition = {
        "StartAt": "F",
        "States": {
            "F": {
                "Type": "Fail",
                "Error": "E",
                "CausePath": "States.Format('order {} failed', $.id)",
            }
        },
    }
    result = run(definition, {"id": 42})
    assert (result.error, result.cause) == ("E", "order 42 failed")


def test_fail_error_path_not_found_is_states_runtime(run: Any) -> None:
    # Recorded case scenarios/test_invalid_jsonpath_INVALID_JSONPATH_IN_ERRORPATH.
    definition = {
        "StartAt": "pass",
        "States": {
            "pass": {"Type": "Pass", "Next": "fail", "Parameters": {"Error": "error-value"}},
            "fail": {"Type": "Fail", "ErrorPath": "$.ErrorX"},
        },
    }
    result = run(definition, {"int-literal": 0})
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert result.cause == (
        "An error occurred while executing the state 'fail' (entered at the event id #4). "
        "The JSONPath '$.ErrorX' specified for the field 'ErrorPath' could not be found in "
        """the input '{"Error":"error-value"}'"""
    )


# --- Wait ----------------------------------------------------------------------------------

ONE_YEAR = 365 * 24 * 3600


def _wait_machine(wait: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": "W", "States": {"W": {"Type": "Wait", "End": True, **wait}}}


def _stamp(event: dict[str, Any]) -> datetime:
    stamp = event["timestamp"]
    assert isinstance(stamp, datetime)
    return stamp


def test_wait_one_year_finishes_at_once_a_year_later(run: Any, t0: datetime) -> None:
    result = run(_wait_machine({"Seconds": ONE_YEAR}), {"a": 1})
    assert _out(result) == {"a": 1}
    assert _stamp(_one(result, "WaitStateEntered")) == t0
    assert _stamp(_one(result, "WaitStateExited")) == t0 + timedelta(days=365)
    assert _stamp(_one(result, "ExecutionSucceeded")) == t0 + timedelta(days=365)


def test_wait_seconds_path(run: Any, t0: datetime) -> None:
    result = run(_wait_machine({"SecondsPath": "$.delay"}), {"delay": 90})
    assert _out(result) == {"delay": 90}
    assert _stamp(_one(result, "WaitStateExited")) == t0 + timedelta(seconds=90)


def test_wait_timestamp(run: Any, t0: datetime) -> None:
    result = run(_wait_machine({"Timestamp": "2024-03-01T12:00:00Z"}))
    assert result.status == "SUCCEEDED"
    assert _stamp(_one(result, "ExecutionSucceeded")) == datetime.fromisoformat(
        "2024-03-01T12:00:00+00:00"
    )


def test_wait_timestamp_path_with_offset(run: Any) -> None:
    result = run(_wait_machine({"TimestampPath": "$.at"}), {"at": "2024-01-02T01:00:00+01:00"})
    assert result.status == "SUCCEEDED"
    assert _stamp(_one(result, "WaitStateExited")) == datetime.fromisoformat(
        "2024-01-02T00:00:00+00:00"
    )


def test_wait_timestamp_in_the_past_continues_immediately(run: Any, t0: datetime) -> None:
    result = run(_wait_machine({"Timestamp": "2016-12-05T21:29:29Z"}))
    assert result.status == "SUCCEEDED"
    assert _stamp(_one(result, "ExecutionSucceeded")) == t0


def test_wait_then_pass_sees_the_same_input(run: Any) -> None:
    definition = {
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "Seconds": 5, "InputPath": "$.a", "Next": "P"},
            "P": {"Type": "Pass", "End": True},
        },
    }
    assert _out(run(definition, {"a": {"b": 1}, "c": 2})) == {"b": 1}


def test_wait_seconds_path_not_an_integer_is_states_runtime(run: Any) -> None:
    # Recorded case base/test_wait__TestSfnWait__test_base_wait_seconds_path_-1.5.
    definition = {
        "StartAt": "WaitState",
        "States": {
            "WaitState": {"Type": "Wait", "SecondsPath": "$.input.waitSeconds", "End": True}
        },
    }
    result = run(definition, {"input": {"waitSeconds": -1.5}})
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert result.cause == (
        "An error occurred while executing the state 'WaitState' (entered at the event id #2). "
        "The SecondsPath parameter cannot be parsed as a long value: $.input.waitSeconds == -1.5"
    )


def test_wait_seconds_path_missing_is_states_runtime(run: Any) -> None:
    result = run(_wait_machine({"SecondsPath": "$.nope"}), {"delay": 1})
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert "SecondsPath" in (result.cause or "")


def test_wait_timestamp_path_without_offset_is_states_runtime(run: Any) -> None:
    # Recorded case scenarios/test_wait_timestamp_path_NO_Z.
    definition = {
        "StartAt": "WaitUntil",
        "States": {"WaitUntil": {"Type": "Wait", "TimestampPath": "$.TimestampValue", "End": True}},
    }
    result = run(definition, {"TimestampValue": "2016-12-05T21:29:29"})
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert result.cause == (
        "An error occurred while executing the state 'WaitUntil' (entered at the event id #2). "
        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
        "date-time format string: $.TimestampValue == 2016-12-05T21:29:29"
    )


# --- execution TimeoutSeconds --------------------------------------------------------------


def test_execution_timeout_seconds_times_out(run: Any, t0: datetime) -> None:
    # Recorded case timeouts/test_global_timeout: a 60 s Wait under TimeoutSeconds 5.
    definition = {
        "Comment": "WAIT_1_MIN",
        "StartAt": "State_1",
        "States": {
            "State_1": {"Type": "Wait", "Seconds": 60, "Next": "State_2"},
            "State_2": {"Type": "Pass", "Result": {"Arg1": "argument1"}, "End": True},
        },
        "TimeoutSeconds": 5,
    }
    result = run(definition)
    assert result.status == "TIMED_OUT"
    assert result.output is None
    types = _types(result)
    assert types == ["ExecutionStarted", "WaitStateEntered", "ExecutionTimedOut"]
    assert _stamp(result.history[-1]) == t0 + timedelta(seconds=5)


def test_execution_timeout_not_reached_succeeds(run: Any) -> None:
    definition = {
        "StartAt": "W",
        "TimeoutSeconds": 100,
        "States": {"W": {"Type": "Wait", "Seconds": 99, "End": True}},
    }
    result = run(definition, {"v": 1})
    assert _out(result) == {"v": 1}
    assert "ExecutionTimedOut" not in _types(result)


# --- Task TimeoutSeconds, driven through the interpreter directly --------------------------

T = datetime.fromisoformat("2024-01-01T00:00:00+00:00")


def _execution(definition: dict[str, Any], input_value: Any = None, seed: int = 7) -> Execution:
    machine = parse_definition(json.dumps(definition))
    prefix = "arn:aws:states:us-east-1:123456789012"
    info = ExecutionInfo(
        arn=f"{prefix}:execution:M:e1",
        name="e1",
        state_machine_arn=f"{prefix}:stateMachine:M",
        state_machine_name="M",
        role_arn="arn:aws:iam::123456789012:role/r",
        start_time=T,
    )
    return Execution(machine, info, {} if input_value is None else input_value, seed=seed)


def _only(commands: list[Command], kind: type) -> list[Any]:
    return [c for c in commands if isinstance(c, kind)]


def _timeout_task(**extra: Any) -> dict[str, Any]:
    return {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": FN + "slow",
                "TimeoutSeconds": 5,
                "End": True,
                **extra,
            }
        },
    }


def test_task_timeout_seconds_fails_with_states_timeout() -> None:
    execution = _execution(_timeout_task())
    commands = execution.start(T)
    (task,) = _only(commands, ScheduleTask)
    assert task.timeout_seconds == 5
    (timer,) = _only(commands, StartTimer)
    assert timer.fire_at == T + timedelta(seconds=5)

    assert execution.step(TaskStarted(task.task_id), T) == []
    commands = execution.step(TimerFired(timer.timer_id), T + timedelta(seconds=5))

    assert execution.status == "FAILED"
    assert execution.error == "States.Timeout"
    assert CancelTask(task.task_id) in commands
    assert [e.type for e in execution.events] == [
        "ExecutionStarted",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionTimedOut",
        "ExecutionFailed",
    ]
    scheduled = execution.events[2].render()["lambdaFunctionScheduledEventDetails"]
    assert scheduled["timeoutInSeconds"] == 5
    timed_out = execution.events[4].render()
    assert timed_out["lambdaFunctionTimedOutEventDetails"]["error"] == "States.Timeout"
    assert timed_out["timestamp"] == T + timedelta(seconds=5)


def test_task_timeout_then_late_completion_is_ignored() -> None:
    execution = _execution(_timeout_task())
    commands = execution.start(T)
    (task,) = _only(commands, ScheduleTask)
    (timer,) = _only(commands, StartTimer)
    execution.step(TimerFired(timer.timer_id), T + timedelta(seconds=5))
    count = len(execution.events)
    assert (
        execution.step(TaskSucceeded(task.task_id, {"late": True}), T + timedelta(seconds=6)) == []
    )
    assert execution.status == "FAILED"
    assert len(execution.events) == count


def test_task_completion_before_timeout_cancels_the_timer() -> None:
    execution = _execution(_timeout_task())
    commands = execution.start(T)
    (task,) = _only(commands, ScheduleTask)
    (timer,) = _only(commands, StartTimer)
    execution.step(TaskStarted(task.task_id), T)
    commands = execution.step(TaskSucceeded(task.task_id, {"ok": 1}), T + timedelta(seconds=1))
    assert execution.status == "SUCCEEDED"
    assert execution.output == {"ok": 1}
    # The timer no longer matters: firing it afterwards changes nothing.
    assert execution.step(TimerFired(timer.timer_id), T + timedelta(seconds=5)) == []
    assert execution.status == "SUCCEEDED"


def test_task_timeout_is_caught_by_states_timeout() -> None:
    execution = _execution(
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": FN + "slow",
                    "TimeoutSeconds": 5,
                    "Catch": [
                        {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.err", "Next": "H"}
                    ],
                    "End": True,
                },
                "H": {"Type": "Pass", "End": True},
            },
        },
        {"in": 1},
    )
    commands = execution.start(T)
    (timer,) = _only(commands, StartTimer)
    execution.step(TimerFired(timer.timer_id), T + timedelta(seconds=5))
    assert execution.status == "SUCCEEDED"
    assert execution.output == {"in": 1, "err": {"Error": "States.Timeout", "Cause": ""}}


def test_task_timeout_is_not_matched_by_states_task_failed() -> None:
    # AWS: States.TaskFailed matches every known error except States.Timeout.
    execution = _execution(
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": FN + "slow",
                    "TimeoutSeconds": 5,
                    "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 3}],
                    "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "H"}],
                    "End": True,
                },
                "H": {"Type": "Pass", "End": True},
            },
        }
    )
    (timer,) = _only(execution.start(T), StartTimer)
    commands = execution.step(TimerFired(timer.timer_id), T + timedelta(seconds=5))
    assert execution.status == "FAILED"
    assert execution.error == "States.Timeout"
    assert _only(commands, ScheduleTask) == []


def test_task_timeout_retry_schedules_a_new_attempt_after_the_interval() -> None:
    execution = _execution(
        _timeout_task(
            Retry=[{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 3, "MaxAttempts": 1}]
        )
    )
    commands = execution.start(T)
    (first,) = _only(commands, ScheduleTask)
    (timeout_timer,) = _only(commands, StartTimer)
    commands = execution.step(TimerFired(timeout_timer.timer_id), T + timedelta(seconds=5))
    assert execution.status == "RUNNING"
    (retry_timer,) = _only(commands, StartTimer)
    assert retry_timer.fire_at == T + timedelta(seconds=8)
    commands = execution.step(TimerFired(retry_timer.timer_id), T + timedelta(seconds=8))
    (second,) = _only(commands, ScheduleTask)
    assert second.task_id != first.task_id
    assert second.idempotency_key != first.idempotency_key
    execution.step(TaskSucceeded(second.task_id, "done"), T + timedelta(seconds=9))
    assert (execution.status, execution.output) == ("SUCCEEDED", "done")


def test_task_failed_event_runs_catch() -> None:
    execution = _execution(
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": FN + "f",
                    "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "H"}],
                    "End": True,
                },
                "H": {"Type": "Pass", "End": True},
            },
        }
    )
    (task,) = _only(execution.start(T), ScheduleTask)
    execution.step(TaskFailed(task.task_id, "Boom", "why"), T)
    assert execution.status == "SUCCEEDED"
    assert execution.output == {"Error": "Boom", "Cause": "why"}


def test_heartbeat_timeout_fails_with_states_heartbeat_timeout() -> None:
    activity = "arn:aws:states:us-east-1:123456789012:activity:work"
    execution = _execution(
        {
            "StartAt": "T",
            "States": {
                "T": {"Type": "Task", "Resource": activity, "HeartbeatSeconds": 10, "End": True}
            },
        }
    )
    commands = execution.start(T)
    (task,) = _only(commands, ScheduleTask)
    (beat,) = _only(commands, StartTimer)
    assert beat.fire_at == T + timedelta(seconds=10)
    execution.step(TaskStarted(task.task_id), T)
    # A heartbeat at 8 s re-arms the timer for 18 s; the old deadline no longer applies.
    commands = execution.step(TaskHeartbeat(task.task_id), T + timedelta(seconds=8))
    (rearmed,) = _only(commands, StartTimer)
    assert rearmed.fire_at == T + timedelta(seconds=18)
    execution.step(TimerFired(beat.timer_id), T + timedelta(seconds=10))
    assert execution.status == "RUNNING"
    execution.step(TimerFired(rearmed.timer_id), T + timedelta(seconds=18))
    assert execution.status == "FAILED"
    assert execution.error == "States.HeartbeatTimeout"
    assert [e.type for e in execution.events][-2:] == ["ActivityTimedOut", "ExecutionFailed"]


# --- Parallel ------------------------------------------------------------------------------


def _branch(name: str, *states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    names = [n for n, _ in states]
    built: dict[str, Any] = {}
    for index, (state_name, state) in enumerate(states):
        body = dict(state)
        if body["Type"] not in ("Succeed", "Fail"):
            if index + 1 < len(states):
                body["Next"] = names[index + 1]
            else:
                body["End"] = True
        built[state_name] = body
    return {"StartAt": names[0], "States": built}


def test_parallel_outputs_are_in_branch_order_not_completion_order(run: Any) -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    _branch(
                        "slow",
                        ("Wait0", {"Type": "Wait", "Seconds": 30}),
                        ("B0", {"Type": "Pass", "Result": "first"}),
                    ),
                    _branch("fast", ("B1", {"Type": "Pass", "Result": "second"})),
                    _branch("input", ("B2", {"Type": "Pass", "InputPath": "$.v"})),
                ],
            }
        },
    }
    result = run(definition, {"v": 3})
    assert _out(result) == ["first", "second", 3]
    types = _types(result)
    assert types[:3] == ["ExecutionStarted", "ParallelStateEntered", "ParallelStateStarted"]
    assert types[-3:] == ["ParallelStateSucceeded", "ParallelStateExited", "ExecutionSucceeded"]
    # The fast branch finished before the waiting one.
    names = [
        e["stateExitedEventDetails"]["name"]
        for e in result.history
        if e["type"] == "PassStateExited"
    ]
    assert names.index("B1") < names.index("B0")


def test_parallel_result_selector_and_result_path(run: Any) -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Parameters": {"x.$": "$.x"},
                "ResultSelector": {"first.$": "$[0]", "second.$": "$[1].x"},
                "ResultPath": "$.out",
                "End": True,
                "Branches": [
                    _branch("a", ("A", {"Type": "Pass", "Result": 1})),
                    _branch("b", ("B", {"Type": "Pass"})),
                ],
            }
        },
    }
    result = run(definition, {"x": 9, "y": 0})
    assert _out(result) == {"x": 9, "y": 0, "out": {"first": 1, "second": 9}}


def test_parallel_branch_failure_fails_the_state(run: Any) -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    _branch("ok", ("W", {"Type": "Wait", "Seconds": 10}), ("A", {"Type": "Pass"})),
                    _branch("bad", ("F", {"Type": "Fail", "Error": "BranchErr", "Cause": "c"})),
                ],
            }
        },
    }
    result = run(definition)
    assert (result.status, result.error, result.cause) == ("FAILED", "BranchErr", "c")
    types = _types(result)
    assert "ParallelStateFailed" in types
    assert "ParallelStateSucceeded" not in types
    assert "ParallelStateExited" not in types
    # The waiting sibling was stopped: its Pass state never ran.
    assert "PassStateEntered" not in types
    assert types[-1] == "ExecutionFailed"


def test_parallel_state_failed_event_has_no_details(run: Any) -> None:
    # Recorded case scenarios/test_parallel_state_catch: ParallelStateFailed carries only
    # id, previousEventId, timestamp and type — the error travels in the exit/catch.
    definition = {
        "Comment": "PARALLEL_STATE_CATCH",
        "StartAt": "ParallelState",
        "States": {
            "ParallelState": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Branch1",
                        "States": {
                            "Branch1": {
                                "Type": "Fail",
                                "Error": "FailureType",
                                "Cause": "Cause description",
                            }
                        },
                    }
                ],
                "Catch": [{"ErrorEquals": ["FailureType"], "Next": "FinalCaught"}],
                "Next": "Final",
            },
            "FinalCaught": {"Type": "Pass", "End": True},
            "Final": {"Type": "Pass", "End": True},
        },
    }
    result = run(definition)
    assert _out(result) == {"Error": "FailureType", "Cause": "Cause description"}
    assert _types(result) == [
        "ExecutionStarted",
        "ParallelStateEntered",
        "ParallelStateStarted",
        "FailStateEntered",
        "ParallelStateFailed",
        "ParallelStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    failed = _one(result, "ParallelStateFailed")
    assert set(failed) == {"id", "previousEventId", "timestamp", "type"}


def test_parallel_catch_with_result_path(run: Any) -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [_branch("bad", ("F", {"Type": "Fail", "Error": "E", "Cause": "C"}))],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "H"}],
                "Next": "Never",
            },
            "H": {"Type": "Pass", "End": True},
            "Never": {"Type": "Fail"},
        },
    }
    assert _out(run(definition, {"k": 1})) == {"k": 1, "err": {"Error": "E", "Cause": "C"}}


# --- Map -----------------------------------------------------------------------------------


def _map_machine(**fields: Any) -> dict[str, Any]:
    processor = fields.pop(
        "ItemProcessor",
        {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Item",
            "States": {"Item": {"Type": "Pass", "End": True}},
        },
    )
    return {
        "StartAt": "M",
        "States": {"M": {"Type": "Map", "ItemProcessor": processor, "End": True, **fields}},
    }


def test_map_items_path_and_item_selector_with_context(run: Any) -> None:
    definition = _map_machine(
        ItemsPath="$.xs",
        ItemSelector={"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "k.$": "$.k"},
    )
    result = run(definition, {"xs": ["a", "b", "c"], "k": 1})
    assert _out(result) == [
        {"v": "a", "i": 0, "k": 1},
        {"v": "b", "i": 1, "k": 1},
        {"v": "c", "i": 2, "k": 1},
    ]
    assert _one(result, "MapStateStarted")["mapStateStartedEventDetails"] == {"length": 3}


def test_map_without_items_path_iterates_the_input(run: Any) -> None:
    result = run(_map_machine(), [1, 2])
    assert _out(result) == [1, 2]


def test_map_max_concurrency_one_history_order(run: Any) -> None:
    # Order as in the recorded case evaluate_jsonata/test_base_map_ITEMS (MaxConcurrency 1).
    result = run(_map_machine(MaxConcurrency=1), [10, 20])
    assert _out(result) == [10, 20]
    assert _types(result) == [
        "ExecutionStarted",
        "MapStateEntered",
        "MapStateStarted",
        "MapIterationStarted",
        "PassStateEntered",
        "PassStateExited",
        "MapIterationSucceeded",
        "MapIterationStarted",
        "PassStateEntered",
        "PassStateExited",
        "MapIterationSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]
    started = [e["mapIterationStartedEventDetails"] for e in _of(result, "MapIterationStarted")]
    assert started == [{"index": 0, "name": "M"}, {"index": 1, "name": "M"}]
    done = [e["mapIterationSucceededEventDetails"] for e in _of(result, "MapIterationSucceeded")]
    assert done == [{"index": 0, "name": "M"}, {"index": 1, "name": "M"}]
    inputs = [e["stateEnteredEventDetails"]["input"] for e in _of(result, "PassStateEntered")]
    assert inputs == ["10", "20"]


def test_map_max_concurrency_one_previous_event_ids(run: Any) -> None:
    # Recorded: each MapIterationStarted after the first points at the previous iteration's
    # last state event, as does MapIterationSucceeded.
    result = run(_map_machine(MaxConcurrency=1), [1, 2])
    by_id = {e["id"]: e for e in result.history}
    second_start = _of(result, "MapIterationStarted")[1]
    assert by_id[second_start["previousEventId"]]["type"] == "PassStateExited"
    for done in _of(result, "MapIterationSucceeded"):
        assert by_id[done["previousEventId"]]["type"] == "PassStateExited"


def test_map_over_an_empty_array_returns_an_empty_array(run: Any) -> None:
    result = run(_map_machine(ItemsPath="$.items"), {"items": []})
    assert _out(result) == []
    assert _one(result, "MapStateStarted")["mapStateStartedEventDetails"] == {"length": 0}
    assert "MapIterationStarted" not in _types(result)
    assert _types(result)[-3:] == ["MapStateSucceeded", "MapStateExited", "ExecutionSucceeded"]


def test_map_result_path_keeps_the_input(run: Any) -> None:
    result = run(_map_machine(ItemsPath="$.xs", ResultPath="$.ys"), {"xs": [1], "z": 0})
    assert _out(result) == {"xs": [1], "z": 0, "ys": [1]}


def test_map_iteration_failure_fails_the_map_state(run: Any) -> None:
    processor = {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "Bad"}],
                "Default": "Good",
            },
            "Bad": {"Type": "Fail", "Error": "ItemError", "Cause": "item 2"},
            "Good": {"Type": "Pass", "End": True},
        },
    }
    result = run(_map_machine(MaxConcurrency=1, ItemProcessor=processor), [1, 2, 3])
    assert (result.status, result.error, result.cause) == ("FAILED", "ItemError", "item 2")
    types = _types(result)
    assert types.count("MapIterationSucceeded") == 1
    assert types.count("MapIterationFailed") == 1
    # Item 3 never started: iterations run one at a time and the map stopped at item 2.
    assert types.count("MapIterationStarted") == 2
    assert types[-3:] == ["MapIterationFailed", "MapStateFailed", "ExecutionFailed"]
    failed = _one(result, "MapIterationFailed")["mapIterationFailedEventDetails"]
    assert failed == {"index": 1, "name": "M"}


def test_map_state_failed_event_has_no_details(run: Any) -> None:
    # Recorded case scenarios/test_map_state_retry: MapStateFailed has no details, and
    # points at the failing iteration's last event, not at MapIterationFailed.
    processor = {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "HandleItemFail",
        "States": {
            "HandleItemFail": {
                "Type": "Fail",
                "Error": "HandleItemFailError",
                "Cause": "HandleItemFailCause",
            }
        },
    }
    result = run(_map_machine(MaxConcurrency=1, ItemProcessor=processor), [1])
    assert (result.error, result.cause) == ("HandleItemFailError", "HandleItemFailCause")
    failed = _one(result, "MapStateFailed")
    assert set(failed) == {"id", "previousEventId", "timestamp", "type"}
    by_id = {e["id"]: e for e in result.history}
    assert by_id[failed["previousEventId"]]["type"] == "FailStateEntered"


def test_map_state_retry_restarts_every_iteration(run: Any) -> None:
    # Recorded case scenarios/test_map_state_retry: MaxAttempts 2 → the map runs 3 times.
    processor = {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "HandleItemFail",
        "States": {
            "HandleItemFail": {
                "Type": "Fail",
                "Error": "HandleItemFailError",
                "Cause": "HandleItemFailCause",
            }
        },
    }
    definition = _map_machine(
        MaxConcurrency=1,
        ItemProcessor=processor,
        Retry=[{"ErrorEquals": ["HandleItemFailError"], "MaxAttempts": 2}],
    )
    result = run(definition, [1])
    assert result.error == "HandleItemFailError"
    types = _types(result)
    assert types.count("MapStateStarted") == 3
    assert types.count("MapIterationFailed") == 3
    assert types.count("MapStateFailed") == 1
    assert types.count("MapStateEntered") == 1


def test_map_catch_with_result_path(run: Any) -> None:
    processor = {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "F",
        "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "C"}},
    }
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.xs",
                "ItemProcessor": processor,
                "Catch": [{"ErrorEquals": ["E"], "ResultPath": "$.err", "Next": "H"}],
                "End": True,
            },
            "H": {"Type": "Pass", "End": True},
        },
    }
    assert _out(run(definition, {"xs": [1]})) == {"xs": [1], "err": {"Error": "E", "Cause": "C"}}


def test_map_items_path_not_an_array_is_states_runtime(run: Any) -> None:
    result = run(_map_machine(ItemsPath="$.xs"), {"xs": {"not": "array"}})
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"


def test_nested_map_inside_parallel(run: Any) -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {
                        "StartAt": "M",
                        "States": {
                            "M": {
                                "Type": "Map",
                                "ItemsPath": "$.xs",
                                "ItemSelector": {"i.$": "$$.Map.Item.Index"},
                                "ItemProcessor": {
                                    "StartAt": "I",
                                    "States": {"I": {"Type": "Pass", "End": True}},
                                },
                                "End": True,
                            }
                        },
                    },
                    _branch("b", ("B", {"Type": "Pass", "Result": "b"})),
                ],
            }
        },
    }
    assert _out(run(definition, {"xs": ["p", "q"]})) == [[{"i": 0}, {"i": 1}], "b"]


def test_map_results_keep_item_order_with_concurrency(run: Any) -> None:
    # Iterations finish in reverse order (longer waits first), results stay in item order.
    processor = {
        "StartAt": "Nap",
        "States": {
            "Nap": {"Type": "Wait", "SecondsPath": "$.s", "Next": "Out"},
            "Out": {"Type": "Pass", "InputPath": "$.id", "End": True},
        },
    }
    items = [{"id": "a", "s": 30}, {"id": "b", "s": 20}, {"id": "c", "s": 10}]
    result = run(_map_machine(MaxConcurrency=2, ItemProcessor=processor), items)
    assert _out(result) == ["a", "b", "c"]
    # With two at a time, c starts when b (20 s) finishes and ends at 30 s with a.
    assert _stamp(_one(result, "MapStateSucceeded")) - _stamp(result.history[0]) == timedelta(
        seconds=30
    )


def test_legacy_map_iterator_with_parameters(run: Any) -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.xs",
                "Parameters": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
                "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    result = run(definition, {"xs": [True, None]})
    assert _out(result) == [{"value": True, "index": 0}, {"value": None, "index": 1}]


def test_misspelled_states_all_does_not_catch(run: Any) -> None:
    # Recorded case scenarios/test_map_state_catch_empty_fail: "State.ALL" is just a name.
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "F",
                    "States": {"F": {"Type": "Fail"}},
                },
                "Catch": [{"ErrorEquals": ["State.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    result = run(definition, [1])
    assert result.status == "FAILED"
    assert (result.error, result.cause) == (None, None)
    assert "PassStateEntered" not in _types(result)


def test_pass_result_takes_precedence_over_parameters(run: Any) -> None:
    definition = _pass_machine({"Parameters": {"p": 1}, "Result": {"r": 2}, "ResultPath": "$.out"})
    assert _out(run(definition, {"in": 0})) == {"in": 0, "out": {"r": 2}}


def test_stop_requested_aborts_and_cancels_pending_work() -> None:
    execution = _execution(
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "End": True,
                    "Branches": [
                        {
                            "StartAt": "W",
                            "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}},
                        },
                        {
                            "StartAt": "T",
                            "States": {"T": {"Type": "Task", "Resource": FN + "f", "End": True}},
                        },
                    ],
                }
            },
        }
    )
    commands = execution.start(T)
    (task,) = _only(commands, ScheduleTask)
    (timer,) = _only(commands, StartTimer)
    commands = execution.step(StopRequested("Stopped", "by test"), T + timedelta(seconds=1))
    assert (execution.status, execution.error, execution.cause) == ("ABORTED", "Stopped", "by test")
    assert CancelTask(task.task_id) in commands
    assert CancelTimer(timer.timer_id) in commands
    last = execution.events[-1].render()
    assert last["type"] == "ExecutionAborted"
    assert last["executionAbortedEventDetails"] == {"cause": "by test", "error": "Stopped"}
    # Nothing happens after the end.
    assert execution.step(TaskSucceeded(task.task_id, 1), T + timedelta(seconds=2)) == []
    assert execution.events[-1].type == "ExecutionAborted"


@pytest.mark.parametrize("extra", [{}, {"ResultPath": "$.r", "OutputPath": "$.r"}])
def test_a_pass_result_over_the_quota_fails_the_state(run: Any, extra: dict[str, Any]) -> None:
    over = run(_pass_machine({"Result": {"big": "é" * 140_000}, **extra}), {})
    assert (over.status, over.error) == ("FAILED", "States.DataLimitExceeded")
    assert "The state/task 'S' returned a result" in (over.cause or "")
    # measured exactly: 200 KB is over the parse-time margin, and under the quota itself
    under = run(_pass_machine({"Result": {"big": "x" * 200_000}, **extra}), {})
    assert len(_out(under)["big"]) == 200_000
