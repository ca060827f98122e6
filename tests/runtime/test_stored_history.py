"""Stored history events read back exactly as the in-memory history renders them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flowstate.asl.parse import parse_definition
from flowstate.interpreter.execution import Execution, ExecutionInfo
from flowstate.interpreter.history import HistoryEvent, render_events
from flowstate.interpreter.messages import ScheduleTask, TaskStarted, TaskSucceeded
from flowstate.runtime.stored_history import (
    MAX_PATCH_CHAIN,
    PATCH,
    RAW,
    REF,
    decode_events,
    encode_events,
)
from flowstate.storage import EventRecord

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:work"
DEFINITION = {
    "StartAt": "Grow",
    "States": {
        "Grow": {
            "Type": "Pass",
            "Result": {"n": 1, "text": 'é \u2028 "quoted"'},
            "ResultPath": "$.grown",
            "Assign": {"seen": "$.grown.n"},
            "Next": "Same",
        },
        "Same": {"Type": "Pass", "Next": "Work"},
        "Work": {
            "Type": "Task",
            "Resource": LAMBDA,
            "Parameters": {"value.$": "$.grown.n"},
            "ResultPath": "$.worked",
            "Next": "Each",
        },
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "StartAt": "Inner",
                "States": {"Inner": {"Type": "Pass", "End": True}},
            },
            "ResultPath": "$.mapped",
            "End": True,
        },
    },
}


def new_execution(definition: dict[str, Any], value: Any, name: str, seed: int) -> Execution:
    """A Standard execution of ``definition`` on ``value``, not started."""
    machine = parse_definition(json.dumps(definition), state_machine_type="STANDARD")
    info = ExecutionInfo(
        arn=f"arn:aws:states:us-east-1:123456789012:execution:m:{name}",
        name=name,
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:m",
        state_machine_name="m",
        role_arn="arn:aws:iam::123456789012:role/r",
        start_time=T0,
        type="STANDARD",
    )
    return Execution(machine, info, value, seed=seed, record_history=True)


def run(value: Any) -> list[HistoryEvent]:
    execution = new_execution(DEFINITION, value, name="e", seed=7)
    commands = execution.start(T0)
    task = next(c for c in commands if isinstance(c, ScheduleTask))
    execution.step(TaskStarted(task.task_id), T0)
    execution.step(TaskSucceeded(task.task_id, {"done": [1, 2.5, None, True]}), T0)
    assert execution.status == "SUCCEEDED"
    return list(execution.events)


def expected(events: list[HistoryEvent]) -> list[dict[str, Any]]:
    return render_events(events)


def no_fetch(ids: list[int]) -> list[EventRecord]:
    raise AssertionError(f"nothing outside the page should be read, asked for {ids}")


def test_a_whole_history_reads_back_as_aws_renders_it() -> None:
    events = run({"items": [1, 2], "big": 2**70})
    records = encode_events(events)
    assert decode_events(records, no_fetch) == expected(events)


def test_a_payload_shared_by_consecutive_events_is_stored_once() -> None:
    events = run({"items": [], "doc": "x" * 5000})
    records = encode_events(events)
    exited = next(r for r in records if r.type == "PassStateExited")
    entered = next(r for r in records if r.type == "PassStateEntered" and r.id > exited.id)
    stored = json.loads(entered.details or "")
    assert stored[REF] == {"input": [exited.id, "output"]}
    assert "x" * 5000 not in (entered.details or "")
    # Grow's output is its input plus one member: stored as that member alone.
    started = next(r for r in records if r.type == "ExecutionStarted")
    assert json.loads(exited.details or "")[PATCH] == {
        "output": [started.id, "input", ["grown"], {"n": 1, "text": 'é \u2028 "quoted"'}]
    }
    total = sum(len(r.details or "") for r in records)
    assert "x" * 5000 in (started.details or "")
    assert total < 5000 + 3000  # the 5 KB document once, unescaped


def test_pages_that_start_after_the_payload_they_refer_to_fetch_it() -> None:
    events = run({"items": [3], "doc": "y" * 100})
    records = encode_events(events)
    want = expected(events)
    by_id = {r.id: r for r in records}
    asked: list[list[int]] = []

    def fetch(ids: list[int]) -> list[EventRecord]:
        asked.append(ids)
        return [by_id[i] for i in ids]

    for size in (1, 2, 3, 5):
        for start in range(0, len(records), size):
            page = records[start : start + size]
            assert decode_events(page, fetch) == want[start : start + size]
        reverse = list(reversed(records))
        for start in range(0, len(reverse), size):
            page = reverse[start : start + size]
            assert decode_events(page, fetch) == list(reversed(want))[start : start + size]
    assert asked and all(i < max(ids) + 2 for ids in asked for i in ids)


def test_without_data_payloads_are_left_out_and_nothing_is_fetched() -> None:
    events = run({"items": [1], "doc": "z"})
    records = encode_events(events)
    decoded = decode_events(records[3:], no_fetch, include_data=False)
    for event, want in zip(decoded, expected(events)[3:], strict=True):
        for key, body in event.items():
            if key.endswith("EventDetails"):
                assert not {"input", "output", "parameters", "result"} & set(body)
                kept = {k: v for k, v in want[key].items() if k not in ("input", "output")}
                kept.pop("parameters", None)
                kept.pop("result", None)
                assert body == kept


def test_events_stored_before_this_encoding_read_back_unchanged() -> None:
    details = {"stateEnteredEventDetails": {"input": '{"a":1}', "name": "S"}}
    record = EventRecord(4, 3, "PassStateEntered", T0, json.dumps(details))
    assert decode_events([record], no_fetch) == [
        {"timestamp": T0, "type": "PassStateEntered", "id": 4, "previousEventId": 3, **details}
    ]


def test_text_orjson_refuses_falls_back_to_the_plain_form() -> None:
    events = run({"items": [], "odd": "\ud800"})  # a lone surrogate
    records = encode_events(events)
    entered = next(r for r in records if r.type == "PassStateEntered")
    assert RAW not in json.loads(entered.details or "")
    decoded = decode_events(records, lambda ids: [r for r in records if r.id in ids])
    assert decoded == expected(events)


def test_a_page_whose_referenced_event_is_gone_reads_the_payload_as_empty() -> None:
    events = run({"items": [], "doc": "w"})
    records = encode_events(events)
    late = [r for r in records if r.type == "TaskStateEntered"]
    assert REF in json.loads(late[0].details or "")
    decoded = decode_events(late, lambda ids: [])  # expired between the two reads
    body = next(v for k, v in decoded[0].items() if k.endswith("EventDetails"))
    assert body["input"] == ""


def chain(states: int, padding: int = 5000) -> list[HistoryEvent]:
    """A Pass chain that grows its document by one member per state (pass_chain_100)."""
    names = [f"P{i:03}" for i in range(states)]
    definition = {
        "StartAt": names[0],
        "States": {
            name: {
                "Type": "Pass",
                "Result": {"step": i, "nested": {"deep": [i]}},
                "ResultPath": f"$.acc.s{i}" if i % 3 else f"$.acc.s{i - i % 6}",
                **({"Next": names[i + 1]} if i + 1 < states else {"End": True}),
            }
            for i, name in enumerate(names)
        },
    }
    execution = new_execution(definition, {"id": "x" * padding}, name="c", seed=1)
    execution.start(T0)
    assert execution.status == "SUCCEEDED"
    return list(execution.events)


def test_a_growing_document_is_stored_as_patches_cut_by_raw_copies() -> None:
    events = chain(100)
    records = encode_events(events)
    kinds = {RAW: 0, PATCH: 0}
    for record in records:
        stored = json.loads(record.details or "{}")
        for kind in kinds:
            kinds[kind] += kind in stored and "output" in stored[kind]
    # Every output is a patch but for one raw copy per MAX_PATCH_CHAIN links.
    assert kinds[PATCH] >= 100 - 100 // MAX_PATCH_CHAIN - 2
    assert 1 <= kinds[RAW] <= 100 // MAX_PATCH_CHAIN + 2
    # (100 outputs of 5 KB written whole would be 500 KB)
    assert sum(len(r.details or "") for r in records) < 5000 * kinds[RAW] + 60_000
    assert decode_events(records, no_fetch) == expected(events)


def test_a_small_document_is_written_again_rather_than_patched() -> None:
    events = chain(40, padding=300)
    records = encode_events(events)
    stored = [json.loads(r.details or "{}") for r in records]
    assert not any(PATCH in document for document in stored)
    assert sum(RAW in document and "output" in document[RAW] for document in stored) == 40
    assert decode_events(records, no_fetch) == expected(events)


def test_a_chunk_holds_a_commit_and_reads_back_as_its_events() -> None:
    from flowstate.runtime.stored_history import encode_chunk
    from flowstate.storage.chunks import unpack_chunk

    events = chain(60)
    chunk = encode_chunk(events)
    assert chunk is not None and (chunk.first_id, chunk.last_id) == (1, len(events))
    records = unpack_chunk(chunk.body)
    assert [r.id for r in records] == [e.id for e in events]
    assert [r.type for r in records] == [e.type for e in events]
    assert decode_events(records, no_fetch) == expected(events)
    assert encode_chunk([]) is None


def test_a_chunk_with_text_orjson_refuses_reads_back_exactly() -> None:
    from flowstate.runtime.stored_history import encode_chunk
    from flowstate.storage.chunks import unpack_chunk

    events = run({"items": [1], "lone": "\ud800", "big": 2**70})
    chunk = encode_chunk(events)
    assert chunk is not None
    assert decode_events(unpack_chunk(chunk.body), no_fetch) == expected(events)


def test_an_integer_beyond_64_bits_reads_back_exactly() -> None:
    """orjson reads such an integer as a float: a chunk that has one is read by the stdlib."""
    from flowstate.runtime.stored_history import encode_chunk
    from flowstate.storage.chunks import unpack_chunk

    value = {"items": [1], "big": 2**70, "negative": -(2**70), "u64": 2**64 - 1, "digits": "1" * 25}
    events = run(value)
    chunk = encode_chunk(events)
    assert chunk is not None
    decoded = decode_events(unpack_chunk(chunk.body), no_fetch)
    assert decoded == expected(events)
    started = decoded[0]["executionStartedEventDetails"]["input"]
    assert json.loads(started) == value and "1180591620717411303424" in started


def test_any_page_of_a_patched_history_reads_back_exactly() -> None:
    events = chain(80)
    records = encode_events(events)
    want = expected(events)
    by_id = {r.id: r for r in records}
    reads: list[list[int]] = []

    def fetch(ids: list[int]) -> list[EventRecord]:
        reads.append(ids)
        return [by_id[i] for i in ids if i in by_id]

    for size in (1, 7, 50):
        for start in range(0, len(records), size):
            assert decode_events(records[start : start + size], fetch) == want[start : start + size]
    assert reads and max(len(ids) for ids in reads) <= 2 * MAX_PATCH_CHAIN + 1


def test_a_change_is_found_only_where_resultpath_could_have_made_it() -> None:
    from flowstate.asl.paths import compile_reference_path
    from flowstate.runtime.stored_history import _change, _put

    shared = {"big": list(range(50))}
    base = {"a": 1, "b": {"c": shared, "d": {"e": 2}}, "z": [1, 2]}
    for path, leaf in (
        ("$.b.d.e", 3),
        ("$.b.d.f", {"new": True}),
        ("$.b.x", [1]),
        ("$.q", None),
        ("$.a", "replaced"),
    ):
        new = compile_reference_path(path).assign(base, leaf)
        found = _change(base, new)
        assert found is not None and found[1] is leaf, path
        rebuilt = _put(base, found[0], found[1])
        assert json.dumps(rebuilt) == json.dumps(new)  # same members, same order
    two = dict(base, a=2, z=[3])
    assert _change(base, two) is None
    assert _change(base, base) is None
    assert _change(base, json.loads(json.dumps(base))) is None  # nothing shared: no patch
    assert _change([1], [1, 2]) is None


def test_a_state_exit_is_stored_raw_or_by_reference_and_reads_back_exactly() -> None:
    """An exit without assigned variables is written straight as text: its output raw when
    new, by reference when an earlier event of the commit holds it (a pass-through)."""
    from flowstate.runtime.stored_history import encode_chunk
    from flowstate.storage.chunks import unpack_chunk

    events = run({"items": [3], "small": 'é "q"'})  # under the patch threshold
    chunk = encode_chunk(events)
    assert chunk is not None
    records = unpack_chunk(chunk.body)
    exits = {}
    for record in records:
        if record.type.endswith("StateExited"):
            stored = json.loads(record.details or "")
            exits[stored["stateExitedEventDetails"]["name"]] = (record.id, stored)
    grow_id, grow = exits["Grow"]
    assert "assignedVariables" in grow["stateExitedEventDetails"]  # (the general form)
    # Same passes Grow's output through: a reference to where Grow's exit wrote it.
    _, same = exits["Same"]
    assert same[REF] == {"output": [grow_id, "output"]} and RAW not in same
    assert same["stateExitedEventDetails"]["output"] is None
    _, work = exits["Work"]  # a new document: raw
    assert work[RAW] == ["output"] and REF not in work
    assert work["stateExitedEventDetails"]["output"]["worked"] == {"done": [1, 2.5, None, True]}
    assert decode_events(records, no_fetch) == expected(events)


def test_an_exit_whose_assigned_text_orjson_refuses_reads_back_exactly() -> None:
    """The plain form of an event is written from scratch: its own payloads are not taken
    for ones an earlier event holds (they would refer to themselves)."""
    from flowstate.runtime.stored_history import encode_chunk
    from flowstate.storage.chunks import unpack_chunk

    definition = {
        "StartAt": "Keep",
        "States": {
            "Keep": {
                "Type": "Pass",
                "Result": {"fresh": 1},
                "Assign": {"odd.$": "$$.Execution.Input.odd"},
                "Next": "Then",
            },
            "Then": {"Type": "Pass", "End": True},
        },
    }
    execution = new_execution(definition, {"odd": "\ud800"}, name="s", seed=3)
    execution.start(T0)
    assert execution.status == "SUCCEEDED"
    events = list(execution.events)
    chunk = encode_chunk(events)
    assert chunk is not None
    assert decode_events(unpack_chunk(chunk.body), no_fetch) == expected(events)
    records = encode_events(events)
    assert decode_events(records, no_fetch) == expected(events)


def test_a_chunk_writes_each_state_payload_once_and_reads_back_exactly() -> None:
    """A chain's entries and exits are short rows into the chunk's shared payloads: each
    document is written once, however many events hold it."""
    from flowstate.runtime.stored_history import _chunk_at_once
    from flowstate.storage.chunks import unpack_chunk

    events = chain(40, padding=300)  # under the patch threshold
    chunk = _chunk_at_once(events)
    assert chunk is not None
    body = json.loads(chunk.body)
    rows = {row[0]: row for row in body["events"]}
    states = [e for e in events if e.type in ("PassStateEntered", "PassStateExited")]
    # (the first state's input is the execution's: ExecutionStarted holds it, by reference)
    assert rows[states[0].id][4][REF] == {"input": [1, "input"]}
    assert all(isinstance(rows[e.id][4], list) for e in states[1:])
    assert len(body["shared"]) == 40  # the 40 outputs
    assert chunk.body.count("x" * 300) == 41
    records = unpack_chunk(chunk.body)
    assert decode_events(records, no_fetch) == expected(events)
    # The first holder of a shared payload holds it raw; the others refer to it.
    stored = {r.id: json.loads(r.details or "null") for r in records}
    first_exit = next(e for e in states if e.type == "PassStateExited")
    second_entry = next(e for e in states if e.type == "PassStateEntered" and e.id > first_exit.id)
    assert stored[first_exit.id][RAW] == ["output"]
    assert stored[second_entry.id][REF] == {"input": [first_exit.id, "output"]}


def test_a_growing_document_in_a_chunk_is_stored_as_patches() -> None:
    from flowstate.runtime.stored_history import encode_chunk
    from flowstate.storage.chunks import unpack_chunk

    events = chain(100)
    chunk = encode_chunk(events)
    assert chunk is not None
    records = unpack_chunk(chunk.body)
    patched = sum(PATCH in json.loads(r.details or "{}") for r in records)
    assert patched >= 100 - 100 // MAX_PATCH_CHAIN - 2
    # (100 outputs of 5 KB written whole would be 500 KB)
    assert len(chunk.body) < 5000 * (100 // MAX_PATCH_CHAIN + 3) + 60_000
    assert decode_events(records, no_fetch) == expected(events)


def test_a_chunk_written_before_shared_payloads_reads_back() -> None:
    """flowstate 0.1's chunk body: the array of events alone, every details an object."""
    from flowstate.storage.chunks import unpack_chunk
    from flowstate.storage.timestamps import micros

    events = run({"items": [1, 2], "doc": "é"})
    records = encode_events(events)
    old_body = json.dumps(
        [
            [r.id, r.previous_event_id, r.type, micros(r.timestamp), json.loads(r.details)]
            if r.details
            else [r.id, r.previous_event_id, r.type, micros(r.timestamp), None]
            for r in records
        ]
    )
    assert decode_events(unpack_chunk(old_body), no_fetch) == expected(events)


