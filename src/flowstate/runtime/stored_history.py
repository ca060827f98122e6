"""How history events are kept in the store, and turned back into what the API returns.

AWS returns every payload (``input``, ``output``, ``parameters``, ...) as a JSON *string*
inside the event's details, and a state's output is, nearly always, the next state's input.
Written as AWS shows them, each payload would be escaped once more and stored twice; on a
chain of states that grows a document, that doubles what every commit writes. So the stored
details text (one JSON object per event) holds:

- ``{"<type>EventDetails": {...}}`` as AWS shows it, except that a top-level payload member
  holds the payload itself (raw JSON, not a string) and is listed in ``"~raw"``;
- or, for a payload already written raw by an earlier event of the same commit, ``null`` in
  the body and ``"~ref": {member: [event id, member of that event]}``.

Events written before this encoding (no ``~`` keys: payloads as strings) read back as they
are. Reading re-serialises raw payloads with the same encoder that wrote them, so the text a
caller gets is the text AWS's format calls for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from flowstate.interpreter.history import HistoryEvent, Payload, dump_json, render_payloads
from flowstate.storage import EventRecord

__all__ = ["decode_events", "encode_events"]

RAW = "~raw"
REF = "~ref"
_NOT_TRUNCATED = {"truncated": False}
_dumps = orjson.dumps
_ENTERED_BY_REFERENCE = (
    '{"%s":{"input":null,"inputDetails":{"truncated":false},"name":%s},'
    + f'"{REF}":{{"input":[%d,"%s"]}}}}'
)
_Fragment = orjson.Fragment


def encode_events(events: Sequence[HistoryEvent]) -> list[EventRecord]:
    """The store rows of ``events`` (one execution's, in order, written in one commit).

    Payloads are recognised by identity: the interpreter treats them as immutable, and the
    caller keeps ``events`` alive while this runs."""
    written: dict[int, list[Any]] = {}  # id(payload) -> [event id, member] of its raw copy
    texts: dict[int, str] = {}  # id(payload) -> its JSON text
    out = []
    for event in events:
        details = None
        if event.details_key is not None and event.details is not None:
            details = _encode(event, written, texts)
        out.append(
            EventRecord(event.id, event.previous_event_id, event.type, event.timestamp, details)
        )
    return out


def _encode(event: HistoryEvent, written: dict[int, list[Any]], texts: dict[int, str]) -> str:
    details = event.details
    payloads: dict[str, Any] = {}
    if type(details) is tuple:  # a state's entry, built lazily by the interpreter
        _, name, value = details
        target = written.get(id(value))
        if target is not None and name.isprintable():  # the previous state's output, in short
            return _ENTERED_BY_REFERENCE % (
                event.details_key,
                _dumps(name).decode(),
                target[0],
                target[1],
            )
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
                    body[key] = render_payloads(value, texts)
            else:
                body[key] = value
    raw: list[str] = []
    refs: dict[str, list[Any]] = {}
    for key, value in payloads.items():
        target = written.get(id(value))
        if target is not None:  # its place in the body stays (null), for the order
            refs[key] = target
            continue
        text = texts.get(id(value))
        if text is None:
            text = texts[id(value)] = dump_json(value)
        body[key] = _Fragment(text)
        raw.append(key)
    document: dict[str, Any] = {event.details_key: body}  # type: ignore[dict-item]
    if raw:
        document[RAW] = raw
    if refs:
        document[REF] = refs
    try:
        encoded = _dumps(document).decode()
    except TypeError:  # text orjson refuses (lone surrogates): the plain form, via stdlib
        plain = dict(body)
        for key in raw:
            plain[key] = texts[id(payloads[key])]
        for key in refs:
            plain[key] = texts[id(payloads[key])]
        return dump_json({event.details_key: plain})
    for key in raw:
        written[id(payloads[key])] = [event.id, key]
    return encoded


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
    extra: dict[int, dict[str, Any]] = {}
    if include_data:
        outside = {
            target[0]
            for document in documents.values()
            for target in document.get(REF, {}).values()
            if target[0] not in documents
        }
        if outside:
            extra = {r.id: json.loads(r.details) for r in fetch(sorted(outside)) if r.details}
    texts: dict[tuple[int, str], str] = {}

    def raw_text(event_id: int, key: str) -> str:
        text = texts.get((event_id, key))
        if text is None:
            document = documents.get(event_id) or extra.get(event_id)
            if document is None:  # gone meanwhile (the execution expired): as truncated
                return ""
            body = next(v for k, v in document.items() if not k.startswith("~"))
            text = texts[(event_id, key)] = dump_json(body[key])
        return text

    if include_data:  # every raw payload as text, before any body is changed
        for event_id, document in documents.items():
            for key in document.get(RAW, ()):
                raw_text(event_id, key)
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
            raw = document.pop(RAW, ())
            refs = document.pop(REF, {})
            for body in document.values():
                if include_data:
                    for key in raw:
                        body[key] = texts[(record.id, key)]
                    for key, (target_id, target_key) in refs.items():
                        body[key] = raw_text(target_id, target_key)
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
