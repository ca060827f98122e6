"""Who runs which execution: one node alone (``Solo``) or many sharing PostgreSQL (``Cluster``).

The engine asks its ``Ownership`` a few questions at fixed points — stamp a new execution,
is this stored execution mine, which timers are mine, where does an event for an execution
I do not hold go — and hands it executions to run (``Engine.adopt``) or an event to apply
(``Engine.apply``). ``Solo`` answers "everything is mine" at no cost (SQLite, memory).

``Cluster`` (docs/postgres.md):

* **Membership and leases.** The node joins under a fresh id with a lease on the database's
  clock, renewed by a heartbeat *thread* (an event loop busy with a large tick cannot make it
  miss a beat; a stopped or killed process does). A lease that expired is never renewed: the
  node drops every stored execution it holds in memory and joins again under a new id.
* **Ownership.** A node owns the executions it starts and those it takes over. Ownership is
  sticky: a waiting execution stays with its node, at no cost (the node's one lease covers
  them all), and its timers are fired by that node.
* **Fencing.** Takeover bumps an execution's ``generation``; the store updates a row only at
  the generation the node loaded, and refuses any commit from a node whose lease expired.
  The engine drops what the store refuses (``LeaseLost``) and commits the rest.
* **Takeover.** When the heartbeat sees an expired node (or on the slow fallback poll), the
  node claims that node's RUNNING executions in batches (``FOR UPDATE SKIP LOCKED``: several
  survivors split them) and adopts them: their pending tasks re-run with their idempotency
  keys, their timers fire from the store, Express executions restart.
* **Inbox.** An event for an execution another node owns (StopExecution, UpdateMapRun, and
  the task-token callbacks when they arrive) becomes an ``inbox`` row plus a NOTIFY; the owner
  applies it and deletes the row after its commit, and the sender returns once the row is
  gone. An orphan execution is claimed by the receiving node instead.
* **Wake-up.** One dedicated connection LISTENs; a NOTIFY wakes the node for its inbox or a
  departed node's executions. Polling is only the fallback (``poll_seconds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from flowstate.interpreter.messages import (
    Event,
    MapRunUpdated,
    StopRequested,
    TaskFailed,
    TaskHeartbeat,
    TaskStarted,
    TaskSucceeded,
)
from flowstate.storage import ExecutionRecord, LeaseLost, Leases, StorageError, Store, TimerRecord
from flowstate.storage.records import evolve

__all__ = [
    "Cluster",
    "DatabaseClock",
    "Ownership",
    "Solo",
    "decode_event",
    "encode_event",
    "ownership_for",
]

log = logging.getLogger("flowstate.cluster")
T = TypeVar("T")

# Events that may travel through the inbox: all are safe to apply twice (a stop of a stopped
# execution, a completion of a task that is no longer pending, change nothing).
_EVENTS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (StopRequested, MapRunUpdated, TaskSucceeded, TaskFailed, TaskHeartbeat)
}
_CALLBACK_TYPES: dict[str, type[Any]] = {"TaskStarted": TaskStarted}


@dataclass(frozen=True, slots=True)
class RemoteCallback:
    """SendTaskSuccess/Failure/Heartbeat received by a node that does not run the execution:
    its owner applies ``event`` as a callback for the task ``token`` names."""

    token: str
    event: Event


_CALLBACK_EVENTS = {"TaskSucceeded", "TaskFailed", "TaskHeartbeat", "TaskStarted"}


def _fields(event: Event) -> dict[str, Any]:
    name = type(event).__name__
    if name not in _EVENTS and name not in _CALLBACK_EVENTS:
        raise ValueError(f"{name} cannot be sent to another node")
    return {"type": name, "fields": asdict(event)}


def encode_event(event: Event | RemoteCallback) -> str:
    if isinstance(event, RemoteCallback):
        if type(event.event).__name__ not in _CALLBACK_EVENTS:
            raise ValueError(f"{type(event.event).__name__} is not a callback")
        data = {"type": "RemoteCallback", "token": event.token, "event": _fields(event.event)}
        return json.dumps(data, separators=(",", ":"))
    return json.dumps(_fields(event), separators=(",", ":"))


def decode_event(body: str) -> Event | RemoteCallback:
    data = json.loads(body)
    if data["type"] == "RemoteCallback":
        inner = data["event"]
        kind = _EVENTS.get(inner["type"]) or _CALLBACK_TYPES[inner["type"]]
        return RemoteCallback(data["token"], kind(**inner["fields"]))
    event: Event = _EVENTS[data["type"]](**data["fields"])
    return event


class EngineHooks(Protocol):
    """What ``Cluster`` calls on the engine."""

    async def adopt(self, records: list[ExecutionRecord]) -> None: ...

    async def apply(self, arn: str, event: Event | RemoteCallback) -> None: ...

    def forget_stored(self, reason: Exception) -> None: ...


class Ownership(Protocol):
    node_id: str | None
    recovers: bool  # the engine recovers every RUNNING execution at start (one node only)

    def stamp(self, record: ExecutionRecord) -> ExecutionRecord: ...

    def owns(self, record: ExecutionRecord) -> bool: ...

    def due_timers(self, now: datetime, limit: int) -> list[TimerRecord]: ...

    def next_timer_at(self) -> datetime | None: ...

    async def start(self, engine: EngineHooks) -> None: ...

    async def stop(self) -> None: ...

    async def forward(self, arn: str, event: Event | RemoteCallback) -> bool:
        """True if ``event`` was delivered to (and applied by) the node owning ``arn``;
        False if this node should apply it (it owns it now, or nobody runs it)."""
        ...

    async def take(self, arn: str) -> None:
        """Own the stopped execution ``arn`` before redriving it."""
        ...

    def lost(self, arns: list[str]) -> None:
        """The store refused commits for ``arns``: another node owns them now."""
        ...


class Solo:
    """One node owns everything: no leases, no extra statements."""

    node_id: str | None = None
    recovers = True

    def __init__(self, store: Store) -> None:
        self.store = store

    def stamp(self, record: ExecutionRecord) -> ExecutionRecord:
        return record

    def owns(self, record: ExecutionRecord) -> bool:
        return True

    def due_timers(self, now: datetime, limit: int) -> list[TimerRecord]:
        return self.store.due_timers(now, limit)

    def next_timer_at(self) -> datetime | None:
        return self.store.next_timer_at()

    async def start(self, engine: EngineHooks) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def forward(self, arn: str, event: Event | RemoteCallback) -> bool:
        return False

    async def take(self, arn: str) -> None:
        return None

    def lost(self, arns: list[str]) -> None:
        return None


class DatabaseClock:
    """The node's clock set to the database's: every deadline and timestamp the engine
    computes is on the time base that leases and due timers are judged by. Re-synchronised
    at each heartbeat (the database's time at the middle of the round trip)."""

    is_virtual = False

    def __init__(self) -> None:
        self._offset = timedelta(0)

    @property
    def offset(self) -> timedelta:
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance_to(self, moment: datetime) -> None:
        return None

    def sync(self, db_now: datetime, sent: datetime, received: datetime) -> None:
        self._offset = db_now - (sent + (received - sent) / 2)


def _new_node_id() -> str:
    return f"node-{secrets.token_hex(6)}"


class Cluster:
    """Ownership through node leases on a shared store (PostgreSQL)."""

    recovers = False

    def __init__(
        self,
        store: Store,
        *,
        lease_seconds: float = 10.0,
        poll_seconds: float = 30.0,
        claim_batch: int = 200,
        endpoint: str | None = None,
        clock: DatabaseClock | None = None,
    ) -> None:
        self.store = store
        self.leases: Leases = store  # type: ignore[assignment]
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.claim_batch = claim_batch
        self.endpoint = endpoint
        self.clock = clock
        self.node_id: str | None = None
        self.takeovers = 0  # executions adopted from other nodes (tests, metrics)
        self._engine: EngineHooks | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="flowstate-cluster")
        self._wake = asyncio.Event()
        self._claim_wanted = True
        self._rejoining = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = threading.Event()
        self._beat_thread: threading.Thread | None = None
        self._stop_listening: Any = None
        self._delivering: set[tuple[str, str]] = set()

    # --- the engine's questions ----------------------------------------------------------

    def stamp(self, record: ExecutionRecord) -> ExecutionRecord:
        return evolve(record, lease_owner=self.node_id, generation=1)

    def owns(self, record: ExecutionRecord) -> bool:
        return record.lease_owner is not None and record.lease_owner == self.node_id

    def due_timers(self, now: datetime, limit: int) -> list[TimerRecord]:
        if self.node_id is None:
            return []
        return self.leases.owned_due_timers(self.node_id, now, limit)

    def next_timer_at(self) -> datetime | None:
        if self.node_id is None:
            return None
        return self.leases.owned_next_timer_at(self.node_id)

    # --- lifecycle -----------------------------------------------------------------------

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def start(self, engine: EngineHooks) -> None:
        self._engine = engine
        self._loop = asyncio.get_running_loop()
        await self._join()
        listen = getattr(self.store, "listen", None)
        if listen is not None:
            self._stop_listening = listen(self._notified)
        self._beat_thread = threading.Thread(
            target=self._beat, name="flowstate-heartbeat", daemon=True
        )
        self._beat_thread.start()
        self._tasks = [asyncio.create_task(self._work_loop(), name="flowstate-cluster")]
        self._claim_wanted = True
        self._wake.set()

    async def stop(self) -> None:
        """Leave: expire this node's lease at once, so the others take over without waiting."""
        self._stopped.set()
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._stop_listening is not None:
            await self._run(self._stop_listening)
        if self.node_id is not None:
            with contextlib.suppress(StorageError):
                await self._run(self.leases.leave, self.node_id)
        if self._beat_thread is not None:
            await self._run(self._beat_thread.join, 5)
        self._pool.shutdown(wait=False)

    async def _join(self) -> None:
        node_id = _new_node_id()
        sent = datetime.now(UTC)
        lease = await self._run(self.leases.join, node_id, self.lease_seconds, self.endpoint)
        if self.clock is not None:
            self.clock.sync(lease.now, sent, datetime.now(UTC))
        self.node_id = node_id
        self.store.fence_node = node_id  # type: ignore[attr-defined]
        log.info("joined as %s (lease %.1fs)", node_id, self.lease_seconds)

    # --- heartbeat (a thread: only a stopped process misses beats) ------------------------

    def _beat(self) -> None:
        interval = self.lease_seconds / 3
        while not self._stopped.wait(interval):
            node_id = self.node_id
            if node_id is None or self._rejoining:
                continue
            sent = datetime.now(UTC)
            try:
                lease = self.leases.renew(node_id, self.lease_seconds)
            except Exception as error:  # the database is away: the lease may run out
                log.warning("lease renewal of %s failed: %s", node_id, error)
                continue
            if lease is None:
                self._rejoining = True
                self._call(self._lease_lost, node_id)
                continue
            if self.clock is not None:
                self.clock.sync(lease.now, sent, datetime.now(UTC))
            if lease.dead_nodes:
                self._call(self._want_claim)

    def _call(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    def _notified(self, payload: str | None) -> None:
        """From the LISTEN thread: a NOTIFY (or None: the connection was re-established)."""
        if payload is None or payload.startswith("left:") or payload == "inbox:":
            self._call(self._want_claim)  # a departed node's, or an ownerless execution's
        elif payload == f"inbox:{self.node_id}":
            self._call(self._wake.set)

    def _want_claim(self) -> None:
        self._claim_wanted = True
        self._wake.set()

    def _lease_lost(self, old: str) -> None:
        log.warning(
            "the lease of %s expired (the process was stopped or cut off from the database): "
            "its executions are other nodes' now; dropping them and joining again",
            old,
        )
        if self._engine is not None:
            self._engine.forget_stored(LeaseLost([]))
        task = asyncio.ensure_future(self._rejoin())
        self._tasks.append(task)

    async def _rejoin(self) -> None:
        while not self._stopped.is_set():
            try:
                await self._join()
                break
            except StorageError as error:
                log.warning("joining again failed: %s", error)
                await asyncio.sleep(1)
        self._rejoining = False
        self._want_claim()

    def lost(self, arns: list[str]) -> None:
        log.info("%d execution(s) taken over by other nodes: dropped", len(arns))

    # --- claims and the inbox ------------------------------------------------------------

    async def _work_loop(self) -> None:
        # Also ended by _stopped: on Python 3.11, wait_for can swallow the cancellation that
        # stop() sends when the wake-up lands at the same moment.
        while not self._stopped.is_set():
            polled = False
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except TimeoutError:
                polled = True  # the slow fallback: a lost NOTIFY, an ownerless execution
            self._wake.clear()
            if self._rejoining or self.node_id is None:
                continue
            try:
                if self._claim_wanted or polled:
                    await self._claim(forget=self._claim_wanted)
                await self._read_inbox()
            except StorageError as error:
                log.warning("cluster: %s", error)
            except Exception:
                log.exception("cluster round failed")

    async def _claim(self, *, forget: bool) -> None:
        """Take over executions whose owner's lease expired, a batch at a time; then (when
        the heartbeat saw expired nodes) delete the expired nodes that own nothing any more,
        so the heartbeat stops reporting them."""
        assert self._engine is not None and self.node_id is not None
        self._claim_wanted = False
        total = 0
        while True:
            records = await self._run(self.leases.claim_orphans, self.node_id, self.claim_batch)
            if records:
                total += len(records)
                await self._engine.adopt(records)
            if len(records) < self.claim_batch:
                break
        if total:
            self.takeovers += total
            log.info("%s took over %d execution(s)", self.node_id, total)
        if total or forget:
            await self._run(self.leases.forget_dead_nodes)

    async def _read_inbox(self) -> None:
        assert self._engine is not None and self.node_id is not None
        engine = self._engine
        messages = await self._run(self.leases.owned_inbox, self.node_id, 500)
        fresh = [m for m in messages if (m.execution_arn, m.message_id) not in self._delivering]
        if not fresh:
            return

        async def deliver(
            arn: str, key: tuple[str, str], event: Event | RemoteCallback
        ) -> tuple[str, str] | None:
            try:
                await engine.apply(arn, event)
            except Exception as error:  # lost meanwhile, or shutting down: leave it queued
                log.info("inbox message %s for %s not applied: %s", key[1], arn, error)
                return None
            return key

        pending = []
        for message in fresh:
            key = (message.execution_arn, message.message_id)
            self._delivering.add(key)
            # Created (and so enqueued) in inbox order: one execution's events stay ordered.
            pending.append(
                asyncio.ensure_future(
                    deliver(message.execution_arn, key, decode_event(message.body))
                )
            )
        done = [key for key in await asyncio.gather(*pending) if key is not None]
        try:
            await self._run(self.leases.delete_inbox, done)
        finally:
            self._delivering.difference_update((m.execution_arn, m.message_id) for m in fresh)
        if len(messages) >= 500:
            self._wake.set()

    # --- events for executions this node does not hold -----------------------------------

    async def forward(self, arn: str, event: Event | RemoteCallback) -> bool:
        assert self._engine is not None and self.node_id is not None
        record = await self._run(self.store.get_execution, arn)
        if record is None or record.status != "RUNNING" or self.owns(record):
            return False
        claimed = await self._run(
            functools.partial(self.leases.claim_execution, self.node_id, arn, stopped=False)
        )
        if claimed is not None:  # its owner is gone: run it here
            await self._engine.adopt([claimed])
            return False
        message_id = secrets.token_hex(8)
        owner = await self._run(self.leases.send, arn, message_id, encode_event(event))
        if owner is None:  # it stopped meanwhile
            return False
        deadline = time.monotonic() + max(60.0, 3 * self.lease_seconds)
        delay = 0.005
        while await self._run(self.leases.in_inbox, arn, message_id):
            if time.monotonic() > deadline:
                raise StorageError(
                    f"the node owning {arn} did not apply the request in time; it stays queued "
                    "and will be applied by whichever node runs the execution"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        return True

    async def take(self, arn: str) -> None:
        assert self.node_id is not None
        await self._run(
            functools.partial(self.leases.claim_execution, self.node_id, arn, stopped=True)
        )


def ownership_for(
    store: Store,
    *,
    lease_seconds: float = 10.0,
    endpoint: str | None = None,
    clock: DatabaseClock | None = None,
) -> Ownership:
    """``Cluster`` for a store several nodes share (PostgreSQL), ``Solo`` otherwise."""
    if getattr(store, "shared", False):
        return Cluster(store, lease_seconds=lease_seconds, endpoint=endpoint, clock=clock)
    return Solo(store)
