"""What an expression can see besides the state input.

Paths (``$$.Execution.Id``, ``$myVar``), payload templates, intrinsic functions and JSONata
expressions all evaluate against a ``Scope``. The scope is built by the interpreter; nothing in
``asl`` reads the clock or draws randomness on its own: ``entropy`` comes in from outside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["Entropy", "Scope"]


class Entropy(Protocol):
    """Deterministic source of randomness handed in by the runtime (seeded per execution)."""

    def random(self) -> float:
        """A float in [0, 1)."""
        ...

    def uuid4(self) -> str:
        """A version-4 UUID in canonical text form."""
        ...


class Scope:
    """Context object, visible variables and entropy for one evaluation."""

    __slots__ = ("_context", "entropy", "variables")

    def __init__(
        self,
        context: Any,
        variables: Mapping[str, Any] | None,
        entropy: Entropy,
    ) -> None:
        self._context = context
        self.variables = variables
        self.entropy = entropy

    @property
    def context(self) -> Any:
        """The context object (``$$``). A property, so that a subclass may build it only
        when an expression asks for it (an attribute cannot be overridden so when the
        class is compiled)."""
        return self._context
