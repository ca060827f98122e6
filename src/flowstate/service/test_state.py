"""TestState: run one state of a definition on a given input and report what happened.

``definition`` is a single state's JSON, or — with ``stateName`` — a whole state machine in which
the named state (top level, a Parallel branch or a Map's ItemProcessor) is tested. The state runs
once: it does not move on, a Wait does not wait, a matching retrier is reported instead of
retried. The response has ``status``:

* ``SUCCEEDED``: ``output`` and ``nextState`` (absent after a terminal state);
* ``RETRIABLE``: a Retrier matches the error and has attempts left (``retrierRetryCount`` in
  ``stateConfiguration`` says how many were spent); ``error``, ``cause``, no output;
* ``CAUGHT_ERROR``: no retry left and a Catcher matches; ``output`` is the catcher's output,
  ``nextState`` its ``Next``, with ``error`` and ``cause``;
* ``FAILED``: ``error`` and ``cause``.

``inspectionLevel`` DEBUG (and TRACE) adds ``inspectionData``: the stages of the state's data
flow as JSON text (``input``, ``afterInputPath``, ``afterParameters`` or ``afterArguments``,
``result``, ``afterResultSelector``, ``afterResultPath``; for a Map ``afterItemsPath``,
``afterItemSelector``, ``maxConcurrency``, ``toleratedFailureCount``/``Percentage``),
``errorDetails`` (``retryIndex``, ``retryBackoffIntervalSeconds``, ``catchIndex``) and
``variables`` (the request's variables plus those the state assigned). TRACE adds the HTTP
``request``/``response`` of an HTTP Task (the service's ``StateTester`` adds them: the call runs
on the engine's loop); ``revealSecrets`` shows the values of the headers the connection put in.

``mock`` gives a Task, Map or Parallel state its ``result`` (JSON text; for service
integrations checked against the AWS API's output shape from botocore as ``fieldValidationMode``
STRICT | PRESENT | NONE says) or its ``errorOutput``. A Task without a mock is served by
``invoke(name, payload)``: the function name and event for a Lambda task (``lambda:invoke``
results are wrapped as AWS wraps them), otherwise the resource ARN and the parameters; a raised
``StatesError`` is the task's failure. Without ``invoke``, a Lambda task fails with
``Lambda.ResourceNotFoundException`` (as AWS does for a function that is not there) and any other
resource with ``States.Runtime`` (flowstate does not host it), both through Retry/Catch.
``context`` (mock required) replaces the parts of the context object it names.

Supported: Pass, Task, Choice, Wait, Succeed, Fail (JSONPath and JSONata); Map and Parallel only
with a mock (AWS: ``InvalidDefinition`` without one); activity, ``.sync`` and
``.waitForTaskToken`` tasks only with a mock.
Not done: ``afterItemBatcher``; items read by an ItemReader (``mapItemReaderData`` only counts
them); ``errorCausedByState`` is accepted and not checked.

Recorded AWS behaviour followed (see the tests): which inspection fields each state type shows,
RETRIABLE/CAUGHT_ERROR and ``errorDetails``, the context object (``State.Name`` is
``"StateName"``, an ``express`` execution ARN, ``RoleArn`` null without a role) and the refusal
messages. Guessed: the refusal messages for a context without a mock, bad ``variables`` and
activity/``.sync`` tasks without a mock; that a single state is validated under the name
``StateName``; compact JSON text (AWS may echo its input's spacing); the inspection fields of a
Parallel state and of a failing JSONPath Task.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import random
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from flowstate.asl import errors
from flowstate.asl.errors import DefinitionError, StatesError
from flowstate.asl.model import JSONATA, MapState, State, StateMachine
from flowstate.asl.parse import parse_definition
from flowstate.integrations.functions import (
    Function,
    FunctionRegistry,
    invoke_response,
    is_lambda_resource,
    prepare_lambda_call,
)
from flowstate.interpreter import dataflow, fanout
from flowstate.interpreter.execution import Execution, ExecutionInfo
from flowstate.interpreter.frames import Frame, Phase
from flowstate.interpreter.history import dump_json
from flowstate.interpreter.messages import ScheduleTask, TimerFired
from flowstate.interpreter.retry import backoff_seconds, find_catcher, find_retrier
from flowstate.runtime.local import InvalidExecutionInput, parse_execution_input
from flowstate.service.errors import (
    INVALID_DEFINITION,
    INVALID_EXECUTION_INPUT,
    VALIDATION,
    ServiceError,
)

__all__ = ["test_state"]

# AWS names the tested state "StateName" in the context object, whatever its real name.
STATE_NAME = "StateName"
_MOCKABLE = frozenset({"Task", "Map", "Parallel"})
_ACTIVITY = re.compile(r"arn:[^:]+:states:[^:]*:[^:]*:activity:")
_PATTERN = re.compile(r"\.(sync(:2)?|waitForTaskToken)$")  # .sync, .sync:2, .waitForTaskToken
_CONTEXT_FIELDS: dict[str, dict[str, type | None]] = {
    "Execution": {"Id": str, "Input": None, "Name": str, "RoleArn": str, "StartTime": str,
                  "RedriveCount": int, "RedriveTime": str},
    "State": {"EnteredTime": str, "Name": str, "RetryCount": int},
    "StateMachine": {"Id": str, "Name": str},
    "Task": {"Token": str},
}  # fmt: skip


def test_state(
    request: dict[str, Any],
    *,
    invoke: Callable[[str, Any], Any] | None = None,
    account_id: str = "123456789012",
    region: str = "us-east-1",
    now: datetime,
) -> dict[str, Any]:
    """Run the state ``request`` names on its input; the TestState response (AWS member names).

    Refusals raise ``ServiceError`` with AWS's code and message.
    """
    machine, state = _select_state(request["definition"], request.get("stateName"))
    mock = _check_mock(request, state)
    role_arn = request.get("roleArn")
    if role_arn is None and state.type == "Task" and mock is None:
        raise ServiceError(VALIDATION, "RoleArn must be specified when testing a Task state")
    try:
        input_value = parse_execution_input(request.get("input") or "{}")
    except InvalidExecutionInput as exc:
        raise ServiceError(INVALID_EXECUTION_INPUT, str(exc)) from None
    variables = _parse_variables(request.get("variables"))
    context = _parse_context(request.get("context"), state, mock)
    names = uuid.uuid4().hex
    prefix = f"arn:aws:states:{region}:{account_id}"
    info = ExecutionInfo(
        arn=f"{prefix}:express:TestState-{names[:8]}:{names[8:]}",
        name=names[8:],
        state_machine_arn=f"{prefix}:stateMachine:TestState-{names[:8]}",
        state_machine_name=f"TestState-{names[:8]}",
        role_arn=role_arn,  # AWS: "RoleArn": null without a role
        start_time=now,
        type="EXPRESS",
        synchronous=True,  # no RedriveCount in the context object
    )
    probe = _Probe(
        dataclasses.replace(machine, start_at=state.name),
        info,
        input_value,
        retry_count=(request.get("stateConfiguration") or {}).get("retrierRetryCount") or 0,
    )
    frame = probe.root
    frame.variables.update(variables)
    frame.state_name = STATE_NAME
    frame.context_extra = context
    _run(probe, frame, state, mock, request, invoke, now)
    return probe.response(request.get("inspectionLevel") or "INFO")


# --- the definition ------------------------------------------------------------------------


def _select_state(definition: str, state_name: str | None) -> tuple[StateMachine, State]:
    """The machine (or branch) holding the tested state, and the state."""
    if state_name is None:
        definition = _wrap_single_state(definition)
    try:
        machine = parse_definition(definition)
    except DefinitionError as exc:
        raise ServiceError(exc.code, exc.message) from None
    if state_name is None:
        return machine, machine.states[STATE_NAME]
    for owner in _machines(machine):
        if state_name in owner.states:
            return owner, owner.states[state_name]
    raise ServiceError(VALIDATION, "State not found in definition")


def _wrap_single_state(definition: str) -> str:
    """A one-state machine around a state's JSON; its transitions lead to placeholders."""
    try:
        state = json.loads(definition)
    except (ValueError, RecursionError):
        return definition  # the parser reports the JSON error as AWS does
    if not isinstance(state, dict):
        return definition
    targets = [state.get("Next"), state.get("Default")]
    for field in ("Choices", "Catch"):
        rules = state.get(field)
        if isinstance(rules, list):
            targets += [rule.get("Next") for rule in rules if isinstance(rule, dict)]
    states: dict[str, Any] = {STATE_NAME: state}
    for target in targets:
        if isinstance(target, str) and target not in states:
            states[target] = {"Type": "Succeed"}
    return json.dumps({"StartAt": STATE_NAME, "States": states})


