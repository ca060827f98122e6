"""Frames: where each active branch of an execution stands.

One frame runs one state machine: the top level, a Parallel branch or a Map iteration. The
frame tree plus the history is the whole durable state of an execution.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any, Final

from flowstate.asl.model import State, StateMachine

__all__ = ["Frame", "Phase"]


class Phase:
    ENTER: Final = 0  # about to enter ``state_name`` (emit *StateEntered)
    RUN: Final = 1  # entered; (re)run the state's work (after a retry timer too)
    TASK: Final = 2  # waiting for a task's completion
    TIMER: Final = 3  # waiting for a Wait state's timer
    RETRY: Final = 4  # waiting for a retry back-off timer
    CHILDREN: Final = 5  # Parallel/Map: waiting for branch/iteration frames
    DONE: Final = 6


class Frame:
    __slots__ = (
        "aborted_in",
        "attempts",
        "cause",
        "child_index",
        "children",
        "context_extra",
        "effective_input",
        "entered_event_id",
        "entered_time",
        "error",
        "failed",
        "id",
        "last_event_id",
        "machine",
        "map_state",
        "output",
        "parent",
        "phase",
        "raw_input",
        "scope_variables",
        "silent",
        "state",
        "state_name",
        "task_id",
        "timer_id",
        "variables",
    )

    def __init__(
        self,
        id: str,
        machine: StateMachine,
        raw_input: Any,
        parent: Frame | None = None,
        child_index: int = 0,
        silent: bool = False,
    ) -> None:
        self.id = id
        self.machine = machine
        self.state_name = machine.start_at
        self.state: State = machine.states[machine.start_at]
        self.raw_input = raw_input
        self.effective_input: Any = None
        self.phase = Phase.ENTER
        self.entered_event_id = 0
        self.entered_time: Any = None
        self.last_event_id = 0
        self.attempts: list[int] = []
        self.parent = parent
        self.child_index = child_index
        self.silent = silent
        # Variables assigned in this frame; reads see the enclosing frames' too.
        self.variables: dict[str, Any] = {}
        # Reads see enclosing frames' variables; writes only ever go to ``variables``.
        self.scope_variables: Mapping[str, Any] = (
            ChainMap(self.variables, parent.scope_variables)  # type: ignore[arg-type]
            if parent is not None
            else self.variables
        )
        self.task_id: str | None = None
        self.timer_id: str | None = None
        self.children: list[Frame] = []
        self.map_state: Any = None  # fan-out bookkeeping of a Parallel/Map state
        self.context_extra: dict[str, Any] | None = None
        self.output: Any = None
        self.failed = False
        # The phase a frame was in when a failing sibling aborted it (None: never aborted);
        # RedriveExecution re-runs aborted frames and keeps the ones that succeeded.
        self.aborted_in: int | None = None
        self.error: str | None = None
        self.cause: str | None = None

    def goto(self, name: str, raw_input: Any) -> None:
        self.state_name = name
        self.state = self.machine.states[name]
        self.raw_input = raw_input
        self.phase = Phase.ENTER
        self.attempts = []