def test_small_payloads_are_written_at_once_exactly_as_one_by_one() -> None:
    """The one-call encoding of a chunk writes the body the payload-by-payload one writes."""
    from flowstate.runtime.stored_history import _chunk_at_once, _chunk_each
    from flowstate.storage.chunks import unpack_chunk

    for events in (run({"items": [3, 4], "small": 'é "q" \u2028'}), chain(40, padding=300)):
        fast = _chunk_at_once(events)
        assert fast is not None
        assert fast == _chunk_each(events)
        assert decode_events(unpack_chunk(fast.body), no_fetch) == expected(events)


def test_a_chunk_is_written_payload_by_payload_when_one_call_cannot_tell() -> None:
    """NaN (which orjson writes as null), text orjson refuses, a large first payload (its exits
    may be patches): the one-call encoding declines and the chunk is written as before."""
    from flowstate.runtime.stored_history import _chunk_at_once, encode_chunk

    def entered(value: Any, name: str = "S") -> list[HistoryEvent]:
        return [
            HistoryEvent(
                1,
                0,
                "PassStateEntered",
                T0,
                "stateEnteredEventDetails",
                ("entered", name, {"a": 1}),
            ),
            HistoryEvent(
                2, 1, "PassStateExited", T0, "stateExitedEventDetails", ("exited", name, value)
            ),
        ]

    assert _chunk_at_once(entered({"b": None})) is not None  # a null alone is no NaN
    assert _chunk_at_once(entered({"b": [1.5, float("nan")]})) is None
    assert _chunk_at_once(entered({"b": float("inf")})) is None
    assert _chunk_at_once(entered({"b": "\ud800"})) is None  # a lone surrogate
    assert _chunk_at_once(entered({"b": 1}, name="S\x00")) is not None  # a name in a row
    assert _chunk_at_once(entered({"b": 2**70})) is None  # beyond 64 bits
    big = chain(3)  # a first payload of 5 KB
    assert _chunk_at_once(big) is None
    assert encode_chunk(big) is not None


