"""Distributed Map runs in the pure interpreter: UpdateMapRun's effect (MapRunUpdated) and the
figures a run hands over when it ends (RecordMapRun)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flowstate.asl.parse import parse_definition
from flowstate.interpreter.execution import Execution, ExecutionInfo
from flowstate.interpreter.fanout import FanOut
from flowstate.interpreter.messages import (
    CancelTask,
    Command,
    MapRunUpdated,
    RecordMapRun,
    ScheduleTask,
    TaskFailed,
    TaskSucceeded,
)

T = datetime(2024, 1, 1, tzinfo=UTC)
PREFIX = "arn:aws:states:us-east-1:123456789012"
WORK = "arn:aws:lambda:us-east-1:123456789012:function:work"


def distributed(**fields: Any) -> dict[str, Any]:
    return {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work",
            "States": {"Work": {"Type": "Task", "Resource": WORK, "End": True}},
        },
        **fields,
    }


def execution(definition: dict[str, Any], input_value: Any) -> Execution:
    info = ExecutionInfo(
        arn=f"{PREFIX}:execution:M:e1",
        name="e1",
        state_machine_arn=f"{PREFIX}:stateMachine:M",
        state_machine_name="M",
        role_arn="arn:aws:iam::123456789012:role/r",
        start_time=T,
    )
    return Execution(parse_definition(json.dumps(definition)), info, input_value, seed=3)


def one_map(**fields: Any) -> dict[str, Any]:
    return {"StartAt": "Items", "States": {"Items": {**distributed(**fields), "End": True}}}


def tasks(commands: list[Command]) -> list[ScheduleTask]:
    return [c for c in commands if isinstance(c, ScheduleTask)]


def records(commands: list[Command]) -> list[RecordMapRun]:
    return [c for c in commands if isinstance(c, RecordMapRun)]


def map_run_arn(run: Execution) -> str:
    (event,) = [e for e in run.events if e.type == "MapRunStarted"]
    assert isinstance(event.details, dict)
    arn = event.details["mapRunArn"]
    assert isinstance(arn, str) and arn.startswith(f"{PREFIX}:mapRun:M/")
    return arn


def fan_of(run: Execution) -> FanOut:
    fan = run.root.map_state
    assert isinstance(fan, FanOut)
    return fan


def test_a_higher_max_concurrency_starts_waiting_items_at_once() -> None:
    run = execution(one_map(MaxConcurrency=1), [0, 1, 2, 3])
    first = tasks(run.start(T))
    assert [t.parameters for t in first] == [0]
    arn = map_run_arn(run)
    events_before = run.event_count
    started = tasks(run.step(MapRunUpdated(arn, max_concurrency=3), T + timedelta(seconds=1)))
    # The two slots the new limit opens are filled now, in item order.
    assert [t.parameters for t in started] == [1, 2]
    # AWS has no history event for UpdateMapRun (botocore's HistoryEventType lists none).
    assert run.event_count == events_before
    later = tasks(run.step(TaskSucceeded(first[0].task_id, "r0"), T + timedelta(seconds=2)))
    assert [t.parameters for t in later] == [3]
    out: list[Command] = []
    for task, result in zip([*started, *later], ["r1", "r2", "r3"], strict=True):
        out += run.step(TaskSucceeded(task.task_id, result), T + timedelta(seconds=3))
    assert run.status == "SUCCEEDED" and run.output == ["r0", "r1", "r2", "r3"]
    (record,) = records(out)
    assert record.map_run_arn == arn
    assert record.figures == {
        "status": "SUCCEEDED",
        "stopped_at": (T + timedelta(seconds=3)).isoformat(),
        "max_concurrency": 3,
        "tolerated_count": None,
        "tolerated_percentage": None,
        "total": 4,
        "pending": 0,
        "running": 0,
        "succeeded": 4,
        "failed": 0,
        "aborted": 0,
    }


def test_a_lower_max_concurrency_lets_running_items_finish() -> None:
    run = execution(one_map(MaxConcurrency=2), [0, 1, 2])
    first = tasks(run.start(T))
    assert len(first) == 2
    assert run.step(MapRunUpdated(map_run_arn(run), max_concurrency=1), T) == []
    # One finishing frees no slot: one is still running under the new limit of 1.
    assert tasks(run.step(TaskSucceeded(first[0].task_id, 0), T)) == []
    assert [t.parameters for t in tasks(run.step(TaskSucceeded(first[1].task_id, 1), T))] == [2]


def test_a_threshold_lowered_below_the_failures_so_far_fails_the_run_now() -> None:
    run = execution(one_map(ToleratedFailureCount=2), [0, 1, 2])
    first = tasks(run.start(T))
    arn = map_run_arn(run)
    run.step(TaskFailed(first[1].task_id, "Boom", "one"), T)
    run.step(TaskFailed(first[2].task_id, "Boom", "two"), T)
    assert run.status == "RUNNING" and fan_of(run).failures == 2
    out = run.step(MapRunUpdated(arn, tolerated_failure_count=1), T + timedelta(seconds=5))
    assert run.status == "FAILED"
    assert run.error == "States.ExceedToleratedFailureThreshold"
    # The iteration still running is stopped, and the run's figures say so.
    assert [c.task_id for c in out if isinstance(c, CancelTask)] == [first[0].task_id]
    (record,) = records(out)
    assert record.figures["status"] == "FAILED"
    assert record.figures["tolerated_count"] == 1
    assert (record.figures["succeeded"], record.figures["failed"]) == (0, 2)
    assert (record.figures["aborted"], record.figures["running"]) == (1, 0)
    closing = [e.render() for e in run.events[-3:]]
    assert [e["type"] for e in closing] == ["MapRunFailed", "MapStateFailed", "ExecutionFailed"]
    assert closing[0]["mapRunFailedEventDetails"] == {
        "error": "States.ExceedToleratedFailureThreshold",
        "cause": "The specified tolerated failure threshold was exceeded",
    }


def test_a_raised_threshold_tolerates_a_later_failure() -> None:
    run = execution(one_map(), [0, 1, 2, 3])
    first = tasks(run.start(T))
    assert run.step(MapRunUpdated(map_run_arn(run), tolerated_failure_percentage=25), T) == []
    assert fan_of(run).tolerated_percentage == 25
    run.step(TaskFailed(first[0].task_id, "Boom", "bad item"), T)
    assert run.status == "RUNNING"  # 1 of 4 failed: 25 %, within the threshold
    out: list[Command] = []
    for task in first[1:]:
        out += run.step(TaskSucceeded(task.task_id, task.parameters), T)
    assert run.status == "SUCCEEDED"
    assert run.output == [{"Error": "Boom", "Cause": "bad item"}, 1, 2, 3]
    (record,) = records(out)
    assert (record.figures["succeeded"], record.figures["failed"]) == (3, 1)


def test_an_update_that_keeps_the_failures_within_the_threshold_changes_nothing_else() -> None:
    run = execution(one_map(ToleratedFailureCount=3, MaxConcurrency=3), [0, 1, 2])
    first = tasks(run.start(T))
    run.step(TaskFailed(first[0].task_id, "Boom", None), T)
    assert run.step(MapRunUpdated(map_run_arn(run), tolerated_failure_count=1), T) == []
    assert run.status == "RUNNING" and fan_of(run).tolerated_count == 1


def test_an_update_of_another_run_is_ignored() -> None:
    run = execution(one_map(MaxConcurrency=1), [0, 1])
    run.start(T)
    other = f"{PREFIX}:mapRun:M/Items:00000000-0000-0000-0000-000000000000"
    assert run.step(MapRunUpdated(other, max_concurrency=5), T) == []
    assert fan_of(run).max_concurrency == 1 and fan_of(run).running == 1


def test_a_run_stopped_by_a_failing_sibling_branch_is_aborted() -> None:
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {"StartAt": "Items", "States": {"Items": {**distributed(), "End": True}}},
                    {
                        "StartAt": "Wait",
                        "States": {
                            "Wait": {"Type": "Task", "Resource": WORK, "End": True},
                        },
                    },
                ],
            }
        },
    }
    run = execution(definition, [0, 1, 2])
    started = tasks(run.start(T))
    assert len(started) == 4  # three items and the other branch's task
    branch_task = next(t for t in started if t.parameters == [0, 1, 2])
    out = run.step(TaskFailed(branch_task.task_id, "Boom", None), T + timedelta(seconds=1))
    assert run.status == "FAILED"
    (record,) = records(out)
    assert record.figures["status"] == "ABORTED"
    assert record.figures["stopped_at"] == (T + timedelta(seconds=1)).isoformat()
    assert (record.figures["aborted"], record.figures["running"]) == (3, 0)
