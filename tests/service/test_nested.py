"""Nested executions (``arn:aws:states:::states:startExecution``) through ``Service.dispatch``
on the virtual clock: each integration pattern's output shape, failures, Express children,
and a stopped parent stopping its ``.sync`` child."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from flowstate.runtime.clock import VirtualClock
from flowstate.service.facade import Service
from flowstate.storage import open_store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PREFIX = "arn:aws:states:us-east-1:123456789012"
ROLE = "arn:aws:iam::123456789012:role/flowstate"
CHILD = f"{PREFIX}:stateMachine:child"
N = json.dumps({"n": 1})

DOUBLE = {
    "StartAt": "Double",
    "States": {
        "Double": {
            "Type": "Pass",
            "Parameters": {"n.$": "States.MathAdd($.n, $.n)", "by.$": "$.by"},
            "End": True,
        }
    },
}
FAILS = {"StartAt": "No", "States": {"No": {"Type": "Fail", "Error": "Nope", "Cause": "c"}}}
WORKS = {  # waits for an activity worker that never comes
    "StartAt": "Work",
    "States": {"Work": {"Type": "Task", "Resource": f"{PREFIX}:activity:work", "End": True}},
}


def parent(resource: str, **fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": f"arn:aws:states:::states:startExecution{resource}",
                "Parameters": {
                    "StateMachineArn": CHILD,
                    "Input": {
                        "n.$": "$.n",
                        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
                        "by.$": "$$.Execution.Name",
                    },
                },
                "End": True,
                **fields,
            }
        },
    }


Scenario = Callable[[Service], Awaitable[None]]


def run(scenario: Scenario) -> None:
    async def main() -> None:
        service = Service(open_store("memory:"), clock=VirtualClock(T0))
        await service.startup()
        try:
            await scenario(service)
        finally:
            await service.engine.until_idle()
            await service.shutdown()

    asyncio.run(main())


async def create(service: Service, name: str, definition: dict[str, Any], type: str) -> None:
    await service.dispatch(
        "CreateStateMachine",
        {"name": name, "definition": json.dumps(definition), "roleArn": ROLE, "type": type},
    )


async def run_parent(
    service: Service,
    resource: str,
    child: dict[str, Any] = DOUBLE,
    child_type: str = "STANDARD",
    **fields: Any,
) -> dict[str, Any]:
    await create(service, "child", child, child_type)
    await create(service, "parent", parent(resource, **fields), "STANDARD")
    started = await service.dispatch(
        "StartExecution",
        {"stateMachineArn": f"{PREFIX}:stateMachine:parent", "name": "p1", "input": '{"n": 4}'},
    )
    await service.engine.wait_stopped(started["executionArn"])
    return await service.dispatch("DescribeExecution", {"executionArn": started["executionArn"]})


async def history_types(service: Service, arn: str) -> list[str]:
    page = await service.dispatch("GetExecutionHistory", {"executionArn": arn, "maxResults": 1000})
    return [event["type"] for event in page["events"]]


def test_request_response_answers_the_start_execution_response() -> None:
    async def scenario(service: Service) -> None:
        done = await run_parent(service, "")
        assert done["status"] == "SUCCEEDED"
        output = json.loads(done["output"])
        child_arn = output["ExecutionArn"]
        assert child_arn.startswith(f"{PREFIX}:execution:child:")
        assert output["StartDate"] == int(T0.timestamp() * 1000)
        assert output["SdkHttpMetadata"]["HttpStatusCode"] == 200
        await service.engine.wait_stopped(child_arn)
        child = await service.dispatch("DescribeExecution", {"executionArn": child_arn})
        assert json.loads(child["output"]) == {"n": 8, "by": "p1"}
        assert json.loads(child["input"])["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] == (
            f"{PREFIX}:execution:parent:p1"
        )

    run(scenario)


def test_sync_answers_describe_execution_with_output_as_text() -> None:
    async def scenario(service: Service) -> None:
        done = await run_parent(service, ".sync")
        output = json.loads(done["output"])
        assert output["Status"] == "SUCCEEDED"
        assert json.loads(output["Output"]) == {"n": 8, "by": "p1"}
        assert output["OutputDetails"] == {"Included": True}
        assert isinstance(output["Input"], str) and isinstance(output["StopDate"], int)
        assert list(output) == sorted(output)  # AWS's order
        types = await history_types(service, done["executionArn"])
        assert types[2:6] == ["TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded"]

    run(scenario)


def test_sync2_answers_output_as_json() -> None:
    async def scenario(service: Service) -> None:
        done = await run_parent(service, ".sync:2", ResultSelector={"n.$": "$.Output.n"})
        assert json.loads(done["output"]) == {"n": 8}

    run(scenario)


def test_a_failed_child_fails_the_sync_task_with_its_description() -> None:
    async def scenario(service: Service) -> None:
        done = await run_parent(service, ".sync", child=FAILS)
        assert done["error"] == "States.TaskFailed"
        cause = json.loads(done["cause"])
        assert (cause["Status"], cause["Error"], cause["Cause"]) == ("FAILED", "Nope", "c")

    run(scenario)


def test_express_child_called_synchronously_from_a_standard_parent() -> None:
    async def scenario(service: Service) -> None:
        done = await run_parent(service, ".sync:2", child_type="EXPRESS")
        output = json.loads(done["output"])
        assert output["ExecutionArn"].startswith(f"{PREFIX}:express:child:")
        assert output["Output"] == {"n": 8, "by": "p1"}

    run(scenario)


def test_missing_child_machine_is_a_catchable_task_failure() -> None:
    async def scenario(service: Service) -> None:
        await create(service, "parent", parent(".sync"), "STANDARD")
        started = await service.dispatch(
            "StartExecution", {"stateMachineArn": f"{PREFIX}:stateMachine:parent", "input": N}
        )
        await service.engine.wait_stopped(started["executionArn"])
        done = await service.dispatch(
            "DescribeExecution", {"executionArn": started["executionArn"]}
        )
        assert done["error"] == "StepFunctions.StateMachineDoesNotExistException"
        assert "Error Code: StateMachineDoesNotExist" in done["cause"]

    run(scenario)


def test_wait_for_task_token_child_answers_its_parent() -> None:
    answer = {
        "StartAt": "Answer",
        "States": {"Answer": {"Type": "Pass", "End": True}},
    }

    async def scenario(service: Service) -> None:
        definition = parent(".waitForTaskToken")
        definition["States"]["Call"]["Parameters"]["Input"] = {"token.$": "$$.Task.Token"}
        await create(service, "child", answer, "STANDARD")
        await create(service, "parent", definition, "STANDARD")
        started = await service.dispatch(
            "StartExecution", {"stateMachineArn": f"{PREFIX}:stateMachine:parent", "input": N}
        )
        arn = started["executionArn"]
        await service.engine.until_idle()
        page = await service.dispatch("ListExecutions", {"stateMachineArn": CHILD})
        child = await service.dispatch(
            "DescribeExecution", {"executionArn": page["executions"][0]["executionArn"]}
        )
        token = json.loads(child["output"])["token"]
        await service.dispatch("SendTaskSuccess", {"taskToken": token, "output": '"done"'})
        await service.engine.wait_stopped(arn)
        done = await service.dispatch("DescribeExecution", {"executionArn": arn})
        assert json.loads(done["output"]) == "done"

    run(scenario)


def test_stopping_the_parent_stops_its_sync_child() -> None:
    async def scenario(service: Service) -> None:
        await service.dispatch("CreateActivity", {"name": "work"})
        await create(service, "child", WORKS, "STANDARD")
        await create(service, "parent", parent(".sync"), "STANDARD")
        started = await service.dispatch(
            "StartExecution", {"stateMachineArn": f"{PREFIX}:stateMachine:parent", "input": N}
        )
        await service.engine.until_idle()
        page = await service.dispatch("ListExecutions", {"stateMachineArn": CHILD})
        child_arn = page["executions"][0]["executionArn"]
        await service.dispatch("StopExecution", {"executionArn": started["executionArn"]})
        await service.engine.wait_stopped(child_arn)
        child = await service.dispatch("DescribeExecution", {"executionArn": child_arn})
        assert child["status"] == "ABORTED"
        assert "which was managing this resource was aborted" in child["cause"]

    run(scenario)


def test_a_sync_parent_waits_for_its_child_across_a_restart(tmp_path: Any) -> None:
    db = str(tmp_path / "flowstate.db")
    activity = f"{PREFIX}:activity:work"

    async def main() -> None:
        first = Service(open_store(db), clock=VirtualClock(T0))
        await first.startup()
        await first.dispatch("CreateActivity", {"name": "work"})
        await create(first, "child", WORKS, "STANDARD")
        await create(first, "parent", parent(".sync:2"), "STANDARD")
        started = await first.dispatch(
            "StartExecution", {"stateMachineArn": f"{PREFIX}:stateMachine:parent", "input": N}
        )
        await first.engine.until_idle()
        await first.shutdown()

        second = Service(open_store(db), clock=VirtualClock(T0))
        await second.startup()
        try:
            page = await second.dispatch("ListExecutions", {"stateMachineArn": CHILD})
            assert len(page["executions"]) == 1  # found again, not started twice
            got = await second.dispatch("GetActivityTask", {"activityArn": activity})
            await second.dispatch(
                "SendTaskSuccess", {"taskToken": got["taskToken"], "output": '{"worked": 1}'}
            )
            await second.engine.wait_stopped(started["executionArn"])
            done = await second.dispatch(
                "DescribeExecution", {"executionArn": started["executionArn"]}
            )
            assert json.loads(done["output"])["Output"] == {"worked": 1}
            types = await history_types(second, started["executionArn"])
            assert types.count("TaskSubmitted") == 1
            page = await second.dispatch("ListExecutions", {"stateMachineArn": CHILD})
            assert len(page["executions"]) == 1
        finally:
            await second.engine.until_idle()
            await second.shutdown()

    asyncio.run(main())
