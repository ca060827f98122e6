"""HTTP Tasks without a network: parameters, request building, response shaping, errors;
and the invoker over httpx's in-memory transport (OAuth tokens)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest

from flowstate.asl.errors import StatesError
from flowstate.integrations.connections import Connection, ConnectionRegistry
from flowstate.integrations.http import (
    FORM_CONTENT_TYPE,
    HTTP_INVOKE,
    HttpInvoker,
    build_request,
    encode_form,
    forbidden_header,
    is_http_resource,
    parse_http_task,
    shape_response,
    status_failure,
)

ARN = "arn:aws:events:us-east-1:123456789012:connection/Api/81210c42"
NONE = Connection("Api", "NONE")


def params(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ApiEndpoint": "https://api.example.com/v1/things",
        "Method": "POST",
        "Authentication": {"ConnectionArn": ARN},
    }
    base.update(extra)
    return base


def header(request: Any, name: str) -> list[str]:
    return [v for k, v in request.headers if k.lower() == name.lower()]


# --- parameters -------------------------------------------------------------------------------


def test_resource_recognition() -> None:
    assert is_http_resource(HTTP_INVOKE)
    assert is_http_resource(HTTP_INVOKE + ".waitForTaskToken")
    assert not is_http_resource("arn:aws:states:::lambda:invoke")


def test_wait_for_task_token_is_refused() -> None:
    with pytest.raises(StatesError) as raised:
        parse_http_task(HTTP_INVOKE + ".waitForTaskToken", params())
    assert raised.value.error == "States.Runtime"
    assert ".waitForTaskToken" in raised.value.cause


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"ApiEndpoint": None}, "ApiEndpoint"),
        ({"ApiEndpoint": "ftp://x/y"}, "http(s)"),
        ({"Method": None}, "Method"),
        ({"Method": "TRACE"}, "TRACE"),
        ({"Authentication": None}, "ConnectionArn"),
        ({"Transform": {"RequestBodyEncoding": "GZIP"}}, "RequestBodyEncoding"),
        ({"Transform": {"RequestEncodingOptions": {"ArrayFormat": "DOTS"}}}, "ArrayFormat"),
        ({"Headers": "x"}, "Headers"),
        ({"QueryParameters": 3}, "QueryParameters"),
    ],
)
def test_bad_parameters_fail_with_states_runtime(change: dict[str, Any], needle: str) -> None:
    p = params()
    for key, value in change.items():
        if value is None:
            p.pop(key)
        else:
            p[key] = value
    with pytest.raises(StatesError) as raised:
        parse_http_task(HTTP_INVOKE, p)
    assert raised.value.error == "States.Runtime"
    assert needle in raised.value.cause


def test_invocation_config_names_the_connection_too() -> None:
    p = params(InvocationConfig={"ConnectionArn": ARN})
    del p["Authentication"]
    assert parse_http_task(HTTP_INVOKE, p).connection_arn == ARN


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "host",
        "X-Amz-Date",
        "x-amzn-trace-id",
        "X-Forwarded-For",
        "Accept-Encoding",
        "transfer-encoding",
    ],
)
def test_forbidden_headers(name: str) -> None:
    assert forbidden_header(name)
    with pytest.raises(StatesError) as raised:
        parse_http_task(HTTP_INVOKE, params(Headers={name: "x", "Accept": "a"}))
    assert raised.value.error == "States.Runtime"
    assert f"[{name.lower()}]" in raised.value.cause


def test_allowed_headers() -> None:
    assert not forbidden_header("Content-Type")
    assert not forbidden_header("X-Amazing")  # only the x-amz- prefix is refused
    task = parse_http_task(HTTP_INVOKE, params(Headers={"Accept": "a", "X-N": 3, "X-L": ["1", 2]}))
    assert task.headers == [("Accept", "a"), ("X-N", "3"), ("X-L", "1"), ("X-L", "2")]


# --- form and query encoding -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("array_format", "encoded"),
    [
        ("INDICES", "array%5B0%5D=a&array%5B1%5D=b&array%5B2%5D=c&array%5B3%5D=d"),
        ("REPEAT", "array=a&array=b&array=c&array=d"),
        ("COMMAS", "array=a,b,c,d"),
        ("BRACKETS", "array%5B%5D=a&array%5B%5D=b&array%5B%5D=c&array%5B%5D=d"),
    ],
)
def test_array_formats_as_aws_documents_them(array_format: str, encoded: str) -> None:
    assert encode_form({"array": ["a", "b", "c", "d"]}, array_format) == encoded


def test_form_encoding_of_the_aws_example() -> None:
    body = {
        "description": "Monthly subscription",
        "metadata": {"order_details": "monthly report data"},
        "customer": "1234567890",
    }
    assert encode_form(body) == (
        "description=Monthly%20subscription&metadata%5Border_details%5D=monthly%20report%20data"
        "&customer=1234567890"
    )


def test_form_scalars_and_nesting() -> None:
    assert (
        encode_form({"n": 1.5, "t": True, "z": None, "s": "a&b=c"}) == "n=1.5&t=true&z=&s=a%26b%3Dc"
    )
    assert encode_form({"o": [{"k": 1}]}, "REPEAT") == "o%5B0%5D%5Bk%5D=1"  # objects: indices


def test_query_parameters_object_string_and_array() -> None:
    task = parse_http_task(HTTP_INVOKE, params(QueryParameters={"currency": "usd", "ids": [1, 2]}))
    request = build_request(task, NONE, region="eu-west-1")
    assert request.url == "https://api.example.com/v1/things?currency=usd&ids%5B0%5D=1&ids%5B1%5D=2"
    task = parse_http_task(HTTP_INVOKE, params(QueryParameters="a=1&b=two words"))
    assert build_request(task, NONE, region="r").url.endswith("?a=1&b=two%20words")
    task = parse_http_task(HTTP_INVOKE, params(QueryParameters=[{"a": 1}, {"b": 2}]))
    assert build_request(task, NONE, region="r").url.endswith("?a=1&b=2")


def test_query_appends_to_an_endpoint_query() -> None:
    task = parse_http_task(
        HTTP_INVOKE, params(ApiEndpoint="https://h/p?x=1", QueryParameters={"y": "2"})
    )
    assert build_request(task, NONE, region="r").url == "https://h/p?x=1&y=2"


# --- merging with the connection --------------------------------------------------------------


def test_the_aws_merging_example() -> None:
    """AWS's "Merging EventBridge connection and HTTP Task definition data" example."""
    connection = Connection(
        "Example",
        "API_KEY",
        api_key_name="ApiKey",
        api_key_value="key_value",
        body_parameters=(("BodyParam", "connection_body_param"),),
        header_parameters=(("Header-Param", "connection_header_param"),),
        query_string_parameters=(("QueryParam", "connection_query_param"),),
    )
    task = parse_http_task(
        HTTP_INVOKE,
        params(
            ApiEndpoint="https://example.com/path",
            Headers={"Request-Id": "my_request_id", "header-param": "state_machine_header_param"},
            RequestBody={
                "Job": "Software Engineer",
                "Company": "AnyCompany",
                "BodyParam": "state_machine_body_param",
            },
            QueryParameters={"QueryParam": "state_machine_query_param"},
        ),
    )
    request = build_request(task, connection, region="us-east-2")
    assert request.url == "https://example.com/path?QueryParam=connection_query_param"
    assert json.loads(request.body or b"") == {
        "Job": "Software Engineer",
        "Company": "AnyCompany",
        "BodyParam": "connection_body_param",
    }
    assert header(request, "Header-Param") == ["connection_header_param"]  # case-insensitive
    assert header(request, "Request-Id") == ["my_request_id"]
    assert header(request, "ApiKey") == ["key_value"]
    assert header(request, "Content-Type") == ["application/json; charset=UTF-8"]
    assert header(request, "User-Agent") == ["Amazon|StepFunctions|HttpInvoke|us-east-2"]
    assert header(request, "Range") == ["bytes=0-262144"]


