"""History written as chunks: the events one commit adds to one execution, in one row.

A commit of a Standard execution adds a run of consecutive events (a chain of pure states
adds hundreds). Written one row each, the rows cost more to bind and insert than the states
cost to run; written as one row per commit, the cost is one insert and one JSON encoding.

A chunk's body is a JSON array, one member per event in id order::

    [[id, previous_event_id, type, timestamp_micros, details-object-or-null], ...]

``details`` is the event's stored details object (the runtime's encoding, see
``flowstate.runtime.stored_history``); readers get each event back as an ``EventRecord``
whose ``details`` is that object as JSON text, exactly what a one-row-per-event store holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from flowstate.storage.records import EventRecord, HistoryChunk
from flowstate.storage.timestamps import from_micros, micros

__all__ = ["HistoryChunk", "pack_chunk", "unpack_chunk"]


def pack_chunk(
    events: Sequence[tuple[int, int, str, datetime, Any]],
    plain: Callable[[int], str],
) -> HistoryChunk:
    """One chunk of ``(id, previous_event_id, type, timestamp, details)`` in id order, where
    ``details`` is None, JSON-compatible data or an ``orjson.Fragment``.

    An event whose details orjson refuses (a lone surrogate, an integer beyond 64 bits) is
    written as ``plain(index)``: JSON text, ASCII only, that stands for the same details."""
    first = events[0][0]
    rows = []
    last_moment: datetime | None = None
    stamp = 0
    for index, (event_id, previous, kind, moment, details) in enumerate(events):
        if event_id != first + index:
            raise ValueError(f"history chunk ids are not consecutive: {first}.., {event_id}")
        if moment is not last_moment:  # (a commit's events mostly share one instant)
            stamp, last_moment = micros(moment), moment
        rows.append([event_id, previous, kind, stamp, details])
    try:
        body = orjson.dumps(rows)
    except TypeError:
        for index, row in enumerate(rows):
            try:
                orjson.dumps(row)
            except TypeError:
                row[4] = orjson.Fragment(plain(index))
        body = orjson.dumps(rows)
    return HistoryChunk(first, first + len(rows) - 1, body.decode())


def unpack_chunk(body: str | bytes) -> list[EventRecord]:
    """The events of a chunk's body, in id order."""
    try:
        rows = orjson.loads(body)
    except orjson.JSONDecodeError:  # a lone surrogate, written escaped: the stdlib reads it
        rows = json.loads(body)
    events = []
    for event_id, previous, kind, moment, details in rows:
        events.append(EventRecord(event_id, previous, kind, from_micros(moment), _text(details)))
    return events


def _text(details: Any) -> str | None:
    if details is None:
        return None
    try:
        return orjson.dumps(details).decode()
    except TypeError:
        return json.dumps(details, separators=(",", ":"))
