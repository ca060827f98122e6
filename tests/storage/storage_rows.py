"""Rows for the storage tests: a state machine, executions, events, timers, tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowstate.storage import (
    EventRecord,
    ExecutionDelta,
    ExecutionRecord,
    HistoryChunk,
    StateMachineRecord,
    TaskRecord,
    TimerRecord,
)
from flowstate.storage.chunks import pack_chunk

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def machine(
    name: str = "orders", revision: str = "r1", definition: str = "{}"
) -> StateMachineRecord:
    return StateMachineRecord(
        arn=f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}",
        name=name,
        type="STANDARD",
        definition=definition,
        role_arn="arn:aws:iam::123456789012:role/flowstate",
        revision_id=revision,
        created_at=T0,
        updated_at=T0,
    )


def execution(name: str, start: float = 0.0, **changes: object) -> ExecutionRecord:
    fields: dict[str, object] = {
        "arn": f"arn:aws:states:us-east-1:123456789012:execution:orders:{name}",
        "state_machine_arn": MACHINE_ARN,
        "name": name,
        "type": "STANDARD",
        "status": "RUNNING",
        "input": '{"order":1}',
        "start_at": at(start),
        "revision_id": "r1",
        "seed": 7,
        "snapshot": b"\x00frame",
    }
    fields.update(changes)
    return ExecutionRecord(**fields)  # type: ignore[arg-type]


def events(first: int, last: int, at_seconds: float = 0.0) -> list[EventRecord]:
    return [
        EventRecord(i, i - 1, "PassStateEntered", at(at_seconds + i), f'{{"n":{i}}}')
        for i in range(first, last + 1)
    ]


def chunk(first: int, last: int, at_seconds: float = 0.0) -> HistoryChunk:
    """Events ``first``..``last`` as one chunk, the same events as ``events`` gives."""
    return pack_chunk(
        [
            (e.id, e.previous_event_id, e.type, e.timestamp, {"n": e.id})
            for e in events(first, last, at_seconds)
        ],
        lambda index: "{}",
    )


def start(record: ExecutionRecord, **more: object) -> ExecutionDelta:
    """The delta of StartExecution: the new row and its first event."""
    fields: dict[str, object] = {"events": events(1, 1)}
    fields.update(more)
    return ExecutionDelta(record.arn, record, is_new=True, **fields)  # type: ignore[arg-type]


def timer(record: ExecutionRecord, timer_id: str, seconds: float) -> TimerRecord:
    return TimerRecord(record.arn, timer_id, at(seconds))


def task(record: ExecutionRecord, task_id: str, token: str | None = None) -> TaskRecord:
    return TaskRecord(
        execution_arn=record.arn,
        task_id=task_id,
        resource="arn:aws:lambda:us-east-1:123456789012:function:charge",
        input='{"amount":3}',
        idempotency_key=f"{record.arn}/{task_id}/1",
        created_at=at(1),
        task_token=token,
    )
