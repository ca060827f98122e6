"""Run corpus cases through an engine and score them by the corpus README's rules."""

from __future__ import annotations

import importlib
import json
import sys
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from flowstate.asl.errors import DefinitionError, Diagnostic
from flowstate.conformance.case import Case, load_cases, load_skip_table
from flowstate.conformance.compare import (
    ACCOUNT_ID,
    REGION,
    extract_result,
    first_difference,
    history_types_match,
    json_matches,
    normalise_text,
    normalise_value,
    place_result,
    wildcards_of,
)
from flowstate.conformance.lambdas import functions_for

__all__ = [
    "CaseResult",
    "Engine",
    "LocalEngine",
    "run_case",
    "run_cases",
    "run_conformance",
]


class ExecutionResultLike(Protocol):
    status: str
    output: str | None
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]


class Engine(Protocol):
    """What the runner needs: ``flowstate.runtime.local`` and ``flowstate.asl.validate``."""

    def run_definition(
        self,
        definition: Any,
        input_json: str,
        *,
        state_machine_name: str,
        execution_name: str,
        state_machine_type: str,
        account_id: str,
        region: str,
        clock: str,
        functions: Mapping[str, Callable[..., Any]] | None,
        role_arn: str | None,
        synchronous: bool = False,
    ) -> ExecutionResultLike: ...

    def validate_definition(self, text: str, *, state_machine_type: str) -> list[Diagnostic]: ...


class LocalEngine:
    """The in-process engine (``flowstate.runtime.local``, ``flowstate.asl.validate``),
    imported on first use so that loading or scoring recorded results never needs it."""

    def run_definition(
        self,
        definition: Any,
        input_json: str,
        *,
        state_machine_name: str,
        execution_name: str,
        state_machine_type: str,
        account_id: str,
        region: str,
        clock: str,
        functions: Mapping[str, Callable[..., Any]] | None,
        role_arn: str | None,
        synchronous: bool = False,
    ) -> ExecutionResultLike:
        run_definition = importlib.import_module("flowstate.runtime.local").run_definition
        result: ExecutionResultLike = run_definition(
            definition,
            input_json,
            state_machine_name=state_machine_name,
            execution_name=execution_name,
            state_machine_type=state_machine_type,
            account_id=account_id,
            region=region,
            clock=clock,
            functions=functions,
            role_arn=role_arn,
            synchronous=synchronous,
        )
        return result

    def validate_definition(self, text: str, *, state_machine_type: str) -> list[Diagnostic]:
        validate_definition = importlib.import_module("flowstate.asl.validate").validate_definition
        diagnostics: list[Diagnostic] = validate_definition(
            text, state_machine_type=state_machine_type
        )
        return diagnostics


@dataclass(slots=True)
class CaseResult:
    case_id: str
    category: str
    result: str  # "pass" | "fail" | "skip"
    reason: str = ""
    actual: dict[str, Any] = field(default_factory=dict)
    # Whether the engine's history event types follow the recording; None: nothing recorded.
    history_match: bool | None = None
    # The case is in the skip table (a "pass" then means the entry is stale).
    skip_listed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "category": self.category,
            "result": self.result,
            "reason": self.reason,
            "actual": self.actual,
            "history_match": self.history_match,
            "skip_listed": self.skip_listed,
        }


def _empty_actual() -> dict[str, Any]:
    return {"status": None, "output": None, "error": None, "cause": None, "history": None}


def run_case(case: Case, engine: Engine) -> CaseResult:
    """Run one case and score it: ``pass``, ``fail`` (with the differences) or ``skip``."""
    if case.kind == "validate_state_machine_definition":
        return _run_validation(case, engine)
    if case.kind == "create_state_machine_error":
        return _run_create_error(case, engine)
    return _run_execution(case, engine)


def _definition_argument(case: Case) -> Any:
    if case.definition is None and case.definition_text is not None:
        return case.definition_text
    return case.definition


