"""The semantics of one execution: a pure state machine over frames.

``Execution.step(event, now)`` takes a fact (a task finished, a timer fired, a stop was
requested), advances every frame that can run — pure states back to back — and returns the
commands the runtime must carry out (invoke a task, arm a timer). No I/O, no clock, no
randomness of its own: ``now`` and the entropy seed come in as arguments.

The execution object is mutated in place; the runtime owns it and persists it between steps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Container
from datetime import datetime, timedelta
from typing import Any

from flowstate.asl import errors
from flowstate.asl.errors import EvaluationError, StatesError
from flowstate.asl.model import (
    JSONATA,
    ChoiceState,
    FailState,
    PassState,
    State,
    StateMachine,
    SucceedState,
)
from flowstate.interpreter import dataflow, fanout, tasks, waits
from flowstate.interpreter.entropy import SeededEntropy
from flowstate.interpreter.frames import Frame, Phase
from flowstate.interpreter.history import (
    HistoryEvent,
    Payload,
    entered_details,
    error_details,
    exited_details,
)
from flowstate.interpreter.messages import (
    CancelTask,
    CancelTimer,
    Command,
    Event,
    MapRunUpdated,
    RuntimeFailure,
    StartTimer,
    StopRequested,
    TaskFailed,
    TaskHeartbeat,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    TimerFired,
)

__all__ = ["EXECUTION_TIMEOUT_TIMER", "MAX_HISTORY_EVENTS", "Execution", "ExecutionInfo"]

EXECUTION_TIMEOUT_TIMER = "execution-timeout"

# AWS: an execution's history holds at most 25,000 events; reaching the quota fails it.
MAX_HISTORY_EVENTS = 25_000
# Room kept under the quota for the events of the state in progress and the closing event:
# the check runs between states, and one state records at most a few events before the next.
_HISTORY_HEADROOM = 8

_ENTERED = {
    "Pass": "PassStateEntered",
    "Task": "TaskStateEntered",
    "Choice": "ChoiceStateEntered",
    "Wait": "WaitStateEntered",
    "Succeed": "SucceedStateEntered",
    "Fail": "FailStateEntered",
    "Parallel": "ParallelStateEntered",
    "Map": "MapStateEntered",
}
_EXITED = {name: entered[: -len("Entered")] + "Exited" for name, entered in _ENTERED.items()}


class ExecutionInfo:
    """What the context object says about the execution (``$$.Execution``, ``$$.StateMachine``)."""

    __slots__ = (
        "arn",
        "name",
        "redrive_count",
        "role_arn",
        "start_time",
        "start_time_text",
        "state_machine_arn",
        "state_machine_name",
        "synchronous",
        "type",
    )

    def __init__(
        self,
        *,
        arn: str,
        name: str,
        state_machine_arn: str,
        state_machine_name: str,
        role_arn: str | None,  # TestState without a role: "RoleArn": null
        start_time: datetime,
        type: str = "STANDARD",
        redrive_count: int = 0,
        synchronous: bool = False,
    ) -> None:
        self.arn = arn
        self.name = name
        self.state_machine_arn = state_machine_arn
        self.state_machine_name = state_machine_name
        self.role_arn = role_arn
        self.start_time = start_time
        self.start_time_text = format_timestamp(start_time)
        self.type = type
        self.redrive_count = redrive_count
        self.synchronous = synchronous  # an Express execution started by StartSyncExecution


def _evaluation_failed_details(
    failure: EvaluationError, cause: str, state_name: str
) -> dict[str, Any]:
    details: dict[str, Any] = {"cause": cause, "error": failure.error}
    if failure.location is not None:
        details["location"] = failure.location
    details["state"] = state_name
    return details


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 with milliseconds and ``Z``, as the context object shows times."""
    # (the time as given, offset left off; isoformat is twice as fast as strftime)
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


