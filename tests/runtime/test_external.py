"""runtime/external.py: which resources wait for someone outside, and the activity queues."""

from __future__ import annotations

import asyncio

import pytest

from flowstate.runtime.external import ActivityQueues, ActivityTask, task_route

ACTIVITY = "arn:aws:states:us-east-1:123456789012:activity:pack"


@pytest.mark.parametrize(
    ("resource", "kind", "pattern"),
    [
        (ACTIVITY, "activity", ""),
        ("arn:aws:lambda:us-east-1:1:function:f", "lambda", ""),
        ("arn:aws:states:::lambda:invoke", "lambda", ""),
        ("arn:aws:states:::lambda:invoke.waitForTaskToken", "lambda", ".waitForTaskToken"),
        ("arn:aws:states:::states:startExecution", "nested", ""),
        ("arn:aws:states:::states:startExecution.sync", "nested", ".sync"),
        ("arn:aws:states:::states:startExecution.sync:2", "nested", ".sync:2"),
        ("arn:aws:states:::states:startExecution.waitForTaskToken", "nested", ".waitForTaskToken"),
        ("arn:aws:states:::sqs:sendMessage.waitForTaskToken", "unhosted", ".waitForTaskToken"),
        ("arn:aws:states:::aws-sdk:s3:listBuckets", "unhosted", ""),
    ],
)
def test_task_route(resource: str, kind: str, pattern: str) -> None:
    route = task_route(resource)
    assert (route.kind, route.pattern) == (kind, pattern)


def task(name: str) -> ActivityTask:
    return ActivityTask(f"arn:execution:{name}", "0:3", ACTIVITY, f"token-{name}", "{}")


def test_tasks_wait_in_order_and_go_to_one_poll_each() -> None:
    async def main() -> None:
        queues = ActivityQueues()
        queues.offer(task("a"))
        queues.offer(task("b"))
        queues.offer(task("c"))
        queues.withdraw("arn:execution:b", "0:3", ACTIVITY)  # it timed out meanwhile
        assert queues.waiting(ACTIVITY) == 2
        assert (await queues.poll(ACTIVITY, 1)) == task("a")
        assert (await queues.poll(ACTIVITY, 1)) == task("c")
        assert await queues.poll(ACTIVITY, 0.01) is None

        polls = [asyncio.ensure_future(queues.poll(ACTIVITY, 30)) for _ in range(2)]
        await asyncio.sleep(0)
        queues.offer(task("d"))
        queues.offer(task("e"))
        assert {p.token for p in await asyncio.gather(*polls)} == {"token-d", "token-e"}  # type: ignore[union-attr]

    asyncio.run(main())


def test_a_task_handed_to_a_poll_given_up_goes_to_the_next() -> None:
    async def main() -> None:
        queues = ActivityQueues()
        poll = asyncio.ensure_future(queues.poll(ACTIVITY, 30))
        await asyncio.sleep(0)
        queues.offer(task("a"))  # handed over...
        poll.cancel()  # ...while the caller went away
        try:
            kept = await poll  # the hand-over won (asyncio.wait_for may keep the result)
        except asyncio.CancelledError:
            kept = await queues.poll(ACTIVITY, 1)  # or it went back to the queue
        assert kept == task("a")
        assert queues.waiting(ACTIVITY) == 0

    asyncio.run(main())


def test_closing_ends_every_poll_empty() -> None:
    async def main() -> None:
        queues = ActivityQueues()
        poll = asyncio.ensure_future(queues.poll(ACTIVITY, 30))
        await asyncio.sleep(0)
        queues.close()
        assert await poll is None
        assert await queues.poll(ACTIVITY, 30) is None  # returns at once

    asyncio.run(main())