def _start(case: Case, engine: Engine) -> ExecutionResultLike:
    suffix = format(zlib.crc32(case.case_id.encode()), "08x")
    return engine.run_definition(
        _definition_argument(case),
        json.dumps({} if case.input is None else case.input),
        state_machine_name=case.name_for("state_machine_name") or f"statemachine_{suffix}",
        execution_name=case.name_for("execution_name") or f"exec-{suffix}",
        state_machine_type=case.state_machine_type,
        account_id=ACCOUNT_ID,
        region=REGION,
        clock="virtual",
        # Each function the case names, with the behaviour lambdas.json gives it.
        functions=functions_for(case.lambda_functions) or None,
        role_arn=case.name_for("role_arn"),
        # Recorded from StartSyncExecution: a synchronous Express execution.
        synchronous="start_sync_execution" in case.expected_from,
    )


def _run_execution(case: Case, engine: Engine) -> CaseResult:
    actual = _empty_actual()
    try:
        result = _start(case, engine)
    except DefinitionError as refused:
        actual["error"], actual["cause"] = refused.code, refused.message
        return CaseResult(
            case.case_id, case.category, "fail", f"definition refused: {refused.message}", actual
        )
    except Exception as crash:  # an engine bug must not stop the run
        actual["error"], actual["cause"] = type(crash).__name__, str(crash)
        return CaseResult(
            case.case_id,
            case.category,
            "fail",
            f"engine raised {type(crash).__name__}: {crash}",
            actual,
        )
    actual = {
        "status": result.status,
        "output": result.output,
        "error": result.error,
        "cause": result.cause,
        "history": result.history,
    }
    differences = compare_execution(case, actual)
    history_match = history_types_match(case, actual["history"])
    if differences:
        return CaseResult(
            case.case_id, case.category, "fail", "; ".join(differences), actual, history_match
        )
    return CaseResult(case.case_id, case.category, "pass", "", actual, history_match)


