"""The AWS JSON 1.0 wire format: targets, bodies, times, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from flowstate.api.protocol import (
    CONTENT_TYPE,
    encode_json,
    epoch_seconds,
    error_response,
    operation_from_target,
    parse_body,
    success_response,
)
from flowstate.service.errors import SERIALIZATION, UNKNOWN_OPERATION, ServiceError


def test_the_operation_is_what_follows_the_service_prefix() -> None:
    assert operation_from_target("AWSStepFunctions.StartExecution") == "StartExecution"


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "StartExecution",
        "awsstepfunctions.StartExecution",
        "DynamoDB_20120810.ListTables",
        "AWSStepFunctions.",
    ],
)
def test_a_missing_or_foreign_target_is_an_unknown_operation(target: str | None) -> None:
    with pytest.raises(ServiceError) as caught:
        operation_from_target(target)
    assert caught.value.code == UNKNOWN_OPERATION
    assert caught.value.status == 400


@pytest.mark.parametrize("body", [b"", b"  \n"])
def test_an_empty_body_is_an_empty_object(body: bytes) -> None:
    assert parse_body(body) == {}


def test_a_body_is_read_as_utf8_json() -> None:
    assert parse_body('{"name": "café", "n": 1.5}'.encode()) == {"name": "café", "n": 1.5}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[]", "Start of list found where not expected"),
        (b"null", "must be a JSON object"),
        (b'"x"', "must be a JSON object"),
        (b"{", "not valid JSON"),
        (b'{"a": 1,}', "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": 1e999}', "not valid JSON"),
        (b'{"a": "\xff"}', "not valid JSON"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_serialization_exception(
    body: bytes, fragment: str
) -> None:
    with pytest.raises(ServiceError) as caught:
        parse_body(body)
    assert caught.value.code == SERIALIZATION
    assert caught.value.status == 400
    assert fragment in caught.value.message


def test_times_are_epoch_seconds_with_milliseconds() -> None:
    moment = datetime(2024, 1, 1, 0, 0, 0, 123_999, tzinfo=UTC)
    assert epoch_seconds(moment) == 1_704_067_200.123
    elsewhere = moment.astimezone(timezone(timedelta(hours=-5)))
    assert epoch_seconds(elsewhere) == 1_704_067_200.123


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(TypeError, match="naive"):
        epoch_seconds(datetime(2024, 1, 1))


def test_responses_encode_nested_times_as_numbers() -> None:
    payload = {"events": [{"timestamp": datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC), "id": 1}]}
    assert encode_json(payload) == b'{"events":[{"timestamp":1704067201.0,"id":1}]}'


@pytest.mark.parametrize("value", [float("nan"), object()])
def test_values_json_cannot_carry_are_refused(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        encode_json({"v": value})


def test_a_success_response_has_the_protocols_headers() -> None:
    response = success_response({"a": 1}, "req-1")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    assert response.headers["x-amzn-requestid"] == "req-1"
    assert json.loads(bytes(response.body)) == {"a": 1}


def test_an_error_response_carries_type_message_and_status() -> None:
    response = error_response("ExecutionDoesNotExist", "Execution Does Not Exist: 'x'", 400, "r")
    assert response.status_code == 400
    assert response.headers["content-type"] == CONTENT_TYPE
    assert response.headers["x-amzn-errortype"] == "ExecutionDoesNotExist"
    assert response.headers["x-amzn-requestid"] == "r"
    assert json.loads(bytes(response.body)) == {
        "__type": "ExecutionDoesNotExist",
        "message": "Execution Does Not Exist: 'x'",
    }
