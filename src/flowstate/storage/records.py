"""What the store holds, as plain rows: state machines, executions, history, timers, tasks.

Payloads (input, output, history details) are JSON *text* and the interpreter's frame tree is
an opaque ``snapshot`` blob: the store never parses either. All ``*_at`` fields are aware UTC
datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Generic, TypeVar

__all__ = [
    "DEFAULT_MAX_RESULTS",
    "EventRecord",
    "ExecutionDelta",
    "ExecutionRecord",
    "ExecutionSummary",
    "HistoryChunk",
    "MapRunRecord",
    "Page",
    "RevisionRecord",
    "StateMachineRecord",
    "TaskRecord",
    "TimerRecord",
    "check_batch",
    "evolve",
]

T = TypeVar("T")

# AWS: maxResults 0 (or absent) means the default page size, 100.
DEFAULT_MAX_RESULTS = 100


@dataclass(frozen=True, slots=True)
class StateMachineRecord:
    arn: str
    name: str
    type: str  # STANDARD | EXPRESS
    definition: str
    role_arn: str
    revision_id: str
    created_at: datetime
    updated_at: datetime
    # JSON object text for the describe-only fields (description, loggingConfiguration,
    # tracingConfiguration, ...): they change with the API, not with the engine.
    attributes: str = "{}"


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    """A definition an execution may still be running: kept after UpdateStateMachine."""

    state_machine_arn: str
    revision_id: str
    definition: str
    role_arn: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    arn: str
    state_machine_arn: str
    name: str
    type: str  # STANDARD | EXPRESS
    status: str  # RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED | PENDING_REDRIVE
    input: str
    start_at: datetime
    revision_id: str = ""
    seed: int = 0  # unsigned 64-bit
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    stop_at: datetime | None = None
    snapshot: bytes | None = None
    redrive_count: int = 0
    redrive_at: datetime | None = None
    # Ownership (PostgreSQL scale-out): written only by lease operations, never by commit().
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    generation: int = 0
    # Set at start and never changed: how the execution was started (a version or an alias
    # of the machine), the map run it belongs to, and describe-only fields (JSON object text).
    version_arn: str | None = None
    alias_arn: str | None = None
    map_run_arn: str | None = None
    attributes: str = "{}"


_EXECUTION_FIELDS = tuple(f.name for f in fields(ExecutionRecord))
_new = object.__new__
_set = object.__setattr__


def evolve(record: ExecutionRecord, **changes: Any) -> ExecutionRecord:
    """``dataclasses.replace`` for an execution row, at a third of its cost (no ``__init__``
    to call with every field again): a row is re-made at every commit of a running
    execution. A name that is not a field raises AttributeError."""
    new = _new(ExecutionRecord)
    for name in _EXECUTION_FIELDS:
        _set(new, name, getattr(record, name))
    for name, value in changes.items():
        _set(new, name, value)
    return new


@dataclass(frozen=True, slots=True)
class ExecutionSummary:
    """A ListExecutions item: no payloads, no snapshot."""

    arn: str
    state_machine_arn: str
    name: str
    status: str
    start_at: datetime
    stop_at: datetime | None
    redrive_count: int
    redrive_at: datetime | None
    version_arn: str | None = None
    alias_arn: str | None = None
    map_run_arn: str | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One history event. ``details`` is the JSON text of the event's ``*EventDetails``
    member(s) as one object, written once and returned verbatim."""

    id: int
    previous_event_id: int
    type: str
    timestamp: datetime
    details: str | None = None


@dataclass(frozen=True, slots=True)
class TimerRecord:
    execution_arn: str
    timer_id: str
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A Task invocation the runtime has decided on and not yet seen complete."""

    execution_arn: str
    task_id: str
    resource: str
    input: str
    idempotency_key: str
    created_at: datetime
    state: str = "SCHEDULED"  # SCHEDULED | STARTED
    task_token: str | None = None


@dataclass(frozen=True, slots=True)
class MapRunRecord:
    """A Distributed Map's run, found by its own ARN (DescribeMapRun, UpdateMapRun) or listed
    by its execution (ListMapRuns). Its figures live in the execution's snapshot."""

    execution_arn: str
    arn: str
    start_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryChunk:
    """Events ``first_id``..``last_id`` (consecutive) of one execution, as one body."""

    first_id: int
    last_id: int
    body: str

    def __post_init__(self) -> None:
        if self.last_id < self.first_id:
            raise ValueError(f"history chunk {self.first_id}..{self.last_id} is empty")


@dataclass(frozen=True, slots=True)
class ExecutionDelta:
    """Everything one execution's transition writes; ``Store.commit`` lands a list of them in
    one transaction.

    ``execution`` is inserted when ``is_new`` and otherwise overwrites the mutable columns
    (status, output, error, cause, stop_at, snapshot, redrive_count, redrive_at) of the stored
    row *only if* its ``generation`` still matches (fencing). Within a delta, timer and task
    removals apply before additions, so re-arming an id is a remove plus an add.
    """

    execution_arn: str
    execution: ExecutionRecord | None = None
    is_new: bool = False
    events: Sequence[EventRecord] = ()  # one row per event
    # or (the runtime's way) the commit's events as one chunk: ``flowstate.storage.chunks``
    history: HistoryChunk | None = None
    timers_added: Sequence[TimerRecord] = ()
    timers_removed: Sequence[str] = ()  # timer ids
    tasks_added: Sequence[TaskRecord] = ()
    tasks_removed: Sequence[str] = ()  # task ids
    map_runs_added: Sequence[MapRunRecord] = ()  # written once; a repeated row is kept as is

    def __post_init__(self) -> None:
        if self.execution is not None and self.execution.arn != self.execution_arn:
            raise ValueError(
                f"delta for {self.execution_arn} carries the row of {self.execution.arn}"
            )
        if self.events and self.history is not None:
            raise ValueError(f"delta for {self.execution_arn}: events or a chunk, not both")
        if self.is_new and self.execution is None:
            raise ValueError(f"delta for {self.execution_arn}: is_new needs an execution row")
        for run in self.map_runs_added:
            if run.execution_arn != self.execution_arn:
                raise ValueError(f"delta for {self.execution_arn} carries map run {run.arn}")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    next_token: str | None = None


def check_batch(batch: Sequence[ExecutionDelta]) -> None:
    """At most one delta per execution: the runtime folds an execution's steps of one tick
    into one delta, so the order of statements inside the transaction never matters."""
    seen: set[str] = set()
    twice: set[str] = set()
    for delta in batch:
        (twice if delta.execution_arn in seen else seen).add(delta.execution_arn)
    if twice:
        raise ValueError(
            f"one delta per execution per batch; merge the deltas of {', '.join(sorted(twice))}"
        )
