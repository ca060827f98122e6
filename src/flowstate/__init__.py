"""flowstate: run Amazon States Language state machines faithfully and durably."""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "function"]


def __getattr__(name: str) -> Any:
    # ``flowstate.function`` (the handler decorator) without importing the integrations on
    # every ``import flowstate``.
    if name == "function":
        from flowstate.integrations.functions import function

        return function
    raise AttributeError(f"module 'flowstate' has no attribute {name!r}")
