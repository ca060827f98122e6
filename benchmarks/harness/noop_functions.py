"""The no-op Lambda function of task_chain_10 (``--functions`` of the HTTP row)."""

from __future__ import annotations

from typing import Any


def noop(event: Any, context: Any) -> Any:
    return event


async def noop_async(event: Any, context: Any) -> Any:
    return event
