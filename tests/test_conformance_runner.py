"""The conformance runner (``flowstate/conformance``) scored against a fake engine."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from flowstate.asl.errors import DefinitionError, Diagnostic
from flowstate.conformance import (
    Case,
    json_matches,
    load_cases,
    load_skip_table,
    run_case,
    run_cases,
    run_conformance,
)

SM_NAME = "statemachine_0001c0f3"
EXEC_NAME = "exec-0002c0f3"
EXEC_ARN = f"arn:aws:states:us-east-1:111111111111:execution:{SM_NAME}:{EXEC_NAME}"
RECORDED_EXEC_ARN = (
    "arn:<partition>:states:<region>:111111111111:execution:<ArnPart_0idx>:<ExecArnPart_0idx>"
)


def case_json(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "tests/test_x.py::test_x",
        "case_id": "tests/test_x.py::test_x",
        "kind": "execution",
        "category": "base",
        "state_machine_type": "STANDARD",
        "definition": {"StartAt": "S", "States": {"S": {"Type": "Pass", "End": True}}},
        "input": {},
        "expected": {"status": "SUCCEEDED", "output": {}},
        "expected_from": ["execution output extracted by the test"],
        "history": None,
        "history_parallel_normalised": False,
        "needs": [],
        "features": ["pass"],
        "lambda_functions": [],
        "normalisation": [
            {
                "value": "arn:aws:iam::111111111111:role/sfn-conformance-role",
                "placeholder": "snf_role_arn",
                "role": "role_arn",
            },
            {"value": SM_NAME, "placeholder": "<ArnPart_0idx>", "role": "state_machine_name"},
            {"value": EXEC_NAME, "placeholder": "<ExecArnPart_0idx>", "role": "execution_name"},
        ],
        "jsonpath_masks": [],
        "key_masks": [],
    }
    data.update(overrides)
    return data


def make_case(**overrides: Any) -> Case:
    return Case.from_json(case_json(**overrides))


class FakeEngine:
    """Returns a fixed result and records how it was called."""

    def __init__(
        self,
        status: str = "SUCCEEDED",
        output: Any = None,
        error: str | None = None,
        cause: str | None = None,
        history: list[dict[str, Any]] | None = None,
        raises: Exception | None = None,
        diagnostics: list[Diagnostic] | None = None,
    ) -> None:
        self.result = SimpleNamespace(
            status=status,
            output=None if output is None else json.dumps(output),
            error=error,
            cause=cause,
            history=history or [],
        )
        self.raises = raises
        self.diagnostics = diagnostics or []
        self.calls: list[dict[str, Any]] = []

    def run_definition(self, definition: Any, input_json: str, **options: Any) -> Any:
        self.calls.append({"definition": definition, "input_json": input_json, **options})
        if self.raises is not None:
            raise self.raises
        return self.result

    def validate_definition(self, text: str, *, state_machine_type: str) -> list[Diagnostic]:
        self.calls.append({"text": text, "state_machine_type": state_machine_type})
        return self.diagnostics


def events(*types: str) -> list[dict[str, Any]]:
    return [{"id": i + 1, "type": t, "timestamp": 1.5} for i, t in enumerate(types)]


class TestEngineCall:
    def test_names_input_and_options_come_from_the_case(self) -> None:
        engine = FakeEngine(output={})
        run_case(make_case(input={"a": [1, True]}, state_machine_type="EXPRESS"), engine)
        (call,) = engine.calls
        assert call["state_machine_name"] == SM_NAME
        assert call["execution_name"] == EXEC_NAME
        assert json.loads(call["input_json"]) == {"a": [1, True]}
        assert call["state_machine_type"] == "EXPRESS"
        assert call["account_id"] == "111111111111"
        assert call["region"] == "us-east-1"
        assert call["clock"] == "virtual"
        assert call["role_arn"] == "arn:aws:iam::111111111111:role/sfn-conformance-role"

    def test_raw_definition_text_is_passed_when_not_json(self) -> None:
        engine = FakeEngine(output={})
        run_case(make_case(definition=None, definition_text="{not json"), engine)
        assert engine.calls[0]["definition"] == "{not json"

    def test_actual_keeps_raw_engine_values(self) -> None:
        history = events("ExecutionStarted", "ExecutionSucceeded")
        engine = FakeEngine(output={"arn": EXEC_ARN}, history=history)
        result = run_case(
            make_case(expected={"status": "SUCCEEDED", "output": {"arn": RECORDED_EXEC_ARN}}),
            engine,
        )
        assert result.result == "pass", result.reason
        assert result.actual == {
            "status": "SUCCEEDED",
            "output": json.dumps({"arn": EXEC_ARN}),
            "error": None,
            "cause": None,
            "history": history,
        }


class TestNormalisation:
    def test_names_account_region_partition(self) -> None:
        case = make_case(
            expected={
                "status": "SUCCEEDED",
                "output": {"Id": RECORDED_EXEC_ARN, "Name": "<ExecArnPart_0idx>"},
            }
        )
        assert (
            run_case(case, FakeEngine(output={"Id": EXEC_ARN, "Name": EXEC_NAME})).result == "pass"
        )
        wrong = FakeEngine(output={"Id": EXEC_ARN.replace(EXEC_NAME, "other"), "Name": EXEC_NAME})
        # "<ExecArnPart_0idx>" is also a wildcard token, so a different name still matches...
        assert run_case(case, wrong).result == "pass"
        # ...but the structure around it must be the same.
        wrong_region = FakeEngine(
            output={"Id": EXEC_ARN.replace("us-east-1:", ""), "Name": EXEC_NAME}
        )
        assert run_case(case, wrong_region).result == "fail"

    def test_date_times_become_date_only_when_valid(self) -> None:
        case = make_case(
            expected={
                "status": "SUCCEEDED",
                "output": {
                    "a": "date",
                    "b": "at date.",
                    "c": "2016-13-05T21:29:29Z",
                    "d": "2016-12-05T21:29:29",
                },
            }
        )
        engine = FakeEngine(
            output={
                "a": "2024-01-01T00:00:00.000Z",
                "b": "at 2024-01-01T10:00:00+01:00.",
                "c": "2016-13-05T21:29:29Z",
                "d": "2016-12-05T21:29:29",
            }
        )
        result = run_case(case, engine)
        assert result.result == "pass", result.reason

    def test_timestamp_keys(self) -> None:
        case = make_case(
            expected={
                "status": "SUCCEEDED",
                "output": {"Timestamp": "timestamp", "startTimestamp": "date", "n": 5},
            }
        )
        engine = FakeEngine(
            output={"Timestamp": 1700000000, "startTimestamp": "2024-01-01T00:00:00Z", "n": 5}
        )
        assert run_case(case, engine).result == "pass"

    def test_http_metadata(self) -> None:
        recorded = {
            "SdkHttpMetadata": {
                "HttpHeaders": {"x-amzn-RequestId": "x-amzn-RequestId"},
                "Date": "date",
            },
            "SdkResponseMetadata": {"RequestId": "RequestId"},
        }
        produced = {
            "SdkHttpMetadata": {
                "HttpHeaders": {"x-amzn-RequestId": "abc-123"},
                "Date": "Mon, 01 Jan 2024 00:00:00 GMT",
            },
            "SdkResponseMetadata": {"RequestId": "abc-123"},
        }
        case = make_case(expected={"status": "SUCCEEDED", "output": recorded})
        assert run_case(case, FakeEngine(output=produced)).result == "pass"

    def test_request_id_in_text(self) -> None:
        case = make_case(
            expected={"status": "FAILED", "error": "E", "cause": "boom (Request ID: <request_id>)"}
        )
        engine = FakeEngine(status="FAILED", error="E", cause="boom (Request ID: 1f2e3d)")
        assert run_case(case, engine).result == "pass"


class TestMasks:
    def test_jsonpath_mask_on_history_placement(self) -> None:
        case = make_case(
            expected_from=["get_execution_history"],
            expected={
                "status": "SUCCEEDED",
                "output": {"FunctionResult": "RandomNumberGenerated", "x": 1},
            },
            jsonpath_masks=[
                {
                    "jsonpath": "$..events..executionSucceededEventDetails.output.FunctionResult",
                    "replacement": "RandomNumberGenerated",
                    "replace_reference": False,
                }
            ],
        )
        assert run_case(case, FakeEngine(output={"FunctionResult": 42, "x": 1})).result == "pass"
        assert run_case(case, FakeEngine(output={"FunctionResult": 42, "x": 2})).result == "fail"

    def test_mask_with_replace_reference_is_not_applied(self) -> None:
        case = make_case(
            expected={"status": "SUCCEEDED", "output": {"LogResult": "abc"}},
            jsonpath_masks=[
                {"jsonpath": "$..LogResult", "replacement": "LogResult", "replace_reference": True}
            ],
        )
        assert run_case(case, FakeEngine(output={"LogResult": "abc"})).result == "pass"

    def test_recursive_mask_anywhere_and_key_mask(self) -> None:
        case = make_case(
            expected={
                "status": "SUCCEEDED",
                "output": {"a": [{"StartTime": "start-time"}], "k": {"secret": "hidden"}},
            },
            jsonpath_masks=[
                {
                    "jsonpath": "$..StartTime",
                    "replacement": "start-time",
                    "replace_reference": False,
                }
            ],
            key_masks=[{"key": "secret", "replacement": "hidden", "replace_reference": False}],
        )
        engine = FakeEngine(output={"a": [{"StartTime": 17}], "k": {"secret": "s3cr3t"}})
        assert run_case(case, engine).result == "pass"


class TestMatching:
    @pytest.mark.parametrize(
        ("expected", "actual", "result"),
        [
            (True, 1, False),
            (1, True, False),
            (False, 0, False),
            (0, False, False),
            (True, True, True),
            (1, 1.0, True),
            (None, 0, False),
            ({"a": 1}, {"a": 1, "b": 2}, False),
            ([1, 2], [2, 1], False),
            ("<uuid:1>", "0b7a-11", True),
            ("<uuid:1>", "", False),
            ("id <x> and <y>", "id 1 and 2", True),
            ("id <x> and <y>", "id 1 or 2", False),
            ("<has space>", "anything", False),
            ("a.b*c", "a.b*c", True),
            ("a.b*c", "aXbbc", False),
        ],
    )
    def test_json_matches(self, expected: Any, actual: Any, result: bool) -> None:
        assert json_matches(expected, actual) is result

    def test_reason_points_at_the_first_difference(self) -> None:
        case = make_case(
            expected={"status": "SUCCEEDED", "output": {"a": {"b": [1, {"c": "x"}]}, "d": 1}}
        )
        result = run_case(case, FakeEngine(output={"a": {"b": [1, {"c": "y"}]}, "d": 1}))
        assert result.reason == 'output.a.b[1].c: "y" != expected "x"'
        result = run_case(case, FakeEngine(output={"a": {"b": []}, "e": 1}))
        assert result.reason == "output: keys missing ['d'], unexpected ['e']"

    def test_null_value_placeholders_are_wildcards(self) -> None:
        case = make_case(
            expected={
                "status": "SUCCEEDED",
                "output": {"arn": "express:<ArnPart_0idx>:generated-uuid"},
            },
            normalisation=[
                {"value": SM_NAME, "placeholder": "<ArnPart_0idx>", "role": "state_machine_name"},
                {"value": None, "placeholder": "generated-uuid", "role": "dynamic"},
            ],
        )
        assert (
            run_case(case, FakeEngine(output={"arn": f"express:{SM_NAME}:9f8e"})).result == "pass"
        )
        assert run_case(case, FakeEngine(output={"arn": f"express:{SM_NAME}:"})).result == "fail"

    def test_booleans_never_equal_numbers_in_outputs(self) -> None:
        case = make_case(expected={"status": "SUCCEEDED", "output": {"flag": True}})
        result = run_case(case, FakeEngine(output={"flag": 1}))
        assert result.result == "fail"
        assert "output" in result.reason

    def test_status_mismatch(self) -> None:
        case = make_case(expected={"status": "FAILED", "error": "States.Runtime"})
        result = run_case(case, FakeEngine(status="SUCCEEDED", output={}))
        assert result.result == "fail"
        assert "status 'SUCCEEDED' != expected 'FAILED'" in result.reason


class TestCause:
    def test_cause_object_is_compared_parsed(self) -> None:
        expected_cause = {"errorMessage": "boom", "errorType": "Exception", "requestId": "<uuid:1>"}
        case = make_case(
            expected={"status": "FAILED", "error": "Exception", "cause": expected_cause}
        )
        cause = json.dumps({"requestId": "2b0c", "errorType": "Exception", "errorMessage": "boom"})
        assert (
            run_case(case, FakeEngine(status="FAILED", error="Exception", cause=cause)).result
            == "pass"
        )

    def test_cause_object_against_non_json_text_fails(self) -> None:
        case = make_case(
            expected={"status": "FAILED", "error": "E", "cause": {"errorMessage": "boom"}}
        )
        assert run_case(case, FakeEngine(status="FAILED", error="E", cause="boom")).result == "fail"

    def test_cause_string_is_compared_as_text(self) -> None:
        case = make_case(
            expected={
                "status": "FAILED",
                "error": "States.Runtime",
                "cause": "at state '<json-input:1>' for <ArnPart_0idx>",
            }
        )
        engine = FakeEngine(
            status="FAILED", error="States.Runtime", cause="at state '{\"a\":1}' for " + SM_NAME
        )
        assert run_case(case, engine).result == "pass"
        # A JSON-looking cause string is not parsed when the expected cause is a string.
        case = make_case(expected={"status": "FAILED", "cause": '{"a": 1}'})
        assert run_case(case, FakeEngine(status="FAILED", cause='{"a":1}')).result == "fail"


class TestOtherKinds:
    def test_lambda_cases_run_with_the_behaviour_of_each_function(self) -> None:
        engine = FakeEngine(output={})
        functions = [
            {"function_name": "fn-a", "behaviour": "identity"},
            {"function_name": "fn-b", "behaviour": "raise_exception"},
        ]
        case = make_case(needs=["lambda:identity"], lambda_functions=functions)
        assert run_case(case, engine).result == "pass"
        registered = engine.calls[0]["functions"]
        assert set(registered) == {"fn-a", "fn-b"}
        assert registered["fn-a"]({"x": 1}, None) == {"x": 1}
        with pytest.raises(Exception, match=r"Some exception was raised\."):
            registered["fn-b"]({}, None)

    def test_create_state_machine_error(self) -> None:
        case = make_case(
            kind="create_state_machine_error",
            expected={
                "create_error": {
                    "code": "InvalidDefinition",
                    "message": "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: bad arn:<partition>:states:::x at /States/S'",
                }
            },
        )
        refused = DefinitionError(
            "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: bad arn:aws:states:::x at /States/S'"
        )
        assert run_case(case, FakeEngine(raises=refused)).result == "pass"
        other = DefinitionError(
            "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: other'"
        )
        assert run_case(case, FakeEngine(raises=other)).result == "fail"
        accepted = run_case(case, FakeEngine(output={}))
        assert accepted.result == "fail"
        assert "definition accepted" in accepted.reason

    def test_validate_definition(self) -> None:
        expected = {
            "validate_definition": {
                "result": "FAIL",
                "diagnostics": [
                    {
                        "code": "SCHEMA_VALIDATION_FAILED",
                        "location": "/",
                        "message": "These fields are required: [StartAt]",
                        "severity": "ERROR",
                    }
                ],
            }
        }
        case = make_case(
            kind="validate_state_machine_definition", expected=expected, definition={"States": {}}
        )
        found = [
            Diagnostic("SCHEMA_VALIDATION_FAILED", "These fields are required: [StartAt]", "/")
        ]
        engine = FakeEngine(diagnostics=found)
        assert run_case(case, engine).result == "pass"
        assert json.loads(engine.calls[0]["text"]) == {"States": {}}
        assert run_case(case, FakeEngine(diagnostics=[])).result == "fail"
        ok = make_case(
            kind="validate_state_machine_definition",
            expected={"validate_definition": {"result": "OK", "diagnostics": []}},
        )
        warning = [Diagnostic("W", "just a warning", severity="WARNING")]
        assert run_case(ok, FakeEngine(diagnostics=warning)).result == "fail"  # diagnostics differ
        assert run_case(ok, FakeEngine()).result == "pass"

    def test_engine_crash_is_a_failure_not_an_exception(self) -> None:
        result = run_case(make_case(), FakeEngine(raises=RuntimeError("kaput")))
        assert result.result == "fail"
        assert "RuntimeError: kaput" in result.reason

    def test_refused_execution_definition_is_a_failure(self) -> None:
        result = run_case(make_case(), FakeEngine(raises=DefinitionError("nope")))
        assert result.result == "fail"
        assert result.actual["error"] == "InvalidDefinition"


class TestHistory:
    def test_type_sequence_is_reported_but_does_not_decide(self) -> None:
        recorded = events(
            "ExecutionStarted", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"
        )
        case = make_case(history=recorded, expected={"status": "SUCCEEDED", "output": {}})
        same = run_case(case, FakeEngine(output={}, history=events(*[e["type"] for e in recorded])))
        assert (same.result, same.history_match) == ("pass", True)
        different = run_case(
            case, FakeEngine(output={}, history=events("ExecutionStarted", "ExecutionSucceeded"))
        )
        assert (different.result, different.history_match) == ("pass", False)
        assert run_case(make_case(), FakeEngine(output={})).history_match is None

    def test_parallel_normalised_compares_types_as_a_set(self) -> None:
        recorded = [
            *events("ExecutionStarted", "ParallelStateEntered", "ParallelStateStarted"),
            {"id": "[0]", "type": "PassStateEntered"},
            {"id": "[0]", "type": "PassStateExited"},
            *events("ParallelStateExited", "ExecutionSucceeded"),
        ]
        case = make_case(history=recorded, history_parallel_normalised=True)
        produced = events(
            "ExecutionStarted", "ParallelStateEntered", "ParallelStateStarted",
            "PassStateEntered", "PassStateEntered", "PassStateExited", "PassStateExited",
            "ParallelStateSucceeded", "ParallelStateExited", "ExecutionSucceeded",
        )  # fmt: skip
        assert run_case(case, FakeEngine(output={}, history=produced)).history_match is True
        missing = [e for e in produced if e["type"] != "PassStateExited"]
        assert run_case(case, FakeEngine(output={}, history=missing)).history_match is False


class TestRun:
    @pytest.fixture
    def corpus(self, tmp_path: Path) -> Path:
        cases = tmp_path / "cases"
        (cases / "base").mkdir(parents=True)
        (cases / "choice_operators").mkdir()
        good = case_json(
            case_id="good",
            category="base",
            history=events("ExecutionStarted", "ExecutionSucceeded"),
        )
        bad = case_json(
            case_id="bad", category="base", expected={"status": "SUCCEEDED", "output": {"x": 1}}
        )
        known = case_json(
            case_id="known#cases[0]", category="choice_operators", expected={"status": "FAILED"}
        )
        lam = case_json(case_id="lambda", category="choice_operators", needs=["lambda:identity"])
        for name, data in [("good", good), ("bad", bad), ("known", known), ("lambda", lam)]:
            category = data["category"]
            (cases / category / f"{name}.json").write_text(json.dumps(data))
        return tmp_path

    def test_load_cases_and_filter(self, corpus: Path) -> None:
        assert [c.case_id for c in load_cases(corpus)] == [
            "bad",
            "good",
            "known#cases[0]",
            "lambda",
        ]
        assert [c.case_id for c in load_cases(corpus / "cases", "choice_operators/")] == [
            "known#cases[0]",
            "lambda",
        ]
        assert [c.case_id for c in load_cases(corpus, r"^go")] == ["good"]
        with pytest.raises(FileNotFoundError):
            load_cases(corpus / "nowhere")

    def test_skip_table_forms(self, tmp_path: Path) -> None:
        flat = tmp_path / "flat.toml"
        flat.write_text('"a#cases[0]" = "why"\n')
        nested = tmp_path / "nested.toml"
        nested.write_text('[skip]\n"b" = "because"\n')
        assert load_skip_table(flat) == {"a#cases[0]": "why"}
        assert load_skip_table(nested) == {"b": "because"}
        assert load_skip_table(None) == {}

    def test_run_conformance_summary_report_and_exit_code(
        self, corpus: Path, tmp_path: Path
    ) -> None:
        skip = tmp_path / "skip.toml"
        skip.write_text('"known#cases[0]" = "not yet"\n')
        report = tmp_path / "report.json"
        out = io.StringIO()
        engine = FakeEngine(output={}, history=events("ExecutionStarted", "ExecutionSucceeded"))
        code = run_conformance(corpus, None, skip, report, out, engine=engine)
        lines = out.getvalue().splitlines()
        assert lines[-1] == "2 passed, 1 failed, 1 skipped"
        assert code == 1
        assert any(
            line.startswith("base ") and line.split()[1:4] == ["1", "1", "0"] for line in lines
        )
        assert any(
            line.startswith("choice_operators") and line.split()[1:4] == ["1", "0", "1"]
            for line in lines
        )
        assert "history event types match: 1/1 (100.0%)" in lines
        assert any(line.startswith("FAIL bad:") for line in lines)
        data = json.loads(report.read_text())
        by_id = {c["case_id"]: c for c in data["cases"]}
        assert set(by_id) == {"good", "bad", "known#cases[0]", "lambda"}
        assert by_id["known#cases[0]"]["result"] == "skip"
        assert by_id["known#cases[0]"]["reason"].startswith("not yet")
        assert by_id["bad"]["actual"] == {
            "status": "SUCCEEDED",
            "output": "{}",
            "error": None,
            "cause": None,
            "history": engine.result.history,
        }
        for entry in data["cases"]:
            assert {"case_id", "result", "reason", "actual"} <= set(entry)
            assert set(entry["actual"]) == {"status", "output", "error", "cause", "history"}

    def test_exit_code_zero_when_failures_are_all_skip_listed(
        self, corpus: Path, tmp_path: Path
    ) -> None:
        skip = tmp_path / "skip.toml"
        skip.write_text('"known#cases[0]" = "x"\n"bad" = "y"\n')
        out = io.StringIO()
        assert run_conformance(corpus, None, skip, None, out, engine=FakeEngine(output={})) == 0
        assert out.getvalue().splitlines()[-1] == "2 passed, 0 failed, 2 skipped"

    def test_skip_listed_case_that_passes_is_reported(self) -> None:
        results = run_cases([make_case(case_id="fixed")], FakeEngine(output={}), {"fixed": "old"})
        assert (results[0].result, results[0].skip_listed) == ("pass", True)
