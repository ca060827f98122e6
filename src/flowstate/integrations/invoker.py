"""How function calls run: ``async`` handlers on an event loop, sync handlers on a bounded
pool of threads, isolated functions in a process each; at most ``concurrency`` calls of one
function at once (the others queue, in order).

Every call is a ``concurrent.futures.Future`` resolving to the task's result or raising its
``StatesError``. A call whose attempt has ended (TimeoutSeconds, a stop) is *abandoned*: an
async one is cancelled, an isolated one's process is killed, a sync one is left to finish on
its thread and its result dropped. The threads are daemons, so a stuck handler never keeps the
engine, or the process at exit, waiting.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from flowstate.asl.errors import RUNTIME, StatesError
from flowstate.integrations.functions import Function, FunctionError, LambdaCall
from flowstate.integrations.isolation import IsolatedCall, handler_ref

__all__ = ["BATCH_SLICE_SECONDS", "BatchCall", "FunctionInvoker", "Outcome", "Report"]

# What a sync call gave: its result, or the StatesError it failed with.
Outcome = tuple[Any, StatesError | None]
Report = Callable[[Any, StatesError | None], None]


class _Threads:
    """At most ``size`` daemon threads, started as work arrives."""

    def __init__(self, size: int, prefix: str) -> None:
        self._size = max(1, size)
        self._prefix = prefix
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._pending = 0

    def run(self, work: Callable[[], None]) -> None:
        with self._lock:
            self._pending += 1
            if self._pending > self._idle and self._threads < self._size:
                self._threads += 1
                thread = threading.Thread(
                    target=self._worker, name=f"{self._prefix}-{self._threads}", daemon=True
                )
                thread.start()
        self._queue.put(work)

    def _worker(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            work = self._queue.get()
            with self._lock:
                self._idle -= 1
                self._pending -= 1
            if work is None:
                return
            work()

    def close(self) -> None:
        with self._lock:
            count = self._threads
            self._threads = self._size  # no new threads
        for _ in range(count):
            self._queue.put(None)


class _Gate:
    """A function's concurrency limit: starts beyond it wait their turn (FIFO)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0
        self._waiting: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()

    def enter(self, start: Callable[[], None]) -> None:
        with self._lock:
            if self.running >= self.limit:
                self._waiting.append(start)
                return
            self.running += 1
        start()

    def leave(self) -> None:
        with self._lock:
            if self._waiting:
                start = self._waiting.popleft()  # the slot passes to it
            else:
                self.running -= 1
                return
        start()


class BatchCall:
    """One call of a batch (``FunctionInvoker.run_batch``): ``report(result, failure)`` is
    called on the thread that ran it; an ``abandoned`` call not started yet is skipped."""

    __slots__ = ("abandoned", "call", "report")

    def __init__(self, call: LambdaCall, report: Callable[[Any, StatesError | None], None]) -> None:
        self.call = call
        self.report = report
        self.abandoned = False


class _Waited:
    """The calls of a batch whose caller waits for them (``FunctionInvoker.run_waiting``):
    an answer that comes while it waits is kept for it; one that comes later goes to the
    call's ``late`` report. Each call's time is taken from when its thread began it
    (``_Batch.current_since``)."""

    __slots__ = ("batch", "done", "late", "lock", "outcomes", "remaining", "slow", "waiting")

    def __init__(self, count: int, slow_after: float) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.remaining = count
        self.waiting = True
        self.outcomes: list[Outcome | None] = [None] * count
        self.late: list[Report | None] = [None] * count
        self.slow = slow_after  # a call that ran longer than this is reported as slow
        self.batch: _Batch | None = None

    def running_for(self, now: float) -> float:
        """How long the call running now has run (0: none is)."""
        since = self.batch.current_since if self.batch is not None else None
        return 0.0 if since is None else now - since

    def reporter(self, index: int, slow: list[int]) -> Report:
        def report(result: Any, failure: StatesError | None) -> None:  # on the pool thread
            if self.running_for(time.monotonic()) > self.slow:
                slow.append(index)
            with self.lock:
                if self.waiting:
                    self.outcomes[index] = (result, failure)
                    self.remaining -= 1
                    if not self.remaining:
                        self.done.set()
                    return
                late = self.late[index]
            if late is not None:
                late(result, failure)

        return report


