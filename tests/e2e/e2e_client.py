"""boto3 as users construct it, and what the end-to-end tests ask of a server through it:
AWS error codes, waiting for an execution to end, whole histories and their invariants."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from e2e_server import ACCOUNT, REGION

__all__ = [
    "ROLE",
    "TERMINAL",
    "all_pages",
    "aws_error",
    "check_history",
    "client",
    "create",
    "full_history",
    "lambda_arn",
    "machine_arn",
    "pass_machine",
    "run",
    "task_machine",
    "unique",
    "versioned",
    "wait_until",
    "wait_until_done",
]

ROLE = f"arn:aws:iam::{ACCOUNT}:role/flowstate-e2e"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
TERMINAL_EVENTS = ("ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted")
# A bound on waiting for a state the server should reach in milliseconds (virtual clock) or
# in a few seconds (real clock): exceeding it is a hang, not slowness.
WAIT_LIMIT_SECONDS = 30.0


def client(endpoint: str, *, sync: bool = False) -> Any:
    """An unmodified boto3 Step Functions client for ``endpoint``.

    ``sync=True`` turns off botocore's host prefix: StartSyncExecution and TestState are sent
    to ``sync-<host>``, which does not resolve for ``127.0.0.1``.
    """
    config = Config(inject_host_prefix=False) if sync else None
    return boto3.client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    )


def machine_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"


def lambda_arn(function: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"


def pass_machine(**pass_fields: Any) -> str:
    """A one-state definition: a Pass state with ``pass_fields``."""
    state = {"Type": "Pass", **pass_fields, "End": True}
    return json.dumps({"StartAt": "Only", "States": {"Only": state}})


@contextmanager
def aws_error(code: str) -> Iterator[pytest.ExceptionInfo[ClientError]]:
    """The block must fail with the AWS error ``code`` (``ClientError``'s ``Error.Code``)."""
    with pytest.raises(ClientError) as info:
        yield info
    error = info.value.response["Error"]
    assert error["Code"] == code, f"expected {code}, got {error}"


def wait_until(predicate: Any, what: str, *, limit_seconds: float = WAIT_LIMIT_SECONDS) -> Any:
    """Polls ``predicate()`` with a short backoff until it returns something truthy."""
    deadline = time.monotonic() + limit_seconds
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {limit_seconds} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def wait_until_done(
    sfn: Any, execution_arn: str, *, limit_seconds: float = WAIT_LIMIT_SECONDS
) -> dict[str, Any]:
    """DescribeExecution, polled until the execution has ended; that last answer."""
    last: dict[str, Any] = {}

    def ended() -> bool:
        nonlocal last
        last = sfn.describe_execution(executionArn=execution_arn)
        return last["status"] in TERMINAL

    try:
        wait_until(ended, f"{execution_arn} ending", limit_seconds=limit_seconds)
    except AssertionError as error:
        raise AssertionError(f"{error}; last DescribeExecution: {last}") from None
    return last


def full_history(sfn: Any, execution_arn: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every event of GetExecutionHistory, following nextToken."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn, **kwargs, **({"nextToken": token} if token else {})
        )
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events


def check_history(events: list[dict[str, Any]]) -> None:
    """The invariants of one execution's history: ids 1..n without gaps or repeats, each
    event pointing back to an earlier one, one ExecutionStarted first and exactly one
    terminal event, last."""
    ids = [event["id"] for event in events]
    assert ids == list(range(1, len(events) + 1)), f"event ids not contiguous: {ids}"
    for event in events:
        assert 0 <= event["previousEventId"] < event["id"], event
    types = [event["type"] for event in events]
    assert types[0] == "ExecutionStarted", types
    assert types.count("ExecutionStarted") == 1, types
    terminal = [t for t in types if t in TERMINAL_EVENTS]
    assert len(terminal) == 1, f"terminal events: {terminal} in {types}"
    assert types[-1] in TERMINAL_EVENTS, types


def unique(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create(sfn: Any, definition: str, *, name: str | None = None, **kwargs: Any) -> str:
    created = sfn.create_state_machine(
        name=name or unique(), definition=definition, roleArn=ROLE, **kwargs
    )
    return str(created["stateMachineArn"])


def task_machine(function: str, **task_fields: Any) -> str:
    state = {"Type": "Task", "Resource": lambda_arn(function), **task_fields, "End": True}
    return json.dumps({"StartAt": "Call", "States": {"Call": state}})


def run(sfn: Any, arn: str, input_value: Any = None, **kwargs: Any) -> dict[str, Any]:
    """StartExecution, then DescribeExecution once it has ended."""
    text = json.dumps({} if input_value is None else input_value)
    started = sfn.start_execution(stateMachineArn=arn, input=text, **kwargs)
    return wait_until_done(sfn, started["executionArn"])


def all_pages(call: Any, key: str, **kwargs: Any) -> list[list[dict[str, Any]]]:
    """Every page of a paginated List* call, following nextToken."""
    pages = []
    token = None
    while True:
        page = call(**kwargs, **({"nextToken": token} if token else {}))
        pages.append(page[key])
        token = page.get("nextToken")
        if not token:
            return pages


def versioned(sfn: Any, count: int) -> tuple[str, list[str]]:
    """A machine with ``count`` published versions, each a Pass whose Result is its number."""
    arn = create(sfn, pass_machine(Result=1), publish=True)
    for number in range(2, count + 1):
        sfn.update_state_machine(
            stateMachineArn=arn, definition=pass_machine(Result=number), publish=True
        )
    return arn, [f"{arn}:{n}" for n in range(1, count + 1)]
