"""RedriveExecution through ``Service.dispatch``, on the virtual clock: the redrive itself, what
Describe/List/History show of it, the client token, and every refusal.

Reason texts are AWS's (botocore's ``redriveStatusReason`` documentation); conditions are those
of the RedriveExecution API reference and the "Restarting state machine executions with
redrive" guide.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowstate.api.validation import RequestValidator
from flowstate.integrations.functions import FunctionRegistry
from flowstate.runtime.clock import VirtualClock
from flowstate.runtime.engine import NotRedrivable
from flowstate.service.errors import ServiceError
from flowstate.service.facade import Service, ServiceSettings
from flowstate.storage import ExecutionRecord, open_store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PREFIX = "arn:aws:states:us-east-1:123456789012"
ROLE = "arn:aws:iam::123456789012:role/flowstate"
CHARGE = "arn:aws:lambda:us-east-1:123456789012:function:charge"

CHAIN = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": 1, "ResultPath": "$.prep", "Next": "Charge"},
        "Charge": {"Type": "Task", "Resource": CHARGE, "ResultPath": "$.charge", "End": True},
    },
}
ALWAYS_FAILS = {"StartAt": "No", "States": {"No": {"Type": "Fail", "Error": "E", "Cause": "c"}}}


class Declined(Exception):
    pass


class Charge:
    """The ``charge`` function: its first call fails; later calls wait for ``release``."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.gate: asyncio.Event | None = None  # when set up, every call waits for it first

    async def call(self, event: Any, context: Any) -> Any:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.calls == 1:
            raise Declined("card declined")
        await self.release.wait()
        return {"paid": True}


Scenario = Callable[[Service, VirtualClock, Charge], Awaitable[None]]


def run(scenario: Scenario, **settings: Any) -> None:
    async def main() -> None:
        charge = Charge()
        clock = VirtualClock(T0)
        service = Service(
            open_store("memory:"),
            clock=clock,
            functions=FunctionRegistry({"charge": charge.call}),
            settings=ServiceSettings(**settings),
        )
        await service.startup()
        try:
            await scenario(service, clock, charge)
        finally:
            charge.release.set()
            await service.engine.until_idle()
            await service.shutdown()

    asyncio.run(main())


async def start(
    service: Service,
    definition: dict[str, Any],
    name: str = "e1",
    type: str = "STANDARD",
    machine: str = "flow",
) -> str:
    arn = f"{PREFIX}:stateMachine:{machine}"
    if service.store.get_state_machine(arn) is None:
        await service.dispatch(
            "CreateStateMachine",
            {"name": machine, "definition": json.dumps(definition), "roleArn": ROLE, "type": type},
        )
    started = await service.dispatch(
        "StartExecution", {"stateMachineArn": arn, "name": name, "input": '{"order": 7}'}
    )
    execution_arn: str = started["executionArn"]
    return execution_arn


async def stopped(service: Service, arn: str) -> dict[str, Any]:
    await service.engine.wait_stopped(arn)
    return await service.dispatch("DescribeExecution", {"executionArn": arn})


async def refused(service: Service, code: str, request: dict[str, Any]) -> str:
    with pytest.raises(ServiceError) as caught:
        await service.dispatch("RedriveExecution", request)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


async def history_types(service: Service, arn: str) -> list[str]:
    page = await service.dispatch("GetExecutionHistory", {"executionArn": arn, "maxResults": 1000})
    return [event["type"] for event in page["events"]]


# --- the redrive and what the API shows of it ------------------------------------------------


