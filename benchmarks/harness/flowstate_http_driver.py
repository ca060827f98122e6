"""flowstate through its HTTP API (``flowstate serve``, Standard on SQLite) driven by boto3, as
a benchmark driver (the protocol of ``harness.protocol``).

The driver starts ``flowstate serve`` on a free port with a fresh SQLite file, creates the
state machine, and for each run starts the unit's executions with StartExecution and polls
DescribeExecution until each has ended, as a client does (the poll interval is moto's
driver's). ``peak_rss_kb`` is the server's: the process that holds the engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import botocore.config

import flowstate
from harness.api_polling import check, wait_all
from harness.protocol import DriverArgs, emit, parse_driver_args, timed, total_runs
from harness.workloads import count_transitions, load_workload

ROLE = "arn:aws:iam::123456789012:role/bench"
FUNCTIONS = Path(__file__).resolve().parent / "noop_functions.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(db: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).parent / "flowstate"),
        "serve",
        "--port",
        str(port),
        "--db",
        str(db),
        "--functions",
        str(FUNCTIONS),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        url = f"http://127.0.0.1:{port}/health"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as answer:
            if answer.status == 200:
                return server
        time.sleep(0.05)
    server.kill()
    raise SystemExit("flowstate serve did not become healthy in 30 s")


def stop(server: subprocess.Popen[bytes]) -> int:
    """SIGTERM (drain), then the server's peak resident memory in KiB."""
    server.send_signal(signal.SIGTERM)
    _, _, usage = os.wait4(server.pid, 0)
    server.returncode = 0
    return int(usage.ru_maxrss)


def run(args: DriverArgs, sfn: Any) -> dict[str, Any]:
    work = load_workload(args.workload)
    text = json.dumps(work.input)
    walls: list[float] = []
    error: str | None = None
    history: int | None = None
    serial = 0
    for n in range(total_runs(args)):
        machine_arn = sfn.create_state_machine(
            name=f"{work.name}-{n}", definition=work.definition, roleArn=ROLE
        )["stateMachineArn"]

        def start(machine_arn: str = machine_arn) -> str:
            nonlocal serial
            serial += 1
            return str(
                sfn.start_execution(stateMachineArn=machine_arn, name=f"e{serial}", input=text)[
                    "executionArn"
                ]
            )

        warm = start()
        error = error or check(work, wait_all(sfn, [warm]))
        types: list[str] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=warm):
            types.extend(event["type"] for event in page["events"])
        history = count_transitions(types)
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
        "fleet": None,
    }


def main() -> None:
    args = parse_driver_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = serve(Path(tmp) / "http.db", port)
        try:
            sfn = boto3.client(
                "stepfunctions",
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name="us-east-1",
                aws_access_key_id="x",
                aws_secret_access_key="x",
                config=botocore.config.Config(retries={"max_attempts": 0}),
            )
            result = run(args, sfn)
        finally:
            peak = stop(server)
    emit(
        {
            "engine": args.engine,
            "workload": args.workload,
            "mode": args.mode,
            "executions": args.executions,
            "version": f"flowstate {flowstate.__version__}",
            "note": "peak RSS of the server process; wall time includes boto3 start/poll",
            "peak_rss_kb": peak,
            **result,
        }
    )


if __name__ == "__main__":
    main()
