"""Run executions to completion in memory, on a real or virtual clock.

This is the runtime behind ``flowstate run`` and the conformance runner: no persistence, one
process. Timers live in a heap (no thread per waiting execution); the virtual clock fires each
timer as soon as nothing else can run, in deadline order.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flowstate.asl.errors import StatesError
from flowstate.asl.model import StateMachine
from flowstate.asl.parse import parse_definition
from flowstate.integrations.functions import (
    FunctionRegistry,
    is_lambda_resource,
    prepare_lambda_call,
    unhosted_resource,
)
from flowstate.interpreter.execution import Execution, ExecutionInfo
from flowstate.interpreter.history import dump_json, render_events
from flowstate.interpreter.messages import (
    CancelTask,
    CancelTimer,
    Command,
    Event,
    ScheduleTask,
    StartTimer,
    TaskFailed,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    TimerFired,
)
from flowstate.runtime.clock import Clock, make_clock

__all__ = [
    "ExecutionResult",
    "InvalidExecutionInput",
    "LocalRuntime",
    "parse_execution_input",
    "run_definition",
]

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
ROLE_NAME = "flowstate-execution-role"


@dataclass
class ExecutionResult:
    status: str
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    execution_arn: str = ""

    def to_json(self, *, include_history: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.status == "SUCCEEDED":
            out["output"] = json.loads(self.output) if self.output is not None else None
        else:
            out["error"] = self.error
            out["cause"] = self.cause
        if include_history:
            out["events"] = [_jsonable_event(event) for event in self.history]
        return out


def _jsonable_event(event: dict[str, Any]) -> dict[str, Any]:
    out = dict(event)
    stamp = out.get("timestamp")
    if isinstance(stamp, datetime):
        out["timestamp"] = stamp.isoformat()
    return out


class _TimerHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, str, Execution]] = []
        self._cancelled: set[tuple[int, str]] = set()
        self._seq = 0

    def push(self, fire_at: datetime, timer_id: str, execution: Execution) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (fire_at, self._seq, timer_id, execution))
        self._cancelled.discard((id(execution), timer_id))

    def cancel(self, timer_id: str, execution: Execution) -> None:
        self._cancelled.add((id(execution), timer_id))

    def pop(self) -> tuple[datetime, str, Execution] | None:
        while self._heap:
            fire_at, _, timer_id, execution = heapq.heappop(self._heap)
            key = (id(execution), timer_id)
            if key in self._cancelled:
                self._cancelled.discard(key)
                continue
            if execution.status != "RUNNING":
                continue
            return fire_at, timer_id, execution
        return None

    def peek_time(self) -> datetime | None:
        while self._heap:
            fire_at, _, timer_id, execution = self._heap[0]
            if (id(execution), timer_id) in self._cancelled or execution.status != "RUNNING":
                heapq.heappop(self._heap)
                self._cancelled.discard((id(execution), timer_id))
                continue
            return fire_at
        return None


class LocalRuntime:
    """Drives any number of executions in one process until none can make progress."""

    def __init__(
        self,
        *,
        clock: Clock | str = "virtual",
        functions: FunctionRegistry | Mapping[str, Callable[[Any, Any], Any]] | None = None,
        account_id: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        record_history: bool = True,
    ) -> None:
        self.clock = make_clock(clock) if isinstance(clock, str) else clock
        if isinstance(functions, FunctionRegistry):
            self.functions = functions
        else:
            self.functions = FunctionRegistry(functions)
        self.account_id = account_id
        self.region = region
        self.record_history = record_history
        self._events: deque[tuple[Execution, Event]] = deque()
        self._timers = _TimerHeap()

    def start(
        self,
        machine: StateMachine,
        input_value: Any,
        *,
        state_machine_name: str,
        execution_name: str | None = None,
        state_machine_type: str = "STANDARD",
        role_arn: str | None = None,
        synchronous: bool = False,
    ) -> Execution:
        name = execution_name or str(uuid.uuid4())
        prefix = f"arn:aws:states:{self.region}:{self.account_id}"
        if state_machine_type == "EXPRESS":
            # AWS: express:<machine>:<name>:<generated id>
            arn = f"{prefix}:express:{state_machine_name}:{name}:{uuid.uuid4()}"
        else:
            arn = f"{prefix}:execution:{state_machine_name}:{name}"
        info = ExecutionInfo(
            arn=arn,
            name=name,
            state_machine_arn=f"{prefix}:stateMachine:{state_machine_name}",
            state_machine_name=state_machine_name,
            role_arn=role_arn or f"arn:aws:iam::{self.account_id}:role/{ROLE_NAME}",
            start_time=self.clock.now(),
            type=state_machine_type,
            synchronous=synchronous,
        )
        execution = Execution(
            machine,
            info,
            input_value,
            seed=uuid.uuid4().int & ((1 << 64) - 1),
            record_history=self.record_history,
        )
        execution.known_activities = ()  # no activity exists here: no worker could serve it
        self._perform(execution, execution.start(self.clock.now()))
        return execution

    def run_until_idle(self) -> None:
        """Run until every execution has ended or waits on something that will not come."""
        while True:
            while self._events:
                execution, event = self._events.popleft()
                if execution.status == "RUNNING":
                    self._perform(execution, execution.step(event, self.clock.now()))
            fire_at = self._timers.peek_time()
            if fire_at is None:
                return
            if not self.clock.is_virtual:
                delay = (fire_at - self.clock.now()).total_seconds()
                if delay > 0:
                    time.sleep(delay)
            else:
                self.clock.advance_to(fire_at)
            popped = self._timers.pop()
            if popped is None:
                return
            _, timer_id, execution = popped
            self._events.append((execution, TimerFired(timer_id)))

    # --- commands ----------------------------------------------------------------------

    def _perform(self, execution: Execution, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, ScheduleTask):
                self._run_task(execution, command)
            elif isinstance(command, StartTimer):
                self._timers.push(command.fire_at, command.timer_id, execution)
            elif isinstance(command, CancelTimer):
                self._timers.cancel(command.timer_id, execution)
            elif isinstance(command, CancelTask):
                pass  # local calls complete synchronously; nothing is left to cancel

    def _run_task(self, execution: Execution, command: ScheduleTask) -> None:
        events = self._events
        task_id = command.task_id
        resource = command.resource
        try:
            if not is_lambda_resource(resource):
                raise unhosted_resource(resource)
            events.append((execution, TaskStarted(task_id)))
            call = prepare_lambda_call(
                resource,
                command.parameters,
                idempotency_key=command.idempotency_key,
                functions=self.functions,
                region=self.region,
                account=self.account_id,
            )
            result = asyncio.run(call.run_async()) if call.is_async else call.run()
        except StatesError as failure:
            events.append((execution, TaskFailed(task_id, failure.error, failure.cause)))
            return
        if resource.endswith(".waitForTaskToken"):
            # Called; now it waits for a token nobody here can send (until its timeout).
            events.append((execution, TaskSubmitted(task_id, result)))
            return
        events.append((execution, TaskSucceeded(task_id, result)))


def result_of(execution: Execution) -> ExecutionResult:
    output = dump_json(execution.output) if execution.status == "SUCCEEDED" else None
    return ExecutionResult(
        status=execution.status,
        output=output,
        error=execution.error,
        cause=execution.cause,
        history=render_events(execution.events),
        execution_arn=execution.info.arn,
    )


class InvalidExecutionInput(ValueError):
    """The execution input is not a JSON text (AWS ``InvalidExecutionInput``)."""


def parse_execution_input(text: str) -> Any:
    """The input of StartExecution: JSON text, refused as AWS refuses it otherwise."""
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidExecutionInput(
            "Invalid execution input: the JSON is nested too deeply"
        ) from None
    except ValueError as exc:
        raise InvalidExecutionInput(f"Invalid execution input: {exc}") from None


def run_definition(
    definition: str | Mapping[str, Any],
    input_json: str = "{}",
    *,
    state_machine_name: str = "StateMachine",
    execution_name: str | None = None,
    state_machine_type: str = "STANDARD",
    account_id: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    clock: Clock | str = "virtual",
    functions: FunctionRegistry | Mapping[str, Callable[[Any, Any], Any]] | None = None,
    role_arn: str | None = None,
    synchronous: bool = False,
) -> ExecutionResult:
    """Parse ``definition``, run one execution on ``input_json`` to its end, return the result.

    An invalid definition raises ``DefinitionError`` (AWS ``InvalidDefinition``).
    """
    machine = parse_definition(definition, state_machine_type=state_machine_type)
    runtime = LocalRuntime(clock=clock, functions=functions, account_id=account_id, region=region)
    execution = runtime.start(
        machine,
        parse_execution_input(input_json),
        state_machine_name=state_machine_name,
        execution_name=execution_name,
        state_machine_type=state_machine_type,
        role_arn=role_arn,
        synchronous=synchronous,
    )
    runtime.run_until_idle()
    return result_of(execution)
