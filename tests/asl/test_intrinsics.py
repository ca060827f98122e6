"""Intrinsic functions: parsing, AWS's results (recorded in the corpus) and failures."""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any

import pytest

from flowstate.asl.errors import EvaluationError, InvalidExpression
from flowstate.asl.intrinsics import compile_intrinsic, is_intrinsic
from flowstate.asl.scope import Scope
from flowstate.asl.templates import compile_template


class _Entropy:
    def __init__(self, value: float = 0.5) -> None:
        self.value = value

    def random(self) -> float:
        return self.value

    def uuid4(self) -> str:
        return "9b2c7f1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b"


CONTEXT = {
    "Execution": {"Name": "exec-1"},
    "StateMachine": {"Id": "arn:sm", "Name": "my-machine-name"},
}
SCOPE = Scope(CONTEXT, {"name": "John", "tpl": "It's {}!", "n": 5}, _Entropy())


def run(text: str, input: Any = None, scope: Scope = SCOPE) -> Any:
    return compile_intrinsic(text).evaluate(input, scope)


CASES: list[tuple[str, Any, Any]] = [
    ("States.Array()", None, []),
    ("States.Array($.a, $.b)", {"a": 1.1, "b": None}, [1.1, None]),
    ("States.Array(1, 2.5, 'x', true, null)", None, [1, 2.5, "x", True, None]),
    ("States.ArrayPartition($.a, 2)", {"a": [0, 1, 2]}, [[0, 1], [2]]),
    ("States.ArrayPartition($.a, 5)", {"a": []}, []),
    ("States.ArrayContains($.a, $.v)", {"a": [[1, 2, 3], 2], "v": [1, 2, 3]}, True),
    ("States.ArrayContains($.a, $.v)", {"a": [{"1": 2, "2": []}], "v": {"2": [], "1": 2}}, True),
    ("States.ArrayContains($.a, $.v)", {"a": [1], "v": True}, False),
    ("States.ArrayContains($.a, $.v)", {"a": [], "v": None}, False),
    ("States.ArrayRange(0, 9, 3)", None, [0, 3, 6, 9]),
    ("States.ArrayRange(0, 10, 3)", None, [0, 3, 6, 9]),
    ("States.ArrayRange(1, 9, 9)", None, [1]),
    ("States.ArrayRange(9, 0, -4)", None, [9, 5, 1]),
    ("States.ArrayRange(5, 0, 1)", None, []),
    ("States.ArrayGetItem($.a, 5)", {"a": [1, 2, 3, 4, 5, 6]}, 6),
    ("States.ArrayLength($.a)", {"a": [None, None, 1]}, 3),
    (
        "States.ArrayUnique($.a)",
        {"a": [1, 1, 1.0, True, "1", [None], [None], {"a": 1}]},
        [1, 1.0, True, "1", [None], {"a": 1}],
    ),
    ("States.Base64Encode('Data to encode')", None, "RGF0YSB0byBlbmNvZGU="),
    ("States.Base64Decode($.s)", {"s": "RGF0YSB0byBlbmNvZGU="}, "Data to encode"),
    ("States.Base64Encode('')", None, ""),
    ("States.Hash('input data', 'MD5')", None, "812f45842bc6d66ee14572ce20db8e86"),
    ("States.Hash('input data', 'SHA-1')", None, "aaff4a450a104cd177d28d18d74485e8cae074b7"),
    (
        "States.JsonMerge($.a, $.b, false)",
        {"a": {"x": 1, "y": {"k": 1}}, "b": {"y": 2}},
        {"x": 1, "y": 2},
    ),
    ("States.StringToJson($.s)", {"s": '{"Arg1": 1, "Arg2": []}'}, {"Arg1": 1, "Arg2": []}),
    ("States.StringToJson($.s)", {"s": ""}, None),
    ("States.StringToJson($.s)", {"s": " "}, None),
    ("States.StringToJson($.s)", {"s": "-0"}, 0),
    ("States.StringToJson($.s)", {"s": "1.1"}, 1.1),
    (
        "States.JsonToString($.o)",
        {"o": {"test": "object", "n": [1, 1e7]}},
        '{"test":"object","n":[1,1.0E7]}',
    ),
    ("States.MathAdd($.a, -1)", {"a": 111}, 110),
    ("States.MathAdd(1.5, 1)", None, 3),  # rounded like Java's Math.round
    ("States.MathAdd(-2.5, 0)", None, -2),
    ("States.MathAdd(States.MathAdd(1, 2), $n)", None, 8),
    ("States.StringSplit($.s, ',')", {"s": ", , ,"}, [" ", " "]),
    ("States.StringSplit($.s, ',')", {"s": ",,,,"}, []),
    (
        "States.StringSplit($.s, '.+,=')",
        {"s": "This.is+a,test=string"},
        ["This", "is", "a", "test", "string"],
    ),
    ("States.StringSplit('Hello\nWorld', '\n')", None, ["Hello", "World"]),
    ("States.UUID()", None, "9b2c7f1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b"),
    ("States.Format('Hello {}, welcome to {}!', $name, 'X')", None, "Hello John, welcome to X!"),
    ("States.Format($tpl, 'Pikachu')", None, "It's Pikachu!"),
    ("States.Format('{} {} {} {}', 1, 1.0, null, true)", None, "1 1.0 null true"),
    ("States.Format('{}', $$.StateMachine)", None, "{Id=arn:sm, Name=my-machine-name}"),
    ("States.Format('{}', $.a)", {"a": [1, "b", {"c": []}]}, "[1, b, {c=[]}]"),
    ("States.Format('{}', $.a)", {"a": 12345678.0}, "1.2345678E7"),
    ("States.Format('a\\{\\}b\\'\\\\ {}', 1)", None, "a{}b'\\ 1"),
    (
        "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), "
        "States.MathAdd(States.ArrayLength(States.StringSplit($$.StateMachine.Name, '-')), -1))",
        None,
        "name",
    ),
    ("States.Array($.a[*].b, $$.Execution.Name)", {"a": [{"b": 1}, {"b": 2}]}, [[1, 2], "exec-1"]),
    ("States.Array($.a[?(@.b > 1)].b)", {"a": [{"b": 1}, {"b": 2}]}, [[2]]),
]


