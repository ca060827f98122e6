"""The comparison rules of the corpus README: bring engine results into the recorded form,
then compare with wildcards.

Pipeline for one value (README "Comparing results", step 3): place it where the recording
held it, apply the case's JSONPath and key masks, apply the key-based masks (``timestamp``
keys, HTTP metadata), serialise, substitute the case's run-specific names, then account,
region and partition, then ISO-8601 date-times, and parse again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from flowstate.conformance.case import Case

__all__ = [
    "ACCOUNT_ID",
    "REGION",
    "first_difference",
    "history_types_match",
    "json_matches",
    "normalise_text",
    "normalise_value",
    "place_result",
]

ACCOUNT_ID = "111111111111"
REGION = "us-east-1"

_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})", re.ASCII
)
# A placeholder token inside expected strings: "<...>" without spaces, quotes or brackets.
_TOKEN = r"<[^\s\"'<>]+>"
_HTTP_KEYS = frozenset({"X-Amzn-Trace-Id", "x-amz-crc32", "x-amzn-RequestId", "x-amzn-requestid"})
_REQUEST_ID = re.compile(r"Request ID: [^\s,;)\"']+")

# --------------------------------------------------------------------------------------------
# Placing a result where the recording held it

_TERMINAL_DETAILS = {
    "SUCCEEDED": ("ExecutionSucceeded", "executionSucceededEventDetails"),
    "FAILED": ("ExecutionFailed", "executionFailedEventDetails"),
    "TIMED_OUT": ("ExecutionTimedOut", "executionTimedOutEventDetails"),
    "ABORTED": ("ExecutionAborted", "executionAbortedEventDetails"),
}


def place_result(case: Case, status: str | None, values: Mapping[str, Any]) -> Any:
    """A document shaped like the recorded response, holding ``values`` (output/error/cause).

    Returns the document; ``extract_result`` reads the values back after normalisation.
    """
    if "get_execution_history" in case.expected_from:
        event_type, details_key = _TERMINAL_DETAILS.get(
            status or "", ("ExecutionSucceeded", "executionSucceededEventDetails")
        )
        return {"events": [{"type": event_type, details_key: dict(values)}]}
    return {"result": dict(values)}


def extract_result(document: Any) -> dict[str, Any]:
    if "events" in document:
        event = document["events"][-1]
        details = next(value for key, value in event.items() if key.endswith("EventDetails"))
        return dict(details)
    return dict(document["result"])


# --------------------------------------------------------------------------------------------
# Masks


def _parse_mask_path(text: str) -> list[tuple[bool, str | int]]:
    """``$..a.b[0][*]`` -> [(descend, selector)]; enough for the corpus' masks."""
    if not text.startswith("$"):
        raise ValueError(f"unsupported mask path {text!r}")
    steps: list[tuple[bool, str | int]] = []
    for match in re.finditer(
        r"(\.\.|\.)?(?:([^.\[\]]+)|\[(\d+|\*|'[^']*'|\"[^\"]*\")\])", text[1:]
    ):
        dots, name, bracket = match.groups()
        descend = dots == ".."
        if name is not None:
            steps.append((descend, name))
        elif bracket.isdigit():
            steps.append((descend, int(bracket)))
        else:
            steps.append((descend, bracket.strip("'\"")))
    return steps


