"""Input and output processing: InputPath → Parameters → result → ResultSelector → ResultPath
→ OutputPath in JSONPath states; ``$states`` → Arguments → Output and Assign in JSONata ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from flowstate.asl import errors, scope
from flowstate.asl.errors import EvaluationError, StatesError
from flowstate.asl.model import JSONATA, Catcher, Evaluable, Expression, State
from flowstate.interpreter.frames import Frame
from flowstate.interpreter.history import dump_json, json_size

if TYPE_CHECKING:
    from flowstate.interpreter.execution import Execution

__all__ = [
    "Scope",
    "apply_catcher",
    "apply_input_path",
    "apply_output_path",
    "apply_result_path",
    "build_context",
    "dump",
    "evaluate_expression",
    "jsonata_assign",
    "jsonata_output",
    "states_binding",
]

dump = dump_json

MAX_PAYLOAD_BYTES = 256 * 1024
_RETRYABLE = frozenset({"Task", "Parallel", "Map"})


def build_context(execution: Execution, frame: Frame) -> dict[str, Any]:
    """The context object (``$$``) as AWS shows it to the current state of ``frame``."""
    info = execution.info
    entered = frame.entered_time if frame.entered_time is not None else execution.now
    from flowstate.interpreter.execution import format_timestamp

    execution_part: dict[str, Any] = {
        "Id": info.arn,
        "Input": execution.input,
        "StartTime": info.start_time_text,
        "Name": info.name,
        "RoleArn": info.role_arn,
    }
    if not info.synchronous:  # AWS omits the count for synchronous Express executions
        execution_part["RedriveCount"] = info.redrive_count
    state_part: dict[str, Any] = {
        "EnteredTime": format_timestamp(entered),
        "Name": frame.state_name,
    }
    if frame.state.type in _RETRYABLE:  # only states that can retry show RetryCount
        state_part["RetryCount"] = sum(frame.attempts) if frame.attempts else 0
    context: dict[str, Any] = {
        "Execution": execution_part,
        "StateMachine": {"Id": info.state_machine_arn, "Name": info.state_machine_name},
        "State": state_part,
    }
    if frame.context_extra:
        context.update(frame.context_extra)
    return context


class Scope(scope.Scope):
    """A scope whose context object is built only if an expression asks for it."""

    __slots__ = ("_execution", "_frame")

    def __init__(self, execution: Execution, frame: Frame) -> None:
        # Deliberately not calling Scope.__init__: ``context`` is computed lazily.
        self._execution = execution
        self._frame = frame
        self._context = None
        self.variables = frame.scope_variables
        self.entropy = execution.entropy

    @property
    def context(self) -> Any:
        if self._context is None:
            self._context = build_context(self._execution, self._frame)
        return self._context


# --- JSONPath ------------------------------------------------------------------------------


def apply_input_path(state: State, raw: Any, scope: scope.Scope) -> Any:
    if state.input_path_is_null:
        return {}
    path = state.input_path
    if path is None:
        return raw
    return path.evaluate(raw, scope)


def apply_output_path(state: State, value: Any, scope: scope.Scope) -> Any:
    if state.output_path_is_null:
        return {}
    path = state.output_path
    if path is None:
        return value
    return path.evaluate(value, scope)


def apply_result_path(state: Any, raw: Any, result: Any) -> Any:
    """Place ``result`` into the state input ``raw`` as ``ResultPath`` says."""
    if state.result_path_is_null:
        return raw  # AWS: "ResultPath": null discards the result and keeps the input
    path = state.result_path
    if path is None:
        return result
    return path.assign(raw, result)


def evaluate_fail_path(path: Evaluable, raw: Any, scope: scope.Scope, field: str) -> Any:
    from flowstate.asl.paths import NOT_FOUND

    evaluate_or_none = getattr(path, "evaluate_or_none", None)
    if evaluate_or_none is None:  # an intrinsic function (AWS allows some in ErrorPath/CausePath)
        return path.evaluate(raw, scope)
    value = evaluate_or_none(raw, scope)
    if value is NOT_FOUND:
        raise EvaluationError(
            errors.RUNTIME,
            f"The JSONPath '{path.text}' specified for the field '{field}' could not be found "
            f"in the input '{dump(raw)}'",
        )
    return value


# --- JSONata -------------------------------------------------------------------------------


def states_binding(execution: Execution, frame: Frame, raw: Any) -> dict[str, Any]:
    return {"input": raw, "context": build_context(execution, frame)}


def evaluate_expression(
    execution: Execution, frame: Frame, expr: Expression, states: Mapping[str, Any]
) -> Any:
    return expr.evaluate(states, frame.scope_variables, entropy=execution.entropy)  # type: ignore[call-arg]


def jsonata_assign(
    execution: Execution, frame: Frame, assign: Any, states: Mapping[str, Any]
) -> dict[str, Any] | None:
    if assign is None:
        return None
    value = evaluate_expression(execution, frame, assign, states)
    if not isinstance(value, dict):
        raise EvaluationError(
            errors.QUERY_EVALUATION_ERROR, "The Assign field must evaluate to an object."
        )
    return value


def jsonata_output(
    execution: Execution,
    frame: Frame,
    output: Expression | None,
    states: Mapping[str, Any],
    default: Any,
) -> Any:
    if output is None:
        return default
    return evaluate_expression(execution, frame, output, states)


# --- Catch ---------------------------------------------------------------------------------


def apply_catcher(
    execution: Execution, frame: Frame, catcher: Catcher, error: str | None, cause: str | None
) -> None:
    """Route a handled error to the catcher's Next with the error output placed as AWS does."""
    error_output: dict[str, Any] = {"Error": error if error is not None else ""}
    error_output["Cause"] = cause if cause is not None else ""
    raw = frame.raw_input
    state = frame.state
    assigned = None
    try:
        if state.query_language == JSONATA:
            states = states_binding(execution, frame, raw)
            states["errorOutput"] = error_output
            assigned = jsonata_assign(execution, frame, catcher.assign, states)
            output = jsonata_output(execution, frame, catcher.output, states, error_output)
        else:
            if catcher.result_path_is_null:
                output = raw
            elif catcher.result_path is None:
                output = error_output
            else:
                output = catcher.result_path.assign(raw, error_output)
            if catcher.assign is not None:
                assigned = catcher.assign.evaluate(error_output, Scope(execution, frame))
    except StatesError as failure:
        # A failure while catching cannot be caught again: the frame fails.
        cause_text = failure.cause
        if isinstance(failure, EvaluationError):
            cause_text = execution.located_cause(frame, failure.cause)
        execution.frame_failed(frame, failure.error, cause_text)
        return
    execution.exit_state(frame, output, catcher.next, assigned)


