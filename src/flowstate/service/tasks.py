"""Task tokens and activity workers: SendTaskSuccess/Failure/Heartbeat and GetActivityTask.

A token (``$$.Task.Token``, or the one GetActivityTask hands a worker) names its execution and
task (``interpreter.tokens``), so every answer is decided from the store: a token flowstate did
not issue is ``InvalidToken``; one whose task has ended (it timed out, was answered, its
execution stopped) is ``TaskTimedOut`` as on AWS; one whose execution is gone altogether is
``TaskDoesNotExist``. CreateActivity and DeleteActivity pass through here so the engine knows
which activities exist.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flowstate.interpreter.messages import Event, TaskFailed, TaskHeartbeat, TaskSucceeded
from flowstate.interpreter.tokens import parse_task_token
from flowstate.runtime.engine import Engine, EngineClosed
from flowstate.runtime.external import TaskGone
from flowstate.service.catalog import Catalog
from flowstate.service.errors import (
    INVALID_OUTPUT,
    INVALID_TOKEN,
    SERVICE_UNAVAILABLE,
    TASK_DOES_NOT_EXIST,
    TASK_TIMED_OUT,
    ServiceError,
)

__all__ = ["ACTIVITY_POLL_SECONDS", "TaskTokens"]

# AWS: GetActivityTask waits up to 60 seconds for a task, then answers with no token.
ACTIVITY_POLL_SECONDS = 60.0


class TaskTokens:
    def __init__(self, engine: Engine, catalog: Catalog) -> None:
        self.engine = engine
        self.catalog = catalog
        self.poll_seconds = ACTIVITY_POLL_SECONDS

    async def _deliver(self, token: str, make: type[Event], *args: Any) -> dict[str, Any]:
        parsed = parse_task_token(token)
        if parsed is None:
            raise ServiceError(INVALID_TOKEN, "Invalid Token: 'Invalid token'")
        arn, task_id = parsed
        try:
            await self.engine.external.callback(arn, task_id, token, make(task_id, *args))
        except TaskGone:
            if self.engine.live(arn) is not None or (
                await self.engine.read(self.engine.store.get_execution, arn) is not None
            ):
                # AWS verbatim: answered, timed out or stopped, the task is gone.
                raise ServiceError(
                    TASK_TIMED_OUT, "Task Timed Out: 'Provided task does not exist anymore'"
                ) from None
            raise ServiceError(
                TASK_DOES_NOT_EXIST, "Task Does Not Exist: 'Provided task does not exist'"
            ) from None
        except EngineClosed as error:
            raise ServiceError(SERVICE_UNAVAILABLE, str(error), 503) from None
        return {}

    async def send_task_success(self, request: Mapping[str, Any]) -> dict[str, Any]:
        try:
            output = json.loads(request["output"])
            # A lone surrogate (``"\ud800"``) is JSON text but no Unicode: refused here rather
            # than failing the execution when its history is written.
            json.dumps(output, ensure_ascii=False).encode()
        except ValueError as error:  # (UnicodeEncodeError is one)
            raise ServiceError(
                INVALID_OUTPUT, f"Invalid Output: the output is not JSON text: {error}"
            ) from None
        return await self._deliver(request["taskToken"], TaskSucceeded, output)

    async def send_task_failure(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return await self._deliver(
            request["taskToken"], TaskFailed, request.get("error"), request.get("cause")
        )

    async def send_task_heartbeat(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return await self._deliver(request["taskToken"], TaskHeartbeat)

    async def get_activity_task(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["activityArn"]
        # ActivityDoesNotExist / InvalidArn as DescribeActivity refuses them.
        await self.engine.read(self.catalog.describe_activity, {"activityArn": arn})
        task = await self.engine.external.take_activity_task(
            arn, request.get("workerName"), self.poll_seconds
        )
        if task is None:
            return {}  # AWS: the poll ended with no task
        return {"taskToken": task.token, "input": task.input}

    async def create_activity(self, request: Mapping[str, Any]) -> dict[str, Any]:
        response = await self.engine.read(self.catalog.create_activity, request)
        self.engine.external.activities.known.add(response["activityArn"])
        return response

    async def delete_activity(self, request: Mapping[str, Any]) -> dict[str, Any]:
        response = await self.engine.read(self.catalog.delete_activity, request)
        self.engine.external.activities.known.discard(request["activityArn"])
        return response