def test_a_recorded_chunk_reads_back_exactly_and_writes_each_payload_once() -> None:
    """The chunk as the interpreter recorded it (one orjson call, a payload held again by a
    reference): read back as the other forms, for entries, exits, task events with payloads,
    assigned variables (payloads nested in a member) and a Map."""
    from flowstate.runtime.stored_history import _chunk_as_recorded, _chunk_each, encode_chunk
    from flowstate.storage.chunks import unpack_chunk

    for events in (run({"items": [3, 4], "small": 'é "q" \u2028'}), chain(40, padding=300)):
        chunk = _chunk_as_recorded(events)
        assert chunk is not None and chunk == encode_chunk(events)
        assert json.loads(chunk.body).keys() == {"recorded"}
        records = unpack_chunk(chunk.body)
        assert decode_events(records, no_fetch) == expected(events)
        assert [(r.id, r.previous_event_id, r.type, r.timestamp) for r in records] == [
            (e.id, e.previous_event_id, e.type, e.timestamp) for e in events
        ]
        other = unpack_chunk(_chunk_each(events).body)
        assert decode_events(records, no_fetch) == decode_events(other, no_fetch)
    # a chain's 40 outputs are each written once, however many events hold them
    assert _chunk_as_recorded(chain(40, padding=300)).body.count("x" * 300) == 41  # type: ignore[union-attr]


