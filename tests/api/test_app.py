"""The ASGI app: routing, error mapping, health, lifespan; and boto3 against a real server."""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import uvicorn
from botocore.config import Config
from botocore.exceptions import ClientError
from starlette.exceptions import StarletteDeprecationWarning

from flowstate.api import Backend, create_app
from flowstate.service.errors import ServiceError

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient; the dev extra still pins httpx, which
    # works. Only this one import-time notice is silenced, every other warning stays an error.
    warnings.filterwarnings(
        "ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning
    )
    from starlette.testclient import TestClient

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:m"
EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:m:run-1"
STARTED_AT = datetime(2024, 1, 1, 12, 0, 0, 123_000, tzinfo=UTC)

HEADERS = {"Content-Type": "application/x-amz-json-1.0"}


def target(operation: str) -> dict[str, str]:
    """Request headers for ``operation``, as botocore sends them."""
    return {**HEADERS, "X-Amz-Target": f"AWSStepFunctions.{operation}"}


class FakeBackend:
    """Answers ``replies[operation]`` (a dict, or an exception to raise), else ``{}``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.events: list[str] = []
        self.replies: dict[str, Any] = {}
        self.report: Any = {"status": "ok"}

    async def dispatch(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, request))
        reply = self.replies.get(operation, {})
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def startup(self) -> None:
        self.events.append("startup")

    async def shutdown(self) -> None:
        self.events.append("shutdown")

    def health(self) -> dict[str, Any]:
        if isinstance(self.report, BaseException):
            raise self.report
        return self.report


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def client(backend: FakeBackend) -> Iterator[TestClient]:
    typed: Backend = backend  # the fake must satisfy the protocol
    with TestClient(create_app(typed)) as test_client:
        yield test_client


def test_a_call_reaches_the_backend_validated_and_its_answer_comes_back(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.replies["StartExecution"] = {"executionArn": EXECUTION_ARN, "startDate": STARTED_AT}
    response = client.post(
        "/",
        headers=target("StartExecution"),
        content=json.dumps({"stateMachineArn": ARN, "input": "{}", "extra": 1}),
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-amz-json-1.0"
    assert uuid.UUID(response.headers["x-amzn-requestid"]).version == 4
    assert response.json() == {"executionArn": EXECUTION_ARN, "startDate": 1704110400.123}
    assert backend.calls == [("StartExecution", {"stateMachineArn": ARN, "input": "{}"})]


def test_every_response_has_its_own_request_id(client: TestClient) -> None:
    first = client.post("/", headers=target("ListStateMachines"))
    second = client.post("/", headers=target("Nope"))
    assert first.headers["x-amzn-requestid"] != second.headers["x-amzn-requestid"]
    assert uuid.UUID(second.headers["x-amzn-requestid"]).version == 4


def test_an_empty_body_is_an_empty_request(client: TestClient, backend: FakeBackend) -> None:
    response = client.post("/", headers=target("ListStateMachines"))
    assert response.status_code == 200
    assert backend.calls == [("ListStateMachines", {})]


def test_a_service_error_is_sent_as_aws_sends_it(client: TestClient, backend: FakeBackend) -> None:
    message = f"Execution Does Not Exist: '{EXECUTION_ARN}'"
    backend.replies["DescribeExecution"] = ServiceError("ExecutionDoesNotExist", message)
    response = client.post(
        "/", headers=target("DescribeExecution"), json={"executionArn": EXECUTION_ARN}
    )
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"] == "ExecutionDoesNotExist"
    assert response.json() == {"__type": "ExecutionDoesNotExist", "message": message}


def test_a_service_error_keeps_its_status(client: TestClient, backend: FakeBackend) -> None:
    backend.replies["ListActivities"] = ServiceError("ServiceUnavailable", "draining", 503)
    response = client.post("/", headers=target("ListActivities"), json={})
    assert response.status_code == 503
    assert response.json()["__type"] == "ServiceUnavailable"


@pytest.mark.parametrize(
    "headers",
    [
        target("StartExecutions"),
        target("startExecution"),
        HEADERS,
        {**HEADERS, "X-Amz-Target": "StartExecution"},
    ],
)
def test_an_unknown_operation_never_reaches_the_backend(
    client: TestClient, backend: FakeBackend, headers: dict[str, str]
) -> None:
    response = client.post("/", headers=headers, content=b"{")
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"
    assert response.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert backend.calls == []


def test_an_invalid_request_never_reaches_the_backend(
    client: TestClient, backend: FakeBackend
) -> None:
    response = client.post("/", headers=target("StartExecution"), json={"name": "n"})
    assert response.status_code == 400
    assert response.json() == {
        "__type": "ValidationException",
        "message": "1 validation error detected: Value null at 'stateMachineArn' failed to "
        "satisfy constraint: Member must not be null",
    }
    assert backend.calls == []


def test_a_body_that_is_not_json_is_a_serialization_exception(
    client: TestClient, backend: FakeBackend
) -> None:
    response = client.post("/", headers=target("ListActivities"), content=b"{nope")
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"
    assert backend.calls == []


def test_a_backend_fault_is_a_logged_internal_failure(
    client: TestClient, backend: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.replies["ListActivities"] = RuntimeError("disk on fire")
    with caplog.at_level(logging.ERROR, logger="flowstate.api.app"):
        response = client.post("/", headers=target("ListActivities"))
    assert response.status_code == 500
    body = response.json()
    assert body["__type"] == "InternalFailure"
    assert "disk on fire" not in body["message"]  # no internals leak to clients
    request_id = response.headers["x-amzn-requestid"]
    assert request_id in body["message"]
    [record] = caplog.records
    assert request_id in record.getMessage()
    assert record.exc_info is not None and "disk on fire" in str(record.exc_info[1])
    # The server is still serving.
    assert client.post("/", headers=target("ListStateMachines")).status_code == 200


def test_a_response_that_cannot_be_encoded_is_an_internal_failure(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.replies["DescribeExecution"] = {"startDate": datetime(2024, 1, 1)}  # naive
    response = client.post(
        "/", headers=target("DescribeExecution"), json={"executionArn": EXECUTION_ARN}
    )
    assert response.status_code == 500
    assert response.json()["__type"] == "InternalFailure"


def test_a_sync_host_request_is_served(client: TestClient, backend: FakeBackend) -> None:
    backend.replies["StartSyncExecution"] = {"status": "SUCCEEDED", "startDate": STARTED_AT}
    response = client.post(
        "/",
        headers={
            **target("StartSyncExecution"),
            "Host": "sync-states.us-east-1.amazonaws.com",
        },
        json={"stateMachineArn": ARN},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "SUCCEEDED"
    assert backend.calls == [("StartSyncExecution", {"stateMachineArn": ARN})]


@pytest.mark.parametrize("path", ["/health", "/_flowstate/health"])
def test_health_reports_the_backend(client: TestClient, backend: FakeBackend, path: str) -> None:
    backend.report = {"status": "ok", "executions": 3}
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "executions": 3}


@pytest.mark.parametrize("report", [{"status": "draining"}, {"executions": 3}, ["ok"]])
def test_health_is_503_unless_the_backend_says_ok(
    client: TestClient, backend: FakeBackend, report: Any
) -> None:
    backend.report = report
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == report


def test_health_is_503_when_the_check_fails(
    client: TestClient, backend: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.report = RuntimeError("database gone")
    with caplog.at_level(logging.ERROR, logger="flowstate.api.app"):
        response = client.get("/_flowstate/health")
    assert response.status_code == 503
    assert response.json() == {"status": "error"}
    assert len(caplog.records) == 1


def test_the_lifespan_starts_and_stops_the_backend() -> None:
    backend = FakeBackend()
    with TestClient(create_app(backend)) as client:
        assert backend.events == ["startup"]
        client.get("/health")
    assert backend.events == ["startup", "shutdown"]


def test_the_payload_limit_is_configurable(backend: FakeBackend) -> None:
    body = {"taskToken": "t", "output": "x" * 300_000}
    with TestClient(create_app(backend, max_payload_bytes=None)) as relaxed:
        assert relaxed.post("/", headers=target("SendTaskSuccess"), json=body).status_code == 200
    with TestClient(create_app(backend)) as default:
        response = default.post("/", headers=target("SendTaskSuccess"), json=body)
        assert response.status_code == 400
        assert "262144 bytes in UTF-8 encoding" in response.json()["message"]


# --- boto3 against the app under uvicorn ------------------------------------------------------


class _Server(uvicorn.Server):
    """uvicorn's server with an event set once startup has finished (or failed)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeBackend, str]]:
    backend = FakeBackend()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        create_app(backend), lifespan="on", ws="none", http="h11", log_level="warning"
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(10)
        assert server.started
        yield backend, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
    assert backend.events == ["startup", "shutdown"]


