"""Choice rules (``asl/choice.py``): operators, types, missing paths, malformed rules."""

from __future__ import annotations

from typing import Any

import pytest

from flowstate.asl.choice import compile_rule, parse_timestamp
from flowstate.asl.errors import RUNTIME, EvaluationError, InvalidExpression
from flowstate.asl.scope import Scope


class _Entropy:
    def random(self) -> float:
        return 0.5

    def uuid4(self) -> str:
        return "00000000-0000-4000-8000-000000000000"


SCOPE = Scope({"Execution": {"Name": "run-1"}}, {"limit": 3, "flag": True}, _Entropy())


def matches(rule: dict[str, Any], input: Any, scope: Scope = SCOPE) -> bool:
    return compile_rule(rule).matches(input, scope)


def var(op: str, operand: Any, value: Any) -> bool:
    return matches({"Variable": "$.v", op: operand}, {"v": value})


def var_path(op: str, value: Any, other: Any) -> bool:
    return matches({"Variable": "$.v", op: "$.o"}, {"v": value, "o": other})


# A value of every JSON shape, to check that type mismatches are false rather than errors.
SHAPES: list[Any] = [
    None,
    "",
    " ",
    "x",
    "2012-10-09T19:00:55Z",
    0,
    0.0,
    1,
    1.5,
    True,
    False,
    [],
    [""],
    {},
    {"A": 0},
]


class TestBooleanEquals:
    def test_matches_only_the_same_boolean(self) -> None:
        assert var("BooleanEquals", True, True)
        assert var("BooleanEquals", False, False)
        assert not var("BooleanEquals", True, False)
        assert not var("BooleanEquals", False, True)

    @pytest.mark.parametrize("value", [0, 1, 0.0, 1.0, "true", "", None, [], {}])
    def test_numbers_and_others_are_never_booleans(self, value: Any) -> None:
        assert not var("BooleanEquals", True, value)
        assert not var("BooleanEquals", False, value)

    def test_path_variant(self) -> None:
        assert var_path("BooleanEqualsPath", True, True)
        assert var_path("BooleanEqualsPath", False, False)
        assert not var_path("BooleanEqualsPath", True, False)
        assert not var_path("BooleanEqualsPath", 1, True)
        assert not var_path("BooleanEqualsPath", True, 1)
        assert not var_path("BooleanEqualsPath", 0, False)


class TestNumeric:
    @pytest.mark.parametrize(
        ("op", "a", "b", "expected"),
        [
            ("NumericEquals", 1, 1, True),
            ("NumericEquals", 1, 1.0, True),
            ("NumericEquals", 0.0, 0, True),
            ("NumericEquals", 1.1, 1, False),
            ("NumericEquals", 2.22, 2.22, True),
            ("NumericLessThan", 1, 2, True),
            ("NumericLessThan", 2, 2, False),
            ("NumericGreaterThan", 1, 0, True),
            ("NumericGreaterThan", 0.0, 0, False),
            ("NumericLessThanEquals", 2, 2.0, True),
            ("NumericLessThanEquals", 3, 2, False),
            ("NumericGreaterThanEquals", 0, 0, True),
            ("NumericGreaterThanEquals", 0, 1, False),
            ("NumericEquals", -5, -5.0, True),
            ("NumericEquals", 10**20, 10**20, True),
        ],
    )
    def test_literal_and_path(self, op: str, a: Any, b: Any, expected: bool) -> None:
        assert var(op, b, a) is expected
        assert var_path(op + "Path", a, b) is expected

    @pytest.mark.parametrize("value", [True, False, "1", "", None, [], [1], {}, {"A": 0}])
    def test_non_numbers_are_false(self, value: Any) -> None:
        for op in ("NumericEquals", "NumericLessThan", "NumericGreaterThanEquals"):
            assert not var(op, 1, value)
            assert not var(op, 0, value)
            assert not var_path(op + "Path", value, 1)
            assert not var_path(op + "Path", 1, value)


