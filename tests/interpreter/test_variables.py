"""Workflow variables: evaluation order, scoping and AWS's size quotas."""

from __future__ import annotations

import json

from flowstate.runtime.local import run_definition


def _run(definition: dict, payload: object = None) -> tuple[str, object, str | None, str | None]:
    result = run_definition(json.dumps(definition), json.dumps(payload or {}))
    output = json.loads(result.output) if result.output is not None else None
    return result.status, output, result.error, result.cause


def test_every_assign_expression_sees_the_values_from_before_the_state() -> None:
    status, output, _, _ = _run(
        {
            "QueryLanguage": "JSONata",
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Assign": {"x": 1, "y": 10}, "Next": "B"},
                "B": {"Type": "Pass", "Assign": {"x": "{% $y %}", "y": "{% $x %}"}, "Next": "C"},
                "C": {"Type": "Pass", "Output": {"x": "{% $x %}", "y": "{% $y %}"}, "End": True},
            },
        }
    )
    assert status == "SUCCEEDED"
    assert output == {"x": 10, "y": 1}  # a swap, not x = y = 10


def test_inner_scopes_read_outer_variables_but_their_assignments_stay_inside() -> None:
    status, output, _, _ = _run(
        {
            "QueryLanguage": "JSONata",
            "StartAt": "Outer",
            "States": {
                "Outer": {"Type": "Pass", "Assign": {"base": 100}, "Next": "Each"},
                "Each": {
                    "Type": "Map",
                    "Items": [1, 2],
                    "ItemProcessor": {
                        "StartAt": "Inner",
                        "States": {
                            "Inner": {
                                "Type": "Pass",
                                "Assign": {"local": "{% $states.input + $base %}"},
                                "Output": "{% $states.input + $base %}",
                                "End": True,
                            }
                        },
                    },
                    "Next": "After",
                },
                "After": {
                    "Type": "Pass",
                    "Output": {"results": "{% $states.input %}", "base": "{% $base %}"},
                    "End": True,
                },
            },
        }
    )
    assert status == "SUCCEEDED"
    assert output == {"results": [101, 102], "base": 100}


def test_a_variable_over_256_kib_fails_the_state_with_data_limit_exceeded() -> None:
    status, _, error, cause = _run(
        {
            "StartAt": "Big",
            "States": {
                "Big": {"Type": "Pass", "Assign": {"blob.$": "$.text"}, "End": True},
            },
        },
        {"text": "a" * (256 * 1024)},
    )
    assert status == "FAILED"
    assert error == "States.DataLimitExceeded"
    assert cause is not None and "'blob'" in cause and "Big" in cause
