"""The durable loop: executions advance in ticks, and each tick is one group commit.

A tick takes the pending work of up to ``group_commit_max`` executions (starts, task
completions, fired timers, stop requests), steps each execution through the pure interpreter
— pure states run back to back — folds what each did into one ``ExecutionDelta``, lands all
of them in one transaction, and only then carries out their commands (invoke a function) and
answers the API calls that were waiting for that commit. A crash before the commit loses only
pure work nobody saw; a crash after it loses nothing: on start-up, the tasks in the store are
re-run with the idempotency key they were given, and timers fire on their stored deadlines.

Standard executions are written every tick and evicted from memory while they wait, so a
waiting execution costs rows, not memory. Express executions run in memory: an asynchronous
start is written once (so a crash re-runs it: at-least-once) and its end once; a synchronous
one is never written (at-most-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flowstate.asl import errors
from flowstate.asl.errors import StatesError
from flowstate.asl.model import StateMachine
from flowstate.asl.parse import parse_definition
from flowstate.integrations.functions import (
    FunctionRegistry,
    is_lambda_resource,
    prepare_lambda_call,
    unhosted_resource,
)
from flowstate.interpreter.execution import EXECUTION_TIMEOUT_TIMER
from flowstate.interpreter.messages import (
    CancelTask,
    CancelTimer,
    Command,
    Event,
    MapRunUpdated,
    RecordMapRun,
    ScheduleTask,
    StartTimer,
    StopRequested,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    TimerFired,
)
from flowstate.interpreter.redrive import REDRIVABLE_STATUSES, redrive
from flowstate.runtime.clock import Clock
from flowstate.runtime.cluster import Ownership, Solo
from flowstate.runtime.live import (
    Live,
    TickChanges,
    after_commit,
    build_delta,
    new_live,
    restore_live,
)
from flowstate.runtime.timers import MemoryTimers
from flowstate.storage import ExecutionDelta, ExecutionRecord, LeaseLost, StorageError, Store

__all__ = [
    "DuplicateStart",
    "Engine",
    "EngineClosed",
    "EngineSettings",
    "NotRedrivable",
    "StartRequest",
]

log = logging.getLogger("flowstate.engine")
T = TypeVar("T")


class EngineClosed(RuntimeError):
    """The engine is draining or stopped: it takes no new work."""


class NotRedrivable(Exception):
    """RedriveExecution refused by the engine: the execution is running, gone, or not one it
    can run again (the service checks AWS's conditions first; this covers the races)."""


class DuplicateStart(Exception):
    """A start names an execution this engine is already starting or running."""

    def __init__(self, record: ExecutionRecord | None) -> None:
        super().__init__("duplicate start")
        self.record = record


@dataclass(frozen=True, slots=True)
class EngineSettings:
    account_id: str = "123456789012"
    region: str = "us-east-1"
    group_commit_max: int = 512
    max_history_events: int = 25_000
    express_timeout_seconds: int = 300
    retention_days: int = 90
    task_threads: int = 32
    cache_size: int = 1024  # waiting Standard executions kept in memory (LRU)
    express_history: bool = False  # record Express histories in memory (benchmarks, logging)


@dataclass(frozen=True, slots=True)
class StartRequest:
    """Everything needed to start one execution; the service has checked it."""

    definition: str
    state_machine_arn: str
    state_machine_name: str
    revision_id: str
    role_arn: str
    type: str  # STANDARD | EXPRESS
    name: str
    arn: str
    input: str  # JSON text, as given
    input_value: Any
    version_arn: str | None = None
    alias_arn: str | None = None
    attributes: str = "{}"


class _Start:
    __slots__ = ("future", "live")

    def __init__(self, live: Live, future: asyncio.Future[ExecutionRecord]) -> None:
        self.live = live
        self.future = future


class _Redrive(_Start):
    """RedriveExecution: answered, like a start, with the row once the change is committed."""

    __slots__ = ()


class Engine:
    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        functions: FunctionRegistry | None = None,
        settings: EngineSettings | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        # Which executions this engine runs: all (one node), or those it holds a lease on.
        self.ownership: Ownership = ownership or Solo(store)
        self._foreign: set[str] = set()  # loaded but owned by another node
        self._running: set[tuple[str, str]] = set()  # (execution, task id) invoked, not done
        self.functions = functions or FunctionRegistry()
        self.settings = settings or EngineSettings()
        self._live: OrderedDict[str, Live] = OrderedDict()  # LRU order for parked ones
        self._work: OrderedDict[str, list[Event | _Start]] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[Any]]] = {}  # commit acknowledgements
        self._stop_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._firing: set[tuple[str, str]] = set()  # durable timers handed to a tick
        self._machines: dict[tuple[str, str], StateMachine] = {}
        self._mem_timers = MemoryTimers()
        self._inflight = 0
        self._busy = False
        self._closing = False
        self._wake = asyncio.Event()
        self._timer_wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._calls: set[asyncio.Future[None]] = set()  # async handlers running now
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="flowstate-commit")
        self._reader = ThreadPoolExecutor(2, thread_name_prefix="flowstate-read")
        self._task_pool = ThreadPoolExecutor(
            self.settings.task_threads, thread_name_prefix="flowstate-task"
        )
        self.commits = 0  # batches landed (for tests and metrics)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what the store says is in progress, then start the loops."""
        if self.ownership.recovers:
            await self._recover()
        self._tasks = [
            asyncio.create_task(self._pump(), name="flowstate-pump"),
            asyncio.create_task(self._timer_loop(), name="flowstate-timers"),
            asyncio.create_task(self._retention_loop(), name="flowstate-retention"),
        ]
        self._wake.set()
        await self.ownership.start(self)

    async def stop(self) -> None:
        """Drain: take no new work, let the commit in flight land, stop the loops."""
        self._closing = True
        self._wake.set()
        while self._busy:
            await asyncio.sleep(0.005)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.ownership.stop()
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(EngineClosed("flowstate is shutting down"))
        self._task_pool.shutdown(wait=False, cancel_futures=True)
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)

    @property
    def closing(self) -> bool:
        return self._closing

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store read off the event loop (for the service's describe/list calls)."""
        return await self._read(fn, *args)

    # --- API entry points ----------------------------------------------------------------

    def machine(
        self, state_machine_arn: str, revision_id: str, definition: str, type: str
    ) -> StateMachine:
        key = (state_machine_arn, revision_id)
        machine = self._machines.get(key)
        if machine is None:
            machine = parse_definition(definition, state_machine_type=type)
            self._machines[key] = machine
        return machine

    def new_record(self, request: StartRequest, now: datetime) -> ExecutionRecord:
        record = ExecutionRecord(
            arn=request.arn,
            state_machine_arn=request.state_machine_arn,
            name=request.name,
            type=request.type,
            status="RUNNING",
            input=request.input,
            start_at=now,
            revision_id=request.revision_id,
            seed=secrets.randbits(64),
            version_arn=request.version_arn,
            alias_arn=request.alias_arn,
            attributes=request.attributes,
        )
        return self.ownership.stamp(record)

    async def start_execution(self, request: StartRequest) -> ExecutionRecord:
        """Start an execution; returns its row once the start is committed (Standard and
        asynchronous Express). The caller has checked that the name is free."""
        if self._closing:
            raise EngineClosed("flowstate is shutting down and takes no new executions")
        if request.arn in self._live or request.arn in self._work:
            existing = self._live.get(request.arn)
            raise DuplicateStart(existing.record if existing is not None else None)
        machine = self.machine(
            request.state_machine_arn, request.revision_id, request.definition, request.type
        )
        record = self.new_record(request, self.clock.now())
        durable = request.type != "EXPRESS"
        live = new_live(
            machine,
            record,
            state_machine_name=request.state_machine_name,
            role_arn=request.role_arn,
            input_value=request.input_value,
            durable=durable,
            record_history=durable or self.settings.express_history,
            max_events=self.settings.max_history_events,
        )
        future: asyncio.Future[ExecutionRecord] = asyncio.get_running_loop().create_future()
        self._live[live.arn] = live
        self._enqueue(live.arn, _Start(live, future))
        return await future

    async def run_sync(self, request: StartRequest) -> Live:
        """StartSyncExecution: an Express execution run in memory to its end, never written."""
        if self._closing:
            raise EngineClosed("flowstate is shutting down and takes no new executions")
        machine = self.machine(
            request.state_machine_arn, request.revision_id, request.definition, request.type
        )
        record = self.new_record(request, self.clock.now())
        live = new_live(
            machine,
            record,
            state_machine_name=request.state_machine_name,
            role_arn=request.role_arn,
            input_value=request.input_value,
            durable=False,
            synchronous=True,
            record_history=self.settings.express_history,
            max_events=self.settings.max_history_events,
        )
        live.is_new = False
        live.written = False  # at-most-once: nothing is ever stored for it
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._stop_waiters[live.arn] = [done]
        self._live[live.arn] = live
        self._enqueue(live.arn, _Start(live, loop.create_future()))
        await done
        return live

    async def stop_execution(self, arn: str, error: str | None, cause: str | None) -> None:
        """Abort a running execution; returns once the abort is committed."""
        await self._submit(arn, StopRequested(error, cause))

    async def redrive_execution(self, arn: str) -> ExecutionRecord:
        """RedriveExecution: a FAILED, TIMED_OUT or ABORTED Standard execution runs again from
        where it stopped (``interpreter.redrive``). Returns its row (RUNNING, ``redrive_count``
        and ``redrive_at`` set) once the redrive is committed; NotRedrivable otherwise."""
        if self._closing:
            raise EngineClosed("flowstate is shutting down and takes no redrives")
        if arn in self._live:
            raise NotRedrivable("Execution is RUNNING and cannot be redriven")
        await self.ownership.take(arn)
        live = await self._read(self._load_stopped, arn)
        if arn in self._live:  # another redrive got there while the row was read
            raise NotRedrivable("Execution is RUNNING and cannot be redriven")
        future: asyncio.Future[ExecutionRecord] = asyncio.get_running_loop().create_future()
        self._live[arn] = live
        self._enqueue(arn, _Redrive(live, future))
        return await future

    async def update_map_run(self, execution_arn: str, event: MapRunUpdated) -> None:
        """UpdateMapRun on a run of ``execution_arn``; returns once the change is committed."""
        await self._submit(execution_arn, event)

    async def _submit(self, arn: str, event: Event) -> None:
        if self._closing:
            raise EngineClosed("flowstate is shutting down")
        if arn not in self._live and await self.ownership.forward(arn, event):
            return  # another node owns it and has applied the event
        await self.apply(arn, event)

    async def apply(self, arn: str, event: Event) -> None:
        """Apply ``event`` to ``arn`` here; returns once committed (LeaseLost if another node
        owns it)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(arn, []).append(future)
        self._enqueue(arn, event)
        await future

    async def wait_stopped(self, arn: str) -> None:
        """Until ``arn`` is no longer running (tests, StartSyncExecution)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._stop_waiters.setdefault(arn, [])
        waiters.append(future)
        live = self._live.get(arn)
        if live is None:
            record = await self._read(self.store.get_execution, arn)
            if record is None or record.status != "RUNNING":
                if future in waiters:
                    waiters.remove(future)
                return
        await future

    def _enqueue(self, arn: str, item: Event | _Start) -> None:
        work = self._work.get(arn)
        if work is None:
            self._work[arn] = [item]
        else:
            work.append(item)
        self._idle.clear()
        self._wake.set()

    # --- the pump ------------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            if not self._work:
                self._busy = False
                self._idle.set()
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            self._busy = True
            try:
                await self._tick()
            except Exception:  # never let one bad tick stop the engine
                log.exception("flowstate engine tick failed")

    async def _tick(self) -> None:
        limit = self.settings.group_commit_max
        arns: list[str] = []
        for arn in self._work:
            arns.append(arn)
            if len(arns) >= limit:
                break
        batch = {arn: self._work.pop(arn) for arn in arns}
        missing = [arn for arn in arns if arn not in self._live]
        foreign: set[str] = set()
        if missing:
            for loaded in await self._read(self._load_many, missing):
                self._live[loaded.arn] = loaded
            foreign = self._foreign.intersection(missing)
            self._foreign -= foreign
        now = self.clock.now()
        deltas: list[ExecutionDelta] = []
        applied: list[tuple[Live, TickChanges, list[Command], ExecutionDelta | None]] = []
        orphans: dict[str, list[str]] = {}
        for arn, items in batch.items():
            live = self._live.get(arn)
            if live is None:
                if arn in foreign:  # another node owns it now: not ours to change
                    self._drop(arn, items, LeaseLost([arn]))
                    continue
                fired = [e.timer_id for e in items if isinstance(e, TimerFired)]
                if fired:  # a timer of an execution that is gone: drop its row
                    orphans[arn] = fired
                for future in self._waiters.pop(arn, ()):  # nothing to change: answer now
                    if not future.done():
                        future.set_result(None)
                continue
            changes = TickChanges()
            commands = self._apply(live, items, changes, now)
            delta = build_delta(live, changes, now)
            if delta is not None:
                deltas.append(delta)
            applied.append((live, changes, commands, delta))
        deltas.extend(ExecutionDelta(arn, timers_removed=ids) for arn, ids in orphans.items())
        if deltas:
            try:
                await self._commit(deltas, batch, applied)
            except Exception as error:
                self._commit_failed(batch, applied, error)
                return
            self.commits += 1
        timers_changed = False
        for live, changes, commands, delta in applied:
            if delta is not None and delta.execution is not None:
                live.record = delta.execution
            after_commit(live, changes)
            timers_changed |= bool(changes.timers_added or changes.timers_removed)
            self._after_tick(live, batch[live.arn], commands)
        for arn, ids in orphans.items():
            for timer_id in ids:
                self._firing.discard((arn, timer_id))
        self._evict()
        if timers_changed or orphans:
            self._timer_wake.set()

    async def _commit(
        self,
        deltas: list[ExecutionDelta],
        batch: dict[str, list[Event | _Start]],
        applied: list[tuple[Live, TickChanges, list[Command], ExecutionDelta | None]],
    ) -> None:
        """Land ``deltas``. Executions another node has taken over (LeaseLost: the store
        fenced them off) leave memory and this tick, and the rest is committed without them."""
        loop = asyncio.get_running_loop()
        while deltas:
            try:
                await loop.run_in_executor(self._writer, self.store.commit, deltas)
                return
            except LeaseLost as error:
                arns = {d.execution_arn for d in deltas}
                gone = set(error.arns) & arns or arns
                for arn in gone:
                    self._live.pop(arn, None)
                    self._drop(arn, batch.get(arn, []), error)
                deltas[:] = [d for d in deltas if d.execution_arn not in gone]
                applied[:] = [a for a in applied if a[0].arn not in gone]
                self.ownership.lost(sorted(gone))

    def _drop(self, arn: str, items: list[Event | _Start], error: Exception) -> None:
        """Fail whoever waits on ``arn``'s work: this node does not run it (any more)."""
        self._mem_timers.forget(arn)
        for item in items:
            if isinstance(item, _Start) and not item.future.done():
                item.future.set_exception(error)
            elif isinstance(item, TimerFired):
                self._firing.discard((arn, item.timer_id))
        for future in self._waiters.pop(arn, ()):
            if not future.done():
                future.set_exception(error)

    def _apply(
        self, live: Live, items: list[Event | _Start], changes: TickChanges, now: datetime
    ) -> list[Command]:
        """Step ``live`` through this tick's items; returns the commands to carry out."""
        execution = live.execution
        commands: list[Command] = []
        for item in items:
            if isinstance(item, _Redrive):
                out = redrive(execution, now)
                live.record = replace(  # a stop in this same tick overrides it in build_delta
                    live.record,
                    status="RUNNING",
                    output=None,
                    error=None,
                    cause=None,
                    stop_at=None,
                    redrive_count=execution.info.redrive_count,
                    redrive_at=now,
                )
            elif isinstance(item, _Start):
                out = execution.start(now)
                if live.record.type == "EXPRESS":
                    limit = timedelta(seconds=self.settings.express_timeout_seconds)
                    commands.append(StartTimer(EXECUTION_TIMEOUT_TIMER, now + limit))
            else:
                if isinstance(item, TimerFired):
                    changes.timers_removed.add(item.timer_id)
                    changes.timers_added.pop(item.timer_id, None)
                out = execution.step(item, now)
            self._collect(live, out, changes, commands, now)
        return commands

    def _collect(
        self,
        live: Live,
        out: list[Command],
        changes: TickChanges,
        commands: list[Command],
        now: datetime,
    ) -> None:
        execution = live.execution
        pending = list(out)
        while pending:
            command = pending.pop(0)
            if isinstance(command, StartTimer):
                if live.durable:
                    changes.timers_added[command.timer_id] = command.fire_at
                    changes.timers_removed.discard(command.timer_id)
                else:
                    commands.append(command)
            elif isinstance(command, CancelTimer):
                if live.durable:
                    changes.timers_added.pop(command.timer_id, None)
                    changes.timers_removed.add(command.timer_id)
                else:
                    commands.append(command)
            elif isinstance(command, ScheduleTask):
                if not is_lambda_resource(command.resource):
                    # Nothing to call: the failure is decided now, in this same tick.
                    failure = unhosted_resource(command.resource)
                    pending.extend(
                        execution.step(
                            TaskFailed(command.task_id, failure.error, failure.cause), now
                        )
                    )
                    continue
                # The call goes out right after this tick's commit: it has started.
                changes.tasks_added[command.task_id] = command
                pending.extend(execution.step(TaskStarted(command.task_id), now))
                commands.append(command)
            elif isinstance(command, CancelTask):
                changes.tasks_added.pop(command.task_id, None)
                changes.tasks_removed.add(command.task_id)
                commands.append(command)
            elif isinstance(command, RecordMapRun):
                changes.map_runs[command.map_run_arn] = command.figures
        for item_task_id in [t for t in live.tasks if t not in execution._tasks]:
            changes.tasks_removed.add(item_task_id)

    def _after_tick(self, live: Live, items: list[Event | _Start], commands: list[Command]) -> None:
        arn = live.arn
        for item in items:
            if isinstance(item, _Start) and not item.future.done():
                item.future.set_result(live.record)
            elif isinstance(item, TimerFired):
                self._firing.discard((arn, item.timer_id))
        for future in self._waiters.pop(arn, ()):
            if not future.done():
                future.set_result(None)
        for command in commands:
            if isinstance(command, ScheduleTask):
                self._invoke(live, command)
            elif isinstance(command, StartTimer):
                self._mem_timers.push(command.fire_at, arn, command.timer_id)
                self._timer_wake.set()
            elif isinstance(command, CancelTimer):
                self._mem_timers.cancel(arn, command.timer_id)
        if live.status != "RUNNING":
            self._live.pop(arn, None)
            self._mem_timers.forget(arn)
            for future in self._stop_waiters.pop(arn, ()):
                if not future.done():
                    future.set_result(None)
            return
        if arn in self._live:
            self._live.move_to_end(arn)  # most recently used

    def _evict(self) -> None:
        """Keep at most ``cache_size`` waiting Standard executions in memory; the others are
        reloaded from their snapshot when something happens to them."""
        excess = len(self._live) - self.settings.cache_size
        if excess <= 0:
            return
        victims = []
        for arn, live in self._live.items():  # least recently used first
            if live.durable and live.inflight == 0 and arn not in self._work:
                victims.append(arn)
                if len(victims) >= excess:
                    break
        for arn in victims:
            del self._live[arn]

    def _commit_failed(
        self,
        batch: dict[str, list[Event | _Start]],
        applied: list[tuple[Live, TickChanges, list[Command], ExecutionDelta | None]],
        error: Exception,
    ) -> None:
        """Nothing landed: forget the in-memory steps and fail the callers; the store's state
        is the truth, and the events are retried against it."""
        log.error("flowstate commit failed, nothing written: %s", error)
        for live, _, _, _ in applied:
            self._live.pop(live.arn, None)
            for item in batch[live.arn]:
                if isinstance(item, _Start):
                    if not item.future.done():
                        item.future.set_exception(error)
                elif live.durable and not live.is_new:
                    self._enqueue(live.arn, item)  # replayed on the stored state
            for future in self._waiters.pop(live.arn, ()):
                if not future.done():
                    future.set_exception(
                        StorageError(f"the change could not be committed: {error}")
                    )

    # --- tasks ---------------------------------------------------------------------------

    def _invoke(self, live: Live, command: ScheduleTask) -> None:
        arn = live.arn
        self._inflight += 1
        live.inflight += 1
        self._running.add((arn, command.task_id))

        def finished(event: Event) -> None:
            self._running.discard((arn, command.task_id))
            self._inflight -= 1
            current = self._live.get(arn)
            if current is not None:
                current.inflight = max(0, current.inflight - 1)
            live.inflight = max(0, live.inflight - 1)
            self._enqueue(arn, event)

        try:
            call = prepare_lambda_call(
                command.resource,
                command.parameters,
                idempotency_key=command.idempotency_key,
                functions=self.functions,
                region=self.settings.region,
                account=self.settings.account_id,
            )
        except StatesError as failure:
            finished(TaskFailed(command.task_id, failure.error, failure.cause))
            return
        loop = asyncio.get_running_loop()
        if call.is_async:
            task = asyncio.ensure_future(
                self._await_call(call.run_async(), command.task_id, finished)
            )
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
            return

        def run() -> Event:
            try:
                return TaskSucceeded(command.task_id, call.run())
            except StatesError as failure:
                return TaskFailed(command.task_id, failure.error, failure.cause)
            except BaseException as exc:  # a handler that breaks the runtime's contract
                return TaskFailed(command.task_id, errors.RUNTIME, f"{type(exc).__name__}: {exc}")

        try:
            future = loop.run_in_executor(self._task_pool, run)
        except RuntimeError:  # the pool is shut down: draining
            self._inflight -= 1
            self._running.discard((arn, command.task_id))
            return
        future.add_done_callback(lambda f: None if f.cancelled() else finished(f.result()))

    async def _await_call(
        self, call: Awaitable[Any], task_id: str, finished: Callable[[Event], None]
    ) -> None:
        try:
            result = await call
        except StatesError as failure:
            finished(TaskFailed(task_id, failure.error, failure.cause))
        except Exception as exc:
            finished(TaskFailed(task_id, errors.RUNTIME, f"{type(exc).__name__}: {exc}"))
        else:
            finished(TaskSucceeded(task_id, result))

    # --- recovery --------------------------------------------------------------------------

    def _load_many(self, arns: list[str]) -> list[Live]:
        out = []
        for arn in arns:
            live = self._load(arn)
            if live is not None:
                out.append(live)
        return out

    def _load(self, arn: str) -> Live | None:
        record = self.store.get_execution(arn)
        if record is None or record.status != "RUNNING" or record.snapshot is None:
            return None
        if not self.ownership.owns(record):
            self._foreign.add(arn)
            return None
        machine = self._machine_for(record)
        if machine is None:
            return None
        return restore_live(
            machine, record, self.store.pending_tasks(arn), self.settings.max_history_events
        )

    def _load_stopped(self, arn: str) -> Live:
        """A stopped Standard execution as it stopped, to be redriven."""
        record = self.store.get_execution(arn)
        if record is None:
            raise NotRedrivable(f"Execution Does Not Exist: '{arn}'")
        if record.type == "EXPRESS":
            raise NotRedrivable("Express executions cannot be redriven")
        if record.status not in REDRIVABLE_STATUSES:
            raise NotRedrivable(f"Execution is {record.status} and cannot be redriven")
        machine = self._machine_for(record) if record.snapshot is not None else None
        if machine is None:
            raise NotRedrivable("The execution's saved state or definition is gone")
        live = restore_live(machine, record, [], self.settings.max_history_events)
        live.timers = set()  # a stopped execution keeps no timers, the timeout's included
        return live

    def _machine_for(self, record: ExecutionRecord) -> StateMachine | None:
        key = (record.state_machine_arn, record.revision_id)
        machine = self._machines.get(key)
        if machine is None:
            revision = self.store.get_revision(record.state_machine_arn, record.revision_id)
            if revision is None:
                log.error("execution %s: its definition %s is gone", record.arn, key)
                return None
            machine = parse_definition(revision.definition, state_machine_type=record.type)
            self._machines[key] = machine
        return machine

    async def _recover(self) -> None:
        """Re-run the tasks that were in flight and the Express executions that never
        finished; timers need nothing: the timer loop fires the overdue ones at once."""
        tasks = 0
        after: tuple[str, str] | None = None
        while True:
            page = await self._read(self.store.all_tasks, after, 1000)
            if not page:
                break
            after = (page[-1].execution_arn, page[-1].task_id)
            by_execution: dict[str, list[str]] = {}
            for task in page:
                by_execution.setdefault(task.execution_arn, []).append(task.task_id)
            for loaded in await self._read(self._load_many, list(by_execution)):
                self._live[loaded.arn] = loaded
                for task_id in by_execution[loaded.arn]:
                    command = loaded.tasks.get(task_id)
                    if command is not None:
                        tasks += 1
                        self._invoke(loaded, command)
        rerun = 0
        after_arn: str | None = None
        while True:
            rows = await self._read(self.store.running_executions, after_arn, 1000)
            if not rows:
                break
            after_arn = rows[-1].arn
            for record in rows:
                if record.type == "EXPRESS" and record.snapshot is None:
                    machine = await self._read(self._machine_for, record)
                    if machine is None:
                        continue
                    self._rerun_express(machine, record)
                    rerun += 1
        if tasks or rerun:
            log.info(
                "recovered: %d task(s) re-run, %d Express execution(s) restarted", tasks, rerun
            )

    # --- scale-out: executions taken over from other nodes, and given up -----------------

    async def adopt(self, records: list[ExecutionRecord]) -> None:
        """Run executions this node has just taken over (their node died or left), as
        recovery does at start-up: pending tasks re-run with their idempotency keys,
        unfinished Express executions restart, timers fire from the store.

        The claim is committed before this runs, so a tick may already have loaded one of
        them (a timer of it fired): that copy is at least as new as ``records`` and is kept.
        A copy of an older generation (held before another node had it) is replaced."""
        durable = []
        for record in records:
            held = self._live.get(record.arn)
            if held is not None and held.record.generation < record.generation:
                del self._live[record.arn]
            if record.type == "EXPRESS" and record.snapshot is None:
                if record.arn not in self._live:
                    machine = await self._read(self._machine_for, record)
                    if machine is not None and record.arn not in self._live:
                        self._rerun_express(machine, record)
            else:
                durable.append(record.arn)
        missing = [arn for arn in durable if arn not in self._live]
        for loaded in await self._read(self._load_many, missing) if missing else []:
            self._live.setdefault(loaded.arn, loaded)
        for arn in durable:
            live = self._live.get(arn)
            if live is None:
                continue
            for task_id, command in list(live.tasks.items()):
                if (arn, task_id) not in self._running:  # the dead node's call: re-run it
                    self._invoke(live, command)
        self._timer_wake.set()

    def forget_stored(self, reason: Exception) -> None:
        """This node's lease expired: every stored execution it holds may be another node's
        now. Forget them (the store is the truth); those not committed yet stay."""
        for arn, live in list(self._live.items()):
            if live.written and not live.is_new:
                del self._live[arn]
                self._mem_timers.forget(arn)
                self._firing = {key for key in self._firing if key[0] != arn}
                for future in self._waiters.pop(arn, ()):
                    if not future.done():
                        future.set_exception(reason)

    def _rerun_express(self, machine: StateMachine, record: ExecutionRecord) -> None:
        name = record.state_machine_arn.rsplit(":", 1)[-1]
        attributes = json.loads(record.attributes or "{}")
        live = new_live(
            machine,
            record,
            state_machine_name=name,
            role_arn=attributes.get(
                "roleArn", f"arn:aws:iam::{self.settings.account_id}:role/flowstate"
            ),
            input_value=json.loads(record.input),
            durable=False,
            record_history=self.settings.express_history,
            max_events=self.settings.max_history_events,
        )
        live.is_new = False
        loop = asyncio.get_running_loop()
        self._live[live.arn] = live
        self._enqueue(live.arn, _Start(live, loop.create_future()))

    # --- timers ----------------------------------------------------------------------------

    def _can_run(self) -> bool:
        return bool(self._work) or self._busy or self._inflight > 0

    async def _timer_loop(self) -> None:
        while not self._closing:
            self._timer_wake.clear()
            now = self.clock.now()
            fired = 0
            for arn, timer_id in self._mem_timers.pop_due(now):
                self._enqueue(arn, TimerFired(timer_id))
                fired += 1
            due = await self._read(self.ownership.due_timers, now, 1000)
            for timer in due:
                key = (timer.execution_arn, timer.timer_id)
                if key in self._firing:
                    continue
                self._firing.add(key)
                self._enqueue(timer.execution_arn, TimerFired(timer.timer_id))
                fired += 1
            if fired:
                await self._idle.wait()
                continue
            durable_next = await self._read(self.ownership.next_timer_at)
            candidates = [t for t in (durable_next, self._mem_timers.next_at()) if t is not None]
            next_at = min(candidates) if candidates else None
            if self.clock.is_virtual:
                # Timers fire as soon as nothing else can run, in deadline order.
                if next_at is None:
                    await self._wait_timer_wake(None)
                elif self._work or self._busy:
                    await self._idle.wait()
                    await asyncio.sleep(0)
                elif self._inflight:
                    await self._wait_timer_wake(0.005)  # a task is running: it may arm one
                else:
                    self.clock.advance_to(next_at)
                continue
            delay = None if next_at is None else (next_at - self.clock.now()).total_seconds()
            if delay is not None and delay <= 0:
                await self._idle.wait()  # its tick is under way; look again after it
                await asyncio.sleep(0)
                continue
            await self._wait_timer_wake(delay)

    async def _wait_timer_wake(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._timer_wake.wait(), timeout)

    # --- retention -------------------------------------------------------------------------

    async def _retention_loop(self) -> None:
        keep = timedelta(days=self.settings.retention_days)
        while not self._closing:
            try:
                while await self._read(self.store.expire_executions, self.clock.now() - keep, 1000):
                    pass
            except StorageError as error:
                log.warning("execution retention: %s", error)
            await asyncio.sleep(3600)

    # --- views -----------------------------------------------------------------------------

    def live(self, arn: str) -> Live | None:
        return self._live.get(arn)

    async def until_idle(self) -> None:
        """Until no tick is pending and no task runs (tests)."""
        while self._can_run():
            await self._idle.wait()
            await asyncio.sleep(0)