@pytest.mark.parametrize(("text", "input", "expected"), CASES)
def test_intrinsic_results(text: str, input: Any, expected: Any) -> None:
    result = run(text, input)
    assert result == expected
    assert type(result) is type(expected)


def test_types_are_preserved_exactly() -> None:
    assert run("States.ArrayContains($.a, 1)", {"a": [1.0, True]}) is False
    assert run("States.Array($.x)", {"x": 1.0}) == [1.0]
    assert type(run("States.Array($.x)", {"x": 1.0})[0]) is float


def test_hash_sha_family() -> None:
    assert run("States.Hash('input data', 'SHA-256')") == (
        "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3"
    )
    assert len(run("States.Hash('input data', 'SHA-384')")) == 96
    assert len(run("States.Hash('input data', 'SHA-512')")) == 128


def test_math_random_uses_entropy_and_bounds() -> None:
    low = Scope(CONTEXT, None, _Entropy(0.0))
    high = Scope(CONTEXT, None, _Entropy(0.9999999))
    assert run("States.MathRandom(10, 20)", scope=low) == 10
    assert run("States.MathRandom(10, 20)", scope=high) == 19
    assert run("States.MathRandom(-99999, -9999)", scope=low) == -99999
    assert 12 <= run("States.MathRandom(12.5, 44.51)") < 45


def test_math_random_with_seed_is_reproducible() -> None:
    first = run("States.MathRandom(0, 1000, 7)")
    assert first == run("States.MathRandom(0, 1000, 7)", scope=Scope(CONTEXT, None, _Entropy(0.1)))
    assert 0 <= first < 1000
    # new java.util.Random(42).nextInt(10) == 0, a well-known value; nextInt(100) follows.
    assert run("States.MathRandom(0, 10, 42)") == 0
    assert run("States.MathRandom(5, 105, 42)") == 35


FAILURES: list[tuple[str, Any]] = [
    ("States.ArrayGetItem($.a, 3)", {"a": [1, 2, 3]}),
    ("States.ArrayGetItem($.a, -1)", {"a": [1, 2, 3]}),
    ("States.ArrayGetItem($.a, 0)", {"a": "not an array"}),
    ("States.ArrayLength($.a)", {"a": {}}),
    ("States.ArrayPartition($.a, 0)", {"a": [1]}),
    ("States.ArrayRange(0, 1000, 1)", None),  # 1001 items; AWS allows 1000
    ("States.ArrayRange(0, 10, 0)", None),
    ("States.Base64Decode('%%%')", None),
    ("States.Base64Encode($.a)", {"a": "x" * 10001}),
    ("States.Hash('x', 'SHA-3')", None),
    ("States.Hash($.a, 'MD5')", {"a": 1}),
    ("States.JsonMerge($.a, $.b, true)", {"a": {}, "b": {}}),
    ("States.JsonMerge($.a, $.b, false)", {"a": [], "b": {}}),
    ("States.MathAdd('1', 2)", None),
    ("States.MathAdd($.a, 1)", {"a": 2**31}),
    ("States.MathRandom(5, 5)", None),
    ("States.StringSplit(1, ',')", None),
    ("States.StringToJson('{nope')", None),
    ("States.StringToJson('NaN')", None),
    ("States.Format('{} {}', 1)", None),
    ("States.Format('{}', 1, 2)", None),
]