def test_connection_query_key_replaces_every_field_of_that_key() -> None:
    connection = Connection("C", "NONE", query_string_parameters=(("ids", "9"),))
    task = parse_http_task(HTTP_INVOKE, params(QueryParameters={"ids": [1, 2], "k": "v"}))
    assert build_request(task, connection, region="r").url.endswith("?k=v&ids=9")


def test_string_body_cannot_merge_with_connection_body() -> None:
    connection = Connection("C", "NONE", body_parameters=(("a", "1"),))
    task = parse_http_task(HTTP_INVOKE, params(RequestBody="raw text"))
    with pytest.raises(StatesError) as raised:
        build_request(task, connection, region="r")
    assert raised.value.error == "States.Runtime"
    # Without connection body parameters a string is sent as it is.
    assert build_request(task, NONE, region="r").body == b"raw text"


def test_connection_body_parameters_make_a_body() -> None:
    connection = Connection("C", "NONE", body_parameters=(("a", "1"),))
    task = parse_http_task(HTTP_INVOKE, params())
    assert json.loads(build_request(task, connection, region="r").body or b"") == {"a": "1"}
    assert build_request(task, NONE, region="r").body is None


def test_url_encoded_body_after_merging() -> None:
    connection = Connection("C", "NONE", body_parameters=(("token", "s e"),))
    task = parse_http_task(
        HTTP_INVOKE,
        params(
            RequestBody={"tags": ["x", "y"]},
            Transform={
                "RequestBodyEncoding": "URL_ENCODED",
                "RequestEncodingOptions": {"ArrayFormat": "BRACKETS"},
            },
        ),
    )
    request = build_request(task, connection, region="r")
    assert request.body == b"tags%5B%5D=x&tags%5B%5D=y&token=s%20e"
    assert header(request, "Content-Type") == [FORM_CONTENT_TYPE]


