"""The model-driven validator: AWS's (Coral) messages, exactly."""

from __future__ import annotations

import re
from typing import Any

import pytest

from flowstate.api.validation import RequestValidator, java_pattern, service_model
from flowstate.service.errors import SERIALIZATION, VALIDATION, ServiceError

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:m"
VERSION_ARN = f"{ARN}:1"
SECRET = "s3cr3t-payload"


def refusal(operation: str, request: dict[str, Any], **options: Any) -> tuple[str, str]:
    with pytest.raises(ServiceError) as caught:
        RequestValidator(**options).validate(operation, request)
    assert caught.value.status == 400
    return caught.value.code, caught.value.message


def validation_message(operation: str, request: dict[str, Any], **options: Any) -> str:
    code, message = refusal(operation, request, **options)
    assert code == VALIDATION
    return message


def test_a_valid_request_comes_back_typed_without_unknown_members_or_nulls() -> None:
    request = {
        "stateMachineArn": ARN,
        "name": "run-1",
        "input": '{"a": 1}',
        "traceHeader": None,
        "notAMember": {"anything": [1, 2]},
    }
    cleaned = RequestValidator().validate("StartExecution", request)
    assert cleaned == {"stateMachineArn": ARN, "name": "run-1", "input": '{"a": 1}'}


def test_length_over_max_names_the_value_the_member_and_the_bound() -> None:
    name = "a" * 81
    message = validation_message("StartExecution", {"stateMachineArn": ARN, "name": name})
    assert message == (
        f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 80"
    )


def test_a_missing_required_member_is_value_null() -> None:
    message = validation_message("StartExecution", {"name": "n"})
    assert message == (
        "1 validation error detected: Value null at 'stateMachineArn' failed to satisfy "
        "constraint: Member must not be null"
    )


def test_a_null_required_member_is_missing() -> None:
    message = validation_message("DescribeExecution", {"executionArn": None})
    assert message.endswith(
        "Value null at 'executionArn' failed to satisfy constraint: Member must not be null"
    )


def test_several_violations_are_counted_and_joined_in_model_order() -> None:
    message = validation_message(
        "CreateStateMachine",
        {"name": "", "definition": "{}", "roleArn": "r", "type": "BATCH"},
    )
    assert message == (
        "2 validation errors detected: "
        "Value '' at 'name' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; "
        "Value 'BATCH' at 'type' failed to satisfy constraint: "
        "Member must satisfy enum value set: [STANDARD, EXPRESS]"
    )


def test_nested_paths_count_list_elements_from_one_with_a_member_step() -> None:
    routes = [{"stateMachineVersionArn": VERSION_ARN, "weight": 101}, {"weight": 0}]
    message = validation_message(
        "CreateStateMachineAlias", {"name": "live", "routingConfiguration": routes}
    )
    assert message == (
        "2 validation errors detected: "
        "Value '101' at 'routingConfiguration.1.member.weight' failed to satisfy constraint: "
        "Member must have value less than or equal to 100; "
        "Value null at 'routingConfiguration.2.member.stateMachineVersionArn' failed to "
        "satisfy constraint: Member must not be null"
    )


def test_a_list_of_structures_prints_as_java_does() -> None:
    routes = [{"stateMachineVersionArn": VERSION_ARN, "weight": 50}] * 3
    message = validation_message(
        "CreateStateMachineAlias", {"name": "live", "routingConfiguration": routes}
    )
    item = f"RoutingConfigurationListItem(stateMachineVersionArn={VERSION_ARN}, weight=50)"
    assert message == (
        f"1 validation error detected: Value '[{item}, {item}, {item}]' at "
        "'routingConfiguration' failed to satisfy constraint: "
        "Member must have length less than or equal to 2"
    )


def test_a_list_of_strings_prints_as_java_does() -> None:
    message = validation_message("UntagResource", {"resourceArn": ARN, "tagKeys": ["a", ""]})
    assert message == (
        "1 validation error detected: Value '' at 'tagKeys.2.member' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1"
    )


def test_patterns_must_match_the_whole_value() -> None:
    # 'abc' alone would match [a-zA-Z0-9_\-\.]+ somewhere in 'abc;': Java's matches() is whole.
    message = validation_message(
        "CreateStateMachineAlias",
        {"name": "abc;", "routingConfiguration": [{"stateMachineVersionArn": "a", "weight": 1}]},
    )
    pattern = service_model().shape_for("CharacterRestrictedName").metadata["pattern"]
    assert message == (
        "1 validation error detected: Value 'abc;' at 'name' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {pattern}"
    )


def test_a_java_class_in_a_pattern_is_honoured() -> None:
    ok = {"stateMachineArn": ARN, "traceHeader": "Root=1-abc"}
    assert RequestValidator().validate("StartExecution", ok) == ok
    message = validation_message("StartExecution", {"stateMachineArn": ARN, "traceHeader": "é"})
    assert "Value 'é' at 'traceHeader'" in message
    assert message.endswith("Member must satisfy regular expression pattern: \\p{ASCII}*")


