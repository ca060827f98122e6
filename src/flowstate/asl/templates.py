"""Payload templates of JSONPath-mode states: Parameters, ResultSelector, ItemSelector,
Assign and Credentials.

A key ending in ``.$`` takes its value from a path (``$.x``, ``$$.x``, ``$var``) or an
intrinsic function call, and loses the ``.$`` in the output. Everything else is a constant.
Templates are compiled once; a constant sub-tree is kept as the very same object and shared
by every evaluation (JSON values are immutable in this engine), so a fully constant template
costs nothing to evaluate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowstate.asl.errors import RUNTIME, EvaluationError, InvalidExpression
from flowstate.asl.intrinsics import Intrinsic, compile_intrinsic, is_intrinsic
from flowstate.asl.paths import NOT_FOUND, Path, compile_path, json_text
from flowstate.asl.scope import Scope

__all__ = ["Template", "compile_template"]


class _Node:
    __slots__ = ()

    def value(self, input: Any, scope: Scope | None) -> Any:
        raise NotImplementedError


class _PathField(_Node):
    __slots__ = ("key", "path")

    def __init__(self, key: str, path: Path) -> None:
        self.key = key
        self.path = path

    def value(self, input: Any, scope: Scope | None) -> Any:
        found = self.path.evaluate_or_none(input, scope)
        if found is NOT_FOUND:
            # AWS names the field and shows the state input, whichever root the path reads.
            raise EvaluationError(
                RUNTIME,
                f"The JSONPath '{self.path.text}' specified for the field '{self.key}' "
                f"could not be found in the input '{json_text(input)}'",
            )
        return found


class _IntrinsicField(_Node):
    __slots__ = ("intrinsic",)

    def __init__(self, intrinsic: Intrinsic) -> None:
        self.intrinsic = intrinsic

    def value(self, input: Any, scope: Scope | None) -> Any:
        return self.intrinsic.evaluate(input, scope)


class _Object(_Node):
    """An object with at least one dynamic member; constant members are shared as they are."""

    __slots__ = ("members",)

    def __init__(self, members: list[tuple[str, Any, _Node | None]]) -> None:
        self.members = members

    def value(self, input: Any, scope: Scope | None) -> Any:
        out = {}
        for key, constant, node in self.members:
            out[key] = constant if node is None else node.value(input, scope)
        return out


class _Array(_Node):
    __slots__ = ("items",)

    def __init__(self, items: list[tuple[Any, _Node | None]]) -> None:
        self.items = items

    def value(self, input: Any, scope: Scope | None) -> Any:
        return [c if node is None else node.value(input, scope) for c, node in self.items]


def _invalid_field(key: str) -> InvalidExpression:
    return InvalidExpression(
        f"The value for the field '{key}' must be a valid JSONPath or a valid intrinsic "
        "function call"
    )


def _compile_dynamic(key: str, text: Any) -> _Node:
    if not isinstance(text, str):
        raise _invalid_field(key)
    if is_intrinsic(text):
        try:
            return _IntrinsicField(compile_intrinsic(text))
        except InvalidExpression:
            raise _invalid_field(key) from None
    if text.startswith("$"):
        try:
            return _PathField(key, compile_path(text))
        except InvalidExpression:
            raise _invalid_field(key) from None
    raise _invalid_field(key)


def _compile(value: Any) -> tuple[Any, _Node | None]:
    """(constant, None) for a constant sub-tree, or (None, node) for a dynamic one."""
    if isinstance(value, Mapping):
        members: list[tuple[str, Any, _Node | None]] = []
        dynamic = False
        for key, item in value.items():
            if isinstance(key, str) and key.endswith(".$"):
                members.append((key[:-2], None, _compile_dynamic(key, item)))
                dynamic = True
            else:
                constant, node = _compile(item)
                members.append((key, constant, node))
                dynamic = dynamic or node is not None
        if not dynamic:
            return value, None
        return None, _Object(members)
    if isinstance(value, list):
        items = [_compile(item) for item in value]
        if all(node is None for _, node in items):
            return value, None
        return None, _Array(items)
    return value, None


class Template:
    """A compiled payload template. ``text`` is the field name it was compiled for."""

    __slots__ = ("_constant", "_node", "field", "text")

    def __init__(self, field: str, constant: Any, node: _Node | None) -> None:
        self.field = field
        self.text = field
        self._constant = constant
        self._node = node

    def __repr__(self) -> str:
        return f"Template({self.field!r}, dynamic={self._node is not None})"

    @property
    def is_constant(self) -> bool:
        """True when evaluation always returns the same (shared) value."""
        return self._node is None

    def evaluate(self, input: Any, scope: Scope | None) -> Any:
        """The payload for this state input; raises ``EvaluationError`` (``States.Runtime``
        or ``States.IntrinsicFailure``) when a path or function fails."""
        node = self._node
        if node is None:
            return self._constant
        return node.value(input, scope)


def compile_template(value: Any, *, field: str) -> Template:
    """Compile a payload template (any JSON value) found in the definition field ``field``.

    Raises ``InvalidExpression`` with AWS's text when a ``.$`` value is neither a path nor an
    intrinsic function call.
    """
    constant, node = _compile(value)
    return Template(field, constant, node)