def _machines(machine: StateMachine) -> Iterator[StateMachine]:
    yield machine
    for state in machine.states.values():
        for branch in getattr(state, "branches", ()):
            yield from _machines(branch)
        processor = getattr(state, "item_processor", None)
        if processor is not None:
            yield from _machines(processor)


# --- the request's other members -----------------------------------------------------------


def _check_mock(request: dict[str, Any], state: State) -> dict[str, Any] | None:
    """The mock (with ``result`` decoded), refused as AWS refuses it."""
    mock = request.get("mock")
    if mock is None:
        if state.type in ("Map", "Parallel"):
            raise ServiceError(
                INVALID_DEFINITION,
                "TestState API does not support Map or Parallel states. Supported state types "
                "include: [Task, Wait, Pass, Succeed, Fail, Choice]",
            )
        resource = getattr(state, "resource", "")
        if state.type == "Task" and (_ACTIVITY.match(resource) or _PATTERN.search(resource)):
            raise ServiceError(
                VALIDATION,
                "TestState supports activity tasks and the .sync and .waitForTaskToken "
                "service integration patterns only when a mock is specified",
            )
        return None
    if state.type not in _MOCKABLE:
        raise ServiceError(
            VALIDATION, f"State type '{state.type}' is not supported when a mock is specified"
        )
    if request.get("revealSecrets"):
        raise ServiceError(
            VALIDATION, "TestState does not support RevealSecrets when a mock is specified."
        )
    if ("result" in mock) == ("errorOutput" in mock):
        raise ServiceError(
            VALIDATION,
            "A test mock should have only one of the following fields: [result, errorOutput].",
        )
    if "errorOutput" in mock:
        return dict(mock)
    try:
        result = json.loads(mock["result"])
    except (ValueError, RecursionError):
        raise ServiceError(VALIDATION, "Mocked result must be valid JSON") from None
    if isinstance(state, MapState) and state.result_writer is not None:
        if not isinstance(result, dict):
            raise ServiceError(VALIDATION, "Mocked result must be a JSON object.")
    elif state.type in ("Map", "Parallel") and not isinstance(result, list):
        raise ServiceError(VALIDATION, "Mocked result must be an array.")
    if state.type == "Task":
        mode = mock.get("fieldValidationMode") or "STRICT"
        _check_result_shape(getattr(state, "resource", ""), result, mode)
    return {**mock, "result": result}


