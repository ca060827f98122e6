"""Structural validation: AWS's codes, messages and JSON Pointer locations."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from flowstate.asl.errors import DefinitionError
from flowstate.asl.parse import parse_definition
from flowstate.asl.validate import validate_definition

CORPUS = Path(os.environ.get("FLOWSTATE_CORPUS", Path(__file__).parents[3] / "shared/conformance"))


def _machine(**states: Any) -> str:
    first = next(iter(states))
    return json.dumps({"StartAt": first, "States": states})


def _found(definition: Any, state_machine_type: str = "STANDARD") -> list[tuple[str, str, Any]]:
    text = definition if isinstance(definition, str) else json.dumps(definition)
    diagnostics = validate_definition(text, state_machine_type=state_machine_type)
    return [(d.code, d.message, d.location) for d in diagnostics]


PASS_END = {"Type": "Pass", "End": True}
SVF = "SCHEMA_VALIDATION_FAILED"

# (id, definition, [(code, message, location)])
CASES: list[tuple[str, Any, list[tuple[str, str, Any]]]] = [
    ("valid", {"StartAt": "A", "States": {"A": PASS_END}}, []),
    (
        "empty-object",
        {},
        [(SVF, "These fields are required: [States, StartAt]", "/")],
    ),
    ("blank-text", " ", [(SVF, "Definition must be a valid JSON object", None)]),
    ("json-array", "[1]", [(SVF, "Definition must be a valid JSON object", None)]),
    (
        "unknown-root-field",
        {"StartAt": "A", "States": {"A": PASS_END}, "Foo": 1},
        [(SVF, "Field 'Foo' is not supported", "/")],
    ),
    (
        "bad-query-language",
        {"StartAt": "A", "QueryLanguage": "jsonpath", "States": {"A": PASS_END}},
        [(SVF, "Value should be one of the following: [JSONPath, JSONata]", "/QueryLanguage")],
    ),
    (
        "missing-next-and-unreachable",
        {
            "StartAt": "pass1",
            "States": {"pass1": {"Type": "Pass", "Next": "pass3"}, "pass2": PASS_END},
        },
        [
            ("MISSING_TRANSITION_TARGET", "Missing 'Next' target: pass3", "/States/pass1/Next"),
            ("MISSING_TRANSITION_TARGET", 'State "pass2" is not reachable.', "/States/pass2"),
        ],
    ),
    (
        "no-terminal-state",
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}},
        [("MISSING_END_STATE", "Workflow has no terminal state", None)],
    ),
    (
        "missing-catch-target",
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Nope"}],
                    "End": True,
                }
            },
        },
        [("MISSING_TRANSITION_TARGET", "Missing 'Next' target: Nope", "/States/T/Catch[0]/Next")],
    ),
    (
        "duplicate-name-in-branch",
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [{"StartAt": "P", "States": {"P": PASS_END}}],
                    "End": True,
                }
            },
        },
        [("DUPLICATE_STATE_NAME", "Duplicate State name: P", "/States/P/Branches[0]/States/P")],
    ),
    (
        "next-and-end",
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A", "End": True}}},
        [(SVF, "Exactly one of the fields [Next, End] is required", "/States/A")],
    ),
    (
        "unknown-type",
        {"StartAt": "A", "States": {"A": {"Type": "Nope", "End": True}}},
        [
            (
                SVF,
                "Value should be one of the following: "
                "[Choice, Fail, Map, Parallel, Pass, Succeed, Task, Wait]",
                "/States/A/Type",
            )
        ],
    ),
    (
        "jsonata-field-in-jsonpath-state",
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": {}, "End": True}}},
        [
            (
                SVF,
                "The QueryLanguage is set to 'JSONPath', but field 'Output' is only supported"
                " for the 'JSONata' QueryLanguage",
                "/States/A",
            )
        ],
    ),
    (
        "jsonpath-state-in-jsonata-machine",
        {
            "QueryLanguage": "JSONata",
            "StartAt": "A",
            "States": {"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}},
        },
        [
            (
                SVF,
                "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine",
                "/States/A",
            )
        ],
    ),
    (
        "timeout-on-map",
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "TimeoutSeconds": 3,
                    "ItemProcessor": {"StartAt": "I", "States": {"I": PASS_END}},
                    "End": True,
                }
            },
        },
        [(SVF, "Field 'TimeoutSeconds' is not supported", "/States/M")],
    ),
    (
        "query-language-on-processor",
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "ItemProcessor": {
                        "QueryLanguage": "JSONata",
                        "StartAt": "I",
                        "States": {"I": PASS_END},
                    },
                    "End": True,
                }
            },
        },
        [(SVF, "Field 'QueryLanguage' is not supported", "/States/M/ItemProcessor")],
    ),
    (
        "wait-two-fields",
        {
            "StartAt": "W",
            "States": {"W": {"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": True}},
        },
        [
            (
                SVF,
                "Exactly one of the fields [Seconds, SecondsPath, Timestamp, TimestampPath] is required",
                "/States/W",
            )
        ],
    ),
    (
        "wait-bad-timestamp",
        {
            "StartAt": "W",
            "States": {"W": {"Type": "Wait", "Timestamp": "2016-02-30T00:00:00Z", "End": True}},
        },
        [(SVF, "String does not match RFC3339 timestamp", "/States/W/Timestamp")],
    ),
    (
        "task-timeout-both",
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "TimeoutSeconds": 5,
                    "TimeoutSecondsPath": "$.t",
                    "End": True,
                }
            },
        },
        [
            (
                SVF,
                "Only one of the fields [TimeoutSeconds, TimeoutSecondsPath] can be set",
                "/States/T/TimeoutSeconds",
            )
        ],
    ),
    (
        "fail-error-and-error-path",
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}}},
        [(SVF, "Only one of the fields [Error, ErrorPath] can be set", "/States/F/Error")],
    ),
    (
        "retry-ranges-and-all-placement",
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Retry": [
                        {"ErrorEquals": ["States.ALL"], "MaxAttempts": -1},
                        {"ErrorEquals": ["X"], "IntervalSeconds": 0, "JitterStrategy": "SOME"},
                    ],
                    "End": True,
                }
            },
        },
        [
            (
                SVF,
                "A retrier with 'States.ALL' must be the last retrier in the array",
                "/States/T/Retry[0]",
            ),
            (SVF, "Number must be greater than or equal to 0", "/States/T/Retry[0]/MaxAttempts"),
            (
                SVF,
                "Number must be greater than or equal to 1",
                "/States/T/Retry[1]/IntervalSeconds",
            ),
            (
                SVF,
                "Value should be one of the following: [FULL, NONE]",
                "/States/T/Retry[1]/JitterStrategy",
            ),
        ],
    ),
    (
        "choice-without-choices",
        {"StartAt": "C", "States": {"C": {"Type": "Choice", "Default": "E"}, "E": PASS_END}},
        [(SVF, "These fields are required: [Choices]", "/States/C")],
    ),
    (
        "credentials-without-role",
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Credentials": {},
                    "End": True,
                }
            },
        },
        [(SVF, "The field 'RoleArn' is required but was missing", "/States/T/Credentials")],
    ),
    (
        "unknown-optimized-integration",
        {
            "StartAt": "T",
            "States": {
                "T": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:scan", "End": True}
            },
        },
        [
            (
                SVF,
                "The resource provided arn:aws:states:::dynamodb:scan is not recognized. The value"
                " is not a valid resource ARN, or the resource is not available in this region.",
                "/States/T/Resource",
            )
        ],
    ),
]

# Definitions AWS accepts even though flowstate may not run them.
ACCEPTED = [
    "arn:aws:states:::dynamodb:putItem",
    "arn:aws:states:::ecs:runTask.sync",
    "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
    "arn:aws:states:::aws-sdk:dynamodb:query",
    "arn:aws:states:::http:invoke",
    "arn:aws:states:::states:startExecution.sync:2",
    "arn:aws:states:us-east-1:111111111111:activity:work",
    "arn:aws:lambda:us-east-1:111111111111:function:f",
]


@pytest.mark.parametrize(
    ("definition", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_diagnostics(definition: Any, expected: list[tuple[str, str, Any]]) -> None:
    assert _found(definition) == expected


@pytest.mark.parametrize("resource", ACCEPTED)
def test_resources_aws_accepts(resource: str) -> None:
    task = {"Type": "Task", "Resource": resource, "End": True}
    assert _found(_machine(T=task)) == []


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (
            "arn:aws:states:us-east-1:111111111111:activity:work",
            "Express state machine does not support Activity ARN",
        ),
        (
            "arn:aws:states:::sns:publish.waitForTaskToken",
            "Express state machine does not support '.waitForTaskToken' service integration ",
        ),
        (
            "arn:aws:states:::states:startExecution.sync:2",
            "Express state machine does not support '.sync' service integration ",
        ),
    ],
)
def test_express_refuses_activities_and_callbacks(resource: str, message: str) -> None:
    definition = _machine(T={"Type": "Task", "Resource": resource, "End": True})
    assert _found(definition, "EXPRESS") == [(SVF, message, "/States/T/Resource")]


def test_branches_and_processors_inherit_the_machine_language() -> None:
    # A JSONata Map in a JSONPath machine: its processor's states are JSONPath again.
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "QueryLanguage": "JSONata",
                "ItemProcessor": {
                    "StartAt": "P",
                    "States": {"P": {"Type": "Pass", "InputPath": "$.x", "End": True}},
                },
                "End": True,
            }
        },
    }
    assert _found(definition) == []


def test_invalid_json_uses_jackson_words() -> None:
    [(code, message, location)] = _found("not a definition")
    assert code == "INVALID_JSON_DESCRIPTION"
    assert location == '[Source: (String)"not a definition"; line: 1, column: 4]'
    assert message == (
        "Unrecognized token 'not': was expecting (JSON String, Number, Array, Object or token"
        f" 'null', 'true' or 'false')\n at {location}"
    )


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("", "Label cannot be empty"),
        ("a" * 41, "Label cannot exceed 40 characters"),
        ("label_*", "Label contains invalid character: '*'"),
        ("label_\x85", "Label contains invalid character: '\\x85'"),
    ],
)
def test_map_label_errors_use_the_python_exception_format(label: str, message: str) -> None:
    definition = json.dumps(
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "Label": label,
                    "ItemProcessor": {"StartAt": "I", "States": {"I": PASS_END}},
                    "End": True,
                }
            },
        }
    )
    with pytest.raises(DefinitionError) as raised:
        parse_definition(definition)
    assert (
        raised.value.message == f"Error=ValueError Args=[{message!r}] in definition '{definition}'."
    )


def test_several_problems_are_joined_as_aws_joins_them() -> None:
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "C": PASS_END}}
    with pytest.raises(DefinitionError) as raised:
        parse_definition(definition)
    assert raised.value.message == (
        "Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: B"
        ' at /States/A/Next, MISSING_TRANSITION_TARGET: State "C" is not reachable. at /States/C\''
    )
    assert raised.value.code == "InvalidDefinition"


def test_missing_location_is_written_null() -> None:
    with pytest.raises(DefinitionError) as raised:
        parse_definition({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}})
    assert raised.value.message == (
        "Invalid State Machine Definition: 'MISSING_END_STATE: Workflow has no terminal state"
        " at null'"
    )


# -- the recorded AWS validation cases -----------------------------------------------------


def _corpus_cases() -> list[Path]:
    folder = CORPUS / "cases" / "validation"
    if not folder.is_dir():
        if os.environ.get("REQUIRE_CORPUS") == "1":
            raise FileNotFoundError(folder)
        return []
    return sorted(folder.glob("*.json"))


def _matches(expected: str, actual: str) -> bool:
    """The corpus rule: ``<...>`` tokens match any non-empty text; ``arn:aws:`` is normalised."""
    actual = actual.replace("arn:aws:", "arn:<partition>:")
    parts = re.split(r"(<[^\s'\"<>]+>)", expected)
    pattern = "".join(".+" if p.startswith("<") else re.escape(p) for p in parts)
    return re.fullmatch(pattern, actual, re.DOTALL) is not None


@pytest.mark.corpus
@pytest.mark.parametrize("path", _corpus_cases(), ids=lambda p: p.stem[-40:])
def test_recorded_validation_case(path: Path) -> None:
    case = json.loads(path.read_text())
    text = case["definition_text"] if case["definition"] is None else json.dumps(case["definition"])
    kind = case["state_machine_type"]
    expected = case["expected"]
    if "create_error" in expected:
        with pytest.raises(DefinitionError) as raised:
            parse_definition(text, state_machine_type=kind)
        assert raised.value.code == expected["create_error"]["code"]
        assert _matches(expected["create_error"]["message"], raised.value.message), (
            raised.value.message
        )
    else:
        found = [d.to_json() for d in validate_definition(text, state_machine_type=kind)]
        wanted = expected["validate_definition"]["diagnostics"]
        assert len(found) == len(wanted), found
        for got, want in zip(found, wanted):
            assert set(got) == set(want)
            assert all(_matches(want[k], got[k]) for k in want), got
