"""The JSONata adapter: compile once, evaluate with $states and variables, AWS's messages."""

from __future__ import annotations

from typing import Any

import pytest

from flowstate.asl import jsonata
from flowstate.asl.errors import QUERY_EVALUATION_ERROR, EvaluationError, InvalidExpression
from flowstate.asl.jsonata import (
    compile_expression,
    compile_template,
    is_expression,
    jsonata_type_name,
)
from flowstate.asl.jsonata_functions import java_random_double

CONTEXT = {
    "Execution": {"StartTime": "2024-01-02T03:04:00.000Z"},
    "State": {"EnteredTime": "2024-01-02T03:04:05.678Z", "Name": "S"},
}


def states(input: Any = None, **more: Any) -> dict[str, Any]:
    return {"input": {} if input is None else input, "context": CONTEXT, **more}


def run(text: str, input: Any = None, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
    return compile_expression(text, field="Output").evaluate(states(input), variables, **kw)


def cause_of(text: str, input: Any = None, field: str = "Output") -> str:
    with pytest.raises(EvaluationError) as caught:
        compile_expression(text, field=field).evaluate(states(input), None)
    assert caught.value.error == QUERY_EVALUATION_ERROR
    return caught.value.cause or ""


class FixedEntropy:
    def __init__(self) -> None:
        self.draws = 0

    def random(self) -> float:
        self.draws += 1
        return 0.25

    def uuid4(self) -> str:
        return "00000000-0000-4000-8000-000000000000"


# --- recognising and compiling -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{% 1 %}", True),
        ("{%1%}", True),
        (" {% 1 %}", False),  # AWS: no trimming, the string is a literal
        ("{% 1 %} ", False),
        ("{%}", False),
        ("$.a", False),
        (1, False),
        (None, False),
    ],
)
def test_is_expression(value: Any, expected: bool) -> None:
    assert is_expression(value) is expected


def test_syntax_error_is_refused_with_the_parser_message_without_its_code() -> None:
    with pytest.raises(InvalidExpression) as caught:
        compile_expression("{% a[1,2) %}", field="Output")
    assert caught.value.code == "INVALID_JSONATA_EXPRESSION"
    assert caught.value.message == 'Expected "]", got ","'
    with pytest.raises(InvalidExpression, match="Unexpected end of expression"):
        compile_expression("{% 1 + %}", field="Output")


def test_a_non_expression_string_is_refused_by_compile_expression() -> None:
    with pytest.raises(InvalidExpression):
        compile_expression("$.a", field="Output")


# --- values ----------------------------------------------------------------------------------


def test_states_and_variables_are_bound() -> None:
    assert run("{% $states.input.a + $b %}", {"a": 1}, {"b": 2}) == 3
    assert run("{% $states.context.State.Name %}") == "S"


def test_results_are_plain_json_and_integers_stay_integers() -> None:
    assert run("{% 6 / 2 %}") == 3 and isinstance(run("{% 6 / 2 %}"), int)
    assert run("{% 1.5 %}") == 1.5
    assert run("{% {'a': [1, null, true]} %}") == {"a": [1, None, True]}
    assert run("{% null %}") is None
    assert run("{% '' %}") == ""
    assert run("{% $states.input.a %}", {"a": None}) is None


def test_a_non_finite_number_is_null_as_json_gives_it() -> None:
    assert run("{% 1 / 0 %}") is None


def test_undefined_is_an_error_naming_the_expression_and_field() -> None:
    assert cause_of("{% $doesNotExist %}") == (
        "The JSONata expression '$doesNotExist' specified for the field 'Output' returned "
        "nothing (undefined)."
    )


def test_a_function_result_is_an_unsupported_result_type() -> None:
    assert cause_of("{% $fn := function($x){$x} %}", field="Items") == (
        "The JSONata expression '$fn := function($x){$x}' specified for the field 'Items' "
        "returned an unsupported result type."
    )


def test_library_errors_keep_their_code() -> None:
    assert cause_of("{% $x() %}") == (
        "The JSONata expression '$x()' specified for the field 'Output' threw an error during "
        "evaluation. T1006: Attempted to invoke a non-function"
    )
    assert "T2001" in cause_of("{% 'a' - 1 %}")


def test_unexpected_type_message() -> None:
    expression = compile_expression("{% $states.input %}", field="Items")
    error = expression.unexpected_type("array", {"foo": "bar"})
    assert error.cause == (
        "The JSONata expression '$states.input' specified for the field 'Items' returned an "
        "unexpected result type. Expected 'array', but was 'object' for value: {\"foo\":\"bar\"}"
    )


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ([], "array"),
        (True, "boolean"),
        (None, "null"),
        (1, "number"),
        (1.5, "number"),
        ({}, "object"),
        ("", "string"),
    ],
)
def test_jsonata_type_name(value: Any, name: str) -> None:
    assert jsonata_type_name(value) == name


def test_the_input_is_not_mutated_or_copied_into_the_result_by_reference() -> None:
    data = {"a": [1, 2]}
    out = run("{% $states.input %}", data)
    assert out == data
    out["a"].append(3)
    assert data == {"a": [1, 2]}


# --- templates -------------------------------------------------------------------------------


def test_template_evaluates_nested_expressions_and_keeps_constants() -> None:
    template = compile_template(
        {"x": "{% $states.input.v %}", "c": [1, {"d": "{% 2 %}"}], "s": " {% no %}", "n": None},
        field="Output",
    )
    assert template.evaluate(states({"v": 7}), None) == {
        "x": 7,
        "c": [1, {"d": 2}],
        "s": " {% no %}",
        "n": None,
    }