def _parse_variables(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        variables = json.loads(text)
    except (ValueError, RecursionError):
        variables = None
    if not isinstance(variables, dict):
        raise ServiceError(VALIDATION, "Variables must be a valid JSON object")
    return variables


def _parse_context(
    text: str | None, state: State, mock: dict[str, Any] | None
) -> dict[str, Any] | None:
    if text is None:
        return None
    if mock is None:
        raise ServiceError(VALIDATION, "A Context object may only be specified with a mock")
    try:
        context = json.loads(text)
    except (ValueError, RecursionError):
        context = None
    if not isinstance(context, dict):
        raise ServiceError(VALIDATION, "Invalid Context object provided: must be a JSON object")
    for part, value in context.items():
        problem = _context_problem(part, value, state)
        if problem is not None:
            raise ServiceError(VALIDATION, f"Invalid Context object provided: {problem}")
    return context


def _context_problem(part: str, value: Any, state: State) -> str | None:
    if part == "Map":
        return "'Map' field is not supported when mocking a Context object"
    fields = _CONTEXT_FIELDS.get(part)
    if fields is None:
        return f"Field '{part}' is not allowed"
    if part == "Task" and not _PATTERN.search(getattr(state, "resource", "")):
        return (
            "Context object contains 'Task' when state is not a Task state with a '.sync' or "
            "'.waitForTaskToken' service integration pattern"
        )
    if not isinstance(value, dict):
        return f"{part} must be an object"
    for name, member in value.items():
        if name not in fields:
            return f"Field '{name}' is not allowed"
        kind = fields[name]
        if kind is str and not isinstance(member, str):
            return f"{part}.{name} must be a string"
        if kind is int and (isinstance(member, bool) or not isinstance(member, int)):
            return f"{part}.{name} must be an integer"
    return None


# --- mocked results against the AWS API's output shape --------------------------------------

# Service names in Task resources that botocore spells differently.
_BOTOCORE_SERVICES = {"states": "stepfunctions", "sfn": "stepfunctions", "eventbridge": "events"}
_INTEGRATION = re.compile(r"arn:[^:]+:states:::(?:aws-sdk:)?([\w-]+):(\w+)$")


@functools.lru_cache(maxsize=64)
def _output_shape(service: str, action: str) -> Any:
    """botocore's output shape of ``service``'s ``action``; None when botocore has none."""
    import botocore.exceptions
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(
            _BOTOCORE_SERVICES.get(service, service)
        )
        return model.operation_model(action[:1].upper() + action[1:]).output_shape
    except (botocore.exceptions.BotoCoreError, LookupError):
        return None  # a service or action botocore does not know is not checked


def _check_result_shape(resource: str, result: Any, mode: str) -> None:
    """AWS checks a mocked service-integration result against the API's output shape.

    Only request-response integrations are checked (the result of ``.sync`` and
    ``.waitForTaskToken`` is not the API's output). Keys are compared as Step Functions writes
    them, first letter upper-case; fields the API does not know are accepted.
    """
    match = _INTEGRATION.match(resource)
    shape = _output_shape(*match.groups()) if match is not None and mode != "NONE" else None
    problem = None if shape is None else _shape_problem(result, shape, "", mode == "STRICT")
    if problem is not None:
        raise ServiceError(VALIDATION, f"Mock result schema validation error: {problem}")


def _shape_problem(value: Any, shape: Any, name: str, strict: bool) -> str | None:
    kind, limits, field = shape.type_name, shape.metadata, f"Field '{name}'"
    if kind == "structure":
        if not isinstance(value, dict):
            return f"{field} must be an object" if name else "Mock result must be a JSON object"
        members = {key[:1].upper() + key[1:]: member for key, member in shape.members.items()}
        required = [key[:1].upper() + key[1:] for key in shape.required_members] if strict else []
        missing = next((key for key in required if key not in value), None)
        if missing is not None:
            return f"Required field '{missing}' is missing"
        pairs = [(members[key], item, key) for key, item in value.items() if key in members]
    elif kind in ("list", "map"):
        if not isinstance(value, list if kind == "list" else dict):
            return f"{field} must be {'an array' if kind == 'list' else 'an object'}"
        inner = shape.member if kind == "list" else shape.value
        items = value.values() if isinstance(value, dict) else value
        pairs = [(inner, item, name) for item in items]
    elif kind in ("string", "timestamp", "blob"):
        if not isinstance(value, str):
            return f"{field} must be a string"
        if kind == "string" and getattr(shape, "enum", None) and value not in shape.enum:
            return f"{field} is not an expected value"
        if kind == "blob" and len(value) < limits.get("min", 0):
            return f"{field} is smaller than the minimum length"
        return None
    elif kind in ("integer", "long", "float", "double"):
        number = int if kind in ("integer", "long") else int | float
        if isinstance(value, bool) or not isinstance(value, number):
            return f"{field} must be a number"
        if value < limits.get("min", value):
            return f"{field} is less than the minimum value"
        if value > limits.get("max", value):
            return f"{field} exceeds the maximum value"
        return None
    else:
        return (
            f"{field} must be a boolean"
            if kind == "boolean" and value not in (True, False)
            else None
        )
    for member, item, key in pairs:
        problem = _shape_problem(item, member, key, strict)
        if problem is not None:
            return problem
    return None


# --- running the state ---------------------------------------------------------------------


class _Probe(Execution):
    """An execution of one state that records where the state would go instead of going.

    The interpreter's own code runs Choice, Wait, Succeed, Fail and a Task's input; where
    inspection needs the intermediate values this module calls the interpreter's data-flow
    functions stage by stage. Exits, failures and error handling are overridden to give
    TestState's answer.
    """

    def __init__(
        self, machine: StateMachine, info: ExecutionInfo, input_value: Any, *, retry_count: int
    ) -> None:
        seed = random.getrandbits(64)
        super().__init__(machine, info, input_value, seed=seed, record_history=False)
        self.retry_count = retry_count
        self.status_text = ""
        self.next_state: str | None = None
        self.inspection: dict[str, Any] = {"input": dump_json(input_value)}
        self.error_details: dict[str, int] = {}
        self.caught = False

    def stage(self, name: str, value: Any) -> Any:
        """Record a data-flow stage for ``inspectionData``; return ``value``."""
        self.inspection[name] = value if isinstance(value, int | float) else dump_json(value)
        return value

    def exit_state(
        self,
        frame: Frame,
        output: Any,
        next_state: str | None,
        assigned: dict[str, Any] | None = None,
        previous: int | None = None,
    ) -> None:
        if assigned is not None:
            try:
                dataflow.check_assigned_size(assigned)
            except StatesError as failure:
                if self.caught:  # a failure while catching is not caught again
                    self.frame_failed(frame, failure.error, failure.cause)
                else:
                    self.state_failed(frame, failure)
                return
            frame.variables.update(assigned)
        frame.phase = Phase.DONE
        self.status_text = "CAUGHT_ERROR" if self.caught else "SUCCEEDED"
        self.output, self.next_state = output, next_state

    def frame_failed(self, frame: Frame, error: str | None, cause: str | None) -> None:
        frame.phase = Phase.DONE
        self.status_text, self.error, self.cause = "FAILED", error, cause

    def handle_error(self, frame: Frame, error: str | None, cause: str | None) -> None:
        """TestState does not retry: a retrier with attempts left makes the state RETRIABLE."""
        name = error if error is not None else ""
        self.error, self.cause = error, cause
        retriers = getattr(frame.state, "retry", ())
        index = find_retrier(retriers, name)
        if index is not None:
            self.error_details["retryIndex"] = index
            retrier = retriers[index]
            if self.retry_count < retrier.max_attempts:
                delay = backoff_seconds(retrier, self.retry_count, self.entropy.random())
                self.error_details["retryBackoffIntervalSeconds"] = int(delay)
                frame.phase = Phase.DONE
                self.status_text = "RETRIABLE"
                return
        catchers = getattr(frame.state, "catch", ())
        catcher = find_catcher(catchers, name)
        if catcher is None:
            self.frame_failed(frame, error, cause)
            return
        self.error_details["catchIndex"] = catchers.index(catcher)
        self.caught = True
        dataflow.apply_catcher(self, frame, catcher, error, cause)

    def response(self, level: str) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status_text}
        if self.status_text in ("SUCCEEDED", "CAUGHT_ERROR"):
            out["output"] = dump_json(self.output)
            if self.next_state is not None:
                out["nextState"] = self.next_state
        if self.status_text != "SUCCEEDED":
            failure = (("error", self.error), ("cause", self.cause))
            out.update({key: value for key, value in failure if value is not None})
        if level != "INFO":
            inspection = dict(self.inspection)
            if self.error_details:
                inspection["errorDetails"] = dict(self.error_details)
            if self.root.variables:
                inspection["variables"] = dump_json(self.root.variables)
            out["inspectionData"] = inspection
        return out