@pytest.fixture
def sfn(served: tuple[FakeBackend, str]) -> Iterator[Any]:
    backend, url = served
    backend.calls.clear()
    backend.replies.clear()
    client = boto3.client(
        "stepfunctions",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        # Server-side validation is under test, so botocore's own is off; no retries, so a
        # 500 comes back at once.
        config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
    )
    yield client
    client.close()


def test_boto3_parses_a_response_including_times(sfn: Any, served: Any) -> None:
    backend, _ = served
    backend.replies["DescribeExecution"] = {
        "executionArn": EXECUTION_ARN,
        "stateMachineArn": ARN,
        "status": "RUNNING",
        "startDate": STARTED_AT,
    }
    described = sfn.describe_execution(executionArn=EXECUTION_ARN)
    assert described["status"] == "RUNNING"
    assert described["startDate"] == STARTED_AT
    assert described["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert backend.calls == [("DescribeExecution", {"executionArn": EXECUTION_ARN})]


def test_boto3_raises_a_service_error_as_its_modelled_exception(sfn: Any, served: Any) -> None:
    backend, _ = served
    message = f"Execution Does Not Exist: '{EXECUTION_ARN}'"
    backend.replies["DescribeExecution"] = ServiceError("ExecutionDoesNotExist", message)
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist) as caught:
        sfn.describe_execution(executionArn=EXECUTION_ARN)
    assert isinstance(caught.value, ClientError)
    assert caught.value.response["Error"] == {"Code": "ExecutionDoesNotExist", "Message": message}


