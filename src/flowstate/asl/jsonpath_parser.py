"""Recursive-descent parser of AWS's JSONPath dialect: the text after a path's root into
segments."""

from __future__ import annotations

import re

from flowstate.asl.errors import InvalidExpression
from flowstate.asl.jsonpath_filter import Filter, FilterParser
from flowstate.asl.jsonpath_selectors import (
    Descend,
    Function,
    Index,
    Indexes,
    Name,
    Names,
    Segment,
    Slice,
    Wildcard,
)

__all__ = ["Parser"]


class Parser:
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

    def segments(self, stop: str = "") -> list[Segment]:
        out: list[Segment] = []
        text = self.text
        while self.pos < len(text) and text[self.pos] not in stop:
            c = text[self.pos]
            if text.startswith("..", self.pos):
                self.pos += 2
                if self.peek() == "[":
                    inner = self.bracket()
                elif self.peek() == "*":
                    self.pos += 1
                    inner = Wildcard()
                else:
                    inner = Name(self.dot_name())
                out.append(Descend(inner))
            elif c == ".":
                self.pos += 1
                if self.peek() == "*":
                    self.pos += 1
                    out.append(Wildcard())
                elif self.peek() == "[":  # "$.['a']" is accepted by Jayway
                    out.append(self.bracket())
                else:
                    name = self.dot_name()
                    if self.peek(2) == "()":
                        self.pos += 2
                        out.append(Function(name))
                    else:
                        out.append(Name(name))
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

    def bracket(self) -> Segment:
        self.expect("[")
        self.skip_ws()
        c = self.peek()
        if c == "*":
            self.pos += 1
            self.expect("]")
            return Wildcard()
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
            return Name(names[0]) if len(names) == 1 else Names(tuple(names))
        if c == "?":
            self.pos += 1
            self.expect("(")
            predicate = FilterParser(self).disjunction()
            self.expect(")")
            self.expect("]")
            return Filter(predicate)
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
            return Slice(first, stop, step)
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
        return Index(first) if len(indexes) == 1 else Indexes(tuple(indexes))