def test_pattern_is_reported_before_length_on_one_member() -> None:
    message = validation_message(
        "RedriveExecution", {"executionArn": ARN, "clientToken": "a b" * 30}
    )
    assert message.startswith("2 validation errors detected: ")
    first, second = message.removeprefix("2 validation errors detected: ").split("; ")
    assert first.endswith("Member must satisfy regular expression pattern: [!-~]+")
    assert second.endswith("Member must have length less than or equal to 64")


def test_a_sensitive_value_is_never_echoed() -> None:
    message = validation_message(
        "CreateStateMachine", {"name": "m", "definition": SECRET * 80_000, "roleArn": "r"}
    )
    assert SECRET not in message
    assert message == (
        "1 validation error detected: Value at 'definition' failed to satisfy constraint: "
        "Member must have length less than or equal to 1048576"
    )


def test_a_missing_sensitive_member_is_not_even_null() -> None:
    message = validation_message("SendTaskSuccess", {"taskToken": "t"})
    assert message == (
        "1 validation error detected: Value at 'output' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_string_length_counts_utf16_code_units_as_java_does() -> None:
    fits = {"stateMachineArn": ARN, "name": "😀" * 40}  # 80 code units
    assert RequestValidator().validate("StartExecution", fits) == fits
    message = validation_message("StartExecution", {"stateMachineArn": ARN, "name": "😀" * 41})
    assert message.endswith("Member must have length less than or equal to 80")


def test_the_payload_is_limited_in_utf8_bytes_with_aws_message() -> None:
    payload = "é" * 131_073  # 262,146 bytes in only 131,073 characters
    message = validation_message("StartExecution", {"stateMachineArn": ARN, "input": payload})
    assert message == (
        "1 validation error detected: Value at 'input' failed to satisfy constraint: "
        "Member must have size less than or equal to 262144 bytes in UTF-8 encoding"
    )


def test_the_payload_limit_is_a_setting() -> None:
    big = {"taskToken": "t", "output": "x" * 300_000}
    assert RequestValidator(max_payload_bytes=None).validate("SendTaskSuccess", big) == big
    message = validation_message(
        "SendTaskSuccess", {"taskToken": "t", "output": "12345678901"}, max_payload_bytes=10
    )
    assert message.endswith(
        "Member must have size less than or equal to 10 bytes in UTF-8 encoding"
    )


def test_number_bounds_print_the_value_as_java_does() -> None:
    message = validation_message(
        "UpdateMapRun",
        {"mapRunArn": "m", "toleratedFailurePercentage": 1e10, "toleratedFailureCount": -3},
    )
    assert message == (
        "2 validation errors detected: "
        "Value '1.0E10' at 'toleratedFailurePercentage' failed to satisfy constraint: "
        "Member must have value less than or equal to 100; "
        "Value '-3' at 'toleratedFailureCount' failed to satisfy constraint: "
        "Member must have value greater than or equal to 0"
    )
    message = validation_message(
        "UpdateMapRun", {"mapRunArn": "m", "toleratedFailurePercentage": 150}
    )
    assert "Value '150.0' at 'toleratedFailurePercentage'" in message


def test_a_decimal_for_an_integer_is_truncated() -> None:
    cleaned = RequestValidator().validate("ListExecutions", {"maxResults": 7.9})
    assert cleaned == {"maxResults": 7}
    assert isinstance(cleaned["maxResults"], int)


@pytest.mark.parametrize(
    ("operation", "request_body", "message"),
    [
        ("DescribeExecution", {"executionArn": 5}, "NUMBER_VALUE can not be converted to a String"),
        (
            "DescribeExecution",
            {"executionArn": 1.5},
            "NUMBER_VALUE can not be converted to a String",
        ),
        (
            "DescribeExecution",
            {"executionArn": True},
            "TRUE_VALUE can not be converted to a String",
        ),
        (
            "DescribeExecution",
            {"executionArn": False},
            "FALSE_VALUE can not be converted to a String",
        ),
        ("DescribeExecution", {"executionArn": ["a"]}, "Start of list found where not expected"),
        (
            "DescribeExecution",
            {"executionArn": {"a": 1}},
            "Start of structure or map found where not expected.",
        ),
        ("ListExecutions", {"maxResults": "5"}, "STRING_VALUE can not be converted to an Integer"),
        ("ListExecutions", {"maxResults": True}, "TRUE_VALUE can not be converted to an Integer"),
        (
            "UpdateMapRun",
            {"mapRunArn": "m", "toleratedFailureCount": "1"},
            "STRING_VALUE can not be converted to a Long",
        ),
        (
            "UpdateMapRun",
            {"mapRunArn": "m", "toleratedFailurePercentage": "1"},
            "STRING_VALUE can not be converted to a Float",
        ),
        (
            "GetExecutionHistory",
            {"executionArn": ARN, "reverseOrder": 1},
            "NUMBER_VALUE can not be converted to a Boolean",
        ),
        (
            "GetExecutionHistory",
            {"executionArn": ARN, "reverseOrder": "true"},
            "STRING_VALUE can not be converted to a Boolean",
        ),
        ("TagResource", {"resourceArn": ARN, "tags": "k=v"}, "Expected list or null"),
        ("TagResource", {"resourceArn": ARN, "tags": 3}, "Expected list or null"),
        (
            "TagResource",
            {"resourceArn": ARN, "tags": {"k": "v"}},
            "Start of structure or map found where not expected.",
        ),
        ("TagResource", {"resourceArn": ARN, "tags": ["k"]}, "Expected null"),
        (
            "TagResource",
            {"resourceArn": ARN, "tags": [[{"key": "k"}]]},
            "Start of list found where not expected",
        ),
        (
            "TagResource",
            {"resourceArn": ARN, "tags": [{"key": 1}]},
            "NUMBER_VALUE can not be converted to a String",
        ),
    ],
)
def test_a_wrong_json_type_is_a_serialization_exception(
    operation: str, request_body: dict[str, Any], message: str
) -> None:
    assert refusal(operation, request_body) == (SERIALIZATION, message)


def test_the_first_wrong_type_in_the_document_is_the_one_reported() -> None:
    assert refusal("ListExecutions", {"maxResults": "x", "nextToken": 5})[1].startswith("STRING")
    assert refusal("ListExecutions", {"nextToken": 5, "maxResults": "x"})[1].startswith("NUMBER")


def test_a_wrong_type_wins_over_constraint_violations() -> None:
    # AWS deserializes before it validates: the missing stateMachineArn is not reported.
    assert refusal("StartExecution", {"name": "a" * 100, "input": 1}) == (
        SERIALIZATION,
        "NUMBER_VALUE can not be converted to a String",
    )


def test_a_wrong_type_in_an_unknown_member_is_ignored() -> None:
    assert RequestValidator().validate("ListActivities", {"maxResult": "x"}) == {}


def test_nulls_inside_lists_are_dropped() -> None:
    cleaned = RequestValidator().validate(
        "UntagResource", {"resourceArn": ARN, "tagKeys": [None, "a", None]}
    )
    assert cleaned["tagKeys"] == ["a"]


def test_operations_are_the_models_and_case_sensitive() -> None:
    validator = RequestValidator()
    assert validator.is_operation("StartSyncExecution")
    assert validator.is_operation("TestState")
    assert not validator.is_operation("startExecution")
    assert not validator.is_operation("StartExecutions")


@pytest.mark.parametrize("operation", sorted(service_model().operation_names))
def test_an_empty_request_misses_exactly_the_required_members(operation: str) -> None:
    shape = service_model().operation_model(operation).input_shape
    required = [name for name in shape.members if name in shape.required_members]
    validator = RequestValidator()
    if not required:
        assert validator.validate(operation, {}) == {}
        return
    code, message = refusal(operation, {})
    assert code == VALIDATION
    reported = re.findall(
        r"at '([^']+)' failed to satisfy constraint: Member must not be null", message
    )
    assert reported == required
    noun = "error" if len(required) == 1 else "errors"
    assert message.startswith(f"{len(required)} validation {noun} detected: ")


def test_every_pattern_in_the_model_compiles_for_python() -> None:
    shapes = service_model()._shape_resolver._shape_map
    patterns = [shape["pattern"] for shape in shapes.values() if "pattern" in shape]
    assert patterns
    for pattern in patterns:
        re.compile(java_pattern(pattern))


@pytest.mark.parametrize(
    ("java", "python"),
    [
        (r"\p{ASCII}*", r"[\x00-\x7F]*"),
        (r"[\p{Alpha}_]+", r"[a-zA-Z_]+"),
        (r"\P{Digit}", r"[^0-9]"),
        (r"a\\p{ASCII}", r"a\\p{ASCII}"),  # an escaped backslash, then literal text
        (r"[]\p{Digit}]", r"[]0-9]"),  # a leading ']' is a literal; the class goes on
        (r"abc\z", r"abc\Z"),
        (r"^(?=.*[a-z])[a-z0-9]+$", r"^(?=.*[a-z])[a-z0-9]+$"),
    ],
)
def test_java_patterns_are_rewritten_where_python_differs(java: str, python: str) -> None:
    assert java_pattern(java) == python


@pytest.mark.parametrize("java", [r"\p{L}+", r"[\P{Digit}a]", r"[a-z[0-9]]"])
def test_java_patterns_python_cannot_express_are_refused(java: str) -> None:
    with pytest.raises(ValueError):
        java_pattern(java)
