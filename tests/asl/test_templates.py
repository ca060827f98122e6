"""Payload templates: ``.$`` fields, constants shared as-is, AWS's messages."""

from __future__ import annotations

from typing import Any

import pytest

from flowstate.asl.errors import EvaluationError, InvalidExpression
from flowstate.asl.scope import Scope
from flowstate.asl.templates import compile_template


class _Entropy:
    def random(self) -> float:
        return 0.5

    def uuid4(self) -> str:
        return "uuid"


SCOPE = Scope(
    {"Execution": {"Id": "arn:exec"}, "Map": {"Item": {"Value": 7}}}, {"v": [1, 2]}, _Entropy()
)


def test_dynamic_fields_drop_the_suffix_and_nest() -> None:
    template = compile_template(
        {
            "flagged": True,
            "parts": {"first.$": "$.vals[0]", "last3.$": "$.vals[3:]"},
            "list": [{"x.$": "$$.Execution.Id"}, 1],
            "var.$": "$v",
            "fn.$": "States.Array($.vals[1], $$.Map.Item.Value)",
        },
        field="Parameters",
    )
    result = template.evaluate({"flagged": 7, "vals": [0, 10, 20, 30, 40, 50]}, SCOPE)
    assert result == {
        "flagged": True,
        "parts": {"first": 0, "last3": [30, 40, 50]},
        "list": [{"x": "arn:exec"}, 1],
        "var": [1, 2],
        "fn": [10, 7],
    }


def test_constant_template_returns_the_same_object() -> None:
    value = {"a": [1, {"b": "$.not_a_path"}], "c.d": "States.Array()"}
    template = compile_template(value, field="ResultSelector")
    assert template.is_constant
    assert template.evaluate({}, SCOPE) is value


def test_constant_members_of_a_dynamic_template_are_shared() -> None:
    nested = {"deep": [1, 2, 3]}
    template = compile_template({"k": nested, "x.$": "$"}, field="Parameters")
    first = template.evaluate(1, SCOPE)
    second = template.evaluate(2, SCOPE)
    assert first["k"] is nested and second["k"] is nested
    assert (first["x"], second["x"]) == (1, 2)


def test_scalars_and_arrays_are_templates_too() -> None:
    assert compile_template("text", field="Parameters").evaluate({}, SCOPE) == "text"
    assert compile_template([{"a.$": "$"}], field="ItemSelector").evaluate(3, SCOPE) == [{"a": 3}]


def test_missing_path_fails_with_aws_message() -> None:
    template = compile_template({"value.$": "$.no_such_jsonpath"}, field="Parameters")
    with pytest.raises(EvaluationError) as info:
        template.evaluate({"int-literal": 0, "s": "é"}, SCOPE)
    assert info.value.error == "States.Runtime"
    assert info.value.cause == (
        "The JSONPath '$.no_such_jsonpath' specified for the field 'value.$' could not be "
        """found in the input '{"int-literal":0,"s":"é"}'"""
    )


def test_indefinite_path_without_matches_is_an_empty_list() -> None:
    template = compile_template({"item.$": "$.items[*].itemValue"}, field="Parameters")
    assert template.evaluate({}, SCOPE) == {"item": []}


def test_intrinsic_failures_propagate() -> None:
    template = compile_template({"x.$": "States.ArrayGetItem($.a, 9)"}, field="Parameters")
    with pytest.raises(EvaluationError) as info:
        template.evaluate({"a": []}, SCOPE)
    assert info.value.error == "States.IntrinsicFailure"


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ({"parsed.$": 'States.StringToJson(\'{"text":"An \\"escaped\\" quote"}\')'}, "parsed.$"),
        ({"a": {"b.$": "not a path"}}, "b.$"),
        ({"a": [{"b.$": 3}]}, "b.$"),
        ({"b.$": "$.a["}, "b.$"),
        ({"b.$": "States.Nope()"}, "b.$"),
    ],
)
def test_bad_dynamic_value_is_refused_with_aws_text(value: Any, key: str) -> None:
    with pytest.raises(InvalidExpression) as info:
        compile_template(value, field="Parameters")
    assert info.value.message == (
        f"The value for the field '{key}' must be a valid JSONPath or a valid intrinsic function call"
    )
