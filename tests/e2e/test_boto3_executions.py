"""An unmodified boto3 client against a real ``flowstate serve``: executions — start (async
and sync), stop, describe, list, history, Lambda tasks served by local functions, redrive and
map runs — with the AWS error code of each refusal.

One server (virtual clock) serves the whole module; every test names its resources uniquely.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from e2e_client import (
    ROLE,
    all_pages,
    aws_error,
    check_history,
    create,
    full_history,
    lambda_arn,
    machine_arn,
    pass_machine,
    run,
    task_machine,
    unique,
    versioned,
    wait_until,
    wait_until_done,
)
from e2e_server import ACCOUNT, REGION, Gate

pytestmark = pytest.mark.slow


def test_start_execution_then_describe_every_field(sfn: Any) -> None:
    machine = unique()
    arn = create(sfn, pass_machine(Parameters={"greeting.$": "$.who"}), name=machine)
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    started = sfn.start_execution(
        stateMachineArn=arn, name="first", input='{"who": "world"}', traceHeader=trace
    )
    expected_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine}:first"
    assert started["executionArn"] == expected_arn

    described = wait_until_done(sfn, expected_arn)
    described.pop("ResponseMetadata")
    stop = described.pop("stopDate")
    assert stop >= started["startDate"]
    assert described == {
        "executionArn": expected_arn,
        "stateMachineArn": arn,
        "name": "first",
        "status": "SUCCEEDED",
        "startDate": started["startDate"],
        "input": '{"who": "world"}',
        "inputDetails": {"included": True},
        "output": described["output"],
        "outputDetails": {"included": True},
        "traceHeader": trace,
        "redriveCount": 0,
        "redriveStatus": "NOT_REDRIVABLE",
        "redriveStatusReason": described["redriveStatusReason"],
    }
    assert json.loads(described["output"]) == {"greeting": "world"}


def test_start_execution_is_idempotent_by_name_while_running(sfn: Any, gate: Gate) -> None:
    arn = create(sfn, task_machine("gate"))
    held = json.dumps({"gate": gate.path})
    first = sfn.start_execution(stateMachineArn=arn, name="once", input=held)
    again = sfn.start_execution(stateMachineArn=arn, name="once", input=held)
    assert again["executionArn"] == first["executionArn"]
    assert again["startDate"] == first["startDate"]
    with aws_error("ExecutionAlreadyExists"):
        sfn.start_execution(
            stateMachineArn=arn, name="once", input=json.dumps({"gate": gate.path, "x": 1})
        )
    gate.open()
    assert wait_until_done(sfn, first["executionArn"])["status"] == "SUCCEEDED"
    # AWS: a closed execution's name cannot be reused, whatever the input.
    with aws_error("ExecutionAlreadyExists"):
        sfn.start_execution(stateMachineArn=arn, name="once", input=held)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"input": "{not json"}, "InvalidExecutionInput"),
        ({"stateMachineArn": machine_arn("never-created-e2e")}, "StateMachineDoesNotExist"),
        ({"stateMachineArn": "not-an-arn"}, "InvalidArn"),
        ({"stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:activity:a"}, "InvalidArn"),
        ({"name": "has space"}, "InvalidName"),
        ({"name": "n" * 81}, "ValidationException"),
    ],
    ids=["bad-input", "unknown-machine", "malformed-arn", "activity-arn", "bad-name", "long-name"],
)
def test_start_execution_refusals(sfn: Any, change: dict[str, str], code: str) -> None:
    request = {"stateMachineArn": create(sfn, pass_machine()), "input": "{}", **change}
    with aws_error(code):
        sfn.start_execution(**request)


def test_start_sync_execution_runs_an_express_machine(sfn: Any, sfn_sync: Any) -> None:
    machine = unique()
    arn = create(sfn, pass_machine(Parameters={"n.$": "$.n"}), name=machine, type="EXPRESS")
    answer = sfn_sync.start_sync_execution(stateMachineArn=arn, name="quick", input='{"n": 5}')
    assert answer["status"] == "SUCCEEDED"
    assert answer["executionArn"].startswith(
        f"arn:aws:states:{REGION}:{ACCOUNT}:express:{machine}:quick:"
    )
    assert answer["stateMachineArn"] == arn
    assert answer["name"] == "quick"
    assert answer["input"] == '{"n": 5}'
    assert json.loads(answer["output"]) == {"n": 5}
    assert answer["stopDate"] >= answer["startDate"]
    assert answer["billingDetails"]["billedDurationInMilliseconds"] >= 100

    failing = create(sfn, task_machine("decline"), type="EXPRESS")
    failed = sfn_sync.start_sync_execution(stateMachineArn=failing, input="{}")
    assert (failed["status"], failed["error"]) == ("FAILED", "PaymentDeclined")
    assert "output" not in failed


def test_start_sync_execution_refusals(sfn: Any, sfn_sync: Any) -> None:
    standard = create(sfn, pass_machine())
    with aws_error("StateMachineTypeNotSupported"):
        sfn_sync.start_sync_execution(stateMachineArn=standard, input="{}")
    with aws_error("StateMachineDoesNotExist"):
        sfn_sync.start_sync_execution(stateMachineArn=machine_arn(unique()), input="{}")
    express = create(sfn, pass_machine(), type="EXPRESS")
    with aws_error("InvalidExecutionInput"):
        sfn_sync.start_sync_execution(stateMachineArn=express, input="[unclosed")


def test_stop_execution_aborts_it_with_error_and_cause(sfn: Any, gate: Gate) -> None:
    arn = create(sfn, task_machine("gate"))
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"gate": gate.path}))
    execution = started["executionArn"]
    stopped = sfn.stop_execution(executionArn=execution, error="Operator.Stop", cause="by hand")

    described = wait_until_done(sfn, execution)
    assert (described["status"], described["error"], described["cause"]) == (
        "ABORTED",
        "Operator.Stop",
        "by hand",
    )
    assert described["stopDate"] == stopped["stopDate"]
    assert "output" not in described
    events = full_history(sfn, execution)
    check_history(events)
    assert events[-1]["type"] == "ExecutionAborted"
    assert events[-1]["executionAbortedEventDetails"] == {
        "error": "Operator.Stop",
        "cause": "by hand",
    }


def test_stop_execution_refusals(sfn: Any) -> None:
    machine = unique()
    create(sfn, pass_machine(), name=machine)
    unknown = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine}:never-started"
    with aws_error("ExecutionDoesNotExist"):
        sfn.stop_execution(executionArn=unknown)
    with aws_error("InvalidArn"):
        sfn.stop_execution(executionArn="not-an-arn")


ROUTER = json.dumps(
    {
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.outcome", "StringEquals": "fail", "Next": "Decline"},
                    {"Variable": "$.outcome", "StringEquals": "hold", "Next": "Hold"},
                ],
                "Default": "Done",
            },
            "Decline": {"Type": "Task", "Resource": lambda_arn("decline"), "End": True},
            "Hold": {"Type": "Task", "Resource": lambda_arn("gate"), "End": True},
            "Done": {"Type": "Succeed"},
        },
    }
)


def test_list_executions_by_status_and_in_pages(sfn: Any, gate: Gate) -> None:
    arn = create(sfn, ROUTER)
    outcomes = ["ok", "ok", "ok", "fail", "fail", "hold"]
    started = {
        sfn.start_execution(
            stateMachineArn=arn, input=json.dumps({"outcome": outcome, "gate": gate.path})
        )["executionArn"]: outcome
        for outcome in outcomes
    }
    for execution, outcome in started.items():
        if outcome != "hold":
            wait_until_done(sfn, execution)

    def listed(**kwargs: Any) -> list[str]:
        pages = all_pages(sfn.list_executions, "executions", stateMachineArn=arn, **kwargs)
        return [e["executionArn"] for page in pages for e in page]

    by_outcome = {o: {a for a, x in started.items() if x == o} for o in ("ok", "fail", "hold")}
    assert set(listed(statusFilter="SUCCEEDED")) == by_outcome["ok"]
    assert set(listed(statusFilter="FAILED")) == by_outcome["fail"]
    assert set(listed(statusFilter="RUNNING")) == by_outcome["hold"]

    pages = all_pages(sfn.list_executions, "executions", stateMachineArn=arn, maxResults=2)
    assert len(pages) >= 3 and all(len(page) <= 2 for page in pages), pages
    paged = [e["executionArn"] for page in pages for e in page]
    assert sorted(paged) == sorted(started)
    with aws_error("InvalidToken"):
        sfn.list_executions(stateMachineArn=arn, nextToken="not-a-token-of-ours")
    gate.open()


def test_list_executions_refusals(sfn: Any) -> None:
    with aws_error("StateMachineDoesNotExist"):
        sfn.list_executions(stateMachineArn=machine_arn(unique()))
    express = create(sfn, pass_machine(), type="EXPRESS")
    with aws_error("StateMachineTypeNotSupported"):
        sfn.list_executions(stateMachineArn=express)
    with aws_error("ValidationException"):
        sfn.list_executions(stateMachineArn=create(sfn, pass_machine()), maxResults=1001)


def test_list_executions_of_a_version(sfn: Any) -> None:
    arn, (v1, v2) = versioned(sfn, 2)
    through_v1 = run(sfn, v1)
    run(sfn, v2)
    run(sfn, arn)
    assert through_v1["stateMachineVersionArn"] == v1
    assert json.loads(through_v1["output"]) == 1
    listed = sfn.list_executions(stateMachineArn=v1)["executions"]
    assert [e["executionArn"] for e in listed] == [through_v1["executionArn"]]
    assert listed[0]["stateMachineVersionArn"] == v1
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 3


def test_list_executions_of_an_alias(sfn: Any) -> None:
    arn, (v1,) = versioned(sfn, 1)
    alias = sfn.create_state_machine_alias(
        name="only", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}]
    )["stateMachineAliasArn"]
    through_alias = run(sfn, alias)
    run(sfn, arn)
    assert through_alias["stateMachineAliasArn"] == alias
    listed = sfn.list_executions(stateMachineArn=alias)["executions"]
    assert [e["executionArn"] for e in listed] == [through_alias["executionArn"]]


CHAIN = json.dumps(
    {
        "StartAt": "One",
        "States": {
            "One": {"Type": "Pass", "Result": 1, "ResultPath": "$.one", "Next": "Two"},
            "Two": {"Type": "Pass", "Result": 2, "ResultPath": "$.two", "End": True},
        },
    }
)


def test_get_execution_history_in_pages_reversed_and_without_data(sfn: Any) -> None:
    execution = run(sfn, create(sfn, CHAIN), {"start": True})["executionArn"]
    events = full_history(sfn, execution)
    check_history(events)
    assert [e["type"] for e in events] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert json.loads(events[0]["executionStartedEventDetails"]["input"]) == {"start": True}
    assert events[0]["executionStartedEventDetails"]["roleArn"] == ROLE
    output = json.loads(events[-1]["executionSucceededEventDetails"]["output"])
    assert output == {"start": True, "one": 1, "two": 2}

    first = sfn.get_execution_history(executionArn=execution, maxResults=4)
    assert [e["id"] for e in first["events"]] == [1, 2, 3, 4]
    assert full_history(sfn, execution, maxResults=4) == events

    reverse = full_history(sfn, execution, reverseOrder=True, maxResults=4)
    assert [e["id"] for e in reverse] == [6, 5, 4, 3, 2, 1]

    bare = full_history(sfn, execution, includeExecutionData=False)
    assert [e["type"] for e in bare] == [e["type"] for e in events]
    for event in bare:
        for key, details in event.items():
            if key.endswith("EventDetails"):
                assert "input" not in details and "output" not in details, event

    with aws_error("InvalidToken"):
        sfn.get_execution_history(executionArn=execution, nextToken="not-a-token-of-ours")
    with aws_error("ExecutionDoesNotExist"):
        sfn.get_execution_history(executionArn=execution + "-never")


def test_history_without_data_keeps_the_history_details_shape(sfn: Any, endpoint: str) -> None:
    execution = run(sfn, create(sfn, CHAIN))["executionArn"]
    model = botocore.session.get_session().get_service_model("stepfunctions")
    allowed = set(model.shape_for("HistoryEventExecutionDataDetails").members)
    request = urllib.request.Request(
        endpoint + "/",
        json.dumps({"executionArn": execution, "includeExecutionData": False}).encode(),
        {
            "X-Amz-Target": "AWSStepFunctions.GetExecutionHistory",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        events = json.load(answer)["events"]  # as sent, before boto3 drops unknown members
    for event in events:
        for key, details in event.items():
            if key.endswith("EventDetails"):
                for member in ("inputDetails", "outputDetails"):
                    if member in details:
                        assert set(details[member]) <= allowed, (event["type"], details)


def test_describe_state_machine_for_execution_shows_the_definition_it_ran(sfn: Any) -> None:
    name = unique()
    ran = pass_machine(Result="old")
    arn = create(sfn, ran, name=name)
    execution = run(sfn, arn)["executionArn"]
    sfn.update_state_machine(stateMachineArn=arn, definition=pass_machine(Result="new"))

    described = sfn.describe_state_machine_for_execution(executionArn=execution)
    assert described["stateMachineArn"] == arn
    assert described["name"] == name
    assert described["definition"] == ran
    assert described["roleArn"] == ROLE
    with aws_error("ExecutionDoesNotExist"):
        sfn.describe_state_machine_for_execution(executionArn=execution + "-never")


def test_a_wait_of_a_day_ends_at_once_on_the_virtual_clock(sfn: Any) -> None:
    day = json.dumps(
        {"StartAt": "Day", "States": {"Day": {"Type": "Wait", "Seconds": 86400, "End": True}}}
    )
    described = run(sfn, create(sfn, day))
    assert described["status"] == "SUCCEEDED"
    assert described["stopDate"] - described["startDate"] >= timedelta(days=1)
    events = {e["type"]: e for e in full_history(sfn, described["executionArn"])}
    waited = events["WaitStateExited"]["timestamp"] - events["WaitStateEntered"]["timestamp"]
    assert waited == timedelta(days=1)


def test_a_task_served_by_a_local_function(sfn: Any) -> None:
    described = run(sfn, create(sfn, task_machine("echo")), {"order": 7})
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"order": 7}
    events = full_history(sfn, described["executionArn"])
    check_history(events)
    types = [e["type"] for e in events]
    assert types[1:-1] == [
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "TaskStateExited",
    ]
    scheduled = events[2]["lambdaFunctionScheduledEventDetails"]
    assert scheduled["resource"] == lambda_arn("echo")
    assert json.loads(scheduled["input"]) == {"order": 7}


def test_a_raised_exception_fails_the_task_as_lambda_reports_it(sfn: Any) -> None:
    described = run(sfn, create(sfn, task_machine("decline")), {"message": "no funds"})
    assert described["status"] == "FAILED"
    assert described["error"] == "PaymentDeclined"
    cause = json.loads(described["cause"])
    assert cause["errorType"] == "PaymentDeclined"
    assert cause["errorMessage"] == "no funds"
    assert isinstance(cause["stackTrace"], list)
    assert any("e2e_functions.py" in line for line in cause["stackTrace"])

    events = full_history(sfn, described["executionArn"])
    check_history(events)
    failed = next(e for e in events if e["type"] == "LambdaFunctionFailed")
    assert failed["lambdaFunctionFailedEventDetails"]["error"] == "PaymentDeclined"
    assert events[-1]["executionFailedEventDetails"]["error"] == "PaymentDeclined"


def test_a_retried_task_succeeds_on_its_second_attempt(sfn: Any, tmp_path: Path) -> None:
    retry = [{"ErrorEquals": ["FirstAttemptFails"], "IntervalSeconds": 60, "MaxAttempts": 2}]
    arn = create(sfn, task_machine("fail_once", Retry=retry))
    described = run(sfn, arn, {"marker": str(tmp_path / "attempted")})
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"attempt": "second"}
    types = [e["type"] for e in full_history(sfn, described["executionArn"])]
    assert types.count("LambdaFunctionFailed") == 1
    assert types.count("LambdaFunctionSucceeded") == 1


# --- redrive and map runs ----------------------------------------------------------------


def failed_once(sfn: Any, tmp_path: Path) -> str:
    """An execution that FAILED in a task which succeeds if run again."""
    arn = create(sfn, task_machine("fail_once"))
    described = run(sfn, arn, {"marker": str(tmp_path / "attempted")})
    assert described["status"] == "FAILED"
    assert described["redriveStatus"] == "REDRIVABLE"
    return str(described["executionArn"])


def test_redrive_execution_reruns_from_the_failed_state(sfn: Any, tmp_path: Path) -> None:
    execution = failed_once(sfn, tmp_path)
    redriven = sfn.redrive_execution(executionArn=execution)
    assert isinstance(redriven["redriveDate"], datetime)

    described = wait_until_done(sfn, execution)
    assert described["status"] == "SUCCEEDED"
    assert described["redriveCount"] == 1
    assert described["redriveDate"] == redriven["redriveDate"]
    assert json.loads(described["output"]) == {"attempt": "second"}
    types = [e["type"] for e in full_history(sfn, execution)]
    assert types.count("ExecutionRedriven") == 1
    assert types.index("ExecutionFailed") < types.index("ExecutionRedriven")
    assert types[-1] == "ExecutionSucceeded"

    machine = sfn.describe_execution(executionArn=execution)["stateMachineArn"]
    listed = sfn.list_executions(stateMachineArn=machine, redriveFilter="REDRIVEN")
    assert [e["executionArn"] for e in listed["executions"]] == [execution]
    assert listed["executions"][0]["redriveCount"] == 1


def test_redrive_refuses_a_succeeded_execution(sfn: Any) -> None:
    execution = run(sfn, create(sfn, pass_machine()))["executionArn"]
    with aws_error("ExecutionNotRedrivable"):
        sfn.redrive_execution(executionArn=execution)


def test_redrive_refuses_an_unknown_execution(sfn: Any) -> None:
    machine = unique()
    create(sfn, pass_machine(), name=machine)
    with aws_error("ExecutionDoesNotExist"):
        sfn.redrive_execution(
            executionArn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine}:never"
        )


def test_redrive_refuses_a_malformed_arn(sfn: Any) -> None:
    with aws_error("InvalidArn"):
        sfn.redrive_execution(executionArn="not-an-arn")


def distributed_map(function: str, *, max_concurrency: int) -> str:
    item = {"Type": "Task", "Resource": lambda_arn(function), "End": True}
    return json.dumps(
        {
            "StartAt": "Each",
            "States": {
                "Each": {
                    "Type": "Map",
                    "Label": "each",
                    "ItemsPath": "$.items",
                    "MaxConcurrency": max_concurrency,
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                        "StartAt": "Item",
                        "States": {"Item": item},
                    },
                    "End": True,
                }
            },
        }
    )


def map_run_arn_of(sfn: Any, execution: str) -> str:
    def started() -> str | None:
        for event in full_history(sfn, execution):
            if event["type"] == "MapRunStarted":
                return str(event["mapRunStartedEventDetails"]["mapRunArn"])
        return None

    return str(wait_until(started, f"a map run in {execution}"))


def test_list_and_describe_map_runs(sfn: Any) -> None:
    machine = unique()
    arn = create(sfn, distributed_map("echo", max_concurrency=2), name=machine)
    described = run(sfn, arn, {"items": [{"n": 1}, {"n": 2}, {"n": 3}]})
    assert described["status"] == "SUCCEEDED"
    execution = described["executionArn"]
    map_run = map_run_arn_of(sfn, execution)
    assert map_run.startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:mapRun:{machine}/each:")

    runs = sfn.list_map_runs(executionArn=execution)["mapRuns"]
    assert [(r["mapRunArn"], r["executionArn"]) for r in runs] == [(map_run, execution)]

    run_ = sfn.describe_map_run(mapRunArn=map_run)
    assert run_["executionArn"] == execution
    assert run_["status"] == "SUCCEEDED"
    assert run_["maxConcurrency"] == 2
    assert run_["stopDate"] >= run_["startDate"]
    assert (run_["itemCounts"]["succeeded"], run_["itemCounts"]["total"]) == (3, 3)
    assert run_["itemCounts"]["failed"] == 0
    assert (run_["executionCounts"]["succeeded"], run_["executionCounts"]["total"]) == (3, 3)


def test_update_map_run_while_it_runs(sfn: Any, gate: Gate) -> None:
    arn = create(sfn, distributed_map("gate", max_concurrency=1))
    items = [{"gate": gate.path}, {"gate": gate.path}]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": items}))[
        "executionArn"
    ]
    map_run = map_run_arn_of(sfn, execution)
    sfn.update_map_run(mapRunArn=map_run, maxConcurrency=5, toleratedFailureCount=1)
    running = sfn.describe_map_run(mapRunArn=map_run)
    assert running["status"] == "RUNNING"
    assert (running["maxConcurrency"], running["toleratedFailureCount"]) == (5, 1)
    gate.open()
    assert wait_until_done(sfn, execution)["status"] == "SUCCEEDED"


def unknown_map_run(machine: str) -> str:
    return (
        f"arn:aws:states:{REGION}:{ACCOUNT}:mapRun:{machine}/each:"
        "00000000-0000-4000-8000-000000000000"
    )


def test_describe_map_run_refuses_an_unknown_map_run(sfn: Any) -> None:
    with aws_error("ResourceNotFound"):
        sfn.describe_map_run(mapRunArn=unknown_map_run(unique()))


def test_describe_map_run_refuses_a_malformed_arn(sfn: Any) -> None:
    with aws_error("InvalidArn"):
        sfn.describe_map_run(mapRunArn="not-an-arn")


def test_update_map_run_refuses_an_unknown_map_run(sfn: Any) -> None:
    with aws_error("ResourceNotFound"):
        sfn.update_map_run(mapRunArn=unknown_map_run(unique()), maxConcurrency=1)


def test_update_map_run_refuses_a_percentage_over_100(sfn: Any) -> None:
    # Refused by the model's constraints before the operation is looked at.
    with aws_error("ValidationException"):
        sfn.update_map_run(mapRunArn=unknown_map_run(unique()), toleratedFailurePercentage=101)


def test_list_map_runs_refuses_an_unknown_execution(sfn: Any) -> None:
    machine = unique()
    create(sfn, pass_machine(), name=machine)
    with aws_error("ExecutionDoesNotExist"):
        sfn.list_map_runs(executionArn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine}:x")
