"""AWS's JSONPath dialect: definite and indefinite paths, context/variable roots, ResultPath."""

from __future__ import annotations

from typing import Any

import pytest

from flowstate.asl.errors import EvaluationError, InvalidExpression, StatesError
from flowstate.asl.paths import (
    NOT_FOUND,
    REFERENCE_PATH_CONFLICT,
    compile_path,
    compile_reference_path,
    java_double,
    json_text,
)
from flowstate.asl.scope import Scope


class _Entropy:
    def random(self) -> float:
        return 0.25

    def uuid4(self) -> str:
        return "00000000-0000-4000-8000-000000000000"


DOC: dict[str, Any] = {
    "a": {"b": [10, 20, 30], "c": None},
    "users": [{"year": 1997, "status": 0}, {"year": 1998, "status": 1, "tag": "x-1"}],
    "delivery-partner": "UQS",
    "nested": {"a": {"b": 1}, "list": [{"b": 2}]},
    'Test\\""Name"': "escaped",
}
SCOPE = Scope(
    {"Execution": {"Id": "arn:x", "Input": {"k": 1}}, "Map": {"Item": {"Index": 2}}},
    {"answer": 42, "doc": {"items": ["p", "q"]}},
    _Entropy(),
)

DEFINITE = [
    ("$", DOC),
    ("$.a.b[0]", 10),
    ("$.a.b[-1]", 30),
    ("$.a.c", None),
    ("$['a']['b'][1]", 20),
    ('$["a"].b[2]', 30),
    ("$.delivery-partner", "UQS"),
    ('$[\'Test\\""Name"\']', "escaped"),  # AWS keeps a backslash that does not escape a quote
    ("$.a['b','c']", {"b": [10, 20, 30], "c": None}),  # Jayway merges a name union at the end
    ("$.a.b.length()", 3),
    ("$$.Execution.Id", "arn:x"),
    ("$$.Map.Item.Index", 2),
    ("$$", SCOPE.context),
    ("$answer", 42),
    ("$doc.items[1]", "q"),
]


@pytest.mark.parametrize(("text", "expected"), DEFINITE)
def test_definite_paths(text: str, expected: Any) -> None:
    path = compile_path(text)
    assert path.is_definite
    assert path.evaluate(DOC, SCOPE) == expected


INDEFINITE = [
    ("$.a.b[*]", [10, 20, 30]),
    ("$.a.b[1:]", [20, 30]),
    ("$.a.b[:1]", [10]),
    ("$.a.b[-2:]", [20, 30]),
    ("$.a.b[0,2]", [10, 30]),
    ("$.a.b[0,9]", [10]),
    ("$.users[*].year", [1997, 1998]),
    ("$.users[?(@.status == 0)]", [DOC["users"][0]]),
    ("$.users[?(@.year > 1997 && @.status)]", [DOC["users"][1]]),
    ("$.users[?(@.year < 1998 || @.tag == 'x-1')].year", [1997, 1998]),
    ("$.users[?(!@.tag)].year", [1997]),
    ("$.users[?(@.tag =~ /X-\\d/i)].year", [1998]),
    ("$.users[?(@.year in [1998, 2000])].year", [1998]),
    ("$.users[?(@.year nin [1998])].year", [1997]),
    ("$.users[?(@.status == '0')]", []),  # no coercion between strings and numbers
    ("$.nested..b", [1, 2]),
    ("$.nested.*", [{"b": 1}, [{"b": 2}]]),
    ("$doc.items[*]", ["p", "q"]),
    # Missing branches of an indefinite path are skipped, never an error (recorded AWS).
    ("$.items[*]", []),
    ("$.item.items[1:5]", []),
    ("$.items[1:].itemValue", []),
    ("$[*].nothing", []),
]


@pytest.mark.parametrize(("text", "expected"), INDEFINITE)
def test_indefinite_paths_return_lists(text: str, expected: list[Any]) -> None:
    path = compile_path(text)
    assert not path.is_definite
    assert path.evaluate(DOC, SCOPE) == expected


