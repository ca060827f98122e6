"""An execution held in memory by the durable loop, and how it turns into store rows.

``Live`` wraps the interpreter's ``Execution`` with what the runtime needs to persist it: the
row it was stored as, which history events are already written, which timers and tasks it has
in the store. ``delta`` folds one tick's steps into the one ``ExecutionDelta`` the group
commit lands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flowstate.asl.model import StateMachine
from flowstate.interpreter.execution import EXECUTION_TIMEOUT_TIMER, Execution, ExecutionInfo
from flowstate.interpreter.history import dump_json
from flowstate.interpreter.messages import ScheduleTask
from flowstate.interpreter.snapshot import dump_execution, load_execution
from flowstate.runtime.stored_history import encode_chunk
from flowstate.storage import (
    ExecutionDelta,
    ExecutionRecord,
    MapRunRecord,
    TaskRecord,
    TimerRecord,
)
from flowstate.storage.records import evolve

__all__ = ["MAP_RUNS", "Live", "task_from_record", "task_record"]

# The snapshot's key for the figures of the map runs that have ended (DescribeMapRun): the
# interpreter hands them over as RecordMapRun commands when a run's bookkeeping goes away.
MAP_RUNS = "map_runs"


@dataclass(eq=False)
class Live:
    execution: Execution
    record: ExecutionRecord  # as last committed (or about to be inserted)
    durable: bool  # Standard: every tick commits; Express: only its start and its end
    is_new: bool = True
    timers: set[str] = field(default_factory=set)  # timer ids with a row in the store
    tasks: dict[str, ScheduleTask] = field(default_factory=dict)  # with a row, not done
    inflight: int = 0  # task invocations running now (never evicted meanwhile)
    written: bool = True  # False for a synchronous Express execution: never stored
    map_runs: dict[str, Any] = field(default_factory=dict)  # ended runs' figures, by ARN
    # Steps taken but not committed yet (Engine._may_hold): their changes, the work they
    # took in, and since when (the loop's clock).
    held: TickChanges | None = None
    held_items: list[Any] = field(default_factory=list)
    held_since: float | None = None

    @property
    def arn(self) -> str:
        return self.record.arn

    @property
    def status(self) -> str:
        return self.execution.status


def new_live(
    machine: StateMachine,
    record: ExecutionRecord,
    *,
    state_machine_name: str,
    role_arn: str,
    input_value: Any,
    durable: bool,
    synchronous: bool = False,
    record_history: bool = True,
    max_events: int = 25_000,
) -> Live:
    info = ExecutionInfo(
        arn=record.arn,
        name=record.name,
        state_machine_arn=record.state_machine_arn,
        state_machine_name=state_machine_name,
        role_arn=role_arn,
        start_time=record.start_at,
        type=record.type,
        redrive_count=record.redrive_count,
        synchronous=synchronous,
    )
    execution = Execution(
        machine, info, input_value, seed=record.seed, record_history=record_history
    )
    execution.max_events = max_events
    return Live(execution, record, durable)


def restore_live(
    machine: StateMachine, record: ExecutionRecord, tasks: list[TaskRecord], max_events: int
) -> Live:
    """The execution as its last commit left it."""
    assert record.snapshot is not None
    data = json.loads(record.snapshot)
    execution = load_execution(machine, data)
    execution.max_events = max_events
    live = Live(execution, record, durable=True, is_new=False)
    live.timers = set(data["timers"])
    if machine.timeout_seconds is not None:
        live.timers.add(EXECUTION_TIMEOUT_TIMER)
    live.tasks = {t.task_id: task_from_record(t) for t in tasks}
    live.map_runs = data.get(MAP_RUNS, {})
    return live


def task_record(
    arn: str, command: ScheduleTask, now: datetime, state: str = "STARTED"
) -> TaskRecord:
    body = {
        "parameters": command.parameters,
        "state_name": command.state_name,
        "timeout_seconds": command.timeout_seconds,
        "heartbeat_seconds": command.heartbeat_seconds,
        "context": command.context,
    }
    # (no null members: a text without ``null`` is written without a second look for NaN)
    body = {key: value for key, value in body.items() if value is not None}
    return TaskRecord(
        execution_arn=arn,
        task_id=command.task_id,
        resource=command.resource,
        input=dump_json(body),
        idempotency_key=command.idempotency_key,
        created_at=now,
        state=state,
        task_token=command.task_token,
    )


def task_from_record(record: TaskRecord) -> ScheduleTask:
    body = json.loads(record.input)
    return ScheduleTask(
        task_id=record.task_id,
        resource=record.resource,
        parameters=body.get("parameters"),
        state_name=body["state_name"],
        timeout_seconds=body.get("timeout_seconds"),
        heartbeat_seconds=body.get("heartbeat_seconds"),
        task_token=record.task_token,
        idempotency_key=record.idempotency_key,
        context=body.get("context"),
    )


class TickChanges:
    """What one tick did to one execution, beyond its frame tree and history. (One is made
    per execution per tick: a plain class, whose ``__init__`` costs half a dataclass's with
    six container defaults.)"""

    __slots__ = (
        "inline_calls",
        "map_runs",
        "task_states",
        "tasks_added",
        "tasks_removed",
        "timers_added",
        "timers_removed",
    )

    def __init__(self) -> None:
        self.timers_added: dict[str, datetime] = {}
        self.timers_removed: set[str] = set()
        self.tasks_added: dict[str, ScheduleTask] = {}
        self.tasks_removed: set[str] = set()
        # A task row's state when not STARTED (an activity task no worker has taken:
        # SCHEDULED; a call made that now waits for its token or child: SUBMITTED); re-adding
        # a row with another state rewrites it.
        self.task_states: dict[str, str] = {}
        self.map_runs: dict[str, Any] = {}  # figures of runs that ended
        self.inline_calls = 0  # calls made inside this tick (the engine bounds them)


def build_delta(live: Live, changes: TickChanges, now: datetime) -> ExecutionDelta | None:
    """The one delta of ``live`` for this tick, or None when nothing needs writing."""
    execution = live.execution
    stopped = execution.status != "RUNNING"
    if not live.written:
        return None
    if not live.durable:
        # Express: the start (input only) and the end are written; nothing in between.
        if live.is_new:  # (possibly already ended in this very tick)
            record = _final_record(live, snapshot=None) if stopped else live.record
            return ExecutionDelta(live.arn, record, is_new=True)
        if not stopped:
            return None
        record = _final_record(live, snapshot=None)
        return ExecutionDelta(live.arn, record)
    history = encode_chunk(execution.events)
    map_runs: list[MapRunRecord] = []
    if execution.map_runs_started:
        map_runs = [
            MapRunRecord(live.arn, e.details["mapRunArn"], e.timestamp)
            for e in execution.events
            if e.type == "MapRunStarted" and isinstance(e.details, dict)
        ]
        execution.map_runs_started = 0
    execution.events.clear()
    timers_removed = set(changes.timers_removed)
    tasks_removed = set(changes.tasks_removed)
    if stopped:
        # A stopped execution keeps no timers (the execution timeout's included) nor tasks.
        timers_removed |= live.timers | set(changes.timers_added)
        tasks_removed |= set(live.tasks) | set(changes.tasks_added)
        timers_added: list[TimerRecord] = []
        tasks_added: list[TaskRecord] = []
    else:
        timers_added = [
            TimerRecord(live.arn, timer_id, fire_at)
            for timer_id, fire_at in changes.timers_added.items()
        ]
        tasks_added = [
            task_record(live.arn, command, now, changes.task_states.get(task_id, "STARTED"))
            for task_id, command in changes.tasks_added.items()
            if task_id not in changes.tasks_removed
        ]
        tasks_removed -= set(changes.tasks_added)  # born and done in the same tick
    snapshot: bytes | None = None
    # The frame tree is kept while the execution may go on: running, or stopped where a
    # redrive may resume it. A succeeded execution keeps it only for its map runs' figures.
    if execution.status != "SUCCEEDED" or live.map_runs or changes.map_runs:
        data = dump_execution(execution)
        if live.map_runs or changes.map_runs:
            data[MAP_RUNS] = {**live.map_runs, **changes.map_runs}
        snapshot = dump_json(data).encode()
    record = _final_record(live, snapshot) if stopped else evolve(live.record, snapshot=snapshot)
    return ExecutionDelta(
        live.arn,
        record,
        is_new=live.is_new,
        history=history,
        timers_added=timers_added,
        timers_removed=sorted(timers_removed - {t.timer_id for t in timers_added}),
        tasks_added=tasks_added,
        tasks_removed=sorted(tasks_removed),
        map_runs_added=map_runs,
    )


def _final_record(live: Live, snapshot: bytes | None) -> ExecutionRecord:
    execution = live.execution
    output = dump_json(execution.output) if execution.status == "SUCCEEDED" else None
    # AWS: a TIMED_OUT execution is described with neither error nor cause.
    timed_out = execution.status == "TIMED_OUT"
    return evolve(
        live.record,
        status=execution.status,
        output=output,
        error=None if timed_out else execution.error,
        cause=None if timed_out else execution.cause,
        stop_at=execution.stop_time,
        snapshot=snapshot,
    )


def after_commit(live: Live, changes: TickChanges) -> None:
    """Bring ``live``'s view of its rows up to date once the delta has landed."""
    live.is_new = False
    if changes.timers_removed:
        live.timers -= changes.timers_removed
    if changes.timers_added:
        live.timers.update(changes.timers_added)
    if changes.map_runs:
        live.map_runs.update(changes.map_runs)
    for task_id in changes.tasks_removed:
        live.tasks.pop(task_id, None)
    for task_id, command in changes.tasks_added.items():
        if task_id not in changes.tasks_removed:
            live.tasks[task_id] = command
