"""History events exactly as GetExecutionHistory returns them.

Events are built cheaply while an execution runs: ``input``/``output`` payloads are kept as
Python values and only serialised to JSON text when the history is read (``render``). Payloads
are treated as immutable everywhere in the engine, so holding a reference is safe.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import orjson

__all__ = [
    "ORJSON_STRICT",
    "HistoryEvent",
    "Payload",
    "dump_json",
    "entered_details",
    "error_details",
    "exited_details",
    "expand_details",
    "find_null",
    "has_non_finite",
    "json_size",
    "orjson_bytes",
    "render_events",
    "render_payloads",
]

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_orjson_dumps = orjson.dumps
# orjson writes NaN and the infinities as null: a text with a null in it is looked at again.
# (A compiled search finds it in about half the time of ``b"null" in data``.)
find_null = re.compile(b"null").search
# Only JSON's own types: datetimes, dataclasses and subclasses go to the stdlib encoder, which
# handles subclasses and refuses the rest, exactly as before.
ORJSON_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def dump_json(value: Any) -> str:
    """JSON text as AWS renders payloads: compact, UTF-8, no NaN.

    orjson writes it (this is on every durable commit's path). What orjson refuses (integers
    beyond 64 bits, subclasses, non-JSON types) and non-finite floats, which it would write
    as ``null``, go to the stdlib encoder, which renders the first and refuses the others.
    One difference remains, in small numbers: ``1e-7`` where the stdlib writes ``1e-07``,
    and ``0.00001`` where it writes ``1e-05`` (JavaScript's forms)."""
    data = orjson_bytes(value)
    if data is None:
        return _encode(value)  # (a non-finite float raises ValueError, as before)
    return data.decode()


def orjson_bytes(value: Any) -> bytes | None:
    """orjson's text of ``value`` when it is what ``dump_json`` writes; None when the stdlib
    encoder decides (a type orjson refuses, or NaN/infinity, which orjson writes as null)."""
    try:
        data = _orjson_dumps(value, option=ORJSON_STRICT)
    except TypeError:
        return None
    if find_null(data) is not None and has_non_finite(value):
        return None
    return data


def json_size(value: Any) -> int:
    """The length in bytes of ``dump_json(value)`` encoded as UTF-8 (quotas; a lone
    surrogate, which only the stdlib encoder writes, counts as its three bytes)."""
    data = orjson_bytes(value)
    return len(data) if data is not None else len(_encode(value).encode("utf-8", "surrogatepass"))


def has_non_finite(value: Any) -> bool:
    """Whether a NaN or an infinity is anywhere in ``value`` (walked without recursion: this
    runs on every text with a ``null`` in it, snapshots included)."""
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            extend(item.values())
        elif kind is list or kind is tuple:
            extend(item)
        elif kind is float:
            if item - item != 0.0:  # NaN - NaN and inf - inf are NaN; finite - itself is 0
                return True
        elif isinstance(item, float):  # (subclasses go to the stdlib encoder anyway)
            if item - item != 0.0:
                return True
        elif isinstance(item, dict):
            extend(item.values())
        elif isinstance(item, (list, tuple)):
            extend(item)
    return False


class Payload:
    """A JSON payload rendered lazily (``input``, ``output``, ``parameters``, ...)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class HistoryEvent:
    """One history event. ``details`` is the ``<type>EventDetails`` object, or None."""

    __slots__ = ("details", "details_key", "id", "previous_event_id", "timestamp", "type")

    def __init__(
        self,
        id: int,
        previous_event_id: int,
        type: str,
        timestamp: datetime,
        details_key: str | None,
        details: dict[str, Any] | tuple[str, str, Any] | None,
    ) -> None:
        self.id = id
        self.previous_event_id = previous_event_id
        self.type = type
        self.timestamp = timestamp
        self.details_key = details_key
        self.details = details

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "timestamp": self.timestamp,
            "type": self.type,
            "id": self.id,
            "previousEventId": self.previous_event_id,
        }
        if self.details_key is not None and self.details is not None:
            out[self.details_key] = _render_details(self.details)
        return out


def error_details(error: str | None, cause: str | None) -> dict[str, Any]:
    """``{"cause", "error"}`` with absent values left out, as AWS records failures."""
    details: dict[str, Any] = {}
    if cause is not None:
        details["cause"] = cause
    if error is not None:
        details["error"] = error
    return details


def entered_details(name: str, input_value: Any) -> tuple[str, str, Any]:
    """``stateEnteredEventDetails``, built only when the history is read."""
    return ("entered", name, input_value)


def exited_details(name: str, output: Any) -> tuple[str, str, Any]:
    """``stateExitedEventDetails`` without assigned variables, built only when read."""
    return ("exited", name, output)


def expand_details(details: Any) -> dict[str, Any]:
    """The details of an event as a dict, whichever form the interpreter recorded."""
    if type(details) is tuple:
        kind, name, value = details
        if kind == "exited":
            return {"name": name, "output": Payload(value), "outputDetails": {"truncated": False}}
        return {"input": Payload(value), "inputDetails": {"truncated": False}, "name": name}
    return details


def _render_details(details: Any, memo: dict[int, str] | None = None) -> dict[str, Any]:
    details = expand_details(details)
    out: dict[str, Any] = {}
    for key, value in details.items():
        if isinstance(value, Payload):
            if memo is None:
                out[key] = dump_json(value.value)
            else:
                text = memo.get(id(value.value))
                if text is None:
                    text = memo[id(value.value)] = dump_json(value.value)
                out[key] = text
        elif isinstance(value, dict):
            out[key] = _render_details(value, memo)
        else:
            out[key] = value
    return out


def render_payloads(details: dict[str, Any], memo: dict[int, str] | None = None) -> dict[str, Any]:
    """``details`` with every ``Payload`` in it (at any depth) as its JSON text."""
    return _render_details(details, memo)


def render_events(events: list[HistoryEvent]) -> list[dict[str, Any]]:
    return [event.render() for event in events]