def _children(node: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(node, dict):
        return list(node.items())
    if isinstance(node, list):
        return list(enumerate(node))
    return ()


def _descendants(node: Any) -> Iterable[Any]:
    yield node
    for _, child in _children(node):
        yield from _descendants(child)


def _select(nodes: list[Any], descend: bool, selector: str | int) -> list[tuple[Any, Any]]:
    """(container, key) pairs selected from ``nodes`` by one step."""
    found: list[tuple[Any, Any]] = []
    for node in nodes:
        for candidate in _descendants(node) if descend else (node,):
            for key, _ in _children(candidate):
                if selector == "*" or key == selector:
                    found.append((candidate, key))
    return found


def apply_jsonpath_mask(document: Any, path: str, replacement: Any) -> Any:
    steps = _parse_mask_path(path)
    if not steps:
        return replacement
    nodes = [document]
    for index, (descend, selector) in enumerate(steps):
        pairs = _select(nodes, descend, selector)
        if index == len(steps) - 1:
            for container, key in pairs:
                container[key] = replacement
        else:
            nodes = [container[key] for container, key in pairs]
    return document


def apply_key_mask(document: Any, key: str, replacement: Any) -> None:
    for node in _descendants(document):
        if isinstance(node, dict) and key in node:
            node[key] = replacement


def _is_date_time(value: Any) -> bool:
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _apply_builtin_key_masks(
    node: Any, parent_key: str | None = None, under_http_metadata: bool = False
) -> None:
    """README: ``timestamp`` keys and HTTP metadata of service integrations (``Date``
    anywhere under ``SdkHttpMetadata``: its ``HttpHeaders`` and ``AllHttpHeaders`` too)."""
    if isinstance(node, dict):
        under = under_http_metadata or parent_key == "SdkHttpMetadata"
        for key, value in list(node.items()):
            # "date" is already normalised: normalising twice changes nothing.
            if "timestamp" in key.lower() and value != "date" and not _is_date_time(value):
                node[key] = "timestamp"
            elif key in _HTTP_KEYS:
                node[key] = key
            elif key == "Date" and under:
                node[key] = "date"
            elif key == "RequestId" and parent_key == "SdkResponseMetadata":
                node[key] = "RequestId"
            else:
                _apply_builtin_key_masks(value, key, under)
    elif isinstance(node, list):
        for item in node:
            _apply_builtin_key_masks(item, parent_key, under_http_metadata)


# --------------------------------------------------------------------------------------------
# Text normalisation


def _replace_date_time(match: re.Match[str]) -> str:
    return "date" if _is_date_time(match.group(0)) else match.group(0)


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: text


def normalise_text(
    case: Case, text: str, *, account_id: str = ACCOUNT_ID, region: str = REGION
) -> str:
    """Steps of README 3 that work on text: names, account/region/partition, date-times."""
    for entry in case.normalisation:
        value = entry.get("value")
        if value is not None:
            # A function as replacement: placeholders are literal text, not templates.
            text = re.sub(value, _literal(str(entry["placeholder"])), text)
    if account_id != ACCOUNT_ID:
        text = text.replace(account_id, ACCOUNT_ID)
    text = text.replace(region, "<region>").replace("arn:aws:", "arn:<partition>:")
    text = _REQUEST_ID.sub("Request ID: <request_id>", text)
    return _DATE_TIME.sub(_replace_date_time, text)


def normalise_value(case: Case, document: Any, **names: str) -> Any:
    """README step 3 on a JSON document (already placed where the recording held it)."""
    for mask in case.jsonpath_masks:
        if not mask.get("replace_reference"):
            document = apply_jsonpath_mask(document, str(mask["jsonpath"]), mask["replacement"])
    for mask in case.key_masks:
        if not mask.get("replace_reference"):
            apply_key_mask(document, str(mask["key"]), mask["replacement"])
    _apply_builtin_key_masks(document)
    return json.loads(normalise_text(case, json.dumps(document), **names))


# --------------------------------------------------------------------------------------------
# Matching (README step 4)


def wildcards_of(case: Case) -> tuple[str, ...]:
    """Placeholders of run-generated text (``value: null``): each matches any text."""
    return tuple(str(e["placeholder"]) for e in case.normalisation if e.get("value") is None)


@lru_cache(maxsize=4096)
def _string_pattern(expected: str, wildcards: tuple[str, ...]) -> re.Pattern[str] | None:
    alternatives = [_TOKEN, *(re.escape(w) for w in wildcards if w)]
    splitter = re.compile("|".join(f"(?:{a})" for a in alternatives))
    if not splitter.search(expected):
        return None
    parts: list[str] = []
    position = 0
    for match in splitter.finditer(expected):
        parts.append(re.escape(expected[position : match.start()]))
        parts.append(".+")
        position = match.end()
    parts.append(re.escape(expected[position:]))
    return re.compile("".join(parts), re.DOTALL)


def string_matches(expected: str, actual: str, wildcards: tuple[str, ...] = ()) -> bool:
    if expected == actual:
        return True
    pattern = _string_pattern(expected, wildcards)
    return pattern is not None and pattern.fullmatch(actual) is not None


def json_matches(expected: Any, actual: Any, wildcards: tuple[str, ...] = ()) -> bool:
    """JSON equality where booleans never equal numbers and expected strings may hold
    ``<...>`` tokens (and the case's null-value placeholders) that match any non-empty text."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected is actual
    if isinstance(expected, str):
        return isinstance(actual, str) and string_matches(expected, actual, wildcards)
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and expected == actual
    if expected is None:
        return actual is None
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(json_matches(e, a, wildcards) for e, a in zip(expected, actual))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(json_matches(v, actual[k], wildcards) for k, v in expected.items())
        )
    return bool(expected == actual)


def first_difference(
    expected: Any, actual: Any, wildcards: tuple[str, ...] = (), where: str = "$"
) -> str | None:
    """Where ``actual`` first departs from ``expected`` (``None`` when they match), for people."""
    if json_matches(expected, actual, wildcards):
        return None
    if isinstance(expected, dict) and isinstance(actual, dict):
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing or extra:
            return f"{where}: keys missing {missing}, unexpected {extra}"
        for key, value in expected.items():
            found = first_difference(value, actual[key], wildcards, f"{where}.{key}")
            if found is not None:
                return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for index, (e, a) in enumerate(zip(expected, actual)):
            found = first_difference(e, a, wildcards, f"{where}[{index}]")
            if found is not None:
                return found
    return f"{where}: {_brief(actual)} != expected {_brief(expected)}"


def _brief(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------------------------
# History


def _types(events: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(event.get("type")) for event in events]


def history_types_match(case: Case, history: Sequence[Mapping[str, Any]] | None) -> bool | None:
    """Whether the engine's event types follow the recorded sequence; ``None`` when the case
    recorded no history.

    When the recording reordered Parallel branches (``history_parallel_normalised``) it also
    dropped duplicates and the ``ParallelStateSucceeded`` event, so only the set of event
    types can be compared, not their order.
    """
    if case.history is None:
        return None
    if history is None:
        return False
    recorded, produced = _types(case.history), _types(history)
    if case.history_parallel_normalised:
        ignored = {"ParallelStateSucceeded"}
        return set(recorded) - ignored == set(produced) - ignored
    return recorded == produced
