"""Compare JSONata libraries for flowstate: fidelity (reference suite) and speed (workload).

Usage::

    .venv/bin/python benchmarks/jsonata_libraries.py [--suite DIR] [--workload DIR] [--quick]

Prints, per library, how many cases of the JSONata reference test suite (jsonata-js 2.2.2,
1,686 cases) pass, fail (wrong result / wrong error code) or error (an exception other than a
JSONata error, or a hang past the case's time limit), then the time per evaluation of the ten
distinct expressions of the ``jsonata_transform`` benchmark workload (compiled once, evaluated
many times), for each raw library and for flowstate's adapter. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_SUITE = SHARED / "jsonata-test-suite"
DEFAULT_WORKLOAD = SHARED / "bench" / "workloads"

UNDEFINED = object()  # a result of JSONata ``undefined``


class CaseError(Exception):
    """A JSONata error raised by a library, normalised to its error code."""

    def __init__(self, code: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- the reference suite --------------------------------------------------------------------


def iter_suite(suite: Path) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """Yield ``(case id, case, input data or UNDEFINED)`` for every case of the suite."""
    datasets = {p.stem: json.loads(p.read_text()) for p in (suite / "datasets").glob("*.json")}
    for path in sorted((suite / "groups").glob("*/*.json")):
        loaded = json.loads(path.read_text())
        cases = loaded if isinstance(loaded, list) else [loaded]
        for index, case in enumerate(cases):
            case_id = f"{path.parent.name}/{path.stem}"
            if isinstance(loaded, list):
                case_id += f"[{index}]"
            if "expr-file" in case:
                case = {**case, "expr": (path.parent / case["expr-file"]).read_text()}
            if "data" in case:
                data = case["data"]
            elif case.get("dataset") is not None:
                data = datasets[case["dataset"]]
            else:
                data = UNDEFINED
            yield case_id, case, data


def same(expected: Any, actual: Any, unordered: bool = False) -> bool:
    """JSON equality as the reference runner checks it (1 == 1.0; floats to 1e-9 relative)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return False
        if unordered:
            remaining = list(actual)
            for item in expected:
                for i, candidate in enumerate(remaining):
                    if same(item, candidate):
                        del remaining[i]
                        break
                else:
                    return False
            return True
        return all(same(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            same(v, actual[k]) for k, v in expected.items()
        )
    return bool(expected == actual) and type(expected) is type(actual)


Runner = Callable[[str, Any, dict[str, Any], int | None, int | None], Any]


def run_suite(suite: Path, runner: Runner) -> tuple[Counter[str], dict[str, str]]:
    """Run every case through ``runner``; return the outcome counts and the failures."""
    counts: Counter[str] = Counter()
    failures: dict[str, str] = {}
    for case_id, case, data in iter_suite(suite):
        expected_code = case.get("code") or (case.get("error") or {}).get("code")
        try:
            result = runner(
                case["expr"],
                data,
                case.get("bindings") or {},
                case.get("timelimit"),
                case.get("depth"),
            )
        except CaseError as err:
            if expected_code is not None and err.code == expected_code:
                counts["pass"] += 1
            else:
                counts["fail"] += 1
                failures[case_id] = f"error {err.code}: {err} (expected {_expected(case)})"
            continue
        except RecursionError:
            counts["error"] += 1
            failures[case_id] = "RecursionError"
            continue
        except Exception as err:  # a crash of the library, not a JSONata error
            counts["error"] += 1
            failures[case_id] = f"{type(err).__name__}: {err}"[:300]
            continue
        if expected_code is None and (
            (case.get("undefinedResult") and result is UNDEFINED)
            or (
                "result" in case
                and result is not UNDEFINED
                and same(case["result"], result, bool(case.get("unordered")))
            )
        ):
            counts["pass"] += 1
        else:
            counts["fail"] += 1
            shown = "undefined" if result is UNDEFINED else json.dumps(result, default=repr)[:200]
            failures[case_id] = f"got {shown} (expected {_expected(case)})"
    return counts, failures


def _expected(case: dict[str, Any]) -> str:
    if "code" in case or "error" in case:
        return "error " + str(case.get("code") or case["error"].get("code"))
    if case.get("undefinedResult"):
        return "undefined"
    return json.dumps(case.get("result"))[:200]


_CODE = re.compile(r"\b([STDU]\d{4})\b")


def jsonata_python_runner() -> Runner:
    import jsonata
    from jsonata import jexception, utils

    def run(
        expr: str, data: Any, bindings: dict[str, Any], timelimit: int | None, depth: int | None
    ) -> Any:
        try:
            compiled = jsonata.Jsonata(expr, timeout=timelimit, stack=depth)
            compiled.set_output_convert_nulls(False)
            result = compiled.evaluate(None if data is UNDEFINED else data, bindings or None)
        except jexception.JException as err:
            raise CaseError(err.error, str(err)) from err
        if result is None:
            return UNDEFINED
        return _plain(utils.Utils.convert_nulls(result))

    return run


def jsonatapy_runner() -> Runner:
    import jsonatapy

    def run(
        expr: str, data: Any, bindings: dict[str, Any], timelimit: int | None, depth: int | None
    ) -> Any:
        try:
            compiled = jsonatapy.compile(expr, timeout=timelimit, max_stack_depth=depth)
            text = compiled.evaluate_json_or_none(
                None if data is UNDEFINED else json.dumps(data), bindings or None
            )
        except ValueError as err:
            match = _CODE.search(str(err))
            raise CaseError(match.group(1) if match else None, str(err)) from err
        return UNDEFINED if text is None else json.loads(text)

    return run


def flowstate_runner() -> Runner:
    """The adapter, bypassing the ``{% %}`` wrapping: bindings and input as given by the case."""
    from flowstate.asl import jsonata as adapter
    from flowstate.asl.errors import EvaluationError, InvalidExpression

    def run(
        expr: str, data: Any, bindings: dict[str, Any], timelimit: int | None, depth: int | None
    ) -> Any:
        try:
            compiled = adapter.compile_raw(
                expr, timeout_ms=timelimit or adapter.TIMEOUT_MS, max_depth=depth
            )
            result = compiled.evaluate_raw(
                None if data is UNDEFINED else data, bindings, has_input=data is not UNDEFINED
            )
        except adapter.InvalidJSONataExpression as err:
            raise CaseError(err.jsonata_code, err.message) from err
        except InvalidExpression as err:
            raise CaseError(None, err.message) from err
        except EvaluationError as err:
            match = _CODE.search(err.cause or "")
            raise CaseError(match.group(1) if match else None, err.cause or "") from err
        return UNDEFINED if result is adapter.UNDEFINED else result

    return run


def _plain(value: Any) -> Any:
    """Library results as plain JSON values (jsonata-python returns its own sequence type)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if callable(value) or value.__class__.__module__.startswith("jsonata"):
        return repr(value)
    return value


# --- the conformance corpus (recorded against AWS) ------------------------------------------

CONFORMANCE = SHARED / "conformance" / "cases"


def conformance(cases_dir: Path) -> None:
    """JSONata cases of the AWS-recorded corpus: every ``{% %}`` compiled by each library, and
    the one-state ``Pass`` machines (Output only) evaluated through the adapter and compared
    with AWS's recorded output or cause."""
    import jsonata
    import jsonatapy

    from flowstate.asl import jsonata as adapter
    from flowstate.asl.errors import EvaluationError

    expressions: list[str] = []
    single: list[dict[str, Any]] = []
    count = 0
    for path in sorted(cases_dir.glob("*/*.json")):
        case = json.loads(path.read_text())
        if "jsonata" not in [t.lower() for t in case.get("features", [])]:
            continue
        count += 1
        expressions += re.findall(r"\{%.*?%\}", json.dumps(case.get("definition")))
        definition = case.get("definition") or {}
        states = definition.get("States", {})
        if (
            len(states) == 1
            and case["kind"] == "execution"
            and all(
                s.get("Type") == "Pass" and set(s) <= {"Type", "Output", "End", "QueryLanguage"}
                for s in states.values()
            )
        ):
            single.append(case)
    bodies = [json.loads(f'"{e}"')[2:-2].strip() for e in expressions]
    print(f"\nConformance corpus: {count} JSONata cases, {len(bodies)} expressions")
    for name, compile_one in (
        ("jsonata-python", jsonata.Jsonata),
        ("jsonatapy", jsonatapy.compile),
    ):
        ok = 0
        for body in bodies:
            try:
                compile_one(body)
                ok += 1
            except Exception:
                pass
        print(f"  {name:18} compiles {ok} of {len(bodies)}")
    passed = 0
    for case in single:
        state = next(iter(case["definition"]["States"].values()))
        expected = case["expected"]
        try:
            template = adapter.compile_template(
                state.get("Output", "{% $states.input %}"), field="Output"
            )
            out: Any = ("SUCCEEDED", template.evaluate({"input": case["input"]}, None))
        except EvaluationError as err:
            out = ("FAILED", err.error, err.cause)
        if expected["status"] == "SUCCEEDED":
            good = out[0] == "SUCCEEDED" and same(expected.get("output"), out[1])
        else:
            good = (
                out[0] == "FAILED"
                and out[1] == expected.get("error")
                and str(expected.get("cause", "")).endswith(out[2])
            )
        passed += good
        if not good:
            print(f"    differs: {case['case_id']}: {out!r:.200}")
    print(f"  flowstate adapter  one-state Pass cases: {passed} of {len(single)} match AWS")


# --- speed ------------------------------------------------------------------------------------


def workload_expressions(workload: Path) -> list[str]:
    """The ten distinct ``Output`` expressions of jsonata_transform.json (each is used twice,
    under two result names: ``'r1'`` and ``'r11'`` hold the same aggregate)."""
    definition = json.loads((workload / "jsonata_transform.json").read_text())
    seen: dict[str, str] = {}
    for state in definition["States"].values():
        seen.setdefault(re.sub(r"'r\d+'", "'r'", state["Output"]), state["Output"])
    return list(seen.values())


def time_per_call(call: Callable[[], Any], budget_seconds: float) -> float:
    """Median seconds per call over several rounds sized to fill ``budget_seconds``."""
    call()
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < budget_seconds / 10 or n < 3:
        call()
        n += 1
    per_round = max(n, 1)
    rounds = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(per_round):
            call()
        rounds.append((time.perf_counter() - t0) / per_round)
    return statistics.median(rounds)


def speed(workload: Path, budget_seconds: float) -> dict[str, list[float]]:
    data = json.loads((workload / "jsonata_transform.input.json").read_text())
    templates = workload_expressions(workload)
    bodies = [t.strip()[2:-2].strip() for t in templates]
    states = {"input": data}
    out: dict[str, list[float]] = {}

    import jsonata

    py = [jsonata.Jsonata(b) for b in bodies]
    out["jsonata-python (evaluate, $states bound)"] = [
        time_per_call(lambda e=e: e.evaluate(None, {"states": states}), budget_seconds) for e in py
    ]

    import jsonatapy

    rs = [jsonatapy.compile(b) for b in bodies]
    out["jsonatapy (evaluate, $states bound)"] = [
        time_per_call(lambda e=e: e.evaluate(None, {"states": states}), budget_seconds) for e in rs
    ]
    text = json.dumps(data)
    as_root = [jsonatapy.compile(b.replace("$states.input", "$")) for b in bodies]
    out["jsonatapy (evaluate_json_or_none, input as JSON text $)"] = [
        time_per_call(lambda e=e: e.evaluate_json_or_none(text), budget_seconds) for e in as_root
    ]

    try:
        from flowstate.asl import jsonata as adapter
    except ImportError:
        return out
    compiled = [adapter.compile_expression(t, field="Output") for t in templates]
    out["flowstate adapter (compile_expression().evaluate)"] = [
        time_per_call(lambda e=e: e.evaluate(states, None), budget_seconds) for e in compiled
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=DEFAULT_SUITE)
    parser.add_argument("--workload", type=Path, default=DEFAULT_WORKLOAD)
    parser.add_argument("--quick", action="store_true", help="shorter timing rounds")
    parser.add_argument("--failures", action="store_true", help="list every failing case")
    parser.add_argument("--skip-suite", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)

    if not args.skip_suite:
        runners: dict[str, Callable[[], Runner]] = {
            "jsonata-python": jsonata_python_runner,
            "jsonatapy": jsonatapy_runner,
            "flowstate adapter": flowstate_runner,
        }
        print(f"JSONata reference suite: {args.suite}")
        for name, make in runners.items():
            try:
                runner = make()
            except ImportError as err:
                print(f"  {name}: unavailable ({err})")
                continue
            sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
            t0 = time.perf_counter()
            counts, failures = run_suite(args.suite, runner)
            total = sum(counts.values())
            print(
                f"  {name:18} pass {counts['pass']:5}  fail {counts['fail']:4}  "
                f"error {counts['error']:4}  of {total}  ({time.perf_counter() - t0:.1f} s)"
            )
            if args.failures:
                for case_id, why in sorted(failures.items()):
                    print(f"      {case_id}: {why}")

    if CONFORMANCE.is_dir() and not args.skip_suite:
        conformance(CONFORMANCE)

    if not args.skip_speed:
        budget = 0.2 if args.quick else 1.0
        figures = speed(args.workload, budget)
        bodies = workload_expressions(args.workload)
        print("\njsonata_transform expressions: ms per evaluation (median)")
        names = list(figures)
        for i, body in enumerate(bodies):
            print(f"  J{i + 1:02}  {body[:90]}")
            for name in names:
                print(f"        {figures[name][i] * 1e3:8.4f}  {name}")
        print("  mean over the 10 expressions:")
        for name in names:
            print(f"        {statistics.fmean(figures[name]) * 1e3:8.4f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
