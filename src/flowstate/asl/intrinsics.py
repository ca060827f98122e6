"""Intrinsic functions of JSONPath-mode states: ``States.Format('{} {}', $.a, $$.b)``.

An intrinsic is compiled once into a tree of calls, literals and paths. Arguments are string
literals in single quotes (escapes ``\\'``, ``\\{``, ``\\}``, ``\\\\``; any other escape is a
definition error, as AWS), numbers, ``true``/``false``/``null``, paths (``$.x``, ``$$.x``,
``$var``) and nested calls.

Values follow AWS, which runs these functions in Java: numbers keep their JSON type (an
integer stays an integer, ``1.0`` stays a double), non-integer "integer" arguments are rounded
like ``Math.round``, ``States.Format`` renders objects as Java maps (``{a=1, b=[x, y]}``) and
doubles as ``Double.toString`` (``1.0E7``). Failures of an argument's type or value are
``States.IntrinsicFailure``; a path argument that matches nothing is ``States.Runtime``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from flowstate.asl.errors import INTRINSIC_FAILURE, EvaluationError, InvalidExpression
from flowstate.asl.paths import Path, compile_path, java_double, json_text
from flowstate.asl.scope import Scope

__all__ = ["Intrinsic", "compile_intrinsic", "is_intrinsic"]

_PREFIX: Final = "States."
# AWS limits (Step Functions developer guide, "Intrinsic functions").
MAX_ARRAY_RANGE_ITEMS: Final = 1000
MAX_ENCODE_CHARS: Final = 10000
MAX_HASH_CHARS: Final = 10000
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_HASHES: Final = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


def is_intrinsic(text: str) -> bool:
    """Whether a ``.$`` value is an intrinsic function call rather than a path."""
    return isinstance(text, str) and text.startswith(_PREFIX)


class _Node:
    __slots__ = ()

    def value(self, input: Any, scope: Scope | None) -> Any:
        raise NotImplementedError


class _Literal(_Node):
    """A literal argument. For strings, ``parts`` keeps the text split at unescaped ``{}``
    so that ``States.Format`` can tell a placeholder from an escaped ``\\{\\}``."""

    __slots__ = ("literal", "parts")

    def __init__(self, literal: Any, parts: tuple[str, ...] | None = None) -> None:
        self.literal = literal
        self.parts = parts

    def value(self, input: Any, scope: Scope | None) -> Any:
        return self.literal


class _PathArg(_Node):
    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def value(self, input: Any, scope: Scope | None) -> Any:
        return self.path.evaluate(input, scope)


Impl = Callable[["_Call", list[Any], Scope | None], Any]


class _Call(_Node):
    __slots__ = ("args", "impl", "name")

    def __init__(self, name: str, args: list[_Node], impl: Impl) -> None:
        self.name = name
        self.args = args
        self.impl = impl

    def value(self, input: Any, scope: Scope | None) -> Any:
        return self.impl(self, [a.value(input, scope) for a in self.args], scope)


class Intrinsic:
    """A compiled intrinsic function call."""

    __slots__ = ("_root", "text")

    def __init__(self, text: str, root: _Call) -> None:
        self.text = text
        self._root = root

    def __repr__(self) -> str:
        return f"Intrinsic({self.text!r})"

    def evaluate(self, input: Any, scope: Scope | None) -> Any:
        """Run the call against the state input and scope; raises ``EvaluationError``."""
        return self._root.value(input, scope)


# --------------------------------------------------------------------------------------------
# Parser

_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_NAME = re.compile(r"States\.([A-Za-z0-9]+)")
_WORD = re.compile(r"true|false|null")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> InvalidExpression:
        return InvalidExpression(f"Invalid intrinsic function '{self.text}': {why} at {self.pos}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def call(self) -> _Call:
        m = _NAME.match(self.text, self.pos)
        if m is None:
            raise self.fail("expected 'States.<Function>('")
        name = m.group(1)
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise self.fail(f"unknown function 'States.{name}'")
        self.pos = m.end()
        self.skip_ws()
        if self.text[self.pos : self.pos + 1] != "(":
            raise self.fail("expected '('")
        self.pos += 1
        args: list[_Node] = []
        self.skip_ws()
        if self.text[self.pos : self.pos + 1] == ")":
            self.pos += 1
        else:
            while True:
                args.append(self.argument())
                self.skip_ws()
                c = self.text[self.pos : self.pos + 1]
                self.pos += 1
                if c == ")":
                    break
                if c != ",":
                    self.pos -= 1
                    raise self.fail("expected ',' or ')'")
        low, high, impl = spec
        if len(args) < low or (high is not None and len(args) > high):
            expected = (
                str(low) if low == high else f"{low} to {high}" if high else f"at least {low}"
            )
            raise InvalidExpression(
                f"Invalid intrinsic function '{self.text}': States.{name} takes {expected} "
                f"argument(s), got {len(args)}"
            )
        if name == "Format" and isinstance(args[0], _Literal) and args[0].parts is None:
            raise InvalidExpression(
                f"Invalid intrinsic function '{self.text}': the first argument of States.Format "
                "must be a string"
            )
        return _Call(f"States.{name}", args, impl)

    def argument(self) -> _Node:
        self.skip_ws()
        c = self.text[self.pos : self.pos + 1]
        if c == "'":
            return self.string()
        if c == "$":
            return _PathArg(self.path())
        if self.text.startswith(_PREFIX, self.pos):
            return self.call()
        m = _NUMBER.match(self.text, self.pos) or _WORD.match(self.text, self.pos)
        if m is None:
            raise self.fail("expected an argument")
        try:
            literal = json.loads(m.group())
        except ValueError:
            raise self.fail("invalid number") from None
        self.pos = m.end()
        return _Literal(literal)

    def string(self) -> _Literal:
        self.pos += 1  # opening quote
        parts: list[str] = []
        chars: list[str] = []
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c == "\\":
                nxt = text[self.pos + 1 : self.pos + 2]
                # AWS: only these four characters may be escaped in an intrinsic string.
                if nxt not in ("'", "{", "}", "\\"):
                    raise self.fail("illegal escape sequence")
                chars.append(nxt)
                self.pos += 2
                continue
            if c == "'":
                self.pos += 1
                parts.append("".join(chars))
                return _Literal("{}".join(parts), tuple(parts))
            if c == "{" and text[self.pos + 1 : self.pos + 2] == "}":
                parts.append("".join(chars))
                chars = []
                self.pos += 2
                continue
            chars.append(c)
            self.pos += 1
        raise self.fail("unterminated string")

    def path(self) -> Path:
        # A path argument runs to the next ',' or ')' outside brackets, parens and quotes.
        start, depth, quote = self.pos, 0, ""
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if quote:
                if c == "\\":
                    self.pos += 1
                elif c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif c in "[(":
                depth += 1
            elif c in "])":
                if depth == 0:
                    break
                depth -= 1
            elif c == "," and depth == 0:
                break
            self.pos += 1
        return compile_path(text[start : self.pos].strip())


def compile_intrinsic(text: str) -> Intrinsic:
    """Compile ``States.<Function>(...)``; raises ``InvalidExpression`` with the reason."""
    parser = _Parser(text.strip())
    root = parser.call()
    parser.skip_ws()
    if parser.pos != len(parser.text):
        raise parser.fail("unexpected text after the call")
    return Intrinsic(text, root)


# --------------------------------------------------------------------------------------------
# Argument checks


def _fail(message: str) -> EvaluationError:
    return EvaluationError(INTRINSIC_FAILURE, message)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _integer(call: _Call, v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _fail(f"The {what} argument of {call.name} must be a number, but was {json_text(v)}")
    # AWS rounds non-integer values to the nearest integer, like Java's Math.round.
    return v if isinstance(v, int) else math.floor(v + 0.5)


def _array(call: _Call, v: Any, what: str = "first") -> list[Any]:
    if not isinstance(v, list):
        raise _fail(f"The {what} argument of {call.name} must be an array, but was {json_text(v)}")
    return v


def _string(call: _Call, v: Any, what: str = "first") -> str:
    if not isinstance(v, str):
        raise _fail(f"The {what} argument of {call.name} must be a string, but was {json_text(v)}")
    return v


def _canonical(v: Any) -> Any:
    """Hashable form with Java equality: 1 and 1.0 and true all differ; key order does not."""
    if isinstance(v, Mapping):
        return ("o", frozenset((k, _canonical(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("a", tuple(_canonical(x) for x in v))
    return (type(v).__name__, v)


def _java_string(v: Any) -> str:
    """``String.valueOf`` of the Java value AWS holds for a JSON value."""
    if isinstance(v, str):
        return v
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return java_double(v) if math.isfinite(v) else str(v)
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}={_java_string(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_java_string(x) for x in v) + "]"
    return str(v)


# --------------------------------------------------------------------------------------------
# Functions


def _format(call: _Call, args: list[Any], scope: Scope | None) -> str:
    first = call.args[0]
    if isinstance(first, _Literal) and first.parts is not None:
        parts: list[str] = list(first.parts)
    else:
        parts = _string(call, args[0]).split("{}")
    values = args[1:]
    if len(parts) - 1 != len(values):
        raise _fail(
            f"The number of arguments for {call.name} ({len(values)}) does not match the "
            f"number of '{{}}' placeholders in the template ({len(parts) - 1})"
        )
    out = [parts[0]]
    for value, part in zip(values, parts[1:]):
        out.append(_java_string(value))
        out.append(part)
    return "".join(out)


def _string_to_json(call: _Call, args: list[Any], scope: Scope | None) -> Any:
    text = _string(call, args[0])
    if not text.strip():
        return None  # Jackson reads a blank document as null (recorded AWS behaviour)

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError:
        raise _fail(f"The argument of {call.name} is not valid JSON: {text}") from None


def _json_to_string(call: _Call, args: list[Any], scope: Scope | None) -> str:
    return json_text(args[0])


def _array_fn(call: _Call, args: list[Any], scope: Scope | None) -> list[Any]:
    return args


def _array_partition(call: _Call, args: list[Any], scope: Scope | None) -> list[Any]:
    items = _array(call, args[0])
    size = _integer(call, args[1], "second")
    if size <= 0:
        raise _fail(f"The chunk size of {call.name} must be a positive integer, but was {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _array_contains(call: _Call, args: list[Any], scope: Scope | None) -> bool:
    items = _array(call, args[0])
    wanted = _canonical(args[1])
    return any(_canonical(item) == wanted for item in items)


def _array_range(call: _Call, args: list[Any], scope: Scope | None) -> list[int]:
    start = _integer(call, args[0], "first")
    end = _integer(call, args[1], "second")
    step = _integer(call, args[2], "third")
    if step == 0:
        raise _fail(f"The step of {call.name} must not be 0")
    count = max(0, (end - start) // step + 1)
    if count > MAX_ARRAY_RANGE_ITEMS:
        raise _fail(
            f"{call.name} would produce {count} items; at most {MAX_ARRAY_RANGE_ITEMS} are allowed"
        )
    return [start + i * step for i in range(count)]


def _array_get_item(call: _Call, args: list[Any], scope: Scope | None) -> Any:
    items = _array(call, args[0])
    index = _integer(call, args[1], "second")
    if not 0 <= index < len(items):
        raise _fail(f"The index {index} is out of bounds for {call.name} (length {len(items)})")
    return items[index]


def _array_length(call: _Call, args: list[Any], scope: Scope | None) -> int:
    return len(_array(call, args[0]))


def _array_unique(call: _Call, args: list[Any], scope: Scope | None) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for item in _array(call, args[0]):
        key = _canonical(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _base64_encode(call: _Call, args: list[Any], scope: Scope | None) -> str:
    text = _string(call, args[0])
    if len(text) > MAX_ENCODE_CHARS:
        raise _fail(f"The input of {call.name} exceeds {MAX_ENCODE_CHARS} characters")
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _base64_decode(call: _Call, args: list[Any], scope: Scope | None) -> str:
    text = _string(call, args[0])
    if len(text) > MAX_ENCODE_CHARS:
        raise _fail(f"The input of {call.name} exceeds {MAX_ENCODE_CHARS} characters")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _fail(f"The input of {call.name} is not valid base64: {text}") from None
    # Java's new String(bytes, UTF_8) substitutes U+FFFD for malformed input.
    return raw.decode("utf-8", errors="replace")


def _hash(call: _Call, args: list[Any], scope: Scope | None) -> str:
    data = _string(call, args[0])
    algorithm = _string(call, args[1], "second")
    if len(data) > MAX_HASH_CHARS:
        raise _fail(f"The input of {call.name} exceeds {MAX_HASH_CHARS} characters")
    name = _HASHES.get(algorithm)
    if name is None:
        raise _fail(
            f"The hashing algorithm '{algorithm}' of {call.name} is not supported; use one of "
            + ", ".join(_HASHES)
        )
    return hashlib.new(name, data.encode("utf-8")).hexdigest()


def _json_merge(call: _Call, args: list[Any], scope: Scope | None) -> dict[str, Any]:
    left, right, deep = args
    for what, v in (("first", left), ("second", right)):
        if not isinstance(v, Mapping):
            raise _fail(
                f"The {what} argument of {call.name} must be an object, but was {json_text(v)}"
            )
    if not isinstance(deep, bool):
        raise _fail(f"The third argument of {call.name} must be a boolean")
    if deep:
        # AWS: only the shallow merge mode is supported.
        raise _fail(f"{call.name} supports only shallow merging: the third argument must be false")
    return {**left, **right}


def _java_next_int(seed: int, bound: int) -> int:
    """``new java.util.Random(seed).nextInt(bound)``: a seeded MathRandom is reproducible."""
    mask = (1 << 48) - 1
    state = (seed ^ 0x5DEECE66D) & mask

    def next31() -> int:
        nonlocal state
        state = (state * 0x5DEECE66D + 0xB) & mask
        return state >> 17

    if bound & -bound == bound:
        return (bound * next31()) >> 31
    while True:
        bits = next31()
        value = bits % bound
        if bits - value + (bound - 1) < 2**31:
            return value


def _math_random(call: _Call, args: list[Any], scope: Scope | None) -> int:
    start = _integer(call, args[0], "first")
    end = _integer(call, args[1], "second")
    if start >= end:
        raise _fail(f"The start of {call.name} ({start}) must be less than its end ({end})")
    span = end - start
    if len(args) == 3:
        seed = _integer(call, args[2], "third")
        return start + _java_next_int(seed, span)
    if scope is None:
        raise _fail(f"{call.name} needs a source of entropy")
    return start + min(span - 1, int(scope.entropy.random() * span))


def _math_add(call: _Call, args: list[Any], scope: Scope | None) -> int:
    total = 0
    for what, v in zip(("first", "second"), args):
        n = _integer(call, v, what)
        if not _INT_MIN <= n <= _INT_MAX:
            raise _fail(f"The {what} argument of {call.name} is outside the 32-bit integer range")
        total += n
    return total


def _string_split(call: _Call, args: list[Any], scope: Scope | None) -> list[str]:
    text = _string(call, args[0])
    delimiters = _string(call, args[1], "second")
    # Java's StringTokenizer: every character of the second argument is a delimiter and
    # empty tokens are dropped (",,a,,b" -> ["a", "b"]; recorded AWS behaviour).
    if not delimiters:
        return [text] if text else []
    pattern = "[" + re.escape(delimiters) + "]"
    return [token for token in re.split(pattern, text) if token]


def _uuid(call: _Call, args: list[Any], scope: Scope | None) -> str:
    if scope is None:
        raise _fail(f"{call.name} needs a source of entropy")
    return scope.entropy.uuid4()


# name -> (min args, max args or None for unbounded, implementation)
_FUNCTIONS: dict[str, tuple[int, int | None, Impl]] = {
    "Format": (1, None, _format),
    "StringToJson": (1, 1, _string_to_json),
    "JsonToString": (1, 1, _json_to_string),
    "Array": (0, None, _array_fn),
    "ArrayPartition": (2, 2, _array_partition),
    "ArrayContains": (2, 2, _array_contains),
    "ArrayRange": (3, 3, _array_range),
    "ArrayGetItem": (2, 2, _array_get_item),
    "ArrayLength": (1, 1, _array_length),
    "ArrayUnique": (1, 1, _array_unique),
    "Base64Encode": (1, 1, _base64_encode),
    "Base64Decode": (1, 1, _base64_decode),
    "Hash": (2, 2, _hash),
    "JsonMerge": (3, 3, _json_merge),
    "MathRandom": (2, 3, _math_random),
    "MathAdd": (2, 2, _math_add),
    "StringSplit": (2, 2, _string_split),
    "UUID": (0, 0, _uuid),
}