class TestString:
    @pytest.mark.parametrize(
        ("op", "a", "b", "expected"),
        [
            ("StringEquals", "A", "A", True),
            ("StringEquals", "A", "a", False),
            ("StringEquals", "", "", True),
            ("StringLessThan", "A", "AB", True),
            ("StringLessThan", "AB", "A", False),
            ("StringLessThan", "", "", False),
            ("StringGreaterThan", "A", "A ", False),
            ("StringGreaterThan", "AB", "A", True),
            ("StringGreaterThan", "A", "A\t\n\r", False),
            ("StringLessThanEquals", "", "", True),
            ("StringLessThanEquals", "AB", "A", False),
            ("StringGreaterThanEquals", "A", "AB", False),
            ("StringGreaterThanEquals", "AB", "A", True),
        ],
    )
    def test_literal_and_path(self, op: str, a: str, b: str, expected: bool) -> None:
        assert var(op, b, a) is expected
        assert var_path(op + "Path", a, b) is expected

    def test_order_is_utf16_code_units_like_aws(self) -> None:
        # U+FF21 (BMP, above the surrogates) sorts after U+1F600 in UTF-16 code units,
        # before it in code points. AWS compares Java strings, i.e. code units.
        assert var("StringGreaterThan", "\U0001f600", "\uff21")
        assert var("StringLessThan", "\uff21", "\U0001f600")
        assert var("StringGreaterThan", "a", "\U0001f600")

    @pytest.mark.parametrize("value", [None, 0, 1.5, True, [], ["A"], {}, {"A": 0}])
    def test_non_strings_are_false(self, value: Any) -> None:
        assert not var("StringEquals", "A", value)
        assert not var("StringLessThan", "A", value)
        assert not var("StringMatches", "*", value)
        assert not var_path("StringEqualsPath", value, "A")
        assert not var_path("StringEqualsPath", "A", value)


class TestStringMatches:
    @pytest.mark.parametrize(
        ("pattern", "value", "expected"),
        [
            ("log-*.txt", "log-2024.txt", True),
            ("log-*.txt", "log-.txt", True),
            ("log-*.txt", "log-a.txt.gz", False),
            ("*", "", True),
            ("*", "any\nthing", True),
            ("a*b*c", "aXXbYYc", True),
            ("a*b*c", "acb", False),
            ("exact", "exact", True),
            ("exact", "exactly", False),
            ("a.b", "aXb", False),
            ("a.b", "a.b", True),
            ("(x)+[y]?", "(x)+[y]?", True),
            ("\\*", "*", True),
            ("\\*", "x", False),
            ("a\\*b", "a*b", True),
            ("a\\*b", "aXb", False),
            ("a\\\\b", "a\\b", True),
            ("a\\\\*", "a\\anything", True),
            ("a\\b", "a\\b", True),
        ],
    )
    def test_wildcards_and_escapes(self, pattern: str, value: str, expected: bool) -> None:
        assert var("StringMatches", pattern, value) is expected

    def test_has_no_path_variant(self) -> None:
        with pytest.raises(InvalidExpression, match="Field 'StringMatchesPath' is not supported"):
            compile_rule({"Variable": "$.v", "StringMatchesPath": "$.o"})


class TestTimestamp:
    @pytest.mark.parametrize(
        "text",
        [
            "2012-10-09T19:00:55Z",
            "2012-10-09T19:00:55.1Z",
            "2012-10-09T19:00:55.123456789Z",
            "2012-10-09T19:00:55+01:00",
            "2012-10-09T19:00:55.5-05:30",
            "2024-02-29T00:00:00Z",
        ],
    )
    def test_accepted_forms(self, text: str) -> None:
        assert parse_timestamp(text) is not None

    @pytest.mark.parametrize(
        "text",
        [
            "2012-10-09T19:00:55",  # no zone
            "2012-10-09t19:00:55Z",  # lower-case t
            "2012-10-09T19:00:55z",  # lower-case z
            "2012-10-09 19:00:55Z",
            "2023-02-24 12:15:56.832957",
            "2023-02-24",
            "2012-10-09T19:00Z",
            "2012-13-09T19:00:55Z",
            "2023-02-29T00:00:00Z",
            "2012-10-09T24:00:00Z",
            "2012-10-09T19:00:60Z",
            "2012-10-09T19:00:55.Z",
            "2012-10-09T19:00:55.1234567890Z",
            "2012-10-09T19:00:55+0100",
            "",
            " 2012-10-09T19:00:55Z",
        ],
    )
    def test_refused_forms(self, text: str) -> None:
        assert parse_timestamp(text) is None

    def test_offsets_and_fractions_compare_as_instants(self) -> None:
        assert var("TimestampEquals", "2012-10-09T18:00:55Z", "2012-10-09T19:00:55+01:00")
        assert var("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55.000Z")
        assert var("TimestampLessThan", "2012-10-09T19:00:55.001Z", "2012-10-09T19:00:55Z")
        assert var("TimestampGreaterThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55.000000001Z")

    @pytest.mark.parametrize(
        ("op", "a", "b", "expected"),
        [
            ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", True),
            ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", False),
            ("TimestampLessThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", True),
            ("TimestampLessThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", False),
            ("TimestampGreaterThan", "2012-10-09T19:00:56Z", "2012-10-09T19:00:55Z", True),
            ("TimestampLessThanEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", True),
            ("TimestampLessThanEquals", "2012-10-09T19:00:56Z", "2012-10-09T19:00:55Z", False),
            ("TimestampGreaterThanEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", False),
        ],
    )
    def test_literal_and_path(self, op: str, a: str, b: str, expected: bool) -> None:
        assert var(op, b, a) is expected
        assert var_path(op + "Path", a, b) is expected

    @pytest.mark.parametrize("value", [None, 0, 1.1, True, "", " ", "2023-02-24", [], [""], {}])
    def test_non_timestamps_are_false(self, value: Any) -> None:
        assert not var("TimestampEquals", "2012-10-09T19:00:55Z", value)
        assert not var("TimestampLessThan", "2012-10-09T19:00:55Z", value)
        assert not var_path("TimestampEqualsPath", value, "2012-10-09T19:00:55Z")
        assert not var_path("TimestampEqualsPath", "2012-10-09T19:00:55Z", value)

    def test_literal_must_be_a_timestamp(self) -> None:
        with pytest.raises(InvalidExpression, match="String does not match RFC3339 timestamp"):
            compile_rule({"Variable": "$.v", "TimestampEquals": "2012-10-09"})


