"""Activities and task-token callbacks through ``Service.dispatch``, on the virtual clock:
GetActivityTask, SendTaskSuccess/Failure/Heartbeat, their refusals, and tokens and activity
tasks that survive a restart of the service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flowstate.integrations.functions import FunctionRegistry
from flowstate.interpreter.tokens import make_task_token, parse_task_token
from flowstate.runtime.clock import VirtualClock
from flowstate.service.errors import ServiceError
from flowstate.service.facade import Service
from flowstate.storage import open_store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PREFIX = "arn:aws:states:us-east-1:123456789012"
ROLE = "arn:aws:iam::123456789012:role/flowstate"
ACTIVITY = f"{PREFIX}:activity:pack"


class Outbox:
    """The ``notify`` function: keeps the token each call was given (the callback pattern)."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def notify(self, event: Any, context: Any) -> Any:
        self.tokens.append(event["token"])
        return {"queued": True}


CALLBACK = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {
                "FunctionName": "notify",
                "Payload": {"token.$": "$$.Task.Token", "order.$": "$.order"},
            },
            "ResultSelector": {"approved.$": "$.approved"},
            "ResultPath": "$.answer",
            "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.error", "Next": "No"}],
            "End": True,
        },
        "No": {"Type": "Pass", "End": True},
    },
}


def activity_task(**fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "Pack",
        "States": {"Pack": {"Type": "Task", "Resource": ACTIVITY, "End": True, **fields}},
    }


Scenario = Callable[[Service, Outbox], Awaitable[None]]


def new_service(db: str, outbox: Outbox) -> Service:
    service = Service(
        open_store(db),
        clock=VirtualClock(T0),
        functions=FunctionRegistry({"notify": outbox.notify}),
    )
    service.tasks.poll_seconds = 0.05  # an empty long poll ends at once
    return service


def run(scenario: Scenario, db: str = "memory:") -> None:
    async def main() -> None:
        outbox = Outbox()
        service = new_service(db, outbox)
        await service.startup()
        try:
            await scenario(service, outbox)
        finally:
            await service.engine.until_idle()
            await service.shutdown()

    asyncio.run(main())


async def start(
    service: Service, definition: dict[str, Any], name: str = "e1", machine: str = "flow"
) -> str:
    arn = f"{PREFIX}:stateMachine:{machine}"
    if service.store.get_state_machine(arn) is None:
        await service.dispatch(
            "CreateStateMachine",
            {"name": machine, "definition": json.dumps(definition), "roleArn": ROLE},
        )
    started = await service.dispatch(
        "StartExecution", {"stateMachineArn": arn, "name": name, "input": '{"order": 7}'}
    )
    await service.engine.until_idle()
    execution_arn: str = started["executionArn"]
    return execution_arn


async def described(service: Service, arn: str) -> dict[str, Any]:
    await service.engine.wait_stopped(arn)
    return await service.dispatch("DescribeExecution", {"executionArn": arn})


async def history(service: Service, arn: str) -> list[dict[str, Any]]:
    page = await service.dispatch("GetExecutionHistory", {"executionArn": arn, "maxResults": 1000})
    events: list[dict[str, Any]] = page["events"]
    return events


async def refused(service: Service, operation: str, request: dict[str, Any]) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        await service.dispatch(operation, request)
    return caught.value


# --- tokens ------------------------------------------------------------------------------------


def test_tokens_name_their_task_and_nothing_else_parses() -> None:
    token = make_task_token(f"{PREFIX}:execution:flow:e1", "0:3", "n")
    assert parse_task_token(token) == (f"{PREFIX}:execution:flow:e1", "0:3")
    for garbage in ("x", "", "AAAA", "e30", token[:-3]):
        assert parse_task_token(garbage) is None


def test_callback_success_goes_through_result_selector_and_path() -> None:
    async def scenario(service: Service, outbox: Outbox) -> None:
        arn = await start(service, CALLBACK)
        assert len(outbox.tokens) == 1
        running = await service.dispatch("DescribeExecution", {"executionArn": arn})
        assert running["status"] == "RUNNING"  # the function returned; the token is awaited

        answer = {"approved": True, "by": "ops"}
        await service.dispatch(
            "SendTaskSuccess", {"taskToken": outbox.tokens[0], "output": json.dumps(answer)}
        )
        done = await described(service, arn)
        assert done["status"] == "SUCCEEDED"
        assert json.loads(done["output"]) == {"order": 7, "answer": {"approved": True}}
        events = await history(service, arn)
        types = [e["type"] for e in events]
        assert types[2:6] == ["TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded"]
        submitted = events[4]["taskSubmittedEventDetails"]
        assert submitted["resource"] == "invoke.waitForTaskToken"
        assert json.loads(submitted["output"])["Payload"] == {"queued": True}
        scheduled = json.loads(events[2]["taskScheduledEventDetails"]["parameters"])
        assert scheduled["Payload"]["token"] == outbox.tokens[0]

        # The task has ended: its token is refused as AWS refuses it.
        late = await refused(
            service, "SendTaskSuccess", {"taskToken": outbox.tokens[0], "output": "{}"}
        )
        assert (late.code, late.message) == (
            "TaskTimedOut",
            "Task Timed Out: 'Provided task does not exist anymore'",
        )

    run(scenario)


