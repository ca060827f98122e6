"""HTTP Tasks: ``arn:aws:states:::http:invoke``, as AWS's "Call HTTPS APIs" describes them.

The pipeline: ``parse_http_task`` (the task's Parameters/Arguments → ``HttpTask``, refusing
what AWS refuses with ``States.Runtime``) → ``build_request`` (merge in the connection's
invocation parameters and credentials, encode the query and the body) → send (httpx, on the
event loop, 60 seconds at most) → ``shape_response`` (``Headers``, ``ResponseBody``,
``StatusCode``, ``StatusText``) → ``status_failure`` for a status that is not 2xx
(``States.Http.StatusCode.<code>``). Everything but the sending is a pure function.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from flowstate.asl import errors
from flowstate.asl.errors import StatesError
from flowstate.integrations.connections import (
    INVALID_CONNECTION_STATE,
    Connection,
    ConnectionRegistry,
)

__all__ = [
    "HTTP_INVOKE",
    "METHODS",
    "SOCKET",
    "TIMEOUT_SECONDS",
    "HttpInvoker",
    "HttpRequest",
    "HttpTask",
    "build_request",
    "encode_form",
    "forbidden_header",
    "inspection_data",
    "is_http_resource",
    "parse_http_task",
    "shape_response",
    "status_failure",
]

HTTP_INVOKE = "arn:aws:states:::http:invoke"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
ARRAY_FORMATS = ("INDICES", "REPEAT", "COMMAS", "BRACKETS")
SOCKET = "States.Http.Socket"  # AWS: the request timed out (60 seconds)
STATUS_CODE_ERROR = "States.Http.StatusCode."
TIMEOUT_SECONDS = 60.0  # AWS: "HTTP task requests will timeout after 60 seconds"
RANGE = "bytes=0-262144"  # AWS asks for at most the payload quota
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# AWS: "You can't use the following headers in your HTTP Task definition. If you use these
# headers, the HTTP Task fails with the States.Runtime error."
_FORBIDDEN = frozenset(
    name.lower()
    for name in (
        "A-IM", "Accept-Charset", "Accept-Datetime", "Accept-Encoding", "Authorization",
        "Cache-Control", "Connection", "Content-Encoding", "Content-MD5", "Date", "Expect",
        "Forwarded", "From", "Host", "HTTP2-Settings", "If-Match", "If-Modified-Since",
        "If-None-Match", "If-Range", "If-Unmodified-Since", "Max-Forwards", "Origin", "Pragma",
        "Proxy-Authorization", "Referer", "Server", "TE", "Trailer", "Transfer-Encoding",
        "Upgrade", "Via", "Warning",
    )
)  # fmt: skip
_FORBIDDEN_PREFIXES = ("x-forwarded-", "x-amz-", "x-amzn-")
# AWS: a response of these content types fails the task with States.Runtime.
_BINARY_TYPES = ("application/octet-stream",)
_BINARY_PREFIXES = ("image/", "video/", "audio/")

Pairs = list[tuple[str, str]]


def is_http_resource(resource: str) -> bool:
    """``http:invoke``, with or without an integration-pattern suffix (which fails later)."""
    return resource == HTTP_INVOKE or resource.startswith(HTTP_INVOKE + ".")


def forbidden_header(name: str) -> bool:
    lower = name.lower()
    return lower in _FORBIDDEN or lower.startswith(_FORBIDDEN_PREFIXES)


def _runtime(message: str) -> StatesError:
    return StatesError(errors.RUNTIME, message)


# --- the task's parameters ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpTask:
    """An HTTP Task's parameters, checked."""

    api_endpoint: str
    method: str
    connection_arn: str
    headers: Pairs = field(default_factory=list)
    query: Pairs = field(default_factory=list)  # encoded keys: ids[0], ids[], ...
    body: Any = None
    has_body: bool = False
    url_encoded: bool = False
    array_format: str = "INDICES"


