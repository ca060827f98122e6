"""How history events are kept in the store, and turned back into what the API returns.

AWS returns every payload (``input``, ``output``, ``parameters``, ...) as a JSON *string*
inside the event's details, and a state's output is, nearly always, the next state's input.
Written as AWS shows them, each payload would be escaped once more and stored twice. So the
stored details (one JSON object per event) hold:

- ``{"<type>EventDetails": {...}}`` as AWS shows it, except that a top-level payload member
  holds the payload itself (raw JSON, not a string) and is listed in ``"~raw"``;
- or, for a payload already written by an earlier event of the same commit, ``null`` in
  the body and ``"~ref": {member: [event id, member of that event]}``.

The events of one commit are written as one chunk (``flowstate.storage.chunks``): one row and
one JSON encoding per execution per commit, however many states the commit ran.

Read back as well: events stored one row each, and ``"~patch": {member: [event id, member,
[key, ...], value]}`` (a ``ResultPath`` output as its input plus one value; written by
flowstate 0.1.0 before chunks, where a chain of patches was cut by a raw copy every
``MAX_PATCH_CHAIN`` links), and events without ``~`` keys (payloads as strings). Reading
re-serialises raw payloads with the same encoder that wrote them, so the text a caller gets
is the text AWS's format calls for.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from flowstate.interpreter.history import (
    ORJSON_STRICT,
    HistoryEvent,
    Payload,
    dump_json,
    expand_details,
    find_null,
    has_non_finite,
    orjson_bytes,
    render_payloads,
)
from flowstate.storage import EventRecord, HistoryChunk
from flowstate.storage.chunks import PAYLOAD, RAW, REF, pack_chunk, pack_recorded, pack_rows
from flowstate.storage.timestamps import micros

__all__ = ["decode_events", "encode_chunk", "encode_events"]

PATCH = "~patch"
MAX_PATCH_CHAIN = 32
PATCH_FROM = 4096  # bytes of JSON: a smaller input is written again rather than patched
_NOT_TRUNCATED = {"truncated": False}
_dumps = orjson.dumps
_ENTERED_BY_REFERENCE = (
    '{"%s":{"input":null,"inputDetails":{"truncated":false},"name":%s},'
    + f'"{REF}":{{"input":[%d,"%s"]}}}}'
)
_EXITED_BY_REFERENCE = (
    '{"%s":{"name":%s,"output":null,"outputDetails":{"truncated":false}},'
    + f'"{REF}":{{"output":[%d,"%s"]}}}}'
)
_Fragment = orjson.Fragment
_QUOTED: dict[str, str | None] = {}  # state name -> its JSON string (None: not printable)
_MISSING = object()


def encode_chunk(events: Sequence[HistoryEvent]) -> HistoryChunk | None:
    """The chunk of ``events`` (one execution's, consecutive, written in one commit): the
    store's one row for them. Payloads are recognised by identity: the interpreter treats
    them as immutable, and the caller keeps ``events`` alive while this runs."""
    if not events:
        return None
    chunk = _chunk_as_recorded(events)
    if chunk is None:
        chunk = _chunk_at_once(events)
    return chunk if chunk is not None else _chunk_each(events)


def _chunk_as_recorded(events: Sequence[HistoryEvent]) -> HistoryChunk | None:
    """The chunk of small-payload events written as the interpreter recorded them, by one
    orjson call with little Python work per event and none per payload byte
    (``chunks.pack_recorded``): a state's entry or exit as ``[kind, name, payload]``, other
    details with each payload member as ``{"~p": payload}``; a payload an earlier event of
    the chunk holds is a reference to that event's member instead (found by identity).
    None when another form must write them: a first payload of ``PATCH_FROM / 2`` bytes or
    more, or on average more than that per event (a state's output may then be stored as a
    patch of its input), anything orjson refuses or would write as ``dump_json`` would not
    (NaN, an infinity, a subclass, a datetime)."""
    if events[-1].id - events[0].id != len(events) - 1:
        return None  # (not consecutive: ``pack_chunk`` says so)
    for event in events:  # the first payload tells whether they are small (as at once)
        first = _first_payload(event.details)
        if first is not _MISSING:
            if not _small(first):
                return None
            break
    holders: dict[int, list[Any]] = {}  # id(payload) -> [event id, member] holding it
    held = holders.get
    last_moment: Any = None  # the last timestamp and its micros (events share one)
    stamp = 0

    def recorded(item: Any) -> Any:
        nonlocal last_moment, stamp
        kind = type(item)
        if kind is not HistoryEvent:
            if kind is Payload:  # (nested in a member: assigned variables)
                return {PAYLOAD: item.value}
            raise TypeError  # (anything else: dump_json's rules, on another path)
        if item.timestamp is not last_moment:
            last_moment = item.timestamp
            stamp = micros(last_moment)
        details = item.details
        if details is None or item.details_key is None:
            return [item.id, item.previous_event_id, item.type, stamp]
        if type(details) is tuple:
            holder = held(id(details[2]))
            if holder is not None:
                details = [details[0], details[1], 0, holder]
            else:
                member = "input" if details[0] == "entered" else "output"
                holders[id(details[2])] = [item.id, member]
        else:
            written: dict[str, Any] = {}
            for member, value in details.items():
                if type(value) is Payload:
                    payload = value.value
                    holder = held(id(payload))
                    if holder is None:
                        holders[id(payload)] = [item.id, member]
                        written[member] = {PAYLOAD: payload}
                    else:
                        written[member] = {REF: holder}
                else:
                    written[member] = value
            details = written
        return [item.id, item.previous_event_id, item.type, stamp, item.details_key, details]

    try:
        rows = _dumps(events, default=recorded, option=ORJSON_STRICT)
    except TypeError:
        return None
    if len(rows) > PATCH_FROM // 2 * len(events):
        return None
    # orjson writes NaN and the infinities as null: a history with a null is looked at again.
    if find_null(rows) is not None and any(map(_non_finite_in, events)):
        return None
    return pack_recorded(events[0].id, events[-1].id, rows)


def _first_payload(details: Any) -> Any:
    if details is None:
        return _MISSING
    if type(details) is tuple:
        return details[2]
    for value in details.values():
        if type(value) is Payload:
            return value.value
    return _MISSING


def _non_finite_in(event: HistoryEvent) -> bool:
    details = event.details
    if details is None:
        return False
    if isinstance(details, tuple):
        return has_non_finite(details[2])
    stack = list(details.values())
    while stack:
        value = stack.pop()
        if type(value) is Payload:
            if has_non_finite(value.value):
                return True
        elif type(value) is dict:
            stack.extend(value.values())
        elif type(value) is float and value - value != 0.0:
            return True
    return False


def _chunk_at_once(events: Sequence[HistoryEvent]) -> HistoryChunk | None:
    """The chunk with every shared payload written by one orjson call (no call, and no NaN
    check, per payload); None when ``_chunk_each`` must write it: a payload orjson refuses or
    would write as ``dump_json`` would not (NaN, an infinity), a name that is not printable,
    or large payloads (a state's output may then be stored as a patch of its input).

    The body is the same as ``_chunk_each`` writes for these events, except that an exit is
    never a patch (each payload here is under ``PATCH_FROM / 2`` bytes on average)."""
    state = _Written()
    values: list[Any] = []  # the shared payloads, in the order of their first holder
    index, where = state.index, state.where
    if events[-1].id - events[0].id != len(events) - 1:
        return None  # (not consecutive: ``pack_chunk`` says so)
    rows: list[list[Any]] = []
    append = rows.append
    last_moment: datetime | None = None
    stamp = 0
    for event in events:
        if event.timestamp is not last_moment:  # (a commit's events mostly share one instant)
            last_moment = event.timestamp
            stamp = micros(last_moment)
        details = event.details
        stored: Any = details
        if details is not None and event.details_key is not None:
            if type(details) is tuple:
                kind, name, value = details
                member = "input" if kind == "entered" else "output"
                key = id(value)
                at = index.get(key)
                target = where.get(key) if at is None else None
                if target is not None:  # an earlier event's own details hold it
                    quoted = _quoted(name)
                    if quoted is None:
                        return None
                    text = _ENTERED_BY_REFERENCE if kind == "entered" else _EXITED_BY_REFERENCE
                    stored = _Fragment(text % (event.details_key, quoted, *target))
                else:
                    if at is None:
                        at = index[key] = len(values)
                        if not at and not _small(value):  # (the first tells: no second try)
                            return None
                        values.append(value)
                        where[key] = [event.id, member]
                    stored = [event.details_key, name, member, at]
            else:
                stored = _encode(event, state)
        append([event.id, event.previous_event_id, event.type, stamp, stored])
    try:
        shared = _dumps(values, option=ORJSON_STRICT)
    except TypeError:
        return None
    if len(shared) >= PATCH_FROM // 2 * len(values) > 0:
        return None
    # orjson writes NaN and the infinities as null: read back, such a payload differs.
    if find_null(shared) is not None and orjson.loads(shared) != values:
        return None
    try:
        return pack_rows(rows, shared)
    except TypeError:  # (a name orjson refuses)
        return None


def _small(value: Any) -> bool:
    try:
        return len(_dumps(value, option=ORJSON_STRICT)) < PATCH_FROM // 2
    except TypeError:
        return False


def _chunk_each(events: Sequence[HistoryEvent]) -> HistoryChunk:
    """The chunk, each payload written (and checked) on its own; exits of large inputs as
    patches where they are one."""
    state = _Written()
    rows: list[tuple[int, int, str, datetime, Any]] = []
    append = rows.append
    for event in events:
        details: Any = event.details  # (becomes its written form: compiled code checks types)
        if details is not None and event.details_key is not None:
            short = _short(event, state, details) if type(details) is tuple else None
            details = short if short is not None else _encode(event, state)
        append((event.id, event.previous_event_id, event.type, event.timestamp, details))
    shared = b"[" + b",".join(state.shared) + b"]"
    return pack_chunk(rows, lambda index: _plain_text(events[index], state), shared)


def encode_events(events: Sequence[HistoryEvent]) -> list[EventRecord]:
    """``events`` as one row each (the form a chunk reads back as)."""
    state = _Written()
    out = []
    for event in events:
        details = None
        if event.details_key is not None and event.details is not None:
            try:
                details = _dumps(_encode(event, state)).decode()
            except TypeError:
                details = _plain_text(event, state)
        out.append(
            EventRecord(event.id, event.previous_event_id, event.type, event.timestamp, details)
        )
    return out


class _Written:
    """What the events encoded so far (one execution, one commit) hold."""

    __slots__ = ("depth", "entered", "index", "shared", "sizes", "texts", "where")

    def __init__(self) -> None:
        # The JSON of the chunk's shared payloads, and id(payload) -> its place there.
        self.shared: list[bytes] = []
        self.index: dict[int, int] = {}
        self.where: dict[int, list[Any]] = {}  # id(payload) -> [event id, member] holding it
        self.texts: dict[int, str] = {}  # id(payload) -> its JSON text
        self.depth: dict[int, int] = {}  # id(payload) -> patches to apply to read it
        self.entered: dict[str, Any] = {}  # state name -> the input of its latest entry
        self.sizes: dict[int, int] = {}  # id(payload) -> length of its JSON text (about)

    def text(self, value: Any) -> str:
        text = self.texts.get(id(value))
        if text is None:
            text = dump_json(value)
            if not text.isascii():
                try:
                    text.encode()
                except UnicodeEncodeError:  # a lone surrogate: escaped, as JSON allows
                    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
            self.texts[id(value)] = text
            self.sizes[id(value)] = len(text)
        return text

    def fragment(self, value: Any) -> orjson.Fragment:
        """``value``'s JSON for a document: orjson's bytes as they come, when it can write
        them as ``dump_json`` would (else ``text``'s)."""
        if id(value) not in self.texts:
            data = orjson_bytes(value)
            if data is not None:
                self.sizes[id(value)] = len(data)
                return _Fragment(data)
        return _Fragment(self.text(value))


def _short(event: HistoryEvent, state: _Written, details: tuple[str, str, Any]) -> Any:
    """A state's entry or exit (``details``: the interpreter's lazy form, no assigned
    variables) written in short: its payload as a place in the chunk's shared payloads, or
    by reference to the earlier event of the commit whose own details hold it. None when the
    general path writes it: an exit that may be a patch of a large input, a payload orjson
    does not write as ``dump_json`` would, a reference under a name that is not printable."""
    kind, name, value = details
    key = id(value)
    at = state.index.get(key)
    if kind == "entered":
        state.entered[name] = value
        if at is not None:  # (nearly always: the previous state's output)
            return [event.details_key, name, "input", at]
        member = "input"
    else:
        if at is not None:
            return [event.details_key, name, "output", at]
        base = state.entered.get(name)
        if base is not None and state.sizes.get(id(base), 0) >= PATCH_FROM:
            return None
        member = "output"
    target = state.where.get(key)
    if target is not None:  # an earlier event's own details hold it
        quoted = _quoted(name)
        if quoted is None:
            return None
        text = _ENTERED_BY_REFERENCE if member == "input" else _EXITED_BY_REFERENCE
        return _Fragment(text % (event.details_key, quoted, target[0], target[1]))
    data = orjson_bytes(value)
    if data is None:
        return None
    shared = state.shared
    state.sizes[key] = len(data)
    at = state.index[key] = len(shared)
    shared.append(data)
    state.where[key] = [event.id, member]
    return [event.details_key, name, member, at]


def _encode(event: HistoryEvent, state: _Written, stdlib: bool = False) -> Any:
    """The stored details of ``event``: a document holding ``orjson.Fragment`` payloads, or
    (``stdlib``, for what orjson refuses) the same document as ASCII JSON text."""
    details = event.details
    where = state.where
    payloads: dict[str, Any] = {}
    if type(details) is tuple and details[0] == "exited":  # a state's exit, built lazily
        details = expand_details(details)
    if type(details) is tuple:  # a state's entry, built lazily by the interpreter
        _, name, value = details
        state.entered[name] = value
        body: dict[str, Any] = {"input": None, "inputDetails": _NOT_TRUNCATED, "name": name}
        payloads["input"] = value
    else:
        assert isinstance(details, dict)
        body = {}
        for key, value in details.items():
            if isinstance(value, Payload):
                body[key] = None  # keeps the member's place
                payloads[key] = value.value
            elif type(value) is dict:
                if value == _NOT_TRUNCATED:  # ``*Details``: nothing to render
                    body[key] = value
                else:  # nested payloads (assigned variables): strings, as AWS shows them
                    body[key] = render_payloads(value, state.texts)
            else:
                body[key] = value
    raw: list[str] = []
    refs: dict[str, list[Any]] = {}
    patches: dict[str, list[Any]] = {}
    for key, value in payloads.items():
        target = where.get(id(value))
        if target is not None:  # its place in the body stays (null), for the order
            refs[key] = target
            continue
        if key == "output" and event.details_key == "stateExitedEventDetails":
            patch = _patch(state, body.get("name"), value)
            if patch is not None:
                patches[key] = patch
                where[id(value)] = [event.id, key]
                continue
        body[key] = value if stdlib else state.fragment(value)
        raw.append(key)
        where[id(value)] = [event.id, key]
    document: dict[str, Any] = {event.details_key: body}  # type: ignore[dict-item]
    if raw:
        document[RAW] = raw
    if refs:
        document[REF] = refs
    if patches:
        document[PATCH] = patches
    if stdlib:
        return json.dumps(document, separators=(",", ":"), allow_nan=False)
    return document


def _quoted(name: str) -> str | None:
    """``name`` as a JSON string, or None when it is not printable (the general path writes
    those). State names repeat: each is written, and checked, once."""
    quoted = _QUOTED.get(name)
    if quoted is None and name not in _QUOTED:
        if len(_QUOTED) > 4096:
            _QUOTED.clear()
        quoted = _QUOTED[name] = _dumps(name).decode() if name.isprintable() else None
    return quoted


def _patch(state: _Written, name: Any, output: Any) -> list[Any] | None:
    """A state's output as a patch of its input, when that input is large (a small document
    costs less to write again than to compare) and the output is the input with one value
    put at one path (what ``ResultPath`` does: the interpreter copies only the objects along
    the path, so the rest is shared and found by identity)."""
    base = state.entered.get(name)
    if base is None:
        return None
    base_at = state.where.get(id(base))
    size = state.sizes.get(id(base), 0)
    depth = state.depth.get(id(base), 0) + 1
    if base_at is None or size < PATCH_FROM or depth > MAX_PATCH_CHAIN:
        return None
    change = _change(base, output)
    if change is None:
        return None
    state.depth[id(output)] = depth
    state.sizes[id(output)] = size
    return [*base_at, change[0], change[1]]


def _plain_text(event: HistoryEvent, state: _Written) -> str:
    """``event``'s details as ASCII JSON text, for when orjson refused its document. Its
    payloads are written again where they were: the places its first encoding noted stand
    for themselves, not for another event's copy (else they would refer to themselves)."""
    where = state.where
    for key in [key for key, at in where.items() if at[0] == event.id]:
        del where[key]
    return _encode(event, state, stdlib=True)


_is = operator.is_


def _change(base: Any, new: Any) -> tuple[list[str], Any] | None:
    """``(keys, value)`` such that ``new`` is ``base`` with ``value`` put at ``keys`` (object
    members only, each step a copy as ``ResultPath`` makes it); None if it is not."""
    keys: list[str] = []
    while True:
        if type(base) is not dict or type(new) is not dict or base is new:
            return None
        size = len(base)
        if len(new) == size + 1:  # a member added (at the end, as a copy's new key goes)
            if list(new)[:size] != list(base) or not all(map(_is, base.values(), new.values())):
                return None
            key = next(reversed(new))
            keys.append(key)
            return keys, new[key]
        if len(new) != size or list(new) != list(base):
            return None
        same = list(map(_is, base.values(), new.values()))
        if same.count(False) != 1:
            return None
        key = list(new)[same.index(False)]
        keys.append(key)
        inner_base, inner_new = base[key], new[key]
        if type(inner_base) is dict and type(inner_new) is dict:
            deeper = _change(inner_base, inner_new)
            if deeper is not None:
                keys.extend(deeper[0])
                return keys, deeper[1]
        return keys, inner_new


def _put(document: Any, keys: Sequence[str], value: Any) -> Any:
    """``document`` with ``value`` at ``keys`` (copies along the path)."""
    if not keys:
        return value
    copy = dict(document)
    key = keys[0]
    copy[key] = value if len(keys) == 1 else _put(copy[key], keys[1:], value)
    return copy


def decode_events(
    records: Sequence[EventRecord],
    fetch: Callable[[list[int]], list[EventRecord]],
    *,
    include_data: bool = True,
) -> list[dict[str, Any]]:
    """GetExecutionHistory's ``events`` for ``records``; ``fetch`` reads the events, outside
    ``records``, that hold payloads they refer to. Without data, payloads are left out
    (their ``*Details`` members, which only say whether a payload was truncated, stay)."""
    documents: dict[int, dict[str, Any]] = {}
    for record in records:
        if record.details is not None:
            documents[record.id] = json.loads(record.details)
    others: dict[int, dict[str, Any] | None] = {}  # events outside the page, as needed
    values: dict[tuple[int, str], Any] = {}
    texts: dict[tuple[int, str], str] = {}

    def document_of(event_id: int) -> dict[str, Any] | None:
        found = documents.get(event_id)
        if found is None and event_id not in others:
            # A chain of patches reaches at most MAX_PATCH_CHAIN events back: read them at once.
            first = max(1, event_id - 2 * MAX_PATCH_CHAIN)
            wanted = [
                i for i in range(first, event_id + 1) if i not in documents and i not in others
            ]
            for record in fetch(wanted):
                others[record.id] = json.loads(record.details) if record.details else None
            others.setdefault(event_id, None)
        return found if found is not None else others.get(event_id)

    def value_of(event_id: int, key: str) -> Any:
        """The payload at ``key`` of ``event_id`` (a stored body is never changed)."""
        known = values.get((event_id, key), _MISSING)
        if known is not _MISSING:
            return known
        document = document_of(event_id)
        if document is None:  # gone meanwhile (the execution expired)
            value: Any = _MISSING
        elif key in document.get(REF, {}):
            value = value_of(*document[REF][key])
        elif key in document.get(PATCH, {}):
            base_id, base_key, keys, leaf = document[PATCH][key]
            base = value_of(base_id, base_key)
            value = _MISSING if base is _MISSING else _put(base, keys, leaf)
        else:
            body = next(v for k, v in document.items() if not k.startswith("~"))
            value = body.get(key, _MISSING)
        values[(event_id, key)] = value
        return value

    def text_of(event_id: int, key: str) -> str:
        text = texts.get((event_id, key))
        if text is None:
            value = value_of(event_id, key)
            text = texts[(event_id, key)] = "" if value is _MISSING else dump_json(value)
        return text

    if include_data:  # every payload as text, before any body is changed
        for event_id, document in documents.items():
            for member in (RAW, REF, PATCH):
                for key in document.get(member, ()):
                    text_of(event_id, key)
    events = []
    for record in records:
        item: dict[str, Any] = {
            "timestamp": record.timestamp,
            "type": record.type,
            "id": record.id,
            "previousEventId": record.previous_event_id,
        }
        found = documents.get(record.id)
        if found is not None:
            document = found
            members = [key for member in (RAW, REF, PATCH) for key in document.pop(member, ())]
            for body in document.values():
                if include_data:
                    for key in members:
                        body[key] = texts[(record.id, key)]
                else:
                    _drop_data(body)
            item.update(document)
        events.append(item)
    return events


def _drop_data(details: Any) -> None:
    if not isinstance(details, dict):
        return
    for key in ("input", "output", "parameters", "result"):
        details.pop(key, None)
