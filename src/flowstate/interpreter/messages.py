"""Events into the interpreter (facts) and commands out of it (decisions).

Events are past tense, commands imperative. Both are plain data, so the runtime can persist
them and feed them back after a restart. Nothing changes one once made; the few made for
every Task (its start, its outcome, the call, its timers) are not ``frozen`` dataclasses
only because those cost three times as much to make.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "CancelTask",
    "CancelTimer",
    "Command",
    "Event",
    "MapRunUpdated",
    "RecordMapRun",
    "RuntimeFailure",
    "ScheduleTask",
    "StartTimer",
    "StopRequested",
    "TaskFailed",
    "TaskHeartbeat",
    "TaskStarted",
    "TaskSubmitted",
    "TaskSucceeded",
    "TimerFired",
]


# --- events (facts the runtime reports) ---------------------------------------------------


@dataclass(slots=True)
class TaskStarted:
    task_id: str
    worker_name: str | None = None  # an activity worker's ``workerName``


@dataclass(frozen=True, slots=True)
class TaskSubmitted:
    """The call of a ``.sync`` or ``.waitForTaskToken`` task was made; its result (``output``)
    is recorded, and the task now waits for the job or for its token."""

    task_id: str
    output: Any


@dataclass(slots=True)
class TaskSucceeded:
    task_id: str
    output: Any


@dataclass(slots=True)
class TaskFailed:
    task_id: str
    error: str | None
    cause: str | None


@dataclass(frozen=True, slots=True)
class TaskHeartbeat:
    task_id: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer_id: str


@dataclass(frozen=True, slots=True)
class StopRequested:
    error: str | None = None
    cause: str | None = None


@dataclass(frozen=True, slots=True)
class RuntimeFailure:
    """The runtime could not carry the execution on (an internal error): it fails, as AWS
    fails an execution with ``States.Runtime``, instead of staying RUNNING forever."""

    error: str
    cause: str


@dataclass(frozen=True, slots=True)
class MapRunUpdated:
    """UpdateMapRun: new limits for a running Distributed Map's run; ``None`` keeps one."""

    map_run_arn: str
    max_concurrency: int | None = None
    tolerated_failure_percentage: float | None = None
    tolerated_failure_count: int | None = None


Event = (
    TaskStarted
    | TaskSubmitted
    | TaskSucceeded
    | TaskFailed
    | TaskHeartbeat
    | TimerFired
    | StopRequested
    | RuntimeFailure
    | MapRunUpdated
)


# --- commands (decisions the runtime carries out) -----------------------------------------


@dataclass(slots=True)
class ScheduleTask:
    """Invoke a Task resource. The runtime answers with TaskStarted, then TaskSucceeded or
    TaskFailed carrying the same ``task_id``."""

    task_id: str
    resource: str
    parameters: Any
    state_name: str
    timeout_seconds: int | None = None
    heartbeat_seconds: int | None = None
    task_token: str | None = None
    # Stays the same when this attempt is re-run after a recovery (durable runtime).
    idempotency_key: str = ""
    context: Any = None


@dataclass(slots=True)
class StartTimer:
    timer_id: str
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class CancelTask:
    task_id: str


@dataclass(slots=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True)
class RecordMapRun:
    """Keep a Distributed Map run's final figures (DescribeMapRun): once the run has ended, its
    bookkeeping leaves the frame tree. ``figures`` is JSON-compatible."""

    map_run_arn: str
    figures: dict[str, Any]


Command = ScheduleTask | StartTimer | CancelTask | CancelTimer | RecordMapRun
