"""Selectors of AWS's JSONPath dialect (Jayway semantics) and the compiled form of a path.

A path after its root is a sequence of segments; each maps one node to an iterator of result
nodes. ``CompiledSegments`` precomputes the definite fast path: a tuple of keys walked by
``walk``, the loop every InputPath/OutputPath/``.$`` goes through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from flowstate.asl.errors import InvalidExpression

__all__ = [
    "NOT_FOUND",
    "CompiledSegments",
    "Descend",
    "Function",
    "Index",
    "Indexes",
    "Name",
    "Names",
    "Segment",
    "Slice",
    "Wildcard",
    "keys_of",
    "walk",
]


class _NotFound:
    """Sentinel type of ``NOT_FOUND``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_FOUND"

    def __bool__(self) -> bool:
        return False


NOT_FOUND: Final = _NotFound()
"""Returned by ``Path.evaluate_or_none`` when a definite path matches nothing."""


class Segment:
    __slots__ = ()
    definite = False

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        raise NotImplementedError


class Name(Segment):
    __slots__ = ("name",)
    definite = True

    def __init__(self, name: str) -> None:
        self.name = name

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, Mapping) and self.name in node:
            yield node[self.name]


class Index(Segment):
    __slots__ = ("index",)
    definite = True

    def __init__(self, index: int) -> None:
        self.index = index

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, list) and -len(node) <= self.index < len(node):
            yield node[self.index]


class Names(Segment):
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


class Indexes(Segment):
    __slots__ = ("indexes",)

    def __init__(self, indexes: tuple[int, ...]) -> None:
        self.indexes = indexes

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, list):
            size = len(node)
            for index in self.indexes:
                if -size <= index < size:
                    yield node[index]


class Slice(Segment):
    __slots__ = ("slice",)

    def __init__(self, start: int | None, stop: int | None, step: int | None) -> None:
        self.slice = slice(start, stop, step)

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, list):
            yield from node[self.slice]


class Wildcard(Segment):
    __slots__ = ()

    def apply(self, node: Any, root: Any) -> Iterator[Any]:
        if isinstance(node, Mapping):
            yield from node.values()
        elif isinstance(node, list):
            yield from node


class Descend(Segment):
    """``..x``: apply ``x`` to the node and to every descendant, parents first (Jayway)."""

    __slots__ = ("inner",)

    def __init__(self, inner: Segment) -> None:
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


class Function(Segment):
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


class CompiledSegments:
    """Segments of a path after its root, with the definite fast path precomputed."""

    __slots__ = ("definite", "keys", "merge", "segments")

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = tuple(segments)
        last = segments[-1] if segments else None
        body = segments[:-1] if isinstance(last, Names) else segments
        simple_body = all(isinstance(s, Name | Index) for s in body)
        self.merge: Names | None = last if isinstance(last, Names) and simple_body else None
        self.definite: bool = self.merge is not None or all(s.definite for s in segments)
        self.keys: tuple[str | int, ...] | None = None
        if self.merge is None and simple_body:
            self.keys = keys_of(segments)

    def find(self, node: Any, root: Any) -> Any:
        """One value (definite) or NOT_FOUND; a list of matches (indefinite)."""
        keys = self.keys
        if keys is not None:
            return walk(node, keys)
        if self.definite:
            if self.merge is not None:
                target = walk(node, keys_of(self.segments[:-1]))
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


def keys_of(segments: tuple[Segment, ...] | list[Segment]) -> tuple[str | int, ...]:
    keys: list[str | int] = []
    for s in segments:
        if isinstance(s, Name):
            keys.append(s.name)
        elif isinstance(s, Index):
            keys.append(s.index)
    return tuple(keys)


def walk(node: Any, keys: tuple[str | int, ...]) -> Any:
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
