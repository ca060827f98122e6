"""RedriveExecution: a FAILED, TIMED_OUT or ABORTED execution goes on from where it stopped.

What AWS documents ("Restarting state machine executions with redrive", Step Functions
developer guide; the RedriveExecution API reference):

* the execution continues from the unsuccessful step with the same input and definition;
  the results of the steps that succeeded are kept and those steps are not run again;
* a Parallel re-runs only the branches that failed or were aborted, an inline Map only the
  iterations that failed or were aborted, a Distributed Map redrives its Map Run; when the
  state failed with ``States.DataLimitExceeded`` it is run again whole;
* the retry counters of the re-run states start again from 0, a Task's ``TimeoutSeconds``
  and the machine's ``TimeoutSeconds`` start again from the redrive;
* a Fail state is entered again and fails again; a Choice is evaluated again; a Wait whose
  timestamp has passed moves straight on.

The stopped execution's frame tree is its snapshot, so the place of the stop is known: every
frame that did not succeed enters the state it stopped in again; a Parallel or Map that
stopped while its branches or iterations ran keeps the ones that succeeded and re-runs the
others where *they* stopped. The history goes on after the stop: ``ExecutionRedriven``
(``redriveCount``), then the events of the re-run states.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flowstate.asl import errors
from flowstate.asl.model import MapState, ParallelState
from flowstate.interpreter import fanout
from flowstate.interpreter.execution import EXECUTION_TIMEOUT_TIMER
from flowstate.interpreter.fanout import FanOut
from flowstate.interpreter.frames import Frame, Phase
from flowstate.interpreter.history import entered_details
from flowstate.interpreter.messages import Command, StartTimer

if TYPE_CHECKING:
    from flowstate.interpreter.execution import Execution

__all__ = ["REDRIVABLE_STATUSES", "redrive"]

REDRIVABLE_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")


def redrive(execution: Execution, now: datetime) -> list[Command]:
    """Run the stopped ``execution`` again from where it stopped; the commands to carry out.

    Raises ValueError for an execution that is running or succeeded (nothing to redrive).
    """
    if execution.status not in REDRIVABLE_STATUSES:
        raise ValueError(f"an execution that is {execution.status} cannot be redriven")
    execution.reopen(now)
    info = execution.info
    info.redrive_count += 1  # $$.Execution.RedriveCount from now on
    execution.emit(
        execution.root,
        "ExecutionRedriven",
        "executionRedrivenEventDetails",
        {"redriveCount": info.redrive_count},
        previous=execution.event_count,
    )
    timeout = execution.machine.timeout_seconds
    if timeout is not None:
        # AWS: "the state machine level timeout, if defined, is reset to 0": the execution has
        # its whole TimeoutSeconds again, counted from the redrive.
        execution.command(StartTimer(EXECUTION_TIMEOUT_TIMER, now + timedelta(seconds=timeout)))
    _resume(execution, execution.root)
    return execution.run_ready()


def _succeeded(frame: Frame) -> bool:
    return frame.phase == Phase.DONE and not frame.failed and frame.aborted_in is None


def _resume(execution: Execution, frame: Frame) -> None:
    """Run ``frame`` again from the state it stopped in."""
    redo = _children_to_redo(frame)
    if redo:
        _resume_fan_out(execution, frame, redo)
    else:
        _reenter(execution, frame)


def _children_to_redo(frame: Frame) -> list[Frame]:
    """The branches or iterations to run again when ``frame`` stopped in a Parallel or Map
    while they ran; empty when the state itself is to be run again whole."""
    state = frame.state
    fan = frame.map_state
    if not isinstance(state, ParallelState | MapState) or not isinstance(fan, FanOut):
        return []
    if frame.failed:
        # Failed because a branch or iteration did: only then are the others worth keeping.
        # AWS: a state that failed with States.DataLimitExceeded is run again whole.
        if frame.error == errors.DATA_LIMIT_EXCEEDED:
            return []
        if not any(child.failed for child in frame.children):
            return []
    elif frame.aborted_in is not None:
        if frame.aborted_in != Phase.CHILDREN:
            return []
    elif frame.phase != Phase.CHILDREN:
        return []
    # The bookkeeping must be this state's (not one left over from an earlier state).
    if isinstance(state, ParallelState):
        branches = state.branches
        if any(
            child.child_index >= len(branches) or child.machine is not branches[child.child_index]
            for child in frame.children
        ):
            return []
    elif any(child.machine is not state.item_processor for child in frame.children):
        return []
    return [child for child in frame.children if not _succeeded(child)]


def _reset(frame: Frame) -> None:
    """Forget how the frame's last attempt at its state ended; Retry counters start again."""
    frame.attempts = []
    frame.failed = False
    frame.error = None
    frame.cause = None
    frame.aborted_in = None
    frame.task_id = None
    frame.timer_id = None
    frame.context_extra = None
    frame.output = None


def _reenter(execution: Execution, frame: Frame) -> None:
    _reset(frame)
    frame.map_state = None
    frame.children = []
    frame.phase = Phase.ENTER
    execution.make_ready(frame)


def _resume_fan_out(execution: Execution, frame: Frame, redo: list[Frame]) -> None:
    """The Parallel or Map is entered again; the branches or iterations that succeeded keep
    their results, the others run again from where they stopped."""
    state = frame.state
    fan: FanOut = frame.map_state
    _reset(frame)
    frame.entered_time = execution.now
    frame.entered_event_id = execution.emit(
        frame,
        state.type + "StateEntered",
        "stateEnteredEventDetails",
        entered_details(state.name, frame.raw_input),
    )
    frame.phase = Phase.CHILDREN
    for child in redo:
        fan.results[child.child_index] = None
    if isinstance(state, ParallelState):
        started = execution.emit(frame, "ParallelStateStarted")
        fan.pending = len(redo)
        for child in redo:
            child.last_event_id = started
            _resume(execution, child)
        return
    assert isinstance(state, MapState)
    execution.emit(
        frame, "MapStateStarted", "mapStateStartedEventDetails", {"length": len(fan.items)}
    )
    if fan.distributed:
        # The same Map Run goes on. Its redrive count is taken as the execution's: they agree
        # whenever the Map Run was started in the first attempt (flowstate keeps no other).
        execution.emit(
            frame,
            "MapRunRedriven",
            "mapRunRedrivenEventDetails",
            {"mapRunArn": fan.map_run_arn, "redriveCount": execution.info.redrive_count},
        )
    previous = frame.last_event_id
    fan.pending = len(fan.items) - (len(frame.children) - len(redo))
    fan.running = len(redo)
    fan.failures = 0  # the failed iterations all run again
    for child in sorted(redo, key=lambda c: c.child_index):
        if not fan.distributed:
            child.last_event_id = execution.emit(
                frame,
                "MapIterationStarted",
                "mapIterationStartedEventDetails",
                {"index": child.child_index, "name": state.name},
                previous=previous,
            )
        _resume(execution, child)
    # Items never started (MaxConcurrency) start as places free up, as in the first attempt.
    fanout._launch(execution, frame, state, previous)
