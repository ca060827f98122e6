"""Local Python functions served as Lambda functions.

A Task whose resource is a Lambda function ARN (``arn:aws:lambda:<region>:<account>:function:
<name>[:<qualifier>]``) or ``arn:aws:states:::lambda:invoke`` runs the Python callable
registered under ``<name>`` — whatever the account and region — as ``handler(event, context)``.
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from flowstate.asl.errors import StatesError

__all__ = ["FunctionRegistry", "LambdaContext", "invoke_function", "lambda_function_name"]

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
