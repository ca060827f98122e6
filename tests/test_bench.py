"""The benchmark harness's pure parts (``benchmarks/harness``, ``benchmarks/bench.py``): output
checking, the JSON line, ratios and the table, the plan and argument narrowing. Nothing here
runs an engine, npm or the network, and nothing is timed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench
from harness.plan import ENGINES, MOTO_EXECUTIONS, make_plan
from harness.results import JSON_KEYS, Row, base_mode, summarise, to_json_line
from harness.table import format_ratio, format_report, ratio
from harness.workloads import (
    count_transitions,
    load_workload,
    modes,
    same_json,
    with_wait_seconds,
    workload_names,
)

UNITS = {"pass_chain_100": 200, "task_chain_10": 200, "wait_fleet": 10_000, "choice_loop_1000": 5}


# --- output checking ----------------------------------------------------------------------


def test_same_json_compares_json_values() -> None:
    assert same_json({"a": [1, 2.0, {"b": 75}]}, {"a": [1.0, 2, {"b": 75.0}]})
    assert not same_json({"a": 1}, {"a": 1, "b": None})
    assert not same_json([1, 2], [2, 1])
    assert not same_json("1", 1)
    assert not same_json(None, {})


def test_same_json_does_not_take_booleans_for_numbers() -> None:
    assert not same_json(True, 1)
    assert not same_json(0, False)
    assert same_json([True, False], [True, False])


def test_count_transitions_counts_every_kind_of_state_entered() -> None:
    types = [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "MapStateEntered",
        "MapIterationStarted",
        "TaskStateEntered",
        "ExecutionSucceeded",
    ]
    assert count_transitions(types) == 3


def test_with_wait_seconds_overrides_every_wait_and_nothing_else() -> None:
    definition = json.dumps(
        {
            "StartAt": "W",
            "States": {
                "W": {"Type": "Wait", "Seconds": 2, "Next": "P"},
                "P": {"Type": "Pass", "End": True},
            },
        }
    )
    states = json.loads(with_wait_seconds(definition, 600))["States"]
    assert states["W"]["Seconds"] == 600
    assert states["P"] == {"Type": "Pass", "End": True}


def _workloads(tmp_path: Path) -> Path:
    (tmp_path / "w.json").write_text(
        '{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}'
    )
    (tmp_path / "w.input.json").write_text('{"x": 1}')
    (tmp_path / "w.expected.json").write_text('{"x": 1.0}')
    manifest = {
        "w": {
            "definition": "w.json",
            "input": "w.input.json",
            "expected_output": "w.expected.json",
            "transitions_per_execution": 1,
            "executions_per_unit": 7,
            "metric": "transitions_per_s",
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_load_workload_reads_the_manifest_entry(tmp_path: Path) -> None:
    directory = _workloads(tmp_path)
    work = load_workload("w", directory)
    assert workload_names(directory) == ["w"]
    assert (work.transitions_per_execution, work.executions_per_unit) == (1, 7)
    assert same_json(work.input, work.expected)
    with pytest.raises(KeyError, match="unknown workload 'nope'"):
        load_workload("nope", directory)


def test_modes_follow_the_workloads_readme() -> None:
    assert modes("pass_chain_100") == ("sequential", "concurrent")
    assert modes("map_inline_1000") == ("sequential",)
    assert modes("wait_fleet") == ("fleet",)
    assert modes("parallel_fanout") == ("concurrent",)


# --- a driver's answer → a row → a JSON line ------------------------------------------------


def _line(**overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "engine": "flowstate-express",
        "workload": "pass_chain_100",
        "mode": "concurrent",
        "executions": 200,
        "walls": [2.0, 1.0, 4.0],
        "output_ok": True,
        "error": None,
        "history_transitions": 100,
        "version": "flowstate 0.1.0",
        "note": None,
    }
    return {**line, **overrides}


def test_summarise_takes_the_median_wall_time() -> None:
    row = summarise(_line(), transitions_per_execution=100, peak_rss_kb=5000)
    assert row.wall_s_median == 2.0
    assert row.transitions_per_s == 200 * 100 / 2.0
    assert row.executions_per_s == 100.0
    assert (row.runs, row.peak_rss_kb, row.output_ok) == (3, 5000, True)
    assert row.note is None


def test_a_run_with_a_wrong_output_does_not_count() -> None:
    line = _line(output_ok=False, error="e3: wrong output {}")
    row = summarise(line, transitions_per_execution=100, peak_rss_kb=1)
    assert row.transitions_per_s is None
    assert row.output_ok is False
    assert row.note == "wrong output: e3: wrong output {}"


def test_a_driver_that_reports_its_own_peak_memory_wins() -> None:
    row = summarise(_line(peak_rss_kb=777), transitions_per_execution=100, peak_rss_kb=1)
    assert row.peak_rss_kb == 777


def test_an_unavailable_engine_is_n_a_with_its_reason() -> None:
    line = _line(
        engine="flowstate-standard-postgres", unavailable="PostgreSQL backend not available"
    )
    row = summarise(line, transitions_per_execution=100, peak_rss_kb=1)
    assert row.output_ok is None
    assert row.transitions_per_s is None
    assert row.note == "n/a: PostgreSQL backend not available"


def test_fleet_figures_become_bytes_per_waiting_execution() -> None:
    fleet = {
        "hold_seconds": 10,
        "start_s": 2.5,
        "all_done_s": 12.6,
        "waiting": 1000,
        "rss_before_kb": 1000,
        "rss_waiting_kb": 2000,
        "threads_per_waiting": 2.0,
    }
    line = _line(workload="wait_fleet", mode="fleet", executions=1000, walls=[12.6], fleet=fleet)
    row = summarise(line, transitions_per_execution=1, peak_rss_kb=1)
    assert row.bytes_per_waiting == 1024.0
    assert row.transitions_per_s is None
    assert (row.waiting, row.threads_per_waiting, row.hold_seconds) == (1000, 2.0, 10)


def test_the_json_line_starts_with_the_issue_keys_in_order() -> None:
    row = summarise(_line(), transitions_per_execution=100, peak_rss_kb=5000)
    data = json.loads(to_json_line(row))
    assert tuple(data)[: len(JSON_KEYS)] == JSON_KEYS
    assert data["engine"] == "flowstate-express"
    assert data["transitions_per_s"] == 10_000.0
    assert data["output_ok"] is True
    assert data["version"] == "flowstate 0.1.0"
    assert "\n" not in to_json_line(row)


# --- ratios and the table -------------------------------------------------------------------


def _row(engine: str, rate: float | None, mode: str = "concurrent", **kw: Any) -> Row:
    return Row(
        engine, "task_chain_10", mode, 200, rate, rate is not None, 1024, engine, runs=3, **kw
    )


def test_ratio_is_against_the_same_workload_and_base_mode() -> None:
    rows = [_row("moto", 80.0), _row("aws-local-stepfunctions", 50_000.0)]
    fast = _row("flowstate-express", 8_000.0, mode="concurrent-async")
    assert base_mode(fast.mode) == "concurrent"
    assert ratio(fast, "moto", rows) == 100.0
    assert ratio(fast, "aws-local-stepfunctions", rows) == 0.16
    assert ratio(_row("flowstate-express", 1.0, mode="sequential"), "moto", rows) is None
    assert ratio(rows[0], "moto", rows) is None


def test_no_ratio_against_a_peer_whose_output_was_wrong() -> None:
    rows = [_row("moto", None)]
    assert ratio(_row("flowstate-express", 10.0), "moto", rows) is None


def test_format_ratio() -> None:
    assert format_ratio(None) == "-"
    assert format_ratio(0.0712) == "0.07x"
    assert format_ratio(12.34) == "12.3x"
    assert format_ratio(1234.0) == "1,234x"


def test_the_report_shows_every_row_ratio_n_a_and_version() -> None:
    rows = [
        _row("flowstate-express", 8_000.0),
        Row(
            "flowstate-standard-postgres",
            "task_chain_10",
            "concurrent",
            200,
            None,
            None,
            None,
            "flowstate 0.1.0",
            note="n/a: PostgreSQL backend not available",
        ),
        _row("moto", 80.0),
        _row("aws-local-stepfunctions", None, note="wrong output: e1: wrong output {}"),
    ]
    report = format_report(rows, ["header line"])
    lines = report.splitlines()
    assert lines[0] == "header line"
    express = next(line for line in lines if "flowstate-express" in line)
    assert "8,000" in express
    assert "100x" in express
    assert "n/a" in next(
        line
        for line in lines
        if line.startswith("task_chain_10  concurrent  flowstate-standard-postgres")
    )
    assert "wrong output" in next(line for line in lines if "aws-local-stepfunctions  " in line)
    assert "* flowstate-standard-postgres (task_chain_10 concurrent): n/a: PostgreSQL" in report
    assert (
        lines[-1] == "Versions: aws-local-stepfunctions; flowstate 0.1.0; flowstate-express; moto"
    )


def test_the_report_flags_a_history_that_disagrees_with_the_manifest() -> None:
    row = _row(
        "aws-local-stepfunctions", 9.0, transitions_per_execution=101, history_transitions=91
    )
    report = format_report([row])
    assert "shows 91 *StateEntered events per execution, the manifest 101" in report


def test_the_fleet_table_is_separate() -> None:
    row = Row(
        "moto", "wait_fleet", "fleet", 1000, None, True, 2048, "moto 5.2.5", runs=1,
        hold_seconds=10, waiting=1000, bytes_per_waiting=52 * 1024, threads_per_waiting=2.0,
        start_s=3.0, all_done_s=13.5,
    )  # fmt: skip
    report = format_report([row])
    assert "wait_fleet (Wait held at 10 s while memory is read):" in report
    assert "Throughput" not in report
    fleet_line = next(line for line in report.splitlines() if line.startswith("moto"))
    assert fleet_line.split() == ["moto", "1,000", "1,000", "52.0", "2.0", "3.00", "13.50", "2"]


# --- the plan and the command line ----------------------------------------------------------


def test_the_plan_narrows_to_one_workload_and_size() -> None:
    jobs = make_plan(["pass_chain_100"], UNITS, executions=200)
    assert {job.workload for job in jobs} == {"pass_chain_100"}
    assert {job.executions for job in jobs} == {200}
    assert [job.mode for job in jobs] == ["sequential"] * len(ENGINES) + ["concurrent"] * len(
        ENGINES
    )
    assert [job.engine for job in jobs[: len(ENGINES)]] == list(ENGINES)


def test_moto_runs_a_fraction_of_each_unit_by_default() -> None:
    jobs = make_plan(["pass_chain_100", "wait_fleet"], UNITS, engines=["moto", "flowstate-express"])
    sizes = {(job.engine, job.workload, job.mode): job.executions for job in jobs}
    assert sizes[("moto", "pass_chain_100", "concurrent")] == MOTO_EXECUTIONS["pass_chain_100"]
    assert sizes[("flowstate-express", "pass_chain_100", "concurrent")] == 200
    assert sizes[("moto", "wait_fleet", "fleet")] == 1_000
    assert sizes[("flowstate-express", "wait_fleet", "fleet")] == 10_000


def test_task_chain_runs_sync_and_async_functions_on_flowstate_only() -> None:
    jobs = make_plan(["task_chain_10"], UNITS)
    by_engine: dict[str, list[str]] = {}
    for job in jobs:
        by_engine.setdefault(job.engine, []).append(job.mode)
    assert by_engine["flowstate-express"] == ["concurrent", "concurrent-async"]
    assert by_engine["flowstate-standard-sqlite"] == ["concurrent", "concurrent-async"]
    assert by_engine["flowstate-http"] == ["concurrent"]
    assert by_engine["moto"] == ["concurrent"]
    assert by_engine["aws-local-stepfunctions"] == ["concurrent"]


def test_the_http_row_skips_wait_fleet_with_a_reason() -> None:
    jobs = make_plan(["wait_fleet"], UNITS, engines=["flowstate-http"])
    assert len(jobs) == 1 and jobs[0].skip


def test_arguments_narrow_workloads_and_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "workload_names", lambda: ["pass_chain_100", "wait_fleet"])
    args = bench.parse_args(["--json", "--workload", "pass_chain_100", "--executions", "200"])
    assert (args.json, args.workloads, args.executions, args.rounds, args.repeat) == (
        True,
        ["pass_chain_100"],
        200,
        3,
        1,
    )
    assert args.engine_list == list(ENGINES)
    everything = bench.parse_args(["--engines", "moto,flowstate-express", "--repeat", "5"])
    assert everything.workloads == ["pass_chain_100", "wait_fleet"]
    assert everything.engine_list == ["moto", "flowstate-express"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--workload", "nope"],
        ["--engines", "localstack"],
        ["--executions", "0"],
        ["--rounds", "0"],
    ],
)
def test_arguments_refuse_unknown_names(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "workload_names", lambda: ["pass_chain_100"])
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_a_missing_peer_is_a_reason_not_a_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bench, "MOTO_PYTHON", tmp_path / "moto" / "bin" / "python")
    monkeypatch.setattr(bench, "ALS_MODULE", tmp_path / "missing.mjs")
    job = make_plan(["pass_chain_100"], UNITS, engines=["moto"])[0]
    assert "moto is not installed" in str(bench.command(job, 3, 10))
    als = make_plan(["pass_chain_100"], UNITS, engines=["aws-local-stepfunctions"])[0]
    assert "aws-local-stepfunctions is not installed" in str(bench.command(als, 3, 10))
    express = make_plan(["pass_chain_100"], UNITS, engines=["flowstate-express"])[0]
    argv = bench.command(express, 3, 10)
    assert isinstance(argv, list)
    assert argv[1:3] == ["-m", "harness.flowstate_driver"]
    assert argv[argv.index("--executions") + 1] == "200"


def test_a_workloads_engines_take_turns_and_every_round_counts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "workload_names", lambda: ["pass_chain_100", "task_chain_10"])
    order: list[tuple[str, str, str]] = []
    walls = {"flowstate-express": [[2.0], [1.0], [3.0]], "moto": [[4.0], [5.0], [6.0]]}

    def fake_round(job: Any, args: Any, postgres: list[str]) -> Any:
        order.append((job.workload, job.mode, job.engine))
        if job.workload == "task_chain_10" and job.engine == "moto":
            return bench.unavailable(job.engine, job.workload, job.mode, job.executions, "no")
        turn = order.count((job.workload, job.mode, job.engine)) - 1
        line = {
            "engine": job.engine,
            "workload": job.workload,
            "mode": job.mode,
            "executions": job.executions,
            "walls": walls[job.engine][turn],
            "output_ok": not (job.engine == "moto" and turn == 2),
            "error": "wrong" if job.engine == "moto" and turn == 2 else None,
            "peak_rss_kb": 100 + turn,
        }
        return line, 50

    monkeypatch.setattr(bench, "run_round", fake_round)
    bench.main(["--json", "--engines", "flowstate-express,moto"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    first = [turn for turn in order if turn[0] == "pass_chain_100"]
    # each round runs every (mode, engine) of the workload once before the next one starts
    third = len(first) // 3
    assert len(first) == 3 * third and third >= 2
    assert first[:third] == first[third : 2 * third] == first[2 * third :]
    assert order[: len(first)] == first  # one workload's rounds, then the next workload's
    # an engine that cannot run is asked once, not once per round
    assert sum(1 for w, _, e in order if (w, e) == ("task_chain_10", "moto")) == 1

    def row(engine: str) -> dict[str, Any]:
        wanted = (engine, "pass_chain_100", "sequential")
        return next(r for r in rows if (r["engine"], r["workload"], r["mode"]) == wanted)

    express = row("flowstate-express")
    assert express["runs"] == 3 and express["peak_rss_kb"] == 102
    assert express["wall_s_median"] == 2.0  # median of 2.0, 1.0, 3.0: all rounds count
    assert row("moto")["output_ok"] is False  # one round's wrong output makes the row wrong