def _run(
    probe: _Probe,
    frame: Frame,
    state: Any,
    mock: dict[str, Any] | None,
    request: dict[str, Any],
    invoke: Callable[[str, Any], Any] | None,
    now: datetime,
) -> None:
    if state.type in ("Choice", "Succeed", "Fail", "Wait"):
        if state.query_language != JSONATA:
            with contextlib.suppress(StatesError):  # the run below reports it
                scope = dataflow.Scope(probe, frame)
                probe.stage(
                    "afterInputPath", dataflow.apply_input_path(state, frame.raw_input, scope)
                )
        probe.start(now)
        if frame.phase == Phase.TIMER and frame.timer_id is not None:
            probe.step(TimerFired(frame.timer_id), now)  # TestState does not wait
        return
    if state.type == "Task":
        _run_task(probe, frame, state, mock, invoke, now)
        return
    frame.entered_time, frame.entered_event_id = now, 2  # 1 is ExecutionStarted
    frame.phase = Phase.RUN
    if state.type == "Pass":
        _run_pass(probe, frame, state)
        return
    assert mock is not None  # Map and Parallel are refused without one
    try:
        if isinstance(state, MapState):
            tolerated = _map_inputs(probe, frame, state, request)
        else:
            tolerated = None
            _parallel_input(probe, frame, state)
    except StatesError as failure:
        probe.state_failed(frame, failure)
        return
    if "errorOutput" in mock:
        probe.handle_error(
            frame, mock["errorOutput"].get("error"), mock["errorOutput"].get("cause")
        )
    elif tolerated is not None and _threshold_exceeded(request, mock["result"], *tolerated):
        cause = "The specified tolerated failure threshold was exceeded"
        probe.handle_error(frame, errors.EXCEED_TOLERATED_FAILURE_THRESHOLD, cause)
    else:
        _finish(probe, frame, state, mock["result"], report_result=False)