class TestTypeTests:
    @pytest.mark.parametrize("value", SHAPES)
    def test_each_shape(self, value: Any) -> None:
        kinds = {
            "IsNull": value is None,
            "IsString": isinstance(value, str),
            "IsBoolean": isinstance(value, bool),
            "IsNumeric": isinstance(value, (int, float)) and not isinstance(value, bool),
            "IsTimestamp": value == "2012-10-09T19:00:55Z",
        }
        for op, is_kind in kinds.items():
            assert var(op, True, value) is is_kind, op
            assert var(op, False, value) is (not is_kind), op

    @pytest.mark.parametrize("value", SHAPES)
    def test_is_present_on_existing_values_including_null(self, value: Any) -> None:
        assert var("IsPresent", True, value)
        assert not var("IsPresent", False, value)

    def test_is_present_on_missing_paths(self) -> None:
        assert not matches({"Variable": "$.missing", "IsPresent": True}, {})
        assert matches({"Variable": "$.missing", "IsPresent": False}, {})
        assert matches({"Variable": "$.a.b", "IsPresent": False}, {"a": "text"})
        assert matches({"Variable": "$nope", "IsPresent": False}, {})

    def test_operand_must_be_boolean(self) -> None:
        with pytest.raises(InvalidExpression, match="Expected value of type Boolean"):
            compile_rule({"Variable": "$.v", "IsNull": "true"})


class TestMissingPaths:
    @pytest.mark.parametrize(
        "rule",
        [
            {"Variable": "$.missing", "StringEquals": "x"},
            {"Variable": "$.missing", "NumericEquals": 1},
            {"Variable": "$.missing", "BooleanEquals": True},
            {"Variable": "$.missing", "IsNull": True},
            {"Variable": "$.missing", "IsString": False},
            {"Variable": "$.missing", "TimestampEquals": "2012-10-09T19:00:55Z"},
            {"Variable": "$.missing", "NumericEqualsPath": "$.v"},
        ],
    )
    def test_missing_variable_fails_with_runtime_error(self, rule: dict[str, Any]) -> None:
        with pytest.raises(EvaluationError) as failure:
            matches(rule, {"v": 1})
        assert failure.value.error == RUNTIME
        assert failure.value.cause == (
            "Invalid path '$.missing': "
            "The choice state's condition path references an invalid value."
        )

    def test_missing_path_operand_fails_with_runtime_error(self) -> None:
        with pytest.raises(EvaluationError) as failure:
            matches({"Variable": "$.v", "NumericEqualsPath": "$.other"}, {"v": 1})
        assert failure.value.error == RUNTIME
        assert failure.value.cause is not None
        assert failure.value.cause.startswith("Invalid path '$.other'")

    def test_null_is_present_not_missing(self) -> None:
        assert not matches({"Variable": "$.v", "NumericEquals": 1}, {"v": None})
        assert matches({"Variable": "$.v", "IsNull": True}, {"v": None})


