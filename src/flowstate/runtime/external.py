"""Tasks that wait for someone outside the engine: activity workers, task-token callbacks and
nested executions.

What the engine keeps for them is the task row (durable: its token, and how far it got:
``SCHEDULED`` an activity task no worker has taken, ``STARTED`` the call is being made or a
worker holds the task, ``SUBMITTED`` the call was made and the task waits for its token or its
child execution). What lives only in memory is rebuilt from those rows after a restart: the
queue of activity tasks waiting for a worker, the workers' long polls, the watches on child
executions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from flowstate.asl import errors
from flowstate.asl.errors import StatesError
from flowstate.interpreter.messages import (
    Event,
    ScheduleTask,
    TaskFailed,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
)
from flowstate.runtime.cluster import RemoteCallback
from flowstate.runtime.live import Live, TickChanges, task_from_record

if TYPE_CHECKING:
    from flowstate.runtime.engine import Engine

__all__ = [
    "ActivityQueues",
    "ActivityTask",
    "Callback",
    "ChildExecutions",
    "ExternalTasks",
    "TaskGone",
    "TaskRoute",
    "task_route",
]

# Task row states (``TaskRecord.state``).
SCHEDULED = "SCHEDULED"
STARTED = "STARTED"
SUBMITTED = "SUBMITTED"

# Integration patterns of a service integration's resource suffix.
REQUEST_RESPONSE = ""
SYNC = ".sync"
SYNC2 = ".sync:2"
WAIT_FOR_TOKEN = ".waitForTaskToken"

_NESTED = "arn:aws:states:::states:startExecution"

log = logging.getLogger("flowstate.engine")


class TaskGone(Exception):
    """A callback for a task that has ended (AWS ``TaskTimedOut``)."""


class EngineClosed(RuntimeError):
    """The engine is draining or stopped: it takes no new work."""


@dataclass(frozen=True, slots=True)
class TaskRoute:
    kind: str  # "lambda" | "activity" | "nested" | "unhosted"
    pattern: str  # REQUEST_RESPONSE | SYNC | SYNC2 | WAIT_FOR_TOKEN

    @property
    def waits_for_token(self) -> bool:
        return self.pattern == WAIT_FOR_TOKEN

    @property
    def is_sync(self) -> bool:
        return self.pattern in (SYNC, SYNC2)


@functools.lru_cache(maxsize=4096)
def task_route(resource: str) -> TaskRoute:
    """Who carries out a Task resource, and with which integration pattern."""
    parts = resource.split(":", 6)
    if len(parts) > 5 and parts[2] == "states" and parts[5].startswith("activity"):
        return TaskRoute("activity", REQUEST_RESPONSE)
    pattern = REQUEST_RESPONSE
    for suffix in (WAIT_FOR_TOKEN, SYNC2, SYNC):
        if resource.endswith(suffix):
            pattern = suffix
            break
    base = resource[: len(resource) - len(pattern)]
    if resource.startswith("arn:aws:lambda:"):
        return TaskRoute("lambda", REQUEST_RESPONSE)
    if base == "arn:aws:states:::lambda:invoke" and pattern in (REQUEST_RESPONSE, WAIT_FOR_TOKEN):
        return TaskRoute("lambda", pattern)
    if base == _NESTED:
        return TaskRoute("nested", pattern)
    return TaskRoute("unhosted", pattern)


@dataclass(frozen=True, slots=True)
class ActivityTask:
    """An activity task waiting for a worker (GetActivityTask hands out ``token`` and
    ``input``, the task's parameters as JSON text)."""

    execution_arn: str
    task_id: str
    activity_arn: str
    token: str
    input: str

    @classmethod
    def of(cls, execution_arn: str, command: ScheduleTask) -> ActivityTask:
        assert command.task_token is not None
        return cls(
            execution_arn,
            command.task_id,
            command.resource,
            command.task_token,
            json.dumps(command.parameters, separators=(",", ":"), ensure_ascii=False),
        )


# Several nodes: how often a waiting GetActivityTask looks in the store for tasks that
# executions on other nodes scheduled.
SHARED_POLL_SECONDS = 1.0


class KnownActivities:
    """The activity ARNs that exist (a Task naming another fails as on AWS). With several
    nodes, an activity created through another node is looked up in the store the first time
    a Task here names it (``lookup``, a point read; only on a miss)."""

    def __init__(self) -> None:
        self._arns: set[str] = set()
        self.lookup: Callable[[str], bool] | None = None

    def __contains__(self, arn: object) -> bool:
        if arn in self._arns:
            return True
        if isinstance(arn, str) and self.lookup is not None and self.lookup(arn):
            self._arns.add(arn)
            return True
        return False

    def add(self, arn: str) -> None:
        self._arns.add(arn)

    def discard(self, arn: str) -> None:
        self._arns.discard(arn)

    def update(self, arns: Iterable[str]) -> None:
        self._arns.update(arns)


class ActivityQueues:
    """Per activity: the tasks no worker has taken yet (oldest first) and the workers' long
    polls waiting for one. A task goes to exactly one poll; no poll holds a thread."""

    def __init__(self) -> None:
        self.known = KnownActivities()
        self._tasks: dict[str, OrderedDict[tuple[str, str], ActivityTask]] = {}
        self._polls: dict[str, deque[asyncio.Future[ActivityTask | None]]] = {}
        self._closed = False

    def offer(self, task: ActivityTask) -> None:
        polls = self._polls.get(task.activity_arn)
        while polls:
            poll = polls.popleft()
            if not poll.done():
                poll.set_result(task)
                return
        queue = self._tasks.setdefault(task.activity_arn, OrderedDict())
        queue[(task.execution_arn, task.task_id)] = task

    def withdraw(self, execution_arn: str, task_id: str, activity_arn: str) -> None:
        """The task ended before a worker took it (timeout, stop)."""
        queue = self._tasks.get(activity_arn)
        if queue is not None:
            queue.pop((execution_arn, task_id), None)

    def waiting(self, activity_arn: str) -> int:
        return len(self._tasks.get(activity_arn, ()))

    async def poll(self, activity_arn: str, timeout: float) -> ActivityTask | None:
        """The oldest waiting task of ``activity_arn``, or None after ``timeout`` seconds."""
        queue = self._tasks.get(activity_arn)
        if queue:
            _, task = queue.popitem(last=False)
            return task
        if self._closed:
            return None
        future: asyncio.Future[ActivityTask | None] = asyncio.get_running_loop().create_future()
        polls = self._polls.setdefault(activity_arn, deque())
        polls.append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            # A task handed over in the very turn the timeout struck is still this poll's.
            return _handed(future)
        except asyncio.CancelledError:
            handed = _handed(future)
            if handed is not None:
                self.offer(handed)  # the caller went away: the next poll gets it
            raise
        finally:
            if future in polls:
                polls.remove(future)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Draining: every poll ends empty, no new poll waits."""
        self._closed = True
        for polls in self._polls.values():
            for poll in polls:
                if not poll.done():
                    poll.set_result(None)
        self._polls.clear()


def _handed(future: asyncio.Future[ActivityTask | None]) -> ActivityTask | None:
    if future.done() and not future.cancelled():
        return future.result()
    return None


class ChildExecutions(Protocol):
    """Nested executions (``arn:aws:states:::states:startExecution``): the service resolves
    and starts the child, the engine waits for it. Failures the child's StartExecution gets
    are raised as ``StatesError`` (``StepFunctions.<Code>Exception``)."""

    async def start_child(
        self, parent_arn: str, command: ScheduleTask, pattern: str
    ) -> tuple[str, Any]:
        """Start the child (or find the one this task already started, after a restart);
        returns its ARN and the StartExecution response the task records."""
        ...

    async def child_outcome(self, child_arn: str, task_id: str, pattern: str) -> Event:
        """The ``.sync``/``.sync:2`` task's outcome, ``child_arn`` having ended:
        TaskSucceeded with the DescribeExecution-shaped result, or TaskFailed."""
        ...


@dataclass(frozen=True, slots=True)
class Callback:
    """A work item from outside the engine for a task that waits (SendTask*, a worker taking
    an activity task): answered once its effect is committed, or TaskGone."""

    event: Event
    future: asyncio.Future[None]


class _Pending:
    __slots__ = ("activity_arn", "child_arn", "counted", "route", "watch")

    def __init__(self, route: TaskRoute, activity_arn: str | None = None) -> None:
        self.route = route
        self.activity_arn = activity_arn
        self.child_arn: str | None = None
        self.watch: asyncio.Task[None] | None = None
        self.counted = False  # holds one of the engine's in-flight calls


class ExternalTasks:
    """The engine's side of activities, callbacks and nested executions (see the module
    docstring). ``engine`` gives the loop's primitives: ``_enqueue``, ``_invoke``,
    ``wait_stopped``, ``stop_execution`` and the in-flight count the virtual clock reads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.activities = ActivityQueues()
        self.children: ChildExecutions | None = None
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._spawned: set[asyncio.Task[None]] = set()

    # --- inside a tick -----------------------------------------------------------------

    def prepare(
        self, live: Live, event: Event, changes: TickChanges, *, callback: bool = False
    ) -> Event:
        """What ``event`` means for a waiting task, and the task row change it brings;
        ``callback``: it comes from outside (SendTask*, a worker), not from the call."""
        task_id = getattr(event, "task_id", None)
        if task_id is None:
            return event
        command = live.tasks.get(task_id)
        if command is None:
            return event
        route = task_route(command.resource)
        if (
            not callback
            and isinstance(event, TaskSucceeded)
            and route.kind == "lambda"
            and route.waits_for_token
            and not self.engine._mocked(live, command)
        ):
            # The function was called; the task waits for its token (SendTaskSuccess).
            event = TaskSubmitted(task_id, event.output)
        if isinstance(event, TaskSubmitted) or (
            isinstance(event, TaskStarted) and route.kind == "activity"
        ):
            changes.tasks_added[task_id] = command
            changes.task_states[task_id] = SUBMITTED if isinstance(event, TaskSubmitted) else ""
            if not changes.task_states[task_id]:
                del changes.task_states[task_id]  # STARTED, the default
        return event

    # --- after the commit ----------------------------------------------------------------

    def perform(self, live: Live, command: ScheduleTask) -> None:
        route = task_route(command.resource)
        key = (live.arn, command.task_id)
        if self.engine._mocked(live, command):
            self.engine._invoke(live, command)  # the test case's response, as a call's
        elif route.kind == "activity":
            self._pending[key] = _Pending(route, command.resource)
            self.activities.offer(ActivityTask.of(live.arn, command))
        elif route.kind == "nested":
            self._watch(live.arn, command, route, resumed_state=None)
        else:
            self.engine._invoke(live, command)

    def cancel(self, arn: str, task_id: str) -> None:
        """CancelTask: the task ended without its answer (timeout, stop, a failed branch)."""
        pending = self._pending.pop((arn, task_id), None)
        if pending is None:
            return
        if pending.activity_arn is not None:
            self.activities.withdraw(arn, task_id, pending.activity_arn)
        if pending.watch is not None:
            pending.watch.cancel()
        if pending.route.is_sync and pending.child_arn is not None:
            # AWS stops a .sync child whose parent task no longer waits for it.
            self._spawn(self._stop_child(pending.child_arn, arn))

    def resume(self, live: Live, command: ScheduleTask, state: str) -> bool:
        """After a restart: carry on with a stored task; False if it is to be re-invoked."""
        route = task_route(command.resource)
        key = (live.arn, command.task_id)
        if route.kind == "activity":
            if state == SCHEDULED:
                self.perform(live, command)  # back in its activity's queue
            return True  # a worker holds it: its token stays valid
        if route.kind == "nested":
            self._watch(live.arn, command, route, resumed_state=state)
            return True
        if route.waits_for_token and state == SUBMITTED:
            self._pending.pop(key, None)
            return True  # called already: only the token is awaited
        return False

    # --- nested executions ---------------------------------------------------------------

    def _watch(
        self, arn: str, command: ScheduleTask, route: TaskRoute, resumed_state: str | None
    ) -> None:
        pending = _Pending(route)
        self._pending[(arn, command.task_id)] = pending
        # The start is a call in flight from now on (the virtual clock and until_idle wait
        # for it); _run_child gives the count back.
        self.engine._inflight += 1
        pending.counted = True
        pending.watch = self._spawn(self._run_child(arn, command, route, resumed_state, pending))
        pending.watch.add_done_callback(lambda _: self._uncount(pending))

    def _uncount(self, pending: _Pending) -> None:
        if pending.counted:
            pending.counted = False
            self.engine._inflight -= 1

    async def _run_child(
        self,
        arn: str,
        command: ScheduleTask,
        route: TaskRoute,
        resumed_state: str | None,
        pending: _Pending,
    ) -> None:
        engine = self.engine
        task_id = command.task_id
        try:
            if self.children is None:
                raise StatesError(errors.RUNTIME, "nested executions need the service")
            child_arn, response = await self.children.start_child(arn, command, route.pattern)
            pending.child_arn = child_arn
            if route.pattern == REQUEST_RESPONSE:
                engine._enqueue(arn, TaskSucceeded(task_id, response))
                return
            if resumed_state != SUBMITTED:
                engine._enqueue(arn, TaskSubmitted(task_id, response))
            self._uncount(pending)  # what follows waits for the child, not for a call
            if not route.is_sync:
                return  # .waitForTaskToken: the child (or anyone) sends the token
            await engine.wait_stopped(child_arn)
            engine._enqueue(
                arn, await self.children.child_outcome(child_arn, task_id, route.pattern)
            )
        except StatesError as failure:
            engine._enqueue(arn, TaskFailed(task_id, failure.error, failure.cause))
        except asyncio.CancelledError:
            raise
        except EngineClosed:
            return  # draining: the task is resumed (its child found or started) after restart
        except Exception as exc:  # never let a broken start leave the task waiting forever
            log.exception("nested execution of %s failed", arn)
            engine._enqueue(
                arn, TaskFailed(task_id, errors.RUNTIME, f"{type(exc).__name__}: {exc}")
            )
        finally:
            self._uncount(pending)
            current = self._pending.get((arn, task_id))
            if current is pending and not route.waits_for_token:
                del self._pending[(arn, task_id)]

    async def _stop_child(self, child_arn: str, parent_arn: str) -> None:
        with contextlib.suppress(Exception):
            await self.engine.stop_execution(
                child_arn,
                None,
                f"The Task state in AWS Step Functions execution [{parent_arn}] which was "
                "managing this resource was aborted",
            )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._spawned.add(task)  # a reference, so the task is not collected while it runs
        task.add_done_callback(self._spawned.discard)
        return task

    # --- from the API ----------------------------------------------------------------------

    async def callback(
        self, arn: str, task_id: str, token: str, event: Event, *, forwarded: bool = False
    ) -> None:
        """Deliver ``event`` (SendTask*, a worker taking the task) to the task ``token``
        names; returns once committed. TaskGone when that task has ended. With several
        nodes, a callback for an execution another node runs is forwarded to that node
        (``forwarded``: it comes from one)."""
        engine = self.engine
        task_id = task_id or getattr(event, "task_id", "")
        live = engine._live.get(arn)
        command = live.tasks.get(task_id) if live is not None else None
        if command is None:
            record = await engine.read(engine.store.task_by_token, token)
            if record is None or record.execution_arn != arn or record.task_id != task_id:
                raise TaskGone(token)
            if not forwarded and await engine.ownership.forward(arn, RemoteCallback(token, event)):
                return  # the node running the execution has applied it
        elif command.task_token != token:
            raise TaskGone(token)
        if engine.closing:
            raise EngineClosed("flowstate is shutting down")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        engine._enqueue(arn, Callback(event, future))
        await future

    async def take_activity_task(
        self, activity_arn: str, worker_name: str | None, timeout: float
    ) -> ActivityTask | None:
        """GetActivityTask: the oldest task waiting for a worker of ``activity_arn``, started
        (ActivityStarted committed) in this worker's name; None after ``timeout`` seconds.

        With several nodes sharing the store, a task is claimed in the store before it is
        handed out (so two nodes' workers never get the same one), and tasks scheduled by
        executions other nodes run are looked for there every ``SHARED_POLL_SECONDS``."""
        engine = self.engine
        shared = not engine.ownership.recovers
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not engine.closing:
            remaining = max(0.0, deadline - loop.time())
            wait = min(remaining, SHARED_POLL_SECONDS) if shared else remaining
            task = await self.activities.poll(activity_arn, wait)
            if engine.closing:
                return None  # draining: nothing is claimed that could not be handed on
            if task is not None and shared:
                key = (task.execution_arn, task.task_id)
                if await engine.read(engine.store.claim_activity_task, activity_arn, key) is None:
                    continue  # a worker of another node took it
            elif task is None and shared:
                claimed = await engine.read(engine.store.claim_activity_task, activity_arn)
                if claimed is not None:
                    task = ActivityTask.of(claimed.execution_arn, task_from_record(claimed))
            if task is None:
                if not shared or self.activities.closed or loop.time() >= deadline:
                    return None
                continue
            self._pending.pop((task.execution_arn, task.task_id), None)
            try:
                await self.callback(
                    task.execution_arn,
                    task.task_id,
                    task.token,
                    TaskStarted(task.task_id, worker_name),
                )
            except TaskGone:
                continue  # ended while it waited: the next one
            except EngineClosed:
                if shared:  # claimed but not started: it waits for a worker again
                    await engine.read(
                        engine.store.release_activity_task, task.execution_arn, task.task_id
                    )
                raise
            return task
        return None

    def close(self) -> None:
        self.activities.close()
