"""Request validation from botocore's Step Functions model, the way AWS's front end (Coral) does it.

Two passes, in AWS's order:

1. **Deserialize.** Each member must have its shape's JSON type. The first mismatch, in
   document order, is a ``SerializationException`` with Coral's message
   (``STRING_VALUE can not be converted to an Integer``); nothing else is reported with it.
   Unknown members are dropped, ``null`` is the same as absent (also inside lists), and a
   decimal where an integer is expected is truncated.
2. **Constraints.** Required members, ``min``/``max`` (length of strings, lists and maps;
   value of numbers), ``pattern`` and ``enum``. Every violation, in model member order, goes
   into one ``ValidationException``:
   ``2 validation errors detected: Value 'x' at 'name' failed to satisfy constraint: ...; ...``.

The formats come from responses recorded against AWS (Step Functions, Athena, DynamoDB,
Cognito), not from documentation, which does not describe them:

- a value is quoted as Java prints it (``'abc'``, ``'101'``, ``'[a, b]'``), a missing one is
  ``Value null``, and a sensitive member's value is left out entirely: ``Value at 'input'``;
- a structure prints as ``Shape(member=value, ...)`` (Step Functions'
  ``RoutingConfigurationListItem(stateMachineVersionArn=..., weight=...)``);
- paths are lowerCamel member names joined by dots, list elements counted from 1 with a
  ``member`` step: ``routingConfiguration.1.member.weight``;
- patterns must match the whole value (Java ``Matcher.matches``);
- string lengths count UTF-16 code units (Java ``String.length``);
- the execution payload (shape ``SensitiveData``: ``input``, ``output``) is limited in UTF-8
  bytes, with its own message; the limit is a flowstate setting (``max_payload_bytes``).

AWS does not order violations consistently between requests (nor pattern against length on
one member); flowstate uses model order, pattern before length, which matches most recordings.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import botocore.session

from flowstate.service.errors import SERIALIZATION, VALIDATION, ServiceError

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "RequestValidator", "java_pattern", "service_model"]

DEFAULT_MAX_PAYLOAD_BYTES = 262_144  # AWS quota: 256 KiB of UTF-8 per execution input/output

# The shape of execution input and task output, limited in UTF-8 bytes rather than length.
_PAYLOAD_SHAPE = "SensitiveData"
# How Java (AWS SDKs, Coral) prints a sensitive member inside a structure it prints.
_REDACTED = "*** Sensitive Data Redacted ***"

# The Java type each scalar shape deserializes to, as Coral's messages name it. Only String,
# Integer, Long and Boolean are confirmed by recordings; Float and Date follow the same rule.
_JAVA_TYPE = {
    "string": "a String",
    "blob": "a String",
    "boolean": "a Boolean",
    "integer": "an Integer",
    "long": "a Long",
    "float": "a Float",
    "double": "a Double",
    "timestamp": "a Date",
}


@functools.cache
def service_model() -> Any:
    """botocore's Step Functions service model (``botocore.model.ServiceModel``), loaded once."""
    return botocore.session.get_session().get_service_model("stepfunctions")


@functools.cache
def _operation_names() -> frozenset[str]:
    return frozenset(service_model().operation_names)