def test_a_recorded_chunk_declines_what_orjson_cannot_write_as_dump_json() -> None:
    from flowstate.interpreter.history import Payload
    from flowstate.runtime.stored_history import _chunk_as_recorded, encode_chunk
    from flowstate.storage.chunks import unpack_chunk

    def succeeded(value: Any) -> list[HistoryEvent]:
        return [
            HistoryEvent(
                1, 0, "TaskStateEntered", T0, "stateEnteredEventDetails", ("entered", "T", {})
            ),
            HistoryEvent(
                2,
                1,
                "LambdaFunctionSucceeded",
                T0,
                "lambdaFunctionSucceededEventDetails",
                {"output": Payload(value), "outputDetails": {"truncated": False}},
            ),
        ]

    class Text(str):
        pass

    assert _chunk_as_recorded(succeeded({"b": None})) is not None  # a null alone is no NaN
    assert _chunk_as_recorded(succeeded({"b": [1.5, float("nan")]})) is None
    assert _chunk_as_recorded(succeeded({"b": float("-inf")})) is None
    assert _chunk_as_recorded(succeeded({"b": "\ud800"})) is None  # a lone surrogate
    assert _chunk_as_recorded(succeeded({"b": 2**70})) is None  # beyond 64 bits
    assert _chunk_as_recorded(succeeded({"b": T0})) is None  # not JSON
    assert _chunk_as_recorded(succeeded({"b": Text("s")})) is None  # a subclass: the stdlib's
    assert _chunk_as_recorded(chain(3)) is None  # a first payload of 5 KB
    for value in ({"b": Text("s")}, {"b": None}):
        events = succeeded(value)
        chunk = encode_chunk(events)  # (another form writes it, or refuses as dump_json)
        if chunk is not None:
            assert decode_events(unpack_chunk(chunk.body), no_fetch) == expected(events)
