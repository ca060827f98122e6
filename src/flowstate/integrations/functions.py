"""Local Python functions served as Lambda functions.

A Task whose resource is a Lambda function ARN (``arn:aws:lambda:<region>:<account>:function:
<name>[:<qualifier>]``) or ``arn:aws:states:::lambda:invoke`` runs the Python callable
registered under ``<name>`` — whatever the account and region — as ``handler(event, context)``.
"""

from __future__ import annotations

import inspect
import json
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flowstate.asl.errors import StatesError

__all__ = [
    "FunctionRegistry",
    "LambdaCall",
    "LambdaContext",
    "invoke_async_function",
    "invoke_function",
    "invoke_response",
    "is_lambda_resource",
    "lambda_function_name",
    "prepare_lambda_call",
    "unhosted_resource",
]

Handler = Callable[[Any, Any], Any]


class LambdaContext:
    """The parts of AWS Lambda's context object a handler commonly reads."""

    def __init__(
        self, function_name: str, request_id: str, idempotency_key: str, region: str, account: str
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.aws_request_id = request_id
        self.idempotency_key = idempotency_key
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = 128

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class FunctionRegistry:
    """Name → handler. Names may contain ``-`` and other non-identifier characters."""

    def __init__(self, functions: Mapping[str, Handler] | None = None) -> None:
        self._functions: dict[str, Handler] = dict(functions or {})

    def register(self, name: str, handler: Handler) -> None:
        self._functions[name] = handler

    def get(self, name: str) -> Handler | None:
        return self._functions.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def __len__(self) -> int:
        return len(self._functions)


def lambda_function_name(reference: str) -> str:
    """``name``, ``name:qualifier``, a partial or a full function ARN → the function name."""
    if reference.startswith("arn:"):
        parts = reference.split(":")
        return parts[6] if len(parts) > 6 else reference
    parts = reference.split(":")
    if len(parts) >= 3 and parts[1] == "function":  # account:function:name[:qualifier]
        return parts[2]
    return parts[0]


def _error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    # Lambda's Python runtime lists the frames from the handler down, none of its own.
    frames = traceback.extract_tb(exc.__traceback__)[1:]
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def _marshal(result: Any, request_id: str) -> Any:
    try:
        # A non-JSON result fails as Lambda fails to serialise it.
        return json.loads(json.dumps(result))
    except (TypeError, ValueError) as exc:
        payload = {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
            "requestId": request_id,
            "stackTrace": [],
        }
        raise StatesError("Runtime.MarshalError", json.dumps(payload)) from None


def invoke_function(
    handler: Handler,
    name: str,
    event: Any,
    *,
    idempotency_key: str,
    region: str,
    account: str,
) -> Any:
    """Call ``handler``; a raised exception becomes Lambda's function error as a StatesError."""
    request_id = str(uuid.uuid4())
    context = LambdaContext(name, request_id, idempotency_key, region, account)
    try:
        result = handler(event, context)
    except Exception as exc:
        payload = _error_payload(exc, request_id)
        raise StatesError(type(exc).__name__, json.dumps(payload)) from None
    return _marshal(result, request_id)


async def invoke_async_function(
    handler: Handler,
    name: str,
    event: Any,
    *,
    idempotency_key: str,
    region: str,
    account: str,
) -> Any:
    """``invoke_function`` for an ``async def`` handler, awaited on the caller's loop."""
    request_id = str(uuid.uuid4())
    context = LambdaContext(name, request_id, idempotency_key, region, account)
    try:
        result = await handler(event, context)
    except Exception as exc:
        payload = _error_payload(exc, request_id)
        raise StatesError(type(exc).__name__, json.dumps(payload)) from None
    return _marshal(result, request_id)


def unhosted_resource(resource: str) -> StatesError:
    """The failure of a Task whose resource flowstate does not serve (yet)."""
    return StatesError(
        "States.Runtime",
        f"flowstate does not host the resource '{resource}' "
        "(service integrations arrive with the task issue)",
    )


def is_lambda_resource(resource: str) -> bool:
    return resource.startswith(("arn:aws:lambda:", "arn:aws:states:::lambda:invoke"))


@dataclass(frozen=True, slots=True)
class LambdaCall:
    """A resolved Lambda task: which handler, with what event, shaped how."""

    handler: Handler
    name: str
    event: Any
    invoke_api: bool  # arn:aws:states:::lambda:invoke: the result is wrapped as AWS wraps it
    idempotency_key: str
    region: str
    account: str

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    def run(self) -> Any:
        result = invoke_function(
            self.handler,
            self.name,
            self.event,
            idempotency_key=self.idempotency_key,
            region=self.region,
            account=self.account,
        )
        return invoke_response(result) if self.invoke_api else result

    async def run_async(self) -> Any:
        result = await invoke_async_function(
            self.handler,
            self.name,
            self.event,
            idempotency_key=self.idempotency_key,
            region=self.region,
            account=self.account,
        )
        return invoke_response(result) if self.invoke_api else result


def prepare_lambda_call(
    resource: str,
    parameters: Any,
    *,
    idempotency_key: str,
    functions: FunctionRegistry,
    region: str,
    account: str,
) -> LambdaCall:
    """Resolve a Lambda Task to its local handler; Lambda's ResourceNotFoundException if no
    function of that name is registered."""
    invoke_api = resource.startswith("arn:aws:states:::lambda:invoke")
    if invoke_api:
        reference = parameters.get("FunctionName", "") if isinstance(parameters, dict) else ""
        event = parameters.get("Payload") if isinstance(parameters, dict) else None
    else:
        reference = resource
        event = parameters
    name = lambda_function_name(str(reference))
    handler = functions.get(name)
    if handler is None:
        arn = (
            str(reference)
            if str(reference).startswith("arn:")
            else f"arn:aws:lambda:{region}:{account}:function:{name}"
        )
        if arn.count(":") == 6:
            arn += ":$LATEST"
        raise StatesError(
            "Lambda.ResourceNotFoundException",
            f"Function not found: {arn} (Service: AWSLambda; Status Code: 404; Error "
            f"Code: ResourceNotFoundException; Request ID: {uuid.uuid4()}; Proxy: null)",
        )
    return LambdaCall(handler, name, event, invoke_api, idempotency_key, region, account)


def invoke_response(payload: Any) -> dict[str, Any]:
    """The ``lambda:invoke`` integration's result, shaped as AWS returns it."""
    request_id = str(uuid.uuid4())
    length = str(len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False)))
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    return {
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "X-Amz-Executed-Version": ["$LATEST"],
                "x-amzn-Remapped-Content-Length": ["0"],
                "Connection": ["keep-alive"],
                "x-amzn-RequestId": [request_id],
                "Content-Length": [length],
                "Date": [date],
                "Content-Type": ["application/json"],
            },
            "HttpHeaders": {
                "Connection": "keep-alive",
                "Content-Length": length,
                "Content-Type": "application/json",
                "Date": date,
                "X-Amz-Executed-Version": "$LATEST",
                "x-amzn-Remapped-Content-Length": "0",
                "x-amzn-RequestId": request_id,
            },
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    }