class TestScope:
    def test_variables_and_context(self) -> None:
        assert matches({"Variable": "$limit", "NumericEquals": 3}, {})
        assert matches({"Variable": "$flag", "BooleanEquals": True}, {})
        assert matches({"Variable": "$$.Execution.Name", "StringEquals": "run-1"}, {})
        assert matches({"Variable": "$.v", "NumericLessThanPath": "$limit"}, {"v": 2})

    def test_whole_input(self) -> None:
        assert matches({"Variable": "$", "StringEquals": "raw"}, "raw")


class TestComposites:
    def test_and_or_not(self) -> None:
        in_twenties = {
            "And": [
                {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                {"Variable": "$.value", "NumericLessThan": 30},
            ]
        }
        assert matches(in_twenties, {"value": 22})
        assert not matches(in_twenties, {"value": 30})
        either = {
            "Or": [
                {"Variable": "$.type", "StringEquals": "a"},
                {"Variable": "$.type", "StringEquals": "b"},
            ]
        }
        assert matches(either, {"type": "b"})
        assert not matches(either, {"type": "c"})
        assert matches({"Not": {"Variable": "$.type", "StringEquals": "Private"}}, {"type": "x"})
        assert not matches({"Not": in_twenties}, {"value": 25})

    def test_singleton_and_nested(self) -> None:
        rule = {"And": [{"Or": [{"Not": {"Variable": "$.x", "IsPresent": True}}]}]}
        assert matches(rule, {})
        assert not matches(rule, {"x": 1})

    def test_short_circuit_skips_missing_paths(self) -> None:
        guarded = {
            "And": [
                {"Variable": "$.x", "IsPresent": True},
                {"Variable": "$.x", "NumericEquals": 1},
            ]
        }
        assert not matches(guarded, {})
        first = {
            "Or": [
                {"Variable": "$.y", "IsPresent": False},
                {"Variable": "$.y", "NumericEquals": 1},
            ]
        }
        assert matches(first, {})

    def test_comment_is_allowed(self) -> None:
        assert matches({"Comment": "c", "Variable": "$.v", "IsNull": True}, {"v": None})
        assert matches({"Comment": "c", "Not": {"Variable": "$.v", "IsNull": False}}, {"v": None})


class TestMalformed:
    @pytest.mark.parametrize(
        ("rule", "message"),
        [
            ({"Variable": "$.v"}, "exactly one comparison operator"),
            ({"StringEquals": "x"}, "These fields are required: [Variable]"),
            (
                {"Variable": "$.v", "StringEquals": "x", "IsNull": True},
                "Field 'IsNull' is not supported",
            ),
            ({"Variable": "$.v", "Bogus": 1}, "Field 'Bogus' is not supported"),
            (
                {"Variable": "$.v", "StringEquals": "x", "Next": "S"},
                "Field 'Next' is not supported",
            ),
            (
                {"And": [{"Variable": "$.v", "IsNull": True, "Next": "S"}]},
                "Field 'Next' is not supported",
            ),
            ({"And": [], "Variable": "$.v"}, "Field 'Variable' is not supported"),
            ({"And": []}, "must contain at least one"),
            ({"Or": {"Variable": "$.v", "IsNull": True}}, "Expected value of type Array"),
            ({"Not": [{"Variable": "$.v", "IsNull": True}]}, "Expected value of type Object"),
            ({"Variable": 5, "IsNull": True}, "Expected value of type String"),
            ({"Variable": "$.v", "StringEquals": 1}, "Expected value of type String"),
            ({"Variable": "$.v", "NumericEquals": "1"}, "Expected value of type Number"),
            ({"Variable": "$.v", "NumericEquals": True}, "Expected value of type Number"),
            ({"Variable": "$.v", "BooleanEquals": 1}, "Expected value of type Boolean"),
            ({"Variable": "$.v", "StringEqualsPath": 1}, "Expected value of type String"),
            ({"Variable": "$.v", "TimestampEquals": 0}, "Expected value of type String"),
        ],
    )
    def test_refused_with_aws_message(self, rule: dict[str, Any], message: str) -> None:
        with pytest.raises(
            InvalidExpression, match=message.replace("[", r"\[").replace("]", r"\]")
        ):
            compile_rule(rule)

    def test_not_a_mapping(self) -> None:
        with pytest.raises(InvalidExpression, match="Expected value of type Object"):
            compile_rule(["x"])  # type: ignore[arg-type]

    def test_invalid_variable_path_is_refused(self) -> None:
        with pytest.raises(InvalidExpression):
            compile_rule({"Variable": "Test", "StringEquals": "x"})
