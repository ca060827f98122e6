"""Jayway filter expressions (``[?(...)]``) of AWS's JSONPath dialect: grammar and evaluation."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from flowstate.asl.jsonpath_selectors import NOT_FOUND, CompiledSegments, Segment

if TYPE_CHECKING:
    from flowstate.asl.jsonpath_parser import Parser

__all__ = ["Filter", "FilterParser"]


class Filter(Segment):
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


class FilterParser:
    """Jayway filter predicates: ``@.a == 1 && (@.b =~ /x.*/i || !@.c)``, ``in``, ``nin``,
    ``subsetof``, ``anyof``, ``noneof``, ``size``, ``empty``, ``contains``."""

    _OPS = ("==", "!=", "<=", ">=", "=~", "<", ">")
    _WORD_OPS = ("in", "nin", "subsetof", "anyof", "noneof", "size", "empty", "contains")

    def __init__(self, parser: Parser) -> None:
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
            path = CompiledSegments(segments)
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
