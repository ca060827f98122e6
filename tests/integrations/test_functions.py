"""Local functions as Lambda: names, context, errors, results, the lambda:invoke shape."""

from __future__ import annotations

import asyncio
import functools
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

import flowstate
from flowstate.asl.errors import StatesError
from flowstate.cli.functions import load_functions
from flowstate.integrations.functions import (
    FunctionRegistry,
    LambdaContext,
    invoke_function,
    prepare_lambda_call,
)
from flowstate.testing import run_workflow

FN = "arn:aws:lambda:eu-west-3:999999999999:function:"
INVOKE = "arn:aws:states:::lambda:invoke"


def task(resource: str, **fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": resource, "End": True, **fields}},
    }


class OrderRefused(Exception):
    pass


def _check(order: Any) -> None:
    raise OrderRefused(f"order {order} refused")


def refuse(event: Any, context: Any) -> Any:
    _check(event["order"])


def test_an_exception_is_the_error_and_lambdas_payload_the_cause() -> None:
    result = run_workflow(task(FN + "refuse"), {"order": 7}, functions={"refuse": refuse})
    assert (result.status, result.error) == ("FAILED", "OrderRefused")
    cause = json.loads(result.cause or "")
    assert list(cause) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert cause["errorMessage"] == "order 7 refused"
    assert cause["errorType"] == "OrderRefused"
    # The frames from the handler down, as traceback.format_list writes them; none of ours.
    frames = cause["stackTrace"]
    assert len(frames) == 2
    assert frames[0].startswith(f'  File "{__file__}", line ')
    assert frames[0].endswith(', in refuse\n    _check(event["order"])\n')
    assert frames[1].endswith(', in _check\n    raise OrderRefused(f"order {order} refused")\n')
    # AWS: a function ARN resource reports the payload with json.dumps' separators.
    assert result.cause is not None and result.cause.startswith('{"errorMessage": "order 7')


def test_lambda_invoke_reports_the_payload_compact_and_the_same_frames() -> None:
    definition = task(INVOKE, Parameters={"FunctionName": "refuse", "Payload.$": "$"})
    result = run_workflow(definition, {"order": 8}, functions={"refuse": refuse})
    assert result.error == "OrderRefused"
    assert result.cause is not None and result.cause.startswith('{"errorMessage":"order 8')
    assert len(json.loads(result.cause)["stackTrace"]) == 2


def test_async_handlers_fail_the_same_way() -> None:
    async def handler(event: Any, context: Any) -> Any:
        raise ValueError("bad value")

    result = run_workflow(task(FN + "h"), {}, functions={"h": handler})
    cause = json.loads(result.cause or "")
    assert (result.error, cause["errorType"], len(cause["stackTrace"])) == (
        "ValueError",
        "ValueError",
        1,
    )
    assert "in handler\n" in cause["stackTrace"][0]


def test_any_account_and_region_and_a_qualifier_resolve_by_name() -> None:
    seen: list[Any] = []

    def echo(event: Any, context: Any) -> Any:
        seen.append((context.function_name, context.aws_request_id, context.idempotency_key))
        assert 0 < context.get_remaining_time_in_millis() <= 30_000
        return {"got": event}

    definition = task(FN + "order-verify:prod", TimeoutSeconds=30)
    result = run_workflow(definition, {"a": 1}, functions={"order-verify": echo})
    assert (result.status, result.output) == ("SUCCEEDED", {"got": {"a": 1}})
    name, request_id, key = seen[0]
    assert name == "order-verify" and len(request_id) == 36
    assert key.endswith("/0")  # one key per attempt


def test_the_invoke_integration_is_shaped_as_aws_returns_it() -> None:
    definition = task(INVOKE, Parameters={"FunctionName": FN + "echo", "Payload": "[1, 2]"})
    result = run_workflow(definition, {}, functions={"echo": lambda event, context: event})
    output = result.output
    assert list(output) == [
        "ExecutedVersion",
        "Payload",
        "SdkHttpMetadata",
        "SdkResponseMetadata",
        "StatusCode",
    ]
    assert output["Payload"] == [1, 2]  # a string Payload is the request body itself
    headers = output["SdkHttpMetadata"]["HttpHeaders"]
    assert headers["Content-Length"] == str(len(json.dumps([1, 2])))
    assert output["StatusCode"] == 200
    no_payload = task(INVOKE, Parameters={"FunctionName": "echo"})
    result = run_workflow(no_payload, {}, functions={"echo": lambda event, context: event})
    assert result.output["Payload"] == {}


