"""Task tokens and activity workers: SendTaskSuccess/Failure/Heartbeat and GetActivityTask.

This is the API surface; what creates tokens (``.waitForTaskToken``) and activity tasks is
the task issue's. Until then no token exists, so every token is refused as AWS refuses an
unknown one, and an activity worker's long poll ends empty after AWS's 60 seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from flowstate.runtime.engine import Engine
from flowstate.service.catalog import Catalog
from flowstate.service.errors import INVALID_TOKEN, ServiceError

__all__ = ["ACTIVITY_POLL_SECONDS", "TaskTokens"]

# AWS: GetActivityTask waits up to 60 seconds for a task, then answers with no token.
ACTIVITY_POLL_SECONDS = 60.0


class TaskTokens:
    def __init__(self, engine: Engine, catalog: Catalog) -> None:
        self.engine = engine
        self.catalog = catalog
        self.poll_seconds = ACTIVITY_POLL_SECONDS

    async def _task(self, token: str) -> None:
        record = await self.engine.read(self.engine.store.task_by_token, token)
        if record is None:
            raise ServiceError(INVALID_TOKEN, "Invalid Token: 'Invalid token'")
        raise ServiceError(  # pragma: no cover - no token exists before the task issue
            INVALID_TOKEN, "Invalid Token: this task does not take callbacks yet"
        )

    async def send_task_success(self, request: Mapping[str, Any]) -> dict[str, Any]:
        await self._task(request["taskToken"])
        return {}

    async def send_task_failure(self, request: Mapping[str, Any]) -> dict[str, Any]:
        await self._task(request["taskToken"])
        return {}

    async def send_task_heartbeat(self, request: Mapping[str, Any]) -> dict[str, Any]:
        await self._task(request["taskToken"])
        return {}

    async def get_activity_task(self, request: Mapping[str, Any]) -> dict[str, Any]:
        # ActivityDoesNotExist / InvalidArn as DescribeActivity refuses them.
        await self.engine.read(
            self.catalog.describe_activity, {"activityArn": request["activityArn"]}
        )
        deadline = asyncio.get_running_loop().time() + self.poll_seconds
        while not self.engine.closing and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(min(0.5, self.poll_seconds))
        return {}
