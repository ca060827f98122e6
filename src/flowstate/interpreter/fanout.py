"""Parallel and Map states: child frames per branch or item, joined back in order."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flowstate.asl import errors
from flowstate.asl.errors import EvaluationError, StatesError
from flowstate.asl.model import JSONATA, MapState, ParallelState
from flowstate.interpreter import dataflow
from flowstate.interpreter.frames import Frame, Phase
from flowstate.interpreter.history import error_details
from flowstate.interpreter.messages import MapRunUpdated, RecordMapRun

if TYPE_CHECKING:
    from flowstate.interpreter.execution import Execution

__all__ = [
    "FanOut",
    "child_failed",
    "child_succeeded",
    "map_run_figures",
    "run_map",
    "run_parallel",
    "update_map_run",
]

_THRESHOLD_EXCEEDED = "The specified tolerated failure threshold was exceeded"


class FanOut:
    """Bookkeeping of a running Parallel or Map state."""

    __slots__ = (
        "distributed",
        "failures",
        "input",
        "items",
        "map_run_arn",
        "max_concurrency",
        "next_index",
        "pending",
        "results",
        "running",
        "tolerated_count",
        "tolerated_percentage",
    )

    def __init__(self, count: int) -> None:
        self.results: list[Any] = [None] * count
        self.pending = count
        self.running = 0
        self.next_index = 0
        self.items: list[Any] = []
        self.input: Any = None
        self.max_concurrency = 0
        self.distributed = False
        self.failures = 0
        self.tolerated_count: int | None = None
        self.tolerated_percentage: float | None = None
        self.map_run_arn = ""


def _state_input(execution: Execution, frame: Frame, state: Any) -> Any:
    raw = frame.raw_input
    if state.query_language == JSONATA:
        if getattr(state, "arguments", None) is not None:
            states = dataflow.states_binding(execution, frame, raw)
            return dataflow.evaluate_expression(execution, frame, state.arguments, states)
        return raw
    scope = dataflow.Scope(execution, frame)
    effective = dataflow.apply_input_path(state, raw, scope)
    parameters = getattr(state, "parameters", None)
    if parameters is not None and state.type == "Parallel":
        effective = parameters.evaluate(effective, scope)
    return effective


# --- Parallel ------------------------------------------------------------------------------


def run_parallel(execution: Execution, frame: Frame, state: ParallelState) -> None:
    effective = _state_input(execution, frame, state)
    frame.effective_input = effective
    started = execution.emit(frame, "ParallelStateStarted")
    fan = FanOut(len(state.branches))
    frame.map_state = fan
    frame.children = []
    frame.phase = Phase.CHILDREN
    for index, branch in enumerate(state.branches):
        child = Frame(
            execution.new_child_id(frame), branch, effective, parent=frame, child_index=index
        )
        child.last_event_id = started
        frame.children.append(child)
        execution.make_ready(child)


def _parallel_child_done(execution: Execution, frame: Frame, child: Frame) -> None:
    fan: FanOut = frame.map_state
    fan.results[child.child_index] = child.output
    fan.pending -= 1
    if fan.pending:
        return
    succeeded = execution.emit(frame, "ParallelStateSucceeded", previous=child.last_event_id)
    del succeeded
    _finish(execution, frame, fan.results, previous=child.last_event_id)


# --- Map -----------------------------------------------------------------------------------


def _integer_field(
    execution: Execution,
    frame: Frame,
    effective: Any,
    literal: Any,
    path: Any,
    expr: Any,
    field: str,
    kind: str,
) -> Any:
    """MaxConcurrency / ToleratedFailureCount / ToleratedFailurePercentage and their forms."""
    if expr is not None:
        states = dataflow.states_binding(execution, frame, frame.raw_input)
        value = dataflow.evaluate_expression(execution, frame, expr, states)
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        if kind == "integer":
            ok = ok and float(value).is_integer()
        if not ok:
            raise EvaluationError(
                errors.QUERY_EVALUATION_ERROR,
                f"The {field} field must evaluate to a {'non-negative integer' if kind == 'integer' else 'number'} "
                f"but was '{dataflow.dump(value)}'.",
            )
        return int(value) if kind == "integer" else float(value)
    if path is not None:
        value = path.evaluate(effective, dataflow.Scope(execution, frame))
        # AWS reads the referenced value as text: "1" is as good as 1.
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = int(value) if kind == "integer" else float(value)
        valid = not isinstance(value, bool) and isinstance(value, int | float)
        if kind == "integer":
            valid = valid and float(value).is_integer()
        if not valid:
            shown = value if isinstance(value, str) else dataflow.dump(value)
            raise EvaluationError(
                errors.RUNTIME,
                f'The {field}Path field refers to value "{shown}" which is not a valid '
                f"{'integer' if kind == 'integer' else 'float'}: {path.text}",
            )
        return int(value) if kind == "integer" else float(value)
    return literal


def _items(execution: Execution, frame: Frame, state: MapState, effective: Any) -> list[Any]:
    if state.query_language == JSONATA:
        if state.items_expr is not None:
            states = dataflow.states_binding(execution, frame, frame.raw_input)
            items = dataflow.evaluate_expression(execution, frame, state.items_expr, states)
            if not isinstance(items, list):
                unexpected = getattr(state.items_expr, "unexpected_type", None)
                if unexpected is not None:
                    failure = unexpected("array", items)
                    failure.location = "Items"
                    raise failure
                raise EvaluationError(
                    errors.QUERY_EVALUATION_ERROR,
                    f"Map state input must be an array but was: {dataflow.dump(items)}",
                )
        else:
            items = effective
        if not isinstance(items, list):
            raise EvaluationError(
                errors.QUERY_EVALUATION_ERROR,
                f"Map state input must be an array but was: {dataflow.dump(items)}",
            )
        return items
    if state.items_path is not None:
        items = state.items_path.evaluate(effective, dataflow.Scope(execution, frame))
    else:
        items = effective
    if not isinstance(items, list):
        raise EvaluationError(
            errors.RUNTIME,
            f"Map state input must be an array but was: {dataflow.dump(items)}",
        )
    return items


def _expr_text(expr: Any) -> str:
    return str(getattr(expr, "text", getattr(expr, "source", "")))


def run_map(execution: Execution, frame: Frame, state: MapState) -> None:
    effective = _state_input(execution, frame, state)
    frame.effective_input = effective
    items = _items(execution, frame, state, effective)
    max_concurrency = _integer_field(
        execution,
        frame,
        effective,
        state.max_concurrency,
        state.max_concurrency_path,
        state.max_concurrency_expr,
        "MaxConcurrency",
        "integer",
    )
    fan = FanOut(len(items))
    fan.items = items
    fan.input = effective
    fan.max_concurrency = max_concurrency or 0
    fan.distributed = state.processor_mode == "DISTRIBUTED"
    frame.map_state = fan
    frame.children = []
    frame.phase = Phase.CHILDREN
    execution.emit(frame, "MapStateStarted", "mapStateStartedEventDetails", {"length": len(items)})
    # AWS reads the tolerated-failure thresholds after MapStateStarted (recorded histories).
    tolerated_count = _integer_field(
        execution,
        frame,
        effective,
        state.tolerated_failure_count,
        state.tolerated_failure_count_path,
        state.tolerated_failure_count_expr,
        "ToleratedFailureCount",
        "integer",
    )
    tolerated_percentage = _integer_field(
        execution,
        frame,
        effective,
        state.tolerated_failure_percentage,
        state.tolerated_failure_percentage_path,
        state.tolerated_failure_percentage_expr,
        "ToleratedFailurePercentage",
        "float",
    )
    if tolerated_percentage is not None and not 0 <= tolerated_percentage <= 100:
        raise EvaluationError(
            errors.RUNTIME, "ToleratedFailurePercentage must be between 0 and 100."
        )
    fan.tolerated_count = tolerated_count
    fan.tolerated_percentage = tolerated_percentage
    if fan.distributed:
        info = execution.info
        label = state.label or execution.entropy.uuid4()[:8]
        fan.map_run_arn = (
            info.state_machine_arn.replace(":stateMachine:", ":mapRun:", 1)
            + f"/{label}:{execution.entropy.uuid4()}"
        )
        execution.emit(
            frame, "MapRunStarted", "mapRunStartedEventDetails", {"mapRunArn": fan.map_run_arn}
        )
        execution.map_runs_started += 1
    if not items:
        _map_done(execution, frame, frame.last_event_id)
        return
    _launch(execution, frame, state, frame.last_event_id)


def _launch(execution: Execution, frame: Frame, state: MapState, previous: int) -> None:
    """Start iterations up to MaxConcurrency."""
    fan: FanOut = frame.map_state
    processor = state.item_processor
    assert processor is not None
    limit = fan.max_concurrency or len(fan.items)
    while fan.next_index < len(fan.items) and fan.running < limit:
        index = fan.next_index
        fan.next_index += 1
        item = fan.items[index]
        try:
            item_input = _item_input(execution, frame, state, index, item, fan.input)
        except StatesError as failure:
            fan.failures += 1  # the item that could not start counts as failed
            _record_map_run(execution, frame, "FAILED")
            _abort_children(execution, frame)
            execution.state_failed(frame, failure)
            execution.make_ready(frame)
            return
        fan.running += 1
        child = Frame(
            execution.new_child_id(frame),
            processor,
            item_input,
            parent=frame,
            child_index=index,
            silent=fan.distributed or frame.silent,
        )
        if not fan.distributed:
            child.last_event_id = execution.emit(
                frame,
                "MapIterationStarted",
                "mapIterationStartedEventDetails",
                {"index": index, "name": state.name},
                previous=previous,
            )
        frame.children.append(child)
        execution.make_ready(child)


def _item_input(
    execution: Execution, frame: Frame, state: MapState, index: int, item: Any, effective: Any
) -> Any:
    if state.query_language == JSONATA:
        if state.item_selector_expr is None:
            return item
        states = dataflow.states_binding(execution, frame, frame.raw_input)
        context = dict(states["context"])
        context["Map"] = {"Item": {"Index": index, "Value": item}}
        states["context"] = context
        return dataflow.evaluate_expression(execution, frame, state.item_selector_expr, states)
    if state.item_selector is None:
        return item
    frame.context_extra = {"Map": {"Item": {"Index": index, "Value": item}}}
    try:
        return state.item_selector.evaluate(effective, dataflow.Scope(execution, frame))
    finally:
        frame.context_extra = None


def _map_child_done(execution: Execution, frame: Frame, child: Frame) -> None:
    fan: FanOut = frame.map_state
    state = frame.state
    assert isinstance(state, MapState)
    fan.results[child.child_index] = child.output
    fan.pending -= 1
    fan.running -= 1
    previous = child.last_event_id
    last = previous
    if not fan.distributed:
        last = execution.emit(
            frame,
            "MapIterationSucceeded",
            "mapIterationSucceededEventDetails",
            {"index": child.child_index, "name": state.name},
            previous=previous,
        )
    if fan.pending == 0:
        _map_done(execution, frame, last)
        return
    _launch(execution, frame, state, previous)


def _map_done(execution: Execution, frame: Frame, previous: int) -> None:
    fan: FanOut = frame.map_state
    if fan.distributed:
        previous = execution.emit(frame, "MapRunSucceeded", previous=previous)
        _record_map_run(execution, frame, "SUCCEEDED")
    execution.emit(frame, "MapStateSucceeded", previous=previous)
    _finish(execution, frame, fan.results, previous=previous)


def _tolerated(fan: FanOut) -> bool:
    if not fan.distributed:
        return False
    total = len(fan.items)
    if fan.tolerated_count is not None and fan.failures <= fan.tolerated_count:
        return True
    if fan.tolerated_percentage is not None and total:
        return fan.failures * 100.0 / total <= fan.tolerated_percentage
    return False


def _map_child_failed(execution: Execution, frame: Frame, child: Frame) -> None:
    fan: FanOut = frame.map_state
    state = frame.state
    assert isinstance(state, MapState)
    fan.running -= 1
    if not fan.distributed:
        execution.emit(
            frame,
            "MapIterationFailed",
            "mapIterationFailedEventDetails",
            {"index": child.child_index, "name": state.name},
            previous=child.last_event_id,
        )
    fan.failures += 1
    if _tolerated(fan):
        fan.results[child.child_index] = {
            "Error": child.error,
            "Cause": child.cause,
        }
        fan.pending -= 1
        if fan.pending == 0:
            _map_done(execution, frame, frame.last_event_id)
        else:
            _launch(execution, frame, state, frame.last_event_id)
        return
    _fail_map(execution, frame, child.error, child.cause, previous=child.last_event_id)


def _fail_map(
    execution: Execution, frame: Frame, error: str | None, cause: str | None, previous: int
) -> None:
    """The Map state fails with ``error``: its other iterations stop, its run is FAILED."""
    fan: FanOut = frame.map_state
    _abort_children(execution, frame)
    if fan.distributed:
        execution.emit(
            frame,
            "MapRunFailed",
            "mapRunFailedEventDetails",
            error_details(error, cause),
        )
        _record_map_run(execution, frame, "FAILED")
        if fan.tolerated_count is not None or fan.tolerated_percentage is not None:
            error = errors.EXCEED_TOLERATED_FAILURE_THRESHOLD
            cause = _THRESHOLD_EXCEEDED
    frame.phase = Phase.RUN
    if not execution.will_retry(frame, error):
        # AWS records MapStateFailed only when the failure is final (no retry follows).
        # AWS records MapStateFailed without details, after the failing iteration's events.
        execution.emit(frame, "MapStateFailed", previous=previous)
    execution.handle_error(frame, error, cause)
    execution.make_ready(frame)


# --- Map runs (Distributed mode) -------------------------------------------------------------


def map_run_figures(fan: FanOut, status: str, stopped_at: datetime | None) -> dict[str, Any]:
    """What DescribeMapRun reports of a run: status, limits, and where its items stand.

    Items still waiting stay ``pending`` once the run has ended and those still running are
    ``aborted`` (recorded AWS: a failed run keeps pending items, an aborted one too).
    """
    total = len(fan.items)
    in_flight = fan.running
    return {
        "status": status,
        "stopped_at": stopped_at.isoformat() if stopped_at is not None else None,
        "max_concurrency": fan.max_concurrency,
        "tolerated_count": fan.tolerated_count,
        "tolerated_percentage": fan.tolerated_percentage,
        "total": total,
        "pending": total - fan.next_index,
        "running": in_flight if status == "RUNNING" else 0,
        "succeeded": fan.next_index - in_flight - fan.failures,
        "failed": fan.failures,
        "aborted": 0 if status == "RUNNING" else in_flight,
    }


def _record_map_run(execution: Execution, frame: Frame, status: str) -> None:
    """Hand the runtime the figures of a run that just ended, before its FanOut goes."""
    fan: FanOut = frame.map_state
    # Only a run whose MapRunStarted is in the history (not one inside a silent iteration)
    # has a row to be described by.
    if not fan.distributed or frame.silent:
        return
    figures = map_run_figures(fan, status, execution.now)
    execution.command(RecordMapRun(fan.map_run_arn, figures))


def _running_map_run(root: Frame, map_run_arn: str) -> Frame | None:
    stack = [root]
    while stack:
        frame = stack.pop()
        fan = frame.map_state
        if (
            frame.phase == Phase.CHILDREN
            and isinstance(fan, FanOut)
            and fan.map_run_arn == map_run_arn
        ):
            return frame
        stack.extend(child for child in frame.children if child.phase != Phase.DONE)
    return None


def update_map_run(execution: Execution, event: MapRunUpdated) -> None:
    """UpdateMapRun: new limits take effect at once. A higher MaxConcurrency starts waiting
    items now; a lower threshold that the failures so far exceed fails the run now."""
    frame = _running_map_run(execution.root, event.map_run_arn)
    if frame is None:
        return  # the run ended before the update arrived: nothing left to change
    fan: FanOut = frame.map_state
    if event.max_concurrency is not None:
        fan.max_concurrency = event.max_concurrency
    if event.tolerated_failure_count is not None:
        fan.tolerated_count = event.tolerated_failure_count
    if event.tolerated_failure_percentage is not None:
        fan.tolerated_percentage = event.tolerated_failure_percentage
    if fan.failures and not _tolerated(fan):
        _fail_map(
            execution,
            frame,
            errors.EXCEED_TOLERATED_FAILURE_THRESHOLD,
            _THRESHOLD_EXCEEDED,
            previous=frame.last_event_id,
        )
        return
    state = frame.state
    assert isinstance(state, MapState)
    _launch(execution, frame, state, frame.last_event_id)


# --- shared --------------------------------------------------------------------------------


def _abort_children(execution: Execution, frame: Frame) -> None:
    for child in frame.children:
        if child.phase != Phase.DONE:
            if child.phase not in (Phase.ENTER,) and not child.silent:
                execution.emit(child, child.state.type + "StateAborted")
            _abort_map_runs(execution, child)
            execution.cancel_frame(child)


def _abort_map_runs(execution: Execution, branch: Frame) -> None:
    """Distributed Maps running inside a branch that is being stopped: their runs are ABORTED."""
    stack = [branch]
    while stack:
        frame = stack.pop()
        if frame.phase == Phase.CHILDREN and isinstance(frame.map_state, FanOut):
            _record_map_run(execution, frame, "ABORTED")
        stack.extend(child for child in frame.children if child.phase != Phase.DONE)


def _finish(execution: Execution, frame: Frame, results: list[Any], previous: int) -> None:
    """Result handling of Parallel/Map and the state's exit."""
    state: Any = frame.state
    frame.phase = Phase.RUN
    frame.map_state = None
    frame.children = []
    try:
        raw = frame.raw_input
        if state.query_language == JSONATA:
            states = dataflow.states_binding(execution, frame, raw)
            states["result"] = results
            assigned = dataflow.jsonata_assign(execution, frame, state.assign, states)
            output = dataflow.jsonata_output(execution, frame, state.output, states, results)
        else:
            scope = dataflow.Scope(execution, frame)
            result: Any = results
            if state.result_selector is not None:
                result = state.result_selector.evaluate(result, scope)
            output = dataflow.apply_result_path(state, raw, result)
            output = dataflow.apply_output_path(state, output, scope)
            assigned = None
            if state.assign is not None:
                assigned = state.assign.evaluate(result, scope)
    except StatesError as failure:
        execution.state_failed(frame, failure)
        execution.make_ready(frame)
        return
    execution.exit_state(frame, output, state.next, assigned, previous=previous)
    execution.make_ready(frame)


def child_succeeded(execution: Execution, frame: Frame, child: Frame) -> None:
    if frame.phase != Phase.CHILDREN:
        return
    if frame.state.type == "Parallel":
        _parallel_child_done(execution, frame, child)
    else:
        _map_child_done(execution, frame, child)


def child_failed(execution: Execution, frame: Frame, child: Frame) -> None:
    if frame.phase != Phase.CHILDREN:
        return
    if frame.state.type == "Parallel":
        _abort_children(execution, frame)
        if not execution.will_retry(frame, child.error):
            # AWS records ParallelStateFailed without details.
            execution.emit(frame, "ParallelStateFailed", previous=child.last_event_id)
        frame.phase = Phase.RUN
        execution.handle_error(frame, child.error, child.cause)
        execution.make_ready(frame)
    else:
        _map_child_failed(execution, frame, child)
