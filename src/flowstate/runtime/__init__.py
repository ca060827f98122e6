"""Runtimes that drive executions: today the in-memory one behind ``flowstate run``."""

from flowstate.runtime.clock import Clock, RealClock, VirtualClock, make_clock
from flowstate.runtime.local import ExecutionResult, LocalRuntime, run_definition

__all__ = [
    "Clock",
    "ExecutionResult",
    "LocalRuntime",
    "RealClock",
    "VirtualClock",
    "make_clock",
    "run_definition",
]