def _run_pass(probe: _Probe, frame: Frame, state: Any) -> None:
    """The Pass state's data flow, stage by stage (interpreter: ``Execution._run_pass``)."""
    raw = frame.raw_input
    try:
        if state.query_language == JSONATA:
            states = dataflow.states_binding(probe, frame, raw)
            assigned = dataflow.jsonata_assign(probe, frame, state.assign, states)
            output = dataflow.jsonata_output(probe, frame, state.output, states, raw)
            probe.exit_state(frame, output, state.next, assigned)
            return
        scope = dataflow.Scope(probe, frame)
        if state.has_result:  # AWS shows no input stages when a Result replaces them
            dataflow.check_constant_size(state)
            result = probe.stage("result", state.result)
        else:
            effective = probe.stage("afterInputPath", dataflow.apply_input_path(state, raw, scope))
            if state.parameters is not None:
                effective = state.parameters.evaluate(effective, scope)
            result = probe.stage("afterParameters", effective)
        probe.stage("afterResultSelector", result)  # AWS reports it though Pass has none
        output = probe.stage("afterResultPath", dataflow.apply_result_path(state, raw, result))
        output = dataflow.apply_output_path(state, output, scope)
        assigned = state.assign.evaluate(result, scope) if state.assign is not None else None
    except StatesError as failure:
        probe.state_failed(frame, failure)
        return
    probe.exit_state(frame, output, state.next, assigned)


