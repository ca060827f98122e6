"""Local Python functions served as Lambda functions.

A Task whose resource is a Lambda function ARN (``arn:aws:lambda:<region>:<account>:function:
<name>[:<qualifier>]``) or ``arn:aws:states:::lambda:invoke`` runs the Python callable
registered under ``<name>`` — whatever the account and region — as ``handler(event, context)``.
What crosses back is what Lambda would send: the result as JSON, or the function error
``{errorMessage, errorType, requestId, stackTrace}`` that Lambda's Python runtime reports.
"""

from __future__ import annotations

import base64
import dis
import inspect
import json
import time
import traceback
import types
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from flowstate.asl.errors import StatesError
from flowstate.interpreter.history import ORJSON_STRICT, find_null, has_non_finite

__all__ = [
    "Function",
    "FunctionError",
    "FunctionOptions",
    "FunctionRegistry",
    "LambdaCall",
    "LambdaContext",
    "Reply",
    "call_handler",
    "copy_event",
    "function",
    "invoke_async_function",
    "invoke_function",
    "invoke_response",
    "is_lambda_resource",
    "lambda_function_name",
    "never_suspends",
    "prepare_lambda_call",
    "unhosted_resource",
]

Handler = Callable[[Any, Any], Any]

# Lambda's maximum function timeout: what a handler is told when its Task sets none.
DEFAULT_TIMEOUT_SECONDS = 900


@dataclass(frozen=True, slots=True)
class FunctionOptions:
    """What ``@flowstate.function`` says about a handler."""

    name: str | None = None
    concurrency: int | None = None  # at most this many calls at once (None: no limit)
    isolate: bool = False  # run each call in its own process


_OPTIONS_ATTRIBUTE = "__flowstate_function__"


def function(
    handler: Handler | None = None,
    *,
    name: str | None = None,
    concurrency: int | None = None,
    isolate: bool = False,
) -> Any:
    """Mark a handler for ``--functions``: register it under ``name`` (default: its attribute
    name), run at most ``concurrency`` calls at once, and/or each call in its own process."""
    if concurrency is not None and concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    options = FunctionOptions(name, concurrency, isolate)

    def mark(fn: Handler) -> Handler:
        setattr(fn, _OPTIONS_ATTRIBUTE, options)
        return fn

    return mark if handler is None else mark(handler)


def options_of(handler: Handler) -> FunctionOptions:
    found = getattr(handler, _OPTIONS_ATTRIBUTE, None)
    return found if isinstance(found, FunctionOptions) else FunctionOptions()


@dataclass(frozen=True, slots=True)
class Function:
    """A registered handler and how it runs."""

    name: str
    handler: Handler
    concurrency: int | None = None
    isolate: bool = False
    is_async: bool = field(init=False, compare=False)  # known once: asked at every call
    never_suspends: bool = field(init=False, compare=False)  # (see ``never_suspends``)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.handler))
        object.__setattr__(self, "never_suspends", never_suspends(self.handler))


# The instructions of a coroutine's own body that can suspend it: ``await`` (GET_AWAITABLE,
# SEND, YIELD_VALUE), ``async for`` and ``async with``.
_SUSPENDING = frozenset(
    {
        "YIELD_VALUE",
        "SEND",
        "GET_AWAITABLE",
        "GET_AITER",
        "GET_ANEXT",
        "END_ASYNC_FOR",
        "BEFORE_ASYNC_WITH",
    }
)


def never_suspends(handler: Any) -> bool:
    """Whether ``handler`` is an ``async def`` function with no ``await``, ``async for`` or
    ``async with`` in its body: its coroutine ends in its first step, so it can be run
    through at once (``LambdaCall.run_through``) rather than as a task. Anything else — a
    decorated or wrapped handler whose code cannot be read, a callable object — is not
    looked into and answers False. (Functions and lambdas defined in the body are code of
    their own and do not count: they run only if called.)"""
    if not isinstance(handler, types.FunctionType):
        return False
    code = handler.__code__
    if not code.co_flags & inspect.CO_COROUTINE:
        return False
    return not any(instruction.opname in _SUSPENDING for instruction in dis.get_instructions(code))