def test_a_missing_function_fails_as_lambda_fails_it() -> None:
    result = run_workflow(task(INVOKE, Parameters={"FunctionName": "nope"}), {})
    assert result.error == "Lambda.ResourceNotFoundException"
    assert result.cause is not None
    assert result.cause.startswith(
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope:$LATEST "
        "(Service: AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException;"
    )


def test_results_that_are_not_json() -> None:
    result = run_workflow(task(FN + "f"), {}, functions={"f": lambda e, c: {1, 2}})
    assert result.error == "Runtime.MarshalError"
    assert json.loads(result.cause or "")["errorMessage"].startswith("Unable to marshal response")
    raw = run_workflow(task(FN + "f"), {}, functions={"f": lambda e, c: b'{"a": [1]}'})
    assert raw.output == {"a": [1]}  # a raw payload that is JSON is its value
    text = run_workflow(task(FN + "f"), {}, functions={"f": lambda e, c: b"plain"})
    assert text.output == "plain"


def test_an_oversized_result_exceeds_the_payload_limit() -> None:
    result = run_workflow(task(FN + "big"), {}, functions={"big": lambda e, c: b"a" * 300_000})
    assert result.error == "States.DataLimitExceeded"
    assert result.cause == (
        f"The state/task '{FN}big' returned a result with a size exceeding the maximum number "
        "of bytes service limit."
    )


def test_functions_files_register_non_identifier_and_decorated_names(tmp_path: Path) -> None:
    module = tmp_path / "handlers.py"
    module.write_text(
        textwrap.dedent(
            """
            import flowstate
            from json import dumps  # imported helpers are not the module's functions

            def verify(event, context):
                return "verified"

            globals()["order-verify"] = verify

            @flowstate.function(name="charge-card", concurrency=2)
            def charge(event, context):
                return "charged"

            def _private(event, context):
                return None
            """
        )
    )
    loaded = load_functions([str(module)])
    assert set(loaded) == {"verify", "order-verify", "charge-card"}
    registry = FunctionRegistry(loaded)
    entry = registry.entry("charge-card")
    assert entry is not None and entry.concurrency == 2 and not entry.isolate


def test_the_decorator_refuses_a_limit_below_one() -> None:
    with pytest.raises(ValueError):
        flowstate.function(concurrency=0)


def test_invoke_function_and_prepare_for_front_ends() -> None:
    assert invoke_function(
        lambda e, c: [e, c.function_name],
        "f",
        1,
        idempotency_key="k",
        region="r",
        account="a",
    ) == [1, "f"]
    with pytest.raises(StatesError) as failure:
        prepare_lambda_call(
            INVOKE,
            {"FunctionName": "f", "Payload": "not json"},
            idempotency_key="k",
            functions=FunctionRegistry({"f": lambda e, c: e}),
            region="r",
            account="a",
        )
    assert failure.value.error == "Lambda.InvalidRequestContentException"


def test_context_remaining_time_counts_down() -> None:
    context = LambdaContext("f", "id", "key", "r", "a", timeout_seconds=0)
    assert context.get_remaining_time_in_millis() == 0
    assert context.invoked_function_arn == "arn:aws:lambda:r:a:function:f"


async def _comprehension(event: Any, context: Any) -> Any:
    return [x async for x in _agen()]


async def _awaits(event: Any, context: Any) -> Any:
    return await _comprehension(event, context)


async def _async_with(event: Any, context: Any) -> Any:
    async with _Nothing():
        return event


async def _async_for(event: Any, context: Any) -> Any:
    async for _ in _agen():
        pass
    return event


async def _agen() -> Any:
    yield 1


class _Nothing:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *args: Any) -> None:
        return None


def test_never_suspends_reads_the_handler_s_own_body() -> None:
    from flowstate.integrations.functions import never_suspends

    async def plain(event: Any, context: Any) -> Any:
        return event

    assert never_suspends(plain)
    assert never_suspends(lambda_to_async())
    # await, async with, async for: a suspension point each, and a comprehension's await
    assert not never_suspends(_awaits)
    assert not never_suspends(_async_with)
    assert not never_suspends(_async_for)
    assert not never_suspends(_comprehension)  # (an async comprehension awaits)
    # not an async def function, or not one whose code is read
    assert not never_suspends(refuse)
    assert not never_suspends(_agen)
    assert not never_suspends(functools.partial(plain, None))
    registry = FunctionRegistry({"plain": plain, "awaits": _awaits, "sync": refuse})
    entries = [registry.entry(name) for name in ("plain", "awaits", "sync")]
    assert [e.never_suspends for e in entries if e is not None] == [True, False, False]


def lambda_to_async() -> Any:
    async def inner(event: Any, context: Any) -> Any:
        async def nested() -> None:
            await asyncio.sleep(0)

        del nested  # defined, never awaited here: inner itself cannot suspend
        return event

    return inner