def _text(value: Any) -> str:
    """A JSON scalar as it appears in a header, a query or a form: JSON's spelling."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def parse_http_task(resource: str, parameters: Any) -> HttpTask:
    """The resolved Parameters (JSONPath) or Arguments (JSONata) of an HTTP Task."""
    if resource != HTTP_INVOKE:
        pattern = resource[len(HTTP_INVOKE) :]
        raise _runtime(
            f"The resource '{resource}' is not supported: an HTTP Task supports only the "
            f"request-response pattern ('{HTTP_INVOKE}'), not '{pattern}'"
        )
    if not isinstance(parameters, dict):
        raise _runtime("The HTTP Task's parameters must be a JSON object")
    endpoint = parameters.get("ApiEndpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise _runtime("The HTTP Task needs 'ApiEndpoint', the URL to call, as a string")
    split = urlsplit(endpoint)
    # AWS calls HTTPS APIs only; flowstate also allows http:// (local services, tests).
    if split.scheme not in ("http", "https") or not split.netloc:
        raise _runtime(f"'ApiEndpoint' is not an http(s) URL: '{endpoint}'")
    method = parameters.get("Method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _runtime(
            f"'Method' must be one of {', '.join(METHODS)}, not {json.dumps(method)}"
            if method is not None
            else "The HTTP Task needs 'Method': one of " + ", ".join(METHODS)
        )
    connection_arn = None
    for key in ("InvocationConfig", "Authentication"):  # AWS accepts either
        holder = parameters.get(key)
        if isinstance(holder, dict) and isinstance(holder.get("ConnectionArn"), str):
            connection_arn = holder["ConnectionArn"]
            break
    if not connection_arn:
        # AWS requires a connection: flowstate does too, so that a definition that runs here
        # runs on AWS. A local endpoint without credentials takes authorization_type = "NONE".
        raise _runtime(
            "The HTTP Task needs 'Authentication' (or 'InvocationConfig') with a "
            "'ConnectionArn': define the connection as [connections.NAME] in flowstate.toml"
        )
    transform = parameters.get("Transform") or {}
    if not isinstance(transform, dict):
        raise _runtime("'Transform' must be a JSON object")
    encoding = transform.get("RequestBodyEncoding", "NONE")
    if encoding not in ("NONE", "URL_ENCODED"):
        raise _runtime(f"'RequestBodyEncoding' must be NONE or URL_ENCODED, not {encoding!r}")
    options = transform.get("RequestEncodingOptions") or {}
    array_format = options.get("ArrayFormat", "INDICES") if isinstance(options, dict) else None
    if array_format not in ARRAY_FORMATS:
        raise _runtime(f"'ArrayFormat' must be one of {', '.join(ARRAY_FORMATS)}")
    return HttpTask(
        api_endpoint=endpoint,
        method=method.upper(),
        connection_arn=connection_arn,
        headers=_headers(parameters.get("Headers")),
        query=_query(parameters.get("QueryParameters"), array_format),
        body=parameters.get("RequestBody"),
        has_body="RequestBody" in parameters,
        url_encoded=encoding == "URL_ENCODED",
        array_format=array_format,
    )


def _headers(raw: Any) -> Pairs:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise _runtime("'Headers' must be a JSON object of header names and values")
    refused = sorted(name.lower() for name in raw if forbidden_header(name))
    if refused:
        raise _runtime(f"The 'Headers' field contains unsupported values: [{', '.join(refused)}]")
    out: Pairs = []
    for name, value in raw.items():
        if isinstance(value, list):  # one value per occurrence, as HTTP allows
            out.extend((name, _text(item)) for item in value)
        elif isinstance(value, dict):
            raise _runtime(f"The value of the header '{name}' must be a string")
        else:
            out.append((name, _text(value)))
    return out


def _query(raw: Any, array_format: str) -> Pairs:
    if raw is None:
        return []
    if isinstance(raw, str):  # AWS: "a string, JSON array, or a JSON object"
        return parse_qsl(raw.lstrip("?"), keep_blank_values=True)
    if isinstance(raw, list):
        pairs: Pairs = []
        for item in raw:
            if not isinstance(item, dict):
                raise _runtime("'QueryParameters' as an array must hold JSON objects")
            pairs.extend(form_pairs(item, array_format))
        return pairs
    if isinstance(raw, dict):
        return form_pairs(raw, array_format)
    raise _runtime("'QueryParameters' must be a JSON object, an array or a string")


# --- form encoding (bodies with URL_ENCODED, and query parameters) ---------------------------


def form_pairs(value: Mapping[str, Any], array_format: str = "INDICES") -> Pairs:
    """Flatten JSON into form fields: nested objects as ``a[b]``, arrays per ArrayFormat."""
    out: Pairs = []
    for key, item in value.items():
        _flatten(str(key), item, array_format, out)
    return out


def _flatten(key: str, value: Any, array_format: str, out: Pairs) -> None:
    if isinstance(value, dict):
        for sub, item in value.items():
            _flatten(f"{key}[{sub}]", item, array_format, out)
    elif isinstance(value, list):
        nested = any(isinstance(item, dict | list) for item in value)
        if array_format == "COMMAS" and not nested:
            if value:
                out.append((key, ",".join(_text(item) for item in value)))
        elif array_format == "REPEAT" and not nested:
            out.extend((key, _text(item)) for item in value)
        elif array_format == "BRACKETS" and not nested:
            out.extend((f"{key}[]", _text(item)) for item in value)
        else:  # INDICES, and any array of objects or arrays
            for index, item in enumerate(value):
                _flatten(f"{key}[{index}]", item, array_format, out)
    else:
        out.append((key, _text(value)))


def _encode(pairs: Pairs) -> str:
    # AWS's documented request: spaces as %20 and brackets escaped; the commas that join a
    # COMMAS array are kept (AWS shows ``array=a,b,c,d``).
    return "&".join(f"{quote(k, safe='')}={quote(v, safe=',')}" for k, v in pairs)


def encode_form(value: Mapping[str, Any], array_format: str = "INDICES") -> str:
    """``application/x-www-form-urlencoded`` text of a JSON object."""
    return _encode(form_pairs(value, array_format))


# --- the request ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: Pairs
    body: bytes | None
    # Lower-case names of the headers the connection put in (credentials, its parameters):
    # TestState hides their values unless revealSecrets is set.
    secret_headers: frozenset[str] = frozenset()


def _root(key: str) -> str:
    return key.split("[", 1)[0]


def build_request(
    task: HttpTask, connection: Connection, *, region: str, access_token: str | None = None
) -> HttpRequest:
    """Merge the connection into the task as AWS does: the connection's headers, query
    parameters and body parameters are added, and win over the task's on the same key."""
    # Headers: case-insensitive names; the connection's replace the task's.
    overriding = {name.lower() for name, _ in connection.header_parameters}
    headers = [(n, v) for n, v in task.headers if n.lower() not in overriding]
    headers.extend(connection.header_parameters)
    # Query parameters: a connection key replaces every task field of that key (ids[0], ...).
    replaced = {key for key, _ in connection.query_string_parameters}
    query = [(k, v) for k, v in task.query if _root(k) not in replaced]
    query.extend(connection.query_string_parameters)
    url = task.api_endpoint
    if query:
        url += ("&" if urlsplit(url).query else "?") + _encode(query)
    body = _body(task, connection)
    if body is not None and not any(n.lower() == "content-type" for n, _ in headers):
        headers.append(
            ("Content-Type", FORM_CONTENT_TYPE if task.url_encoded else JSON_CONTENT_TYPE)
        )
    # The credentials, then what AWS sets itself (a task cannot set these: forbidden above).
    credentials = connection.auth_headers(access_token)
    named = {name.lower() for name, _ in credentials} | {"user-agent", "range", "content-length"}
    headers = [(n, v) for n, v in headers if n.lower() not in named]
    headers.extend(credentials)
    headers.append(("User-Agent", f"Amazon|StepFunctions|HttpInvoke|{region}"))
    headers.append(("Range", RANGE))
    secret = {name.lower() for name, _ in (*credentials, *connection.header_parameters)}
    return HttpRequest(task.method, url, headers, body, frozenset(secret))