def _run_task(
    probe: _Probe,
    frame: Frame,
    state: Any,
    mock: dict[str, Any] | None,
    invoke: Callable[[str, Any], Any] | None,
    now: datetime,
) -> None:
    context = frame.context_extra
    # The interpreter evaluates the task's input and timeouts and schedules the task ...
    schedule = next((c for c in probe.start(now) if isinstance(c, ScheduleTask)), None)
    if schedule is None:
        return  # ... or the state failed first: the probe holds the outcome
    if context is not None:
        frame.context_extra = context  # a .waitForTaskToken task set its own token
    frame.task_id, frame.phase = None, Phase.RUN
    if state.query_language == JSONATA:
        probe.stage("afterArguments", schedule.parameters)
    else:
        probe.stage("afterInputPath", frame.effective_input)
        probe.stage("afterParameters", schedule.parameters)
    try:
        if mock is not None and "errorOutput" in mock:
            raise StatesError(mock["errorOutput"].get("error"), mock["errorOutput"].get("cause"))
        if mock is not None:
            result = mock["result"]
        else:
            result = _call(state.resource, schedule.parameters, invoke, probe.info)
        lambda_task = is_lambda_resource(state.resource)
        dataflow.check_size(result, state.resource if lambda_task else state.name)
    except StatesError as failure:  # the task failed: Retry and Catch apply
        probe.handle_error(frame, failure.error, failure.cause)
        return
    _finish(probe, frame, state, result, report_result=True)


class _EveryFunction(FunctionRegistry):
    """A registry in which every function exists: ``invoke`` decides."""

    def get(self, name: str) -> Any:
        return lambda event, context: None  # never called: only the name and event are used

    def entry(self, name: str) -> Function:
        return Function(name, self.get(name))


def _call(
    resource: str, parameters: Any, invoke: Callable[[str, Any], Any] | None, info: ExecutionInfo
) -> Any:
    region, account = info.arn.split(":")[3:5]
    if is_lambda_resource(resource):
        # The function name and event as executions resolve them; without ``invoke`` this
        # raises Lambda.ResourceNotFoundException, as AWS does for a function that is not there.
        call = prepare_lambda_call(
            resource,
            parameters,
            idempotency_key="",
            functions=FunctionRegistry() if invoke is None else _EveryFunction(),
            region=region,
            account=account,
        )
        assert invoke is not None
        result = invoke(call.name, call.event)
        return invoke_response(result) if call.invoke_api else result
    if invoke is None:
        raise StatesError(errors.RUNTIME, f"flowstate does not host the resource '{resource}'")
    return invoke(resource, parameters)


