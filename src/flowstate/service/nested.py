"""Nested executions: a Task ``arn:aws:states:::states:startExecution[.sync|.sync:2|
.waitForTaskToken]`` starts an execution of another state machine, as StartExecution does.

Shapes are AWS's: request-response answers the StartExecution response in PascalCase
(``ExecutionArn``, ``StartDate`` in epoch milliseconds, the SDK metadata); ``.sync`` and
``.sync:2`` record that response as ``TaskSubmitted`` and end with the child's
DescribeExecution in PascalCase — ``Input``/``Output`` as JSON text for ``.sync``, as JSON
values for ``.sync:2``; a child that did not succeed fails the task with ``States.TaskFailed``
and that object, as JSON text, for cause. A refused StartExecution fails the task with
``StepFunctions.<Code>Exception``.

A child started without ``Name`` is named after the task attempt's idempotency key, so a
restart finds the child it already started instead of starting a second one; the child's row
names its parent task (``parentExecutionArn``, ``parentTaskId``).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from flowstate.asl import errors
from flowstate.asl.errors import StatesError
from flowstate.interpreter.history import dump_json
from flowstate.interpreter.messages import Event, ScheduleTask, TaskFailed, TaskSucceeded
from flowstate.runtime.engine import DuplicateStart, Engine, EngineClosed
from flowstate.runtime.external import SYNC2
from flowstate.service.errors import EXECUTION_ALREADY_EXISTS, ServiceError
from flowstate.service.executions import Executions
from flowstate.storage import ExecutionRecord

__all__ = ["NestedExecutions"]

_CHILD_NAMES = uuid.UUID("4f0c7d1e-5b1a-4a8e-9a0e-6b6f77736174")  # uuid5 namespace


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _refused(error: ServiceError) -> StatesError:
    """A StartExecution refusal as the optimized integration reports it."""
    request_id = uuid.uuid4()
    return StatesError(
        f"StepFunctions.{error.code}Exception",
        f"{error.message} (Service: AWSStepFunctions; Status Code: {error.status}; "
        f"Error Code: {error.code}; Request ID: {request_id}; Proxy: null)",
    )


def _sdk_metadata(body: dict[str, Any]) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    length = str(len(json.dumps(body, separators=(",", ":"))))
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    return {
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "x-amzn-RequestId": [request_id],
                "connection": ["keep-alive"],
                "Content-Length": [length],
                "Date": [date],
                "Content-Type": ["application/x-amz-json-1.0"],
            },
            "HttpHeaders": {
                "connection": "keep-alive",
                "Content-Length": length,
                "Content-Type": "application/x-amz-json-1.0",
                "Date": date,
                "x-amzn-RequestId": request_id,
            },
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
    }


def _input_text(parameters: dict[str, Any]) -> str:
    value = parameters.get("Input")
    if value is None:
        return "{}"  # AWS: no input is the empty object
    if isinstance(value, str):
        return value  # passed through as the child's input text
    return dump_json(value)


class NestedExecutions:
    """``runtime.external.ChildExecutions`` over the service's StartExecution."""

    def __init__(self, engine: Engine, executions: Executions) -> None:
        self.engine = engine
        self.executions = executions

    async def start_child(
        self, parent_arn: str, command: ScheduleTask, pattern: str
    ) -> tuple[str, Any]:
        parameters = command.parameters if isinstance(command.parameters, dict) else {}
        machine_arn = parameters.get("StateMachineArn")
        if not isinstance(machine_arn, str):
            raise _refused(
                ServiceError("InvalidArn", f"Invalid Arn: 'Invalid ARN prefix: {machine_arn}'")
            )
        name = parameters.get("Name")
        key_name = str(uuid.uuid5(_CHILD_NAMES, command.idempotency_key))
        request = {
            "stateMachineArn": machine_arn,
            "name": name if isinstance(name, str) else key_name,
            "input": _input_text(parameters),
        }
        try:
            target = await self.executions._target(machine_arn)
            start = self.executions._prepare(request, target)
        except ServiceError as error:
            raise _refused(error) from None
        attributes = json.loads(start.attributes)
        attributes["parentExecutionArn"] = parent_arn
        attributes["parentTaskId"] = command.task_id
        arn = start.arn
        if start.type == "EXPRESS":  # the run id too comes from the task attempt
            arn = self.executions.partition.express_execution_arn(
                target.state_machine.name, start.name, key_name
            )
        start = replace(start, arn=arn, attributes=dump_json(attributes))
        existing = await self.engine.read(self.engine.store.get_execution, start.arn)
        if existing is None:
            try:
                record = await self.engine.start_execution(start)
            except DuplicateStart as duplicate:
                live = self.engine.live(start.arn)
                record = duplicate.record or (live.record if live is not None else None)  # type: ignore[assignment]
                if record is None or not _is_child_of(record, parent_arn, command.task_id):
                    raise _refused(_already_exists(start.arn)) from None
            except EngineClosed:
                raise
        elif _is_child_of(existing, parent_arn, command.task_id):
            record = existing  # started before a restart
        else:
            raise _refused(_already_exists(start.arn))
        body = {"ExecutionArn": record.arn, "StartDate": _epoch_ms(record.start_at)}
        return record.arn, {**body, **_sdk_metadata(body)}

    async def child_outcome(self, child_arn: str, task_id: str, pattern: str) -> Event:
        record = await self.engine.read(self.engine.store.get_execution, child_arn)
        if record is None:
            return TaskFailed(
                task_id, errors.TASK_FAILED, f"The execution {child_arn} no longer exists"
            )
        described = await self._describe(record, parsed=pattern == SYNC2)
        if record.status == "SUCCEEDED":
            return TaskSucceeded(task_id, described)
        return TaskFailed(task_id, errors.TASK_FAILED, dump_json(described))

    async def _describe(self, record: ExecutionRecord, *, parsed: bool) -> dict[str, Any]:
        """DescribeExecution of the child in PascalCase, keys in AWS's (alphabetical) order."""
        status, reason = await self.executions._redrive_status(record)
        out: dict[str, Any] = {}
        if record.cause is not None:
            out["Cause"] = record.cause
        if record.error is not None:
            out["Error"] = record.error
        out["ExecutionArn"] = record.arn
        out["Input"] = json.loads(record.input) if parsed else record.input
        out["InputDetails"] = {"Included": True}
        out["Name"] = record.name
        if record.status == "SUCCEEDED" and record.output is not None:
            out["Output"] = json.loads(record.output) if parsed else record.output
            out["OutputDetails"] = {"Included": True}
        out["RedriveCount"] = record.redrive_count
        out["RedriveStatus"] = status
        if reason is not None:
            out["RedriveStatusReason"] = reason
        out["StartDate"] = _epoch_ms(record.start_at)
        if record.alias_arn is not None:
            out["StateMachineAliasArn"] = record.alias_arn
        out["StateMachineArn"] = record.state_machine_arn
        if record.version_arn is not None:
            out["StateMachineVersionArn"] = record.version_arn
        out["Status"] = record.status
        if record.stop_at is not None:
            out["StopDate"] = _epoch_ms(record.stop_at)
        return out


def _is_child_of(record: ExecutionRecord, parent_arn: str, task_id: str) -> bool:
    attributes = json.loads(record.attributes or "{}")
    return bool(
        attributes.get("parentExecutionArn") == parent_arn
        and attributes.get("parentTaskId") == task_id
    )


def _already_exists(arn: str) -> ServiceError:
    return ServiceError(EXECUTION_ALREADY_EXISTS, f"Execution Already Exists: '{arn}'")
