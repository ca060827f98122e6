"""The JSONata reference test suite (jsonata-js 2.2.2, 1,686 cases) through flowstate's adapter.

Each case is compiled with ``compile_raw`` (the AWS functions bound, ``$eval`` refused) and
evaluated with the case's input as the context item and its bindings as variables.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest

from flowstate.asl import jsonata
from flowstate.asl.errors import EvaluationError

pytestmark = pytest.mark.corpus

SUITE = Path(__file__).resolve().parents[3] / "shared" / "jsonata-test-suite"
_NO_INPUT = object()

SKIP = {
    **{
        case: "AWS refuses $eval (a call fails with T1006); the suite expects jsonata-js's $eval"
        for case in (
            "function-eval/case000",
            "function-eval/case001",
            "function-eval/case002",
            "function-eval/case003",
            "function-eval/case004",
            "function-eval/case005",
            "function-eval/case006",
            "function-eval/case007",
            "function-eval/case008[0]",
            "function-eval/case008[1]",
            "function-eval/case008[2]",
            "function-eval/case008[3]",
        )
    },
    "function-tomillis/parseDateTime[28]": "$now() answers the state's entered time from "
    "$states.context, which the suite does not bind",
    "function-encodeUrl/case002": "an unpaired surrogate cannot cross into the Rust library: "
    "refused at compile time instead of failing with D3140 when run",
    "function-encodeUrlComponent/case002": "an unpaired surrogate cannot cross into the Rust "
    "library: refused at compile time instead of failing with D3140 when run",
    "tail-recursion/case002": "expects U1001 (a JavaScript stack overflow); the library raises "
    "its own bound, D1011",
    "tail-recursion/case005": "expects U1001 (a JavaScript stack overflow); the library raises D1011",
    "tail-recursion/case006": "expects U1001 (a JavaScript stack overflow); the library raises "
    "its time bound, D1012",
}


def _cases() -> list[Any]:
    if not SUITE.is_dir():
        return []
    datasets = {p.stem: json.loads(p.read_text()) for p in (SUITE / "datasets").glob("*.json")}
    out = []
    for path in sorted((SUITE / "groups").glob("*/*.json")):
        loaded = json.loads(path.read_text())
        cases = loaded if isinstance(loaded, list) else [loaded]
        for index, case in enumerate(cases):
            case_id = f"{path.parent.name}/{path.stem}" + (
                f"[{index}]" if isinstance(loaded, list) else ""
            )
            if "expr-file" in case:
                case = {**case, "expr": (path.parent / case["expr-file"]).read_text()}
            if "data" in case:
                data = case["data"]
            elif case.get("dataset") is not None:
                data = datasets[case["dataset"]]
            else:
                data = _NO_INPUT
            marks = [pytest.mark.skip(reason=SKIP[case_id])] if case_id in SKIP else []
            out.append(pytest.param(case, data, id=case_id, marks=marks))
    return out


CASES = _cases()


def test_suite_is_present() -> None:
    if CASES:
        assert len(CASES) == 1686
        return
    if os.environ.get("REQUIRE_CORPUS") == "1":
        pytest.fail(f"REQUIRE_CORPUS=1 but the JSONata test suite is missing at {SUITE}")
    pytest.skip(f"JSONata test suite not found at {SUITE}")


def _same(expected: Any, actual: Any, unordered: bool = False) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return False
        if unordered:
            rest = list(actual)
            for item in expected:
                hit = next((i for i, c in enumerate(rest) if _same(item, c)), None)
                if hit is None:
                    return False
                del rest[hit]
            return True
        return all(_same(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            _same(v, actual[k]) for k, v in expected.items()
        )
    return bool(expected == actual) and type(expected) is type(actual)


_CODE = re.compile(r"\b([STDU]\d{4})\b")


@pytest.mark.parametrize(("case", "data"), CASES)
def test_reference_case(case: dict[str, Any], data: Any) -> None:
    expected_code = case.get("code") or (case.get("error") or {}).get("code")
    try:
        compiled = jsonata.compile_raw(
            case["expr"],
            timeout_ms=case.get("timelimit") or jsonata.TIMEOUT_MS,
            max_depth=case.get("depth"),
        )
        result = compiled.evaluate_raw(
            None if data is _NO_INPUT else data,
            case.get("bindings") or {},
            has_input=data is not _NO_INPUT,
        )
    except jsonata.InvalidJSONataExpression as err:
        assert expected_code is not None, f"refused: {err.message}"
        assert err.jsonata_code == expected_code, err.message
        return
    except EvaluationError as err:
        assert expected_code is not None, err.cause
        match = _CODE.search(err.cause or "")
        assert match is not None and match.group(1) == expected_code, err.cause
        return
    assert expected_code is None, f"expected error {expected_code}, got {result!r}"
    if case.get("undefinedResult"):
        assert result is jsonata.UNDEFINED
    else:
        assert result is not jsonata.UNDEFINED
        assert _same(case["result"], result, bool(case.get("unordered"))), result
