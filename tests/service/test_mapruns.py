"""DescribeMapRun, ListMapRuns and UpdateMapRun through the service, on the virtual clock.

An item whose Lambda call is held open keeps its map run RUNNING (a task in flight stops the
virtual clock), so a run can be examined and updated mid-way. Values marked "recorded" follow
AWS responses recorded by LocalStack's ``test_sfn_api_map_run`` snapshot (September 2023).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowstate.integrations.functions import FunctionRegistry
from flowstate.runtime.clock import VirtualClock
from flowstate.service.errors import ServiceError
from flowstate.service.facade import Service
from flowstate.storage import open_store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PREFIX = "arn:aws:states:us-east-1:123456789012"
ROLE = "arn:aws:iam::123456789012:role/flowstate"
WORK = "arn:aws:lambda:us-east-1:123456789012:function:work"


def processor(label: str) -> dict[str, Any]:
    """Each item: a Choice sends {"fail": true} to a Fail state, the others call ``work`` and
    wait 10 s. (State names are unique machine-wide, hence the label in them.)"""
    check, broken, work, pause = (f"{name}{label}" for name in ("Check", "Broken", "Work", "Pause"))
    return {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": check,
        "States": {
            check: {
                "Type": "Choice",
                "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": broken}],
                "Default": work,
            },
            broken: {"Type": "Fail", "Error": "ItemBroken", "Cause": "bad item"},
            work: {"Type": "Task", "Resource": WORK, "Next": pause},
            pause: {"Type": "Wait", "Seconds": 10, "End": True},
        },
    }


def distributed_map(label: str, items_path: str = "$.items", **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Map",
        "Label": label,
        "ItemsPath": items_path,
        "ItemProcessor": processor(label),
        **fields,
    }


def one_map(**fields: Any) -> str:
    return json.dumps(
        {
            "StartAt": "Items",
            "States": {"Items": {**distributed_map("Items", **fields), "End": True}},
        }
    )


def item(n: int, *, fail: bool = False, hold: bool = False, error: bool = False) -> dict[str, Any]:
    return {"n": n, "fail": fail, "hold": hold, "error": error}


class ItemFailed(Exception):
    pass


class Gate:
    """The ``work`` function: an item with ``hold`` waits until ``release``; ``error`` raises."""

    def __init__(self) -> None:
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def work(self, event: Any, context: Any) -> Any:
        if event["hold"]:
            self.held.set()
            await self.release.wait()
        if event["error"]:
            raise ItemFailed(f"item {event['n']}")
        return event["n"]


Scenario = Callable[[Service, Gate], Awaitable[None]]


def run(scenario: Scenario, db: str = "memory:", *, crash: bool = False) -> None:
    """``scenario`` against a fresh service; ``crash`` stops it with held calls still open."""

    async def main() -> None:
        gate = Gate()
        service = Service(
            open_store(db), clock=VirtualClock(T0), functions=FunctionRegistry({"work": gate.work})
        )
        await service.startup()
        try:
            # A bound on real time, so that a regression fails instead of hanging.
            await asyncio.wait_for(scenario(service, gate), 20)
        finally:
            if not crash:
                gate.release.set()
                await service.engine.until_idle()
            await service.shutdown()

    asyncio.run(main())


async def start(service: Service, definition: str, input_value: Any, name: str = "e1") -> str:
    try:
        machine = await service.dispatch(
            "CreateStateMachine", {"name": "flow", "definition": definition, "roleArn": ROLE}
        )
        machine_arn = machine["stateMachineArn"]
    except ServiceError as error:  # a second definition for the same test
        assert error.code == "StateMachineAlreadyExists"
        machine_arn = f"{PREFIX}:stateMachine:flow"
        await service.dispatch(
            "UpdateStateMachine", {"stateMachineArn": machine_arn, "definition": definition}
        )
    started = await service.dispatch(
        "StartExecution",
        {"stateMachineArn": machine_arn, "name": name, "input": json.dumps(input_value)},
    )
    arn: str = started["executionArn"]
    return arn


async def only_map_run(service: Service, execution_arn: str) -> str:
    listed = await service.dispatch("ListMapRuns", {"executionArn": execution_arn})
    (run_item,) = listed["mapRuns"]
    arn: str = run_item["mapRunArn"]
    return arn


async def refused(service: Service, code: str, operation: str, request: dict[str, Any]) -> str:
    with pytest.raises(ServiceError) as caught:
        await service.dispatch(operation, request)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


def counts(**given: int) -> dict[str, int]:
    base = {
        "pending": 0,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "timedOut": 0,
        "aborted": 0,
        "total": 0,
        "resultsWritten": 0,
        "failuresNotRedrivable": 0,
        "pendingRedrive": 0,
    }
    return {**base, **given}


async def stopped(service: Service, execution_arn: str) -> dict[str, Any]:
    await service.engine.wait_stopped(execution_arn)
    return await service.dispatch("DescribeExecution", {"executionArn": execution_arn})


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_describe_list_and_a_max_concurrency_raise_that_takes_effect(
    backend: str, tmp_path: Path
) -> None:
    items = [item(0, hold=True), *(item(n) for n in range(1, 5))]

    async def scenario(service: Service, gate: Gate) -> None:
        execution_arn = await start(service, one_map(MaxConcurrency=1), {"items": items})
        await gate.held.wait()
        listed = await service.dispatch("ListMapRuns", {"executionArn": execution_arn})
        (listed_run,) = listed["mapRuns"]
        run_arn = listed_run["mapRunArn"]
        assert run_arn.startswith(f"{PREFIX}:mapRun:flow/Items:")
        # Recorded: the run's "state machine" is the Distributed Map's, <machine>/<label>.
        assert listed_run == {
            "executionArn": execution_arn,
            "mapRunArn": run_arn,
            "stateMachineArn": f"{PREFIX}:stateMachine:flow/Items",
            "startDate": T0,
        }
        running = await service.dispatch("DescribeMapRun", {"mapRunArn": run_arn})
        assert running == {
            "mapRunArn": run_arn,
            "executionArn": execution_arn,
            "status": "RUNNING",
            "startDate": T0,
            "maxConcurrency": 1,
            # Recorded: no tolerated-failure fields in the definition reads as 0 and 0.0.
            "toleratedFailurePercentage": 0.0,
            "toleratedFailureCount": 0,
            "itemCounts": counts(pending=4, running=1, total=5),
            "executionCounts": counts(pending=4, running=1, total=5),
            "redriveCount": 0,
        }

        assert (
            await service.dispatch("UpdateMapRun", {"mapRunArn": run_arn, "maxConcurrency": 10})
            == {}
        )
        raised = await service.dispatch("DescribeMapRun", {"mapRunArn": run_arn})
        assert raised["maxConcurrency"] == 10
        assert raised["itemCounts"] == counts(running=5, total=5)

        gate.release.set()
        described = await stopped(service, execution_arn)
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["output"]) == [0, 1, 2, 3, 4]
        # All five 10-second waits ran together: 10 s, not the 50 s of MaxConcurrency 1.
        assert described["stopDate"] - described["startDate"] == timedelta(seconds=10)
        history = await service.dispatch("GetExecutionHistory", {"executionArn": execution_arn})
        ended = next(e for e in history["events"] if e["type"] == "MapRunSucceeded")
        assert ended["timestamp"] == T0 + timedelta(seconds=10)

        done = await service.dispatch("DescribeMapRun", {"mapRunArn": run_arn})
        assert done["status"] == "SUCCEEDED"
        assert done["stopDate"] == T0 + timedelta(seconds=10)
        assert done["maxConcurrency"] == 10
        # Recorded: a succeeded run without a ResultWriter counts its results as written.
        assert done["itemCounts"] == counts(succeeded=5, total=5, resultsWritten=5)
        assert done["executionCounts"] == done["itemCounts"]
        listed = await service.dispatch("ListMapRuns", {"executionArn": execution_arn})
        assert listed["mapRuns"][0]["stopDate"] == T0 + timedelta(seconds=10)

        # The same machine without the update: one item at a time, 5 x 10 s.
        control = await start(
            service, one_map(MaxConcurrency=1), {"items": [item(n) for n in range(5)]}, "e2"
        )
        described = await stopped(service, control)
        assert described["stopDate"] - described["startDate"] == timedelta(seconds=50)

    db = "memory:" if backend == "memory" else str(tmp_path / "flowstate.db")
    run(scenario, db)


def test_a_lowered_tolerated_failure_count_fails_the_run_at_once() -> None:
    items = [item(0, hold=True), item(1, fail=True), item(2, fail=True)]

    async def scenario(service: Service, gate: Gate) -> None:
        execution_arn = await start(service, one_map(ToleratedFailureCount=2), {"items": items})
        await gate.held.wait()
        run_arn = await only_map_run(service, execution_arn)
        running = await service.dispatch("DescribeMapRun", {"mapRunArn": run_arn})
        assert running["status"] == "RUNNING"
        assert running["toleratedFailureCount"] == 2
        assert running["itemCounts"] == counts(running=1, failed=2, total=3)

        await service.dispatch("UpdateMapRun", {"mapRunArn": run_arn, "toleratedFailureCount": 1})
        described = await stopped(service, execution_arn)
        assert described["status"] == "FAILED"
        assert described["error"] == "States.ExceedToleratedFailureThreshold"
        failed = await service.dispatch("DescribeMapRun", {"mapRunArn": run_arn})
        assert failed["status"] == "FAILED"
        assert failed["stopDate"] == described["stopDate"]
        assert failed["toleratedFailureCount"] == 1
        assert failed["itemCounts"] == counts(failed=2, aborted=1, total=3)
        history = await service.dispatch("GetExecutionHistory", {"executionArn": execution_arn})
        types = [e["type"] for e in history["events"]]
        assert types[-3:] == ["MapRunFailed", "MapStateFailed", "ExecutionFailed"]
        # A run that has ended takes no more updates.
        message = await refused(
            service,
            "ValidationException",
            "UpdateMapRun",
            {"mapRunArn": run_arn, "maxConcurrency": 2},
        )
        assert "FAILED" in message

    run(scenario)


def test_a_raised_tolerated_failure_percentage_lets_a_later_failure_pass() -> None:
    items = [item(0, hold=True, error=True), item(1)]

    async def scenario(service: Service, gate: Gate) -> None:
        execution_arn = await start(service, one_map(MaxConcurrency=1), {"items": items})
        await gate.held.wait()
        run_arn = await only_map_run(service, execution_arn)
        await service.dispatch(
            "UpdateMapRun", {"mapRunArn": run_arn, "toleratedFailurePercentage": 50}
        )
        assert (await service.dispatch("DescribeMapRun", {"mapRunArn": run_arn}))[
            "toleratedFailurePercentage"
        ] == 50.0
        gate.release.set()
        described = await stopped(service, execution_arn)
        # Without the update the first failure would have failed the execution.
        assert described["status"] == "SUCCEEDED"
        output = json.loads(described["output"])
        assert output[0]["Error"] == "ItemFailed" and output[1] == 1
        done = await service.dispatch("DescribeMapRun", {"mapRunArn": run_arn})
        assert done["status"] == "SUCCEEDED"
        assert done["itemCounts"] == counts(succeeded=1, failed=1, total=2, resultsWritten=1)

    run(scenario)


def test_a_run_of_a_stopped_execution_is_aborted() -> None:
    items = [item(0, hold=True), item(1), item(2)]

    async def scenario(service: Service, gate: Gate) -> None:
        execution_arn = await start(service, one_map(MaxConcurrency=1), {"items": items})
        await gate.held.wait()
        run_arn = await only_map_run(service, execution_arn)
        stop = await service.dispatch("StopExecution", {"executionArn": execution_arn})
        aborted = await service.dispatch("DescribeMapRun", {"mapRunArn": run_arn})
        assert aborted["status"] == "ABORTED"
        assert aborted["stopDate"] == stop["stopDate"]
        # Recorded by floci on AWS (PR floci-io/floci#2694): items not started stay pending.
        assert aborted["itemCounts"] == counts(pending=2, aborted=1, total=3)
        await refused(
            service,
            "ValidationException",
            "UpdateMapRun",
            {"mapRunArn": run_arn, "maxConcurrency": 3},
        )

    run(scenario)


def test_map_runs_page_newest_first_and_survive_a_restart(tmp_path: Path) -> None:
    definition = json.dumps(
        {
            "StartAt": "First",
            "States": {
                "First": {
                    **distributed_map("First", "$.first"),
                    "ResultPath": "$.firstResult",
                    "Next": "Second",
                },
                "Second": {**distributed_map("Second", "$.second"), "End": True},
            },
        }
    )
    db = str(tmp_path / "flowstate.db")
    value = {"first": [item(1)], "second": [item(2, hold=True)]}
    names: dict[str, str] = {}

    async def before(service: Service, gate: Gate) -> None:
        names["execution"] = await start(service, definition, value)
        await gate.held.wait()  # First has ended; Second's item is in flight

    async def after(service: Service, gate: Gate) -> None:
        execution_arn = names["execution"]
        await gate.held.wait()  # recovery called the held item again
        gate.release.set()
        await stopped(service, execution_arn)
        page = await service.dispatch(
            "ListMapRuns", {"executionArn": execution_arn, "maxResults": 1}
        )
        (newest,) = page["mapRuns"]
        assert newest["stateMachineArn"] == f"{PREFIX}:stateMachine:flow/Second"
        assert "nextToken" in page
        rest = await service.dispatch(
            "ListMapRuns",
            {"executionArn": execution_arn, "maxResults": 1, "nextToken": page["nextToken"]},
        )
        (oldest,) = rest["mapRuns"]
        assert oldest["stateMachineArn"] == f"{PREFIX}:stateMachine:flow/First"
        assert "nextToken" not in rest
        assert oldest["stopDate"] == T0 + timedelta(seconds=10) == newest["startDate"]
        # The first run's figures, kept when it ended, outlived the restart and the commits
        # that followed it.
        first = await service.dispatch("DescribeMapRun", {"mapRunArn": oldest["mapRunArn"]})
        assert first["status"] == "SUCCEEDED"
        assert first["itemCounts"] == counts(succeeded=1, total=1, resultsWritten=1)
        second = await service.dispatch("DescribeMapRun", {"mapRunArn": newest["mapRunArn"]})
        assert second["status"] == "SUCCEEDED"
        other = await start(service, one_map(), {"items": []}, "e2")
        message = await refused(
            service,
            "InvalidToken",
            "ListMapRuns",
            {"executionArn": other, "nextToken": page["nextToken"]},
        )
        assert message.startswith("Invalid Token")

    run(before, db, crash=True)
    run(after, db)


def test_errors_as_aws_names_them() -> None:
    async def scenario(service: Service, gate: Gate) -> None:
        unknown_run = f"{PREFIX}:mapRun:flow/Items:5e0b4d8e-1c6c-4e2f-9d7c-3f1a2b3c4d5e"
        unknown_execution = f"{PREFIX}:execution:flow:nope"
        malformed: list[tuple[str, dict[str, Any]]] = [
            ("DescribeMapRun", {"mapRunArn": "not-an-arn"}),
            ("DescribeMapRun", {"mapRunArn": unknown_execution}),
            ("UpdateMapRun", {"mapRunArn": f"{PREFIX}:stateMachine:flow", "maxConcurrency": 1}),
            ("ListMapRuns", {"executionArn": f"{PREFIX}:stateMachine:flow"}),
            ("ListMapRuns", {"executionArn": "nope"}),
        ]
        for operation, request in malformed:
            message = await refused(service, "InvalidArn", operation, request)
            assert message.startswith("Invalid Arn")
        await refused(service, "ResourceNotFound", "DescribeMapRun", {"mapRunArn": unknown_run})
        await refused(
            service,
            "ResourceNotFound",
            "UpdateMapRun",
            {"mapRunArn": unknown_run, "maxConcurrency": 1},
        )
        message = await refused(
            service, "ExecutionDoesNotExist", "ListMapRuns", {"executionArn": unknown_execution}
        )
        assert unknown_execution in message
        # Nothing to change is refused before the run is even looked up.
        await refused(service, "ValidationException", "UpdateMapRun", {"mapRunArn": unknown_run})

        plain = await start(service, one_map(), {"items": [item(1)]})
        await stopped(service, plain)
        assert len((await service.dispatch("ListMapRuns", {"executionArn": plain}))["mapRuns"]) == 1
        await refused(
            service,
            "InvalidToken",
            "ListMapRuns",
            {"executionArn": plain, "nextToken": "not-a-token"},
        )

    run(scenario)


def test_an_execution_without_a_distributed_map_lists_no_runs() -> None:
    inline = json.dumps(
        {
            "StartAt": "Items",
            "States": {
                "Items": {
                    "Type": "Map",
                    "ItemProcessor": {
                        "StartAt": "P",
                        "States": {"P": {"Type": "Pass", "End": True}},
                    },
                    "End": True,
                }
            },
        }
    )

    async def scenario(service: Service, gate: Gate) -> None:
        arn = await start(service, inline, [1, 2])
        await stopped(service, arn)
        assert await service.dispatch("ListMapRuns", {"executionArn": arn}) == {"mapRuns": []}

    run(scenario)
