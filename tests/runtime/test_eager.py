"""start_eagerly: a coroutine's first step runs now, in a task of its own."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from flowstate.runtime.eager import run_detached, start_eagerly

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="caller")


def test_a_handler_that_does_not_await_is_done_when_started() -> None:
    seen: list[Any] = []

    async def quick(x: int) -> int:
        seen.append(asyncio.current_task())
        where.set("handler")
        return x * 2

    async def main() -> None:
        caller = asyncio.current_task()
        task = start_eagerly(asyncio.get_running_loop(), quick(21))
        assert task.done() and task.result() == 42
        assert seen == [task]  # it ran as its own task, not as the caller
        assert asyncio.current_task() is caller  # and the caller is current again
        assert where.get() == "caller"  # its context variables are its own

    asyncio.run(main())


def test_a_handler_that_awaits_carries_on_as_a_task() -> None:
    async def slow() -> str:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return "later"

    async def main() -> None:
        task = start_eagerly(asyncio.get_running_loop(), slow())
        assert not task.done()
        assert await task == "later"

    asyncio.run(main())


def test_a_timeout_in_the_handler_cancels_the_handler_not_its_caller() -> None:
    async def stuck() -> str:
        async with asyncio.timeout(0.01):  # taken in the first step, before the await
            await asyncio.Event().wait()
        return "unreachable"

    async def main() -> None:
        caller = asyncio.current_task()
        assert caller is not None
        task = start_eagerly(asyncio.get_running_loop(), stuck())
        with pytest.raises(TimeoutError):
            await task
        assert caller.cancelling() == 0  # the caller was never asked to stop
        await asyncio.sleep(0)  # and it carries on

    asyncio.run(main())


def test_an_exception_in_the_first_step_is_the_task_s() -> None:
    async def broken() -> None:
        raise ValueError("boom")

    async def main() -> None:
        task = start_eagerly(asyncio.get_running_loop(), broken())
        assert task.done()
        error = task.exception()
        assert isinstance(error, ValueError) and str(error) == "boom"

    asyncio.run(main())


def test_started_from_a_plain_callback_no_task_is_current_afterwards() -> None:
    async def quick() -> Any:
        return asyncio.current_task()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[Any, Any, Any]] = loop.create_future()

        def callback() -> None:  # run by the loop itself: no task is current here
            task = start_eagerly(loop, quick())
            done.set_result((task, task.result(), asyncio.current_task()))

        loop.call_soon(callback)
        task, inside, after = await done
        assert inside is task and after is None

    asyncio.run(main())


def test_run_detached_steps_out_of_the_calling_task_into_its_own_context() -> None:
    seen: list[Any] = []

    def step() -> int:
        seen.append(asyncio.current_task())
        where.set("detached")
        return 7

    async def main() -> None:
        caller = asyncio.current_task()
        assert run_detached(asyncio.get_running_loop(), step) == 7
        assert seen == [None]  # the caller's task cannot be reached from the step
        assert asyncio.current_task() is caller  # and it is current again
        assert where.get() == "caller"  # what the step set stays in its copy

    asyncio.run(main())


def test_run_detached_puts_the_caller_back_when_the_step_raises() -> None:
    def step() -> None:
        raise KeyError("k")

    async def main() -> None:
        caller = asyncio.current_task()
        with pytest.raises(KeyError):
            run_detached(asyncio.get_running_loop(), step)
        assert asyncio.current_task() is caller

    asyncio.run(main())
