"""``flowstate run --db``: one execution run by the durable engine in a database, through the
same service as ``flowstate serve`` (so it is durable, and on PostgreSQL this process is a
node like any other while it runs)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from flowstate.config import Settings
from flowstate.runtime.local import ExecutionResult

__all__ = ["run_in_database"]


def run_in_database(
    settings: Settings,
    definition: str,
    input_json: str,
    *,
    machine_name: str,
    machine_type: str,
    execution_name: str | None,
    history: bool,
) -> ExecutionResult:
    """Create (or update) the state machine ``machine_name``, start one execution, wait for
    its end and return it with its stored history."""
    return asyncio.run(
        _run(
            settings,
            definition,
            input_json,
            machine_name=machine_name,
            machine_type=machine_type,
            execution_name=execution_name,
            history=history,
        )
    )


async def _run(
    settings: Settings,
    definition: str,
    input_json: str,
    *,
    machine_name: str,
    machine_type: str,
    execution_name: str | None,
    history: bool,
) -> ExecutionResult:
    from flowstate.cli.serve import build_service
    from flowstate.service.errors import ServiceError

    service = build_service(settings)
    await service.startup()
    try:
        try:
            arn = await _machine(service, settings, definition, machine_name, machine_type)
            start: dict[str, Any] = {"stateMachineArn": arn, "input": input_json}
            if execution_name is not None:
                start["name"] = execution_name
            started = await service.dispatch("StartExecution", start)
        except ServiceError as error:
            raise click.ClickException(f"{error.code}: {error.message}") from None
        execution_arn = started["executionArn"]
        await service.engine.wait_stopped(execution_arn)
        described = await service.dispatch("DescribeExecution", {"executionArn": execution_arn})
        events: list[dict[str, Any]] = []
        token: str | None = None
        while history:
            request: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
            if token:
                request["nextToken"] = token
            page = await service.dispatch("GetExecutionHistory", request)
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                break
    finally:
        await service.shutdown()
    return ExecutionResult(
        status=described["status"],
        output=described.get("output"),
        error=described.get("error"),
        cause=described.get("cause"),
        history=events,
        execution_arn=execution_arn,
    )


async def _machine(
    service: Any, settings: Settings, definition: str, name: str, machine_type: str
) -> str:
    """The ARN of ``name`` holding ``definition``: created, or updated if it differs."""
    from flowstate.service.errors import ServiceError

    arn = f"arn:aws:states:{settings.region}:{settings.account_id}:stateMachine:{name}"
    role = f"arn:aws:iam::{settings.account_id}:role/flowstate"
    try:
        described = await service.dispatch("DescribeStateMachine", {"stateMachineArn": arn})
    except ServiceError as error:
        if error.code != "StateMachineDoesNotExist":
            raise
        created = await service.dispatch(
            "CreateStateMachine",
            {"name": name, "definition": definition, "roleArn": role, "type": machine_type},
        )
        return str(created["stateMachineArn"])
    if described["type"] != machine_type:
        raise click.ClickException(
            f"the state machine {name!r} in this database is {described['type']}, not "
            f"{machine_type} (--state-machine-name picks another)"
        )
    if json.loads(described["definition"]) != json.loads(definition):
        await service.dispatch(
            "UpdateStateMachine", {"stateMachineArn": arn, "definition": definition}
        )
    return arn
