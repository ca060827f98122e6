"""Start a coroutine as a task and run its first step now (Python 3.12's ``eager_start``).

A local ``async`` function that returns without awaiting anything — most handlers that
only shape data — then ends inside the call that started it: the engine reads its outcome at
once instead of scheduling a task, waiting for the loop to run it, and being called back.
A handler that does await carries on as an ordinary task from where it suspended.

Either way the handler runs in its own task, as ``asyncio.create_task`` would run it:
``asyncio.current_task()``, ``asyncio.timeout`` and ``TaskGroup`` see that task, and its
context variables are its own copy. On Python 3.12 and later this is the public
``asyncio.Task(..., eager_start=True)``. Python 3.11 has no public form: the task is built
with its first step captured instead of queued, and that step is run in place with the
calling task stepped out of the way, which is what 3.12 does. A loop this cannot be done on
(one without an instance ``__dict__``, such as uvloop's) gets an ordinary task.

A coroutine that cannot suspend at all (an ``async def`` with no ``await``, ``async for`` or
``async with``: ``functions.never_suspends``) needs no task: ``run_detached`` takes its one
step in place, in a copy of the context as a task would, for a tenth of a task's cost.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run_detached", "start_eagerly"]

T = TypeVar("T")


def start_eagerly(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]
) -> asyncio.Task[T]:
    """A task running ``coroutine`` whose first step has already run (it may be done)."""
    return _start(loop, coroutine)


def run_detached(loop: asyncio.AbstractEventLoop, step: Callable[[], T]) -> T:
    """``step()`` — the one step of a coroutine that cannot suspend — run as a task's first
    step would be: in its own copy of the context (the context variables it sets are its
    own), with the calling task stepped out (``asyncio.current_task()`` answers None there,
    as in a callback of the loop, so it cannot touch the caller's task)."""
    current = asyncio.current_task(loop)
    if current is None:
        return contextvars.copy_context().run(step)
    _leave_task(loop, current)
    try:
        return contextvars.copy_context().run(step)
    finally:
        _enter_task(loop, current)


def _start_312(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]
) -> asyncio.Task[T]:
    return asyncio.Task(coroutine, loop=loop, eager_start=True)  # type: ignore[call-arg]


def _start_311(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]
) -> asyncio.Task[T]:
    captured: list[tuple[Callable[..., Any], tuple[Any, ...], Any]] = []

    def capture(callback: Callable[..., Any], *args: Any, context: Any = None) -> None:
        captured.append((callback, args, context))

    try:
        loop.call_soon = capture  # type: ignore[method-assign,assignment]
    except AttributeError:  # (a loop without an instance __dict__)
        return loop.create_task(coroutine)
    try:
        task = asyncio.Task(coroutine, loop=loop)
    finally:
        del loop.call_soon
    if len(captured) != 1:  # (not the Task this was written against: let the loop run it)
        for callback, args, context in captured:
            loop.call_soon(callback, *args, context=context)
        return task
    step, args, context = captured[0]
    current = asyncio.current_task(loop)
    if current is not None:
        _leave_task(loop, current)
    try:
        context.run(step, *args)
    finally:
        if current is not None:
            _enter_task(loop, current)
    return task


if sys.version_info >= (3, 12):
    _start = _start_312
else:
    _start = _start_311