def _body(task: HttpTask, connection: Connection) -> bytes | None:
    body = task.body
    if connection.body_parameters:
        if not task.has_body or body is None:
            body = {}
        if not isinstance(body, dict):
            # AWS: a string request body cannot be merged with the connection's body.
            raise _runtime(
                "The RequestBody is not a JSON object and the connection "
                f"'{connection.name}' has body parameters: they cannot be merged"
            )
        body = {**body, **dict(connection.body_parameters)}
    elif not task.has_body:
        return None
    if isinstance(body, str):
        return body.encode()  # a string is sent as it is
    if task.url_encoded:
        if not isinstance(body, dict):
            raise _runtime("A URL_ENCODED RequestBody must be a JSON object or a string")
        return encode_form(body, task.array_format).encode()
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# --- the response ---------------------------------------------------------------------------


def _media_type(headers: Pairs) -> tuple[str, str | None]:
    value = next((v for n, v in headers if n.lower() == "content-type"), "")
    media, _, rest = value.partition(";")
    charset = None
    for param in rest.split(";"):
        name, _, val = param.strip().partition("=")
        if name.lower() == "charset" and val:
            charset = val.strip('"')
    return media.strip().lower(), charset


def shape_response(status_code: int, reason: str, headers: Pairs, body: bytes) -> dict[str, Any]:
    """The task's result: ``Headers`` (name → list of values), ``ResponseBody`` (parsed when
    the response is JSON), ``StatusCode``, ``StatusText``."""
    media, charset = _media_type(headers)
    if media in _BINARY_TYPES or media.startswith(_BINARY_PREFIXES):
        raise _runtime(f"The HTTP response's content type '{media}' is not supported")
    try:
        text = body.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        raise _runtime("The HTTP response body cannot be read as a string") from None
    response_body: Any = text
    if text and (media == "application/json" or media.endswith("+json")):
        with contextlib.suppress(ValueError):  # not JSON after all: kept as text
            response_body = json.loads(text)
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name, []).append(value)
    return {
        "Headers": grouped,
        "ResponseBody": response_body,
        "StatusCode": status_code,
        "StatusText": reason,
    }