class RequestValidator:
    """Checks requests against the model; ``max_payload_bytes=None`` lifts the payload quota."""

    def __init__(self, *, max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES) -> None:
        self.max_payload_bytes = max_payload_bytes

    def is_operation(self, name: str) -> bool:
        """Whether ``name`` is a Step Functions operation (case-sensitive, as AWS)."""
        return name in _operation_names()

    def validate(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """``request`` deserialized and checked for ``operation``; raises ``ServiceError``."""
        shape = service_model().operation_model(operation).input_shape
        if shape is None:
            return {}
        cleaned: dict[str, Any] = _deserialize(shape, request)
        violations: list[str] = []
        self._check(shape, cleaned, "", False, violations)
        if violations:
            count = len(violations)
            noun = "error" if count == 1 else "errors"
            raise ServiceError(
                VALIDATION, f"{count} validation {noun} detected: {'; '.join(violations)}"
            )
        return cleaned

    def _check(self, shape: Any, value: Any, path: str, hidden: bool, out: list[str]) -> None:
        hidden = hidden or _is_sensitive(shape)
        kind = shape.type_name
        if kind == "structure":
            required = set(shape.required_members)
            for name, member in shape.members.items():
                where = f"{path}.{name}" if path else name
                item = value.get(name)
                if item is not None:
                    self._check(member, item, where, hidden, out)
                elif name in required:
                    hide = hidden or _is_sensitive(member)
                    out.append(_violation(member, None, where, hide, "Member must not be null"))
            return
        for constraint in self._constraints(shape, value):
            out.append(_violation(shape, value, path, hidden, constraint))
        if kind == "list":
            for index, item in enumerate(value, start=1):
                self._check(shape.member, item, f"{path}.{index}.member", hidden, out)
        elif kind == "map":
            # Not reachable from Step Functions requests (no input map); Coral's path for map
            # entries is unrecorded, so the key stands in for the list index.
            for key, item in value.items():
                self._check(shape.key, key, f"{path}.{key}.key", hidden, out)
                self._check(shape.value, item, f"{path}.{key}.value", hidden, out)

    def _constraints(self, shape: Any, value: Any) -> list[str]:
        meta = shape.metadata
        found: list[str] = []
        if shape.type_name in ("integer", "long", "float", "double"):
            if "min" in meta and value < meta["min"]:
                found.append(f"Member must have value greater than or equal to {meta['min']}")
            if "max" in meta and value > meta["max"]:
                found.append(f"Member must have value less than or equal to {meta['max']}")
            return found
        if shape.type_name not in ("string", "list", "map"):
            return found
        if shape.type_name == "string":
            enum = getattr(shape, "enum", None)
            if enum and value not in enum:
                found.append(f"Member must satisfy enum value set: [{', '.join(enum)}]")
            pattern = meta.get("pattern")
            if pattern is not None and not _compiled(pattern).fullmatch(value):
                found.append(f"Member must satisfy regular expression pattern: {pattern}")
            if shape.name == _PAYLOAD_SHAPE:
                limit = self.max_payload_bytes
                if limit is not None and len(value.encode("utf-8", "surrogatepass")) > limit:
                    found.append(
                        f"Member must have size less than or equal to {limit} bytes"
                        " in UTF-8 encoding"
                    )
                return found
            length = len(value.encode("utf-16-le", "surrogatepass")) // 2
        else:
            length = len(value)
        if "min" in meta and length < meta["min"]:
            found.append(f"Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and length > meta["max"]:
            found.append(f"Member must have length less than or equal to {meta['max']}")
        return found


def _is_sensitive(shape: Any) -> bool:
    return bool(shape.metadata.get("sensitive"))


def _violation(shape: Any, value: Any, path: str, hidden: bool, constraint: str) -> str:
    if hidden:
        shown = ""  # AWS leaves a sensitive value out, even when it is missing
    elif value is None:
        shown = " null"
    else:
        shown = f" '{_java_text(shape, value)}'"
    return f"Value{shown} at '{path}' failed to satisfy constraint: {constraint}"


def _java_text(shape: Any, value: Any) -> str:
    """``value`` as Java's ``toString`` prints the deserialized object."""
    if value is None:
        return "null"
    if _is_sensitive(shape):
        return _REDACTED
    kind = shape.type_name
    if kind == "structure":
        members = ", ".join(
            f"{name}={_java_text(member, value.get(name))}"
            for name, member in shape.members.items()
        )
        return f"{shape.name}({members})"
    if kind == "list":
        return f"[{', '.join(_java_text(shape.member, item) for item in value)}]"
    if kind == "map":
        entries = ", ".join(f"{key}={_java_text(shape.value, item)}" for key, item in value.items())
        return f"{{{entries}}}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _java_float_text(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _java_float_text(value: float) -> str:
    # Java's Double/Float.toString: plain notation in [1e-3, 1e7), else d.dddE<n>.
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite: the parser refuses NaN and infinities
    fraction = "".join(map(str, digits[1:])) or "0"
    return f"{'-' if sign else ''}{digits[0]}.{fraction}E{len(digits) + exponent - 1}"


# --- deserialization -------------------------------------------------------------------------


def _serialization(message: str) -> ServiceError:
    return ServiceError(SERIALIZATION, message)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE_VALUE" if value else "FALSE_VALUE"
    if isinstance(value, str):
        return "STRING_VALUE"
    return "NUMBER_VALUE"


def _deserialize(shape: Any, value: Any) -> Any:
    """``value`` (not None) as ``shape``: typed, unknown members and nulls dropped."""
    kind = shape.type_name
    if isinstance(value, list) and kind != "list":
        raise _serialization("Start of list found where not expected")
    if isinstance(value, dict) and kind not in ("structure", "map"):
        raise _serialization("Start of structure or map found where not expected.")
    if kind == "structure":
        if not isinstance(value, dict):
            raise _serialization("Expected null")
        members = shape.members
        return {
            key: _deserialize(members[key], item)
            for key, item in value.items()
            if key in members and item is not None
        }
    if kind == "list":
        if not isinstance(value, list):
            raise _serialization("Expected list or null")
        return [_deserialize(shape.member, item) for item in value if item is not None]
    if kind == "map":
        if not isinstance(value, dict):
            raise _serialization("Expected map or null")  # by analogy with lists; unrecorded
        return {
            _deserialize(shape.key, key): _deserialize(shape.value, item)
            for key, item in value.items()
            if item is not None
        }
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("string", "blob") and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind in ("integer", "long") and is_number:
        return int(value)  # AWS truncates a decimal here (recorded: 1.5 is read as 1)
    if kind in ("float", "double") and is_number:
        number = float(value)
        if math.isfinite(number):
            return number
    if kind == "timestamp" and is_number:
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise _serialization(f"{_json_kind(value)} can not be converted to {_JAVA_TYPE[kind]}")


# --- Java regular expressions ----------------------------------------------------------------

# Java's POSIX classes (US-ASCII only, as without UNICODE_CHARACTER_CLASS), as class contents.
_POSIX_CLASSES = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7F",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1F\\x7F",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0B\\f\\r",
}


def java_pattern(pattern: str) -> str:
    """A Java regular expression from the model rewritten for Python's ``re``.

    Python's ``re`` reads the model's patterns alike except for Java's ``\\p{...}`` classes and
    ``\\z``; those are rewritten. Anything else Python cannot read raises ``re.error`` or
    ``ValueError`` at first use (a test compiles every pattern in the model).
    """
    out: list[str] = []
    in_class = False
    class_start = 0  # where the current class's contents begin in out
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            if escaped in "pP" and pattern.startswith("{", i + 2):
                end = pattern.index("}", i + 2)
                name = pattern[i + 3 : end]
                if name not in _POSIX_CLASSES or (escaped == "P" and in_class):
                    raise ValueError(f"unsupported Java class \\{escaped}{{{name}}} in {pattern}")
                body = _POSIX_CLASSES[name]
                if in_class:
                    out.append(body)
                else:
                    out.append(f"[{'^' if escaped == 'P' else ''}{body}]")
                i = end + 1
                continue
            out.append("\\Z" if escaped == "z" else pattern[i : i + 2])
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            class_start = len(out) + 1
        elif char == "]" and in_class and "".join(out[class_start:]) not in ("", "^"):
            in_class = False  # a ']' first in a class is a literal, in Java as in Python
        elif char == "[" and in_class:
            # Java allows nested classes (unions); Python would read a literal '['.
            raise ValueError(f"unsupported nested character class in {pattern}")
        out.append(char)
        i += 1
    return "".join(out)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(java_pattern(pattern))
