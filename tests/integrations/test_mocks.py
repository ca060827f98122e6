"""Step Functions Local mocks: the format, invocation numbers, Map/Parallel, real calls."""

from __future__ import annotations

from typing import Any

import pytest

from flowstate.integrations.mocks import MockConfig, MockConfigError, split_test_case
from flowstate.runtime.local import UnknownTestCase
from flowstate.testing import run_workflow

FN = "arn:aws:lambda:us-east-1:123456789012:function:"

MOCKS = {
    "StateMachines": {
        "Orders": {
            "TestCases": {
                "HappyPath": {"Charge": "Charged"},
                "RetryPath": {"Charge": "FlakyThenCharged"},
                "Items": {"Each": "PerItem"},
            }
        }
    },
    "MockedResponses": {
        "Charged": {"0": {"Return": {"charged": True}}},
        "FlakyThenCharged": {
            "0": {"Throw": {"Error": "Lambda.ServiceException", "Cause": "down"}},
            "1-2": {"Throw": {"Error": "Lambda.TooManyRequestsException", "Cause": "busy"}},
            "3": {"Return": {"charged": "late"}},
        },
        "PerItem": {"0-1": {"Return": "mocked"}},
    },
}

RETRY = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3}]
ORDERS = {
    "StartAt": "Charge",
    "States": {
        "Charge": {"Type": "Task", "Resource": FN + "charge", "Retry": RETRY, "Next": "Ship"},
        "Ship": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True},
    },
}


def test_a_mocked_state_never_calls_and_an_unmocked_one_does() -> None:
    calls: list[Any] = []
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": {"Type": "Task", "Resource": FN + "charge", "Next": "Notify"},
            "Notify": {"Type": "Task", "Resource": FN + "notify", "End": True},
        },
    }
    functions = {
        "charge": lambda e, c: calls.append("charge"),
        "notify": lambda e, c: calls.append(e) or "notified",
    }
    result = run_workflow(
        definition,
        {},
        functions=functions,
        mocks=MOCKS,
        test_case="HappyPath",
        state_machine_name="Orders",
    )
    assert (result.status, result.output) == ("SUCCEEDED", "notified")
    assert calls == [{"charged": True}]


def test_invocation_numbers_and_ranges_follow_retries() -> None:
    result = run_workflow(
        ORDERS, {}, mocks=MOCKS, test_case="RetryPath", state_machine_name="Orders"
    )
    # Ship is not mocked: its real resource is not hosted, so the run fails there.
    failed = result.events("LambdaFunctionFailed")
    assert [e["lambdaFunctionFailedEventDetails"]["error"] for e in failed] == [
        "Lambda.ServiceException",
        "Lambda.TooManyRequestsException",
        "Lambda.TooManyRequestsException",
    ]
    succeeded = result.events("LambdaFunctionSucceeded")
    assert len(succeeded) == 1
    assert result.error == "States.Runtime" and "sqs:sendMessage" in (result.cause or "")


def test_map_iterations_share_the_count_and_a_missing_response_fails() -> None:
    definition = {
        "StartAt": "Loop",
        "States": {
            "Loop": {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "StartAt": "Each",
                    "States": {"Each": {"Type": "Task", "Resource": FN + "each", "End": True}},
                },
                "End": True,
            }
        },
    }
    two = run_workflow(
        definition, [1, 2], mocks=MOCKS, test_case="Items", state_machine_name="Orders"
    )
    assert two.output == ["mocked", "mocked"]
    three = run_workflow(
        definition, [1, 2, 3], mocks=MOCKS, test_case="Items", state_machine_name="Orders"
    )
    assert three.status == "FAILED"
    assert "no response for invocation 2" in (three.cause or "")


def test_unknown_test_case_is_refused() -> None:
    with pytest.raises(UnknownTestCase):
        run_workflow(ORDERS, {}, mocks=MOCKS, test_case="Nope", state_machine_name="Orders")


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"StateMachines": {"M": {}}},
        {"StateMachines": {"M": {"TestCases": {"C": {"S": "Missing"}}}}},
        {"MockedResponses": {"R": {"first": {"Return": 1}}}},
        {"MockedResponses": {"R": {"2-1": {"Return": 1}}}},
        {"MockedResponses": {"R": {"0": {"Return": 1, "Throw": {}}}}},
        {"MockedResponses": {"R": {"0": {"Throw": {"Error": "E"}}}}},
    ],
)
def test_malformed_configurations_are_refused(document: Any) -> None:
    with pytest.raises(MockConfigError):
        MockConfig.parse(document)


def test_split_test_case() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:Orders"
    assert split_test_case(arn + "#HappyPath") == (arn, "HappyPath")
    assert split_test_case(arn) == (arn, None)
