"""What a ``ScheduleTask`` turns into, decided the same way by every runtime: an answer known
at once (a mocked response, a missing function, a resource flowstate does not host), a
function call to run, or an HTTP request (``http:invoke``) to send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowstate.asl.errors import StatesError
from flowstate.integrations.functions import (
    FunctionRegistry,
    LambdaCall,
    is_lambda_resource,
    prepare_lambda_call,
    unhosted_resource,
)
from flowstate.integrations.http import is_http_resource
from flowstate.integrations.mocks import MockSession, attempt_of
from flowstate.interpreter.messages import Event, ScheduleTask, TaskFailed, TaskSucceeded

__all__ = ["Answered", "HttpCall", "dispatch", "failure_event", "is_served", "outcome_event"]


@dataclass(frozen=True, slots=True)
class Answered:
    """The task's outcome, known without calling anything."""

    result: Any = None
    failure: StatesError | None = None

    def event(self, task_id: str) -> Event:
        if self.failure is not None:
            return TaskFailed(task_id, self.failure.error, self.failure.cause)
        return TaskSucceeded(task_id, self.result)


@dataclass(frozen=True, slots=True)
class HttpCall:
    """An ``http:invoke`` task: the runtime sends it with its ``HttpInvoker``."""

    resource: str
    parameters: Any


def is_served(command: ScheduleTask, session: MockSession | None) -> bool:
    """Whether the task starts (a call or a mocked response) rather than failing at once."""
    if session is not None and session.mocks(command.state_name):
        return True
    return is_lambda_resource(command.resource) or is_http_resource(command.resource)


def dispatch(
    command: ScheduleTask,
    *,
    functions: FunctionRegistry,
    session: MockSession | None,
    region: str,
    account: str,
) -> Answered | LambdaCall | HttpCall:
    if session is not None and session.mocks(command.state_name):
        # Step Functions Local: a mocked Task never calls its resource.
        try:
            return Answered(
                session.respond(command.state_name, attempt_of(command.idempotency_key))
            )
        except StatesError as failure:
            return Answered(failure=failure)
    if is_http_resource(command.resource):
        return HttpCall(command.resource, command.parameters)
    if not is_lambda_resource(command.resource):
        return Answered(failure=unhosted_resource(command.resource))
    try:
        return prepare_lambda_call(
            command.resource,
            command.parameters,
            idempotency_key=command.idempotency_key,
            functions=functions,
            region=region,
            account=account,
            timeout_seconds=command.timeout_seconds,
        )
    except StatesError as failure:
        return Answered(failure=failure)


def outcome_event(task_id: str, future: Any) -> Event:
    """A finished call's future (``concurrent.futures``) as the interpreter's event."""
    failure = future.exception()
    if failure is None:
        return TaskSucceeded(task_id, future.result())
    return failure_event(task_id, failure)


def failure_event(task_id: str, failure: BaseException) -> Event:
    """A call that raised ``failure``, as the interpreter's event: its own error when it is a
    States error, else ``States.Runtime`` naming the exception."""
    if isinstance(failure, StatesError):
        return TaskFailed(task_id, failure.error, failure.cause)
    return TaskFailed(task_id, "States.Runtime", f"{type(failure).__name__}: {failure}")
