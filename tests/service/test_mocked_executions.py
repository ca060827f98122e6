"""StartExecution of ``<stateMachineArn>#<CASE>``: Step Functions Local's mocked test cases."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from flowstate.api.validation import RequestValidator
from flowstate.integrations.functions import FunctionRegistry
from flowstate.integrations.mocks import MockConfig
from flowstate.runtime.clock import VirtualClock
from flowstate.service.errors import ServiceError
from flowstate.service.facade import Service
from flowstate.storage import open_store

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:Orders"
ROLE = "arn:aws:iam::123456789012:role/r"
FN = "arn:aws:lambda:us-east-1:123456789012:function:"
DEFINITION = {
    "StartAt": "Charge",
    "States": {"Charge": {"Type": "Task", "Resource": FN + "charge", "End": True}},
}
MOCKS = MockConfig.parse(
    {
        "StateMachines": {"Orders": {"TestCases": {"Happy": {"Charge": "Charged"}}}},
        "MockedResponses": {"Charged": {"0": {"Return": {"mocked": True}}}},
    }
)


def run(scenario: Any) -> None:
    async def main() -> None:
        service = Service(
            open_store("memory:"),
            clock=VirtualClock(datetime(2026, 1, 1, tzinfo=UTC)),
            functions=FunctionRegistry({"charge": lambda e, c: {"real": True}}),
            mocks=MOCKS,
        )
        await service.startup()
        try:
            await service.dispatch(
                "CreateStateMachine",
                {"name": "Orders", "definition": json.dumps(DEFINITION), "roleArn": ROLE},
            )
            await scenario(service)
        finally:
            await service.engine.stop()

    asyncio.run(main())


async def _output(service: Service, arn: str) -> Any:
    await service.engine.wait_stopped(arn)
    described = await service.dispatch("DescribeExecution", {"executionArn": arn})
    return json.loads(described["output"])


def test_a_test_case_replaces_the_call_and_a_plain_start_calls_for_real() -> None:
    async def scenario(service: Service) -> None:
        mocked = await service.dispatch(
            "StartExecution", {"stateMachineArn": ARN + "#Happy", "name": "m"}
        )
        assert mocked["executionArn"].endswith(":execution:Orders:m")
        assert await _output(service, mocked["executionArn"]) == {"mocked": True}
        record = service.store.get_execution(mocked["executionArn"])
        assert record is not None and json.loads(record.attributes)["mockTestCase"] == "Happy"
        real = await service.dispatch("StartExecution", {"stateMachineArn": ARN, "name": "r"})
        assert await _output(service, real["executionArn"]) == {"real": True}

    run(scenario)


def test_an_unknown_test_case_is_refused() -> None:
    async def scenario(service: Service) -> None:
        with pytest.raises(ServiceError) as refused:
            await service.dispatch("StartExecution", {"stateMachineArn": ARN + "#Nope"})
        assert refused.value.code == "InvalidArn"

    run(scenario)


def test_the_api_accepts_a_test_case_suffix() -> None:
    RequestValidator().validate("StartExecution", {"stateMachineArn": ARN + "#Happy"})


def test_a_stuck_call_times_out_on_the_virtual_clock_and_is_abandoned() -> None:
    import threading

    release = threading.Event()

    async def main() -> None:
        service = Service(
            open_store("memory:"),
            clock=VirtualClock(datetime(2026, 1, 1, tzinfo=UTC)),
            functions=FunctionRegistry({"stuck": lambda e, c: release.wait(30)}),
        )
        await service.startup()
        definition = {
            "StartAt": "T",
            "States": {
                "T": {"Type": "Task", "Resource": FN + "stuck", "TimeoutSeconds": 1, "End": True}
            },
        }
        try:
            await service.dispatch(
                "CreateStateMachine",
                {"name": "Stuck", "definition": json.dumps(definition), "roleArn": ROLE},
            )
            started = await service.dispatch(
                "StartExecution", {"stateMachineArn": ARN.replace("Orders", "Stuck")}
            )
            await service.engine.wait_stopped(started["executionArn"])
            described = await service.dispatch(
                "DescribeExecution", {"executionArn": started["executionArn"]}
            )
            assert (described["status"], described["error"]) == ("FAILED", "States.Timeout")
            await service.engine.until_idle()  # the abandoned call holds nothing up
        finally:
            release.set()
            await service.engine.stop()

    asyncio.run(main())
