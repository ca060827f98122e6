"""moto's Step Functions, in-process (``mock_aws`` + boto3), as a benchmark driver.

Run with moto's own interpreter (``.bench/moto/bin/python -m harness.moto_driver ...`` from
``benchmarks/``). moto only records a state machine's definition unless its configuration
says ``stepfunctions.execute_state_machine``; then its ASL interpreter (the ``parser``
package, LocalStack's) runs each execution on its own thread and always records the
execution history (``SF_EXECUTION_HISTORY_TYPE`` only shapes the canned history of the
non-executing backend). Lambda Tasks call moto's Lambda mock; with ``lambda.use_docker``
false it answers every invocation with its payload — the no-op function of task_chain_10.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import zipfile
from typing import Any

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3
import moto
from moto import mock_aws

from harness.api_polling import check, wait_all
from harness.protocol import DriverArgs, emit, parse_driver_args, rss_kb, timed, total_runs
from harness.workloads import (
    count_transitions,
    load_workload,
    with_wait_seconds,
)

ROLE = "arn:aws:iam::123456789012:role/bench"
CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


def create_noop_lambda() -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="bench-lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("noop.py", "def handler(event, context):\n    return event\n")
    boto3.client("lambda", region_name="us-east-1").create_function(
        FunctionName="noop",
        Runtime="python3.11",
        Role=role,
        Handler="noop.handler",
        Code={"ZipFile": archive.getvalue()},
    )


def history_transitions(sfn: Any, arn: str) -> int:
    types: list[str] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        types.extend(event["type"] for event in page["events"])
    return count_transitions(types)


def run(args: DriverArgs) -> dict[str, Any]:
    work = load_workload(args.workload)
    definition = work.definition
    if args.mode == "fleet":
        definition = with_wait_seconds(definition, args.hold_seconds)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    if "arn:aws:lambda:" in definition:
        create_noop_lambda()
    machine = sfn.create_state_machine(name=work.name, definition=definition, roleArn=ROLE)
    machine_arn = machine["stateMachineArn"]
    text = json.dumps(work.input)
    walls: list[float] = []
    error: str | None = None
    history: int | None = None
    fleet: dict[str, Any] | None = None
    serial = 0

    def start() -> str:
        nonlocal serial
        serial += 1
        return str(
            sfn.start_execution(stateMachineArn=machine_arn, name=f"e{serial}", input=text)[
                "executionArn"
            ]
        )

    for _ in range(total_runs(args)):
        warm = start()
        error = error or check(work, wait_all(sfn, [warm]))
        history = history_transitions(sfn, warm)
        if args.mode == "fleet":
            baseline = rss_kb()
            threads_before = threading.active_count()
            began = time.perf_counter()
            arns = [start() for _ in range(args.executions)]
            started = time.perf_counter() - began
            after = rss_kb()
            threads = threading.active_count() - threads_before
            error = error or check(work, wait_all(sfn, arns))
            finished = time.perf_counter() - began
            walls.append(finished)
            fleet = {
                "hold_seconds": args.hold_seconds,
                "start_s": started,
                "all_done_s": finished,
                # a Wait never ends early: measured before the first deadline, all are waiting
                "waiting": args.executions if started < args.hold_seconds else None,
                "rss_before_kb": baseline,
                "rss_waiting_kb": after,
                "threads_per_waiting": threads / args.executions,
            }
            continue
        began = time.perf_counter()
        if args.mode == "sequential":
            described: dict[str, Any] = {}
            for _ in range(args.executions):
                described.update(wait_all(sfn, [start()]))
        else:
            described = wait_all(sfn, [start() for _ in range(args.executions)])
        walls.append(time.perf_counter() - began)
        error = error or check(work, described)
    return {
        "walls": timed(args, walls),
        "output_ok": error is None,
        "error": error,
        "history_transitions": history,
        "fleet": fleet,
    }


def main() -> None:
    args = parse_driver_args()
    with mock_aws(config=CONFIG):
        result = run(args)
    emit(
        {
            "engine": args.engine,
            "workload": args.workload,
            "mode": args.mode,
            "executions": args.executions,
            "version": f"moto {moto.__version__}",
            "note": None,
            **result,
        }
    )


if __name__ == "__main__":
    main()
