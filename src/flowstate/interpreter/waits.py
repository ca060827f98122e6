"""Wait states: compute an absolute deadline, arm a durable timer, continue when it fires."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flowstate.asl import errors
from flowstate.asl.errors import EvaluationError
from flowstate.asl.model import JSONATA, WaitState
from flowstate.interpreter import dataflow
from flowstate.interpreter.frames import Frame, Phase

if TYPE_CHECKING:
    from flowstate.interpreter.execution import Execution

__all__ = ["on_fired", "parse_timestamp", "run"]

# AWS accepts ISO-8601 "extended offset date-time": a date, 'T', a time with optional
# fraction, and a mandatory offset ('Z' or ±hh:mm).
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|z|[+-]\d{2}:\d{2})\Z"
)
# The longest delay AWS accepts is what fits a signed 32-bit number of seconds.
_MAX_DELAY_SECONDS = 2**31 - 1


def parse_timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    match = _TIMESTAMP.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro
        )
    except ValueError:
        return None
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 18 or minutes > 59:
            return None
        moment -= sign * timedelta(hours=hours, minutes=minutes)
    return moment.replace(tzinfo=UTC)


def _deadline(execution: Execution, frame: Frame, state: WaitState, effective: Any) -> datetime:
    now = execution.now
    if state.query_language == JSONATA:
        states = dataflow.states_binding(execution, frame, frame.raw_input)
        if state.seconds_expr is not None:
            value = dataflow.evaluate_expression(execution, frame, state.seconds_expr, states)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise EvaluationError(
                    errors.QUERY_EVALUATION_ERROR,
                    "The Seconds field must evaluate to a non-negative integer but was "
                    f"'{dataflow.dump(value)}'.",
                )
            return _after(now, int(value))
        if state.timestamp_expr is not None:
            value = dataflow.evaluate_expression(execution, frame, state.timestamp_expr, states)
            moment = parse_timestamp(value)
            if moment is None:
                raise EvaluationError(
                    errors.QUERY_EVALUATION_ERROR,
                    "The Timestamp field cannot be parsed as an ISO-8601 extended offset "
                    f"date-time format string: {value}",
                )
            return _until(now, moment)
    if state.seconds is not None:
        return _after(now, state.seconds)
    if state.timestamp is not None:
        moment = parse_timestamp(state.timestamp)
        if moment is None:
            raise EvaluationError(
                errors.RUNTIME,
                "The Timestamp field cannot be parsed as an ISO-8601 extended offset "
                f"date-time format string: {state.timestamp}",
            )
        return _until(now, moment)
    scope = dataflow.Scope(execution, frame)
    if state.seconds_path is not None:
        from flowstate.asl.paths import NOT_FOUND

        path = state.seconds_path
        value = path.evaluate_or_none(effective, scope)  # type: ignore[attr-defined]
        if value is NOT_FOUND:
            raise EvaluationError(
                errors.RUNTIME,
                f"The SecondsPath parameter does not reference an input value: {path.text}",
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise EvaluationError(
                errors.RUNTIME,
                "The SecondsPath parameter cannot be parsed as a long value: "
                f"{path.text} == {_show(value)}",
            )
        return _after(now, value)
    if state.timestamp_path is not None:
        from flowstate.asl.paths import NOT_FOUND

        path = state.timestamp_path
        value = path.evaluate_or_none(effective, scope)  # type: ignore[attr-defined]
        if value is NOT_FOUND:
            raise EvaluationError(
                errors.RUNTIME,
                f"The TimestampPath parameter does not reference an input value: {path.text}",
            )
        moment = parse_timestamp(value)
        if moment is None:
            raise EvaluationError(
                errors.RUNTIME,
                "The TimestampPath parameter does not reference a valid ISO-8601 extended "
                f"offset date-time format string: {path.text} == {_show(value)}",
            )
        return _until(now, moment)
    return now


def _show(value: Any) -> str:
    return value if isinstance(value, str) else dataflow.dump(value)


def _after(now: datetime, seconds: int) -> datetime:
    if seconds > _MAX_DELAY_SECONDS:
        raise EvaluationError(errors.RUNTIME, "Wait state delay is too long.")
    return now + timedelta(seconds=seconds)


def _until(now: datetime, moment: datetime) -> datetime:
    if (moment - now).total_seconds() > _MAX_DELAY_SECONDS:
        raise EvaluationError(errors.RUNTIME, "Wait state delay is too long.")
    return moment


def run(execution: Execution, frame: Frame, state: WaitState) -> None:
    if state.query_language == JSONATA:
        effective = frame.raw_input
    else:
        effective = dataflow.apply_input_path(
            state, frame.raw_input, dataflow.Scope(execution, frame)
        )
    frame.effective_input = effective
    fire_at = _deadline(execution, frame, state, effective)
    timer_id = f"{frame.id}:wait:{frame.entered_event_id}"
    frame.timer_id = timer_id
    frame.phase = Phase.TIMER
    execution.register_timer(timer_id, frame, fire_at)


def on_fired(execution: Execution, frame: Frame) -> None:
    state = frame.state
    assert isinstance(state, WaitState)
    frame.phase = Phase.RUN
    try:
        if state.query_language == JSONATA:
            states = dataflow.states_binding(execution, frame, frame.raw_input)
            assigned = dataflow.jsonata_assign(execution, frame, state.assign, states)
            output = dataflow.jsonata_output(
                execution, frame, state.output, states, frame.raw_input
            )
        else:
            scope = dataflow.Scope(execution, frame)
            effective = frame.effective_input
            output = dataflow.apply_output_path(state, effective, scope)
            assigned = None
            if state.assign is not None:
                assigned = state.assign.evaluate(effective, scope)
    except errors.StatesError as failure:
        execution.state_failed(frame, failure)
        return
    execution.exit_state(frame, output, state.next, assigned)