def test_redrive_then_describe_list_and_history() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        arn = await start(service, CHAIN)
        failed = await stopped(service, arn)
        assert failed["status"] == "FAILED"
        assert failed["redriveCount"] == 0 and "redriveDate" not in failed
        assert failed["redriveStatus"] == "REDRIVABLE" and "redriveStatusReason" not in failed

        clock.advance_to(T0 + timedelta(days=2))
        answer = await service.dispatch("RedriveExecution", {"executionArn": arn})
        assert answer == {"redriveDate": T0 + timedelta(days=2)}

        running = await service.dispatch("DescribeExecution", {"executionArn": arn})
        assert running["status"] == "RUNNING"
        assert running["redriveCount"] == 1
        assert running["redriveDate"] == T0 + timedelta(days=2)
        assert running["redriveStatus"] == "NOT_REDRIVABLE"
        assert running["redriveStatusReason"] == "Execution is RUNNING and cannot be redriven"
        assert "stopDate" not in running and "error" not in running and "cause" not in running
        assert running["startDate"] == T0  # the same execution, started when it was

        listed = await service.dispatch(
            "ListExecutions",
            {"stateMachineArn": f"{PREFIX}:stateMachine:flow", "redriveFilter": "REDRIVEN"},
        )
        assert [
            (e["executionArn"], e["redriveCount"], e["redriveDate"]) for e in listed["executions"]
        ] == [(arn, 1, T0 + timedelta(days=2))]
        not_redriven = await service.dispatch(
            "ListExecutions",
            {"stateMachineArn": f"{PREFIX}:stateMachine:flow", "redriveFilter": "NOT_REDRIVEN"},
        )
        assert not_redriven["executions"] == []

        charge.release.set()
        done = await stopped(service, arn)
        assert done["status"] == "SUCCEEDED"
        assert json.loads(done["output"]) == {"order": 7, "prep": 1, "charge": {"paid": True}}
        assert done["redriveCount"] == 1
        assert done["redriveStatusReason"] == "Execution is SUCCEEDED and cannot be redriven"
        assert charge.calls == 2

        page = await service.dispatch("GetExecutionHistory", {"executionArn": arn})
        events = page["events"]
        types = [e["type"] for e in events]
        assert types.count("ExecutionRedriven") == 1 and types.count("PassStateEntered") == 1
        redriven = events[types.index("ExecutionRedriven")]
        assert redriven["executionRedrivenEventDetails"] == {"redriveCount": 1}
        assert redriven["timestamp"] == T0 + timedelta(days=2)
        assert types[types.index("ExecutionRedriven") - 1] == "ExecutionFailed"
        assert types[-1] == "ExecutionSucceeded"

    run(scenario)


def test_an_execution_that_fails_again_can_be_redriven_again() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        arn = await start(service, ALWAYS_FAILS)
        await stopped(service, arn)
        for count in (1, 2):
            clock.advance(3600)
            await service.dispatch("RedriveExecution", {"executionArn": arn})
            again = await stopped(service, arn)
            assert again["status"] == "FAILED" and again["error"] == "E"
            assert again["redriveCount"] == count and again["redriveStatus"] == "REDRIVABLE"
            assert again["stopDate"] == clock.now()
        assert (await history_types(service, arn)).count("FailStateEntered") == 3

    run(scenario)


def test_an_aborted_execution_is_redriven() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        definition = {
            "StartAt": "Hold",
            "States": {"Hold": {"Type": "Wait", "Seconds": 60, "End": True}},
        }
        arn = await start(service, definition)
        await service.dispatch("StopExecution", {"executionArn": arn, "error": "Halt"})
        aborted = await stopped(service, arn)
        assert aborted["status"] == "ABORTED" and aborted["redriveStatus"] == "REDRIVABLE"
        await service.dispatch("RedriveExecution", {"executionArn": arn})
        done = await stopped(service, arn)
        assert done["status"] == "SUCCEEDED" and "error" not in done
        assert done["stopDate"] == aborted["stopDate"] + timedelta(seconds=60)

    run(scenario)


# --- clientToken ---------------------------------------------------------------------------


def test_the_same_client_token_gets_the_same_answer_for_15_minutes() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        arn = await start(service, CHAIN)
        await stopped(service, arn)
        request = {"executionArn": arn, "clientToken": "retry-safe"}
        twins = await asyncio.gather(
            service.dispatch("RedriveExecution", request),
            service.dispatch("RedriveExecution", request),
        )
        assert twins == [{"redriveDate": T0}, {"redriveDate": T0}]
        clock.advance(14 * 60)
        assert await service.dispatch("RedriveExecution", request) == {"redriveDate": T0}
        # one redrive only
        assert (await history_types(service, arn)).count("ExecutionRedriven") == 1
        # another token is another redrive: refused, the execution runs
        message = await refused(
            service, "ExecutionNotRedrivable", {"executionArn": arn, "clientToken": "other"}
        )
        assert message == "Execution is RUNNING and cannot be redriven"
        clock.advance(2 * 60)  # past 15 minutes since its first use
        await refused(service, "ExecutionNotRedrivable", request)

    run(scenario)