def _parse_json_text(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def compare_execution(case: Case, actual: Mapping[str, Any]) -> list[str]:
    """The differences between a raw engine result and the case's ``expected`` (README 2-4)."""
    expected = case.expected
    differences = []
    if actual.get("status") != expected.get("status"):
        differences.append(
            f"status {actual.get('status')!r} != expected {expected.get('status')!r}"
        )
    keys = [key for key in ("output", "error", "cause") if key in expected]
    if not keys:
        return differences
    values: dict[str, Any] = {}
    for key in keys:
        value = actual.get(key)
        if key == "output" or (key == "cause" and isinstance(expected[key], (dict, list))):
            value = _parse_json_text(value)
        values[key] = value
    normalised = extract_result(
        normalise_value(case, place_result(case, actual.get("status"), values))
    )
    wildcards = wildcards_of(case)
    for key in keys:
        difference = first_difference(expected[key], normalised.get(key), wildcards, key)
        if difference is not None:
            differences.append(difference)
    return differences


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."


def _run_create_error(case: Case, engine: Engine) -> CaseResult:
    actual = _empty_actual()
    expected = case.expected.get("create_error", {})
    try:
        result = _start(case, engine)
    except DefinitionError as refused:
        actual["error"], actual["cause"] = refused.code, refused.message
        differences = []
        if refused.code != expected.get("code"):
            differences.append(f"code {refused.code!r} != expected {expected.get('code')!r}")
        message = normalise_text(case, refused.message)
        if not json_matches(expected.get("message"), message):
            differences.append(
                f"message {_short(message)} != expected {_short(expected.get('message'))}"
            )
        if differences:
            return CaseResult(case.case_id, case.category, "fail", "; ".join(differences), actual)
        return CaseResult(case.case_id, case.category, "pass", "", actual)
    except Exception as crash:
        actual["error"], actual["cause"] = type(crash).__name__, str(crash)
        return CaseResult(
            case.case_id,
            case.category,
            "fail",
            f"engine raised {type(crash).__name__}: {crash}",
            actual,
        )
    actual.update(
        status=result.status,
        output=result.output,
        error=result.error,
        cause=result.cause,
        history=result.history,
    )
    return CaseResult(
        case.case_id,
        case.category,
        "fail",
        f"definition accepted, expected {expected.get('code')}: {_short(expected.get('message'))}",
        actual,
    )


def _run_validation(case: Case, engine: Engine) -> CaseResult:
    actual = _empty_actual()
    expected = case.expected.get("validate_definition", {})
    text = case.definition_text
    if text is None:
        text = json.dumps(case.definition)
    try:
        diagnostics = engine.validate_definition(text, state_machine_type=case.state_machine_type)
    except Exception as crash:
        actual["error"], actual["cause"] = type(crash).__name__, str(crash)
        return CaseResult(
            case.case_id,
            case.category,
            "fail",
            f"validator raised {type(crash).__name__}: {crash}",
            actual,
        )
    found = [d.to_json() for d in diagnostics]
    result = "FAIL" if any(d.severity == "ERROR" for d in diagnostics) else "OK"
    actual["status"], actual["output"] = (
        result,
        json.dumps({"result": result, "diagnostics": found}),
    )
    produced = json.loads(
        normalise_text(case, json.dumps({"result": result, "diagnostics": found}))
    )
    if json_matches(expected, produced):
        return CaseResult(case.case_id, case.category, "pass", "", actual)
    return CaseResult(
        case.case_id,
        case.category,
        "fail",
        f"validation {_short(produced)} != expected {_short(expected)}",
        actual,
    )


# --------------------------------------------------------------------------------------------
# Whole runs


def run_cases(
    cases: Sequence[Case], engine: Engine, skip_table: Mapping[str, str] | None = None
) -> list[CaseResult]:
    """Run every case; a failing case listed in ``skip_table`` is reported as ``skip``."""
    skip_table = skip_table or {}
    results = []
    for case in cases:
        result = run_case(case, engine)
        listed = skip_table.get(case.case_id)
        if listed is not None:
            result.skip_listed = True
            if result.result == "fail":
                result.result = "skip"
                result.reason = f"{listed} (skip table; {result.reason})"
        results.append(result)
    return results


def _summary_lines(results: Sequence[CaseResult]) -> list[str]:
    per_category: dict[str, dict[str, int]] = defaultdict(
        lambda: {"pass": 0, "fail": 0, "skip": 0, "history": 0, "history_match": 0}
    )
    for r in results:
        counts = per_category[r.category]
        counts[r.result] += 1
        if r.history_match is not None:
            counts["history"] += 1
            counts["history_match"] += int(r.history_match)
    width = max([len("category"), *(len(c) for c in per_category)])
    lines = [f"{'category':<{width}}  passed  failed  skipped  history types"]
    for category in sorted(per_category):
        c = per_category[category]
        lines.append(
            f"{category:<{width}}  {c['pass']:>6}  {c['fail']:>6}  {c['skip']:>7}  "
            f"{c['history_match']}/{c['history']}"
        )
    with_history = [r for r in results if r.history_match is not None]
    matching = sum(1 for r in with_history if r.history_match)
    rate = f"{100 * matching / len(with_history):.1f}%" if with_history else "n/a"
    lines.append(f"history event types match: {matching}/{len(with_history)} ({rate})")
    stale = [r.case_id for r in results if r.skip_listed and r.result == "pass"]
    for case_id in stale:
        lines.append(f"passes but is in the skip table: {case_id}")
    failed = [r for r in results if r.result == "fail"]
    for r in failed:
        lines.append(f"FAIL {r.case_id}: {r.reason}")
    totals = {
        kind: sum(1 for r in results if r.result == kind) for kind in ("pass", "fail", "skip")
    }
    lines.append(f"{totals['pass']} passed, {totals['fail']} failed, {totals['skip']} skipped")
    return lines


def _json_default(value: Any) -> Any:
    # History events carry ``timestamp`` as a datetime, as GetExecutionHistory does in boto3.
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def run_conformance(
    dir: str | Path,
    filter: str | None = None,
    skip_file: str | Path | None = None,
    json_report: str | Path | None = None,
    out: TextIO | None = None,
    *,
    engine: Engine | None = None,
) -> int:
    """Run the corpus, print per-category counts ending with ``N passed, M failed, K skipped``.

    Returns 1 when a case fails that the skip table does not list, else 0.
    """
    out = out if out is not None else sys.stdout
    cases = load_cases(dir, filter)
    results = run_cases(cases, engine or LocalEngine(), load_skip_table(skip_file))
    for line in _summary_lines(results):
        print(line, file=out)
    if json_report is not None:
        report = {
            "summary": {
                kind: sum(1 for r in results if r.result == kind)
                for kind in ("pass", "fail", "skip")
            },
            "cases": [r.to_json() for r in results],
        }
        Path(json_report).write_text(
            json.dumps(report, indent=1, ensure_ascii=False, default=_json_default),
            encoding="utf-8",
        )
    return 1 if any(r.result == "fail" for r in results) else 0