def _map_inputs(
    probe: _Probe, frame: Frame, state: MapState, request: dict[str, Any]
) -> tuple[int | None, float | None, int | None]:
    """The Map state's input stages; the tolerated failures and the number of items."""
    raw = frame.raw_input
    effective = raw
    if state.query_language != JSONATA:
        scope = dataflow.Scope(probe, frame)
        effective = probe.stage("afterInputPath", dataflow.apply_input_path(state, raw, scope))
    items = None
    if state.item_reader is None:
        # The interpreter's own helpers evaluate each field, with its messages.
        items = fanout._items(probe, frame, state, effective)
        if state.query_language != JSONATA:
            probe.stage("afterItemsPath", items)
        if state.item_selector is not None or state.item_selector_expr is not None:
            selected = [
                fanout._item_input(probe, frame, state, index, item, effective)
                for index, item in enumerate(items)
            ]
            probe.stage("afterItemSelector", selected)
    values: list[Any] = []
    for key, kind in (("MaxConcurrency", "integer"), ("ToleratedFailureCount", "integer"),
                      ("ToleratedFailurePercentage", "float")):  # fmt: skip
        attribute = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
        value = fanout._integer_field(
            probe,
            frame,
            effective,
            getattr(state, attribute),
            getattr(state, f"{attribute}_path"),
            getattr(state, f"{attribute}_expr"),
            key,
            kind,
        )
        if value is not None:
            probe.stage(key[:1].lower() + key[1:], value)
        values.append(value)
    reader_data = (request.get("stateConfiguration") or {}).get("mapItemReaderData")
    if items is None and reader_data is not None:
        with contextlib.suppress(ValueError, RecursionError):
            items = json.loads(reader_data)
    return values[1], values[2], len(items) if isinstance(items, list) else None


def _threshold_exceeded(
    request: dict[str, Any],
    result: Any,
    count: int | None,
    percentage: float | None,
    total: int | None,
) -> bool:
    """``mapIterationFailureCount`` against the Map's tolerated failures.

    AWS ignores the count when the Map tolerates no failures (recorded: the state succeeds).
    """
    failures = (request.get("stateConfiguration") or {}).get("mapIterationFailureCount") or 0
    if not failures or (count is None and percentage is None):
        return False
    if count is not None and failures <= count:
        return False
    total = total if total is not None else len(result) if isinstance(result, list) else 0
    return not (percentage is not None and total and failures * 100.0 / total <= percentage)


def _parallel_input(probe: _Probe, frame: Frame, state: Any) -> None:
    raw = frame.raw_input
    if state.query_language == JSONATA:
        if state.arguments is not None:
            states = dataflow.states_binding(probe, frame, raw)
            arguments = dataflow.evaluate_expression(probe, frame, state.arguments, states)
            probe.stage("afterArguments", arguments)
        return
    scope = dataflow.Scope(probe, frame)
    effective = probe.stage("afterInputPath", dataflow.apply_input_path(state, raw, scope))
    if state.parameters is not None:
        effective = state.parameters.evaluate(effective, scope)
    probe.stage("afterParameters", effective)


def _finish(probe: _Probe, frame: Frame, state: Any, result: Any, *, report_result: bool) -> None:
    """ResultSelector → ResultPath → OutputPath (or JSONata Output) and Assign, stage by stage
    (interpreter: ``tasks.finish``). AWS shows no ``result`` stage for Map and Parallel."""
    raw = frame.raw_input
    if report_result:
        probe.stage("result", result)
    try:
        if state.query_language == JSONATA:
            states = dataflow.states_binding(probe, frame, raw)
            states["result"] = result
            assigned = dataflow.jsonata_assign(probe, frame, state.assign, states)
            output = dataflow.jsonata_output(probe, frame, state.output, states, result)
        else:
            scope = dataflow.Scope(probe, frame)
            if state.result_selector is not None:
                result = state.result_selector.evaluate(result, scope)
            probe.stage("afterResultSelector", result)
            output = probe.stage("afterResultPath", dataflow.apply_result_path(state, raw, result))
            output = dataflow.apply_output_path(state, output, scope)
            assigned = state.assign.evaluate(result, scope) if state.assign is not None else None
    except StatesError as failure:
        probe.state_failed(frame, failure)
        return
    probe.exit_state(frame, output, state.next, assigned)
