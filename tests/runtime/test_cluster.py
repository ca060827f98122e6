"""Several engines sharing one PostgreSQL database, in one process (marker postgres):
takeover of a silent node's executions, fencing of its stale writes, events forwarded to the
owning node. The real multi-process scenarios are in tests/cluster (marker slow)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from flowstate.integrations.functions import FunctionRegistry
from flowstate.interpreter.messages import StopRequested
from flowstate.runtime.cluster import Cluster, DatabaseClock, decode_event, encode_event
from flowstate.runtime.engine import Engine, EngineSettings, StartRequest
from flowstate.storage import StateMachineRecord

pytestmark = pytest.mark.postgres

REGION, ACCOUNT = "us-east-1", "123456789012"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:orders"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/r"
T0 = datetime(2026, 1, 1, tzinfo=UTC)

FLOW = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": 1, "ResultPath": "$.prep", "Next": "Hold"},
        "Hold": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Charge"},
        "Charge": {
            "Type": "Task",
            "Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:charge",
            "ResultPath": "$.charge",
            "End": True,
        },
    },
}


@pytest.fixture
def db(pg_url: str) -> Iterator[str]:
    import pgdb

    pgdb.empty(pg_url)
    yield pg_url


def open_node(url: str, calls: Counter[str], lease: float = 1.0) -> Engine:
    from flowstate.storage.postgres import PostgresStore

    store = PostgresStore(url)

    def charge(event: Any, context: Any) -> Any:
        calls[context.idempotency_key] += 1
        return {"charged": event["i"]}

    clock = DatabaseClock()
    return Engine(
        store,
        clock=clock,
        functions=FunctionRegistry({"charge": charge}),
        settings=EngineSettings(),
        ownership=Cluster(store, lease_seconds=lease, poll_seconds=1.0, clock=clock),
    )


def deploy(engine: Engine) -> str:
    text = json.dumps(FLOW)
    engine.store.create_state_machine(
        StateMachineRecord(MACHINE_ARN, "orders", "STANDARD", text, ROLE, "r1", T0, T0)
    )
    return text


def request(text: str, i: int, wait: int) -> StartRequest:
    return StartRequest(
        definition=text,
        state_machine_arn=MACHINE_ARN,
        state_machine_name="orders",
        revision_id="r1",
        role_arn=ROLE,
        type="STANDARD",
        name=f"e{i}",
        arn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:orders:e{i}",
        input=json.dumps({"i": i, "wait": wait}),
        input_value={"i": i, "wait": wait},
    )


async def until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_events_travel_through_the_inbox_as_json() -> None:
    event = StopRequested("Oops", "by hand")
    assert decode_event(encode_event(event)) == event


def test_a_silent_node_loses_its_executions_and_cannot_write_them(db: str) -> None:
    calls: Counter[str] = Counter()

    async def main() -> None:
        a, b = open_node(db, calls), open_node(db, calls)
        text = deploy(a)
        await a.start()
        await b.start()
        n = 30
        await asyncio.gather(*(a.start_execution(request(text, i, 2)) for i in range(n)))
        cluster_a = a.ownership
        assert isinstance(cluster_a, Cluster)
        # A goes silent (as if frozen): its heartbeat stops, its engine keeps going.
        cluster_a._stopped.set()
        arns = [request(text, i, 0).arn for i in range(n)]

        def finished() -> bool:
            rows = [b.store.get_execution(arn) for arn in arns]
            return all(r is not None and r.status == "SUCCEEDED" for r in rows)

        await until(finished)
        cluster_b = b.ownership
        assert isinstance(cluster_b, Cluster)
        # B took over what A had not finished (A may have finished some before expiring).
        rows = [b.store.get_execution(arn) for arn in arns]
        taken = [r for r in rows if r is not None and r.lease_owner == cluster_b.node_id]
        assert len(taken) == cluster_b.takeovers > 0
        await b.stop()
        await a.stop()
        a.store.close()
        b.store.close()

    asyncio.run(main())
    # Every execution: one history, gap-free, ending once; every task ran under one key.
    from flowstate.storage.postgres import PostgresStore

    store = PostgresStore(db)
    try:
        for i in range(30):
            arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:orders:e{i}"
            row = store.get_execution(arn)
            assert row is not None and json.loads(row.output or "")["charge"] == {"charged": i}
            events = store.get_history(arn, 1000).items
            assert [e.id for e in events] == list(range(1, len(events) + 1))
            assert [e.type for e in events].count("ExecutionSucceeded") == 1
    finally:
        store.close()
    assert len(calls) == 30


def test_a_stop_sent_to_another_node_is_applied_by_the_owner(db: str) -> None:
    calls: Counter[str] = Counter()

    async def main() -> None:
        a, b = open_node(db, calls, lease=5.0), open_node(db, calls, lease=5.0)
        text = deploy(a)
        await a.start()
        await b.start()
        record = await a.start_execution(request(text, 1, 3600))
        await b.stop_execution(record.arn, "Halt", "stopped through node b")
        row = b.store.get_execution(record.arn)
        assert row is not None and row.status == "ABORTED" and row.error == "Halt"
        assert row.lease_owner == a.ownership.node_id  # A applied it; B never owned it
        assert a.live(record.arn) is None
        await a.stop()
        await b.stop()
        a.store.close()
        b.store.close()

    asyncio.run(main())


def test_a_node_that_leaves_hands_its_executions_over_at_once(db: str) -> None:
    calls: Counter[str] = Counter()

    async def main() -> None:
        a, b = open_node(db, calls, lease=30.0), open_node(db, calls, lease=30.0)
        text = deploy(a)
        await a.start()
        await b.start()
        await asyncio.gather(*(a.start_execution(request(text, i, 1)) for i in range(5)))
        await a.stop()  # a clean shutdown: the lease is expired now, and B is told
        arns = [request(text, i, 0).arn for i in range(5)]
        # ``until`` gives up after 20 s, before the 30 s lease could have run out: finishing
        # means A handed its executions over when it left.
        await until(
            lambda: all(b.store.get_execution(x).status == "SUCCEEDED" for x in arns),  # type: ignore[union-attr]
        )
        assert isinstance(b.ownership, Cluster) and b.ownership.takeovers == 5
        await b.stop()
        a.store.close()
        b.store.close()

    asyncio.run(main())


def test_a_callback_sent_to_another_node_is_applied_by_the_owner(db: str) -> None:
    from flowstate.interpreter.messages import TaskSucceeded
    from flowstate.interpreter.tokens import parse_task_token

    calls: Counter[str] = Counter()
    tokens: list[str] = []
    waits = {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "ask", "Payload": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }

    async def main() -> None:
        a, b = open_node(db, calls, lease=5.0), open_node(db, calls, lease=5.0)
        a.functions.register("ask", lambda event, context: tokens.append(event["token"]))
        text = json.dumps(waits)
        a.store.create_state_machine(
            StateMachineRecord(MACHINE_ARN, "orders", "STANDARD", text, ROLE, "r1", T0, T0)
        )
        await a.start()
        await b.start()
        record = await a.start_execution(request(text, 1, 0))
        await until(lambda: bool(tokens))
        parsed = parse_task_token(tokens[0])
        assert parsed is not None and parsed[0] == record.arn
        # B does not run the execution: it hands the answer to A through the inbox.
        await b.external.callback(
            record.arn, parsed[1], tokens[0], TaskSucceeded(parsed[1], {"answer": 42})
        )
        row = b.store.get_execution(record.arn)
        assert row is not None and row.status == "SUCCEEDED"
        assert json.loads(row.output or "") == {"answer": 42}
        assert row.lease_owner == a.ownership.node_id  # A applied it; B never owned it
        assert b.live(record.arn) is None
        await a.stop()
        await b.stop()
        a.store.close()
        b.store.close()

    asyncio.run(main())


def test_an_activity_task_is_taken_by_a_worker_of_another_node(db: str) -> None:
    from flowstate.interpreter.messages import TaskSucceeded
    from flowstate.storage.catalog import ActivityRecord

    calls: Counter[str] = Counter()
    activity = f"arn:aws:states:{REGION}:{ACCOUNT}:activity:review"
    flow = {
        "StartAt": "Review",
        "States": {"Review": {"Type": "Task", "Resource": activity, "End": True}},
    }

    async def main() -> None:
        a, b = open_node(db, calls, lease=5.0), open_node(db, calls, lease=5.0)
        text = json.dumps(flow)
        a.store.create_state_machine(
            StateMachineRecord(MACHINE_ARN, "orders", "STANDARD", text, ROLE, "r1", T0, T0)
        )
        await a.start()
        await b.start()
        # Created (through B's store) after A started: A finds it when a Task names it.
        b.store.create_activity(ActivityRecord(activity, "review", T0))  # type: ignore[attr-defined]
        record = await a.start_execution(request(text, 1, 0))
        # A worker polls B, which never ran the execution: B claims the task in the store.
        task = await b.external.take_activity_task(activity, "worker-b", 10.0)
        assert task is not None and task.execution_arn == record.arn
        assert json.loads(task.input) == {"i": 1, "wait": 0}
        # A worker polling A now gets nothing: the task is taken.
        assert await a.external.take_activity_task(activity, "worker-a", 1.5) is None
        await b.external.callback(
            record.arn, task.task_id, task.token, TaskSucceeded(task.task_id, {"ok": True})
        )
        row = a.store.get_execution(record.arn)
        assert row is not None and row.status == "SUCCEEDED"
        assert json.loads(row.output or "") == {"ok": True}
        history = a.store.get_history(record.arn, 100).items
        started = [e for e in history if e.type == "ActivityStarted"]
        assert len(started) == 1 and "worker-b" in (started[0].details or "")
        await a.stop()
        await b.stop()
        a.store.close()
        b.store.close()

    asyncio.run(main())
