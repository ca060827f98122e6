"""The one interface every backend implements (memory, SQLite, PostgreSQL).

Synchronous by design: every call is a short indexed statement or one batched transaction, and
the runtime calls it from a worker thread so the event loop never blocks on the disk — unless
the store says its calls never wait (``blocking = False``, the in-memory store): those are
made on the loop, where a thread hand-over would cost more than the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from flowstate.storage.catalog import CatalogStore
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
)

__all__ = ["Store"]


class Store(CatalogStore, Protocol):
    blocking: bool  # whether a call may wait on I/O (a disk, a server)

    # --- state machines -------------------------------------------------------------------

    def create_state_machine(self, machine: StateMachineRecord) -> None:
        """Insert ``machine`` and its first revision; StateMachineAlreadyExists if the ARN is
        taken."""
        ...

    def get_state_machine(self, arn: str) -> StateMachineRecord | None: ...

    def list_state_machines(
        self, max_results: int = DEFAULT_MAX_RESULTS, next_token: str | None = None
    ) -> Page[StateMachineRecord]:
        """Ordered by ARN."""
        ...

    def update_state_machine(self, machine: StateMachineRecord) -> None:
        """Overwrite the stored row (matched by ARN) and keep ``machine``'s revision so running
        executions can still load it; StateMachineDoesNotExist if absent."""
        ...

    def delete_state_machine(self, arn: str) -> bool:
        """Remove the row; revisions stay for executions still referring to them (they go with
        retention). False if there was nothing to delete."""
        ...

    def get_revision(self, state_machine_arn: str, revision_id: str) -> RevisionRecord | None: ...

    # --- executions: the one write ----------------------------------------------------------

    def commit(self, batch: Sequence[ExecutionDelta]) -> None:
        """Land every delta of ``batch`` in one transaction, or none of them.

        At most one delta per execution. Raises ExecutionAlreadyExists (a new row's ARN is
        taken), LeaseLost (an updated row is gone or its generation moved on) or
        HistoryConflict (an event id already stored); in each case nothing was written.
        """
        ...

    # --- executions: reads ----------------------------------------------------------------

    def get_execution(self, arn: str) -> ExecutionRecord | None: ...

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
        """Most recent start first, as ListExecutions; ``version_arn``/``alias_arn`` keep the
        executions started through that version/alias, ``redriven`` those (not) redriven."""
        ...

    def get_history(
        self,
        execution_arn: str,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
        reverse_order: bool = False,
    ) -> Page[EventRecord]:
        """Ascending event ids (descending with ``reverse_order``). InvalidToken on a token not
        issued for this execution and order."""
        ...

    def claim_activity_task(
        self, activity_arn: str, key: tuple[str, str] | None = None
    ) -> TaskRecord | None:
        """Atomically mark an activity task no worker has taken yet (state ``SCHEDULED``) as
        ``STARTED`` and return it: the oldest of ``activity_arn``, or the one ``key``
        (execution ARN, task id) names. None if there is none (or another claimer won)."""
        ...

    def release_activity_task(self, execution_arn: str, task_id: str) -> None:
        """Undo ``claim_activity_task`` for a task whose start could not be recorded: it waits
        for a worker again (``STARTED`` back to ``SCHEDULED``)."""
        ...

    def get_events(self, execution_arn: str, ids: Sequence[int]) -> list[EventRecord]:
        """The events of ``execution_arn`` with these ids (those that exist), ascending."""
        ...

    def get_map_run(self, arn: str) -> MapRunRecord | None: ...

    def list_map_runs(
        self,
        execution_arn: str,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
    ) -> Page[MapRunRecord]:
        """The map runs of one execution, most recent start first. InvalidToken on a token not
        issued for this execution."""
        ...

    def running_executions(
        self, after_arn: str | None = None, limit: int = 1000
    ) -> list[ExecutionRecord]:
        """RUNNING executions ordered by ARN, those after ``after_arn``: recovery walks them
        in bounded pages."""
        ...

    def due_timers(self, now: datetime, limit: int = 1000) -> list[TimerRecord]:
        """Timers with ``fire_at <= now``, earliest first (ties by execution ARN, timer id).
        A timer stays until a commit removes it."""
        ...

    def next_timer_at(self) -> datetime | None:
        """The earliest deadline of all timers, so the runtime knows how long it may idle."""
        ...

    def pending_tasks(self, execution_arn: str) -> list[TaskRecord]:
        """Ordered by creation, then task id."""
        ...

    def task_by_token(self, task_token: str) -> TaskRecord | None: ...

    def all_tasks(
        self, after: tuple[str, str] | None = None, limit: int = 1000
    ) -> list[TaskRecord]:
        """Every pending task of every execution, ordered by (execution ARN, task id), those
        after ``after``: recovery re-runs them in bounded pages."""
        ...

    # --- retention and lifecycle ----------------------------------------------------------

    def expire_executions(self, older_than: datetime, limit: int = 1000) -> int:
        """Delete up to ``limit`` executions that stopped before ``older_than``, with their
        history, timers, tasks and map runs; returns how many. Call until it returns 0."""
        ...

    def close(self) -> None: ...
