"""The semantics of an execution: a pure step function over frames. No I/O, no clock."""

from flowstate.interpreter.execution import Execution, ExecutionInfo
from flowstate.interpreter.messages import (
    CancelTask,
    CancelTimer,
    Command,
    Event,
    ScheduleTask,
    StartTimer,
    StopRequested,
    TaskFailed,
    TaskHeartbeat,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    TimerFired,
)
from flowstate.interpreter.snapshot import dump_execution, load_execution

__all__ = [
    "CancelTask",
    "CancelTimer",
    "Command",
    "Event",
    "Execution",
    "ExecutionInfo",
    "ScheduleTask",
    "StartTimer",
    "StopRequested",
    "TaskFailed",
    "TaskHeartbeat",
    "TaskStarted",
    "TaskSubmitted",
    "TaskSucceeded",
    "TimerFired",
    "dump_execution",
    "load_execution",
]
