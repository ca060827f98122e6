"""flowstate: run Amazon States Language state machines faithfully and durably."""

__version__ = "0.1.0"

__all__ = ["__version__"]
