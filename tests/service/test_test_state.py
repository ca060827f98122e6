"""TestState: one state run on a given input, as AWS reports it.

Expected values marked "recorded" come from responses recorded against AWS (LocalStack's
``tests/aws/services/stepfunctions/v2/test_state`` snapshots, recorded November-December 2025).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from flowstate.asl.errors import StatesError
from flowstate.service import test_state as ts
from flowstate.service.errors import ServiceError

NOW = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
ROLE = "arn:aws:iam::123456789012:role/TestRole"
HELLO = {"Value": "HelloWorld"}


def run(definition: Any, input_value: Any = None, **request: Any) -> dict[str, Any]:
    """TestState with ``definition``/``input`` given as Python values; JSON texts decoded."""
    invoke = request.pop("invoke", None)
    request["definition"] = definition if isinstance(definition, str) else json.dumps(definition)
    if input_value is not None:
        request["input"] = json.dumps(input_value)
    response = ts.test_state(request, invoke=invoke, now=NOW)
    if "output" in response:
        response["output"] = json.loads(response["output"])
    for key, value in response.get("inspectionData", {}).items():
        if isinstance(value, str):
            response["inspectionData"][key] = json.loads(value)
    return response


def refused(definition: Any, **request: Any) -> tuple[str, str]:
    with pytest.raises(ServiceError) as caught:
        run(definition, **request)
    return caught.value.code, caught.value.message


def task(**fields: Any) -> dict[str, Any]:
    state = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", **fields}
    return state if "Next" in fields else {**state, "End": True}


def jsonata_task(**fields: Any) -> dict[str, Any]:
    arguments = {"FunctionName": "foo", "Payload": "bar"}
    return task(QueryLanguage="JSONata", Arguments=arguments, **fields)


MOCK_ERROR = {"errorOutput": {"error": "MockException", "cause": "Mock the cause of the error."}}


# --- Pass, Succeed, Fail: recorded data flow ---------------------------------------------------


def test_pass_reports_each_stage_at_debug() -> None:
    state = {
        "Type": "Pass",
        "InputPath": "$.initialData",
        "Parameters": {"staticValue": "some value", "inputValue.$": "$.fieldFromInput"},
        "ResultPath": "$.modifiedData",
        "End": True,
    }
    source = {"initialData": {"fieldFromInput": "v", "otherField": "o"}, "unrelated": 1}
    response = run(state, source, inspectionLevel="DEBUG")
    selected = {"staticValue": "some value", "inputValue": "v"}
    output = {**source, "modifiedData": selected}
    assert response == {  # recorded (IO_PASS_STATE)
        "status": "SUCCEEDED",
        "output": output,
        "inspectionData": {
            "input": source,
            "afterInputPath": source["initialData"],
            "afterParameters": selected,
            "afterResultSelector": selected,
            "afterResultPath": output,
        },
    }


def test_pass_with_result_shows_no_input_stages() -> None:
    state = {"Type": "Pass", "InputPath": "$.a", "Result": {"k": "v"}, "End": True}
    response = run(state, {"a": 1}, inspectionLevel="TRACE")
    assert response["inspectionData"] == {  # recorded (IO_RESULT_PASS_STATE)
        "input": {"a": 1},
        "result": {"k": "v"},
        "afterResultSelector": {"k": "v"},
        "afterResultPath": {"k": "v"},
    }


def test_info_level_has_no_inspection_data() -> None:
    assert run({"Type": "Pass", "Next": "After"}, HELLO) == {
        "status": "SUCCEEDED",
        "output": HELLO,
        "nextState": "After",
    }


def test_succeed_and_fail() -> None:
    assert run({"Type": "Succeed"}, HELLO, inspectionLevel="DEBUG") == {
        "status": "SUCCEEDED",
        "output": HELLO,
        "inspectionData": {"input": HELLO, "afterInputPath": HELLO},  # recorded
    }
    fail = {"Type": "Fail", "Error": "SomeFailure", "Cause": "It failed."}
    assert run(fail, HELLO) == {"status": "FAILED", "error": "SomeFailure", "cause": "It failed."}


def test_input_path_failure_is_a_runtime_error_not_caught_by_states_all() -> None:
    catch_all = [{"ErrorEquals": ["States.ALL"], "Next": "Handler"}]
    state = task(InputPath="$.missing", Catch=catch_all)
    response = run(state, HELLO, mock={"result": "{}"})
    assert response["status"] == "FAILED"
    assert response["error"] == "States.Runtime"
    assert "$.missing" in response["cause"]


# --- Choice and Wait ---------------------------------------------------------------------------


def test_choice_reports_the_branch_taken() -> None:
    twenties = [
        {"Variable": "$.value", "NumericGreaterThanEquals": 20},
        {"Variable": "$.value", "NumericLessThan": 30},
    ]
    state = {
        "Type": "Choice",
        "Choices": [
            {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
            {"And": twenties, "Next": "ValueInTwenties"},
        ],
        "Default": "DefaultState",
    }
    source = {"type": "Private", "value": 22}
    assert run(state, source, inspectionLevel="DEBUG") == {  # recorded (BASE_CHOICE_STATE)
        "status": "SUCCEEDED",
        "nextState": "ValueInTwenties",
        "output": source,
        "inspectionData": {"input": source, "afterInputPath": source},
    }
    assert run(state, {"type": "Private", "value": 5})["nextState"] == "DefaultState"


def test_jsonata_choice_without_match_fails() -> None:
    state = {
        "QueryLanguage": "JSONata",
        "Type": "Choice",
        "Choices": [{"Condition": "{% $states.input.cost < 10 %}", "Next": "Approved"}],
    }
    assert run(state, {"cost": 9}, inspectionLevel="DEBUG") == {  # recorded (blog scenario)
        "status": "SUCCEEDED",
        "nextState": "Approved",
        "output": {"cost": 9},
        "inspectionData": {"input": {"cost": 9}},
    }
    response = run(state, {"cost": 10})
    assert (response["status"], response["error"]) == ("FAILED", "States.NoChoiceMatched")


def test_wait_does_not_wait() -> None:
    state = {"Type": "Wait", "Seconds": 3600, "OutputPath": "$.keep", "Next": "After"}
    assert run(state, {"keep": [1]}) == {"status": "SUCCEEDED", "output": [1], "nextState": "After"}
    bad = {"Type": "Wait", "TimestampPath": "$.when", "Next": "After"}
    response = run(bad, {"when": "tomorrow"})
    assert (response["status"], response["error"]) == ("FAILED", "States.Runtime")
    assert "TimestampPath" in response["cause"]


# --- Task: results, Retry and Catch ------------------------------------------------------------


def test_mocked_task_result_goes_through_each_stage() -> None:
    state = task(
        Parameters={"FunctionName": "f", "Payload.$": "$.data"},
        ResultSelector={"body.$": "$.Payload"},
        ResultPath="$.response",
        OutputPath="$.response.body",
        Next="After",
    )
    # AWS's Invoke API has a string Payload: a JSON one passes only without validation.
    result = json.dumps({"Payload": {"n": 1}, "StatusCode": 200})
    response = run(
        state,
        {"data": 7},
        mock={"result": result, "fieldValidationMode": "NONE"},
        inspectionLevel="DEBUG",
    )
    assert response == {
        "status": "SUCCEEDED",
        "output": {"n": 1},
        "nextState": "After",
        "inspectionData": {
            "input": {"data": 7},
            "afterInputPath": {"data": 7},
            "afterParameters": {"FunctionName": "f", "Payload": 7},
            "result": {"Payload": {"n": 1}, "StatusCode": 200},
            "afterResultSelector": {"body": {"n": 1}},
            "afterResultPath": {"data": 7, "response": {"body": {"n": 1}}},
        },
    }


RETRY = [{"ErrorEquals": ["MockException"], "IntervalSeconds": 1, "MaxAttempts": 5}]


@pytest.mark.parametrize(
    ("spent", "status", "details"),
    [
        (4, "RETRIABLE", {"retryIndex": 0, "retryBackoffIntervalSeconds": 16}),
        (5, "FAILED", {"retryIndex": 0}),
    ],
)
def test_retrier_with_attempts_left_is_retriable(
    spent: int, status: str, details: dict[str, int]
) -> None:
    response = run(
        jsonata_task(Retry=RETRY),
        {"Values": [1]},
        mock=MOCK_ERROR,
        stateConfiguration={"retrierRetryCount": spent},
        inspectionLevel="DEBUG",
    )
    assert response == {  # recorded (test_state_configuration_retrier_retry_count)
        "status": status,
        "error": "MockException",
        "cause": "Mock the cause of the error.",
        "inspectionData": {
            "input": {"Values": [1]},
            "afterArguments": {"FunctionName": "foo", "Payload": "bar"},
            "errorDetails": details,
        },
    }


CATCH = [
    {"ErrorEquals": ["MockException"], "Output": "{% $states.errorOutput %}", "Next": "OnMock"},
    {"ErrorEquals": ["States.TaskFailed"], "Output": "{% $states.input %}", "Next": "OnFailure"},
]


def test_catcher_gives_caught_error_with_its_next_state_and_output() -> None:
    response = run(jsonata_task(Catch=CATCH), HELLO, mock=MOCK_ERROR, inspectionLevel="DEBUG")
    assert response == {  # recorded shape (test_state_task_catch_error)
        "status": "CAUGHT_ERROR",
        "error": "MockException",
        "cause": "Mock the cause of the error.",
        "nextState": "OnMock",
        "output": {"Error": "MockException", "Cause": "Mock the cause of the error."},
        "inspectionData": {
            "input": HELLO,
            "afterArguments": {"FunctionName": "foo", "Payload": "bar"},
            "errorDetails": {"catchIndex": 0},
        },
    }
    other = {"errorOutput": {"error": "Boom", "cause": "x"}}
    response = run(jsonata_task(Catch=CATCH), HELLO, mock=other, inspectionLevel="DEBUG")
    # States.TaskFailed matches any task error: the second catcher.
    assert (response["nextState"], response["output"]) == ("OnFailure", HELLO)
    assert response["inspectionData"]["errorDetails"] == {"catchIndex": 1}


def test_spent_retrier_falls_through_to_catch() -> None:
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handler"}]
    state = task(Retry=[{"ErrorEquals": ["MockException"], "MaxAttempts": 1}], Catch=catch)
    response = run(
        state,
        {"a": 1},
        mock=MOCK_ERROR,
        stateConfiguration={"retrierRetryCount": 1},
        inspectionLevel="DEBUG",
    )
    assert response["status"] == "CAUGHT_ERROR"
    assert response["output"] == {
        "a": 1,
        "error": {"Error": "MockException", "Cause": "Mock the cause of the error."},
    }
    assert response["inspectionData"]["errorDetails"] == {"retryIndex": 0, "catchIndex": 0}


def test_unhandled_task_error_fails() -> None:
    response = run(jsonata_task(Retry=RETRY), HELLO, mock={"errorOutput": {"error": "Other"}})
    assert response == {"status": "FAILED", "error": "Other"}


def test_catch_assign_updates_variables() -> None:
    catch = [{"ErrorEquals": ["States.ALL"], "Assign": {"failed.$": "$.Error"}, "Next": "H"}]
    response = run(
        task(Catch=catch),
        {},
        mock=MOCK_ERROR,
        variables=json.dumps({"before": 1}),
        inspectionLevel="DEBUG",
    )
    variables = response["inspectionData"]["variables"]
    assert variables == {"before": 1, "failed": "MockException"}


# --- Task: served by invoke --------------------------------------------------------------------


def test_task_without_mock_needs_a_role() -> None:
    assert refused(task(), input="{}") == (
        "ValidationException",
        "RoleArn must be specified when testing a Task state",  # recorded
    )


def test_lambda_task_is_served_by_invoke() -> None:
    calls: list[tuple[str, Any]] = []

    def invoke(name: str, payload: Any) -> Any:
        calls.append((name, payload))
        return {"greeting": f"hello {payload['who']}"}

    arn = "arn:aws:lambda:us-east-1:123456789012:function:greet"
    state = {"Type": "Task", "Resource": arn, "End": True}
    response = run(state, {"who": "Ann"}, roleArn=ROLE, invoke=invoke)
    assert response == {"status": "SUCCEEDED", "output": {"greeting": "hello Ann"}}
    wrapped = task(Parameters={"FunctionName": arn, "Payload": {"who": "Bo"}})
    response = run(wrapped, {}, roleArn=ROLE, invoke=invoke)
    assert response["output"]["Payload"] == {"greeting": "hello Bo"}
    assert response["output"]["StatusCode"] == 200
    assert calls == [("greet", {"who": "Ann"}), ("greet", {"who": "Bo"})]


def test_invoke_failure_is_a_task_failure() -> None:
    def invoke(name: str, payload: Any) -> Any:
        raise StatesError("Custom.Error", "went wrong")

    catch = [{"ErrorEquals": ["Custom.Error"], "Next": "Handler"}]
    state = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "Catch": catch}
    response = run({**state, "End": True}, {}, roleArn=ROLE, invoke=invoke)
    assert (response["status"], response["nextState"]) == ("CAUGHT_ERROR", "Handler")
    assert response["output"] == {"Error": "Custom.Error", "Cause": "went wrong"}


def test_without_invoke_a_lambda_task_is_not_found() -> None:
    response = run(task(Parameters={"FunctionName": "nope"}), {}, roleArn=ROLE)
    assert (response["status"], response["error"]) == (
        "FAILED",
        "Lambda.ResourceNotFoundException",
    )
    assert "function:nope" in response["cause"]
    other = {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": True}
    assert run(other, {}, roleArn=ROLE)["error"] == "States.Runtime"


# --- variables, context, stateName ---------------------------------------------------------------


def test_variables_in_and_assign_out() -> None:
    state = {
        "QueryLanguage": "JSONata",
        "Type": "Pass",
        "Output": {"name": "{% $who %}", "context": "{% $states.context %}"},
        "Assign": {"count": "{% $count + 1 %}"},
        "End": True,
    }
    variables = json.dumps({"who": "Ann", "count": 1})
    response = run(state, {}, variables=variables, inspectionLevel="DEBUG")
    assert response["output"]["name"] == "Ann"
    assert response["inspectionData"] == {"input": {}, "variables": {"who": "Ann", "count": 2}}
    context = response["output"]["context"]
    # recorded: the tested state is "StateName", the execution an Express one, no role
    assert context["State"] == {"Name": "StateName", "EnteredTime": "2025-01-15T10:30:00.000Z"}
    assert context["Execution"]["RoleArn"] is None
    assert ":express:" in context["Execution"]["Id"]
    assert "RedriveCount" not in context["Execution"]


def test_context_replaces_the_parts_it_names() -> None:
    given = {"Execution": {"Id": "arn:aws:states:::execution:M:e", "Name": "e"}, "State": {}}
    state = task(ResultSelector={"context.$": "$$"})
    response = run(state, {}, context=json.dumps(given), mock={"result": "{}"})
    assert response["output"]["context"]["Execution"] == given["Execution"]
    assert response["output"]["context"]["State"] == {}


@pytest.mark.parametrize(
    ("context", "message"),
    [  # recorded
        ({"Execution": {"Id": 1}}, "Execution.Id must be a string"),
        ({"Map": {}}, "'Map' field is not supported when mocking a Context object"),
        ({"Execution": {"pokemon": "squirtle"}}, "Field 'pokemon' is not allowed"),
        ({"Pokedex": {}}, "Field 'Pokedex' is not allowed"),
        (
            {"Task": {"Token": "t"}},
            "Context object contains 'Task' when state is not a Task state with a '.sync' "
            "or '.waitForTaskToken' service integration pattern",
        ),
    ],
)
def test_invalid_context_is_refused(context: dict[str, Any], message: str) -> None:
    mock = {"result": "{}"}
    code, text = refused(task(), context=json.dumps(context), mock=mock)
    assert (code, text) == ("ValidationException", f"Invalid Context object provided: {message}")


def test_context_needs_a_mock() -> None:
    assert refused(task(), context="{}", roleArn=ROLE)[0] == "ValidationException"


MACHINE = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Pass", "Result": 1, "ResultPath": "$.n", "Next": "Items"},
        "Items": {
            "Type": "Map",
            "ItemProcessor": {
                "StartAt": "Inner",
                "States": {
                    "Inner": {"Type": "Pass", "OutputPath": "$.v", "Next": "Last"},
                    "Last": {"Type": "Succeed"},
                },
            },
            "End": True,
        },
    },
}


def test_state_name_picks_a_state_of_a_full_definition() -> None:
    response = run(MACHINE, {}, stateName="First")
    assert response == {"status": "SUCCEEDED", "output": {"n": 1}, "nextState": "Items"}
    # a state of a Map's ItemProcessor can be tested too (recorded)
    inner = run(MACHINE, {"v": 3}, stateName="Inner")
    assert inner == {"status": "SUCCEEDED", "output": 3, "nextState": "Last"}
    assert refused(MACHINE, stateName="Missing") == (
        "ValidationException",
        "State not found in definition",  # recorded
    )


# --- refusals ------------------------------------------------------------------------------------


def test_invalid_definitions_are_refused_with_the_asl_message() -> None:
    code, message = refused({"Type": "Bogus", "End": True})
    assert code == "InvalidDefinition"
    assert message.startswith("Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED")
    assert "at /States/StateName/Type" in message
    broken = {"StartAt": "Nowhere", "States": {"A": {"Type": "Pass", "End": True}}}
    code, message = refused(broken, stateName="A")
    assert code == "InvalidDefinition"
    assert "Nowhere" in message
    assert refused("{not json")[0] == "InvalidDefinition"


BRANCH = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
OTHER_BRANCH = {"StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": True}}}
MAP = {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": BRANCH, "End": True}
PARALLEL = {"Type": "Parallel", "Branches": [BRANCH, OTHER_BRANCH], "End": True}


@pytest.mark.parametrize("state", [MAP, PARALLEL], ids=["Map", "Parallel"])
def test_map_and_parallel_need_a_mock(state: dict[str, Any]) -> None:
    assert refused(state, input="{}") == (
        "InvalidDefinition",
        "TestState API does not support Map or Parallel states. Supported state types "
        "include: [Task, Wait, Pass, Succeed, Fail, Choice]",  # recorded
    )


@pytest.mark.parametrize(
    ("state", "request_fields", "message"),
    [  # recorded
        (
            {"Type": "Pass", "End": True},
            {"mock": {"result": "{}"}},
            "State type 'Pass' is not supported when a mock is specified",
        ),
        (
            task(),
            {"mock": {"result": "{}", "errorOutput": {"error": "E"}}},
            "A test mock should have only one of the following fields: [result, errorOutput].",
        ),
        (
            task(),
            {"mock": {"result": "{}"}, "revealSecrets": True},
            "TestState does not support RevealSecrets when a mock is specified.",
        ),
        (
            task(),
            {"mock": {"result": "not JSON", "fieldValidationMode": "NONE"}},
            "Mocked result must be valid JSON",
        ),
        (MAP, {"mock": {"result": "{}"}}, "Mocked result must be an array."),
        (
            {**MAP, "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject"}},
            {"mock": {"result": "[]"}},
            "Mocked result must be a JSON object.",
        ),
    ],
)
def test_bad_mocks_are_refused(
    state: dict[str, Any], request_fields: dict[str, Any], message: str
) -> None:
    assert refused(state, **request_fields) == ("ValidationException", message)


def test_activity_task_needs_a_mock() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:activity:approve"
    state = {"Type": "Task", "Resource": arn, "End": True}
    assert refused(state, roleArn=ROLE)[0] == "ValidationException"
    assert run(state, {}, mock={"result": '{"ok": true}'})["output"] == {"ok": True}


def test_bad_input_and_variables_are_refused() -> None:
    assert refused({"Type": "Succeed"}, input="{")[0] == "InvalidExecutionInput"
    assert refused({"Type": "Succeed"}, variables="[1]")[0] == "ValidationException"


# --- mocked results against the API's output shape ---------------------------------------------


START = {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution", "End": True}
PUT_EVENTS = {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents", "End": True}


@pytest.mark.parametrize(
    ("state", "result", "mode", "problem"),
    [  # recorded messages
        (START, {"executionArn": "a", "startDate": "d"}, None, "Required field 'ExecutionArn' is missing"),
        (START, {"ExecutionArn": "a", "StartDate": True}, None, "Field 'StartDate' must be a string"),
        (PUT_EVENTS, {"Entries": [{"EventId": "a"}, {"EventId": 1}]}, None, "Field 'EventId' must be a string"),
        (PUT_EVENTS, {"Entries": {}}, "PRESENT", "Field 'Entries' must be an array"),
        (task(), {"StatusCode": "200"}, None, "Field 'StatusCode' must be a number"),
    ],
)  # fmt: skip
def test_mocked_result_is_checked_against_the_api(
    state: dict[str, Any], result: Any, mode: str | None, problem: str
) -> None:
    mock: dict[str, Any] = {"result": json.dumps(result)}
    if mode is not None:
        mock["fieldValidationMode"] = mode
    assert refused(state, mock=mock) == (
        "ValidationException",
        f"Mock result schema validation error: {problem}",
    )


def test_lenient_validation_modes_and_unknown_fields() -> None:
    assert run(PUT_EVENTS, mock={"result": '{"random": "json"}'})["output"] == {"random": "json"}
    present = {"result": '{"StartDate": "d"}', "fieldValidationMode": "PRESENT"}
    assert run(START, mock=present)["status"] == "SUCCEEDED"
    anything = {"result": '{"ExecutionArn": 1}', "fieldValidationMode": "NONE"}
    assert run(START, mock=anything)["output"] == {"ExecutionArn": 1}


# --- Map and Parallel with mocks -----------------------------------------------------------------

DISTRIBUTED = {**BRANCH, "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}}


def test_map_reports_its_item_stages() -> None:
    state = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
        "MaxConcurrency": 2,
        "ItemProcessor": DISTRIBUTED,
        "ToleratedFailureCount": 1,
        "ResultPath": "$.results",
        "Next": "After",
    }
    source = {"items": ["a", "b"]}
    response = run(state, source, mock={"result": '["A", "B"]'}, inspectionLevel="DEBUG")
    assert response == {
        "status": "SUCCEEDED",
        "output": {"items": ["a", "b"], "results": ["A", "B"]},
        "nextState": "After",
        "inspectionData": {
            "input": source,
            "afterInputPath": source,
            "afterItemsPath": ["a", "b"],
            "afterItemSelector": [{"value": "a", "index": 0}, {"value": "b", "index": 1}],
            "maxConcurrency": 2,
            "toleratedFailureCount": 1,
            "afterResultSelector": ["A", "B"],
            "afterResultPath": {"items": ["a", "b"], "results": ["A", "B"]},
        },
    }


THRESHOLD_MAP = {
    "Type": "Map",
    "QueryLanguage": "JSONata",
    "Items": "{% $states.input.Values %}",
    "ItemProcessor": DISTRIBUTED,
    "ToleratedFailureCount": 1,
    "Catch": [
        {"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "HandleThreshold"}
    ],
    "End": True,
}


@pytest.mark.parametrize(("failures", "status"), [(1, "SUCCEEDED"), (2, "CAUGHT_ERROR")])
def test_map_iteration_failures_beyond_the_threshold(failures: int, status: str) -> None:
    response = run(
        THRESHOLD_MAP,
        {"Values": [1, 2, 3]},
        mock={"result": "[0, 0, 1]"},
        stateConfiguration={"mapIterationFailureCount": failures},
        inspectionLevel="DEBUG",
    )
    assert response["status"] == status
    assert response["inspectionData"]["maxConcurrency"] == 0  # recorded: reported when unset
    if status == "CAUGHT_ERROR":  # recorded (BASE_MAP_STATE_CATCH)
        assert response["error"] == "States.ExceedToleratedFailureThreshold"
        assert response["cause"] == "The specified tolerated failure threshold was exceeded"
        assert response["nextState"] == "HandleThreshold"


def test_map_failures_are_ignored_without_a_threshold() -> None:
    state = {k: v for k, v in THRESHOLD_MAP.items() if k != "ToleratedFailureCount"}
    configuration = {"mapIterationFailureCount": 2}
    response = run(state, {"Values": [1]}, mock={"result": "[1]"}, stateConfiguration=configuration)
    assert response == {"status": "SUCCEEDED", "output": [1]}  # recorded (BASE_MAP_STATE)


def test_parallel_with_mocked_result_and_error() -> None:
    state = {"Type": "Parallel", "Branches": [BRANCH, OTHER_BRANCH], "Next": "After"}
    state["ResultSelector"] = {"first.$": "$[0]"}
    response = run(state, {"x": 1}, mock={"result": '[{"a": 1}, {"b": 2}]'})
    assert response == {"status": "SUCCEEDED", "output": {"first": {"a": 1}}, "nextState": "After"}
    retrying = {**PARALLEL, "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3}]}
    response = run(retrying, {}, mock=MOCK_ERROR, inspectionLevel="DEBUG")
    assert response["status"] == "RETRIABLE"
    assert response["inspectionData"]["errorDetails"] == {
        "retryIndex": 0,
        "retryBackoffIntervalSeconds": 3,
    }
