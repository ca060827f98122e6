"""The in-memory runtime: run_definition, LocalRuntime, and local Python functions as Lambda.

Lambda behaviour follows the recorded cases (error_handling/test_task_lambda*,
services/test_lambda_task_service*) and ``../shared/conformance/lambdas.json``: a function error
is reported with the exception's class name as the error and Lambda's error payload
``{"errorMessage", "errorType", "requestId", "stackTrace"}`` as the cause, whose stack trace
starts at the handler's frame.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowstate.asl.errors import DefinitionError
from flowstate.asl.parse import parse_definition
from flowstate.integrations.functions import FunctionRegistry, lambda_function_name
from flowstate.runtime.clock import VirtualClock
from flowstate.runtime.local import (
    ExecutionResult,
    InvalidExecutionInput,
    LocalRuntime,
    parse_execution_input,
    run_definition,
)

ACCOUNT = "123456789012"
FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:"
INVOKE = "arn:aws:states:::lambda:invoke"


def _task(resource: str, **fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": resource, "End": True, **fields}},
    }


def _invoke(function_name: str) -> dict[str, Any]:
    return _task(INVOKE, Parameters={"FunctionName": function_name, "Payload.$": "$"})


def _out(result: ExecutionResult) -> Any:
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output is not None
    return json.loads(result.output)


class CustomError(Exception):
    pass


def _helper_that_raises() -> None:
    raise CustomError("deep down")


def _handler_calling_helper(event: Any, context: Any) -> Any:
    _helper_that_raises()


# --- function errors -----------------------------------------------------------------------


def test_function_error_uses_the_exception_class_name(run: Any) -> None:
    def handler(event: Any, context: Any) -> Any:
        raise CustomError("card ending 0000 was declined")

    result = run(_task(FN + "pay"), functions={"pay": handler})
    assert (result.status, result.error) == ("FAILED", "CustomError")
    cause = json.loads(result.cause or "")
    assert list(cause) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert cause["errorMessage"] == "card ending 0000 was declined"
    assert cause["errorType"] == "CustomError"
    uuid.UUID(cause["requestId"])


def test_function_error_cause_is_lambda_json_text(run: Any) -> None:
    # AWS's cause text is Python's json.dumps of the payload (", " and ": " separators).
    def handler(event: Any, context: Any) -> Any:
        raise CustomError()

    result = run(_task(FN + "f"), functions={"f": handler})
    assert (result.cause or "").startswith('{"errorMessage": "", "errorType": "CustomError", ')


def test_stack_trace_starts_at_the_handler_frame(run: Any) -> None:
    result = run(_task(FN + "f"), functions={"f": _handler_calling_helper})
    trace = json.loads(result.cause or "")["stackTrace"]
    this_file = str(Path(__file__))
    assert len(trace) == 2
    assert trace[0].startswith(f'  File "{this_file}", line ')
    assert trace[0].endswith(", in _handler_calling_helper\n    _helper_that_raises()\n")
    assert ", in _helper_that_raises\n" in trace[1]
    assert not any("flowstate" in frame.split(",")[0] for frame in trace)


def test_stack_trace_of_a_lambda_expression_handler(run: Any) -> None:
    result = run(_task(FN + "f"), functions={"f": lambda e, c: 1 / 0})
    assert result.error == "ZeroDivisionError"
    trace = json.loads(result.cause or "")["stackTrace"]
    assert len(trace) == 1
    assert "in <lambda>" in trace[0]
    assert "src/flowstate" not in trace[0]


def test_function_error_through_lambda_invoke(run: Any) -> None:
    # Recorded case error_handling/test_task_service_lambda_test_raise_exception.
    def handler(event: Any, context: Any) -> Any:
        raise Exception("Some exception was raised.")

    result = run(_invoke("fails"), {}, functions={"fails": handler})
    assert result.error == "Exception"
    cause = json.loads(result.cause or "")
    assert cause["errorMessage"] == "Some exception was raised."
    assert cause["errorType"] == "Exception"


def test_missing_function_is_resource_not_found(run: Any) -> None:
    # Recorded case error_handling/test_task_service_lambda_test_no_such_function.
    result = run(_invoke("no-such-function"), {})
    assert result.status == "FAILED"
    assert result.error == "Lambda.ResourceNotFoundException"
    pattern = (
        r"Function not found: arn:aws:lambda:us-east-1:123456789012:function:no-such-function"
        r":\$LATEST \(Service: AWSLambda; Status Code: 404; Error Code: "
        r"ResourceNotFoundException; Request ID: [0-9a-f-]{36}; Proxy: null\)"
    )
    assert re.fullmatch(pattern, result.cause or ""), result.cause


def test_missing_function_by_arn_resource(run: Any) -> None:
    result = run(_task(FN + "absent"), {})
    assert result.error == "Lambda.ResourceNotFoundException"
    assert (result.cause or "").startswith(f"Function not found: {FN}absent")


def test_missing_function_can_be_caught(run: Any) -> None:
    definition = _invoke("absent")
    definition["States"]["T"]["Catch"] = [
        {"ErrorEquals": ["Lambda.ResourceNotFoundException"], "ResultPath": "$.e", "Next": "H"}
    ]
    definition["States"]["H"] = {"Type": "Pass", "End": True}
    output = _out(run(definition, {"k": 1}))
    assert output["k"] == 1
    assert output["e"]["Error"] == "Lambda.ResourceNotFoundException"


def test_non_json_result_fails_to_marshal(run: Any) -> None:
    result = run(_task(FN + "f"), functions={"f": lambda e, c: {1, 2}})
    assert result.status == "FAILED"
    assert result.error == "Runtime.MarshalError"
    assert json.loads(result.cause or "")["errorType"] == "Runtime.MarshalError"


def test_result_over_256_kib_is_data_limit_exceeded(run: Any) -> None:
    result = run(_task(FN + "big"), functions={"big": lambda e, c: "a" * (257 * 1024)})
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")


# --- successful invocations ----------------------------------------------------------------


def test_lambda_arn_with_any_account_and_region_runs_the_local_function(run: Any) -> None:
    resource = "arn:aws:lambda:eu-west-3:999999999999:function:order-verify"
    result = run(_task(resource), {"n": 2}, functions={"order-verify": lambda e, c: e["n"] * 2})
    assert _out(result) == 4


def test_qualified_function_arn_uses_the_function_name(run: Any) -> None:
    result = run(_task(FN + "f:prod"), {"v": 1}, functions={"f": lambda e, c: "ran"})
    assert _out(result) == "ran"


def test_lambda_invoke_response_shape(run: Any) -> None:
    result = run(_invoke("order-echo"), {"a": [1, 2]}, functions={"order-echo": lambda e, c: e})
    output = _out(result)
    assert output["Payload"] == {"a": [1, 2]}
    assert output["StatusCode"] == 200
    assert output["ExecutedVersion"] == "$LATEST"
    metadata = output["SdkHttpMetadata"]
    assert metadata["HttpStatusCode"] == 200
    assert metadata["HttpHeaders"]["Content-Length"].isdigit()
    assert metadata["HttpHeaders"]["x-amzn-RequestId"] == output["SdkResponseMetadata"]["RequestId"]


def test_lambda_invoke_with_payload_selector(run: Any) -> None:
    definition = _invoke("f")
    definition["States"]["T"]["ResultSelector"] = {"body.$": "$.Payload"}
    assert _out(run(definition, {"x": 1}, functions={"f": lambda e, c: e["x"] + 1})) == {"body": 2}


@pytest.mark.parametrize(
    "reference",
    [
        "order-verify",
        "order-verify:live",
        f"{ACCOUNT}:function:order-verify",
        f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:order-verify",
        f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:order-verify:7",
    ],
)
def test_lambda_invoke_function_name_forms(run: Any, reference: str) -> None:
    assert lambda_function_name(reference) == "order-verify"
    result = run(_invoke(reference), {}, functions={"order-verify": lambda e, c: "hit"})
    assert _out(result)["Payload"] == "hit"


def test_handler_receives_a_lambda_context(run: Any) -> None:
    seen: dict[str, Any] = {}

    def handler(event: Any, context: Any) -> Any:
        seen["name"] = context.function_name
        seen["arn"] = context.invoked_function_arn
        seen["request"] = context.aws_request_id
        seen["remaining"] = context.get_remaining_time_in_millis()
        seen["key"] = context.idempotency_key
        return None

    result = run(_task(FN + "ctx-fn"), functions={"ctx-fn": handler})
    assert _out(result) is None
    assert seen["name"] == "ctx-fn"
    assert seen["arn"] == FN + "ctx-fn"
    uuid.UUID(seen["request"])
    assert seen["remaining"] > 0
    assert seen["key"]


def test_each_retry_attempt_gets_a_new_idempotency_key(run: Any) -> None:
    keys: list[str] = []

    def handler(event: Any, context: Any) -> Any:
        keys.append(context.idempotency_key)
        if len(keys) < 3:
            raise CustomError("again")
        return "ok"

    definition = _task(FN + "f", Retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1}])
    assert _out(run(definition, functions={"f": handler})) == "ok"
    assert len(set(keys)) == 3


def test_function_registry_accepts_names_with_dashes() -> None:
    registry = FunctionRegistry({"a-b": lambda e, c: 1})
    registry.register("c.d", lambda e, c: 2)
    assert "a-b" in registry
    assert "c.d" in registry
    assert len(registry) == 2
    assert registry.get("missing") is None


def test_run_definition_accepts_a_registry(t0: datetime) -> None:
    registry = FunctionRegistry()
    registry.register("double", lambda e, c: e * 2)
    result = run_definition(
        json.dumps(_task(FN + "double")), "21", clock=VirtualClock(t0), functions=registry
    )
    assert _out(result) == 42


def test_unhosted_service_integration_fails_the_task(run: Any) -> None:
    result = run(_task("arn:aws:states:::sqs:sendMessage", Parameters={"QueueUrl": "q"}))
    assert result.status == "FAILED"
    assert "sqs:sendMessage" in (result.cause or "")


# --- run_definition / ExecutionResult ------------------------------------------------------


def test_run_definition_refuses_an_invalid_definition() -> None:
    with pytest.raises(DefinitionError) as info:
        run_definition('{"StartAt": "Missing", "States": {}}')
    assert info.value.code == "InvalidDefinition"
    assert info.value.message.startswith("Invalid State Machine Definition: ")


def test_run_definition_accepts_a_mapping_and_yaml(t0: datetime) -> None:
    mapping = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "End": True}}}
    assert _out(run_definition(mapping, clock=VirtualClock(t0))) == 1
    text = "StartAt: P\nStates:\n  P:\n    Type: Pass\n    Result: 2\n    End: true\n"
    assert _out(run_definition(text, clock=VirtualClock(t0))) == 2


def test_execution_arn_and_context(run: Any) -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "Parameters": {
                    "id.$": "$$.Execution.Id",
                    "sm.$": "$$.StateMachine.Id",
                    "smName.$": "$$.StateMachine.Name",
                    "role.$": "$$.Execution.RoleArn",
                },
                "End": True,
            }
        },
    }
    result = run(definition, state_machine_name="Orders", execution_name="run-1")
    prefix = f"arn:aws:states:us-east-1:{ACCOUNT}"
    assert result.execution_arn == f"{prefix}:execution:Orders:run-1"
    assert _out(result) == {
        "id": f"{prefix}:execution:Orders:run-1",
        "sm": f"{prefix}:stateMachine:Orders",
        "smName": "Orders",
        "role": f"arn:aws:iam::{ACCOUNT}:role/flowstate-execution-role",
    }


def test_execution_result_to_json_for_a_failure(run: Any) -> None:
    result = run({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "C"}}})
    assert result.to_json(include_history=False) == {"status": "FAILED", "error": "E", "cause": "C"}
    assert result.output is None


def test_execution_result_output_is_json_text(run: Any) -> None:
    result = run({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}, {"a": [1, "x"]})
    assert result.output == '{"a":[1,"x"]}'


# --- LocalRuntime with several executions --------------------------------------------------


def test_concurrent_executions_interleave_on_the_virtual_clock(t0: datetime) -> None:
    clock = VirtualClock(t0)
    runtime = LocalRuntime(clock=clock)
    machine = parse_definition(
        json.dumps(
            {
                "StartAt": "W",
                "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": True}},
            }
        )
    )
    long = runtime.start(machine, {"s": 100}, state_machine_name="M", execution_name="long")
    short = runtime.start(machine, {"s": 10}, state_machine_name="M", execution_name="short")
    assert (long.status, short.status) == ("RUNNING", "RUNNING")
    runtime.run_until_idle()
    assert (long.status, short.status) == ("SUCCEEDED", "SUCCEEDED")
    assert short.stop_time == t0 + timedelta(seconds=10)
    assert long.stop_time == t0 + timedelta(seconds=100)
    assert clock.now() == t0 + timedelta(seconds=100)


def test_runtime_without_history(t0: datetime) -> None:
    runtime = LocalRuntime(clock=VirtualClock(t0), record_history=False)
    machine = parse_definition('{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}')
    execution = runtime.start(machine, {"a": 1}, state_machine_name="M")
    runtime.run_until_idle()
    assert execution.status == "SUCCEEDED"
    assert execution.output == {"a": 1}
    assert execution.events == []


def test_a_timed_out_execution_stops_its_pending_timers(t0: datetime) -> None:
    clock = VirtualClock(t0)
    runtime = LocalRuntime(clock=clock)
    machine = parse_definition(
        '{"StartAt":"W","TimeoutSeconds":5,"States":{"W":{"Type":"Wait","Seconds":3600,"End":true}}}'
    )
    execution = runtime.start(machine, {}, state_machine_name="M")
    runtime.run_until_idle()
    assert execution.status == "TIMED_OUT"
    assert execution.stop_time == t0 + timedelta(seconds=5)
    # The one-hour wait never fired: the clock stopped at the timeout.
    assert clock.now() == t0 + timedelta(seconds=5)


def test_input_nested_beyond_the_parser_is_refused_as_invalid_input() -> None:
    from flowstate.runtime.local import InvalidExecutionInput

    definition = '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}'
    with pytest.raises(InvalidExecutionInput, match="nested too deeply"):
        run_definition(definition, "[" * 5000 + "]" * 5000)


@pytest.mark.parametrize("text", ['{"x": NaN}', '{"x": -Infinity}', "[1e400]"])
def test_execution_input_outside_json_numbers_is_refused(text: str) -> None:
    with pytest.raises(InvalidExecutionInput, match="Invalid execution input"):
        parse_execution_input(text)