def test_callback_failure_is_caught_with_the_error_and_cause_given() -> None:
    async def scenario(service: Service, outbox: Outbox) -> None:
        arn = await start(service, CALLBACK)
        await service.dispatch(
            "SendTaskFailure",
            {"taskToken": outbox.tokens[0], "error": "Rejected", "cause": "over budget"},
        )
        done = await described(service, arn)
        assert done["status"] == "SUCCEEDED"
        assert json.loads(done["output"])["error"] == {"Error": "Rejected", "Cause": "over budget"}
        failed = [e for e in await history(service, arn) if e["type"] == "TaskFailed"]
        assert failed[0]["taskFailedEventDetails"]["error"] == "Rejected"

    run(scenario)


def test_bad_tokens_and_outputs_get_aws_errors() -> None:
    async def scenario(service: Service, outbox: Outbox) -> None:
        await start(service, CALLBACK)
        for operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
            request = {"taskToken": "not-a-token", "output": "{}"}
            if operation != "SendTaskSuccess":
                del request["output"]
            error = await refused(service, operation, request)
            assert (error.code, error.message) == ("InvalidToken", "Invalid Token: 'Invalid token'")
        ghost = make_task_token(f"{PREFIX}:execution:flow:never", "0:3", "n")
        error = await refused(service, "SendTaskSuccess", {"taskToken": ghost, "output": "{}"})
        assert error.code == "TaskDoesNotExist"
        forged = make_task_token(f"{PREFIX}:execution:flow:e1", "0:3", "forged")
        error = await refused(service, "SendTaskHeartbeat", {"taskToken": forged})
        assert error.code == "TaskTimedOut"  # its execution exists, that task does not
        error = await refused(
            service, "SendTaskSuccess", {"taskToken": outbox.tokens[0], "output": "{oops"}
        )
        assert error.code == "InvalidOutput"
        # JSON text, but a lone surrogate is no Unicode: refused, the execution untouched.
        error = await refused(
            service, "SendTaskSuccess", {"taskToken": outbox.tokens[0], "output": '"\\ud800"'}
        )
        assert error.code == "InvalidOutput"
        # The refusals changed nothing: the real token still works.
        await service.dispatch("SendTaskHeartbeat", {"taskToken": outbox.tokens[0]})
        await service.dispatch(
            "SendTaskSuccess", {"taskToken": outbox.tokens[0], "output": '{"approved": 1}'}
        )

    run(scenario)


def test_callback_task_timeout_then_late_answer_is_task_timed_out() -> None:
    definition = json.loads(json.dumps(CALLBACK))
    definition["States"]["Ask"]["TimeoutSeconds"] = 30

    async def scenario(service: Service, outbox: Outbox) -> None:
        arn = await start(service, definition)
        done = await described(service, arn)  # nothing answers: the virtual clock fires
        assert (done["status"], done["error"]) == ("FAILED", "States.Timeout")
        error = await refused(
            service, "SendTaskSuccess", {"taskToken": outbox.tokens[0], "output": "{}"}
        )
        assert error.code == "TaskTimedOut"

    run(scenario)


# --- activities ----------------------------------------------------------------------------------


async def create_activity(service: Service) -> None:
    await service.dispatch("CreateActivity", {"name": "pack"})


def test_activity_worker_takes_the_task_and_answers() -> None:
    async def scenario(service: Service, outbox: Outbox) -> None:
        await create_activity(service)
        arn = await start(service, activity_task(ResultPath="$.packed"))
        got = await service.dispatch(
            "GetActivityTask", {"activityArn": ACTIVITY, "workerName": "w1"}
        )
        assert json.loads(got["input"]) == {"order": 7}
        assert parse_task_token(got["taskToken"]) is not None
        # Handed to exactly one worker: the next poll ends empty.
        assert await service.dispatch("GetActivityTask", {"activityArn": ACTIVITY}) == {}

        await service.dispatch(
            "SendTaskSuccess", {"taskToken": got["taskToken"], "output": '{"box": 3}'}
        )
        done = await described(service, arn)
        assert json.loads(done["output"]) == {"order": 7, "packed": {"box": 3}}
        events = await history(service, arn)
        assert [e["type"] for e in events][2:6] == [
            "ActivityScheduled",
            "ActivityStarted",
            "ActivitySucceeded",
            "TaskStateExited",
        ]
        assert events[3]["activityStartedEventDetails"] == {"workerName": "w1"}

    run(scenario)