def test_given_content_type_is_kept() -> None:
    task = parse_http_task(
        HTTP_INVOKE, params(Headers={"content-type": "text/csv"}, RequestBody="a,b")
    )
    request = build_request(task, NONE, region="r")
    assert header(request, "Content-Type") == ["text/csv"]


def test_basic_and_oauth_credentials() -> None:
    basic = Connection("B", "BASIC", username="user", password="pw")
    request = build_request(parse_http_task(HTTP_INVOKE, params()), basic, region="r")
    assert header(request, "Authorization") == ["Basic " + base64.b64encode(b"user:pw").decode()]
    oauth = Connection("O", "OAUTH_CLIENT_CREDENTIALS")
    request = build_request(
        parse_http_task(HTTP_INVOKE, params()), oauth, region="r", access_token="t0k"
    )
    assert header(request, "Authorization") == ["Bearer t0k"]
    assert "pw" not in repr(basic)  # secrets stay out of logs


# --- the response -----------------------------------------------------------------------------


def test_json_response_is_parsed_and_headers_grouped() -> None:
    headers = [("Content-Type", "application/json"), ("X-A", "1"), ("X-A", "2")]
    shaped = shape_response(200, "OK", headers, b'{"id": 7}')
    assert shaped == {
        "Headers": {"Content-Type": ["application/json"], "X-A": ["1", "2"]},
        "ResponseBody": {"id": 7},
        "StatusCode": 200,
        "StatusText": "OK",
    }


def test_text_and_broken_json_stay_text() -> None:
    assert (
        shape_response(200, "OK", [("content-type", "text/plain")], b"[1]")["ResponseBody"] == "[1]"
    )
    broken = shape_response(200, "OK", [("content-type", "application/json")], b"{no")
    assert broken["ResponseBody"] == "{no"
    vendor = shape_response(200, "OK", [("content-type", "application/problem+json")], b"{}")
    assert vendor["ResponseBody"] == {}


@pytest.mark.parametrize("media", ["application/octet-stream", "image/png", "video/mp4", "audio/x"])
def test_binary_responses_fail_with_states_runtime(media: str) -> None:
    with pytest.raises(StatesError) as raised:
        shape_response(200, "OK", [("Content-Type", media)], b"\x00")
    assert raised.value.error == "States.Runtime"