class FunctionRegistry:
    """Name → handler. Names may contain ``-`` and other non-identifier characters."""

    def __init__(self, functions: Mapping[str, Handler] | None = None) -> None:
        self._functions: dict[str, Function] = {}
        for name, handler in (functions or {}).items():
            self.register(name, handler)

    def register(
        self,
        name: str,
        handler: Handler,
        *,
        concurrency: int | None = None,
        isolate: bool | None = None,
    ) -> None:
        options = options_of(handler)
        self._functions[name] = Function(
            name,
            handler,
            concurrency if concurrency is not None else options.concurrency,
            isolate if isolate is not None else options.isolate,
        )

    def get(self, name: str) -> Handler | None:
        entry = self._functions.get(name)
        return entry.handler if entry is not None else None

    def entry(self, name: str) -> Function | None:
        return self._functions.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def __len__(self) -> int:
        return len(self._functions)

    def __iter__(self) -> Iterator[str]:
        return iter(self._functions)


class LambdaContext:
    """The parts of AWS Lambda's context object a handler commonly reads, plus the
    ``idempotency_key`` of this task attempt (the same on every re-run of the attempt).
    ``aws_request_id`` is drawn when first read (None given: a fresh UUID)."""

    __slots__ = (
        "__dict__",
        "_account",
        "_deadline",
        "_region",
        "_request_id",
        "function_name",
        "idempotency_key",
    )
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    identity = None
    client_context = None

    def __init__(
        self,
        function_name: str,
        request_id: str | None,
        idempotency_key: str,
        region: str,
        account: str,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.function_name = function_name
        self._request_id = request_id
        self.idempotency_key = idempotency_key
        self._region = region
        self._account = account
        self._deadline = time.monotonic() + timeout_seconds

    @property
    def aws_request_id(self) -> str:
        if self._request_id is None:
            self._request_id = str(uuid.uuid4())
        return self._request_id

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self._region}:{self._account}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"flowstate/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled for an isolated function's process, deadline and all (the monotonic clock
        is the machine's). Spelled out: a class compiled by mypyc has no default for it."""
        fields = (self.function_name, self._request_id, self.idempotency_key)
        return (_unpickle_context, (*fields, self._region, self._account, self._deadline))


def _unpickle_context(
    function_name: str,
    request_id: str | None,
    idempotency_key: str,
    region: str,
    account: str,
    deadline: float,
) -> LambdaContext:
    context = LambdaContext(function_name, request_id, idempotency_key, region, account)
    context._deadline = deadline
    return context


def lambda_function_name(reference: str) -> str:
    """``name``, ``name:qualifier``, a partial or a full function ARN → the function name."""
    if reference.startswith("arn:"):
        parts = reference.split(":")
        return parts[6] if len(parts) > 6 else reference
    parts = reference.split(":")
    if len(parts) >= 3 and parts[1] == "function":  # account:function:name[:qualifier]
        return parts[2]
    return parts[0]


# --- calling a handler -------------------------------------------------------------------


def error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """Lambda's function error for ``exc``: the frames from the handler down, one string per
    frame as ``traceback.format_list`` writes it, none of the runtime's that called it."""
    frames = traceback.extract_tb(exc.__traceback__)
    start = 0
    while start < len(frames) and _is_runtime_frame(frames[start].filename):
        start += 1
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames[start:]),
    }


def _is_runtime_frame(filename: str) -> bool:
    # This module and the process-isolation child call handlers; Lambda's Python runtime
    # likewise drops its own bootstrap frames.
    # (By path suffix: compiled, this module's frames name its source relative to the build.)
    return filename.endswith(_RUNTIME_SOURCES)


_RUNTIME_SOURCES = ("flowstate/integrations/functions.py", "flowstate/integrations/isolation.py")