def test_only_the_last_10_tokens_of_an_execution_are_remembered() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        arn = await start(service, ALWAYS_FAILS)
        await stopped(service, arn)
        for i in range(11):
            await service.dispatch(
                "RedriveExecution", {"executionArn": arn, "clientToken": f"t{i}"}
            )
            await service.engine.wait_stopped(arn)
        # t10 is remembered: nothing more happens; t0 is forgotten: a twelfth redrive
        await service.dispatch("RedriveExecution", {"executionArn": arn, "clientToken": "t10"})
        assert (await stopped(service, arn))["redriveCount"] == 11
        await service.dispatch("RedriveExecution", {"executionArn": arn, "clientToken": "t0"})
        assert (await stopped(service, arn))["redriveCount"] == 12

    run(scenario)


def test_a_refused_token_is_not_remembered() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        charge.gate = asyncio.Event()
        arn = await start(service, CHAIN)
        request = {"executionArn": arn, "clientToken": "early"}
        await refused(service, "ExecutionNotRedrivable", request)  # still running
        charge.gate.set()
        await stopped(service, arn)
        assert await service.dispatch("RedriveExecution", request) == {"redriveDate": T0}

    run(scenario)


# --- refusals --------------------------------------------------------------------------------


def test_invalid_arns_are_refused() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        for arn in (f"{PREFIX}:stateMachine:flow", "arn:aws:states:us-east-1:123456789012:e1"):
            await refused(service, "InvalidArn", {"executionArn": arn})
        message = await refused(
            service, "ExecutionDoesNotExist", {"executionArn": f"{PREFIX}:execution:flow:nope"}
        )
        assert message == f"Execution Does Not Exist: '{PREFIX}:execution:flow:nope'"

    run(scenario)


def test_running_and_succeeded_executions_are_not_redrivable() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        hold = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 60, "End": True}}}
        arn = await start(service, hold)
        message = await refused(service, "ExecutionNotRedrivable", {"executionArn": arn})
        assert message == "Execution is RUNNING and cannot be redriven"
        await stopped(service, arn)
        message = await refused(service, "ExecutionNotRedrivable", {"executionArn": arn})
        assert message == "Execution is SUCCEEDED and cannot be redriven"

    run(scenario)


def test_the_redrive_window_is_14_days_from_the_stop() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        arn = await start(service, ALWAYS_FAILS)
        await stopped(service, arn)
        clock.advance_to(T0 + timedelta(days=14, seconds=1))
        described = await service.dispatch("DescribeExecution", {"executionArn": arn})
        assert described["redriveStatus"] == "NOT_REDRIVABLE"
        assert described["redriveStatusReason"] == "Execution redrivable period exceeded"
        message = await refused(service, "ExecutionNotRedrivable", {"executionArn": arn})
        assert message == "Execution redrivable period exceeded"

    run(scenario)


def test_an_execution_open_more_than_a_year_is_not_redrivable() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        definition = {
            "StartAt": "Long",
            "States": {
                "Long": {"Type": "Wait", "Seconds": 366 * 86400, "Next": "No"},
                "No": {"Type": "Fail", "Error": "E"},
            },
        }
        arn = await start(service, definition)
        failed = await stopped(service, arn)
        assert failed["stopDate"] == T0 + timedelta(days=366)  # stopped just now
        message = await refused(service, "ExecutionNotRedrivable", {"executionArn": arn})
        assert message == "Execution has exceeded the max execution time"

    run(scenario)


