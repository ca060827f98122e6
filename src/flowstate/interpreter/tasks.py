"""Task states: schedule the resource, then shape its result, as AWS records it.

The history a Task writes depends on the kind of resource:

* a Lambda function ARN (``arn:aws:lambda:...:function:NAME``): ``LambdaFunction*`` events;
* an activity ARN (``arn:aws:states:...:activity:NAME``): ``Activity*`` events;
* a service integration (``arn:aws:states:::SERVICE:ACTION[.sync|.waitForTaskToken]``):
  ``Task*`` events with ``resourceType`` SERVICE and ``resource`` ACTION.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flowstate.asl import errors
from flowstate.asl.errors import EvaluationError
from flowstate.asl.model import JSONATA, TaskState
from flowstate.interpreter import dataflow
from flowstate.interpreter.frames import Frame, Phase
from flowstate.interpreter.history import Payload, error_details
from flowstate.interpreter.messages import ScheduleTask
from flowstate.interpreter.tokens import make_task_token

if TYPE_CHECKING:
    from flowstate.interpreter.execution import Execution

__all__ = [
    "ResourceKind",
    "on_failed",
    "on_started",
    "on_submitted",
    "on_succeeded",
    "resource_kind",
    "run",
]


class ResourceKind:
    __slots__ = ("family", "region", "resource", "resource_type", "token")

    def __init__(
        self, family: str, resource: str, resource_type: str, region: str, token: bool
    ) -> None:
        self.family = family  # "lambda" | "activity" | "service"
        self.resource = resource
        self.resource_type = resource_type
        self.region = region
        self.token = token  # .waitForTaskToken


# Resource ARN -> its kind; an ARN without a region (``arn:aws:states:::lambda:invoke``) is
# kept per default region, as its kind holds the execution's.
_KINDS: dict[str, ResourceKind] = {}
_REGIONLESS: dict[tuple[str, str], ResourceKind] = {}


def resource_kind(arn: str, default_region: str) -> ResourceKind:
    kind = _KINDS.get(arn)
    if kind is not None:
        return kind
    kind = _REGIONLESS.get((arn, default_region))
    if kind is not None:
        return kind
    parts = arn.split(":", 6)
    service = parts[2] if len(parts) > 2 else ""
    region = parts[3] if len(parts) > 3 and parts[3] else default_region
    if service == "lambda" and len(parts) > 5 and parts[5] == "function":
        kind = ResourceKind("lambda", arn, "lambda", region, False)
    elif service == "states" and len(parts) > 5 and parts[5].startswith("activity"):
        kind = ResourceKind("activity", arn, "activity", region, False)
    elif service == "states" and len(parts) > 6 and parts[4] == "":
        resource_type, action = parts[5], parts[6]
        kind = ResourceKind(
            "service", action, resource_type, region, action.endswith(".waitForTaskToken")
        )
    else:
        kind = ResourceKind("service", arn, service, region, False)
    if len(parts) > 3 and parts[3]:
        _KINDS[arn] = kind
    elif len(_REGIONLESS) < 10_000:  # (resources come from definitions)
        _REGIONLESS[(arn, default_region)] = kind
    return kind


def _timeout_value(
    execution: Execution, frame: Frame, state: TaskState, heartbeat: bool
) -> int | None:
    literal = state.heartbeat_seconds if heartbeat else state.timeout_seconds
    path = state.heartbeat_seconds_path if heartbeat else state.timeout_seconds_path
    expr = state.heartbeat_seconds_expr if heartbeat else state.timeout_seconds_expr
    if path is None and expr is None:
        return literal
    field = "HeartbeatSeconds" if heartbeat else "TimeoutSeconds"
    if expr is not None:
        states = dataflow.states_binding(execution, frame, frame.raw_input)
        value = dataflow.evaluate_expression(execution, frame, expr, states)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
            raise EvaluationError(
                errors.QUERY_EVALUATION_ERROR,
                f"The {field} field must evaluate to a positive integer but was "
                f"'{dataflow.dump(value)}'.",
            )
        return int(value)
    if path is not None:
        value = path.evaluate(frame.effective_input, dataflow.Scope(execution, frame))
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EvaluationError(
                errors.RUNTIME,
                f"The {field}Path parameter does not reference a positive integer: "
                f"{path.text} == {dataflow.dump(value)}",
            )
        return value
    return literal


def _parameters(execution: Execution, frame: Frame, state: TaskState) -> Any:
    raw = frame.raw_input
    if state.query_language == JSONATA:
        frame.effective_input = raw
        if state.arguments is None:
            return raw
        states = dataflow.states_binding(execution, frame, raw)
        return dataflow.evaluate_expression(execution, frame, state.arguments, states)
    if state.input_path is None and state.parameters is None:  # nothing needs a scope
        effective = {} if state.input_path_is_null else raw
        frame.effective_input = effective
        return effective
    scope = dataflow.Scope(execution, frame)
    effective = dataflow.apply_input_path(state, raw, scope)
    frame.effective_input = effective
    if state.parameters is None:
        return effective
    return state.parameters.evaluate(effective, scope)


def run(execution: Execution, frame: Frame, state: TaskState) -> None:
    """Evaluate the task's input and schedule it."""
    kind = resource_kind(state.resource, execution.region)
    task_id = f"{frame.id}:{execution.event_count + 1}"
    token = None
    if kind.token or kind.family == "activity":
        # An activity worker answers with a token too (GetActivityTask hands it out).
        token = make_task_token(execution.info.arn, task_id, execution.entropy.uuid4())
    if kind.token:
        # $$.Task.Token: seen by Parameters/Arguments, ResultSelector and Output of this
        # attempt only.
        frame.context_extra = {"Task": {"Token": token}}
    try:
        parameters = _parameters(execution, frame, state)
        timeout = _timeout_value(execution, frame, state, heartbeat=False)
        heartbeat = _timeout_value(execution, frame, state, heartbeat=True)
        known = execution.known_activities
        if kind.family == "activity" and known is not None and state.resource not in known:
            # Recorded AWS: refused before ActivityScheduled, an uncatchable runtime error.
            raise EvaluationError(errors.RUNTIME, f"The activity {state.resource} does not exist.")
    except errors.StatesError:
        frame.context_extra = None
        raise
    if kind.family == "lambda":
        details: dict[str, Any] = {
            "input": Payload(parameters),
            "inputDetails": {"truncated": False},
            "resource": kind.resource,
        }
        if timeout is not None:
            details["timeoutInSeconds"] = timeout
        execution.emit(
            frame, "LambdaFunctionScheduled", "lambdaFunctionScheduledEventDetails", details
        )
    elif kind.family == "activity":
        details = {
            "input": Payload(parameters),
            "inputDetails": {"truncated": False},
            "resource": kind.resource,
        }
        if timeout is not None:
            details["timeoutInSeconds"] = timeout
        if heartbeat is not None:
            details["heartbeatInSeconds"] = heartbeat
        execution.emit(frame, "ActivityScheduled", "activityScheduledEventDetails", details)
    else:
        details = {
            "parameters": Payload(parameters),
            "region": kind.region,
            "resource": kind.resource,
            "resourceType": kind.resource_type,
        }
        if timeout is not None:
            details["timeoutInSeconds"] = timeout
        if heartbeat is not None:
            details["heartbeatInSeconds"] = heartbeat
        execution.emit(frame, "TaskScheduled", "taskScheduledEventDetails", details)
    frame.task_id = task_id
    frame.phase = Phase.TASK
    execution.register_task(task_id, frame)
    context = None
    if kind.token:
        context = dataflow.build_context(execution, frame)
    attempt = sum(frame.attempts) if frame.attempts else 0
    execution.command(
        ScheduleTask(
            task_id=task_id,
            resource=state.resource,
            parameters=parameters,
            state_name=state.name,
            timeout_seconds=timeout,
            heartbeat_seconds=heartbeat,
            task_token=token,
            idempotency_key=f"{execution.info.arn}/{task_id}/{attempt}",
            context=context,
        )
    )
    now = execution.now
    if timeout is not None:
        execution.register_timer(
            f"{frame.id}:timeout:{task_id}", frame, now + timedelta(seconds=timeout)
        )
    if heartbeat is not None:
        execution.register_timer(
            f"{frame.id}:heartbeat:{task_id}:{heartbeat}:0",
            frame,
            now + timedelta(seconds=heartbeat),
        )


