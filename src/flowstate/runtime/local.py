"""Run executions to completion in memory, on a real or virtual clock.

This is the runtime behind ``flowstate run`` and the conformance runner: no persistence, one
process. Timers live in a heap (no thread per waiting execution); the virtual clock fires each
timer as soon as nothing else can run, in deadline order.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import json
import queue
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flowstate.asl.errors import StatesError
from flowstate.asl.model import StateMachine
from flowstate.asl.parse import parse_definition
from flowstate.integrations.connections import ConnectionRegistry
from flowstate.integrations.dispatch import Answered, HttpCall, dispatch, is_served, outcome_event
from flowstate.integrations.functions import FunctionRegistry, LambdaCall
from flowstate.integrations.http import HttpInvoker
from flowstate.integrations.invoker import FunctionInvoker
from flowstate.integrations.mocks import MockConfig, MockSession
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
from flowstate.runtime.external import task_route

__all__ = [
    "ExecutionResult",
    "InvalidExecutionInput",
    "LocalRuntime",
    "UnknownTestCase",
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


class UnknownTestCase(ValueError):
    """``test_case`` names no test case of this state machine in the mock configuration."""


class LocalRuntime:
    """Drives any number of executions in one process until none can make progress.

    Function calls run concurrently (``FunctionInvoker``). On the virtual clock a call takes
    no time, unless it is still running when as much real time has passed as there is until
    the next timer: then the clock jumps to that timer (so a stuck call meets its
    TimeoutSeconds). Finished calls are handed back in the order they were scheduled, which
    keeps runs deterministic.
    """

    def __init__(
        self,
        *,
        clock: Clock | str = "virtual",
        functions: FunctionRegistry | Mapping[str, Callable[[Any, Any], Any]] | None = None,
        account_id: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        record_history: bool = True,
        connections: ConnectionRegistry | None = None,
        http: HttpInvoker | None = None,
        mocks: MockConfig | None = None,
        threads: int = 8,
    ) -> None:
        self.clock = make_clock(clock) if isinstance(clock, str) else clock
        if isinstance(functions, FunctionRegistry):
            self.functions = functions
        else:
            self.functions = FunctionRegistry(functions)
        self.account_id = account_id
        self.region = region
        self.record_history = record_history
        # Each call runs on a loop of its own (asyncio.run): no client outlives its loop.
        self.http = http or HttpInvoker(connections, region=region, reuse_client=False)
        self.mocks = mocks
        self.invoker = FunctionInvoker(threads=threads)
        self._events: deque[tuple[Execution, Event]] = deque()
        self._timers = _TimerHeap()
        self._sessions: dict[int, MockSession] = {}  # id(execution) -> its test case
        # Calls in flight, in the order they were scheduled: (execution, task id) -> future.
        self._running: dict[tuple[Execution, str], Future[Any]] = {}
        self._finished: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._token_tasks: set[tuple[Execution, str]] = set()  # .waitForTaskToken calls
        self._used_threads = False

    def close(self) -> None:
        """Abandon the calls still running (their threads are daemons)."""
        for future in self._running.values():
            self.invoker.abandon(future)
        self._running.clear()
        self.invoker.close()
        if self._used_threads:
            # Free this run's garbage here: compiled JSONata expressions must not be dropped
            # by a collection that a handler's thread happens to trigger.
            gc.collect()

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
        test_case: str | None = None,
    ) -> Execution:
        session = None
        if test_case is not None:
            found = self.mocks.test_case(state_machine_name, test_case) if self.mocks else None
            if found is None:
                raise UnknownTestCase(
                    f"no test case {test_case!r} for state machine {state_machine_name!r} "
                    "in the mock configuration"
                )
            session = MockSession(found)
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
        if session is not None:
            self._sessions[id(execution)] = session
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
            self._drop_stray_calls()
            fire_at = self._timers.peek_time()
            if self._running:
                if self._await_calls(fire_at):
                    continue
            elif fire_at is None:
                return
            elif not self.clock.is_virtual:
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

    def _await_calls(self, fire_at: datetime | None) -> bool:
        """Wait for the calls in flight until the next timer is due; hand back those that
        finished, in the order they were scheduled. False: the timer is due first."""
        timeout = None
        if fire_at is not None:
            timeout = max(0.0, (fire_at - self.clock.now()).total_seconds())
        began = time.monotonic()
        deadline = None if timeout is None else began + timeout
        # Virtual clock: wait for every call (deterministic order); real: for the first.
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self._finished.get(timeout=remaining)
            except queue.Empty:
                break
            if not self.clock.is_virtual or all(f.done() for f in self._running.values()):
                break
        done = [(key, f) for key, f in self._running.items() if f.done()]
        for (execution, task_id), future in done:
            del self._running[(execution, task_id)]
            event = outcome_event(task_id, future)
            if (execution, task_id) in self._token_tasks:
                self._token_tasks.discard((execution, task_id))
                event = _submitted(event)
            self._events.append((execution, event))
        if done:
            return True
        if fire_at is not None:
            self.clock.advance_to(fire_at)
        return False

    def _drop_stray_calls(self) -> None:
        for key in [k for k in self._running if k[0].status != "RUNNING"]:
            self.invoker.abandon(self._running.pop(key))

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
                # TimeoutSeconds or a stop ended the attempt: its call is abandoned.
                future = self._running.pop((execution, command.task_id), None)
                if future is not None:
                    self.invoker.abandon(future)

    def _send(self, call: HttpCall, task_id: str) -> Event:
        """An HTTP task, sent and answered in place (on a loop of its own)."""
        try:
            return TaskSucceeded(
                task_id, asyncio.run(self.http.invoke(call.resource, call.parameters))
            )
        except StatesError as failure:
            return TaskFailed(task_id, failure.error, failure.cause)

    def _run_task(self, execution: Execution, command: ScheduleTask) -> None:
        session = self._sessions.get(id(execution))
        if is_served(command, session):
            self._events.append((execution, TaskStarted(command.task_id)))
        task = dispatch(
            command,
            functions=self.functions,
            session=session,
            region=self.region,
            account=self.account_id,
        )
        if isinstance(task, Answered):
            self._events.append((execution, task.event(command.task_id)))
            return
        if isinstance(task, HttpCall):
            self._events.append((execution, self._send(task, command.task_id)))
            return
        waits = task_route(command.resource).waits_for_token
        fn = task.function
        if (
            command.timeout_seconds is None
            and command.heartbeat_seconds is None
            and not (fn.is_async or fn.isolate or fn.concurrency)
        ):
            # Nothing can end this attempt early: call it here, in order (deterministic, and
            # no other thread ever drops this run's objects).
            event = _inline(task, command.task_id)
            self._events.append((execution, _submitted(event) if waits else event))
            return
        self._used_threads = True
        future = self.invoker.submit(task)
        self._running[(execution, command.task_id)] = future
        if waits:
            self._token_tasks.add((execution, command.task_id))
        future.add_done_callback(lambda _: self._finished.put(None))


def _submitted(event: Event) -> Event:
    """A ``.waitForTaskToken`` call that returned: now it waits for a token that nobody here
    can send (until its timeout)."""
    if isinstance(event, TaskSucceeded):
        return TaskSubmitted(event.task_id, event.output)
    return event


def _inline(call: LambdaCall, task_id: str) -> Event:
    try:
        return TaskSucceeded(task_id, call.run())
    except StatesError as failure:
        return TaskFailed(task_id, failure.error, failure.cause)
    except Exception as exc:  # a handler that breaks the runtime's contract
        return TaskFailed(task_id, "States.Runtime", f"{type(exc).__name__}: {exc}")


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


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text} is too large")
    return value


def parse_execution_input(text: str) -> Any:
    """The input of StartExecution: JSON text, refused as AWS refuses it otherwise (also
    ``NaN``, ``Infinity`` and numbers too large for a double, which JSON does not have)."""
    try:
        return json.loads(text, parse_constant=_not_json, parse_float=_finite_float)
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
    connections: ConnectionRegistry | None = None,
    mocks: MockConfig | None = None,
    test_case: str | None = None,
) -> ExecutionResult:
    """Parse ``definition``, run one execution on ``input_json`` to its end, return the result.

    An invalid definition raises ``DefinitionError`` (AWS ``InvalidDefinition``); a
    ``test_case`` the ``mocks`` do not hold for ``state_machine_name``, ``UnknownTestCase``.
    """
    machine = parse_definition(definition, state_machine_type=state_machine_type)
    runtime = LocalRuntime(
        clock=clock,
        functions=functions,
        account_id=account_id,
        region=region,
        connections=connections,
        mocks=mocks,
    )
    try:
        execution = runtime.start(
            machine,
            parse_execution_input(input_json),
            state_machine_name=state_machine_name,
            execution_name=execution_name,
            state_machine_type=state_machine_type,
            role_arn=role_arn,
            synchronous=synchronous,
            test_case=test_case,
        )
        runtime.run_until_idle()
    finally:
        runtime.close()
    return result_of(execution)
