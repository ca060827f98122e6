"""The in-memory backend: tests, ``--db memory:`` and Express executions.

Same contract as the SQL backends, including the all-or-nothing batch: every mutation of a
commit pushes its undo onto a log that is replayed backwards if any delta is refused.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from flowstate.storage.chunks import unpack_chunk
from flowstate.storage.errors import (
    ExecutionAlreadyExists,
    HistoryConflict,
    LeaseLost,
    StateMachineAlreadyExists,
    StateMachineDoesNotExist,
)
from flowstate.storage.memory_catalog import MemoryCatalog
from flowstate.storage.records import (
    DEFAULT_MAX_RESULTS,
    EventRecord,
    ExecutionDelta,
    ExecutionRecord,
    ExecutionSummary,
    MapRunRecord,
    Page,
    RevisionRecord,
    StateMachineRecord,
    TaskRecord,
    TimerRecord,
    check_batch,
    evolve,
)
from flowstate.storage.timestamps import micros
from flowstate.storage.tokens import decode_token, encode_token

__all__ = ["MemoryStore"]

_Undo = list[Callable[[], object]]
V = TypeVar("V")


class MemoryStore(MemoryCatalog):
    blocking = False  # nothing here waits on I/O: the engine calls it on its loop

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._machines: dict[str, StateMachineRecord] = {}
        self._revisions: dict[tuple[str, str], RevisionRecord] = {}
        self._executions: dict[str, ExecutionRecord] = {}
        self._events: dict[str, dict[int, EventRecord]] = {}
        self._timers: dict[tuple[str, str], datetime] = {}
        # Lazy-deletion heap: an entry is live only while _timers still maps its key to it.
        self._timer_heap: list[tuple[datetime, str, str]] = []
        self._tasks: dict[str, dict[str, TaskRecord]] = {}
        self._tokens: dict[str, tuple[str, str]] = {}
        self._map_runs: dict[str, MapRunRecord] = {}  # by map run ARN

    # --- state machines -------------------------------------------------------------------

    def create_state_machine(self, machine: StateMachineRecord) -> None:
        with self._lock:
            if machine.arn in self._machines:
                raise StateMachineAlreadyExists(f"state machine already exists: {machine.arn}")
            self._machines[machine.arn] = machine
            self._keep_revision(machine)

    def get_state_machine(self, arn: str) -> StateMachineRecord | None:
        with self._lock:
            return self._machines.get(arn)

    def list_state_machines(
        self, max_results: int = DEFAULT_MAX_RESULTS, next_token: str | None = None
    ) -> Page[StateMachineRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["state_machines"]
        after = decode_token(next_token, query)[0] if next_token else None
        with self._lock:
            arns = sorted(arn for arn in self._machines if after is None or arn > after)
            items = [self._machines[arn] for arn in arns[: limit + 1]]
        if len(items) > limit:
            items = items[:limit]
            return Page(items, encode_token(query, [items[-1].arn]))
        return Page(items)

    def update_state_machine(self, machine: StateMachineRecord) -> None:
        with self._lock:
            if machine.arn not in self._machines:
                raise StateMachineDoesNotExist(f"state machine does not exist: {machine.arn}")
            self._machines[machine.arn] = machine
            self._keep_revision(machine)

    def delete_state_machine(self, arn: str) -> bool:
        with self._lock:
            return self._machines.pop(arn, None) is not None

    def get_revision(self, state_machine_arn: str, revision_id: str) -> RevisionRecord | None:
        with self._lock:
            return self._revisions.get((state_machine_arn, revision_id))

    def _keep_revision(self, machine: StateMachineRecord) -> None:
        self._revisions.setdefault(
            (machine.arn, machine.revision_id),
            RevisionRecord(
                machine.arn,
                machine.revision_id,
                machine.definition,
                machine.role_arn,
                machine.updated_at,
            ),
        )

    # --- commit ---------------------------------------------------------------------------

    def commit(self, batch: Sequence[ExecutionDelta]) -> None:
        check_batch(batch)
        with self._lock:
            undo: _Undo = []
            try:
                taken = [
                    d.execution_arn
                    for d in batch
                    if d.is_new and d.execution_arn in self._executions
                ]
                if taken:
                    raise ExecutionAlreadyExists(taken)
                stale = [
                    d.execution_arn
                    for d in batch
                    if d.execution is not None and not d.is_new and not self._is_current(d)
                ]
                if stale:
                    raise LeaseLost(stale)
                for delta in batch:
                    self._apply(delta, undo)
            except BaseException:
                for step in reversed(undo):
                    step()
                raise

    def _is_current(self, delta: ExecutionDelta) -> bool:
        assert delta.execution is not None
        stored = self._executions.get(delta.execution_arn)
        return stored is not None and stored.generation == delta.execution.generation

    def _apply(self, delta: ExecutionDelta, undo: _Undo) -> None:
        arn = delta.execution_arn
        row = delta.execution
        if row is not None:
            previous = self._executions.get(arn)
            if delta.is_new:
                self._executions[arn] = row
            else:
                assert previous is not None
                self._executions[arn] = evolve(
                    previous,
                    status=row.status,
                    output=row.output,
                    error=row.error,
                    cause=row.cause,
                    stop_at=row.stop_at,
                    snapshot=row.snapshot,
                    redrive_count=row.redrive_count,
                    redrive_at=row.redrive_at,
                )
            undo.append(lambda: _restore(self._executions, arn, previous))
        added = unpack_chunk(delta.history.body) if delta.history is not None else delta.events
        if added:
            events = self._events.get(arn)
            if events is None:
                events = self._events[arn] = {}
                undo.append(lambda: self._events.pop(arn, None))
            for event in added:
                if event.id in events:
                    raise HistoryConflict(f"history event {event.id} of {arn} is already stored")
                events[event.id] = event
                undo.append(lambda e=events, i=event.id: e.pop(i))  # type: ignore[misc]
        for timer_id in delta.timers_removed:
            self._set_timer((arn, timer_id), None, undo)
        for timer in delta.timers_added:
            self._set_timer((arn, timer.timer_id), timer.fire_at, undo)
        if delta.tasks_removed or delta.tasks_added:
            tasks = self._tasks.setdefault(arn, {})
            for task_id in delta.tasks_removed:
                self._set_task(tasks, task_id, None, undo)
            for task in delta.tasks_added:
                self._set_task(tasks, task.task_id, task, undo)
        for run in delta.map_runs_added:
            if run.arn not in self._map_runs:
                self._map_runs[run.arn] = run
                undo.append(lambda key=run.arn: self._map_runs.pop(key))  # type: ignore[misc]

    def _set_timer(self, key: tuple[str, str], fire_at: datetime | None, undo: _Undo) -> None:
        previous = self._timers.get(key)
        if fire_at is None:
            self._timers.pop(key, None)
        else:
            self._timers[key] = fire_at
            heapq.heappush(self._timer_heap, (fire_at, *key))
        undo.append(lambda: self._restore_timer(key, previous))

    def _restore_timer(self, key: tuple[str, str], fire_at: datetime | None) -> None:
        if fire_at is None:
            self._timers.pop(key, None)
        else:
            self._timers[key] = fire_at
            heapq.heappush(self._timer_heap, (fire_at, *key))

    def _set_task(
        self, tasks: dict[str, TaskRecord], task_id: str, task: TaskRecord | None, undo: _Undo
    ) -> None:
        previous = tasks.get(task_id)
        _restore(tasks, task_id, task)
        if previous is not None and previous.task_token is not None:
            self._tokens.pop(previous.task_token, None)
        if task is not None and task.task_token is not None:
            self._tokens[task.task_token] = (task.execution_arn, task_id)

        def _undo() -> None:
            if task is not None and task.task_token is not None:
                self._tokens.pop(task.task_token, None)
            _restore(tasks, task_id, previous)
            if previous is not None and previous.task_token is not None:
                self._tokens[previous.task_token] = (previous.execution_arn, task_id)

        undo.append(_undo)

    # --- reads ----------------------------------------------------------------------------

    def get_execution(self, arn: str) -> ExecutionRecord | None:
        with self._lock:
            return self._executions.get(arn)

    def list_executions(
        self,
        state_machine_arn: str,
        status: str | None = None,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
        *,
        version_arn: str | None = None,
        alias_arn: str | None = None,
        redriven: bool | None = None,
    ) -> Page[ExecutionSummary]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = [
            "executions",
            state_machine_arn,
            status,
            version_arn,
            alias_arn,
            redriven,
        ]
        after = tuple(decode_token(next_token, query)) if next_token else None
        with self._lock:
            rows = [
                (micros(row.start_at), row.arn, row)
                for row in self._executions.values()
                if row.state_machine_arn == state_machine_arn
                and (status is None or row.status == status)
                and (version_arn is None or row.version_arn == version_arn)
                and (alias_arn is None or row.alias_arn == alias_arn)
                and (redriven is None or (row.redrive_count > 0) == redriven)
            ]
        rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
        if after is not None:
            rows = [r for r in rows if (r[0], r[1]) < after]
        items = [_summary(r[2]) for r in rows[:limit]]
        if len(rows) > limit:
            last = rows[limit - 1]
            return Page(items, encode_token(query, [last[0], last[1]]))
        return Page(items)

    def get_history(
        self,
        execution_arn: str,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
        reverse_order: bool = False,
    ) -> Page[EventRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["history", execution_arn, reverse_order]
        after = decode_token(next_token, query)[0] if next_token else None
        with self._lock:
            events = self._events.get(execution_arn, {})
            ids = sorted(events, reverse=reverse_order)
            if after is not None:
                ids = [i for i in ids if (i < after if reverse_order else i > after)]
            items = [events[i] for i in ids[:limit]]
        if len(ids) > limit:
            return Page(items, encode_token(query, [items[-1].id]))
        return Page(items)

    def get_events(self, execution_arn: str, ids: Sequence[int]) -> list[EventRecord]:
        with self._lock:
            events = self._events.get(execution_arn, {})
            return [events[i] for i in sorted(set(ids)) if i in events]

    def get_map_run(self, arn: str) -> MapRunRecord | None:
        with self._lock:
            return self._map_runs.get(arn)

    def list_map_runs(
        self,
        execution_arn: str,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
    ) -> Page[MapRunRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["map_runs", execution_arn]
        after = tuple(decode_token(next_token, query)) if next_token else None
        with self._lock:
            rows = [
                (micros(run.start_at), run.arn, run)
                for run in self._map_runs.values()
                if run.execution_arn == execution_arn
            ]
        rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
        if after is not None:
            rows = [r for r in rows if (r[0], r[1]) < after]
        items = [r[2] for r in rows[:limit]]
        if len(rows) > limit:
            last = rows[limit - 1]
            return Page(items, encode_token(query, [last[0], last[1]]))
        return Page(items)

    def running_executions(
        self, after_arn: str | None = None, limit: int = 1000
    ) -> list[ExecutionRecord]:
        with self._lock:
            arns = sorted(
                arn
                for arn, row in self._executions.items()
                if row.status == "RUNNING" and (after_arn is None or arn > after_arn)
            )
            return [self._executions[arn] for arn in arns[:limit]]

    def due_timers(self, now: datetime, limit: int = 1000) -> list[TimerRecord]:
        with self._lock:
            heap = self._timer_heap
            found: list[tuple[datetime, str, str]] = []
            seen: set[tuple[str, str]] = set()
            while heap and len(found) < limit and heap[0][0] <= now:
                entry = heapq.heappop(heap)
                key = (entry[1], entry[2])
                if self._timers.get(key) == entry[0] and key not in seen:
                    seen.add(key)
                    found.append(entry)
            for entry in found:  # still armed until a commit removes them
                heapq.heappush(heap, entry)
            return [TimerRecord(arn, timer_id, fire_at) for fire_at, arn, timer_id in found]

    def next_timer_at(self) -> datetime | None:
        with self._lock:
            heap = self._timer_heap
            while heap and self._timers.get((heap[0][1], heap[0][2])) != heap[0][0]:
                heapq.heappop(heap)
            return heap[0][0] if heap else None

    def pending_tasks(self, execution_arn: str) -> list[TaskRecord]:
        with self._lock:
            tasks = list(self._tasks.get(execution_arn, {}).values())
        tasks.sort(key=lambda t: (t.created_at, t.task_id))
        return tasks

    def claim_activity_task(
        self, activity_arn: str, key: tuple[str, str] | None = None
    ) -> TaskRecord | None:
        with self._lock:
            if key is not None:
                found = self._tasks.get(key[0], {}).get(key[1])
                candidates = [] if found is None else [found]
            else:
                candidates = sorted(
                    (t for tasks in self._tasks.values() for t in tasks.values()),
                    key=lambda t: (t.created_at, t.execution_arn, t.task_id),
                )
            for task in candidates:
                if task.resource == activity_arn and task.state == "SCHEDULED":
                    started = replace(task, state="STARTED")
                    self._tasks[task.execution_arn][task.task_id] = started
                    return started
            return None

    def release_activity_task(self, execution_arn: str, task_id: str) -> None:
        with self._lock:
            task = self._tasks.get(execution_arn, {}).get(task_id)
            if task is not None and task.state == "STARTED":
                self._tasks[execution_arn][task_id] = replace(task, state="SCHEDULED")

    def task_by_token(self, task_token: str) -> TaskRecord | None:
        with self._lock:
            where = self._tokens.get(task_token)
            return None if where is None else self._tasks[where[0]][where[1]]

    def all_tasks(
        self, after: tuple[str, str] | None = None, limit: int = 1000
    ) -> list[TaskRecord]:
        with self._lock:
            tasks = [t for by_id in self._tasks.values() for t in by_id.values()]
        tasks.sort(key=lambda t: (t.execution_arn, t.task_id))
        if after is not None:
            tasks = [t for t in tasks if (t.execution_arn, t.task_id) > after]
        return tasks[:limit]

    # --- retention and lifecycle ----------------------------------------------------------

    def expire_executions(self, older_than: datetime, limit: int = 1000) -> int:
        with self._lock:
            expired = sorted(
                (row.stop_at, arn)
                for arn, row in self._executions.items()
                if row.stop_at is not None and row.stop_at < older_than
            )[:limit]
            for _, arn in expired:
                del self._executions[arn]
                self._events.pop(arn, None)
                for task in self._tasks.pop(arn, {}).values():
                    if task.task_token is not None:
                        self._tokens.pop(task.task_token, None)
                for key in [k for k in self._timers if k[0] == arn]:
                    del self._timers[key]
            gone = {arn for _, arn in expired}
            for run_arn in [k for k, run in self._map_runs.items() if run.execution_arn in gone]:
                del self._map_runs[run_arn]
            return len(expired)

    def close(self) -> None:
        return None


def _restore(mapping: dict[str, V], key: str, value: V | None) -> None:
    if value is None:
        mapping.pop(key, None)
    else:
        mapping[key] = value


def _summary(row: ExecutionRecord) -> ExecutionSummary:
    return ExecutionSummary(
        row.arn,
        row.state_machine_arn,
        row.name,
        row.status,
        row.start_at,
        row.stop_at,
        row.redrive_count,
        row.redrive_at,
        row.version_arn,
        row.alias_arn,
        row.map_run_arn,
    )
