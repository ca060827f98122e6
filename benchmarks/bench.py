"""``make bench``: every workload on flowstate and on its peers, in the same run.

Each (engine, workload, mode) runs in its own subprocess — flowstate's drivers with this
interpreter, moto's with its own virtual environment (``.bench/moto``), aws-local-stepfunctions
with Node (``.bench/node``) — so that the peak resident memory of each is its own
(``wait4``'s ``ru_maxrss``). Every output is checked against ``*.expected.json``; a run with a
wrong output does not count. Prints figures (medians of every timed run); asserts nothing.

The engines of one workload take turns: ``--rounds`` times, each engine runs ``--repeat``
timed runs, then the next engine. A slow spell of the machine (a shared host's CPU, which
moved single figures by 1.5x here) then falls on several engines rather than on one row's
every run, and the ratios of a row are taken between runs made minutes, not an hour, apart.

    .venv/bin/python benchmarks/bench.py [--json] [--workload NAME[,NAME]] [--executions N]
                                         [--rounds 3] [--repeat 1] [--engines E[,E]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness.plan import ENGINES, Job, make_plan  # noqa: E402
from harness.results import Row, summarise, to_json_line, unavailable  # noqa: E402
from harness.table import format_report  # noqa: E402
from harness.workloads import WORKLOADS_DIR, load_workload, workload_names  # noqa: E402

import flowstate  # noqa: E402

PEERS_DIR = Path(os.environ.get("FLOWSTATE_BENCH_PEERS", HERE.parent / ".bench"))
MOTO_PYTHON = PEERS_DIR / "moto" / "bin" / "python"
ALS_MODULE = (
    PEERS_DIR / "node" / "node_modules" / "aws-local-stepfunctions" / "build" / "main.node.esm.js"
)
TIMEOUT_SECONDS = 600  # "reasonable time" for one driver (all runs of one row)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--workload", default="", help="comma-separated; default: all")
    parser.add_argument("--executions", type=int, default=None, help="size of every unit")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per row and round")
    parser.add_argument("--rounds", type=int, default=3, help="turns of a workload's engines")
    parser.add_argument("--engines", default="", help=f"comma-separated of {', '.join(ENGINES)}")
    parser.add_argument("--hold-seconds", type=int, default=10, help="wait_fleet's Wait")
    parser.add_argument("--timeout", type=int, default=TIMEOUT_SECONDS, help="per row, seconds")
    args = parser.parse_args(argv)
    known = workload_names()
    args.workloads = [w for w in args.workload.split(",") if w] or known
    args.engine_list = [e for e in args.engines.split(",") if e] or list(ENGINES)
    for name in args.workloads:
        if name not in known:
            parser.error(f"unknown workload {name!r}; known: {', '.join(known)}")
    for name in args.engine_list:
        if name not in ENGINES:
            parser.error(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    if args.executions is not None and args.executions < 1:
        parser.error("--executions must be at least 1")
    if args.rounds < 1 or args.repeat < 1:
        parser.error("--rounds and --repeat must be at least 1")
    return args


def command(job: Job, repeat: int, hold_seconds: int) -> list[str] | str:
    """The driver's command line, or why the engine cannot run here."""
    common = ["--engine", job.engine, "--workload", job.workload, "--mode", job.mode]
    common += ["--executions", str(job.executions), "--repeat", str(repeat)]
    common += ["--hold-seconds", str(hold_seconds)]
    if job.engine == "moto":
        if not MOTO_PYTHON.exists():
            return f"moto is not installed in {MOTO_PYTHON.parent.parent} (make bench installs it)"
        return [str(MOTO_PYTHON), "-m", "harness.moto_driver", *common]
    if job.engine == "aws-local-stepfunctions":
        if not ALS_MODULE.exists():
            return f"aws-local-stepfunctions is not installed in {PEERS_DIR / 'node'}"
        driver = HERE / "harness" / "aws_local_sfn_driver.mjs"
        paths = ["--module", str(ALS_MODULE), "--workloads", str(WORKLOADS_DIR)]
        return ["node", str(driver), *common, *paths]
    module = "flowstate_http_driver" if job.engine == "flowstate-http" else "flowstate_driver"
    return [sys.executable, "-m", f"harness.{module}", *common]


def run_driver(argv: list[str], timeout: int) -> tuple[dict[str, Any] | None, int, str]:
    """(the driver's JSON line, its peak RSS in KiB, the end of its stderr)."""
    env = {**os.environ, "PYTHONPATH": str(HERE), "FLOWSTATE_BENCH_WORKLOADS": str(WORKLOADS_DIR)}
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=errors)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        proc.stdout.close()
        # wait4, not wait(): the child's own rusage, so each engine's peak RSS is its own
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        timed_out = not killer.is_alive()
        killer.cancel()
        errors.seek(0)
        tail = errors.read().decode(errors="replace")[-600:]
    if timed_out:
        return None, int(usage.ru_maxrss), f"did not finish within {timeout} s"
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else None), int(usage.ru_maxrss), tail