def test_waiting_polls_each_get_one_task() -> None:
    async def scenario(service: Service, outbox: Outbox) -> None:
        await create_activity(service)
        service.tasks.poll_seconds = 30  # long polls (they end as soon as a task comes)
        polls = [
            asyncio.ensure_future(
                service.dispatch("GetActivityTask", {"activityArn": ACTIVITY, "workerName": w})
            )
            for w in ("a", "b")
        ]
        await asyncio.sleep(0)
        await start(service, activity_task(), name="e1")
        await start(service, activity_task(), name="e2")
        got = await asyncio.gather(*polls)
        tokens = {parse_task_token(g["taskToken"])[0] for g in got}  # type: ignore[index]
        assert tokens == {f"{PREFIX}:execution:flow:e1", f"{PREFIX}:execution:flow:e2"}
        for g in got:
            await service.dispatch("SendTaskSuccess", {"taskToken": g["taskToken"], "output": "1"})

    run(scenario)


def test_activity_failure_and_the_activity_that_does_not_exist() -> None:
    async def scenario(service: Service, outbox: Outbox) -> None:
        await create_activity(service)
        arn = await start(service, activity_task(), name="fails")
        got = await service.dispatch("GetActivityTask", {"activityArn": ACTIVITY})
        await service.dispatch("SendTaskFailure", {"taskToken": got["taskToken"]})
        done = await described(service, arn)
        assert done["status"] == "FAILED"
        assert "error" not in done and "cause" not in done  # none given, none recorded

        await service.dispatch("DeleteActivity", {"activityArn": ACTIVITY})
        gone = await start(service, activity_task(), name="gone")
        done = await described(service, gone)
        assert done["error"] == "States.Runtime"
        assert done["cause"] == (
            "An error occurred while executing the state 'Pack' (entered at the event id #2). "
            f"The activity {ACTIVITY} does not exist."
        )
        error = await refused(service, "GetActivityTask", {"activityArn": ACTIVITY})
        assert error.code == "ActivityDoesNotExist"

    run(scenario)


def test_heartbeat_timeout_when_the_worker_goes_quiet() -> None:
    async def scenario(service: Service, outbox: Outbox) -> None:
        await create_activity(service)
        arn = await start(service, activity_task(HeartbeatSeconds=10, TimeoutSeconds=600))
        got = await service.dispatch("GetActivityTask", {"activityArn": ACTIVITY})
        await service.dispatch("SendTaskHeartbeat", {"taskToken": got["taskToken"]})
        done = await described(service, arn)
        assert (done["status"], done["error"]) == ("FAILED", "States.HeartbeatTimeout")
        timed_out = [e for e in await history(service, arn) if e["type"] == "ActivityTimedOut"]
        assert timed_out[0]["activityTimedOutEventDetails"]["error"] == "States.HeartbeatTimeout"
        error = await refused(service, "SendTaskHeartbeat", {"taskToken": got["taskToken"]})
        assert error.code == "TaskTimedOut"

    run(scenario)


def test_stopping_withdraws_a_queued_activity_task() -> None:
    async def scenario(service: Service, outbox: Outbox) -> None:
        await create_activity(service)
        arn = await start(service, activity_task())
        await service.dispatch("StopExecution", {"executionArn": arn})
        assert await service.dispatch("GetActivityTask", {"activityArn": ACTIVITY}) == {}

    run(scenario)


# --- restarts ------------------------------------------------------------------------------------


def test_tokens_and_queued_activity_tasks_survive_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "flowstate.db")

    async def main() -> None:
        outbox = Outbox()
        first = new_service(db, outbox)
        await first.startup()
        await create_activity(first)
        callback = await start(first, CALLBACK, name="callback", machine="ask")
        taken = await start(first, activity_task(), name="taken")
        queued = await start(first, activity_task(), name="queued")
        got = await first.dispatch("GetActivityTask", {"activityArn": ACTIVITY})
        assert parse_task_token(got["taskToken"])[0] == taken  # type: ignore[index]
        await first.engine.until_idle()
        await first.shutdown()

        second = new_service(db, outbox)
        await second.startup()
        try:
            assert len(outbox.tokens) == 1  # the function already called is not called again
            await second.dispatch(
                "SendTaskSuccess", {"taskToken": outbox.tokens[0], "output": '{"approved": 2}'}
            )
            # The task no worker had taken is back in its queue; the one taken is not.
            again = await second.dispatch("GetActivityTask", {"activityArn": ACTIVITY})
            assert parse_task_token(again["taskToken"])[0] == queued  # type: ignore[index]
            assert await second.dispatch("GetActivityTask", {"activityArn": ACTIVITY}) == {}
            for token in (got["taskToken"], again["taskToken"]):
                await second.dispatch("SendTaskSuccess", {"taskToken": token, "output": "true"})
            for arn in (callback, queued, taken):
                assert (await described(second, arn))["status"] == "SUCCEEDED"
            done = await described(second, callback)
            assert json.loads(done["output"])["answer"] == {"approved": 2}
        finally:
            await second.engine.until_idle()
            await second.shutdown()

    asyncio.run(main())