def test_recursive_descent_visits_parents_before_children() -> None:
    assert compile_path("$..b").evaluate(DOC, SCOPE) == [[10, 20, 30], 1, 2]


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("$.no_such", "$['no_such']"),
        ("$.a.x.y", "$['a']['x']['y']"),
        ("$.a.b[5]", "$['a']['b'][5]"),
        ("$.a.b.c", "$['a']['b']['c']"),  # through an array
        ("$.a.c.d", "$['a']['c']['d']"),  # through null
    ],
)
def test_definite_miss_is_aws_runtime_error(text: str, normalized: str) -> None:
    path = compile_path(text)
    with pytest.raises(EvaluationError) as info:
        path.evaluate(DOC, SCOPE)
    assert info.value.error == "States.Runtime"
    assert info.value.cause == f"Invalid path '{text}' : No results for path: {normalized}"
    assert path.evaluate_or_none(DOC, SCOPE) is NOT_FOUND


def test_unknown_variable_is_an_evaluation_error() -> None:
    with pytest.raises(EvaluationError, match="nope"):
        compile_path("$nope.a").evaluate(DOC, SCOPE)


def test_not_found_is_falsy_and_distinct_from_null() -> None:
    assert not NOT_FOUND
    assert compile_path("$.a.c").evaluate_or_none(DOC, SCOPE) is None


@pytest.mark.parametrize(
    "text",
    ["", "a.b", "$.", "$..", "$[", "$['a'", "$.a[?(@.x ==)]", "$.a[x]", "$.a[1:2:0]", "$.a.nofn()"],
)
def test_bad_syntax_is_invalid_expression(text: str) -> None:
    with pytest.raises(InvalidExpression):
        compile_path(text)


def test_fast_path_walks_a_key_tuple() -> None:
    path = compile_path("$.a.b[0]")
    assert path._keys == ("a", "b", 0)
    # Bools are not indexes and strings are not arrays.
    assert compile_path("$.s[0]").evaluate_or_none({"s": "abc"}, None) is NOT_FOUND
    assert compile_path("$.a.b").evaluate_or_none({"a": [1]}, None) is NOT_FOUND


# --- ResultPath -------------------------------------------------------------------------------


def test_result_path_root_replaces_the_document() -> None:
    assert compile_reference_path("$").assign({"a": 1}, [1]) == [1]


def test_result_path_places_value_without_mutating_input() -> None:
    doc = {"a": {"x": 1}, "other": {"deep": [1]}}
    out = compile_reference_path("$.a.b.c").assign(doc, 5)
    assert out == {"a": {"x": 1, "b": {"c": 5}}, "other": {"deep": [1]}}
    assert doc == {"a": {"x": 1}, "other": {"deep": [1]}}
    assert out["other"] is doc["other"]  # structural sharing off the spine


def test_result_path_replaces_existing_values_and_array_items() -> None:
    doc = {"a": [1, {"k": 0}]}
    assert compile_reference_path("$.a").assign(doc, None) == {"a": None}
    assert compile_reference_path("$.a[1].k").assign(doc, 9) == {"a": [1, {"k": 9}]}
    assert doc == {"a": [1, {"k": 0}]}


@pytest.mark.parametrize(
    ("text", "document"),
    [("$.r", "input1"), ("$.a.b", {"a": 3}), ("$.a[5]", {"a": [1]}), ("$.a.b", {"a": [1]})],
)
def test_result_path_through_a_non_object_fails(text: str, document: Any) -> None:
    with pytest.raises(StatesError) as info:
        compile_reference_path(text).assign(document, 1)
    assert info.value.error == REFERENCE_PATH_CONFLICT
    assert (
        info.value.cause == f"Unable to apply ReferencePath {text} to input {json_text(document)}"
    )


@pytest.mark.parametrize("text", ["$$.a", "$var.a", "$.a[*]", "$..a", "$.a[0:1]", "a", "$.a["])
def test_result_path_must_be_a_definite_input_path(text: str) -> None:
    with pytest.raises(InvalidExpression):
        compile_reference_path(text)


# --- JSON text as AWS (Jackson) writes it -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (1.1, "1.1"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (9999999.0, "9999999.0"),
        (-2.5e-5, "-2.5E-5"),
        (-0.0, "-0.0"),
    ],
)
def test_java_double(value: float, text: str) -> None:
    assert java_double(value) == text


def test_json_text_is_compact_and_keeps_unicode() -> None:
    assert json_text({"a": [1, 2.0, "é\n", None, True]}) == '{"a":[1,2.0,"é\\n",null,true]}'