class Execution:
    """The frame tree, history and status of one execution."""

    def __init__(
        self,
        machine: StateMachine,
        info: ExecutionInfo,
        input_value: Any,
        *,
        seed: int = 0,
        record_history: bool = True,
    ) -> None:
        self.machine = machine
        self.info = info
        parts = info.arn.split(":")
        self.region = parts[3] if len(parts) > 3 else ""  # of the execution's ARN
        self.input = input_value
        self.entropy = SeededEntropy(seed)
        self.record_history = record_history
        self.events: list[HistoryEvent] = []
        self.event_count = 0
        # MapRunStarted events among ``events`` (the runtime writes a map run row for each;
        # it looks for them only when there are some).
        self.map_runs_started = 0
        self.status = "RUNNING"
        self.output: Any = None
        self.error: str | None = None
        self.cause: str | None = None
        self.stop_time: datetime | None = None
        self.root = Frame("0", machine, input_value)
        self._ready: deque[Frame] = deque()
        self._tasks: dict[str, Frame] = {}
        self._timers: dict[str, Frame] = {}
        self._commands: list[Command] = []
        self._now: datetime = info.start_time
        self._next_child = 0
        self.max_events = MAX_HISTORY_EVENTS
        # The activity ARNs that exist, when the runtime hosts activities: a Task naming
        # another one fails before it is scheduled, as on AWS. None: not checked.
        self.known_activities: Container[str] | None = None

    # --- driving ---------------------------------------------------------------------

    def start(self, now: datetime) -> list[Command]:
        """Record ExecutionStarted and run until every frame waits or the execution ends."""
        self._now = now
        self.emit(
            self.root,
            "ExecutionStarted",
            "executionStartedEventDetails",
            {
                "input": Payload(self.input),
                "inputDetails": {"truncated": False},
                "roleArn": self.info.role_arn,
            },
        )
        self.root.last_event_id = 0  # AWS: the first state's previousEventId is 0
        timeout = self.machine.timeout_seconds
        if timeout is not None:
            self._commands.append(
                StartTimer(EXECUTION_TIMEOUT_TIMER, now + timedelta(seconds=timeout))
            )
        self._ready.append(self.root)
        self._run()
        return self._take_commands()

    def step(self, event: Event, now: datetime) -> list[Command]:
        """Apply one fact and run until every frame waits again."""
        self._now = now
        if self.status != "RUNNING":
            return []
        if isinstance(event, TaskSucceeded):
            frame = self._tasks.pop(event.task_id, None)
            if frame is not None:
                self.cancel_task_timers(frame)
                tasks.on_succeeded(self, frame, event.output)
        elif isinstance(event, TaskFailed):
            frame = self._tasks.pop(event.task_id, None)
            if frame is not None:
                self.cancel_task_timers(frame)
                tasks.on_failed(self, frame, event.error, event.cause)
        elif isinstance(event, TaskStarted):
            frame = self._tasks.get(event.task_id)
            if frame is not None:
                tasks.on_started(self, frame, event.worker_name)
        elif isinstance(event, TaskSubmitted):
            frame = self._tasks.get(event.task_id)
            if frame is not None:
                tasks.on_submitted(self, frame, event.output)
        elif isinstance(event, TaskHeartbeat):
            frame = self._tasks.get(event.task_id)
            if frame is not None:
                tasks.on_heartbeat(self, frame)
        elif isinstance(event, TimerFired):
            self._on_timer(event.timer_id)
        elif isinstance(event, StopRequested):
            self._abort(event.error, event.cause)
            return self._take_commands()
        elif isinstance(event, RuntimeFailure):
            self._fail_execution(event.error, event.cause)
            return self._take_commands()
        elif isinstance(event, MapRunUpdated):
            fanout.update_map_run(self, event)
        self._run()
        return self._take_commands()

    def _take_commands(self) -> list[Command]:
        commands, self._commands = self._commands, []
        return commands

    def _run(self) -> None:
        ready = self._ready
        while ready and self.status == "RUNNING":
            frame = ready.popleft()
            if frame.phase == Phase.DONE:
                continue
            self._advance(frame)

    def make_ready(self, frame: Frame) -> None:
        self._ready.append(frame)

    def command(self, command: Command) -> None:
        self._commands.append(command)

    def has_task(self, task_id: str) -> bool:
        """Whether ``task_id`` is scheduled and has not ended (a callback can still land)."""
        return task_id in self._tasks

    def register_task(self, task_id: str, frame: Frame) -> None:
        self._tasks[task_id] = frame

    def register_timer(self, timer_id: str, frame: Frame, fire_at: datetime) -> None:
        self._timers[timer_id] = frame
        self._commands.append(StartTimer(timer_id, fire_at))

    def new_child_id(self, parent: Frame) -> str:
        self._next_child += 1
        return f"{parent.id}.{self._next_child}"

    @property
    def now(self) -> datetime:
        return self._now

    # --- history ---------------------------------------------------------------------

    def emit(
        self,
        frame: Frame,
        type: str,
        details_key: str | None = None,
        details: dict[str, Any] | tuple[str, str, Any] | None = None,
        previous: int | None = None,
    ) -> int:
        """Append an event in ``frame``'s thread of history; return its id."""
        if frame.silent:
            return frame.last_event_id
        self.event_count += 1
        event_id = self.event_count
        if self.record_history:
            self.events.append(
                HistoryEvent(
                    event_id,
                    frame.last_event_id if previous is None else previous,
                    type,
                    self._now,
                    details_key,
                    details,
                )
            )
        frame.last_event_id = event_id
        return event_id

    # --- the state loop --------------------------------------------------------------

    def _advance(self, frame: Frame) -> None:
        """Run ``frame`` until it waits for something or ends."""
        while self.status == "RUNNING":
            phase = frame.phase
            if phase == Phase.ENTER:
                if self.event_count >= self.max_events - _HISTORY_HEADROOM:
                    self._history_full()
                    return
                self._enter(frame)
            elif phase != Phase.RUN:
                return
            state = frame.state
            try:
                kind = state.type
                if kind == "Pass":
                    self._run_pass(frame, state)  # type: ignore[arg-type]
                elif kind == "Choice":
                    self._run_choice(frame, state)  # type: ignore[arg-type]
                elif kind == "Task":
                    tasks.run(self, frame, state)  # type: ignore[arg-type]
                elif kind == "Wait":
                    waits.run(self, frame, state)  # type: ignore[arg-type]
                elif kind == "Succeed":
                    self._run_succeed(frame, state)  # type: ignore[arg-type]
                elif kind == "Fail":
                    self._run_fail(frame, state)  # type: ignore[arg-type]
                elif kind == "Parallel":
                    fanout.run_parallel(self, frame, state)  # type: ignore[arg-type]
                elif kind == "Map":
                    fanout.run_map(self, frame, state)  # type: ignore[arg-type]
                else:  # pragma: no cover - the parser refuses unknown types
                    raise StatesError(errors.RUNTIME, f"Unknown state type {kind}")
            except StatesError as failure:
                self.state_failed(frame, failure)
            if frame.phase == Phase.DONE or frame.phase not in (Phase.ENTER, Phase.RUN):
                return

    def _enter(self, frame: Frame) -> None:
        state = frame.state
        frame.entered_time = self._now
        frame.entered_event_id = self.emit(
            frame,
            _ENTERED[state.type],
            "stateEnteredEventDetails",
            entered_details(state.name, frame.raw_input),
        )
        frame.phase = Phase.RUN

    def exit_state(
        self,
        frame: Frame,
        output: Any,
        next_state: str | None,
        assigned: dict[str, Any] | None = None,
        previous: int | None = None,
    ) -> None:
        """Record *StateExited, apply assigned variables, and move on or end the frame."""
        state = frame.state
        details: dict[str, Any] | tuple[str, str, Any]
        if assigned is None:
            details = exited_details(state.name, output)
        else:
            try:
                dataflow.check_assigned_size(assigned)
            except StatesError as failure:
                self.state_failed(frame, failure)
                return
            frame.variables.update(assigned)
            details = {
                "assignedVariables": {key: Payload(v) for key, v in assigned.items()},
                "assignedVariablesDetails": {"truncated": False},
                "name": state.name,
                "output": Payload(output),
                "outputDetails": {"truncated": False},
            }
        self.emit(frame, _EXITED[state.type], "stateExitedEventDetails", details, previous)
        if next_state is not None:
            frame.goto(next_state, output)
        else:
            self.frame_succeeded(frame, output)

    # --- simple states -----------------------------------------------------------------

    def _run_pass(self, frame: Frame, state: PassState) -> None:
        raw = frame.raw_input
        if state.query_language == JSONATA:
            states = dataflow.states_binding(self, frame, raw)
            assigned = dataflow.jsonata_assign(self, frame, state.assign, states)
            output = dataflow.jsonata_output(self, frame, state.output, states, raw)
            self.exit_state(frame, output, state.next, assigned)
            return
        if (
            state.input_path is None
            and state.parameters is None
            and state.output_path is None
            and state.assign is None
            and not state.input_path_is_null
            and not state.output_path_is_null
        ):
            # The common case: Result and/or ResultPath only; nothing needs a scope.
            if state.has_result:
                dataflow.check_constant_size(state)
                output = dataflow.apply_result_path(state, raw, state.result)
            else:
                output = dataflow.apply_result_path(state, raw, raw)
            self.exit_state(frame, output, state.next)
            return
        scope = dataflow.Scope(self, frame)
        effective = dataflow.apply_input_path(state, raw, scope)
        if state.parameters is not None:
            effective = state.parameters.evaluate(effective, scope)
        if state.has_result:
            result = state.result
            dataflow.check_constant_size(state)
        else:
            result = effective
        output = dataflow.apply_result_path(state, raw, result)
        output = dataflow.apply_output_path(state, output, scope)
        assigned = None
        if state.assign is not None:
            assigned = state.assign.evaluate(result, scope)
        self.exit_state(frame, output, state.next, assigned)

    def _run_choice(self, frame: Frame, state: ChoiceState) -> None:
        raw = frame.raw_input
        if state.query_language == JSONATA:
            states = dataflow.states_binding(self, frame, raw)
            for branch in state.choices:
                expr = branch.condition_expr
                assert expr is not None
                verdict = dataflow.evaluate_expression(self, frame, expr, states)
                if not isinstance(verdict, bool):
                    raise EvaluationError(
                        errors.QUERY_EVALUATION_ERROR,
                        "The Condition field must evaluate to a boolean value but was "
                        f"'{dataflow.dump(verdict)}'.",
                    )
                if verdict:
                    assigned = dataflow.jsonata_assign(self, frame, branch.assign, states)
                    output = dataflow.jsonata_output(self, frame, branch.output, states, raw)
                    self.exit_state(frame, output, branch.next, assigned)
                    return
            if state.default is None:
                raise StatesError(
                    errors.NO_CHOICE_MATCHED,
                    "No Matches!",
                )
            assigned = dataflow.jsonata_assign(self, frame, state.assign, states)
            output = dataflow.jsonata_output(self, frame, state.output, states, raw)
            self.exit_state(frame, output, state.default, assigned)
            return
        scope = dataflow.Scope(self, frame)
        effective = dataflow.apply_input_path(state, raw, scope)
        for branch in state.choices:
            condition = branch.condition
            assert condition is not None
            if condition.matches(effective, scope):
                output = dataflow.apply_output_path(state, effective, scope)
                assigned = None
                if branch.assign is not None:
                    assigned = branch.assign.evaluate(effective, scope)
                self.exit_state(frame, output, branch.next, assigned)
                return
        if state.default is None:
            raise StatesError(errors.NO_CHOICE_MATCHED, "No Matches!")
        output = dataflow.apply_output_path(state, effective, scope)
        assigned = None
        if state.assign is not None:
            assigned = state.assign.evaluate(effective, scope)
        self.exit_state(frame, output, state.default, assigned)

    def _run_succeed(self, frame: Frame, state: SucceedState) -> None:
        raw = frame.raw_input
        if state.query_language == JSONATA:
            states = dataflow.states_binding(self, frame, raw)
            output = dataflow.jsonata_output(self, frame, state.output, states, raw)
            self.exit_state(frame, output, None)
            return
        scope = dataflow.Scope(self, frame)
        effective = dataflow.apply_input_path(state, raw, scope)
        output = dataflow.apply_output_path(state, effective, scope)
        self.exit_state(frame, output, None)

    def _run_fail(self, frame: Frame, state: FailState) -> None:
        raw = frame.raw_input
        error: Any = state.error
        cause: Any = state.cause
        if state.query_language == JSONATA:
            states = dataflow.states_binding(self, frame, raw)
            if state.error_expr is not None:
                error = dataflow.evaluate_expression(self, frame, state.error_expr, states)
            if state.cause_expr is not None:
                cause = dataflow.evaluate_expression(self, frame, state.cause_expr, states)
        else:
            scope = dataflow.Scope(self, frame)
            if state.error_path is not None:
                error = dataflow.evaluate_fail_path(state.error_path, raw, scope, "ErrorPath")
            if state.cause_path is not None:
                cause = dataflow.evaluate_fail_path(state.cause_path, raw, scope, "CausePath")
        frame.phase = Phase.DONE
        # A Fail state has no Exited event; its failure is the frame's failure.
        self.frame_failed(frame, error, cause)

    # --- failure handling ----------------------------------------------------------------

    def state_failed(self, frame: Frame, failure: StatesError) -> None:
        """A state raised: located message, then Retry, Catch, or fail the frame."""
        error, cause = failure.error, failure.cause
        if isinstance(failure, EvaluationError):
            cause = self.located_cause(frame, cause)
            if error == errors.QUERY_EVALUATION_ERROR or frame.state.query_language == JSONATA:
                self.emit(
                    frame,
                    "EvaluationFailed",
                    "evaluationFailedEventDetails",
                    _evaluation_failed_details(failure, cause, frame.state.name),
                    previous=0,
                )
                if frame.state.type == "Map" and not self.will_retry(frame, error):
                    # AWS closes a Map whose own expressions failed with MapStateFailed.
                    self.emit(frame, "MapStateFailed")
        self.handle_error(frame, error, cause)

    def located_cause(self, frame: Frame, cause: str | None) -> str:
        return (
            f"An error occurred while executing the state '{frame.state.name}' "
            f"(entered at the event id #{frame.entered_event_id}). {cause or ''}"
        )

    def will_retry(self, frame: Frame, error: str | None) -> bool:
        """Whether ``handle_error`` would retry ``error`` rather than catch or fail."""
        retriers = getattr(frame.state, "retry", ())
        if not retriers:
            return False
        from flowstate.interpreter.retry import find_retrier

        index = find_retrier(retriers, error if error is not None else "")
        if index is None:
            return False
        attempts = frame.attempts[index] if frame.attempts else 0
        return attempts < retriers[index].max_attempts

    def handle_error(self, frame: Frame, error: str | None, cause: str | None) -> None:
        """Retry or Catch ``error`` for the current state of ``frame``; else fail the frame."""
        state = frame.state
        retriers = getattr(state, "retry", ())
        name = error if error is not None else ""
        if retriers:
            from flowstate.interpreter.retry import backoff_seconds, find_retrier

            index = find_retrier(retriers, name)
            if index is not None:
                if not frame.attempts:
                    frame.attempts = [0] * len(retriers)
                retrier = retriers[index]
                attempt = frame.attempts[index]
                if attempt < retrier.max_attempts:
                    frame.attempts[index] = attempt + 1
                    delay = backoff_seconds(retrier, attempt, self.entropy.random())
                    timer_id = f"{frame.id}:retry:{self.event_count}"
                    frame.timer_id = timer_id
                    frame.phase = Phase.RETRY
                    self.register_timer(timer_id, frame, self._now + timedelta(seconds=delay))
                    return
        catchers = getattr(state, "catch", ())
        if catchers:
            from flowstate.interpreter.retry import find_catcher

            catcher = find_catcher(catchers, name)
            if catcher is not None:
                dataflow.apply_catcher(self, frame, catcher, error, cause)
                return
        frame.phase = Phase.DONE
        self.frame_failed(frame, error, cause)

    def frame_failed(self, frame: Frame, error: str | None, cause: str | None) -> None:
        frame.phase = Phase.DONE
        frame.failed = True
        frame.error = error
        frame.cause = cause
        parent = frame.parent
        if parent is None:
            self._fail_execution(error, cause)
        else:
            fanout.child_failed(self, parent, frame)

    def frame_succeeded(self, frame: Frame, output: Any) -> None:
        frame.phase = Phase.DONE
        frame.output = output
        parent = frame.parent
        if parent is None:
            self._succeed_execution(output)
        else:
            fanout.child_succeeded(self, parent, frame)

    # --- execution end ---------------------------------------------------------------

    def _succeed_execution(self, output: Any) -> None:
        self.emit(
            self.root,
            "ExecutionSucceeded",
            "executionSucceededEventDetails",
            {"output": Payload(output), "outputDetails": {"truncated": False}},
        )
        self.status = "SUCCEEDED"
        self.output = output
        self._finish()

    def _fail_execution(self, error: str | None, cause: str | None) -> None:
        self.emit(
            self.root, "ExecutionFailed", "executionFailedEventDetails", error_details(error, cause)
        )
        self.status = "FAILED"
        self.error = error
        self.cause = cause
        self._finish()

    def _history_full(self) -> None:
        self._fail_execution(
            errors.RUNTIME,
            f"The execution reached the maximum number of history events ({self.max_events}).",
        )

    def _abort(self, error: str | None, cause: str | None) -> None:
        self.emit(
            self.root,
            "ExecutionAborted",
            "executionAbortedEventDetails",
            error_details(error, cause),
        )
        self.status = "ABORTED"
        self.error = error
        self.cause = cause
        self._finish()

    def _time_out(self) -> None:
        self.emit(self.root, "ExecutionTimedOut", "executionTimedOutEventDetails", {})
        self.status = "TIMED_OUT"
        self.error = errors.TIMEOUT
        self.cause = None
        self._finish()

    def _finish(self) -> None:
        self.stop_time = self._now
        for task_id in list(self._tasks):
            self._commands.append(CancelTask(task_id))
        self._tasks.clear()
        for timer_id in list(self._timers):
            self._commands.append(CancelTimer(timer_id))
        self._timers.clear()
        self._ready.clear()

    # --- timers ------------------------------------------------------------------------

    def _on_timer(self, timer_id: str) -> None:
        if timer_id == EXECUTION_TIMEOUT_TIMER:
            self._time_out()
            return
        frame = self._timers.pop(timer_id, None)
        if frame is None or (frame.timer_id != timer_id and not timer_id.startswith(frame.id)):
            return
        if ":timeout:" in timer_id or ":heartbeat:" in timer_id:
            tasks.on_task_timer(self, frame, timer_id)
            return
        frame.timer_id = None
        if frame.phase == Phase.RETRY:
            frame.phase = Phase.RUN
            self._advance_soon(frame)
        elif frame.phase == Phase.TIMER:
            waits.on_fired(self, frame)
            self._advance_soon(frame)

    def _advance_soon(self, frame: Frame) -> None:
        self._ready.append(frame)

    def cancel_task_timers(self, frame: Frame) -> None:
        for timer_id in [t for t, f in self._timers.items() if f is frame]:
            if ":timeout:" in timer_id or ":heartbeat:" in timer_id:
                del self._timers[timer_id]
                self._commands.append(CancelTimer(timer_id))

    def timers_of(self, frame: Frame) -> list[tuple[str, Frame]]:
        return [(t, f) for t, f in self._timers.items() if f is frame]

    def drop_timer(self, timer_id: str) -> None:
        if self._timers.pop(timer_id, None) is not None:
            self._commands.append(CancelTimer(timer_id))

    def forget_task(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)

    def cancel_frame(self, frame: Frame) -> None:
        """Stop a branch that is no longer needed (a sibling failed)."""
        if frame.phase == Phase.DONE:
            return
        frame.aborted_in = frame.phase
        frame.phase = Phase.DONE
        for task_id in [t for t, f in self._tasks.items() if f is frame]:
            del self._tasks[task_id]
            self._commands.append(CancelTask(task_id))
        for timer_id in [t for t, f in self._timers.items() if f is frame]:
            del self._timers[timer_id]
            self._commands.append(CancelTimer(timer_id))
        for child in frame.children:
            self.cancel_frame(child)

    # --- RedriveExecution (the frame tree work is ``interpreter.redrive``) ------------------

    def reopen(self, now: datetime) -> None:
        """A stopped execution runs again from ``now``: RUNNING, no result, no stop time."""
        self._now = now
        self._ready.clear()  # what a stopped execution had left there had nothing to do
        self.status = "RUNNING"
        self.output = None
        self.error = None
        self.cause = None
        self.stop_time = None

    def run_ready(self) -> list[Command]:
        """Run the frames made ready outside ``step`` until every one waits; the commands."""
        self._run()
        return self._take_commands()

    # --- views ---------------------------------------------------------------------------

    def current_state(self) -> State:
        return self.root.state
