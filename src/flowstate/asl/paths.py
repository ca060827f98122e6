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
from collections.abc import Callable, Iterator, Mapping
from json.encoder import encode_basestring
from typing import Any, Final

from flowstate.asl.errors import RUNTIME, EvaluationError, InvalidExpression, StatesError
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


class _NotFound:
    """Sentinel type of ``NOT_FOUND``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_FOUND"

    def __bool__(self) -> bool:
        return False


NOT_FOUND: Final = _NotFound()
"""Returned by ``Path.evaluate_or_none`` when a definite path matches nothing."""

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


# --------------------------------------------------------------------------------------------
# Segments of an indefinite path. Each maps one node to an iterator of result nodes.


class _Segment:
    __slots__ = ()
    definite = False

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        raise NotImplementedError


class _Name(_Segment):
    __slots__ = ("name",)
    definite = True

    def __init__(self, name: str) -> None:
        self.name = name

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, Mapping) and self.name in node:
            yield node[self.name]


class _Index(_Segment):
    __slots__ = ("index",)
    definite = True

    def __init__(self, index: int) -> None:
        self.index = index

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, list) and -len(node) <= self.index < len(node):
            yield node[self.index]


class _Names(_Segment):
    """``['a','b']``: a union of names. At the end of a path Jayway merges the hits into one
    object, which makes the path definite; elsewhere it is indefinite."""

    __slots__ = ("names",)

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, Mapping):
            for name in self.names:
                if name in node:
                    yield node[name]

    def merge(self, node: Any) -> Any:
        if not isinstance(node, Mapping):
            return NOT_FOUND
        return {name: node[name] for name in self.names if name in node}


class _Indexes(_Segment):
    __slots__ = ("indexes",)

    def __init__(self, indexes: tuple[int, ...]) -> None:
        self.indexes = indexes

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, list):
            size = len(node)
            for index in self.indexes:
                if -size <= index < size:
                    yield node[index]


class _Slice(_Segment):
    __slots__ = ("slice",)

    def __init__(self, start: int | None, stop: int | None, step: int | None) -> None:
        self.slice = slice(start, stop, step)

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, list):
            yield from node[self.slice]


class _Wildcard(_Segment):
    __slots__ = ()

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, Mapping):
            yield from node.values()
        elif isinstance(node, list):
            yield from node


class _Descend(_Segment):
    """``..x``: apply ``x`` to the node and to every descendant, parents first (Jayway)."""

    __slots__ = ("inner",)

    def __init__(self, inner: _Segment) -> None:
        self.inner = inner

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        stack = [node]
        while stack:
            current = stack.pop()
            yield from self.inner.apply(current, root)
            if isinstance(current, Mapping):
                stack.extend(reversed(list(current.values())))
            elif isinstance(current, list):
                stack.extend(reversed(current))


class _Filter(_Segment):
    """``[?(...)]``: array elements (or the object itself) for which the predicate holds."""

    __slots__ = ("predicate",)

    def __init__(self, predicate: Callable[[Any, Any], bool]) -> None:
        self.predicate = predicate

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, list):
            for item in node:
                if self.predicate(item, root):
                    yield item
        elif isinstance(node, Mapping) and self.predicate(node, root):
            yield node


class _Function(_Segment):
    """Jayway's path functions at the end of a path (``$.items.length()``)."""

    __slots__ = ("name",)
    definite = True

    def __init__(self, name: str) -> None:
        if name not in _FUNCTIONS:
            raise InvalidExpression(f"Function of name: {name} cannot be found")
        self.name = name

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        result = _FUNCTIONS[self.name](node)
        if result is not NOT_FOUND:
            yield result


def _length(node: Any) -> Any:
    return len(node) if isinstance(node, list | Mapping | str) else NOT_FOUND


def _numbers(node: Any) -> list[float] | None:
    if not isinstance(node, list) or not node:
        return None
    values = [v for v in node if isinstance(v, int | float) and not isinstance(v, bool)]
    return values or None


def _aggregate(fold: Callable[[list[float]], Any]) -> Callable[[Any], Any]:
    def run(node: Any) -> Any:
        values = _numbers(node)
        # Jayway computes these in double precision.
        return NOT_FOUND if values is None else float(fold(values))

    return run


_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "length": _length,
    "size": _length,
    "min": _aggregate(min),
    "max": _aggregate(max),
    "sum": _aggregate(sum),
    "avg": _aggregate(lambda v: sum(v) / len(v)),
}


# --------------------------------------------------------------------------------------------
# Parser


