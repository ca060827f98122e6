"""RedriveExecution in the pure interpreter: a stopped execution goes on from where it stopped.

Behaviour as the Step Functions developer guide ("Restarting state machine executions with
redrive") describes it: only the unsuccessful step runs again, a Parallel re-runs only its
failed or aborted branches, an inline Map only its failed or aborted iterations, Retry counters
start again, a Fail state fails again, the machine's TimeoutSeconds counts from the redrive.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowstate.asl.parse import parse_definition
from flowstate.interpreter.execution import EXECUTION_TIMEOUT_TIMER, Execution, ExecutionInfo
from flowstate.interpreter.history import render_events
from flowstate.interpreter.messages import (
    CancelTimer,
    Command,
    Event,
    ScheduleTask,
    StartTimer,
    StopRequested,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    TimerFired,
)
from flowstate.interpreter.redrive import redrive
from flowstate.interpreter.snapshot import dump_execution, load_execution

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=2)
FN = "arn:aws:lambda:us-east-1:123456789012:function:"
ARN = "arn:aws:states:us-east-1:123456789012:execution:orders:e1"


class Failure(Exception):
    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


HANG = object()  # a handler's answer: the task never completes


def task(name: str, **more: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": FN + name, **more}


class Driver:
    """A fake runtime: tasks answer through ``handler(name, parameters)``, timers fire in
    deadline order. Failures are delivered after everything else unless ``failures_first``."""

    def __init__(
        self,
        definition: dict[str, Any],
        handler: Callable[[str, Any], Any],
        input_value: Any = None,
        *,
        failures_first: bool = False,
    ) -> None:
        self.failures_first = failures_first
        self.machine = parse_definition(json.dumps(definition))
        info = ExecutionInfo(
            arn=ARN,
            name="e1",
            state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:orders",
            state_machine_name="orders",
            role_arn="arn:aws:iam::123456789012:role/r",
            start_time=T0,
        )
        self.execution = Execution(self.machine, info, input_value or {}, seed=7)
        self.handler = handler
        self.now = T0
        self.calls: Counter[str] = Counter()
        self.keys: list[str] = []
        self.inbox: list[Event] = []
        self.later: list[Event] = []
        self.timers: list[tuple[datetime, int, str]] = []
        self.cancelled: set[str] = set()
        self.commands: list[Command] = []
        self._seq = 0

    def perform(self, commands: list[Command]) -> None:
        self.commands.extend(commands)
        for command in commands:
            if isinstance(command, ScheduleTask):
                name = command.resource.rsplit(":", 1)[-1]
                self.calls[name] += 1
                self.keys.append(command.idempotency_key)
                self.inbox.append(TaskStarted(command.task_id))
                try:
                    answer = self.handler(name, command.parameters)
                except Failure as failure:
                    failed = TaskFailed(command.task_id, failure.error, failure.cause)
                    (self.inbox if self.failures_first else self.later).append(failed)
                else:
                    if answer is not HANG:
                        self.inbox.append(TaskSucceeded(command.task_id, answer))
            elif isinstance(command, StartTimer):
                self._seq += 1
                self.cancelled.discard(command.timer_id)
                heapq.heappush(self.timers, (command.fire_at, self._seq, command.timer_id))
            elif isinstance(command, CancelTimer):
                self.cancelled.add(command.timer_id)

    def settle(self) -> Execution:
        """Run until the execution stops or only never-answered tasks remain."""
        execution = self.execution
        while execution.status == "RUNNING":
            if self.inbox:
                event = self.inbox.pop(0)
            elif self.later:
                event = self.later.pop(0)
            elif self.timers:
                fire_at, _, timer_id = heapq.heappop(self.timers)
                if timer_id in self.cancelled:
                    self.cancelled.discard(timer_id)
                    continue
                self.now = max(self.now, fire_at)
                event = TimerFired(timer_id)
            else:
                break
            self.perform(execution.step(event, self.now))
        return execution

    def start(self) -> Execution:
        self.perform(self.execution.start(self.now))
        return self.settle()

    def stop(self, at: datetime) -> Execution:
        self.now = at
        self.perform(self.execution.step(StopRequested("Stopped", "by the test"), at))
        return self.execution

    def redrive(self, at: datetime = LATER) -> Execution:
        self.now = at
        # what the runtime drops when an execution stops: its timers and in-flight answers
        self.inbox.clear()
        self.later.clear()
        self.timers.clear()
        self.commands = []
        self.perform(redrive(self.execution, at))
        return self.settle()

    def restore(self) -> None:
        """Through the JSON snapshot, as the durable runtime keeps a stopped execution."""
        events = self.execution.events
        data = json.loads(json.dumps(dump_execution(self.execution)))
        self.execution = load_execution(self.machine, data)
        self.execution.events = events

    def history(self) -> list[dict[str, Any]]:
        return render_events(self.execution.events)

    def types(self) -> list[str]:
        return [event["type"] for event in self.history()]

    def after_redrive(self) -> list[dict[str, Any]]:
        """The events from the (last) ExecutionRedriven on."""
        history = self.history()
        start = max(i for i, e in enumerate(history) if e["type"] == "ExecutionRedriven")
        return history[start:]


def failing_first(times: int, error: str = "Boom") -> Callable[[str, Any], Any]:
    """Every task fails its first ``times`` calls, then returns ``{"call": n}``."""
    seen: Counter[str] = Counter()

    def handler(name: str, parameters: Any) -> Any:
        seen[name] += 1
        if seen[name] <= times:
            raise Failure(error, f"{name} call {seen[name]}")
        return {"call": seen[name]}

    return handler


def output(execution: Execution) -> Any:
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    return execution.output


# --- a failed Task -----------------------------------------------------------------------

CHAIN = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {
            "Type": "Pass",
            "Result": {"step": 1},
            "ResultPath": "$.prep",
            "Next": "Charge",
        },
        "Charge": task("charge", ResultPath="$.charge", Next="Done"),
        "Done": {
            "Type": "Pass",
            "Parameters": {"redrives.$": "$$.Execution.RedriveCount", "charge.$": "$.charge"},
            "End": True,
        },
    },
}


def test_failed_task_runs_again_and_the_history_goes_on_after_the_failure() -> None:
    driver = Driver(CHAIN, failing_first(1), {"order": 7})
    first = driver.start()
    assert first.status == "FAILED" and first.error == "Boom"
    failed_events = len(driver.history())

    execution = driver.redrive(LATER)
    assert output(execution) == {"redrives": 1, "charge": {"call": 2}}
    assert execution.info.redrive_count == 1
    assert driver.calls == {"charge": 2}
    # a new attempt, a new idempotency key
    assert len(set(driver.keys)) == 2

    events = driver.history()
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    redriven = events[failed_events]
    assert redriven["type"] == "ExecutionRedriven"
    assert redriven["previousEventId"] == failed_events  # the ExecutionFailed event
    assert redriven["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert redriven["timestamp"] == LATER
    assert [e["type"] for e in driver.after_redrive()] == [
        "ExecutionRedriven",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "TaskStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    entered = driver.after_redrive()[1]
    assert entered["previousEventId"] == redriven["id"]
    # the failed state runs again on the very input it had: Prepare's work is kept, not redone
    assert json.loads(entered["stateEnteredEventDetails"]["input"]) == {
        "order": 7,
        "prep": {"step": 1},
    }
    assert driver.types().count("PassStateEntered") == 2  # Prepare once, Done once


def test_a_second_redrive_counts_two() -> None:
    driver = Driver(CHAIN, failing_first(2), {})
    assert driver.start().status == "FAILED"
    assert driver.redrive(T0 + timedelta(days=1)).status == "FAILED"
    execution = driver.redrive(T0 + timedelta(days=2))
    assert output(execution)["redrives"] == 2
    redrives = [e for e in driver.history() if e["type"] == "ExecutionRedriven"]
    assert [e["executionRedrivenEventDetails"]["redriveCount"] for e in redrives] == [1, 2]
    assert driver.types().count("ExecutionFailed") == 2


def test_only_a_stopped_execution_can_be_redriven() -> None:
    succeeded = Driver(CHAIN, failing_first(0))
    assert succeeded.start().status == "SUCCEEDED"
    with pytest.raises(ValueError, match="SUCCEEDED"):
        redrive(succeeded.execution, LATER)
    running = Driver(CHAIN, lambda name, parameters: HANG)
    assert running.start().status == "RUNNING"
    with pytest.raises(ValueError, match="RUNNING"):
        redrive(running.execution, LATER)


# --- Parallel: only the failed and the aborted branches ------------------------------------

PARALLEL = {
    "StartAt": "Fan",
    "States": {
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "A", "States": {"A": task("a", End=True)}},
                {
                    "StartAt": "B0",
                    "States": {
                        "B0": {"Type": "Pass", "Result": "b0", "ResultPath": "$.b0", "Next": "B"},
                        "B": task("b", End=True),
                    },
                },
                {
                    "StartAt": "C",
                    "States": {
                        "C": {"Type": "Wait", "Seconds": 60, "Next": "C2"},
                        "C2": {"Type": "Pass", "Result": "c", "End": True},
                    },
                },
            ],
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


def branch_failing_first(times: int, branch: str, error: str = "Boom") -> Callable[[str, Any], Any]:
    seen: Counter[str] = Counter()

    def handler(name: str, parameters: Any) -> Any:
        seen[name] += 1
        if name == branch and seen[name] <= times:
            raise Failure(error, "branch failed")
        return {name: seen[name]}

    return handler


def test_parallel_runs_again_only_the_failed_and_the_aborted_branches() -> None:
    driver = Driver(PARALLEL, branch_failing_first(1, "b"))
    first = driver.start()
    assert first.status == "FAILED"
    # branch C was waiting when B failed: it was aborted
    assert "WaitStateAborted" in driver.types()
    assert driver.calls == {"a": 1, "b": 1}

    execution = driver.redrive()
    assert output(execution) == [{"a": 1}, {"b": 2}, "c"]  # A's result kept from attempt 1
    assert driver.calls == {"a": 1, "b": 2}  # A did not run again
    after = [
        (e["type"], e.get("stateEnteredEventDetails", {}).get("name"))
        for e in driver.after_redrive()
    ]
    assert after[:3] == [
        ("ExecutionRedriven", None),
        ("ParallelStateEntered", "Fan"),
        ("ParallelStateStarted", None),
    ]
    entered = [name for kind, name in after if kind.endswith("StateEntered")]
    # B goes on at its Task (B0 succeeded before), C at its Wait; nothing of branch A
    assert entered == ["Fan", "B", "C", "C2", "Done"]
    assert [kind for kind, _ in after][-5:] == [
        "ParallelStateSucceeded",
        "ParallelStateExited",
        "SucceedStateEntered",
        "SucceedStateExited",
        "ExecutionSucceeded",
    ]
    # each re-run branch's first event follows ParallelStateStarted
    history = driver.after_redrive()
    started = next(e for e in history if e["type"] == "ParallelStateStarted")
    for name in ("B", "C"):
        event = next(
            e for e in history if e.get("stateEnteredEventDetails", {}).get("name") == name
        )
        assert event["previousEventId"] == started["id"]


def test_parallel_that_failed_with_data_limit_exceeded_runs_again_whole() -> None:
    driver = Driver(PARALLEL, branch_failing_first(1, "b", "States.DataLimitExceeded"))
    assert driver.start().status == "FAILED"
    execution = driver.redrive()
    # AWS: "If the state failed because of a States.DataLimitExceeded error, the Parallel
    # state is rerun, including the branches that were successful"
    assert output(execution) == [{"a": 2}, {"b": 2}, "c"]
    assert driver.calls == {"a": 2, "b": 2}


# --- inline Map: only the failed and the aborted iterations ---------------------------------

MAP = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "StartAt": "Prep",
                "States": {
                    "Prep": {"Type": "Pass", "Parameters": {"n.$": "$"}, "Next": "Work"},
                    "Work": task("work", End=True),
                },
            },
            "End": True,
        }
    },
}


def items_failing(bad: set[int], times: int = 1) -> Callable[[str, Any], Any]:
    seen: Counter[int] = Counter()

    def handler(name: str, parameters: Any) -> Any:
        n = parameters["n"]
        seen[n] += 1
        if n in bad and seen[n] <= times:
            raise Failure("Boom", f"item {n}")
        return n * 10

    return handler


def test_inline_map_runs_again_only_the_failed_and_the_aborted_iterations() -> None:
    handler = items_failing({1, 3})
    seen: Counter[int] = Counter()

    def counting(name: str, parameters: Any) -> Any:
        seen[parameters["n"]] += 1
        return handler(name, parameters)

    driver = Driver(MAP, counting, {"items": [0, 1, 2, 3, 4]})
    assert driver.start().status == "FAILED"
    # 0, 2 and 4 succeeded; 1 failed; 3 was still running and was aborted
    assert driver.types().count("MapIterationSucceeded") == 3
    assert driver.types().count("MapIterationFailed") == 1

    execution = driver.redrive()
    assert output(execution) == [0, 10, 20, 30, 40]
    assert seen == {0: 1, 1: 2, 2: 1, 3: 2, 4: 1}
    after = driver.after_redrive()
    assert [e["type"] for e in after[:3]] == [
        "ExecutionRedriven",
        "MapStateEntered",
        "MapStateStarted",
    ]
    assert after[2]["mapStateStartedEventDetails"] == {"length": 5}
    restarted = [
        e["mapIterationStartedEventDetails"]["index"]
        for e in after
        if e["type"] == "MapIterationStarted"
    ]
    assert restarted == [1, 3]
    # each iteration goes on at its Task: the Pass before it is not run again
    assert [e["type"] for e in after].count("PassStateEntered") == 0
    assert [e["type"] for e in after].count("MapIterationSucceeded") == 2
    assert [e["type"] for e in after][-3:] == [
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]


def test_inline_map_with_max_concurrency_starts_the_items_never_started() -> None:
    definition = json.loads(json.dumps(MAP))
    definition["States"]["Each"]["MaxConcurrency"] = 2
    driver = Driver(definition, items_failing({1}), {"items": [0, 1, 2, 3, 4]}, failures_first=True)
    assert driver.start().status == "FAILED"
    # 0 succeeded and 2 took its place; 1 failed, which aborted 2; 3 and 4 never started
    assert driver.calls == {"work": 3}
    assert driver.types().count("MapIterationStarted") == 3
    execution = driver.redrive()
    assert output(execution) == [0, 10, 20, 30, 40]
    assert driver.calls == {"work": 7}  # 1 and 2 again, then 3 and 4 for the first time
    started = [
        e["mapIterationStartedEventDetails"]["index"]
        for e in driver.after_redrive()
        if e["type"] == "MapIterationStarted"
    ]
    assert started == [1, 2, 3, 4]


def test_distributed_map_redrives_its_map_run() -> None:
    definition = json.loads(json.dumps(MAP))
    definition["States"]["Each"]["ItemProcessor"]["ProcessorConfig"] = {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    driver = Driver(definition, items_failing({2}), {"items": [0, 1, 2, 3]})
    assert driver.start().status == "FAILED"
    map_run_arn = next(
        e["mapRunStartedEventDetails"]["mapRunArn"]
        for e in driver.history()
        if e["type"] == "MapRunStarted"
    )
    execution = driver.redrive()
    assert output(execution) == [0, 10, 20, 30]
    after = driver.after_redrive()
    assert [e["type"] for e in after] == [
        "ExecutionRedriven",
        "MapStateEntered",
        "MapStateStarted",
        "MapRunRedriven",
        "MapRunSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]
    assert after[3]["mapRunRedrivenEventDetails"] == {"mapRunArn": map_run_arn, "redriveCount": 1}
    assert driver.calls["work"] == 4 + 1  # only item 2 ran again


# --- Retry and Catch ----------------------------------------------------------------------


def test_retry_counters_start_again_on_redrive() -> None:
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": task(
                "charge",
                Retry=[{"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                End=True,
            )
        },
    }
    # five failures: three in the first attempt (1 + 2 retries), two more after the redrive
    driver = Driver(definition, failing_first(5))
    assert driver.start().status == "FAILED"
    assert driver.calls == {"charge": 3}
    execution = driver.redrive()
    # AWS: "the retry attempt count for these states is reset to 0"; without the reset the
    # redriven attempt would fail at once after its first failure
    assert output(execution) == {"call": 6}
    assert driver.calls == {"charge": 6}


def test_a_caught_error_that_leads_to_a_fail_state_fails_again() -> None:
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": task(
                "charge", Catch=[{"ErrorEquals": ["Boom"], "Next": "Give up"}], End=True
            ),
            "Give up": {"Type": "Fail", "Error": "GaveUp", "Cause": "caught"},
        },
    }
    driver = Driver(definition, failing_first(1))
    assert driver.start().status == "FAILED"
    execution = driver.redrive()
    # AWS: the Fail state "Reenters the Fail state and fails again"; the Task is not re-run
    assert execution.status == "FAILED" and execution.error == "GaveUp"
    assert driver.calls == {"charge": 1}
    assert [e["type"] for e in driver.after_redrive()] == [
        "ExecutionRedriven",
        "FailStateEntered",
        "ExecutionFailed",
    ]


def test_an_uncaught_error_runs_again_and_the_catcher_still_applies() -> None:
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": task(
                "charge", Catch=[{"ErrorEquals": ["Handled"], "Next": "Fallback"}], Next="Done"
            ),
            "Fallback": {"Type": "Pass", "Result": "fallback", "End": True},
            "Done": {"Type": "Pass", "Result": "done", "End": True},
        },
    }
    errors = iter(["Unhandled", "Handled"])

    def handler(name: str, parameters: Any) -> Any:
        raise Failure(next(errors))

    driver = Driver(definition, handler)
    assert driver.start().status == "FAILED"
    assert output(driver.redrive()) == "fallback"


# --- ABORTED and TIMED_OUT ------------------------------------------------------------------


def test_an_aborted_execution_runs_its_task_again() -> None:
    answers = iter([HANG, {"paid": True}])
    driver = Driver(CHAIN, lambda name, parameters: next(answers))
    assert driver.start().status == "RUNNING"
    assert driver.stop(T0 + timedelta(minutes=5)).status == "ABORTED"
    execution = driver.redrive()
    assert output(execution) == {"redrives": 1, "charge": {"paid": True}}
    assert driver.calls == {"charge": 2}
    assert driver.keys[0] != driver.keys[1]
    assert [e["type"] for e in driver.after_redrive()][:3] == [
        "ExecutionRedriven",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
    ]


def test_an_aborted_wait_with_a_timestamp_already_past_moves_on_at_once() -> None:
    definition = {
        "StartAt": "Until",
        "States": {
            "Until": {"Type": "Wait", "Timestamp": "2026-01-01T00:30:00Z", "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    driver = Driver(definition, failing_first(0))
    driver.perform(driver.execution.start(T0))
    assert driver.stop(T0 + timedelta(minutes=10)).status == "ABORTED"
    redriven_at = T0 + timedelta(hours=1)
    assert driver.redrive(redriven_at).status == "SUCCEEDED"
    exited = next(e for e in driver.after_redrive() if e["type"] == "WaitStateExited")
    assert exited["timestamp"] == redriven_at


def test_an_aborted_wait_of_seconds_waits_its_seconds_again() -> None:
    definition = {
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Wait", "Seconds": 600, "End": True}},
    }
    driver = Driver(definition, failing_first(0))
    driver.perform(driver.execution.start(T0))
    assert driver.stop(T0 + timedelta(minutes=5)).status == "ABORTED"
    assert driver.redrive(LATER).status == "SUCCEEDED"
    assert driver.execution.stop_time == LATER + timedelta(seconds=600)


def test_a_timed_out_execution_gets_its_whole_timeout_again() -> None:
    definition = {"TimeoutSeconds": 60, **CHAIN}
    answers = iter([HANG, HANG])
    driver = Driver(definition, lambda name, parameters: next(answers))
    first = driver.start()
    assert first.status == "TIMED_OUT" and first.stop_time == T0 + timedelta(seconds=60)
    second = driver.redrive(LATER)
    # AWS: "the state machine level timeout, if defined, is reset to 0"
    assert StartTimer(EXECUTION_TIMEOUT_TIMER, LATER + timedelta(seconds=60)) in driver.commands
    assert second.status == "TIMED_OUT" and second.stop_time == LATER + timedelta(seconds=60)
    assert driver.calls == {"charge": 2}
    assert driver.types().count("ExecutionTimedOut") == 2


def test_a_timed_out_execution_redriven_can_succeed() -> None:
    definition = {"TimeoutSeconds": 60, **CHAIN}
    answers = iter([HANG, {"late": False}])
    driver = Driver(definition, lambda name, parameters: next(answers))
    assert driver.start().status == "TIMED_OUT"
    assert output(driver.redrive()) == {"redrives": 1, "charge": {"late": False}}


def test_an_aborted_parallel_keeps_the_branches_that_had_finished() -> None:
    seen: Counter[str] = Counter()

    def handler(name: str, parameters: Any) -> Any:
        seen[name] += 1
        if name == "b" and seen[name] == 1:
            return HANG
        return {name: seen[name]}

    driver = Driver(PARALLEL, handler)
    driver.start()  # A is done, B's task hangs, C's Wait fires and C finishes
    assert driver.execution.status == "RUNNING"
    assert driver.stop(T0 + timedelta(hours=1)).status == "ABORTED"
    assert output(driver.redrive()) == [{"a": 1}, {"b": 2}, "c"]
    assert seen == {"a": 1, "b": 2}
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in driver.after_redrive()
        if e["type"].endswith("StateEntered")
    ]
    assert entered == ["Fan", "B", "Done"]  # neither A nor C (finished) run again


# --- through the snapshot -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "handler", "input_value"),
    [
        (CHAIN, lambda: failing_first(1), {}),
        (PARALLEL, lambda: branch_failing_first(1, "b"), {}),
        (MAP, lambda: items_failing({1, 3}), {"items": [0, 1, 2, 3, 4]}),
    ],
    ids=["task", "parallel", "map"],
)
def test_redrive_after_a_snapshot_round_trip_ends_as_without_it(
    definition: dict[str, Any], handler: Callable[[], Any], input_value: Any
) -> None:
    plain = Driver(definition, handler(), input_value)
    plain.start()
    plain.redrive()

    restored = Driver(definition, handler(), input_value)
    assert restored.start().status == "FAILED"
    restored.restore()
    restored.redrive()
    assert restored.execution.status == plain.execution.status == "SUCCEEDED"
    assert restored.execution.output == plain.execution.output
    assert restored.history() == plain.history()
    assert restored.calls == plain.calls
    # and the redriven execution's own snapshot round-trips too
    data = json.loads(json.dumps(dump_execution(restored.execution)))
    again = dump_execution(load_execution(restored.machine, data))
    assert again["frames"] == data["frames"]
    assert again["info"]["redrive_count"] == data["info"]["redrive_count"] == 1


def test_a_map_whose_own_result_handling_failed_runs_again_whole() -> None:
    definition = json.loads(json.dumps(MAP))
    definition["States"]["Each"]["ResultSelector"] = {"first.$": "$[9]"}
    driver = Driver(definition, items_failing(set()), {"items": [0, 1]})
    assert driver.start().status == "FAILED"
    assert driver.calls == {"work": 2}
    # the frame tree of this failure survives the snapshot (the iterations are gone from it)
    driver.restore()
    execution = driver.redrive()
    # every iteration had succeeded, but the results were dropped with the failure: the
    # Map runs again from its start and fails the same way
    assert execution.status == "FAILED" and execution.error == driver.execution.error
    assert driver.calls == {"work": 4}
    assert [e["type"] for e in driver.after_redrive()][:4] == [
        "ExecutionRedriven",
        "MapStateEntered",
        "MapStateStarted",
        "MapIterationStarted",
    ]
