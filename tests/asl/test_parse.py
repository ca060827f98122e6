"""Parsing definitions into the compiled model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from flowstate.asl.errors import DefinitionError
from flowstate.asl.model import (
    ChoiceState,
    FailState,
    MapState,
    ParallelState,
    PassState,
    TaskState,
    WaitState,
)
from flowstate.asl.parse import parse_definition

CORPUS = Path(os.environ.get("FLOWSTATE_CORPUS", Path(__file__).parents[3] / "shared/conformance"))

JSONPATH_MACHINE: dict[str, Any] = {
    "Comment": "all JSONPath state types",
    "TimeoutSeconds": 60,
    "StartAt": "Start",
    "States": {
        "Start": {
            "Type": "Pass",
            "InputPath": "$.in",
            "OutputPath": None,
            "Result": {"x": 1},
            "ResultPath": "$.r",
            "Next": "Call",
        },
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "f", "Payload.$": "$"},
            "ResultSelector": {"p.$": "$.Payload"},
            "ResultPath": None,
            "TimeoutSecondsPath": "$.timeout",
            "HeartbeatSeconds": 10,
            "Retry": [{"ErrorEquals": ["States.Timeout"], "BackoffRate": 1.5, "MaxAttempts": 2}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed", "ResultPath": "$.error"}],
            "Next": "Decide",
        },
        "Decide": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Wait"}],
            "Default": "Fan",
        },
        "Wait": {"Type": "Wait", "Timestamp": "2016-03-14T01:59:00Z", "Next": "Fan"},
        "Fan": {
            "Type": "Parallel",
            "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Succeed"}}}],
            "Next": "Each",
        },
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "Parameters": {"v.$": "$$.Map.Item.Value"},
            "MaxConcurrency": 2,
            "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
            "End": True,
        },
        "Failed": {"Type": "Fail", "Error": "Oops", "CausePath": "$.error.Cause"},
    },
}


def test_jsonpath_machine_becomes_snake_case_model() -> None:
    machine = parse_definition(json.dumps(JSONPATH_MACHINE))
    assert (machine.start_at, machine.timeout_seconds, machine.comment) == (
        "Start",
        60,
        "all JSONPath state types",
    )
    start = machine.states["Start"]
    assert isinstance(start, PassState)
    assert start.input_path is not None and start.input_path.text == "$.in"
    assert start.output_path_is_null and start.output_path is None
    assert (start.has_result, start.result, start.next) == (True, {"x": 1}, "Call")
    assert start.result_path is not None and start.result_path.text == "$.r"

    call = machine.states["Call"]
    assert isinstance(call, TaskState)
    assert call.resource == "arn:aws:states:::lambda:invoke"
    assert call.parameters is not None and call.result_selector is not None
    assert call.result_path_is_null and call.result_path is None
    assert call.timeout_seconds_path is not None and call.heartbeat_seconds == 10
    [retrier] = call.retry
    assert (retrier.error_equals, retrier.backoff_rate, retrier.max_attempts) == (
        ("States.Timeout",),
        1.5,
        2,
    )
    assert (retrier.interval_seconds, retrier.jitter_strategy) == (1, "NONE")
    [catcher] = call.catch
    assert catcher.next == "Failed" and catcher.result_path is not None

    decide = machine.states["Decide"]
    assert isinstance(decide, ChoiceState)
    assert decide.default == "Fan" and decide.choices[0].next == "Wait"
    assert decide.choices[0].condition is not None

    wait = machine.states["Wait"]
    assert isinstance(wait, WaitState) and wait.timestamp == "2016-03-14T01:59:00Z"

    fan = machine.states["Fan"]
    assert isinstance(fan, ParallelState)
    assert fan.branches[0].start_at == "B"

    each = machine.states["Each"]
    assert isinstance(each, MapState)
    assert each.uses_iterator_field and each.processor_mode == "INLINE"
    assert each.item_selector is not None  # the legacy Parameters of a Map
    assert each.max_concurrency == 2 and each.end
    assert each.item_processor is not None and "I" in each.item_processor.states

    failed = machine.states["Failed"]
    assert isinstance(failed, FailState)
    assert failed.error == "Oops" and failed.cause_path is not None


def test_mapping_and_yaml_give_the_same_model_as_json() -> None:
    yaml_text = (
        "StartAt: W\n"
        "States:\n"
        "  W:\n"
        "    Type: Wait\n"
        "    Timestamp: 2016-03-14T01:59:00Z\n"  # unquoted: must stay a string
        "    End: true\n"
    )
    from_yaml = parse_definition(yaml_text)
    from_mapping = parse_definition(
        {
            "StartAt": "W",
            "States": {"W": {"Type": "Wait", "Timestamp": "2016-03-14T01:59:00Z", "End": True}},
        }
    )
    assert from_yaml == from_mapping
    wait = from_yaml.states["W"]
    assert isinstance(wait, WaitState) and wait.timestamp == "2016-03-14T01:59:00Z"


def test_json_looking_text_is_never_read_as_yaml() -> None:
    with pytest.raises(DefinitionError) as raised:
        parse_definition("{'StartAt': 'A'}")
    assert raised.value.message.startswith(
        "Invalid State Machine Definition: 'INVALID_JSON_DESCRIPTION: Unexpected character"
    )


def test_definition_over_one_mebibyte_is_refused() -> None:
    padding = "x" * 1_048_576
    with pytest.raises(DefinitionError) as raised:
        parse_definition(json.dumps({"Comment": padding, "StartAt": "A", "States": {}}))
    assert raised.value.code == "ValidationException"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"parsed.$": "States.StringToJson('unterminated)"},
            "The value for the field 'parsed.$' must be a valid JSONPath or a valid intrinsic"
            " function call at /States/P/Parameters",
        ),
    ],
)
def test_expression_errors_point_at_the_field(parameters: dict[str, Any], message: str) -> None:
    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": parameters, "End": True}},
    }
    with pytest.raises(DefinitionError) as raised:
        parse_definition(definition)
    assert (
        raised.value.message
        == f"Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: {message}'"
    )


def test_jsonata_fields_are_compiled() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"Payload": "{% $states.input %}"},
                "Output": "{% $states.result.Payload %}",
                "TimeoutSeconds": "{% $states.input.t %}",
                "Assign": {"x": "{% 1 %}"},
                "Next": "C",
            },
            "C": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $x = 1 %}", "Next": "M"}],
                "Default": "M",
            },
            "M": {
                "Type": "Map",
                "Items": [1, 2],
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                "End": True,
            },
        },
    }
    machine = parse_definition(definition)
    task = machine.states["T"]
    assert isinstance(task, TaskState) and task.query_language == "JSONata"
    assert task.arguments is not None and task.output is not None and task.assign is not None
    assert task.timeout_seconds_expr is not None and task.timeout_seconds is None
    choice = machine.states["C"]
    assert isinstance(choice, ChoiceState) and choice.choices[0].condition_expr is not None
    each = machine.states["M"]
    assert isinstance(each, MapState)
    # A literal Items array is a template too (its elements may hold expressions).
    assert each.items_expr is not None
    assert each.items_expr.evaluate({"input": {}}, None) == [1, 2]


# -- every recorded execution's definition must be accepted --------------------------------


def _execution_definitions() -> list[Any]:
    folder = CORPUS / "cases"
    if not folder.is_dir():
        if os.environ.get("REQUIRE_CORPUS") == "1":
            raise FileNotFoundError(folder)
        return []
    params = []
    for path in sorted(folder.glob("*/*.json")):
        case = json.loads(path.read_text())
        if case["kind"] != "execution":
            continue
        params.append(
            pytest.param(case["definition"], case["state_machine_type"], id=path.stem[-48:])
        )
    return params


@pytest.mark.corpus
@pytest.mark.parametrize(("definition", "state_machine_type"), _execution_definitions())
def test_recorded_execution_definitions_parse(definition: Any, state_machine_type: str) -> None:
    machine = parse_definition(definition, state_machine_type=state_machine_type)
    assert machine.start_at == definition["StartAt"]
    assert list(machine.states) == list(definition["States"])
    for name, raw in definition["States"].items():
        assert machine.states[name].type == raw["Type"]
