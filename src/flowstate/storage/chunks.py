"""History written as chunks: the events one commit adds to one execution, in one row.

A commit of a Standard execution adds a run of consecutive events (a chain of pure states
adds hundreds). Written one row each, the rows cost more to bind and insert than the states
cost to run; written as one row per commit, the cost is one insert and one JSON encoding.

A chunk's body is a JSON object, its events in id order::

    {"shared": [payload, ...],
     "events": [[id, previous_event_id, type, timestamp_micros, details], ...]}

``details`` is null, the event's stored details object (the runtime's encoding, see
``flowstate.runtime.stored_history``), or, for the common events whose details are one
payload and a name (a state's entry or exit), ``[details key, name, member, index]``: the
payload is ``shared[index]``, written once however many events hold it. Readers get each
event back as an ``EventRecord`` whose ``details`` is the stored details object as JSON text,
exactly what a one-row-per-event store holds: the first event that holds a shared payload
holds it raw (``"~raw"``), the later ones by reference to it (``"~ref"``).

A chunk of small payloads may instead be written as the interpreter recorded its events
(``pack_recorded``), by one encoder call with no work per payload::

    {"recorded": [[id, previous_event_id, type, timestamp_micros(, details key, details)],
                  ...]}

where ``details`` is ``["entered" | "exited", name, payload]`` for a state's entry or exit,
or the details object with each payload member as ``{"~p": payload}`` (members that map
names to payloads, such as assigned variables, hold them the same way). A payload an
earlier event of the chunk holds is not written again: ``[kind, name, 0, [event id,
member]]``, or ``{"~ref": [event id, member]}`` for a member. Read back, each is raw or a
reference (``"~ref"``), as in the other forms.

Written before flowstate 0.2 and still read: a body that is the array of events alone, every
``details`` an object.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from flowstate.storage.records import EventRecord, HistoryChunk
from flowstate.storage.timestamps import from_micros, micros

__all__ = [
    "PAYLOAD",
    "RAW",
    "REF",
    "HistoryChunk",
    "pack_chunk",
    "pack_recorded",
    "pack_rows",
    "unpack_chunk",
]

RAW = "~raw"  # stored details: the members that hold their payload itself
REF = "~ref"  # stored details: member -> [event id, member of that event] holding its payload
PAYLOAD = "~p"  # a recorded chunk: {"~p": payload} is a payload member
_NOT_TRUNCATED = {"truncated": False}


def pack_chunk(
    events: Sequence[tuple[int, int, str, datetime, Any]],
    plain: Callable[[int], str],
    shared: bytes | None = None,
) -> HistoryChunk:
    """One chunk of ``(id, previous_event_id, type, timestamp, details)`` in id order, where
    ``details`` is None, JSON-compatible data, an ``orjson.Fragment``, or ``[details key,
    name, member, index]`` into ``shared`` (the JSON text of the shared payloads).

    An event whose details orjson refuses (a lone surrogate, an integer beyond 64 bits) is
    written as ``plain(index)``: JSON text, ASCII only, that stands for the same details."""
    first = events[0][0]
    rows = []
    last_moment: datetime | None = None
    stamp = 0
    expected = first
    for event_id, previous, kind, moment, details in events:
        if event_id != expected:
            raise ValueError(f"history chunk ids are not consecutive: {first}.., {event_id}")
        expected += 1
        if moment is not last_moment:  # (a commit's events mostly share one instant)
            stamp, last_moment = micros(moment), moment
        rows.append([event_id, previous, kind, stamp, details])
    try:
        return pack_rows(rows, shared)
    except TypeError:
        for index, row in enumerate(rows):
            try:
                orjson.dumps(row)
            except TypeError:
                row[4] = orjson.Fragment(plain(index))
        return pack_rows(rows, shared)


def pack_rows(rows: list[list[Any]], shared: bytes | None = None) -> HistoryChunk:
    """The chunk of ``rows``, each ``[id, previous_event_id, type, timestamp_micros,
    details]`` as stored, ids consecutive; orjson's TypeError if it refuses a row."""
    text = b'{"shared":' + (shared or b"[]") + b',"events":' + orjson.dumps(rows) + b"}"
    first = rows[0][0]
    return HistoryChunk(first, first + len(rows) - 1, text.decode())