def status_failure(response: Mapping[str, Any]) -> StatesError | None:
    """``States.Http.StatusCode.<code>`` for a status that is not 2xx; the cause is the
    response, as JSON text, so a Catch can read it back with States.StringToJson."""
    code = response["StatusCode"]
    if 200 <= code < 300:
        return None
    return StatesError(
        f"{STATUS_CODE_ERROR}{code}",
        json.dumps(response, ensure_ascii=False, separators=(",", ":")),
    )


def inspection_data(
    request: HttpRequest, response: Mapping[str, Any], *, reveal_secrets: bool = False
) -> dict[str, Any]:
    """TestState's TRACE ``request`` and ``response`` (botocore's InspectionDataRequest and
    InspectionDataResponse: every field a string)."""
    headers = {
        name: value if reveal_secrets or name.lower() not in request.secret_headers else "****"
        for name, value in request.headers
    }
    body = response["ResponseBody"]
    return {
        "request": {
            "protocol": urlsplit(request.url).scheme,
            "method": request.method,
            "url": request.url,
            "headers": json.dumps(headers, ensure_ascii=False),
            "body": (request.body or b"").decode("utf-8", "replace"),
        },
        "response": {
            "protocol": urlsplit(request.url).scheme,
            "statusCode": str(response["StatusCode"]),
            "statusMessage": response["StatusText"],
            "headers": json.dumps(response["Headers"], ensure_ascii=False),
            "body": body if isinstance(body, str) else json.dumps(body, ensure_ascii=False),
        },
    }


# --- sending --------------------------------------------------------------------------------

Trace = Callable[[HttpRequest, dict[str, Any]], None]  # what was sent, what came back


