"""A takeover's adopt reads executions while ticks may load, step and commit them: a copy
read before such a commit is older than the store and must never be run (stepped, it would
write its old RUNNING state over the execution's end, or events already stored)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowstate.runtime.clock import RealClock
from flowstate.runtime.engine import Engine, StartRequest
from flowstate.storage import SQLiteStore, StateMachineRecord

REGION, ACCOUNT = "us-east-1", "123456789012"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:hold"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/r"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOLD = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}}


def start_request(text: str, name: str) -> StartRequest:
    return StartRequest(
        definition=text,
        state_machine_arn=MACHINE_ARN,
        state_machine_name="hold",
        revision_id="r1",
        role_arn=ROLE,
        type="STANDARD",
        name=name,
        arn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:hold:{name}",
        input="{}",
        input_value={},
    )


async def parked(tmp_path: Path) -> tuple[Engine, SQLiteStore, str]:
    """An engine with one Standard execution waiting an hour, no longer in memory."""
    store = SQLiteStore(tmp_path / "flowstate.db")
    text = json.dumps(HOLD)
    store.create_state_machine(
        StateMachineRecord(MACHINE_ARN, "hold", "STANDARD", text, ROLE, "r1", T0, T0)
    )
    engine = Engine(store, clock=RealClock())  # the hour is never up during the test
    await engine.start()
    record = await engine.start_execution(start_request(text, "e1"))
    engine._live.pop(record.arn)  # evicted: the next event reloads it from its snapshot
    return engine, store, record.arn


def test_a_copy_read_before_a_commit_is_not_adopted(tmp_path: Path) -> None:
    async def main() -> None:
        engine, store, arn = await parked(tmp_path)
        record = store.get_execution(arn)
        assert record is not None
        read = engine._load_many
        stopped = False

        async def read_then_stop(arns: list[str]) -> Any:
            # adopt's read lands first; a StopExecution is stepped and committed before its
            # answer comes back (as a tick can while the reader thread works)
            nonlocal stopped
            copies = await read(arns)
            if not stopped:
                stopped = True
                await engine.stop_execution(arn, "Halt", "test")
                assert [c.status for c in copies] == ["RUNNING"]  # read before the stop
            return copies

        engine._load_many = read_then_stop  # type: ignore[method-assign]
        await engine.adopt([record])
        engine._load_many = read  # type: ignore[method-assign]
        assert arn not in engine._live  # ended: nothing of it is kept in memory
        # Another event for it finds it ended; nothing is written over its end.
        await engine.stop_execution(arn, "Again", "test")
        stored = store.get_execution(arn)
        assert stored is not None and stored.status == "ABORTED" and stored.error == "Halt"
        types = [e.type for e in store.get_history(arn, 100).items]
        assert types.count("ExecutionAborted") == 1 and types[-1] == "ExecutionAborted"
        await engine.stop()

    asyncio.run(main())


def test_a_copy_nothing_changed_since_is_adopted(tmp_path: Path) -> None:
    async def main() -> None:
        engine, store, arn = await parked(tmp_path)
        record = store.get_execution(arn)
        assert record is not None
        await engine.adopt([record])
        live = engine._live.get(arn)
        assert live is not None and live.status == "RUNNING"
        assert live.record.snapshot == record.snapshot
        await engine.stop()

    asyncio.run(main())
