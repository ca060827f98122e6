"""AWS's JSONPath dialect: paths (InputPath, OutputPath, ItemsPath, ``*Path``, ``.$``) and
reference paths (ResultPath).

AWS evaluates JSONPath with Jayway semantics. What that means here:

* A *definite* path (only single names and single indexes: ``$.a.b[0]``) yields one value or
  fails with ``Invalid path '<text>' : No results for path: $['a']['b'][0]``.
* An *indefinite* path (wildcards, slices, index or name unions, filters, ``..``) yields the
  list of every match, silently skipping branches that do not exist: ``$.items[*]`` on ``{}``
  is ``[]`` (recorded AWS behaviour), never an error.
* ``$$...`` reads the context object and ``$name...`` a variable.

Definite paths compile to a tuple of keys walked by a tight loop; the general evaluator only
runs for indefinite paths. JSON values are treated as immutable: nothing here copies or
mutates a document except ``RefPath.assign``, which copies only the spine it changes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring
from typing import Any, Final

from flowstate.asl.errors import RUNTIME, EvaluationError, InvalidExpression, StatesError
from flowstate.asl.jsonpath_parser import Parser
from flowstate.asl.jsonpath_selectors import (
    NOT_FOUND,
    CompiledSegments,
    Function,
    Index,
    Name,
    keys_of,
    walk,
)
from flowstate.asl.scope import Scope

__all__ = [
    "NOT_FOUND",
    "REFERENCE_PATH_CONFLICT",
    "Path",
    "RefPath",
    "compile_path",
    "compile_reference_path",
    "json_text",
    "normalized",
]

# AWS, as observed on the service: a ResultPath that cannot be applied (e.g. ``$.r`` on the
# string input "input1") fails with ``States.ReferencePathConflict`` and the cause
# ``Unable to apply ReferencePath $.r to input "input1"`` (the ASL spec names
# States.ResultPathMatchFailure, but the service reports this name).
REFERENCE_PATH_CONFLICT: Final = "States.ReferencePathConflict"


_INPUT, _CONTEXT, _VARIABLE = 0, 1, 2


def json_text(value: Any) -> str:
    """JSON text of ``value`` as AWS renders it in messages and ``States.JsonToString``.

    Compact separators, non-ASCII kept, and doubles spelled as Java's ``Double.toString``
    (``1.0E7``), because AWS serialises with Jackson.
    """
    out: list[str] = []
    _emit(value, out.append)
    return "".join(out)


def _emit(value: Any, out: Callable[[str], Any]) -> None:
    if value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, str):
        out(encode_basestring(value))
    elif isinstance(value, int):
        out(str(value))
    elif isinstance(value, float):
        out(java_double(value) if math.isfinite(value) else json.dumps(value))
    elif isinstance(value, Mapping):
        out("{")
        first = True
        for key, item in value.items():
            if not first:
                out(",")
            first = False
            out(encode_basestring(str(key)))
            out(":")
            _emit(item, out)
        out("}")
    elif isinstance(value, list | tuple):
        out("[")
        for i, item in enumerate(value):
            if i:
                out(",")
            _emit(item, out)
        out("]")
    else:
        out(encode_basestring(str(value)))


def java_double(value: float) -> str:
    """``Double.toString`` of a finite float: ``1.0``, ``0.001``, ``1.0E7``, ``1.0E-4``."""
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    mantissa, _, exponent = repr(value).partition("e")
    sign = "-" if mantissa.startswith("-") else ""
    whole, _, fraction = mantissa.lstrip("-").partition(".")
    digits = whole + fraction
    # value == 0.<digits> * 10**point
    point = (int(exponent) if exponent else 0) + len(whole)
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    digits = significant.rstrip("0") or "0"
    if 1e-3 <= abs(value) < 1e7:
        if point <= 0:
            text = "0." + "0" * -point + digits
        elif point >= len(digits):
            text = digits + "0" * (point - len(digits)) + ".0"
        else:
            text = digits[:point] + "." + digits[point:]
    else:
        text = f"{digits[0]}.{digits[1:] or '0'}E{point - 1}"
    return sign + text


def normalized(keys: tuple[str | int, ...]) -> str:
    """Jayway's bracket notation of a definite path: ``$['a']['b'][0]``."""
    parts = ["$"]
    for key in keys:
        parts.append(f"[{key}]" if isinstance(key, int) else f"['{key}']")
    return "".join(parts)


