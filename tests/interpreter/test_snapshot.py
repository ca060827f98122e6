"""A snapshot taken between any two steps restores an execution that ends exactly as the
uninterrupted one: same status, output and history."""

from __future__ import annotations

import heapq
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from flowstate.asl.parse import parse_definition
from flowstate.interpreter.execution import Execution, ExecutionInfo
from flowstate.interpreter.history import render_events
from flowstate.interpreter.messages import (
    ScheduleTask,
    StartTimer,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    TimerFired,
)
from flowstate.interpreter.snapshot import SNAPSHOT_VERSION, dump_execution, load_execution

START = datetime(2026, 1, 1, tzinfo=UTC)

DEFINITION = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": [1, 2, 3], "ResultPath": "$.items", "Next": "Fan"},
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "Each",
                    "States": {
                        "Each": {
                            "Type": "Map",
                            "ItemsPath": "$.items",
                            "MaxConcurrency": 2,
                            "ItemProcessor": {
                                "StartAt": "Work",
                                "States": {
                                    "Work": {
                                        "Type": "Task",
                                        "Resource": "arn:aws:lambda:us-east-1:1:function:double",
                                        "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 3}],
                                        "End": True,
                                    }
                                },
                            },
                            "End": True,
                        }
                    },
                },
                {
                    "StartAt": "Nap",
                    "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}},
                },
            ],
            "Next": "Done",
        },
        "Done": {"Type": "Pass", "Assign": {"finished": True}, "End": True},
    },
}


def _new_execution(machine: Any) -> Execution:
    info = ExecutionInfo(
        arn="arn:aws:states:us-east-1:1:execution:sm:e",
        name="e",
        state_machine_arn="arn:aws:states:us-east-1:1:stateMachine:sm",
        state_machine_name="sm",
        role_arn="arn:aws:iam::1:role/r",
        start_time=START,
    )
    return Execution(machine, info, {"n": 1}, seed=42)


def _drive(machine: Any, *, restore_every_step: bool) -> Execution:
    """Run to the end with a fake runtime; optionally round-trip the snapshot at every step."""
    execution = _new_execution(machine)
    now = START
    calls: dict[int, int] = {}
    inbox: list[Any] = []
    timers: list[tuple[datetime, str]] = []

    def perform(commands: list[Any]) -> None:
        for command in commands:
            if isinstance(command, ScheduleTask):
                value = command.parameters
                calls[value] = calls.get(value, 0) + 1
                inbox.append(TaskStarted(command.task_id))
                if value == 2 and calls[value] == 1:
                    inbox.append(TaskFailed(command.task_id, "Flaky", "first try"))
                else:
                    inbox.append(TaskSucceeded(command.task_id, value * 2))
            elif isinstance(command, StartTimer):
                heapq.heappush(timers, (command.fire_at, command.timer_id))

    perform(execution.start(now))
    while execution.status == "RUNNING":
        if inbox:
            event = inbox.pop(0)
        else:
            now, timer_id = heapq.heappop(timers)
            event = TimerFired(timer_id)
        if restore_every_step:
            events = execution.events
            data = json.loads(json.dumps(dump_execution(execution)))
            execution = load_execution(machine, data)
            execution.events = events
        perform(execution.step(event, now))
    return execution


def test_restored_execution_ends_as_the_uninterrupted_one() -> None:
    machine = parse_definition(DEFINITION)
    plain = _drive(machine, restore_every_step=False)
    restored = _drive(machine, restore_every_step=True)
    assert plain.status == "SUCCEEDED"
    assert plain.output == [[2, 4, 6], {"n": 1, "items": [1, 2, 3]}]
    assert restored.status == plain.status
    assert restored.output == plain.output
    assert render_events(restored.events) == render_events(plain.events)
    # The retry back-off and the one-hour Wait kept their deadlines across restores.
    assert restored.events[-1].timestamp == plain.events[-1].timestamp == START.replace(hour=1)


def test_snapshot_of_another_version_is_refused() -> None:
    machine = parse_definition(DEFINITION)
    data = dump_execution(_new_execution(machine))
    data["version"] = SNAPSHOT_VERSION + 1
    with pytest.raises(ValueError, match="snapshot version"):
        load_execution(machine, data)