def test_undecodable_body_fails_with_states_runtime() -> None:
    with pytest.raises(StatesError) as raised:
        shape_response(200, "OK", [("Content-Type", "text/plain")], b"\xff\xfe\xfa")
    assert raised.value.error == "States.Runtime"


def test_status_failure_names_the_code_and_carries_the_response() -> None:
    ok = shape_response(204, "No Content", [], b"")
    assert status_failure(ok) is None
    shaped = shape_response(404, "Not Found", [("Content-Type", "application/json")], b'{"e":1}')
    failure = status_failure(shaped)
    assert failure is not None
    assert failure.error == "States.Http.StatusCode.404"
    assert json.loads(failure.cause) == shaped
    redirect = status_failure(shape_response(302, "Found", [], b""))
    assert redirect is not None and redirect.error == "States.Http.StatusCode.302"


# --- the invoker over an in-memory transport ----------------------------------------------------


def test_oauth_token_fetched_once_then_refreshed_after_401() -> None:
    seen: list[httpx.Request] = []
    state = {"tokens": 0, "api_status": 200}

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/oauth/token":
            state["tokens"] += 1
            return httpx.Response(200, json={"access_token": f"t{state['tokens']}"})
        return httpx.Response(state["api_status"], json={"auth": request.headers["authorization"]})

    connection = Connection(
        "O",
        "OAUTH_CLIENT_CREDENTIALS",
        authorization_endpoint="https://auth.example.com/oauth/token",
        client_id="id",
        client_secret="secret",
        oauth_body_parameters=(("scope", "read"),),
    )
    invoker = HttpInvoker(
        ConnectionRegistry({"O": connection}), transport=httpx.MockTransport(handle)
    )
    task = params(Authentication={"ConnectionArn": "arn:aws:events:r:1:connection/O/x"})

    async def scenario() -> list[Any]:
        results: list[Any] = [await invoker.invoke(HTTP_INVOKE, task)]
        results.append(await invoker.invoke(HTTP_INVOKE, task))
        state["api_status"] = 401
        with pytest.raises(StatesError) as raised:
            await invoker.invoke(HTTP_INVOKE, task)
        results.append(raised.value.error)
        state["api_status"] = 200
        results.append(await invoker.invoke(HTTP_INVOKE, task))
        await invoker.aclose()
        return results

    first, second, error, after = asyncio.run(scenario())
    assert first["ResponseBody"] == {"auth": "Bearer t1"}
    assert second["ResponseBody"] == {"auth": "Bearer t1"}  # cached
    assert error == "States.Http.StatusCode.401"
    assert after["ResponseBody"] == {"auth": "Bearer t2"}  # refreshed after the 401
    token_request = next(r for r in seen if r.url.path == "/oauth/token")
    assert (
        token_request.headers["authorization"] == "Basic " + base64.b64encode(b"id:secret").decode()
    )
    assert dict(httpx.QueryParams(token_request.content.decode())) == {
        "scope": "read",
        "grant_type": "client_credentials",
    }


def test_oauth_endpoint_refusing_fails_with_connection_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(400, json={"error": "x"}))
    connection = Connection(
        "O", "OAUTH_CLIENT_CREDENTIALS", authorization_endpoint="https://a/t", client_id="i"
    )
    invoker = HttpInvoker(
        ConnectionRegistry({"O": connection}), transport=transport, reuse_client=False
    )
    task = params(Authentication={"ConnectionArn": "arn:aws:events:r:1:connection/O/x"})
    with pytest.raises(StatesError) as raised:
        asyncio.run(invoker.invoke(HTTP_INVOKE, task))
    assert raised.value.error == "Events.ConnectionResource.InvalidConnectionState"


def test_unknown_connection() -> None:
    invoker = HttpInvoker(ConnectionRegistry({"Known": NONE}), reuse_client=False)
    with pytest.raises(StatesError) as raised:
        asyncio.run(invoker.invoke(HTTP_INVOKE, params()))
    assert raised.value.error == "Events.ConnectionResource.ResourceNotFound"
    assert "Known" in raised.value.cause