class _Batch:
    __slots__ = ("calls", "current_since", "drainers")

    def __init__(self, calls: list[BatchCall]) -> None:
        self.calls: deque[BatchCall] = deque(calls)
        self.current_since: float | None = None  # when the call running now began
        self.drainers = 1


# A batch runs on one thread; a call in it running longer than this brings in another thread
# for the calls behind it (and so on, up to the pool's size).
BATCH_SLICE_SECONDS = 0.002


class FunctionInvoker:
    """Runs ``LambdaCall``s; ``loop`` (default: a private one) runs the ``async`` handlers."""

    def __init__(self, *, threads: int = 32, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._threads = _Threads(threads, "flowstate-fn")
        self._loop = loop
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._loop_done = threading.Event()
        self._gates: dict[str, _Gate] = {}
        self._lock = threading.Lock()
        # What can be stopped of a running call: an async call's future, an isolated process.
        self._stoppers: dict[Future[Any], Callable[[], None]] = {}
        self._abandoned: set[Future[Any]] = set()

    # --- public ----------------------------------------------------------------------------

    def submit(self, call: LambdaCall) -> Future[Any]:
        outer: Future[Any] = Future()
        gate = self._gate(call.function)
        if gate is None:
            self._start(call, outer, None)
        else:
            gate.enter(lambda: self._start(call, outer, gate))
        return outer

    def run_batch(self, calls: list[BatchCall]) -> None:
        """Run plain sync calls (no concurrency limit, not isolated) one after another on a
        pool thread: one hand-over for the lot instead of one per call. A call that takes
        longer than ``BATCH_SLICE_SECONDS`` does not hold up the rest: another thread takes
        them over (the engine's loop watches, when there is one)."""
        self._start_batch(_Batch(calls))

    def _start_batch(self, batch: _Batch) -> None:
        self._threads.run(lambda: _drain_batch(batch))
        if self._loop is not None and len(batch.calls) > 1:
            self._loop.call_later(BATCH_SLICE_SECONDS, self._watch_batch, batch)

    def run_waiting(
        self,
        calls: list[LambdaCall],
        timeout: float,
        late: Callable[[int, BatchCall], Report],
        *,
        slow_after: float,
    ) -> tuple[list[Outcome | BatchCall], list[int]]:
        """Run plain sync calls as ``run_batch`` does, and wait up to ``timeout`` seconds for
        them; the waiting thread holds no GIL, so the pool's thread runs them meanwhile.

        Returns each call's ``Outcome`` if it answered in time, else its running
        ``BatchCall``, whose answer goes, when it comes, to the report ``late(i, call)``
        returned (asked for once the wait is over, before any such answer is passed on);
        and the indexes of the calls seen to run longer than ``slow_after`` seconds by then
        (an answered one, or the one still running when the wait ended; not those queued
        behind it)."""
        slow: list[int] = []
        waited = _Waited(len(calls), slow_after)
        items = [BatchCall(call, waited.reporter(i, slow)) for i, call in enumerate(calls)]
        waited.batch = _Batch(items)
        self._start_batch(waited.batch)
        if timeout > 0:
            waited.done.wait(timeout)
        with waited.lock:
            waited.waiting = False
            answers: list[Outcome | BatchCall] = []
            running: int | None = None
            for i, outcome in enumerate(waited.outcomes):
                if outcome is None:
                    waited.late[i] = late(i, items[i])
                    answers.append(items[i])
                    running = i if running is None else running
                else:
                    answers.append(outcome)
            if running is not None and waited.running_for(time.monotonic()) > slow_after:
                slow.append(running)
            found = list(slow)
        return answers, found

    def _watch_batch(self, batch: _Batch) -> None:
        if not batch.calls:
            return
        since = batch.current_since
        if since is not None and time.monotonic() - since >= BATCH_SLICE_SECONDS:
            batch.drainers += 1
            self._threads.run(lambda: _drain_batch(batch))
        assert self._loop is not None
        self._loop.call_later(BATCH_SLICE_SECONDS, self._watch_batch, batch)

    def abandon(self, future: Future[Any]) -> None:
        """The attempt is over: stop the call if it can be stopped, never wait for it."""
        with self._lock:
            stop = self._stoppers.pop(future, None)
            if not future.done():
                self._abandoned.add(future)
        if stop is not None:
            stop()
        future.cancel()  # only succeeds while it still waits for its turn

    def running_of(self, name: str) -> int:
        gate = self._gates.get(name)
        return gate.running if gate is not None else 0

    def close(self) -> None:
        self._threads.close()
        with self._lock:
            stoppers = list(self._stoppers.values())
            self._stoppers.clear()
        for stop in stoppers:
            stop()
        if self._own_loop is not None:
            # Let the cancelled handlers unwind before the loop stops (briefly: a handler
            # that ignores its cancellation is left behind with the daemon thread).
            asyncio.run_coroutine_threadsafe(_drain(), self._own_loop)
            self._loop_done.wait(timeout=1)

    # --- internals -------------------------------------------------------------------------

    def _gate(self, fn: Function) -> _Gate | None:
        if fn.concurrency is None:
            return None
        with self._lock:
            gate = self._gates.get(fn.name)
            if gate is None or gate.limit != fn.concurrency:
                gate = self._gates[fn.name] = _Gate(fn.concurrency)
            return gate

    def _start(self, call: LambdaCall, outer: Future[Any], gate: _Gate | None) -> None:
        if not outer.set_running_or_notify_cancel():  # abandoned while it waited
            if gate is not None:
                gate.leave()
            return

        def settle(result: Any = None, failure: BaseException | None = None) -> None:
            with self._lock:
                self._stoppers.pop(outer, None)
                self._abandoned.discard(outer)
            if gate is not None:
                gate.leave()
            if failure is not None:
                outer.set_exception(failure)
            else:
                outer.set_result(result)

        if call.function.isolate:
            self._threads.run(lambda: self._run_isolated(call, outer, settle))
        elif call.is_async:
            self._run_async(call, outer, settle)
        else:
            self._threads.run(lambda: _run_sync(call, settle))

    def _run_async(self, call: LambdaCall, outer: Future[Any], settle: Callable[..., None]) -> None:
        inner = asyncio.run_coroutine_threadsafe(call.run_async(), self._event_loop())

        def done(f: Future[Any]) -> None:
            if f.cancelled():
                settle(failure=StatesError(RUNTIME, "the call was abandoned"))
                return
            failure = f.exception()
            if failure is None:
                settle(f.result())
            elif isinstance(failure, StatesError):
                settle(failure=failure)
            else:
                settle(failure=_broken(failure))

        def stop() -> None:
            inner.cancel()

        with self._lock:
            self._stoppers[outer] = stop
        inner.add_done_callback(done)

    def _run_isolated(
        self, call: LambdaCall, outer: Future[Any], settle: Callable[..., None]
    ) -> None:
        try:
            isolated = IsolatedCall(handler_ref(call.function), call.event, call.context())
        except Exception as exc:
            settle(failure=_broken(exc))
            return
        with self._lock:
            abandoned = outer in self._abandoned
            self._stoppers[outer] = isolated.kill
        if abandoned:
            isolated.kill()
        try:
            reply = isolated.wait()
        except FunctionError as failure:
            settle(failure=failure.compacted(call.invoke_api))
            return
        except StatesError as failure:
            settle(failure=failure)
            return
        settle(call.shape(reply))

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        with self._lock:
            if self._own_loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=_serve_loop,
                    args=(loop, self._loop_done),
                    name="flowstate-fn-loop",
                    daemon=True,
                ).start()
                self._own_loop = loop
            return self._own_loop


async def _drain() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    asyncio.get_running_loop().stop()


def _serve_loop(loop: asyncio.AbstractEventLoop, done: threading.Event) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()
        done.set()


def _run_sync(call: LambdaCall, settle: Callable[..., None]) -> None:
    try:
        result = call.run()
    except StatesError as failure:
        settle(failure=failure)
    except BaseException as exc:  # a handler that breaks the runtime's contract
        settle(failure=_broken(exc))
    else:
        settle(result)


def _drain_batch(batch: _Batch) -> None:
    calls = batch.calls
    while True:
        try:
            item = calls.popleft()
        except IndexError:
            batch.current_since = None
            return
        if item.abandoned:
            continue
        batch.current_since = time.monotonic()
        try:
            result = item.call.run()
        except StatesError as failure:
            item.report(None, failure)
        except BaseException as exc:  # a handler that breaks the runtime's contract
            item.report(None, _broken(exc))
        else:
            item.report(result, None)


def _broken(exc: BaseException) -> StatesError:
    return StatesError(RUNTIME, f"{type(exc).__name__}: {exc}")
