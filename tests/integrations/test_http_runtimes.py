"""HTTP Tasks end to end against a real server on 127.0.0.1: the in-process runner
(``flowstate run``, conformance) and the durable engine (``flowstate serve``)."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flowstate.asl.parse import parse_definition
from flowstate.integrations.connections import Connection, ConnectionRegistry
from flowstate.integrations.http import HttpInvoker
from flowstate.runtime.clock import VirtualClock
from flowstate.runtime.engine import Engine, EngineSettings, StartRequest
from flowstate.runtime.local import LocalRuntime, result_of, run_definition
from flowstate.storage import StateMachineRecord, open_store

from .conftest import Server

REGION, ACCOUNT = "eu-west-1", "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/flowstate"
CONNECTION_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:connection/Api/0e1c2b3a"
CONNECTIONS = ConnectionRegistry(
    {
        "Api": Connection(
            "Api",
            "API_KEY",
            api_key_name="X-Api-Key",
            api_key_value="s3cret",
            header_parameters=(("X-Tenant", "acme"),),
        )
    }
)


def task(endpoint: str, **parameters: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::http:invoke",
        "Parameters": {
            "ApiEndpoint": endpoint,
            "Method": "GET",
            "Authentication": {"ConnectionArn": CONNECTION_ARN},
            **parameters,
        },
        "End": True,
    }


def machine(state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"StartAt": "Call", "States": {"Call": {**state, **extra}}}


def local(definition: dict[str, Any], input_value: Any = None, **kw: Any) -> Any:
    return run_definition(
        json.dumps(definition),
        json.dumps(input_value or {}),
        region=REGION,
        clock="virtual",
        connections=kw.pop("connections", CONNECTIONS),
        **kw,
    )


# --- the in-process runner --------------------------------------------------------------------


def test_get_with_query_headers_and_connection(http_server: Server) -> None:
    definition = machine(
        task(
            http_server.url + "/echo",
            **{
                "QueryParameters.$": "$.query",
                "Headers": {"Accept": "application/json", "x-tenant": "mine"},
            },
        )
    )
    result = local(definition, {"query": {"q": "a b", "ids": [1, 2]}})
    assert result.status == "SUCCEEDED", result.cause
    output = json.loads(result.output)
    assert output["StatusCode"] == 200 and output["StatusText"] == "OK"
    assert output["Headers"]["X-Test"] == ["one", "two"]
    echo = output["ResponseBody"]
    assert echo["method"] == "GET"
    assert echo["query"] == [["q", "a b"], ["ids[0]", "1"], ["ids[1]", "2"]]
    assert echo["headers"]["x-api-key"] == "s3cret"
    assert echo["headers"]["x-tenant"] == "acme"  # the connection's value wins
    assert echo["headers"]["user-agent"] == f"Amazon|StepFunctions|HttpInvoke|{REGION}"
    assert echo["headers"]["range"] == "bytes=0-262144"
    types = [e["type"] for e in result.history]
    assert types[2:5] == ["TaskScheduled", "TaskStarted", "TaskSucceeded"]


def test_jsonata_post_with_url_encoded_body(http_server: Server) -> None:
    state = {
        "Type": "Task",
        "QueryLanguage": "JSONata",
        "Resource": "arn:aws:states:::http:invoke",
        "Arguments": {
            "ApiEndpoint": http_server.url + "/echo",
            "Method": "POST",
            "InvocationConfig": {"ConnectionArn": CONNECTION_ARN},
            "RequestBody": {"name": "{% $states.input.name %}", "tags": ["x", "y"]},
            "Transform": {
                "RequestBodyEncoding": "URL_ENCODED",
                "RequestEncodingOptions": {"ArrayFormat": "REPEAT"},
            },
        },
        "Output": "{% $states.result.ResponseBody %}",
        "End": True,
    }
    result = local(machine(state), {"name": "Jane Doe"})
    assert result.status == "SUCCEEDED", result.cause
    echo = json.loads(result.output)
    assert echo["body"] == "name=Jane%20Doe&tags=x&tags=y"
    assert echo["headers"]["content-type"] == "application/x-www-form-urlencoded"


def test_status_code_error_is_retried_and_caught(http_server: Server) -> None:
    definition = machine(
        task(http_server.url + "/status/503"),
        Retry=[{"ErrorEquals": ["States.Http.StatusCode.503"], "MaxAttempts": 1}],
        Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handled"}],
    )
    del definition["States"]["Call"]["End"]
    definition["States"]["Call"]["Next"] = "Handled"
    definition["States"]["Handled"] = {"Type": "Pass", "End": True}
    result = local(definition)
    assert result.status == "SUCCEEDED", result.cause
    error = json.loads(result.output)["error"]
    assert error["Error"] == "States.Http.StatusCode.503"
    cause = json.loads(error["Cause"])
    assert cause["StatusCode"] == 503 and cause["ResponseBody"] == {"why": "nope"}
    assert len([r for r in http_server.requests if r.path == "/status/503"]) == 2


def test_text_response_and_failures(http_server: Server) -> None:
    text = local(machine(task(http_server.url + "/text")))
    assert json.loads(text.output)["ResponseBody"] == "hello, world"
    image = local(machine(task(http_server.url + "/image")))
    assert (image.status, image.error) == ("FAILED", "States.Runtime")
    unknown = local(machine(task(http_server.url + "/echo")), connections=ConnectionRegistry())
    assert unknown.error == "Events.ConnectionResource.ResourceNotFound"
    assert not any(r.path == "/echo" for r in http_server.requests)  # nothing was sent
    forbidden = local(machine(task(http_server.url + "/echo", Headers={"Authorization": "x"})))
    assert forbidden.error == "States.Runtime"


def test_refused_connection_is_a_socket_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = local(machine(task(f"http://127.0.0.1:{port}/nothing")))
    assert (result.status, result.error) == ("FAILED", "States.Http.Socket")


def test_timeout_is_a_socket_error(http_server: Server) -> None:
    runtime = LocalRuntime(
        clock="virtual",
        http=HttpInvoker(CONNECTIONS, region=REGION, timeout_seconds=0.2, reuse_client=False),
    )
    parsed = parse_definition(json.dumps(machine(task(http_server.url + "/slow"))))
    execution = runtime.start(parsed, {}, state_machine_name="m")
    runtime.run_until_idle()
    result = result_of(execution)
    assert (result.status, result.error) == ("FAILED", "States.Http.Socket")
    assert "timed out" in (result.cause or "")


# --- the durable engine -----------------------------------------------------------------------


def test_engine_runs_http_tasks_on_its_loop(http_server: Server) -> None:
    store = open_store("memory:")
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:calls"
    definition = machine(
        task(http_server.url + "/echo", **{"RequestBody.$": "$"}, Method="PUT"),
        ResultSelector={"status.$": "$.StatusCode", "body.$": "$.ResponseBody.body"},
    )
    text = json.dumps(definition)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    store.create_state_machine(
        StateMachineRecord(arn, "calls", "STANDARD", text, "r", "r1", t0, t0)
    )

    def start(i: int) -> StartRequest:
        return StartRequest(
            definition=text,
            state_machine_arn=arn,
            state_machine_name="calls",
            revision_id="r1",
            role_arn="r",
            type="STANDARD",
            name=f"e{i}",
            arn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:calls:e{i}",
            input=json.dumps({"i": i}),
            input_value={"i": i},
        )

    async def main() -> None:
        eng = Engine(
            store,
            clock=VirtualClock(t0),
            settings=EngineSettings(region=REGION, account_id=ACCOUNT),
            http=HttpInvoker(CONNECTIONS, region=REGION),
        )
        await eng.start()
        await asyncio.gather(*(eng.start_execution(start(i)) for i in range(5)))
        await asyncio.gather(*(eng.wait_stopped(start(i).arn) for i in range(5)))
        await eng.stop()

    asyncio.run(main())
    for i in range(5):
        row = store.get_execution(start(i).arn)
        assert row is not None and row.status == "SUCCEEDED", row and row.cause
        assert json.loads(row.output or "") == {
            "status": 200,
            "body": json.dumps({"i": i}, separators=(",", ":")),
        }
    assert {r.method for r in http_server.requests} == {"PUT"}
    assert len(http_server.requests) == 5


# --- TestState --------------------------------------------------------------------------------


def test_test_state_calls_the_api_and_traces_it(http_server: Server) -> None:
    from flowstate.service.facade import Service

    state = task(http_server.url + "/echo", Method="POST", RequestBody={"a": 1})

    async def main() -> list[dict[str, Any]]:
        service = Service(
            open_store("memory:"), clock=VirtualClock(datetime(2026, 1, 1, tzinfo=UTC)),
            connections=CONNECTIONS,
        )  # fmt: skip
        await service.startup()
        try:
            out = []
            for level, reveal in (("INFO", False), ("TRACE", False), ("TRACE", True)):
                request = {"definition": json.dumps(state), "input": "{}", "roleArn": ROLE,
                           "inspectionLevel": level}  # fmt: skip
                if reveal:
                    request["revealSecrets"] = True
                out.append(await service.dispatch("TestState", request))
            return out
        finally:
            await service.shutdown()

    info, trace, revealed = asyncio.run(main())
    assert info["status"] == "SUCCEEDED" and "inspectionData" not in info
    assert json.loads(info["output"])["ResponseBody"]["body"] == '{"a":1}'
    sent = trace["inspectionData"]["request"]
    assert sent["method"] == "POST" and sent["url"] == http_server.url + "/echo"
    assert sent["body"] == '{"a":1}'
    assert json.loads(sent["headers"])["X-Api-Key"] == "****"  # the connection's secret
    assert json.loads(revealed["inspectionData"]["request"]["headers"])["X-Api-Key"] == "s3cret"
    got = trace["inspectionData"]["response"]
    assert (got["statusCode"], got["statusMessage"]) == ("200", "OK")
    assert json.loads(got["body"])["method"] == "POST"


# --- flowstate run ----------------------------------------------------------------------------


def test_flowstate_run_reads_connections_from_config(
    http_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from flowstate.cli.main import main

    config = tmp_path / "dev.toml"
    config.write_text(
        '[connections.Api]\nauthorization_type = "BASIC"\nusername = "me"\n'
        'password_env = "API_PASSWORD"\n'
    )
    definition = tmp_path / "call.json"
    definition.write_text(json.dumps(machine(task(http_server.url + "/echo"),
                                             OutputPath="$.ResponseBody.headers")))  # fmt: skip
    monkeypatch.setenv("API_PASSWORD", "pw")
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(definition), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["authorization"] == "Basic bWU6cHc="  # me:pw
    monkeypatch.delenv("API_PASSWORD")
    refused = runner.invoke(main, ["run", str(definition), "--config", str(config)])
    assert refused.exit_code == 2 and "API_PASSWORD is not set" in refused.output