def pack_recorded(first_id: int, last_id: int, rows: bytes) -> HistoryChunk:
    """The chunk of events ``first_id``..``last_id`` whose JSON array, as recorded, is
    ``rows`` (see the module's docstring)."""
    return HistoryChunk(first_id, last_id, (b'{"recorded":' + rows + b"}").decode())


# 20 digits in a row may be an integer beyond 64 bits, which orjson reads as a float. They
# are looked for in the text with every digit mapped to "0" and all else to " " (bytes'
# translate: ~8 µs for 6 KB, where a regular expression took ~130).
_DIGITS_AS_ZEROS = bytes(48 if 48 <= code <= 57 else 32 for code in range(256))
_LONG_DIGITS = b"0" * 20


def unpack_chunk(body: str | bytes) -> list[EventRecord]:
    """The events of a chunk's body, in id order."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:  # a lone surrogate, written escaped: the stdlib reads it
        data = json.loads(body)
    else:
        text = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
        if _LONG_DIGITS in text.translate(_DIGITS_AS_ZEROS):
            data = json.loads(body)  # exact integers of any size
    if type(data) is list:  # (the body of a chunk written before shared payloads)
        rows, shared = data, []
    elif "recorded" in data:
        return [_recorded(row) for row in data["recorded"]]
    else:
        rows, shared = data["events"], data["shared"]
    first_holder: dict[int, list[Any]] = {}  # shared index -> [event id, member]
    events = []
    for event_id, previous, kind, moment, details in rows:
        if type(details) is list:
            details = _expand(event_id, details, shared, first_holder)
        events.append(EventRecord(event_id, previous, kind, from_micros(moment), _text(details)))
    return events


def _expand(
    event_id: int, short: list[Any], shared: list[Any], first_holder: dict[int, list[Any]]
) -> dict[str, Any]:
    """The stored details object of a short ``[details key, name, member, index]``."""
    key, name, member, index = short
    body = {member: None, member + "Details": _NOT_TRUNCATED, "name": name}
    holder = first_holder.get(index)
    if holder is None:
        first_holder[index] = [event_id, member]
        body[member] = shared[index]
        return {key: dict(sorted(body.items())), RAW: [member]}
    return {key: dict(sorted(body.items())), REF: {member: holder}}


def _recorded(row: list[Any]) -> EventRecord:
    """A recorded event as the stored details object the other forms read back as: a
    payload member raw, or a reference to the event that holds it; payloads nested in a
    member as their JSON text."""
    if len(row) == 4:
        event_id, previous, kind, moment = row
        return EventRecord(event_id, previous, kind, from_micros(moment), None)
    event_id, previous, kind, moment, key, details = row
    raw: list[str] = []
    refs: dict[str, Any] = {}
    if type(details) is list:  # [kind, name, payload] or [kind, name, 0, holder]
        member = "input" if details[0] == "entered" else "output"
        name = details[1]
        if len(details) == 4:
            value = None
            refs[member] = details[3]
        else:
            value = details[2]
            raw.append(member)
        if member == "input":
            body = {"input": value, "inputDetails": _NOT_TRUNCATED, "name": name}
        else:
            body = {"name": name, "output": value, "outputDetails": _NOT_TRUNCATED}
    else:
        body = {}
        for member, value in details.items():
            if type(value) is dict and len(value) == 1 and PAYLOAD in value:
                body[member] = value[PAYLOAD]
                raw.append(member)
            elif type(value) is dict and len(value) == 1 and REF in value:
                body[member] = None
                refs[member] = value[REF]
            else:
                body[member] = _nested(value)
    document: dict[str, Any] = {key: body}
    if raw:
        document[RAW] = raw
    if refs:
        document[REF] = refs
    return EventRecord(event_id, previous, kind, from_micros(moment), _text(document))


def _nested(value: Any) -> Any:
    """A details member that is not a payload: payloads in it (at any depth) as JSON text."""
    if type(value) is not dict:
        return value
    if len(value) == 1 and PAYLOAD in value:
        return orjson.dumps(value[PAYLOAD]).decode()
    return {key: _nested(item) for key, item in value.items()}


def _text(details: Any) -> str | None:
    if details is None:
        return None
    try:
        return orjson.dumps(details).decode()
    except TypeError:
        return json.dumps(details, separators=(",", ":"))