class _Parser:
    """Recursive descent over the text of one path (also used for filter sub-paths)."""

    def __init__(self, text: str, pos: int = 0) -> None:
        self.text = text
        self.pos = pos

    def fail(self, message: str | None = None) -> InvalidExpression:
        return InvalidExpression(message or f"Invalid JSONPath '{self.text}' at {self.pos}")

    def peek(self, n: int = 1) -> str:
        # NUL past the end, so that membership tests like ``peek() in "'\""`` stay false.
        return self.text[self.pos : self.pos + n] or "\x00"

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def segments(self, stop: str = "") -> list[_Segment]:
        out: list[_Segment] = []
        text = self.text
        while self.pos < len(text) and text[self.pos] not in stop:
            c = text[self.pos]
            if text.startswith("..", self.pos):
                self.pos += 2
                if self.peek() == "[":
                    inner = self.bracket()
                elif self.peek() == "*":
                    self.pos += 1
                    inner = _Wildcard()
                else:
                    inner = _Name(self.dot_name())
                out.append(_Descend(inner))
            elif c == ".":
                self.pos += 1
                if self.peek() == "*":
                    self.pos += 1
                    out.append(_Wildcard())
                elif self.peek() == "[":  # "$.['a']" is accepted by Jayway
                    out.append(self.bracket())
                else:
                    name = self.dot_name()
                    if self.peek(2) == "()":
                        self.pos += 2
                        out.append(_Function(name))
                    else:
                        out.append(_Name(name))
            elif c == "[":
                out.append(self.bracket())
            else:
                raise self.fail()
        return out

    def dot_name(self) -> str:
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] not in ".[( \t\r\n)],=!<>&|":
            self.pos += 1
        if self.pos == start:
            raise self.fail()
        return text[start : self.pos]

    def quoted(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == "\\" and self.text[self.pos + 1 : self.pos + 2] == quote:
                # Only an escaped quote is unescaped; any other backslash is kept as it is:
                # AWS reads $['Test\\""Name"'] as the key Test\\""Name" (recorded).
                chars.append(quote)
                self.pos += 2
                continue
            if c == quote:
                self.pos += 1
                return "".join(chars)
            chars.append(c)
            self.pos += 1
        raise self.fail()

    def integer(self) -> int | None:
        self.skip_ws()
        m = re.compile(r"-?\d+").match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        self.skip_ws()
        return int(m.group())

    def expect(self, token: str) -> None:
        self.skip_ws()
        if not self.text.startswith(token, self.pos):
            raise self.fail()
        self.pos += len(token)

    def bracket(self) -> _Segment:
        self.expect("[")
        self.skip_ws()
        c = self.peek()
        if c == "*":
            self.pos += 1
            self.expect("]")
            return _Wildcard()
        if c in "'\"":
            names = [self.quoted()]
            self.skip_ws()
            while self.peek() == ",":
                self.pos += 1
                self.skip_ws()
                if self.peek() not in ("'", '"'):
                    raise self.fail()
                names.append(self.quoted())
                self.skip_ws()
            self.expect("]")
            return _Name(names[0]) if len(names) == 1 else _Names(tuple(names))
        if c == "?":
            self.pos += 1
            self.expect("(")
            predicate = _FilterParser(self).disjunction()
            self.expect(")")
            self.expect("]")
            return _Filter(predicate)
        # indexes or slice
        first = self.integer()
        if self.peek() == ":":
            self.pos += 1
            stop = self.integer()
            step = None
            if self.peek() == ":":
                self.pos += 1
                step = self.integer()
                if step == 0:
                    raise self.fail()
            self.expect("]")
            return _Slice(first, stop, step)
        if first is None:
            raise self.fail()
        indexes = [first]
        while self.peek() == ",":
            self.pos += 1
            nxt = self.integer()
            if nxt is None:
                raise self.fail()
            indexes.append(nxt)
        self.expect("]")
        return _Index(first) if len(indexes) == 1 else _Indexes(tuple(indexes))


class _FilterParser:
    """Jayway filter predicates: ``@.a == 1 && (@.b =~ /x.*/i || !@.c)``, ``in``, ``nin``,
    ``subsetof``, ``anyof``, ``noneof``, ``size``, ``empty``, ``contains``."""

    _OPS = ("==", "!=", "<=", ">=", "=~", "<", ">")
    _WORD_OPS = ("in", "nin", "subsetof", "anyof", "noneof", "size", "empty", "contains")

    def __init__(self, parser: _Parser) -> None:
        self.p = parser

    def disjunction(self) -> Callable[[Any, Any], bool]:
        left = self.conjunction()
        while True:
            self.p.skip_ws()
            if self.p.peek(2) != "||":
                return left
            self.p.pos += 2
            right = self.conjunction()
            left = (lambda a, b: lambda n, r: a(n, r) or b(n, r))(left, right)

    def conjunction(self) -> Callable[[Any, Any], bool]:
        left = self.unary()
        while True:
            self.p.skip_ws()
            if self.p.peek(2) != "&&":
                return left
            self.p.pos += 2
            right = self.unary()
            left = (lambda a, b: lambda n, r: a(n, r) and b(n, r))(left, right)

    def unary(self) -> Callable[[Any, Any], bool]:
        self.p.skip_ws()
        if self.p.peek() == "!" and self.p.peek(2) != "!=":
            self.p.pos += 1
            inner = self.unary()
            return lambda n, r: not inner(n, r)
        if self.p.peek() == "(":
            self.p.pos += 1
            inner = self.disjunction()
            self.p.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Callable[[Any, Any], bool]:
        left = self.operand()
        self.p.skip_ws()
        op = next((o for o in self._OPS if self.p.text.startswith(o, self.p.pos)), None)
        if op is None:
            for word in self._WORD_OPS:
                end = self.p.pos + len(word)
                if (
                    self.p.text.startswith(word, self.p.pos)
                    and not self.p.text[end : end + 1].isalnum()
                ):
                    op = word
                    break
        if op is None:  # existence test: ?(@.a)
            return lambda n, r: left(n, r) is not NOT_FOUND
        self.p.pos += len(op)
        right = self.operand()
        compare = _COMPARATORS[op]
        return lambda n, r: compare(left(n, r), right(n, r))

    def operand(self) -> Callable[[Any, Any], Any]:
        p = self.p
        p.skip_ws()
        c = p.peek()
        if c in "@$":
            p.pos += 1
            segments = p.segments(stop=" \t)=!<>&|,")
            path = _Compiled(segments)
            if c == "@":
                return lambda n, r: path.find(n, n)
            return lambda n, r: path.find(r, r)
        if c in "'\"":
            value: Any = p.quoted()
        elif c == "/":
            end = p.text.find("/", p.pos + 1)
            if end < 0:
                raise p.fail()
            pattern = p.text[p.pos + 1 : end]
            p.pos = end + 1
            flags = 0
            while p.peek() and p.peek() in "imsx":
                flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}[p.peek()]
                p.pos += 1
            value = re.compile(pattern, flags)
        elif c in "[{":
            value = self.json_literal()
        else:
            m = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null").match(p.text, p.pos)
            if m is None:
                raise p.fail()
            try:
                value = json.loads(m.group())
            except ValueError:
                raise p.fail() from None
            p.pos = m.end()
        return lambda n, r: value

    def json_literal(self) -> Any:
        decoder = json.JSONDecoder()
        text = self.p.text.replace("'", '"')  # Jayway accepts single-quoted JSON literals
        try:
            value, end = decoder.raw_decode(text, self.p.pos)
        except ValueError as exc:
            raise self.p.fail() from exc
        self.p.pos = end
        return value


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _eq(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a is not NOT_FOUND and b is not NOT_FOUND and bool(a == b)


def _order(check: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        if _is_number(a) and _is_number(b):
            return check(a, b)
        if isinstance(a, str) and isinstance(b, str):
            return check(a, b)
        return False

    return run


def _regex(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, re.Pattern) and b.fullmatch(a) is not None


def _contains(items: Any, value: Any) -> bool:
    return isinstance(items, list) and any(_eq(i, value) for i in items)


def _size(a: Any, b: Any) -> bool:
    return isinstance(a, list | str | Mapping) and _is_number(b) and len(a) == b


def _empty(a: Any, b: Any) -> bool:
    if not isinstance(a, list | str | Mapping) or not isinstance(b, bool):
        return False
    return (len(a) == 0) is b


_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": _eq,
    "!=": lambda a, b: not _eq(a, b),
    "<": _order(lambda a, b: a < b),
    "<=": _order(lambda a, b: a <= b),
    ">": _order(lambda a, b: a > b),
    ">=": _order(lambda a, b: a >= b),
    "=~": _regex,
    "in": lambda a, b: _contains(b, a),
    "nin": lambda a, b: isinstance(b, list) and not _contains(b, a),
    "subsetof": lambda a, b: isinstance(a, list) and all(_contains(b, x) for x in a),
    "anyof": lambda a, b: isinstance(a, list) and any(_contains(b, x) for x in a),
    "noneof": lambda a, b: isinstance(a, list) and not any(_contains(b, x) for x in a),
    "size": _size,
    "empty": _empty,
    "contains": lambda a, b: (
        _contains(a, b)
        if isinstance(a, list)
        else isinstance(a, str) and isinstance(b, str) and b in a
    ),
}


class _Compiled:
    """Segments of a path after its root, with the definite fast path precomputed."""

    __slots__ = ("definite", "keys", "merge", "segments")

    def __init__(self, segments: list[_Segment]) -> None:
        self.segments = tuple(segments)
        last = segments[-1] if segments else None
        body = segments[:-1] if isinstance(last, _Names) else segments
        simple_body = all(isinstance(s, _Name | _Index) for s in body)
        self.merge: _Names | None = last if isinstance(last, _Names) and simple_body else None
        self.definite: bool = self.merge is not None or all(s.definite for s in segments)
        self.keys: tuple[str | int, ...] | None = None
        if self.merge is None and simple_body:
            self.keys = _keys_of(segments)

    def find(self, node: Any, root: Any) -> Any:
        """One value (definite) or NOT_FOUND; a list of matches (indefinite)."""
        keys = self.keys
        if keys is not None:
            return _walk(node, keys)
        if self.definite:
            if self.merge is not None:
                target = _walk(node, _keys_of(self.segments[:-1]))
                return NOT_FOUND if target is NOT_FOUND else self.merge.merge(target)
            found = list(self.matches(node, root))
            return found[0] if found else NOT_FOUND
        return list(self.matches(node, root))

    def matches(self, node: Any, root: Any) -> Iterator[Any]:
        nodes: list[Any] = [node]
        for segment in self.segments:
            nodes = [hit for n in nodes for hit in segment.apply(n, root)]
            if not nodes:
                break
        return iter(nodes)


def _keys_of(segments: tuple[_Segment, ...] | list[_Segment]) -> tuple[str | int, ...]:
    keys: list[str | int] = []
    for s in segments:
        if isinstance(s, _Name):
            keys.append(s.name)
        elif isinstance(s, _Index):
            keys.append(s.index)
    return tuple(keys)


def _walk(node: Any, keys: tuple[str | int, ...]) -> Any:
    # The hot loop: every InputPath/OutputPath/".$" of a state comes through here.
    for key in keys:
        if key.__class__ is str:
            if (node.__class__ is dict or isinstance(node, Mapping)) and key in node:
                node = node[key]
                continue
            return NOT_FOUND
        if node.__class__ is list and -len(node) <= key < len(node):  # type: ignore[operator]
            node = node[key]  # type: ignore[index]
            continue
        return NOT_FOUND
    return node


_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Path:
    """A compiled JSONPath (input ``$``, context ``$$`` or variable ``$name``)."""

    __slots__ = ("_compiled", "_keys", "_root", "_variable", "is_definite", "text")

    def __init__(self, text: str, root: int, variable: str | None, compiled: _Compiled) -> None:
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
            return _walk(origin, keys)
        return self._compiled.find(origin, origin)

    def evaluate(self, input: Any, scope: Scope | None) -> Any:
        """The value (definite path) or the list of matches (indefinite path).

        Raises ``EvaluationError`` (``States.Runtime``) when a definite path matches nothing.
        """
        origin = input if self._root == _INPUT else self._origin(input, scope)
        keys = self._keys
        if keys is not None:
            value = _walk(origin, keys)
        else:
            value = self._compiled.find(origin, origin)
        if value is NOT_FOUND:
            raise EvaluationError(RUNTIME, self.not_found_cause())
        return value

    def not_found_cause(self) -> str:
        """AWS's cause when this definite path matches nothing."""
        keys = self._keys
        if keys is None:
            keys = _keys_of(self._compiled.segments)
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
    parser = _Parser(stripped, pos)
    try:
        segments = parser.segments()
    except InvalidExpression:
        raise
    except (ValueError, IndexError, re.error) as exc:
        raise InvalidExpression(f"Invalid JSONPath '{text}'") from exc
    if parser.pos != len(stripped):
        raise parser.fail()
    if any(isinstance(s, _Function) for s in segments[:-1]):
        raise InvalidExpression(f"Invalid JSONPath '{text}': a function must end the path")
    return Path(text, root, variable, _Compiled(segments))


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
        if not isinstance(node, Mapping):
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
    parser = _Parser(stripped, 1)
    try:
        segments = parser.segments()
    except (ValueError, IndexError) as exc:  # InvalidExpression is a ValueError
        raise InvalidExpression(f"Invalid ReferencePath '{text}'") from exc
    if parser.pos != len(stripped) or not all(isinstance(s, _Name | _Index) for s in segments):
        raise InvalidExpression(f"Invalid ReferencePath '{text}'")
    return RefPath(text, _keys_of(segments))