class FunctionError(StatesError):
    """A function error: error = the errorType, cause = the error payload as JSON text."""

    def __init__(self, payload: dict[str, Any], *, compact: bool = False) -> None:
        # AWS (recorded): lambda:invoke reports the payload without spaces, a Lambda
        # function ARN resource with json.dumps' default separators.
        separators = (",", ":") if compact else (", ", ": ")
        super().__init__(payload["errorType"], json.dumps(payload, separators=separators))
        self.payload = payload

    def compacted(self, compact: bool) -> FunctionError:
        return FunctionError(self.payload, compact=compact)


def function_error(exc: BaseException, request_id: str) -> FunctionError:
    return FunctionError(error_payload(exc, request_id))


@dataclass(slots=True)
class Reply:
    """A handler's response: its value and the size of the payload Lambda would send (None:
    the length of its JSON text, worked out if asked for)."""

    payload: Any
    size: int | None = None


def _not_plain(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def marshal(result: Any, context: LambdaContext) -> Reply:
    """The response payload as Step Functions reads it back.

    ``bytes`` are a raw response payload: JSON text is its value; other text stays a string
    (an oversized one then fails on the payload limit, as AWS does). Anything else is
    serialised as Lambda's Python runtime does, and fails as it does when it cannot be.
    Plain JSON values (dict, list, str, int, float, bool, None) take orjson; anything else,
    and NaN or an infinity, takes the stdlib's ``json`` and its rules. (orjson also writes a
    ``uuid.UUID`` and an ``enum`` member, which the stdlib would refuse.)
    """
    if isinstance(result, (bytes, bytearray, memoryview)):
        raw = bytes(result)
        text = raw.decode("utf-8", errors="replace")
        try:
            return Reply(json.loads(text), len(raw))
        except ValueError:
            return Reply(text, len(raw))
    try:
        data = orjson.dumps(result, default=_not_plain, option=ORJSON_STRICT)
    except TypeError:  # (orjson.JSONEncodeError too): a type or a value of the stdlib's
        pass
    else:
        if find_null(data) is None or not has_non_finite(result):
            return Reply(orjson.loads(data))
    try:
        # Lambda's Python runtime: json.dumps with its default separators.
        text = json.dumps(result, allow_nan=False)
        return Reply(json.loads(text), len(text.encode("utf-8")))
    except (TypeError, ValueError) as exc:
        payload = {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
            "requestId": context.aws_request_id,
            "stackTrace": [],
        }
        raise FunctionError(payload) from None


def copy_event(value: Any) -> Any:
    """The event a function receives: a copy, as Lambda parses it from the request body, so
    a handler that changes it changes nothing of the execution's."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:  # an integer beyond 64 bits, a lone surrogate
        return json.loads(json.dumps(value))


def call_handler(handler: Handler, event: Any, context: LambdaContext) -> Reply:
    """Run a sync handler; its exception becomes the function error."""
    try:
        result = handler(event, context)
    except Exception as exc:
        raise function_error(exc, context.aws_request_id) from None
    return marshal(result, context)


async def call_async_handler(handler: Handler, event: Any, context: LambdaContext) -> Reply:
    try:
        result = await handler(event, context)
    except Exception as exc:
        raise function_error(exc, context.aws_request_id) from None
    return marshal(result, context)


def invoke_function(
    handler: Handler,
    name: str,
    event: Any,
    *,
    idempotency_key: str,
    region: str,
    account: str,
) -> Any:
    """Call ``handler``; a raised exception becomes Lambda's function error as a StatesError."""
    context = LambdaContext(name, None, idempotency_key, region, account)
    return call_handler(handler, event, context).payload


async def invoke_async_function(
    handler: Handler,
    name: str,
    event: Any,
    *,
    idempotency_key: str,
    region: str,
    account: str,
) -> Any:
    """``invoke_function`` for an ``async def`` handler, awaited on the caller's loop."""
    context = LambdaContext(name, None, idempotency_key, region, account)
    return (await call_async_handler(handler, event, context)).payload


def unhosted_resource(resource: str) -> StatesError:
    """The failure of a Task whose resource flowstate does not serve (yet)."""
    return StatesError(
        "States.Runtime",
        f"flowstate does not host the resource '{resource}' "
        "(service integrations arrive with the task issue)",
    )


def is_lambda_resource(resource: str) -> bool:
    return resource.startswith(("arn:aws:lambda:", "arn:aws:states:::lambda:invoke"))


class LambdaCall:
    """A resolved Lambda task: which function, with what event, shaped how. (A plain class
    with slots: one is made per call, and a frozen dataclass costs twice as much to make.)"""

    __slots__ = (
        "account",
        "event",
        "function",
        "idempotency_key",
        "invoke_api",
        "log_tail",
        "region",
        "timeout_seconds",
    )

    def __init__(
        self,
        function: Function,
        event: Any,
        invoke_api: bool,  # arn:aws:states:::lambda:invoke: the result is wrapped as AWS does
        idempotency_key: str,
        region: str,
        account: str,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        log_tail: bool = False,  # lambda:invoke with LogType "Tail"
    ) -> None:
        self.function = function
        self.event = event
        self.invoke_api = invoke_api
        self.idempotency_key = idempotency_key
        self.region = region
        self.account = account
        self.timeout_seconds = timeout_seconds
        self.log_tail = log_tail

    @property
    def name(self) -> str:
        return self.function.name

    @property
    def handler(self) -> Handler:
        return self.function.handler

    @property
    def is_async(self) -> bool:
        return self.function.is_async

    def context(self) -> LambdaContext:
        return LambdaContext(
            self.name,
            None,
            self.idempotency_key,
            self.region,
            self.account,
            self.timeout_seconds,
        )

    def shape(self, reply: Reply) -> Any:
        if not self.invoke_api:
            return reply.payload
        return invoke_response(reply.payload, size=reply.size, log_tail=self.log_tail)

    def run(self) -> Any:
        try:
            return self.shape(call_handler(self.handler, self.event, self.context()))
        except FunctionError as failure:
            raise failure.compacted(self.invoke_api) from None

    async def run_async(self) -> Any:
        context = self.context()
        try:
            result = await self.function.handler(self.event, context)
        except Exception as exc:
            raise function_error(exc, context.aws_request_id).compacted(self.invoke_api) from None
        return self._reply(result, context)

    def run_through(self) -> Any:
        """Call an ``async`` handler that never suspends (``Function.never_suspends``) and
        take its coroutine's one step here: its shaped result, or its function error, as
        ``run_async`` would give. (The caller picks the context and task it runs in.)"""
        context = self.context()
        try:
            coroutine = self.function.handler(self.event, context)
            try:
                coroutine.send(None)
            except StopIteration as stop:
                result = stop.value
            else:  # (its code has no suspension point: cannot happen)
                coroutine.close()
                raise RuntimeError("the handler suspended although it has no await")
        except Exception as exc:
            raise function_error(exc, context.aws_request_id).compacted(self.invoke_api) from None
        return self._reply(result, context)

    def _reply(self, result: Any, context: LambdaContext) -> Any:
        try:
            return self.shape(marshal(result, context))
        except FunctionError as failure:
            raise failure.compacted(self.invoke_api) from None


_NAMES: dict[str, str] = {}  # function ARN resource -> function name


def prepare_lambda_call(
    resource: str,
    parameters: Any,
    *,
    idempotency_key: str,
    functions: FunctionRegistry,
    region: str,
    account: str,
    timeout_seconds: float | None = None,
) -> LambdaCall:
    """Resolve a Lambda Task to its local handler; Lambda's ResourceNotFoundException if no
    function of that name is registered."""
    invoke_api = resource.startswith("arn:aws:states:::lambda:invoke")
    log_tail = False
    if invoke_api:
        given = parameters if isinstance(parameters, dict) else {}
        reference = given.get("FunctionName", "")
        event = _invoke_payload(given.get("Payload"))
        log_tail = given.get("LogType") == "Tail"
    else:
        reference = resource
        event = copy_event(parameters)
    name = _NAMES.get(reference) if not invoke_api else None
    if name is None:
        name = lambda_function_name(str(reference))
        if not invoke_api and len(_NAMES) < 10_000:  # (resources come from definitions)
            _NAMES[reference] = name
    entry = functions.entry(name)
    if entry is None:
        raise _not_found(str(reference), name, region, account)
    return LambdaCall(
        entry,
        event,
        invoke_api,
        idempotency_key,
        region,
        account,
        timeout_seconds if timeout_seconds is not None else DEFAULT_TIMEOUT_SECONDS,
        log_tail,
    )


def _invoke_payload(payload: Any) -> Any:
    # AWS (recorded): Invoke sends a string Payload as the request body itself, so the
    # function receives the JSON it holds; no Payload at all arrives as {}.
    if payload is None:
        return {}
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except ValueError:
            raise StatesError(
                "Lambda.InvalidRequestContentException",
                "Could not parse request body into json: Could not parse payload into json "
                f"(Service: AWSLambda; Status Code: 400; Error Code: "
                f"InvalidRequestContentException; Request ID: {uuid.uuid4()}; Proxy: null)",
            ) from None
    return copy_event(payload)  # (a string was parsed afresh: that is its copy)


def _not_found(reference: str, name: str, region: str, account: str) -> StatesError:
    # AWS (recorded): the unqualified ARN gets ":$LATEST", and the message is Lambda's 404.
    arn = reference if reference.startswith("arn:") else None
    if arn is None:
        arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    if arn.count(":") == 6:
        arn += ":$LATEST"
    return StatesError(
        "Lambda.ResourceNotFoundException",
        f"Function not found: {arn} (Service: AWSLambda; Status Code: 404; Error "
        f"Code: ResourceNotFoundException; Request ID: {uuid.uuid4()}; Proxy: null)",
    )


def invoke_response(
    payload: Any, *, size: int | None = None, log_tail: bool = False
) -> dict[str, Any]:
    """The ``lambda:invoke`` integration's result, shaped as AWS returns it (``size``: the
    response body's length; ``log_tail``: LogType "Tail" asked for the log's last lines)."""
    request_id = str(uuid.uuid4())
    if size is None:
        size = len(json.dumps(payload).encode("utf-8"))
    length = str(size)
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    trace_id = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
    log_result = None
    if log_tail:
        log_result = base64.b64encode(
            f"START RequestId: {request_id} Version: $LATEST\nEND RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\n".encode()
        ).decode()
    all_headers: dict[str, Any] = {} if log_result is None else {"X-Amz-Log-Result": [log_result]}
    all_headers.update(
        {
            "X-Amz-Executed-Version": ["$LATEST"],
            "x-amzn-Remapped-Content-Length": ["0"],
            "Connection": ["keep-alive"],
            "x-amzn-RequestId": [request_id],
            "Content-Length": [length],
            "Date": [date],
            "X-Amzn-Trace-Id": [trace_id],
            "Content-Type": ["application/json"],
        }
    )
    headers: dict[str, Any] = {
        "Connection": "keep-alive",
        "Content-Length": length,
        "Content-Type": "application/json",
        "Date": date,
        "X-Amz-Executed-Version": "$LATEST",
    }
    if log_result is not None:
        headers["X-Amz-Log-Result"] = log_result
    headers.update(
        {
            "x-amzn-Remapped-Content-Length": "0",
            "x-amzn-RequestId": request_id,
            "X-Amzn-Trace-Id": trace_id,
        }
    )
    out: dict[str, Any] = {"ExecutedVersion": "$LATEST"}
    if log_result is not None:
        out["LogResult"] = log_result
    out.update(
        {
            "Payload": payload,
            "SdkHttpMetadata": {
                "AllHttpHeaders": all_headers,
                "HttpHeaders": headers,
                "HttpStatusCode": 200,
            },
            "SdkResponseMetadata": {"RequestId": request_id},
            "StatusCode": 200,
        }
    )
    return out