def test_an_execution_near_the_history_quota_is_not_redrivable() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        short = await start(service, ALWAYS_FAILS, "short")  # 3 events
        await stopped(service, short)
        many = {
            "StartAt": "Each",
            "States": {
                "Each": {
                    "Type": "Map",
                    "ItemProcessor": {
                        "StartAt": "P",
                        "States": {"P": {"Type": "Pass", "End": True}},
                    },
                    "End": True,
                }
            },
        }
        arn = f"{PREFIX}:stateMachine:many"
        await service.dispatch(
            "CreateStateMachine", {"name": "many", "definition": json.dumps(many), "roleArn": ROLE}
        )
        started = await service.dispatch(
            "StartExecution", {"stateMachineArn": arn, "input": json.dumps(list(range(20)))}
        )
        # 20 MapIterationStarted at once pass the quota of 20: the execution fails with 24 events
        described = await stopped(service, started["executionArn"])
        assert described["status"] == "FAILED" and described["error"] == "States.Runtime"
        # AWS: redrivable only under 24,999 events of 25,000 (here: under 19 of 20)
        assert described["redriveStatusReason"] == "Execution history event limit exceeded"
        message = await refused(
            service, "ExecutionNotRedrivable", {"executionArn": started["executionArn"]}
        )
        assert message == "Execution history event limit exceeded"
        assert await service.dispatch("RedriveExecution", {"executionArn": short})

    run(scenario, max_history_events=20)


def test_executions_of_a_deleted_state_machine_are_not_redrivable() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        arn = await start(service, ALWAYS_FAILS)
        await stopped(service, arn)
        await service.dispatch(
            "DeleteStateMachine", {"stateMachineArn": f"{PREFIX}:stateMachine:flow"}
        )
        message = await refused(service, "ExecutionNotRedrivable", {"executionArn": arn})
        assert message == "State machine is in DELETING status"

    run(scenario)


def test_express_executions_are_not_redrivable() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        arn = await start(service, ALWAYS_FAILS, type="EXPRESS")
        await service.engine.wait_stopped(arn)
        row = service.store.get_execution(arn)
        assert row is not None and row.status == "FAILED"
        # Refused: as not redrivable, or (as every other execution operation, recorded AWS)
        # with InvalidArn for an Express ARN where the service refuses those outright.
        with pytest.raises(ServiceError) as caught:
            await service.dispatch("RedriveExecution", {"executionArn": arn})
        assert (caught.value.code, caught.value.message) in (
            ("ExecutionNotRedrivable", "Express executions cannot be redriven"),
            ("InvalidArn", "Invalid Arn: 'Resource type not valid in this context: express'"),
        )
        # and the engine would not redrive it either
        with pytest.raises(NotRedrivable, match="Express executions cannot be redriven"):
            await service.engine.redrive_execution(arn)

    run(scenario)


def test_a_failed_express_child_of_a_map_run_is_redrivable_by_its_map_run() -> None:
    async def scenario(service: Service, clock: VirtualClock, charge: Charge) -> None:
        record = ExecutionRecord(
            arn=f"{PREFIX}:express:flow/items:child:0d7f",
            state_machine_arn=f"{PREFIX}:stateMachine:flow",
            name="child",
            type="EXPRESS",
            status="FAILED",
            input="{}",
            start_at=T0,
            stop_at=T0,
            map_run_arn=f"{PREFIX}:mapRun:flow/items:5d2b",
        )
        # (flowstate runs Map Run items inside their parent: only such a row would show it)
        status = await service.executions._redrive_status(record)
        assert status == ("REDRIVABLE_BY_MAP_RUN", None)
        alone = await service.executions._redrive_status(
            dataclasses.replace(record, map_run_arn=None)
        )
        assert alone == ("NOT_REDRIVABLE", "Express executions cannot be redriven")

    run(scenario)


def test_a_client_token_outside_the_model_is_a_validation_error() -> None:
    # The HTTP front end checks every request against botocore's model before the service.
    validator = RequestValidator()
    arn = f"{PREFIX}:execution:flow:e1"
    assert validator.validate("RedriveExecution", {"executionArn": arn, "clientToken": "t"})
    for token in ("x" * 65, "with space"):
        with pytest.raises(ServiceError) as caught:
            validator.validate("RedriveExecution", {"executionArn": arn, "clientToken": token})
        assert caught.value.code == "ValidationException"