def test_undefined_inside_a_template_names_the_nested_field() -> None:
    template = compile_template({"result": "{% $doesNotExist %}"}, field="Output")
    with pytest.raises(EvaluationError) as caught:
        template.evaluate(states(), None)
    assert caught.value.cause == (
        "The JSONata expression '$doesNotExist' specified for the field 'Output/result' returned "
        "nothing (undefined)."
    )
    nested = compile_template({"a": {"b": "{% $nope %}"}}, field="Arguments")
    with pytest.raises(EvaluationError, match="'Arguments/a/b'"):
        nested.evaluate(states(), None)


def test_constant_template_is_copied_per_evaluation() -> None:
    template = compile_template({"a": [1]}, field="Output")
    first = template.evaluate(states(), None)
    first["a"].append(2)
    assert template.evaluate(states(), None) == {"a": [1]}


def test_a_whole_string_expression_template_may_answer_any_value() -> None:
    assert compile_template("{% [1, 2] %}", field="Items").evaluate(states(), None) == [1, 2]


def test_a_template_with_a_syntax_error_is_refused_at_compile_time() -> None:
    with pytest.raises(InvalidExpression):
        compile_template({"a": {"b": "{% ( %}"}}, field="Output")


# --- the AWS functions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{% $partition([0, 1, 2], 2) %}", [[0, 1], [2]]),
        ("{% $partition([0], 1) %}", [[0]]),  # recorded: stays an array of one array
        ("{% $range(0, 9, 3) %}", [0, 3, 6, 9]),
        ("{% $range(0, 10, 3) %}", [0, 3, 6, 9]),
        ("{% $range(1, 9, 9) %}", 1),  # recorded: a one-item range is the bare number
        ("{% $range(5, 1, -2) %}", [5, 3, 1]),
        (
            "{% $hash('a', 'SHA-256') %}",
            "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
        ),
        ("{% $hash('a', 'MD5') %}", "0cc175b9c0f1b6a831c399e269772661"),
        ("{% $parse('-0') %}", 0),
        ('{% $parse(\'{"Arg1": 1, "Arg2": []}\') %}', {"Arg1": 1, "Arg2": []}),
    ],
)
def test_aws_functions(text: str, expected: Any) -> None:
    assert run(text) == expected


def test_aws_function_argument_errors_use_the_signature_message() -> None:
    assert cause_of("{% $range('0', 4, 1) %}").endswith(
        'T0410: Argument 1 of function "range" does not match function signature'
    )
    assert cause_of("{% $range(0, 4, 1, 2) %}").endswith(
        'T0410: Argument 4 of function "range" does not match function signature'
    )


def test_eval_is_refused_as_aws_refuses_it() -> None:
    assert cause_of("{% $eval('1 + 1') %}").endswith("T1006: Attempted to invoke a non-function")


def test_random_and_uuid_draw_from_the_entropy_handed_in() -> None:
    entropy = FixedEntropy()
    assert run("{% $random() %}", entropy=entropy) == 0.25
    assert run("{% $uuid() %}", entropy=entropy) == "00000000-0000-4000-8000-000000000000"
    assert entropy.draws == 1


def test_random_without_entropy_fails_instead_of_reading_a_global_source() -> None:
    assert "entropy" in cause_of("{% $random() %}")


def test_seeded_random_is_deterministic_and_pure() -> None:
    first = run("{% $random(42) %}")
    assert first == run("{% $random(42) %}") == java_random_double(42)
    assert 0 <= first < 1
    assert run("{% $random(43) %}") != first
    # java.util.Random(0).nextDouble(), a published value
    assert java_random_double(0) == pytest.approx(0.730967787376657)


def test_now_and_millis_answer_the_state_entered_time() -> None:
    assert run("{% $now() %}") == "2024-01-02T03:04:05.678Z"
    assert run("{% $millis() %}") == 1704164645678
    assert run("{% $now('[Y0001]-[M01]-[D01]') %}") == "2024-01-02"


def test_functions_are_only_registered_where_named() -> None:
    assert compile_expression("{% 1 %}", field="Output")._uses_host is False
    assert compile_expression("{% $partition([1], 1) %}", field="Output")._uses_host is True


def test_compile_raw_reports_undefined_without_raising() -> None:
    expression = jsonata.compile_raw("nothing")
    assert expression.evaluate_raw({"a": 1}, {}) is jsonata.UNDEFINED
    assert expression.evaluate_raw(None, {}, has_input=False) is jsonata.UNDEFINED


def test_an_expression_compiled_on_one_thread_runs_and_is_freed_on_another() -> None:
    """jsonatapy's compiled objects are bound to their thread: a definition is parsed on one
    thread (a reader) and run on another (the engine's loop), then dropped anywhere."""
    import gc
    import threading

    made: list[Any] = []
    errors: list[BaseException] = []

    def compile_elsewhere() -> None:
        made.append(compile_expression("{% $states.input.x * 2 %}", field="Output"))

    worker = threading.Thread(target=compile_elsewhere)
    worker.start()
    worker.join()
    expression = made.pop()
    assert expression.evaluate({"input": {"x": 21}}, None) == 42

    def evaluate_and_drop(value: Any) -> None:
        try:
            assert value.evaluate({"input": {"x": 2}}, None) == 4
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    other = threading.Thread(target=evaluate_and_drop, args=(expression,))
    other.start()
    other.join()
    del expression
    gc.collect()
    assert errors == []