def check_size(value: Any, state_name: str) -> None:
    """AWS's 256 KiB quota on a state's result (``States.DataLimitExceeded``)."""
    if _exceeds(value, MAX_PAYLOAD_BYTES):
        raise StatesError(
            errors.DATA_LIMIT_EXCEEDED,
            f"The state/task '{state_name}' returned a result with a size exceeding the "
            "maximum number of bytes service limit.",
        )


MAX_VARIABLE_BYTES = 256 * 1024  # AWS: one variable, and all variables of one Assign


def check_assigned_size(assigned: Mapping[str, Any]) -> None:
    """AWS's quotas on variables: 256 KiB per variable and per Assign field."""
    total = 0
    for name, value in assigned.items():
        size = json_size(value)
        if size > MAX_VARIABLE_BYTES:
            raise EvaluationError(
                errors.DATA_LIMIT_EXCEEDED,
                f"The size of the variable '{name}' ({size} bytes) exceeds the maximum of "
                f"{MAX_VARIABLE_BYTES} bytes.",
            )
        total += size
    if total > MAX_VARIABLE_BYTES:
        raise EvaluationError(
            errors.DATA_LIMIT_EXCEEDED,
            f"The combined size of the variables assigned by the state ({total} bytes) exceeds "
            f"the maximum of {MAX_VARIABLE_BYTES} bytes.",
        )


def check_constant_size(state: Any) -> None:
    """The quota on a Pass state's literal ``Result``, measured exactly only when the size
    taken at parse time says it may be over (within a margin: the two encoders may write a
    number differently)."""
    if state.result_size > MAX_PAYLOAD_BYTES // 2:
        check_size(state.result, state.name)


def _exceeds(value: Any, limit: int) -> bool:
    if isinstance(value, str):
        return len(value) > limit // 4 and len(value.encode("utf-8", "surrogatepass")) + 2 > limit
    if isinstance(value, (dict, list)):
        try:
            size = len(orjson.dumps(value))
        except TypeError:  # (what orjson refuses: the exact size, from the stdlib's text)
            return json_size(value) > limit
        # dump_json's text differs from orjson's only where orjson writes null for NaN or an
        # infinity (at most "-Infinity": 9 bytes for 4), so far below the limit it is not
        # needed (this runs on every state's result).
        return size * 3 >= limit and json_size(value) > limit
    return False
