"""The AWS JSON 1.0 wire format: read a request, write a response or an error.

A request is ``POST /`` with ``X-Amz-Target: AWSStepFunctions.<Operation>`` and a JSON object
body. A response is the JSON object with ``Content-Type: application/x-amz-json-1.0`` and an
``x-amzn-RequestId`` header; an error is ``{"__type": <code>, "message": <text>}`` with the
error's HTTP status and an ``x-amzn-ErrorType`` header.

Where AWS answers a malformed request with a bare ``{"__type": ...}`` (no message), flowstate
adds a message that says what is wrong; the code is AWS's, which is what SDKs act on. AWS
writes ``__type`` with a namespace (``com.amazon.coral.validate#ValidationException``,
``com.amazonaws.swf.service.v2.model#ExecutionDoesNotExist``) that every SDK strips; flowstate
sends the bare code. The request's Content-Type is not checked: SDKs always send
``application/x-amz-json-1.0``, and AWS's answers to other types (an XML 404) help no one.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import Response

from flowstate.service.errors import SERIALIZATION, UNKNOWN_OPERATION, ServiceError

__all__ = [
    "CONTENT_TYPE",
    "TARGET_PREFIX",
    "encode_json",
    "epoch_seconds",
    "error_response",
    "operation_from_target",
    "parse_body",
    "success_response",
]

CONTENT_TYPE = "application/x-amz-json-1.0"
# botocore's Step Functions model: metadata.targetPrefix.
TARGET_PREFIX = "AWSStepFunctions."

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def operation_from_target(target: str | None) -> str:
    """The operation name in an ``X-Amz-Target`` header value.

    AWS answers a missing header, another service's prefix, a bare operation name and a
    lower-cased target alike: 400 ``UnknownOperationException`` (recorded against a Coral JSON
    service; the body carries no message there).
    """
    if not target:
        raise ServiceError(UNKNOWN_OPERATION, "Missing X-Amz-Target header")
    prefix, dot, operation = target.partition(".")
    if not dot or f"{prefix}." != TARGET_PREFIX or not operation:
        raise ServiceError(UNKNOWN_OPERATION, f"Unknown operation: '{target}'")
    return operation


def parse_body(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}``.

    Anything else is a ``SerializationException``, as AWS's JSON front end answers it.
    """
    if not body.strip():
        return {}
    try:
        value = json.loads(
            body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except RecursionError:
        raise ServiceError(SERIALIZATION, "The request body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ServiceError(SERIALIZATION, f"The request body is not valid JSON: {exc}") from None
    if isinstance(value, list):
        # AWS's own message for a body that is an array.
        raise ServiceError(SERIALIZATION, "Start of list found where not expected")
    if not isinstance(value, dict):
        raise ServiceError(SERIALIZATION, "The request body must be a JSON object")
    return value


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (and AWS's parser) does not.
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def epoch_seconds(moment: datetime) -> float:
    """``moment`` as epoch seconds with millisecond precision, as AWS JSON services send times."""
    if moment.tzinfo is None:
        raise TypeError(f"naive datetime {moment.isoformat()} in a response; use aware UTC")
    return (moment - _EPOCH) // _MILLISECOND / 1000


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return epoch_seconds(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_json(payload: object) -> bytes:
    """Compact JSON; datetimes become epoch seconds; NaN and infinities are refused."""
    return json.dumps(
        payload, default=_json_default, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")


def success_response(payload: dict[str, Any], request_id: str) -> Response:
    """A 200 response carrying ``payload`` (AWS member names)."""
    if not isinstance(payload, dict):
        raise TypeError(f"the backend returned {type(payload).__name__}, not a dict")
    return Response(
        encode_json(payload),
        status_code=200,
        media_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id},
    )


def error_response(code: str, message: str, status: int, request_id: str) -> Response:
    """An AWS JSON 1.0 error: ``{"__type": code, "message": message}`` with ``status``."""
    return Response(
        encode_json({"__type": code, "message": message}),
        status_code=status,
        media_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code},
    )
