"""The ASGI application: the Step Functions API on ``POST /`` and a health endpoint."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flowstate.api.backend import Backend
from flowstate.api.protocol import (
    encode_json,
    error_response,
    operation_from_target,
    parse_body,
    success_response,
)
from flowstate.api.validation import DEFAULT_MAX_PAYLOAD_BYTES, RequestValidator
from flowstate.service.errors import INTERNAL_FAILURE, UNKNOWN_OPERATION, ServiceError

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    backend: Backend, *, max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES
) -> Starlette:
    """The Step Functions HTTP API (AWS JSON 1.0) over ``backend``.

    - ``POST /`` with ``X-Amz-Target: AWSStepFunctions.<Operation>``: the request is checked
      against botocore's Step Functions model, then handed to ``backend.dispatch``. The Host
      header is not looked at, so ``sync-<host>`` requests (StartSyncExecution, TestState) are
      served like any other.
    - ``GET /health`` and ``GET /_flowstate/health``: ``backend.health()`` as JSON, with status
      200 when it reports ``"status": "ok"`` and 503 otherwise (``"draining"``, ``"starting"``,
      no status at all, or ``health()`` raising, reported as ``{"status": "error"}``), so that
      a load balancer stops sending work to a node that is not ready.
    - The lifespan awaits ``backend.startup()`` before serving and ``backend.shutdown()`` after.

    ``max_payload_bytes`` is the UTF-8 size limit on execution input and task output (AWS:
    256 KiB); ``None`` lifts it. Errors the backend raises as ``ServiceError`` are sent as AWS
    sends them; any other exception is logged and answered 500 ``InternalFailure``.
    """
    validator = RequestValidator(max_payload_bytes=max_payload_bytes)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.startup()
        try:
            yield
        finally:
            await backend.shutdown()

    async def api(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        target = request.headers.get("x-amz-target")
        try:
            operation = operation_from_target(target)
            if not validator.is_operation(operation):
                raise ServiceError(UNKNOWN_OPERATION, f"Unknown operation: '{target}'")
            body = parse_body(await request.body())
            response = await backend.dispatch(operation, validator.validate(operation, body))
            return success_response(response, request_id)
        except ServiceError as error:
            return error_response(error.code, error.message, error.status, request_id)
        except Exception:
            # Never let a backend fault take the server down or leak a traceback to clients;
            # the request id ties the client's error to this log record.
            logger.exception("request %s (%s) failed", request_id, target)
            message = f"An internal error occurred (request id {request_id})"
            return error_response(INTERNAL_FAILURE, message, 500, request_id)

    async def health(request: Request) -> Response:
        report: Any
        try:
            report = backend.health()
            body = encode_json(report)
            healthy = isinstance(report, dict) and report.get("status") == "ok"
        except Exception:
            logger.exception("the backend's health check failed")
            body = encode_json({"status": "error"})
            healthy = False
        return Response(body, status_code=200 if healthy else 503, media_type="application/json")

    return Starlette(
        routes=[
            Route("/", api, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/_flowstate/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
