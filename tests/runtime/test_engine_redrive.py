"""RedriveExecution in the durable loop: committed before it is answered, and the redriven
run survives a crash like any other (virtual clock, no real waiting)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowstate.integrations.functions import FunctionRegistry
from flowstate.runtime.clock import VirtualClock
from flowstate.runtime.engine import Engine, NotRedrivable, StartRequest
from flowstate.storage import SQLiteStore, StateMachineRecord, Store, open_store

REGION, ACCOUNT = "us-east-1", "123456789012"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:orders"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/r"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CHARGE = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:charge"

CHAIN = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": 1, "ResultPath": "$.prep", "Next": "Charge"},
        "Charge": {"Type": "Task", "Resource": CHARGE, "ResultPath": "$.charge", "End": True},
    },
}


class Declined(Exception):
    pass


def deploy(store: Store, definition: dict[str, Any], type: str = "STANDARD") -> str:
    text = json.dumps(definition)
    store.create_state_machine(
        StateMachineRecord(MACHINE_ARN, "orders", type, text, ROLE, "r1", T0, T0)
    )
    return text


def request(definition: str, name: str = "e1", type: str = "STANDARD") -> StartRequest:
    kind = "express" if type == "EXPRESS" else "execution"
    suffix = ":run" if type == "EXPRESS" else ""
    return StartRequest(
        definition=definition,
        state_machine_arn=MACHINE_ARN,
        state_machine_name="orders",
        revision_id="r1",
        role_arn=ROLE,
        type=type,
        name=name,
        arn=f"arn:aws:states:{REGION}:{ACCOUNT}:{kind}:orders:{name}{suffix}",
        input=json.dumps({"order": 7}),
        input_value={"order": 7},
    )


def engine(store: Store, clock: VirtualClock, fn: Callable[..., Any]) -> Engine:
    return Engine(store, clock=clock, functions=FunctionRegistry({"charge": fn}))


def _crash(eng: Engine) -> None:
    """What SIGKILL leaves: nothing drains, nothing more is written."""
    eng._closing = True
    for task in eng._tasks:
        task.cancel()
    if eng._invoker is not None:
        eng._invoker.close()
    eng._writer.shutdown(wait=True)
    eng._reader.shutdown(wait=True)


def test_redrive_is_committed_before_it_is_answered_and_survives_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "flowstate.db"
    store = SQLiteStore(path)
    text = deploy(store, CHAIN)
    arn = request(text).arn
    keys: list[str] = []
    clock = VirtualClock(T0)

    async def stuck(event: Any, context: Any) -> Any:
        keys.append(context.idempotency_key)
        if len(keys) == 1:
            raise Declined("card declined")
        await asyncio.Event().wait()  # the redriven call is in flight when the process dies

    async def first() -> None:
        eng = engine(store, clock, stuck)
        await eng.start()
        await eng.start_execution(request(text))
        await eng.wait_stopped(arn)
        failed = store.get_execution(arn)
        assert failed is not None and failed.status == "FAILED" and failed.redrive_count == 0
        clock.advance_to(T0 + timedelta(days=3))
        record = await eng.redrive_execution(arn)
        assert record.status == "RUNNING"
        assert record.redrive_count == 1 and record.redrive_at == T0 + timedelta(days=3)
        # as soon as RedriveExecution returns, another connection sees the redrive
        other = SQLiteStore(path)
        stored = other.get_execution(arn)
        assert stored is not None and stored.status == "RUNNING"
        assert stored.redrive_count == 1 and stored.stop_at is None and stored.error is None
        assert [e.type for e in other.get_history(arn, 100).items][-4:] == [
            "ExecutionRedriven",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
        ]
        assert [t.task_id for t in other.pending_tasks(arn)] != []  # durable: re-run on recovery
        other.close()
        while len(keys) < 2:
            await asyncio.sleep(0)
        _crash(eng)

    asyncio.run(first())
    store.close()

    def paid(event: Any, context: Any) -> Any:
        keys.append(context.idempotency_key)
        return {"paid": event["order"]}

    reopened = SQLiteStore(path)

    async def second() -> None:
        eng = engine(reopened, clock, paid)
        await eng.start()
        await eng.wait_stopped(arn)
        await eng.stop()

    asyncio.run(second())
    # the first attempt, the redriven attempt, and that same attempt re-run after the crash
    assert len(keys) == 3 and keys[0] != keys[1] and keys[1] == keys[2]
    row = reopened.get_execution(arn)
    assert row is not None and row.status == "SUCCEEDED"
    assert json.loads(row.output or "") == {"order": 7, "prep": 1, "charge": {"paid": 7}}
    assert row.redrive_count == 1 and row.redrive_at == T0 + timedelta(days=3)
    events = reopened.get_history(arn, 100).items
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    types = [e.type for e in events]
    assert types.count("ExecutionRedriven") == 1
    assert types.count("PassStateEntered") == 1  # Prepare ran once
    redriven = next(e for e in events if e.type == "ExecutionRedriven")
    assert json.loads(redriven.details or "") == {
        "executionRedrivenEventDetails": {"redriveCount": 1}
    }
    assert redriven.previous_event_id == redriven.id - 1
    assert types[redriven.id - 2] == "ExecutionFailed"


def test_the_machine_timeout_is_armed_again_from_the_redrive() -> None:
    store = open_store("memory:")
    definition = {
        "TimeoutSeconds": 60,
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}},
    }
    text = deploy(store, definition)
    arn = request(text).arn
    clock = VirtualClock(T0)
    redriven_at = T0 + timedelta(days=1)

    async def main() -> None:
        eng = engine(store, clock, lambda event, context: None)
        await eng.start()
        await eng.start_execution(request(text))
        await eng.wait_stopped(arn)
        timed_out = store.get_execution(arn)
        assert timed_out is not None and timed_out.status == "TIMED_OUT"
        assert timed_out.stop_at == T0 + timedelta(seconds=60)
        clock.advance_to(redriven_at)
        await eng.redrive_execution(arn)
        deadlines = {t.timer_id: t.fire_at for t in store.due_timers(T0 + timedelta(days=9))}
        # AWS: the machine's timeout "is reset to 0" on redrive
        assert deadlines["execution-timeout"] == redriven_at + timedelta(seconds=60)
        await eng.wait_stopped(arn)
        await eng.stop()

    asyncio.run(main())
    row = store.get_execution(arn)
    assert row is not None and row.status == "TIMED_OUT"
    assert row.stop_at == redriven_at + timedelta(seconds=60)
    assert row.redrive_at == redriven_at and row.redrive_count == 1
    assert store.due_timers(T0 + timedelta(days=9)) == []


def test_the_engine_refuses_what_it_cannot_redrive() -> None:
    store = open_store("memory:")
    text = deploy(store, CHAIN)
    hold = asyncio.Event()

    async def slow(event: Any, context: Any) -> Any:
        await hold.wait()
        return {}

    async def main() -> list[str]:
        eng = engine(store, VirtualClock(T0), slow)
        await eng.start()
        reasons = []
        running = await eng.start_execution(request(text, "running"))
        for arn in (running.arn, request(text, "missing").arn):
            with pytest.raises(NotRedrivable) as refused:
                await eng.redrive_execution(arn)
            reasons.append(str(refused.value))
        hold.set()
        await eng.wait_stopped(running.arn)
        with pytest.raises(NotRedrivable) as refused:
            await eng.redrive_execution(running.arn)
        reasons.append(str(refused.value))
        await eng.stop()
        return reasons

    assert asyncio.run(main()) == [
        "Execution is RUNNING and cannot be redriven",
        f"Execution Does Not Exist: 'arn:aws:states:{REGION}:{ACCOUNT}:execution:orders:missing'",
        "Execution is SUCCEEDED and cannot be redriven",
    ]


def test_wait_stopped_answers_a_stop_it_saw_without_a_read_and_waits_again_after_a_redrive(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "flowstate.db")
    text = deploy(store, CHAIN)
    arn = request(text).arn
    clock = VirtualClock(T0)
    reads: list[str] = []
    get_execution = store.get_execution

    def counted(execution_arn: str) -> Any:
        reads.append(execution_arn)
        return get_execution(execution_arn)

    store.get_execution = counted  # type: ignore[method-assign]
    release = asyncio.Event()
    calls = 0

    async def charge(event: Any, context: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Declined("card declined")
        await release.wait()
        return {"paid": event["order"]}

    async def main() -> None:
        eng = engine(store, clock, charge)
        await eng.start()
        await eng.start_execution(request(text))
        await eng.wait_stopped(arn)
        await eng.wait_stopped(arn)  # stopped, and this engine saw it stop: no read
        assert reads == []
        await eng.redrive_execution(arn)
        assert arn not in eng._stopped  # (were it evicted while it waits, a read would tell)
        waiting = asyncio.ensure_future(eng.wait_stopped(arn))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # running again: the stop it saw is forgotten
        release.set()
        await waiting
        row = get_execution(arn)
        assert row is not None and row.status == "SUCCEEDED"
        await eng.stop()
        reads.clear()
        other = engine(store, clock, charge)  # never saw it stop: reads the row
        await other.start()
        await other.wait_stopped(arn)
        assert reads == [arn]
        await other.stop()

    asyncio.run(main())
    store.close()