_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Path:
    """A compiled JSONPath (input ``$``, context ``$$`` or variable ``$name``)."""

    __slots__ = ("_compiled", "_keys", "_root", "_variable", "is_definite", "text")

    def __init__(
        self, text: str, root: int, variable: str | None, compiled: CompiledSegments
    ) -> None:
        self.text = text
        self._root = root
        self._variable = variable
        self._compiled = compiled
        self._keys = compiled.keys
        self.is_definite: bool = compiled.definite

    def __repr__(self) -> str:
        return f"Path({self.text!r})"

    def _origin(self, input: Any, scope: Scope | None) -> Any:
        if self._root == _INPUT:
            return input
        if scope is None:
            raise EvaluationError(RUNTIME, f"Invalid path '{self.text}' : no scope to evaluate it")
        if self._root == _CONTEXT:
            return scope.context
        variables, name = scope.variables, self._variable or ""
        if variables is None or name not in variables:
            raise EvaluationError(
                RUNTIME,
                f"Invalid path '{self.text}' : The variable '{self._variable}' is not defined",
            )
        return variables[name]

    def evaluate_or_none(self, input: Any, scope: Scope | None) -> Any:
        """Like ``evaluate`` but a definite path that matches nothing gives ``NOT_FOUND``."""
        origin = input if self._root == _INPUT else self._origin(input, scope)
        keys = self._keys
        if keys is not None:
            return walk(origin, keys)
        return self._compiled.find(origin, origin)

    def evaluate(self, input: Any, scope: Scope | None) -> Any:
        """The value (definite path) or the list of matches (indefinite path).

        Raises ``EvaluationError`` (``States.Runtime``) when a definite path matches nothing.
        """
        origin = input if self._root == _INPUT else self._origin(input, scope)
        keys = self._keys
        if keys is not None:
            value = walk(origin, keys)
        else:
            value = self._compiled.find(origin, origin)
        if value is NOT_FOUND:
            raise EvaluationError(RUNTIME, self.not_found_cause())
        return value

    def not_found_cause(self) -> str:
        """AWS's cause when this definite path matches nothing."""
        keys = self._keys
        if keys is None:
            keys = keys_of(self._compiled.segments)
        return f"Invalid path '{self.text}' : No results for path: {normalized(keys)}"


def compile_path(text: str) -> Path:
    """Compile a JSONPath, a context path (``$$.Execution.Id``) or a variable path (``$x.a``).

    Raises ``InvalidExpression`` on bad syntax.
    """
    if not isinstance(text, str) or not text.startswith("$"):
        raise InvalidExpression(f"Invalid JSONPath '{text}': a path must start with '$'")
    stripped = text.strip()
    if stripped.startswith("$$"):
        root, variable, pos = _CONTEXT, None, 2
    else:
        m = _VARIABLE_NAME.match(stripped, 1)
        if m is not None:
            root, variable, pos = _VARIABLE, m.group(), m.end()
        else:
            root, variable, pos = _INPUT, None, 1
    parser = Parser(stripped, pos)
    try:
        segments = parser.segments()
    except InvalidExpression:
        raise
    except (ValueError, IndexError, re.error) as exc:
        raise InvalidExpression(f"Invalid JSONPath '{text}'") from exc
    if parser.pos != len(stripped):
        raise parser.fail()
    if any(isinstance(s, Function) for s in segments[:-1]):
        raise InvalidExpression(f"Invalid JSONPath '{text}': a function must end the path")
    return Path(text, root, variable, CompiledSegments(segments))


# --------------------------------------------------------------------------------------------
# Reference paths (ResultPath)


class RefPath:
    """A compiled ResultPath: where a state's result goes in its input."""

    __slots__ = ("_keys", "text")

    def __init__(self, text: str, keys: tuple[str | int, ...]) -> None:
        self.text = text
        self._keys = keys

    def __repr__(self) -> str:
        return f"RefPath({self.text!r})"

    def assign(self, document: Any, value: Any) -> Any:
        """A new document with ``value`` at this path; ``document`` is never mutated.

        Missing intermediate objects are created (AWS). A step through a non-object fails
        with ``States.ReferencePathConflict``.
        """
        keys = self._keys
        if not keys:
            return value
        try:
            return _put(document, keys, 0, value)
        except _Conflict:
            raise StatesError(
                REFERENCE_PATH_CONFLICT,
                f"Unable to apply ReferencePath {self.text} to input {json_text(document)}",
            ) from None


class _Conflict(Exception):
    pass


def _put(node: Any, keys: tuple[str | int, ...], i: int, value: Any) -> Any:
    key = keys[i]
    last = i == len(keys) - 1
    if isinstance(key, str):
        if type(node) is not dict and not isinstance(node, Mapping):  # (the ABC check is slow)
            raise _Conflict
        copy = dict(node)
        if last:
            copy[key] = value
        else:
            child = node.get(key, NOT_FOUND)
            copy[key] = _put({} if child is NOT_FOUND else child, keys, i + 1, value)
        return copy
    if not isinstance(node, list) or not -len(node) <= key < len(node):
        raise _Conflict
    items = list(node)
    items[key] = value if last else _put(node[key], keys, i + 1, value)
    return items


def compile_reference_path(text: str) -> RefPath:
    """Compile a ResultPath: a definite input path, no ``$$``, no variables."""
    if not isinstance(text, str) or not text.startswith("$") or text.startswith("$$"):
        raise InvalidExpression(f"Invalid ReferencePath '{text}'")
    stripped = text.strip()
    if len(stripped) > 1 and _VARIABLE_NAME.match(stripped, 1):
        raise InvalidExpression(f"Invalid ReferencePath '{text}'")
    parser = Parser(stripped, 1)
    try:
        segments = parser.segments()
    except (ValueError, IndexError) as exc:  # InvalidExpression is a ValueError
        raise InvalidExpression(f"Invalid ReferencePath '{text}'") from exc
    if parser.pos != len(stripped) or not all(isinstance(s, Name | Index) for s in segments):
        raise InvalidExpression(f"Invalid ReferencePath '{text}'")
    return RefPath(text, keys_of(segments))
