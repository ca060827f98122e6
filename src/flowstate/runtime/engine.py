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
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flowstate.asl import errors
from flowstate.asl.errors import StatesError
from flowstate.asl.model import StateMachine
from flowstate.asl.parse import parse_definition
from flowstate.integrations.dispatch import (
    Answered,
    HttpCall,
    dispatch,
    failure_event,
    is_served,
    outcome_event,
)
from flowstate.integrations.functions import FunctionRegistry, LambdaCall, unhosted_resource
from flowstate.integrations.http import HttpInvoker
from flowstate.integrations.invoker import BatchCall, FunctionInvoker
from flowstate.integrations.mocks import MockConfig, MockSession, session_for
from flowstate.interpreter.execution import EXECUTION_TIMEOUT_TIMER
from flowstate.interpreter.messages import (
    CancelTask,
    CancelTimer,
    Command,
    Event,
    MapRunUpdated,
    RecordMapRun,
    RuntimeFailure,
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
from flowstate.runtime.cluster import Ownership, RemoteCallback, Solo
from flowstate.runtime.eager import run_detached, start_eagerly
from flowstate.runtime.external import (
    SCHEDULED,
    Callback,
    EngineClosed,
    ExternalTasks,
    TaskGone,
    task_route,
)
from flowstate.runtime.live import (
    Live,
    TickChanges,
    after_commit,
    build_delta,
    new_live,
    restore_live,
)
from flowstate.runtime.timers import MemoryTimers
from flowstate.storage import (
    ExecutionDelta,
    ExecutionRecord,
    LeaseLost,
    StorageError,
    Store,
    TaskRecord,
)

__all__ = [
    "DuplicateStart",
    "Engine",
    "EngineClosed",
    "EngineSettings",
    "NotRedrivable",
    "StartRequest",
]

log = logging.getLogger("flowstate.engine")
# Calls one execution makes inside one tick before the rest wait for the next tick (a loop
# of quick Tasks must not hold the tick, and other executions, for long).
INLINE_CALLS_PER_TICK = 100
# A tick waits for quick calls only (Engine._run_round). A function two of whose calls ran
# longer than QUICK_CALL_SECONDS within SLOW_CALL_PAUSE_SECONDS (answered, or still running
# when the tick stopped waiting; one alone may be a hiccup of the host or a collection) is
# not waited for during the next pause: its calls answer in a later tick, as any slow call's.
# Nor is any call after a round that got no answer at all (the pool's threads all taken).
SLOW_CALL_PAUSE_SECONDS = 1.0
QUICK_CALL_SECONDS = 0.001
STOPPED_MEMO = 4096  # executions remembered as stopped (wait_stopped answers without a read)
T = TypeVar("T")


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
    first_tick: int = 32  # executions in a tick started while no commit is in flight
    max_history_events: int = 25_000
    express_timeout_seconds: int = 300
    retention_days: int = 90
    task_threads: int = 32
    cache_size: int = 1024  # waiting Standard executions kept in memory (LRU)
    express_history: bool = False  # record Express histories in memory (benchmarks, logging)
    # How long a Standard execution's steps between calls may wait to be committed together
    # (Engine._may_hold): its stored history lags by up to this while it runs calls, and a
    # crash re-runs up to this much of them (at-least-once, as any call). 0: never held.
    hold_calls_seconds: float = 0.1
    # How long a tick waits for the plain sync calls its executions made (they run on the
    # pool's threads meanwhile) before it goes on without them: an answer that came by then
    # is stepped in the same tick, as an ``async`` handler's is. 0: never waits. The rounds
    # of one tick (a chain of calls is one round per call) wait at most
    # ``sync_wait_tick_seconds`` in all; the calls made after that answer in later ticks.
    sync_wait_seconds: float = 0.005
    sync_wait_tick_seconds: float = 0.05


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


@dataclass(frozen=True, slots=True)
class _Row:
    """An execution as a reader thread found it; parsed and restored on the loop's thread."""

    record: ExecutionRecord
    tasks: list[TaskRecord]
    definition: str | None  # None: the machine is parsed already; "": it is gone


class _Redrive(_Start):
    """RedriveExecution: answered, like a start, with the row once the change is committed."""

    __slots__ = ()


class _Rewrite:
    """Write an ended Express execution's end again (its first write failed)."""

    __slots__ = ()


class _Flush:
    """Commit an execution's held steps (their time is up, or the engine stops)."""

    __slots__ = ()


_Item = Event | _Start | Callback | _Rewrite | _Flush  # one piece of an execution's work

# The items a held execution may take in without committing (see Engine._may_hold).
_CALL_OUTCOMES = (TaskSucceeded, TaskFailed, TaskStarted)


_Applied = tuple[Live, TickChanges, list[Command], ExecutionDelta | None]


class _Stepping:
    """An execution in a tick whose step waits for calls made within the tick."""

    __slots__ = ("changes", "commands", "failed", "items", "live")

    def __init__(
        self, live: Live, items: list[_Item], changes: TickChanges, commands: list[Command]
    ) -> None:
        self.live, self.items, self.changes, self.commands = live, items, changes, commands
        self.failed = False


class _Parked:
    """A plain sync call made within a tick: its execution's step goes on with its answer
    once the tick's round of such calls is over (``Engine._run_round``)."""

    __slots__ = ("command", "stepping", "task")

    def __init__(self, stepping: _Stepping, command: ScheduleTask, task: LambdaCall) -> None:
        self.stepping, self.command, self.task = stepping, command, task


class _Tick:
    """One tick between its preparation and its commit."""

    __slots__ = ("applied", "batch", "deltas", "orphans", "waiters")

    def __init__(self, batch: dict[str, list[_Item]]) -> None:
        self.batch = batch
        # The callers to answer once this tick lands: taken with the work, so a call whose
        # event arrives meanwhile waits for the tick that carries its event.
        self.waiters: dict[str, list[asyncio.Future[Any]]] = {}
        self.deltas: list[ExecutionDelta] = []
        self.applied: list[_Applied] = []
        self.orphans: dict[str, list[str]] = {}  # timers of executions that are gone


class Engine:
    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        functions: FunctionRegistry | None = None,
        settings: EngineSettings | None = None,
        http: HttpInvoker | None = None,
        mocks: MockConfig | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        # Which executions this engine runs: all (one node), or those it holds a lease on.
        self.ownership: Ownership = ownership or Solo(store)
        self._foreign: set[str] = set()  # loaded but owned by another node
        self.functions = functions or FunctionRegistry()
        self.mocks = mocks
        self.settings = settings or EngineSettings()
        self.http = http or HttpInvoker(region=self.settings.region)
        self._live: OrderedDict[str, Live] = OrderedDict()  # LRU order for parked ones
        self._work: OrderedDict[str, list[_Item]] = OrderedDict()
        self._ticking: set[str] = set()  # in a tick being prepared or committed
        self._requeues = 0  # work put back after a failed commit, not yet queued again
        # Reads of stored executions in flight outside a tick (a takeover's adopt), and the
        # commits that landed for them meanwhile: such a read may predate the commit.
        self._loading: dict[str, int] = {}
        self._landed: dict[str, int] = {}
        self._landings = 0
        # Executions whose steps wait to be committed (see _may_hold); an execution dropped
        # from memory meanwhile (a lease lost) is pruned by _holding.
        self._held: set[Live] = set()
        self._waiters: dict[str, list[asyncio.Future[Any]]] = {}  # commit acknowledgements
        self._stop_waiters: dict[str, list[asyncio.Future[None]]] = {}
        # Executions this engine saw stop, latest last (at most STOPPED_MEMO): wait_stopped
        # answers for them without a store read. Any work for one (a redrive) forgets it.
        self._stopped: OrderedDict[str, None] = OrderedDict()
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
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="flowstate-commit")
        self._reader = ThreadPoolExecutor(2, thread_name_prefix="flowstate-read")
        # A store that never waits on I/O (the in-memory one) is called on the loop: a hand-over
        # to a thread and back costs more than its calls do.
        self._store_on_loop = not store.blocking
        self._invoker: FunctionInvoker | None = None  # made on the loop, in start()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Calls finished on other threads, waiting for the loop (see _completed).
        self._inbox: list[tuple[Callable[[Event | None], None], Event]] = []
        self._inbox_lock = threading.Lock()
        self._inbox_armed = False
        # Calls in flight per execution (task id -> call), and mocked executions' test cases.
        self._running: dict[str, dict[str, Future[Any] | asyncio.Future[Any] | BatchCall]] = {}
        self._sync_calls: list[BatchCall] = []  # sync calls of this turn, one batch (see flush)
        # While a tick steps its executions: the plain sync calls it waits for (_run_round).
        self._round: list[_Parked] | None = None
        self._stepping: _Stepping | None = None  # the execution being stepped, meanwhile
        self._slow: dict[str, float] = {}  # function -> loop time until which it is not waited for
        self._pool_busy_until = 0.0  # loop time until which no sync call is waited for
        self._strikes: dict[str, float] = {}  # function -> loop time of its last slow call
        self._sessions: dict[str, MockSession | None] = {}
        self._finishers: dict[tuple[str, str], Callable[[Event | None], None]] = {}
        self._calls_since: float | None = None  # virtual clock: calls alone running since
        self.commits = 0  # batches landed (for tests and metrics)
        # Activities, task-token callbacks and nested executions (runtime/external.py).
        self.external = ExternalTasks(self)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what the store says is in progress, then start the loops."""
        self._loop = asyncio.get_running_loop()
        self._invoker = FunctionInvoker(threads=self.settings.task_threads, loop=self._loop)
        await self._read(self._load_activities)
        if not self.ownership.recovers:  # several nodes: others may create activities
            store = self.store
            self.external.activities.known.lookup = lambda arn: store.get_activity(arn) is not None
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
        self.external.close()
        self._flush_all_held()  # (a held step is committed, not left to a re-run)
        self._wake.set()
        # Work already queued (a start, a callback answered in the same turn) is still done;
        # what cannot be within the drain's bound is refused below, never left hanging.
        deadline = asyncio.get_running_loop().time() + 10
        while self._busy or (self._work and asyncio.get_running_loop().time() < deadline):
            await asyncio.sleep(0.005)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        closed = EngineClosed("flowstate is shutting down")
        for items in self._work.values():
            for item in items:
                if isinstance(item, (_Start, Callback)) and not item.future.done():
                    item.future.set_exception(closed)
        await self.ownership.stop()
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(EngineClosed("flowstate is shutting down"))
        if self._invoker is not None:
            self._invoker.close()  # never waits for a stuck handler
        await self.http.aclose()
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)

    @property
    def closing(self) -> bool:
        return self._closing

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """The engine's own store reads: on the loop when the store never waits."""
        if self._store_on_loop:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store read off the event loop (for the service's describe/list calls; ``fn``
        may be any work that waits, so it always goes to a reader thread)."""
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn, *args)

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
        while arn in self._ticking or arn in self._work:  # stale work: let it be dropped
            await asyncio.sleep(0.001)
        live = await self._load_stopped(arn)
        if arn in self._live or arn in self._ticking or arn in self._work:
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

    async def apply(self, arn: str, event: Event | RemoteCallback) -> None:
        """Apply ``event`` to ``arn`` here; returns once committed (LeaseLost if another node
        owns it)."""
        if isinstance(event, RemoteCallback):  # SendTask* received by another node
            try:
                await self.external.callback(arn, "", event.token, event.event, forwarded=True)
            except TaskGone:
                log.info("a forwarded callback for %s found its task ended", arn)
            return
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
        if live is None and arn in self._stopped:
            waiters.remove(future)
            if not waiters:
                del self._stop_waiters[arn]
            return
        if live is None:
            record = await self._read(self.store.get_execution, arn)
            if record is None or record.status != "RUNNING":
                if future in waiters:
                    waiters.remove(future)
                return
        await future

    def _enqueue(self, arn: str, item: _Item) -> None:
        work = self._work.get(arn)
        if work is None:
            self._stopped.pop(arn, None)
            self._work[arn] = [item]
        else:
            work.append(item)
        self._idle.clear()
        self._wake.set()

    # --- the pump ------------------------------------------------------------------------

    async def _pump(self) -> None:
        """Prepare ticks and land them, two at a time: while one tick's commit is in the
        writer thread (SQLite works without the GIL), the next tick — other executions —
        is stepped. Commits land in order, one at a time; an execution is in at most one
        tick until its commit has landed."""
        landing: asyncio.Future[None] | None = None
        while True:
            self._wake.clear()
            arns = self._ready()
            if not arns:
                if landing is not None:
                    waker: asyncio.Future[Any] = asyncio.ensure_future(self._wake.wait())
                    pending: set[asyncio.Future[Any]] = {landing, waker}
                    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    waker.cancel()
                    if landing.done():
                        landing = None
                    continue
                if not self._work:
                    self._busy = False
                    self._idle.set()
                    if self._closing:
                        return
                    await self._wake.wait()
                continue
            self._busy = True
            try:
                tick = await self._prepare(arns)
            except Exception:  # never let one bad tick stop the engine
                self._ticking.difference_update(arns)
                log.exception("flowstate engine tick failed")
                await asyncio.sleep(0.1)  # (a store that is down: no hot loop)
                continue
            if landing is not None:
                await landing  # one commit at a time, in order
            landing = asyncio.ensure_future(self._land(tick))

    def _ready(self) -> list[str]:
        """The executions the next tick takes: those with work and not in a tick already.
        While no commit is in flight, a first slice is kept small so that the pipeline
        fills (the rest is stepped while that slice commits)."""
        limit = self.settings.group_commit_max
        if not self._ticking:
            limit = min(limit, self.settings.first_tick)
        arns: list[str] = []
        ticking = self._ticking
        for arn in self._work:
            if arn in ticking:
                continue
            arns.append(arn)
            if len(arns) >= limit:
                break
        ticking.update(arns)
        return arns

    async def _prepare(self, arns: list[str]) -> _Tick:
        """Step the executions of ``arns`` through this tick's work; nothing is written yet."""
        batch = {arn: self._work.pop(arn) for arn in arns}
        tick = _Tick(batch)
        for arn in arns:
            waiters = self._waiters.pop(arn, None)
            if waiters:
                tick.waiters[arn] = waiters
        lives = {arn: self._live.get(arn) for arn in arns}
        missing = [arn for arn, live in lives.items() if live is None]
        foreign: set[str] = set()
        if missing:
            try:
                loaded_lives = await self._load_many(missing)
            except BaseException:
                # Nothing was stepped: the work and its callers go back, ahead of what came since.
                for arn, items in batch.items():
                    self._work[arn] = items + self._work.get(arn, [])
                    self._work.move_to_end(arn, last=False)
                for arn, waiters in tick.waiters.items():
                    self._waiters[arn] = waiters + self._waiters.get(arn, [])
                raise
            for loaded in loaded_lives:
                # A copy put there meanwhile (a takeover's adopt) is at least as new: kept.
                # (A redrive cannot have: it waits while its execution is in a tick.)
                self._live.setdefault(loaded.arn, loaded)
            for arn in missing:
                lives[arn] = self._live.get(arn)
            foreign = self._foreign.intersection(missing)
            self._foreign -= foreign
        now = self.clock.now()
        # Plain sync calls made while stepping: run on the pool's threads, and waited for
        # together once every execution has been stepped (_run_round).
        round_: list[_Parked] = []
        self._round = round_ if self.settings.sync_wait_seconds > 0 else None
        waiting: list[_Stepping] = []
        try:
            for arn, items in batch.items():
                live = lives[arn]
                if live is None:
                    if arn in foreign:  # another node owns it now: not ours to change
                        self._drop(arn, items, tick.waiters.pop(arn, []), LeaseLost([arn]))
                        continue
                    fired = [e.timer_id for e in items if isinstance(e, TimerFired)]
                    if fired:  # a timer of an execution that is gone: drop its row
                        tick.orphans[arn] = fired
                    for item in items:
                        if isinstance(item, Callback) and not item.future.done():
                            item.future.set_exception(TaskGone(arn))  # the execution has ended
                        elif isinstance(item, _Start) and not item.future.done():  # (defensive)
                            item.future.set_exception(NotRedrivable("the execution is gone"))
                    for future in tick.waiters.pop(arn, ()):  # nothing to change: answer now
                        if not future.done():
                            future.set_result(None)
                    continue
                changes = live.held if live.held is not None else TickChanges()
                if live.held_items:  # (what the held steps took: replayed if the commit fails)
                    items = batch[arn] = live.held_items + items
                stepping = _Stepping(live, items, changes, [])
                self._stepping = stepping
                try:
                    self._apply(live, items, changes, now, stepping.commands)
                except Exception as error:
                    self._step_failed_in_tick(tick, stepping, error)
                    continue
                if round_ and round_[-1].stepping is stepping:
                    waiting.append(stepping)  # its step goes on once its calls have answered
                    continue
                self._settle(tick, stepping, now)
            budget_ends = time.monotonic() + self.settings.sync_wait_tick_seconds
            while round_:
                left = min(budget_ends - time.monotonic(), self.settings.sync_wait_seconds)
                if left <= 0:  # the tick has waited enough: these calls answer later
                    self._round = None
                    for park in round_:
                        if not park.stepping.failed:
                            live, task_id = park.stepping.live, park.command.task_id
                            self._perform_call(
                                live, task_id, park.task, self._finisher(live, task_id)
                            )
                    break
                self._round = []
                self._run_round(tick, round_, now, left)
                round_ = self._round
        finally:  # (a tick that broke off: no call is parked for the next)
            self._round = self._stepping = None
        for stepping in waiting:
            if not stepping.failed:
                self._settle(tick, stepping, now)
        tick.deltas.extend(
            ExecutionDelta(arn, timers_removed=ids) for arn, ids in tick.orphans.items()
        )
        return tick

    def _settle(self, tick: _Tick, stepping: _Stepping, now: datetime) -> None:
        """``stepping``'s step is over: hold it, or put its delta into ``tick``."""
        live, items, changes, commands = (
            stepping.live,
            stepping.items,
            stepping.changes,
            stepping.commands,
        )
        try:
            if self._may_hold(live, items, commands, changes, tick):
                self._hold(live, items, changes)
                return
            delta = build_delta(live, changes, now)
        except Exception as error:
            self._step_failed_in_tick(tick, stepping, error)
            return
        self._release_held(live)
        if delta is not None:
            tick.deltas.append(delta)
        tick.applied.append((live, changes, commands, delta))

    def _step_failed_in_tick(self, tick: _Tick, stepping: _Stepping, error: Exception) -> None:
        live = stepping.live
        log.exception("flowstate: execution %s could not take its next step", live.arn)
        stepping.failed = True
        self._release_held(live)
        self._step_failed(tick, live, stepping.items, error)

    def _run_round(self, tick: _Tick, parked: list[_Parked], now: datetime, timeout: float) -> None:
        """Run the tick's parked sync calls on the pool's threads and wait for them, up to
        ``timeout``; each execution steps on with the answers that came. A call not
        answered by then runs on as any call does (its answer comes in a later tick). A
        function two of whose calls ran longer than ``QUICK_CALL_SECONDS`` (within such a
        pause) is not waited for during the next ``SLOW_CALL_PAUSE_SECONDS``."""
        assert self._invoker is not None and self._loop is not None
        parked = [park for park in parked if not park.stepping.failed]  # (its step broke)
        if not parked:
            return

        def late(index: int, item: BatchCall) -> Callable[[Any, StatesError | None], None]:
            park = parked[index]
            live, task_id = park.stepping.live, park.command.task_id
            finished = self._finisher(live, task_id)
            self._running.setdefault(live.arn, {})[task_id] = item
            self._finishers[(live.arn, task_id)] = finished
            return self._reporter(task_id, finished)

        answers, slow = self._invoker.run_waiting(
            [park.task for park in parked], timeout, late, slow_after=QUICK_CALL_SECONDS
        )
        if slow:
            now_s = self._loop.time()
            for name in {parked[index].task.function.name for index in slow}:
                last = self._strikes.get(name)
                if last is not None and now_s - last < SLOW_CALL_PAUSE_SECONDS:
                    self._slow[name] = now_s + SLOW_CALL_PAUSE_SECONDS
                    del self._strikes[name]
                else:
                    if len(self._strikes) > 10_000:  # (names come from definitions)
                        self._strikes.clear()
                    self._strikes[name] = now_s
        if all(isinstance(answer, BatchCall) for answer in answers):
            # Not one answer: the pool's threads are all taken (by long calls), or the host
            # stalled. Nothing is waited for during the next pause.
            self._pool_busy_until = self._loop.time() + SLOW_CALL_PAUSE_SECONDS
        for park, answer in zip(parked, answers, strict=True):
            stepping = park.stepping
            task_id = park.command.task_id
            live = stepping.live
            # Not stepped: a call that runs on, and the answer of a task its execution has
            # ended meanwhile (a failed branch cancelled it, a stop, a step that broke).
            if isinstance(answer, BatchCall) or stepping.failed:
                continue
            if not live.execution.has_task(task_id):
                continue
            stepping.changes.tasks_added.pop(task_id, None)  # done within the tick
            result, failure = answer
            event = _sync_event(task_id, result, failure)
            self._stepping = stepping
            try:
                out = live.execution.step(event, now)
                self._collect(live, out, stepping.changes, stepping.commands, now)
            except Exception as error:
                self._step_failed_in_tick(tick, stepping, error)
            finally:
                self._stepping = None

    def _may_hold(
        self,
        live: Live,
        items: list[_Item],
        commands: list[Command],
        changes: TickChanges,
        tick: _Tick,
    ) -> bool:
        """Whether ``live``'s step need not be committed yet: a Standard execution whose
        only news are call outcomes, that now waits only for calls it started in this tick,
        and has been held for less than ``hold_calls_seconds``. Its next steps then land
        together (one commit for a run of quick calls instead of one per call); a crash
        meanwhile re-runs those calls with the same idempotency keys, as a crash right after
        any call does. Anything else (a start, a callback, a timer, a caller waiting for the
        commit, the end) commits at once."""
        limit = self.settings.hold_calls_seconds
        if (
            limit <= 0
            or not self.ownership.recovers  # one node only (see _collect)
            or not live.durable
            or live.is_new
            or live.status != "RUNNING"
            or commands
            or live.inflight == 0
            or self._closing
            or live.arn in tick.waiters
            or changes.timers_added
            or changes.map_runs
        ):
            return False
        if any(type(item) not in _CALL_OUTCOMES for item in items):
            return False
        assert self._loop is not None
        return live.held_since is None or self._loop.time() - live.held_since < limit

    def _hold(self, live: Live, items: list[_Item], changes: TickChanges) -> None:
        assert self._loop is not None
        live.held = changes
        live.held_items = items
        if live.held_since is None:
            live.held_since = self._loop.time()
            self._held.add(live)
            self._loop.call_later(self.settings.hold_calls_seconds, self._flush_held, live)

    def _release_held(self, live: Live) -> None:
        """``live``'s held steps go into this tick's commit (or are dropped with it)."""
        if live.held is None and live.held_since is None and not live.held_items:
            return  # (nearly always: nothing was held)
        self._held.discard(live)
        live.held, live.held_items, live.held_since = None, [], None

    def _flush_held(self, live: Live) -> None:
        """The hold's time is up: commit what is held, unless a tick is on it already."""
        arn = live.arn
        if live.held is None or self._live.get(arn) is not live:
            return
        if arn not in self._work and arn not in self._ticking:
            self._enqueue(arn, _Flush())

    def _holding(self) -> bool:
        """Whether some execution in memory has held steps (it will commit them)."""
        for live in list(self._held):
            if live.held is None or self._live.get(live.arn) is not live:
                self._held.discard(live)  # (released, or dropped with its held steps)
        return bool(self._held)

    def _flush_all_held(self) -> None:
        for live in list(self._live.values()):
            if live.held is not None:
                self._flush_held(live)

    async def _land(self, tick: _Tick) -> None:
        """Commit ``tick``, then carry out its commands and answer its callers."""
        try:
            await self._commit_and_apply(tick)
        except Exception:  # never let one bad tick stop the engine
            log.exception("flowstate engine tick failed")
        finally:
            self._ticking.difference_update(tick.batch)
            self._wake.set()

    async def _commit_and_apply(self, tick: _Tick) -> None:
        batch, applied, orphans = tick.batch, tick.applied, tick.orphans
        if tick.deltas:
            try:
                await self._commit(tick)
            except Exception as error:
                self._ticking.difference_update(batch)
                self._commit_failed(tick, error)
                return
            self.commits += 1
        timers_changed = False
        for live, changes, commands, delta in applied:
            if delta is not None and delta.execution is not None:
                live.record = delta.execution
            after_commit(live, changes)
            timers_changed |= bool(changes.timers_added or changes.timers_removed)
            self._after_tick(live, batch[live.arn], commands, tick.waiters.pop(live.arn, ()))
        for arn, ids in orphans.items():
            for timer_id in ids:
                self._firing.discard((arn, timer_id))
        self._ticking.difference_update(batch)
        self._evict()
        if timers_changed or orphans:
            self._timer_wake.set()

    async def _commit(self, tick: _Tick) -> None:
        """Land the tick's deltas. Executions another node has taken over (LeaseLost: the
        store fenced them off) leave memory and this tick, and the rest is committed without
        them."""
        loop = asyncio.get_running_loop()
        deltas = tick.deltas
        while deltas:
            try:
                if self._store_on_loop:
                    self.store.commit(deltas)
                else:
                    await loop.run_in_executor(self._writer, self.store.commit, deltas)
                if self._loading:
                    self._landings += 1
                    for delta in deltas:
                        if delta.execution_arn in self._loading:
                            self._landed[delta.execution_arn] = self._landings
                return
            except LeaseLost as error:
                arns = {d.execution_arn for d in deltas}
                gone = set(error.arns) & arns or arns
                mine = {applied[0].arn: applied[0] for applied in tick.applied}
                for arn in gone:
                    if self._live.get(arn) is mine.get(arn):  # (not a copy adopted since)
                        self._live.pop(arn, None)
                    self._drop(arn, tick.batch.get(arn, []), tick.waiters.pop(arn, []), error)
                deltas[:] = [d for d in deltas if d.execution_arn not in gone]
                tick.applied[:] = [a for a in tick.applied if a[0].arn not in gone]
                self.ownership.lost(sorted(gone))

    def _drop(
        self,
        arn: str,
        items: list[_Item],
        waiters: Iterable[asyncio.Future[Any]],
        error: Exception,
    ) -> None:
        """Fail whoever waits on ``arn``'s work: this node does not run it (any more)."""
        self._mem_timers.forget(arn)
        for item in items:
            if isinstance(item, (_Start, Callback)) and not item.future.done():
                item.future.set_exception(error)
            elif isinstance(item, TimerFired):
                self._firing.discard((arn, item.timer_id))
        for future in waiters:
            if not future.done():
                future.set_exception(error)

    def _apply(
        self,
        live: Live,
        items: list[_Item],
        changes: TickChanges,
        now: datetime,
        commands: list[Command],
    ) -> None:
        """Step ``live`` through this tick's items; the commands to carry out go to
        ``commands``."""
        execution = live.execution
        execution.known_activities = self.external.activities.known
        for item in items:
            if isinstance(item, (_Rewrite, _Flush)):
                continue  # nothing to step: build_delta writes what there is
            if isinstance(item, Callback):
                if not execution.has_task(item.event.task_id):  # type: ignore[union-attr]
                    if not item.future.done():
                        item.future.set_exception(TaskGone(live.arn))
                    continue
                event = self.external.prepare(live, item.event, changes, callback=True)
                out = execution.step(event, now)
            elif isinstance(item, _Redrive):
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
                out = execution.step(self.external.prepare(live, item, changes), now)
            self._collect(live, out, changes, commands, now)

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
                route = task_route(command.resource)
                mocked = self._mocked(live, command)
                if route.kind == "unhosted" and not is_served(command, self._session(live)):
                    # Nothing to call: the failure is decided now, in this same tick.
                    failure = unhosted_resource(command.resource)
                    pending.extend(
                        execution.step(
                            TaskFailed(command.task_id, failure.error, failure.cause), now
                        )
                    )
                    continue
                changes.tasks_added[command.task_id] = command
                if route.kind == "activity" and not mocked:
                    # Queued for a worker after this tick's commit; started when one takes it.
                    changes.task_states[command.task_id] = SCHEDULED
                    commands.append(command)
                    continue
                # The call goes out right after this tick's commit (or now): it has started.
                pending.extend(execution.step(TaskStarted(command.task_id), now))
                if (
                    route.kind == "lambda"
                    and not route.waits_for_token
                    and (not live.durable or not live.is_new)
                    and not self._closing
                    and changes.inline_calls < INLINE_CALLS_PER_TICK
                    # One node only: with several, a call is made after its step is committed.
                    # A node may lose an execution to another at any moment (its lease ran
                    # out while it was stopped); a call made before the commit that would
                    # have told it so is then made twice, by both nodes.
                    and self.ownership.recovers
                ):
                    # Standard: the start is stored, so calling now, before this tick's
                    # commit, is what a crash right after the call would look like.
                    # Express (at-least-once) calls in its first tick too: a start whose
                    # commit fails is refused to its caller after the calls were made, as
                    # a start whose reply was lost; the retried start runs them again.
                    changes.inline_calls += 1
                    answer = self._call_now(live, command)
                    if isinstance(answer, LambdaCall):  # waited for with the tick's round
                        assert self._round is not None and self._stepping is not None
                        self._round.append(_Parked(self._stepping, command, answer))
                        continue
                    if answer is not None:
                        del changes.tasks_added[command.task_id]  # done within the tick
                        pending.extend(execution.step(answer, now))
                    # (else it runs on; its row is written with this tick)
                    continue
                commands.append(command)
            elif isinstance(command, CancelTask):
                changes.tasks_added.pop(command.task_id, None)
                changes.tasks_removed.add(command.task_id)
                commands.append(command)
            elif isinstance(command, RecordMapRun):
                changes.map_runs[command.map_run_arn] = command.figures
        if live.tasks:
            for item_task_id in [t for t in live.tasks if t not in execution._tasks]:
                changes.tasks_removed.add(item_task_id)

    def _after_tick(
        self,
        live: Live,
        items: list[_Item],
        commands: list[Command],
        waiters: Iterable[asyncio.Future[Any]],
    ) -> None:
        arn = live.arn
        for item in items:
            if isinstance(item, _Start) and not item.future.done():
                item.future.set_result(live.record)
            elif isinstance(item, Callback) and not item.future.done():
                item.future.set_result(None)
            elif isinstance(item, TimerFired):
                self._firing.discard((arn, item.timer_id))
        for future in waiters:
            if not future.done():
                future.set_result(None)
        for command in commands:
            if isinstance(command, ScheduleTask):
                self.external.perform(live, command)
            elif isinstance(command, CancelTask):
                self.external.cancel(arn, command.task_id)
                self._abandon(arn, command.task_id)
            elif isinstance(command, StartTimer):
                self._mem_timers.push(command.fire_at, arn, command.timer_id)
                self._timer_wake.set()
            elif isinstance(command, CancelTimer):
                self._mem_timers.cancel(arn, command.timer_id)
        if live.status != "RUNNING":
            for task_id in list(self._running.get(arn, ())):
                self._abandon(arn, task_id)
            self._sessions.pop(arn, None)
            self._live.pop(arn, None)
            self._mem_timers.forget(arn)
            stopped = self._stopped
            stopped[arn] = None
            if len(stopped) > STOPPED_MEMO:
                stopped.popitem(last=False)
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
            if (
                live.durable
                and live.inflight == 0
                and live.held is None
                and arn not in self._work
                and arn not in self._ticking
            ):
                victims.append(arn)
                if len(victims) >= excess:
                    break
        for arn in victims:
            del self._live[arn]

    def _commit_failed(self, tick: _Tick, error: Exception) -> None:
        """Nothing landed: forget the in-memory steps and fail the callers; the store's state
        is the truth, and the events are replayed against it, ahead of what came since.

        An execution of the tick that had nothing to write (an Express execution between its
        start and its end) loses nothing: its step stands and is carried out as if landed."""
        log.error("flowstate commit failed, nothing written: %s", error)
        refused = StorageError(f"the change could not be committed: {error}")
        for live, changes, commands, delta in tick.applied:
            arn = live.arn
            if delta is None:
                after_commit(live, changes)
                self._after_tick(live, tick.batch[arn], commands, tick.waiters.pop(arn, ()))
                continue
            ended_express = not live.durable and not live.is_new and live.status != "RUNNING"
            if not ended_express:
                self._live.pop(arn, None)
            replay: list[_Item] = [_Rewrite()] if ended_express else []
            for item in tick.batch[arn]:
                if isinstance(item, _Start):
                    if not item.future.done():
                        item.future.set_exception(error)
                elif live.durable and not live.is_new:
                    replay.append(item)  # (a Callback's caller is answered by the replay)
                elif isinstance(item, Callback):
                    if not item.future.done():
                        item.future.set_exception(refused)
                elif isinstance(item, TimerFired):
                    self._firing.discard((arn, item.timer_id))
            if replay:
                # Again shortly (not at once: a store that is down would make a hot loop).
                self._requeues += 1
                asyncio.get_running_loop().call_later(0.1, self._requeue, arn, replay)
            for future in tick.waiters.pop(arn, ()):
                if not future.done():
                    future.set_exception(refused)
            if not live.durable and not ended_express:
                # An Express execution whose start or end could not be written: its row (if
                # any) is re-run after a restart (at-least-once); whoever waits is told now.
                self._mem_timers.forget(arn)
                for future in self._stop_waiters.pop(arn, ()):
                    if not future.done():
                        future.set_exception(refused)
        for arn, ids in tick.orphans.items():
            for timer_id in ids:
                self._firing.discard((arn, timer_id))

    def _requeue(self, arn: str, items: list[_Item]) -> None:
        self._requeues -= 1
        self._work[arn] = items + self._work.get(arn, [])
        self._work.move_to_end(arn, last=False)
        self._idle.clear()
        self._wake.set()

    def _step_failed(self, tick: _Tick, live: Live, items: list[_Item], error: Exception) -> None:
        """Stepping ``live`` raised (a flowstate bug, or data the interpreter could not
        handle). Its in-memory state is dropped; a stored execution is failed with
        ``States.Runtime`` on its stored state (next tick) rather than left RUNNING forever,
        and the callers of this tick get the error."""
        arn = live.arn
        self._live.pop(arn, None)
        cause = f"flowstate could not continue the execution: {type(error).__name__}: {error}"
        for item in items:
            if isinstance(item, (_Start, Callback)) and not item.future.done():
                item.future.set_exception(error)
            elif isinstance(item, TimerFired):
                self._firing.discard((arn, item.timer_id))
        for future in tick.waiters.pop(arn, ()):
            if not future.done():
                future.set_exception(error)
        already_failing = any(isinstance(item, RuntimeFailure) for item in items)
        if live.durable and not live.is_new and not already_failing:
            self._enqueue(arn, RuntimeFailure(errors.RUNTIME, cause))
            return
        for future in self._stop_waiters.pop(arn, ()):  # never stored: it ends here
            if not future.done():
                future.set_exception(error)

    # --- tasks ---------------------------------------------------------------------------

    def _mocked(self, live: Live, command: ScheduleTask) -> bool:
        """Whether the execution's test case answers this task (it is then never performed:
        no activity queue, no child execution, no token awaited)."""
        session = self._session(live)
        return session is not None and session.mocks(command.state_name)

    def _session(self, live: Live) -> MockSession | None:
        """The execution's mock test case (``<arn>#<CASE>`` at its start), if any."""
        if self.mocks is None:
            return None
        arn = live.arn
        if arn not in self._sessions:
            attributes = json.loads(live.record.attributes or "{}")
            name = live.record.state_machine_arn.rsplit(":", 1)[-1]
            self._sessions[arn] = session_for(self.mocks, name, attributes)
        return self._sessions[arn]

    def _dispatch(self, live: Live, command: ScheduleTask) -> Answered | LambdaCall | HttpCall:
        return dispatch(
            command,
            functions=self.functions,
            session=self._session(live),
            region=self.settings.region,
            account=self.settings.account_id,
        )

    def _invoke(self, live: Live, command: ScheduleTask) -> None:
        task = self._dispatch(live, command)
        finished = self._finisher(live, command.task_id)
        if isinstance(task, Answered):
            finished(task.event(command.task_id))
            return
        self._perform_call(live, command.task_id, task, finished)

    def _finisher(self, live: Live, task_id: str) -> Callable[[Event | None], None]:
        """Count the call in flight; the returned ``finished`` ends it (once) and hands its
        event, if any, to the execution."""
        arn = live.arn
        self._inflight += 1
        live.inflight += 1
        settled = False

        def finished(event: Event | None) -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            self._finishers.pop((arn, task_id), None)
            self._inflight -= 1
            current = self._live.get(arn)
            if current is not None:
                current.inflight = max(0, current.inflight - 1)
            live.inflight = max(0, live.inflight - 1)
            calls = self._running.get(arn)
            if calls is not None:
                calls.pop(task_id, None)
                if not calls:
                    del self._running[arn]
            if event is not None:
                self._enqueue(arn, event)

        return finished

    def _perform_call(
        self,
        live: Live,
        task_id: str,
        task: LambdaCall | HttpCall,
        finished: Callable[[Event | None], None],
    ) -> None:
        arn = live.arn
        coroutine: Coroutine[Any, Any, Any] | None = None
        if isinstance(task, HttpCall):
            coroutine = self.http.invoke(task.resource, task.parameters)
        elif _on_this_loop(task):
            if task.function.never_suspends:  # no task needed: its one step, now
                finished(self._run_through(task_id, task))
                return
            coroutine = task.run_async()  # nothing to queue behind: straight onto this loop
        if coroutine is not None:
            assert self._loop is not None
            call = start_eagerly(self._loop, coroutine)
            if call.done():  # it ended in its first step: no task to watch
                finished(_outcome(task_id, call))
                return
            self._watch_call(arn, task_id, call, finished)
            return
        if self._invoker is None or self._closing:  # draining: the call is re-run on restart
            finished(None)
            return
        assert not isinstance(task, HttpCall)
        function = task.function
        if not function.isolate and function.concurrency is None:
            # A plain sync handler: into this turn's batch (one thread hand-over for all).
            item = BatchCall(task, self._reporter(task_id, finished))
            self._running.setdefault(arn, {})[task_id] = item
            self._finishers[(arn, task_id)] = finished
            if not self._sync_calls:
                assert self._loop is not None
                self._loop.call_soon(self._flush_sync_calls)
            self._sync_calls.append(item)
            return
        future = self._invoker.submit(task)
        self._running.setdefault(arn, {})[task_id] = future

        def done(f: Future[Any]) -> None:  # on the handler's thread
            if not f.cancelled():
                self._completed(finished, outcome_event(task_id, f))

        future.add_done_callback(done)
        self._finishers[(arn, task_id)] = finished

    def _flush_sync_calls(self) -> None:
        calls = [item for item in self._sync_calls if not item.abandoned]
        self._sync_calls = []
        if calls and self._invoker is not None:
            self._invoker.run_batch(calls)

    def _watch_call(
        self,
        arn: str,
        task_id: str,
        call: asyncio.Task[Any],
        finished: Callable[[Event | None], None],
    ) -> None:
        """A call running on this loop: its outcome goes to the execution when it ends."""
        self._running.setdefault(arn, {})[task_id] = call
        call.add_done_callback(
            lambda f: None if f.cancelled() else finished(outcome_event(task_id, f))
        )
        self._finishers[(arn, task_id)] = finished

    def _reporter(
        self, task_id: str, finished: Callable[[Event | None], None]
    ) -> Callable[[Any, StatesError | None], None]:
        """A sync call's report (on the handler's thread): its event goes to the loop."""

        def report(result: Any, failure: StatesError | None) -> None:
            self._completed(finished, _sync_event(task_id, result, failure))

        return report

    def _waits_for(self, task: LambdaCall) -> bool:
        """Whether the tick may wait for ``task``, a plain sync call (see ``_run_round``)."""
        function = task.function
        if (
            self._round is None
            or function.is_async
            or function.isolate
            or function.concurrency is not None
            or self._invoker is None
        ):
            return False
        if self._pool_busy_until:
            assert self._loop is not None
            if self._pool_busy_until > self._loop.time():
                return False
            self._pool_busy_until = 0.0
        if self._slow:
            until = self._slow.get(function.name)
            if until is not None:
                assert self._loop is not None
                if until > self._loop.time():
                    return False
                del self._slow[function.name]
        return True

    def _call_now(self, live: Live, command: ScheduleTask) -> Event | LambdaCall | None:
        """Call a Lambda task's function inside the tick that scheduled it. Returns its
        outcome when it is known at once: decided without a call (a mock, a missing
        function), or an ``async`` handler that returned without awaiting. A plain sync call
        the tick waits for is returned as it is, to be parked for the tick's round. Else
        None: the call runs on (on this loop, a pool thread or a process) and is watched
        like any."""
        task = self._dispatch(live, command)
        task_id = command.task_id
        if isinstance(task, Answered):
            return task.event(task_id)
        if not isinstance(task, HttpCall) and _on_this_loop(task):
            if task.function.never_suspends:
                return self._run_through(task_id, task)
            assert self._loop is not None
            call = start_eagerly(self._loop, task.run_async())
            if call.done():
                return _outcome(task_id, call)
            self._watch_call(live.arn, task_id, call, self._finisher(live, task_id))
            return None
        if not isinstance(task, HttpCall) and self._waits_for(task):
            return task
        self._perform_call(live, task_id, task, self._finisher(live, task_id))
        return None

    def _run_through(self, task_id: str, task: LambdaCall) -> Event:
        """The outcome of an ``async`` handler that cannot suspend, run here and now (as the
        first step of its own task would run: ``eager.run_detached``)."""
        assert self._loop is not None
        try:
            return TaskSucceeded(task_id, run_detached(self._loop, task.run_through))
        except asyncio.CancelledError:  # (the handler raised it itself), as ``_outcome``
            return TaskFailed(task_id, errors.RUNTIME, "CancelledError: the handler was cancelled")
        except Exception as failure:
            return failure_event(task_id, failure)

    def _completed(self, finished: Callable[[Event | None], None], event: Event) -> None:
        """A call ended on another thread: hand its event to the loop. One wake-up carries
        every completion that arrives before the loop gets to them."""
        with self._inbox_lock:
            self._inbox.append((finished, event))
            if self._inbox_armed:
                return
            self._inbox_armed = True
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: the engine has stopped
            self._loop.call_soon_threadsafe(self._drain_inbox)  # (the call re-runs later)

    def _drain_inbox(self) -> None:
        with self._inbox_lock:
            items, self._inbox = self._inbox, []
            self._inbox_armed = False
        for finished, event in items:
            finished(event)

    def _abandon(self, arn: str, task_id: str) -> None:
        """The attempt ended (TimeoutSeconds, a stop, the execution's end): drop its call."""
        future = self._running.get(arn, {}).get(task_id)
        finished = self._finishers.pop((arn, task_id), None)
        if isinstance(future, asyncio.Future):  # an HTTP call on this loop
            future.cancel()
        elif isinstance(future, BatchCall):  # skipped if not started; else its result dropped
            future.abandoned = True
        elif future is not None and self._invoker is not None:
            self._invoker.abandon(future)
        if finished is not None:
            finished(None)

    # --- recovery --------------------------------------------------------------------------

    # Definitions are parsed on the loop's thread, never on a reader thread: a compiled
    # JSONata expression (jsonatapy) may only be used, and dropped, on the thread that made it.

    def _read_rows(self, arns: list[str]) -> list[_Row]:
        """(reader thread) The stored state of the RUNNING executions among ``arns``."""
        rows = []
        for arn in arns:
            record = self.store.get_execution(arn)
            if record is None or record.status != "RUNNING" or record.snapshot is None:
                continue
            if not self.ownership.owns(record):
                self._foreign.add(arn)
                continue
            rows.append(_Row(record, self.store.pending_tasks(arn), self._definition_of(record)))
        return rows

    def _definition_of(self, record: ExecutionRecord) -> str | None:
        """(reader thread) The definition text, unless its machine is parsed already."""
        if (record.state_machine_arn, record.revision_id) in self._machines:
            return None
        revision = self.store.get_revision(record.state_machine_arn, record.revision_id)
        if revision is None:
            return ""
        return revision.definition

    async def _load_many(self, arns: list[str]) -> list[Live]:
        out = []
        for row in await self._read(self._read_rows, arns):
            machine = self._machine_of(row.record, row.definition)
            if machine is not None:
                out.append(
                    restore_live(machine, row.record, row.tasks, self.settings.max_history_events)
                )
        return out

    def _machine_of(self, record: ExecutionRecord, definition: str | None) -> StateMachine | None:
        """(loop thread) The parsed machine of ``record``, parsing ``definition`` if needed."""
        key = (record.state_machine_arn, record.revision_id)
        machine = self._machines.get(key)
        if machine is None:
            if not definition:
                log.error("execution %s: its definition %s is gone", record.arn, key)
                return None
            machine = parse_definition(definition, state_machine_type=record.type)
            self._machines[key] = machine
        return machine

    def _read_stopped(self, arn: str) -> _Row:
        """(reader thread) A stopped Standard execution's row, to be redriven."""
        record = self.store.get_execution(arn)
        if record is None:
            raise NotRedrivable(f"Execution Does Not Exist: '{arn}'")
        if record.type == "EXPRESS":
            raise NotRedrivable("Express executions cannot be redriven")
        if record.status not in REDRIVABLE_STATUSES:
            raise NotRedrivable(f"Execution is {record.status} and cannot be redriven")
        return _Row(record, [], self._definition_of(record))

    async def _load_stopped(self, arn: str) -> Live:
        """A stopped Standard execution as it stopped, to be redriven."""
        row = await self._read(self._read_stopped, arn)
        record = row.record
        machine = self._machine_of(record, row.definition) if record.snapshot is not None else None
        if machine is None:
            raise NotRedrivable("The execution's saved state or definition is gone")
        live = restore_live(machine, record, [], self.settings.max_history_events)
        live.timers = set()  # a stopped execution keeps no timers, the timeout's included
        return live

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
            by_execution: dict[str, list[tuple[str, str]]] = {}
            for task in page:
                by_execution.setdefault(task.execution_arn, []).append((task.task_id, task.state))
            for loaded in await self._load_many(list(by_execution)):
                self._live[loaded.arn] = loaded
                for task_id, state in by_execution[loaded.arn]:
                    command = loaded.tasks.get(task_id)
                    if command is None or self.external.resume(loaded, command, state):
                        continue  # waits for a worker, a token or a child: nothing to re-run
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
                    definition = await self._read(self._definition_of, record)
                    machine = self._machine_of(record, definition)
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
        recovery does at start-up: pending tasks re-run with their idempotency keys (or wait
        for their worker, token or child), unfinished Express executions restart, timers fire
        from the store.

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
                    definition = await self._read(self._definition_of, record)
                    machine = self._machine_of(record, definition)
                    if machine is not None and record.arn not in self._live:
                        self._rerun_express(machine, record)
            else:
                durable.append(record.arn)
        await self._load_current([arn for arn in durable if arn not in self._live])
        for arn in durable:
            live = self._live.get(arn)
            if live is None:
                continue
            states = {t.task_id: t.state for t in await self._read(self.store.pending_tasks, arn)}
            for task_id, command in list(live.tasks.items()):
                if task_id in self._running.get(arn, {}):
                    continue  # a call of this node's is in flight for it
                if self.external.resume(live, command, states.get(task_id, "STARTED")):
                    continue  # waits for a worker, a token or a child
                self._invoke(live, command)  # the dead node's call: re-run it
        self._timer_wake.set()

    async def _load_current(self, arns: list[str], attempts: int = 5) -> None:
        """Load ``arns`` into memory outside a tick. A tick may load, step and commit one of
        them while it is read: a copy read before that commit landed is older than the store
        and is never kept (stepped, it would write its old state over the newer one, or
        events already stored); it is read again, and one in memory by then is kept."""
        for _ in range(attempts):
            arns = [arn for arn in arns if arn not in self._live]
            if not arns:
                return
            mark = self._landings
            for arn in arns:
                self._loading[arn] = self._loading.get(arn, 0) + 1
            try:
                loaded = await self._load_many(arns)
            finally:
                stale = {arn for arn in arns if self._landed.get(arn, -1) > mark}
                for arn in arns:
                    left = self._loading[arn] - 1
                    if left:
                        self._loading[arn] = left
                    else:
                        del self._loading[arn]
                        self._landed.pop(arn, None)
            for live in loaded:
                if live.arn not in stale:
                    self._live.setdefault(live.arn, live)
            arns = sorted(stale)
        if arns:
            log.warning(
                "%d execution(s) changed while being taken over: left to load later", len(arns)
            )

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

    def _load_activities(self) -> None:
        """The activity ARNs that exist: a Task naming another fails as on AWS."""
        token: str | None = None
        while True:
            page = self.store.list_activities(1000, token)
            self.external.activities.known.update(a.arn for a in page.items)
            token = page.next_token
            if token is None:
                return

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
        return (
            bool(self._work)
            or self._busy
            or self._inflight > 0
            or self._requeues > 0
            or self._holding()
        )

    async def _timer_loop(self) -> None:
        while not self._closing:
            self._timer_wake.clear()
            now = self.clock.now()
            fired = 0
            for arn, timer_id in self._mem_timers.pop_due(now):
                self._enqueue(arn, TimerFired(timer_id))
                fired += 1
            # (Always from a reader thread: under a virtual clock, an API call that is on its
            # way, which reads the store from one too, lands before time jumps ahead.)
            due = await self.read(self.ownership.due_timers, now, 1000)
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
            durable_next = await self.read(self.ownership.next_timer_at)
            candidates = [t for t in (durable_next, self._mem_timers.next_at()) if t is not None]
            next_at = min(candidates) if candidates else None
            if self.clock.is_virtual:
                # Timers fire as soon as nothing else can run, in deadline order.
                if not self._inflight or self._work or self._busy:
                    self._calls_since = None
                if next_at is None:
                    await self._wait_timer_wake(None)
                elif self._work or self._busy:
                    await self._idle.wait()
                    await asyncio.sleep(0)
                elif self._requeues:  # work put back after a failed commit: it runs first
                    await asyncio.sleep(0.01)
                elif self._inflight:
                    # A call is running: it takes no virtual time, unless it runs on for as
                    # long, in real time, as there is until the next timer; then that timer
                    # fires (a stuck call meets its TimeoutSeconds).
                    now_real = time.monotonic()
                    if self._calls_since is None:
                        self._calls_since = now_real
                    if now_real - self._calls_since >= (next_at - now).total_seconds():
                        self._calls_since = None
                        self.clock.advance_to(next_at)
                    else:
                        await self._wait_timer_wake(0.005)
                    continue
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


def _on_this_loop(task: LambdaCall) -> bool:
    """Whether ``task``'s handler runs on the engine's loop (``async``, nothing to queue
    behind, not in a process of its own)."""
    function = task.function
    return function.is_async and not function.isolate and function.concurrency is None


def _sync_event(task_id: str, result: Any, failure: StatesError | None) -> Event:
    if failure is None:
        return TaskSucceeded(task_id, result)
    return TaskFailed(task_id, failure.error, failure.cause)


def _outcome(task_id: str, call: asyncio.Task[Any]) -> Event:
    if call.cancelled():  # (the handler raised CancelledError itself)
        return TaskFailed(task_id, errors.RUNTIME, "CancelledError: the handler was cancelled")
    return outcome_event(task_id, call)