def test_boto3_sees_a_validation_exception(sfn: Any, served: Any) -> None:
    backend, _ = served
    with pytest.raises(ClientError) as caught:
        sfn.start_execution(stateMachineArn=ARN, name="a" * 81)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        f"1 validation error detected: Value '{'a' * 81}' at 'name' failed to satisfy "
        "constraint: Member must have length less than or equal to 80"
    )
    assert backend.calls == []


def test_boto3_sees_an_internal_failure_as_a_500(sfn: Any, served: Any) -> None:
    backend, _ = served
    backend.replies["ListActivities"] = KeyError("boom")
    with pytest.raises(ClientError) as caught:
        sfn.list_activities()
    assert caught.value.response["Error"]["Code"] == "InternalFailure"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_boto3_start_sync_execution_is_served(served: Any) -> None:
    backend, url = served
    backend.replies["StartSyncExecution"] = {
        "executionArn": EXECUTION_ARN,
        "startDate": STARTED_AT,
        "stopDate": STARTED_AT,
        "status": "SUCCEEDED",
        "output": "{}",
    }
    # botocore would send this to sync-127.0.0.1 (the operation's host prefix), a name that
    # does not resolve; the sync- Host header itself is covered by the in-process test above.
    client = boto3.client(
        "stepfunctions",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(inject_host_prefix=False),
    )
    try:
        result = client.start_sync_execution(stateMachineArn=ARN, input="{}")
    finally:
        client.close()
    assert result["status"] == "SUCCEEDED"
    assert result["stopDate"] == STARTED_AT