@pytest.mark.parametrize(("text", "input"), FAILURES)
def test_intrinsic_failures(text: str, input: Any) -> None:
    with pytest.raises(EvaluationError) as info:
        run(text, input)
    assert info.value.error == "States.IntrinsicFailure"
    assert info.value.cause


def test_argument_path_that_matches_nothing_is_runtime_error() -> None:
    with pytest.raises(EvaluationError) as info:
        run("States.Array($.missing)", {})
    assert info.value.error == "States.Runtime"
    assert "$['missing']" in (info.value.cause or "")


@pytest.mark.parametrize(
    "text",
    [
        "States.Nope()",
        "States.Array(",
        "States.Array(1 2)",
        "States.Array('unterminated)",
        'States.StringToJson(\'{"text":"An \\"escaped\\" quote"}\')',  # \" is not an AWS escape
        "States.UUID(1)",
        "States.MathAdd(1)",
        "States.ArrayRange(1, 2)",
        "States.JsonMerge($.a, $.b)",
        "States.Format()",
        "States.Format(1, 2)",
        "States.Array() trailing",
        "States.Array($.a[)",
        "States.Array(00)",
        "Format('x')",
    ],
)
def test_bad_calls_do_not_compile(text: str) -> None:
    with pytest.raises(InvalidExpression):
        compile_intrinsic(text)


def test_is_intrinsic() -> None:
    assert is_intrinsic("States.Array()")
    assert not is_intrinsic("$.States.Array")
    assert not is_intrinsic("states.Array()")


def test_whitespace_is_allowed_between_tokens() -> None:
    assert run("States.Array( 1 ,  $.a ,States.Array( ) )", {"a": 2}) == [1, 2, []]


# --- Recorded AWS results ---------------------------------------------------------------------

CORPUS = pathlib.Path(__file__).resolve().parents[3] / "shared" / "conformance" / "cases"
# Outputs the recording masked (random numbers, generated UUIDs) cannot be compared.
MASKED = ("RandomNumberGenerated", "generated-uuid")


def _placeholder_match(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str) and isinstance(actual, str):
        pattern = re.sub(r"<[^\s'\"<>]+>", "\0", expected)
        regex = ".+".join(re.escape(part) for part in pattern.split("\0"))
        return re.fullmatch(regex, actual, re.S) is not None
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            _placeholder_match(expected[k], actual[k]) for k in expected
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(map(_placeholder_match, expected, actual))
    return type(expected) is type(actual) and bool(expected == actual)


def _corpus_cases() -> list[pathlib.Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        p for p in (CORPUS / "intrinsic_functions").glob("*.json") if "jsonata" not in p.name
    )


@pytest.mark.corpus
@pytest.mark.parametrize("case_file", _corpus_cases(), ids=lambda p: p.stem[-30:])
def test_recorded_intrinsic_cases(case_file: pathlib.Path) -> None:
    case = json.loads(case_file.read_text())
    (state,) = case["definition"]["States"].values()
    name = "<ArnPart_0idx>"
    context = {
        "Execution": {"Name": "<ExecArnPart_0idx>", "Input": case["input"]},
        "StateMachine": {
            "Id": f"arn:<partition>:states:<region>:111111111111:stateMachine:{name}",
            "Name": name,
        },
    }
    template = compile_template(state["Parameters"], field="Parameters")
    output = template.evaluate(case["input"], Scope(context, {}, _Entropy()))
    expected = case["expected"]["output"]
    if any(mask in json.dumps(expected) for mask in MASKED):
        assert output.keys() == expected.keys()
    else:
        assert _placeholder_match(expected, output)


def test_corpus_present_when_required() -> None:
    if os.environ.get("REQUIRE_CORPUS") == "1":
        assert _corpus_cases(), f"conformance corpus not found at {CORPUS}"
