"""The conformance runner: recorded AWS Step Functions cases run through flowstate and scored
by the rules of the corpus README (``../shared/conformance/README.md``)."""

from flowstate.conformance.case import Case, load_cases, load_skip_table
from flowstate.conformance.compare import history_types_match, json_matches
from flowstate.conformance.runner import (
    CaseResult,
    Engine,
    LocalEngine,
    run_case,
    run_cases,
    run_conformance,
)

__all__ = [
    "Case",
    "CaseResult",
    "Engine",
    "LocalEngine",
    "history_types_match",
    "json_matches",
    "load_cases",
    "load_skip_table",
    "run_case",
    "run_cases",
    "run_conformance",
]
