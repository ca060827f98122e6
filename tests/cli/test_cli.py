"""``flowstate run`` and ``flowstate validate`` through click's CliRunner, in process.

Exit codes (README): 0 success; 1 an execution that FAILED, TIMED_OUT or ABORTED; 2 an invalid
definition or a usage error.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from flowstate.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORKFLOW = EXAMPLES / "order_workflow.json"
FUNCTIONS = EXAMPLES / "order_functions.py"

PASS = {
    "StartAt": "P",
    "States": {"P": {"Type": "Pass", "Result": {"r": 1}, "ResultPath": "$.x", "End": True}},
}


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _write(tmp_path: Path, definition: Any, name: str = "machine.json") -> str:
    path = tmp_path / name
    path.write_text(definition if isinstance(definition, str) else json.dumps(definition))
    return str(path)


# --- run -----------------------------------------------------------------------------------


def test_run_prints_the_output_and_exits_0(tmp_path: Path) -> None:
    result = _invoke("run", _write(tmp_path, PASS), "--input", '{"a": 1}', "--clock", "virtual")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"a": 1, "x": {"r": 1}}


def test_run_without_input_uses_an_empty_object(tmp_path: Path) -> None:
    result = _invoke("run", _write(tmp_path, PASS), "--clock", "virtual")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"x": {"r": 1}}


def test_run_failing_execution_exits_1_with_error_and_cause(tmp_path: Path) -> None:
    definition = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad", "Cause": "why"}}}
    result = _invoke("run", _write(tmp_path, definition), "--clock", "virtual")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"status": "FAILED", "error": "Bad", "cause": "why"}


def test_run_timed_out_execution_exits_1(tmp_path: Path) -> None:
    definition = {
        "StartAt": "W",
        "TimeoutSeconds": 1,
        "States": {"W": {"Type": "Wait", "Seconds": 86400, "End": True}},
    }
    result = _invoke("run", _write(tmp_path, definition), "--clock", "virtual")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    # The error/cause values of an execution timeout are not pinned by a recording here.
    assert set(document) == {"status", "error", "cause"}
    assert document["status"] == "TIMED_OUT"


def test_run_invalid_definition_exits_2_with_invalid_definition(tmp_path: Path) -> None:
    definition = {"StartAt": "Nope", "States": {"P": {"Type": "Pass", "End": True}}}
    result = _invoke("run", _write(tmp_path, definition))
    assert result.exit_code == 2
    assert result.stderr.startswith("InvalidDefinition: Invalid State Machine Definition: ")
    assert result.stdout == ""


def test_run_definition_that_is_not_json_exits_2(tmp_path: Path) -> None:
    result = _invoke("run", _write(tmp_path, '{"StartAt": '))
    assert result.exit_code == 2
    assert "InvalidDefinition" in result.stderr


def test_run_bad_input_json_exits_2(tmp_path: Path) -> None:
    result = _invoke("run", _write(tmp_path, PASS), "--input", "{not json")
    assert result.exit_code == 2
    assert "--input is not valid JSON" in result.stderr


def test_run_missing_definition_file_exits_2(tmp_path: Path) -> None:
    result = _invoke("run", str(tmp_path / "absent.json"))
    assert result.exit_code == 2
    assert "cannot read definition" in result.stderr


def test_run_input_from_file(tmp_path: Path) -> None:
    input_file = tmp_path / "input.json"
    input_file.write_text('{"from": "file"}')
    result = _invoke(
        "run", _write(tmp_path, PASS), "--input", f"@{input_file}", "--clock", "virtual"
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"from": "file", "x": {"r": 1}}


def test_run_input_from_missing_file_exits_2(tmp_path: Path) -> None:
    result = _invoke("run", _write(tmp_path, PASS), "--input", f"@{tmp_path / 'none.json'}")
    assert result.exit_code == 2
    assert "cannot read input" in result.stderr


def test_run_yaml_definition(tmp_path: Path) -> None:
    yaml_text = (
        "StartAt: Greet\n"
        "States:\n"
        "  Greet:\n"
        "    Type: Pass\n"
        "    Parameters:\n"
        "      greeting.$: States.Format('hello {}', $.who)\n"
        "    End: true\n"
    )
    result = _invoke(
        "run", _write(tmp_path, yaml_text, "machine.yaml"), "--input", '{"who": "ada"}'
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"greeting": "hello ada"}


def test_run_history_prints_status_output_and_events(tmp_path: Path) -> None:
    result = _invoke("run", _write(tmp_path, PASS), "--history", "--clock", "virtual")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert set(document) == {"status", "output", "events"}
    assert document["status"] == "SUCCEEDED"
    assert document["output"] == {"x": {"r": 1}}
    types = [e["type"] for e in document["events"]]
    assert types == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert [e["id"] for e in document["events"]] == [1, 2, 3, 4]
    exited = document["events"][2]["stateExitedEventDetails"]
    assert exited["output"] == '{"x":{"r":1}}'
    assert isinstance(document["events"][0]["timestamp"], str)


def test_run_history_of_a_failure(tmp_path: Path) -> None:
    definition = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "C"}}}
    result = _invoke("run", _write(tmp_path, definition), "--history")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert set(document) == {"status", "error", "cause", "events"}
    assert (document["status"], document["error"], document["cause"]) == ("FAILED", "E", "C")
    assert document["events"][-1]["type"] == "ExecutionFailed"


def test_run_name_sets_the_execution_name(tmp_path: Path) -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "Parameters": {"n.$": "$$.Execution.Name", "m.$": "$$.StateMachine.Name"},
                "End": True,
            }
        },
    }
    result = _invoke("run", _write(tmp_path, definition, "orders.json"), "--name", "exec-7")
    assert json.loads(result.stdout) == {"n": "exec-7", "m": "orders"}


def test_run_virtual_clock_finishes_a_year_long_wait(tmp_path: Path) -> None:
    definition = {
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Seconds": 31536000, "End": True}},
    }
    result = _invoke("run", _write(tmp_path, definition), "--clock", "virtual", "--history")
    assert result.exit_code == 0
    events = json.loads(result.stdout)["events"]
    start = datetime.fromisoformat(events[0]["timestamp"])
    end = datetime.fromisoformat(events[-1]["timestamp"])
    assert (end - start).days == 365


def test_run_express_type(tmp_path: Path) -> None:
    result = _invoke("run", _write(tmp_path, PASS), "--type", "express", "--clock", "virtual")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"x": {"r": 1}}


def test_run_with_functions_bound_through_globals(tmp_path: Path) -> None:
    module = tmp_path / "fns.py"
    module.write_text(
        "def _verify(event, context):\n"
        "    return {'verified': event['id']}\n"
        'globals()["order-verify"] = _verify\n'
    )
    definition = {
        "StartAt": "V",
        "States": {
            "V": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:order-verify",
                "End": True,
            }
        },
    }
    result = _invoke(
        "run", _write(tmp_path, definition), "--functions", str(module), "--input", '{"id": 9}'
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"verified": 9}


def test_run_with_functions_that_do_not_import_exits_2(tmp_path: Path) -> None:
    module = tmp_path / "broken.py"
    module.write_text("def f(:\n")
    result = _invoke("run", _write(tmp_path, PASS), "--functions", str(module))
    assert result.exit_code == 2
    assert "cannot load --functions" in result.stderr


# --- validate ------------------------------------------------------------------------------


def test_validate_ok_exits_0(tmp_path: Path) -> None:
    result = _invoke("validate", _write(tmp_path, PASS))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"result": "OK", "diagnostics": []}


def test_validate_errors_exit_2_with_diagnostics(tmp_path: Path) -> None:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "Missing"}}}
    result = _invoke("validate", _write(tmp_path, definition))
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["result"] == "FAIL"
    assert document["diagnostics"]
    first = document["diagnostics"][0]
    assert first["severity"] == "ERROR"
    assert first["code"] == "MISSING_TRANSITION_TARGET"
    assert first["location"] == "/States/P/Next"


def test_validate_express_only_rules(tmp_path: Path) -> None:
    # Express state machines cannot use .sync or .waitForTaskToken integrations.
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": "q", "MessageBody": {"t.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    path = _write(tmp_path, definition)
    assert _invoke("validate", path).exit_code == 0
    express = _invoke("validate", path, "--type", "EXPRESS")
    assert express.exit_code == 2
    assert json.loads(express.stdout)["result"] == "FAIL"


# --- the example order workflow ------------------------------------------------------------


def _order(**changes: Any) -> dict[str, Any]:
    order = json.loads((EXAMPLES / "order_input.json").read_text())
    order.update(changes)
    return order


def _run_order(order: dict[str, Any], *extra: str) -> Result:
    return _invoke(
        "run",
        str(WORKFLOW),
        "--functions",
        str(FUNCTIONS),
        "--input",
        json.dumps(order),
        "--clock",
        "virtual",
        *extra,
    )


def test_order_happy_path() -> None:
    result = _run_order(_order(orderId="o-1", payment={"card": "4242"}))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "orderId": "o-1",
        "status": "COMPLETED",
        "paymentId": "pay-o-1",
        "recordId": "rec-o-1",
    }


def test_order_from_the_example_input_file() -> None:
    result = _invoke(
        "run",
        str(WORKFLOW),
        "--functions",
        str(FUNCTIONS),
        "--input",
        f"@{EXAMPLES / 'order_input.json'}",
        "--clock",
        "virtual",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "COMPLETED"


def test_order_declined_payment_ends_in_payment_failed() -> None:
    result = _run_order(_order(orderId="o-2", payment={"card": "declined"}))
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "status": "FAILED",
        "error": "PaymentFailed",
        "cause": "The payment was declined.",
    }


def test_order_out_of_stock() -> None:
    items = [{"sku": "chair", "quantity": 1, "price": 80}]
    result = _run_order(_order(orderId="o-3", payment={"card": "4242"}, items=items))
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "status": "FAILED",
        "error": "OutOfStock",
        "cause": "At least one item is out of stock.",
    }


def test_order_flaky_payment_is_retried() -> None:
    result = _run_order(_order(orderId="o-4", payment={"card": "flaky"}), "--history")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["output"]["status"] == "COMPLETED"
    events = document["events"]
    verify = [
        e
        for e in events
        if e["type"] == "LambdaFunctionScheduled"
        and e["lambdaFunctionScheduledEventDetails"]["resource"].endswith(":verify-payment")
    ]
    assert len(verify) == 2
    failures = [e for e in events if e["type"] == "LambdaFunctionFailed"]
    assert len(failures) == 1
    assert failures[0]["lambdaFunctionFailedEventDetails"]["error"] == "PaymentGatewayTimeout"
    # The retry is scheduled right after the failure, within the 1 s FULL-jitter back-off.
    gap = datetime.fromisoformat(verify[1]["timestamp"]) - datetime.fromisoformat(
        verify[0]["timestamp"]
    )
    assert 0 <= gap.total_seconds() <= 1
    assert verify[1]["previousEventId"] == failures[0]["id"]


def test_order_unknown_failure_goes_to_order_failed() -> None:
    # A KeyError in verify-payment (no "card") is caught by States.ALL → OrderFailed, whose
    # ErrorPath/CausePath re-raise the original error.
    result = _run_order(_order(orderId="o-5", payment={}))
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["error"] == "KeyError"
    assert json.loads(document["cause"])["errorType"] == "KeyError"


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_top_level_flags(flag: str) -> None:
    result = _invoke(flag)
    assert result.exit_code == 0
    assert result.stdout


# --- run with mocks ----------------------------------------------------------------------------


def test_run_with_a_mock_config_and_test_case(tmp_path: Path) -> None:
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "charge"},
                "OutputPath": "$.Payload",
                "End": True,
            }
        },
    }
    machine = _write(tmp_path, definition, "Orders.json")
    mocks = tmp_path / "mocks.json"
    mocks.write_text(
        json.dumps(
            {
                "StateMachines": {"Orders": {"TestCases": {"Happy": {"Charge": "Ok"}}}},
                "MockedResponses": {"Ok": {"0": {"Return": {"Payload": {"paid": 1}}}}},
            }
        )
    )
    result = _invoke("run", machine, "--mock-config", str(mocks), "--test-case", "Happy")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"paid": 1}
    unknown = _invoke("run", machine, "--mock-config", str(mocks), "--test-case", "Sad")
    assert unknown.exit_code == 2 and "no test case 'Sad'" in unknown.output
    missing = _invoke("run", machine, "--test-case", "Happy")
    assert missing.exit_code == 2 and "--test-case needs --mock-config" in missing.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"MockedResponses": {"R": {"x": {}}}}')
    refused = _invoke("run", machine, "--mock-config", str(bad))
    assert refused.exit_code == 2 and "not an invocation number" in refused.output


# --- run --db ---------------------------------------------------------------------------------


def _runs_in(db: str, tmp_path: Path) -> None:
    from flowstate.storage import open_store

    first = _write(tmp_path, PASS, "flow.json")
    result = _invoke("run", first, "--input", '{"a": 1}', "--db", db, "--name", "one")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"a": 1, "x": {"r": 1}}
    # The same machine name with a changed definition: updated, then run again.
    changed = {**PASS, "States": {"P": {**PASS["States"]["P"], "Result": {"r": 2}}}}  # type: ignore[dict-item]
    _write(tmp_path, changed, "flow.json")
    result = _invoke("run", first, "--db", db, "--name", "two", "--history")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["output"] == {"x": {"r": 2}}
    assert [e["type"] for e in shown["events"]][-1] == "ExecutionSucceeded"
    store = open_store(db)
    try:
        arn = "arn:aws:states:us-east-1:123456789012:stateMachine:flow"
        names = sorted(e.name for e in store.list_executions(arn).items)
        assert names == ["one", "two"]
        stored = store.get_execution(arn.replace("stateMachine", "execution") + ":one")
        assert stored is not None and json.loads(stored.output or "") == {"a": 1, "x": {"r": 1}}
    finally:
        store.close()


def test_run_with_db_keeps_the_execution_and_its_history_in_sqlite(tmp_path: Path) -> None:
    _runs_in(str(tmp_path / "runs.db"), tmp_path)


@pytest.mark.postgres
def test_run_with_db_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    import pgdb

    pgdb.empty(pg_url)
    _runs_in(pg_url, tmp_path)


def test_run_with_db_refuses_a_machine_of_the_other_type(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    flow = _write(tmp_path, PASS, "flow.json")
    assert _invoke("run", flow, "--db", db).exit_code == 0
    result = CliRunner().invoke(main, ["run", flow, "--db", db, "--type", "EXPRESS"])
    assert result.exit_code == 1
    assert "is STANDARD, not EXPRESS" in result.output


def test_tune_collector_freezes_the_startup_heap_and_raises_the_thresholds() -> None:
    import gc

    from flowstate.cli.serve import COLLECTOR_THRESHOLDS, tune_collector

    before = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_threshold() == COLLECTOR_THRESHOLDS
        assert COLLECTOR_THRESHOLDS[0] > before[0]
        # what the process holds now is out of the collector's sight
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