def _kind(execution: Execution, frame: Frame) -> ResourceKind:
    return resource_kind(frame.state.resource, execution.region)  # type: ignore[attr-defined]


def on_started(execution: Execution, frame: Frame, worker_name: str | None = None) -> None:
    kind = _kind(execution, frame)
    if kind.family == "lambda":
        execution.emit(frame, "LambdaFunctionStarted")
    elif kind.family == "activity":
        details = {} if worker_name is None else {"workerName": worker_name}
        execution.emit(frame, "ActivityStarted", "activityStartedEventDetails", details)
        # The worker has HeartbeatSeconds from the moment it took the task.
        on_heartbeat(execution, frame)
    else:
        execution.emit(
            frame,
            "TaskStarted",
            "taskStartedEventDetails",
            {"resource": kind.resource, "resourceType": kind.resource_type},
        )


def on_submitted(execution: Execution, frame: Frame, output: Any) -> None:
    """``.sync``/``.waitForTaskToken``: the call was made; AWS records its response."""
    kind = _kind(execution, frame)
    if kind.family != "service":
        return
    execution.emit(
        frame,
        "TaskSubmitted",
        "taskSubmittedEventDetails",
        {
            "output": Payload(output),
            "outputDetails": {"truncated": False},
            "resource": kind.resource,
            "resourceType": kind.resource_type,
        },
    )