def run_round(
    job: Job, args: argparse.Namespace, postgres: list[str]
) -> Row | tuple[dict[str, Any], int]:
    """One round of ``job``: the driver's answer and peak RSS, or why it cannot run."""
    version = f"flowstate {flowstate.__version__}" if job.engine.startswith("flowstate") else ""
    if job.skip:
        return unavailable(job.engine, job.workload, job.mode, job.executions, job.skip, version)
    if job.engine == "flowstate-standard-postgres" and postgres:
        return unavailable(job.engine, job.workload, job.mode, job.executions, postgres[0], version)
    argv = command(job, 1 if job.mode == "fleet" else args.repeat, args.hold_seconds)
    if isinstance(argv, str):
        return unavailable(job.engine, job.workload, job.mode, job.executions, argv)
    line, peak, tail = run_driver(argv, args.timeout)
    if line is None:
        reason = tail.strip().splitlines()[-1] if tail.strip() else "the driver printed nothing"
        return unavailable(job.engine, job.workload, job.mode, job.executions, reason)
    if "unavailable" in line and job.engine == "flowstate-standard-postgres":
        postgres.append(line["unavailable"])  # probed once; later rows say the same
    return line, peak


def merge(answers: list[tuple[dict[str, Any], int]]) -> tuple[dict[str, Any], int]:
    """The rounds of one row as one answer: every timed run counts; a wrong output in any
    round makes the row wrong; the highest peak memory."""
    line = dict(answers[0][0])
    for other, _ in answers[1:]:
        line["walls"] = [*line.get("walls", []), *other.get("walls", [])]
        if not other.get("output_ok") and line.get("output_ok"):
            line["output_ok"], line["error"] = False, other.get("error")
    line["peak_rss_kb"] = max(int(a.get("peak_rss_kb") or 0) for a, _ in answers) or None
    return line, max(peak for _, peak in answers)


def finish(
    job: Job, args: argparse.Namespace, rounds: list[Row | tuple[dict[str, Any], int]]
) -> Row:
    """The row of ``job`` from its rounds (the first that could not run says why)."""
    for result in rounds:
        if isinstance(result, Row):
            return result
    line, peak = merge(rounds)  # type: ignore[arg-type]
    row = summarise(line, load_workload(job.workload).transitions_per_execution, peak)
    if job.engine == "moto" and job.mode == "fleet" and args.executions is None:
        row.note = (row.note + "; " if row.note else "") + (
            f"measured at {job.executions:,}, not 10,000: moto runs every waiting execution "
            "on its own threads"
        )
    elif job.engine == "moto" and args.executions is None:
        unit = load_workload(job.workload).executions_per_unit
        if job.executions < unit:
            row.note = (row.note + "; " if row.note else "") + (
                f"{job.executions} of the unit's {unit} executions (moto's speed)"
            )
    return row


def header(args: argparse.Namespace) -> list[str]:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return [
        f"flowstate benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        f"median of {args.rounds * args.repeat} timed runs per row ({args.rounds} rounds in "
        f"which a workload's engines take turns, {args.repeat} run(s) each, after a discarded "
        "warm-up run; wait_fleet: 1 run per round); every output checked against "
        "*.expected.json; history on for every engine",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    units = {w: load_workload(w).executions_per_unit for w in args.workloads}
    jobs = make_plan(args.workloads, units, engines=args.engine_list, executions=args.executions)
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.workload, []).append(job)
    rows: list[Row] = []
    postgres: list[str] = []
    for group in groups.values():
        rounds: dict[int, list[Row | tuple[dict[str, Any], int]]] = {id(j): [] for j in group}
        for number in range(args.rounds):
            for job in group:
                done = rounds[id(job)]
                if done and isinstance(done[-1], Row):
                    continue  # it could not run: no more rounds
                if not args.json:
                    print(
                        f"{job.workload} {job.mode} {job.engine} x{job.executions} "
                        f"(round {number + 1}/{args.rounds}) ...",
                        file=sys.stderr,
                    )
                done.append(run_round(job, args, postgres))
        for job in group:
            row = finish(job, args, rounds[id(job)])
            rows.append(row)
            if args.json:
                print(to_json_line(row), flush=True)
    if not args.json:
        print(format_report(rows, header(args)), end="")


if __name__ == "__main__":
    main()