class HttpInvoker:
    """Runs HTTP Tasks on the caller's event loop, never blocking it.

    ``reuse_client``: one pooled client for the invoker's lifetime (the engine, which closes
    it with ``aclose``); otherwise a client per call (callers that run each call on a loop of
    its own, such as the in-process runner).
    """

    def __init__(
        self,
        connections: ConnectionRegistry | None = None,
        *,
        region: str = "us-east-1",
        timeout_seconds: float = TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
        reuse_client: bool = True,
    ) -> None:
        self.connections = connections or ConnectionRegistry()
        self.region = region
        self.timeout_seconds = timeout_seconds
        self._transport = transport
        self._reuse = reuse_client
        self._client: httpx.AsyncClient | None = None
        self._tokens: dict[str, tuple[str, float]] = {}  # connection → (token, expires_at)

    def _new_client(self) -> httpx.AsyncClient:
        # No redirects followed: a 3xx is a status like any other (not 2xx: an error).
        return httpx.AsyncClient(
            transport=self._transport, follow_redirects=False, timeout=self.timeout_seconds
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def invoke(self, resource: str, parameters: Any, trace: Trace | None = None) -> Any:
        """The task's result; a StatesError for every failure AWS names."""
        task = parse_http_task(resource, parameters)
        connection = self.connections.resolve(task.connection_arn)
        if self._reuse:
            if self._client is None:
                self._client = self._new_client()
            return await self._invoke(self._client, task, connection, trace)
        async with self._new_client() as client:
            return await self._invoke(client, task, connection, trace)

    async def _invoke(
        self,
        client: httpx.AsyncClient,
        task: HttpTask,
        connection: Connection,
        trace: Trace | None,
    ) -> Any:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                token = await self._token(client, connection)
                request = build_request(task, connection, region=self.region, access_token=token)
                reply = await client.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    content=request.body,
                )
        except TimeoutError:
            raise StatesError(
                SOCKET, f"The HTTP request timed out after {self.timeout_seconds:g} seconds"
            ) from None
        except httpx.HTTPError as exc:  # refused, reset, DNS, TLS: no response came
            raise StatesError(SOCKET, f"{type(exc).__name__}: {exc}") from None
        if reply.status_code in (401, 407):
            self._tokens.pop(connection.name, None)  # EventBridge: refresh the OAuth token
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in reply.headers.raw]
        response = shape_response(reply.status_code, reply.reason_phrase, headers, reply.content)
        if trace is not None:
            trace(request, response)
        failure = status_failure(response)
        if failure is not None:
            raise failure
        return response

    async def _token(self, client: httpx.AsyncClient, connection: Connection) -> str | None:
        if connection.authorization_type != "OAUTH_CLIENT_CREDENTIALS":
            return None
        cached = self._tokens.get(connection.name)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        fields = dict(connection.oauth_body_parameters)
        fields.setdefault("grant_type", "client_credentials")
        url = connection.authorization_endpoint
        if connection.oauth_query_string_parameters:
            url += ("&" if urlsplit(url).query else "?") + _encode(
                list(connection.oauth_query_string_parameters)
            )
        try:
            reply = await client.request(
                connection.http_method,
                url,
                headers=[*connection.oauth_header_parameters, ("Content-Type", FORM_CONTENT_TYPE)],
                content=encode_form(fields).encode(),
                auth=(connection.client_id, connection.client_secret),
            )
            token = reply.json().get("access_token") if reply.is_success else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise StatesError(
                INVALID_CONNECTION_STATE,
                f"Connection '{connection.name}': the OAuth token request failed: {exc}",
            ) from None
        if not isinstance(token, str) or not token:
            raise StatesError(
                INVALID_CONNECTION_STATE,
                f"Connection '{connection.name}': the authorization endpoint answered "
                f"{reply.status_code} without an access_token",
            )
        expires_in = reply.json().get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        self._tokens[connection.name] = (token, time.monotonic() + max(0.0, lifetime - 30.0))
        return token