def on_heartbeat(execution: Execution, frame: Frame) -> None:
    """A heartbeat re-arms the heartbeat timer (nothing is recorded in history)."""
    for timer_id in [t for t, f in execution.timers_of(frame) if ":heartbeat:" in t]:
        execution.drop_timer(timer_id)
        base, seconds, count = timer_id.rsplit(":", 2)
        execution.register_timer(
            f"{base}:{seconds}:{int(count) + 1}",
            frame,
            execution.now + timedelta(seconds=int(seconds)),
        )


# History event names per resource family: (type prefix, details key prefix).
_FAMILY_EVENTS = {
    "lambda": ("LambdaFunction", "lambdaFunction"),
    "activity": ("Activity", "activity"),
    "service": ("Task", "task"),
}


def _record_outcome(
    execution: Execution, frame: Frame, outcome: str, details: dict[str, Any]
) -> None:
    """``<Family>Succeeded|Failed|TimedOut``; service integrations also name the resource."""
    kind = _kind(execution, frame)
    type_prefix, key_prefix = _FAMILY_EVENTS[kind.family]
    if kind.family == "service":
        details = {"resource": kind.resource, "resourceType": kind.resource_type, **details}
    execution.emit(frame, type_prefix + outcome, f"{key_prefix}{outcome}EventDetails", details)


def on_succeeded(execution: Execution, frame: Frame, result: Any) -> None:
    kind = _kind(execution, frame)
    state = frame.state
    assert isinstance(state, TaskState)
    details = {"output": Payload(result), "outputDetails": {"truncated": False}}
    try:
        dataflow.check_size(result, state.resource if kind.family == "lambda" else state.name)
    except errors.StatesError as failure:
        on_failed(execution, frame, failure.error, failure.cause)
        return
    _record_outcome(execution, frame, "Succeeded", details)
    frame.task_id = None
    frame.phase = Phase.RUN
    try:
        finish(execution, frame, state, result)
    except errors.StatesError as failure:
        execution.state_failed(frame, failure)
    frame.context_extra = None
    execution.make_ready(frame)


def finish(execution: Execution, frame: Frame, state: Any, result: Any) -> None:
    """ResultSelector → ResultPath → OutputPath (or JSONata Output) and Assign; exit."""
    raw = frame.raw_input
    if state.query_language == JSONATA:
        states = dataflow.states_binding(execution, frame, raw)
        states["result"] = result
        assigned = dataflow.jsonata_assign(execution, frame, state.assign, states)
        output = dataflow.jsonata_output(execution, frame, state.output, states, result)
        execution.exit_state(frame, output, state.next, assigned)
        return
    if (
        state.result_selector is None
        and state.output_path is None
        and state.assign is None
        and not state.output_path_is_null
    ):  # ResultPath only: nothing needs a scope
        execution.exit_state(frame, dataflow.apply_result_path(state, raw, result), state.next)
        return
    scope = dataflow.Scope(execution, frame)
    if state.result_selector is not None:
        result = state.result_selector.evaluate(result, scope)
    output = dataflow.apply_result_path(state, raw, result)
    output = dataflow.apply_output_path(state, output, scope)
    assigned = None
    if state.assign is not None:
        assigned = state.assign.evaluate(result, scope)
    execution.exit_state(frame, output, state.next, assigned)


def on_failed(execution: Execution, frame: Frame, error: str | None, cause: str | None) -> None:
    _record_outcome(execution, frame, "Failed", error_details(error, cause))
    frame.task_id = None
    frame.context_extra = None
    frame.phase = Phase.RUN
    execution.handle_error(frame, error, cause)
    execution.make_ready(frame)


def on_task_timer(execution: Execution, frame: Frame, timer_id: str) -> None:
    """TimeoutSeconds or HeartbeatSeconds elapsed: the attempt ends with a timeout."""
    task_id = frame.task_id
    if task_id is None or frame.phase != Phase.TASK:
        return
    execution.forget_task(task_id)
    execution.cancel_task_timers(frame)
    from flowstate.interpreter.messages import CancelTask

    execution.command(CancelTask(task_id))
    error = errors.HEARTBEAT_TIMEOUT if ":heartbeat:" in timer_id else errors.TIMEOUT
    _record_outcome(execution, frame, "TimedOut", {"error": error})
    frame.task_id = None
    frame.context_extra = None
    frame.phase = Phase.RUN
    execution.handle_error(frame, error, None)
    execution.make_ready(frame)
