"""Real ``flowstate serve`` processes sharing one PostgreSQL database, and what the multi-node
tests check afterwards straight in the database (faster than thousands of API calls)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402

from flowstate.storage.chunks import unpack_chunk  # noqa: E402
from flowstate.storage.timestamps import micros  # noqa: E402

REGION, ACCOUNT = "us-east-1", "123456789012"
MACHINE = "cluster"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE}"

# The journal has one line per call, with its idempotency key: a call re-run after a crash
# shows as the same key twice, a new attempt as a new key.
FUNCTIONS = """
import json, os

JOURNAL = os.environ["CLUSTER_JOURNAL"]

class Transient(Exception):
    pass

def work(event, context):
    key = context.idempotency_key
    fd = os.open(JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps({"key": key, "i": event["i"]}) + "\\n").encode())
    finally:
        os.close(fd)
    if event["fail_first"] and key.endswith("/0"):
        raise Transient("first attempt fails")
    return {"done": event["i"]}

def ask(event, context):
    # A .waitForTaskToken call: the token goes to a file the test answers from.
    fd = os.open(os.environ["CLUSTER_TOKENS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps({"token": event["token"], "i": event["i"]}) + "\\n").encode())
    finally:
        os.close(fd)
    return {"asked": event["i"]}
"""

# A Pass chain, a Wait (durable timer), a Task retried after a back-off (a second timer),
# and a last Pass.
DEFINITION = {
    "StartAt": "P1",
    "States": {
        **{f"P{n}": {"Type": "Pass", "Next": f"P{n + 1}"} for n in range(1, 10)},
        "P10": {"Type": "Pass", "Result": "prepared", "ResultPath": "$.prep", "Next": "Hold"},
        "Hold": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Work"},
        "Work": {
            "Type": "Task",
            "Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:work",
            "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "MaxAttempts": 3}],
            "ResultPath": "$.result",
            "Next": "Done",
        },
        "Done": {"Type": "Pass", "End": True},
    },
}


# A Task that waits for its token (SendTaskSuccess, sent to any node).
CALLBACK_MACHINE = "callbacks"
CALLBACK_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{CALLBACK_MACHINE}"
CALLBACK_DEFINITION = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {
                "FunctionName": "ask",
                "Payload": {"token.$": "$$.Task.Token", "i.$": "$.i"},
            },
            "ResultPath": "$.answer",
            "End": True,
        }
    },
}


def execution_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{MACHINE}:{name}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Node:
    """One ``flowstate serve --db postgresql://...`` process."""

    def __init__(self, workdir: Path, name: str, db: str, *, lease_seconds: int) -> None:
        self.workdir = workdir
        self.name = name
        self.db = db
        self.lease_seconds = lease_seconds
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        (workdir / "fns.py").write_text(FUNCTIONS)
        (workdir / f"{MACHINE}.json").write_text(json.dumps(DEFINITION))
        (workdir / f"{CALLBACK_MACHINE}.json").write_text(json.dumps(CALLBACK_DEFINITION))

    def start(self) -> None:
        flowstate = Path(sys.executable).with_name("flowstate")
        env = dict(
            os.environ,
            CLUSTER_JOURNAL=str(self.workdir / "journal.jsonl"),
            CLUSTER_TOKENS=str(self.workdir / "tokens.jsonl"),
        )
        command = [
            str(flowstate),
            "serve",
            "--port",
            str(self.port),
            "--db",
            self.db,
            "--functions",
            str(self.workdir / "fns.py"),
            "--deploy",
            str(self.workdir / f"{MACHINE}.json"),
            "--deploy",
            str(self.workdir / f"{CALLBACK_MACHINE}.json"),
            "--lease-seconds",
            str(self.lease_seconds),
            "--log-level",
            "info",
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited at start:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/health", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{self.name} never became healthy:\n{self.log.read_text()}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM: drain, leave the cluster, exit (0, or -SIGTERM as uvicorn re-raises)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0
        self.signal(signal.SIGTERM)
        code = self.proc.wait(30)
        return 0 if code == -signal.SIGTERM else code

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ---\n" + "\n".join(text.splitlines()[-lines:])


def client(endpoint: str, read_timeout: float = 10) -> Any:
    return boto3.client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=read_timeout),
    )


def execution_input(i: int, wait: int) -> dict[str, Any]:
    return {"i": i, "wait": wait, "fail_first": i % 3 == 0}


def expected_output(i: int, wait: int) -> dict[str, Any]:
    return {**execution_input(i, wait), "prep": "prepared", "result": {"done": i}}


def statuses(db: str) -> dict[str, int]:
    with psycopg.connect(db) as connection:
        rows = connection.execute(
            "SELECT status, COUNT(*) FROM executions GROUP BY status"
        ).fetchall()
    return {status: int(count) for status, count in rows}


def wait_until_none_running(db: str, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        found = statuses(db)
        if not found.get("RUNNING") or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def stored_events(connection: Any, arn: str | None = None) -> list[tuple[str, int, int, str, int]]:
    """(execution, id, previous id, type, timestamp µs) of every stored event, from rows and
    from chunks, in (execution, id) order."""
    where, args = ("WHERE execution_arn = %s", (arn,)) if arn is not None else ("", ())
    found = list(
        connection.execute(
            f"SELECT execution_arn, id, previous_id, type, timestamp FROM history_events {where}",
            args,
        ).fetchall()
    )
    for execution_arn, body in connection.execute(
        f"SELECT execution_arn, body FROM history_chunks {where}", args
    ).fetchall():
        found.extend(
            (execution_arn, e.id, e.previous_event_id, e.type, micros(e.timestamp))
            for e in unpack_chunk(body)
        )
    found.sort(key=lambda e: (e[0], e[1]))
    return found


def check_histories(db: str) -> dict[str, list[str]]:
    """Every execution's history: ids 1..n without a gap, previous ids pointing back, exactly
    one start and one terminal event, Waits never early. Returns the types per execution."""
    with psycopg.connect(db) as connection:
        rows = stored_events(connection)
    by_execution: dict[str, list[tuple[int, int, str, int]]] = {}
    for arn, id_, previous, type_, stamp in rows:
        by_execution.setdefault(arn, []).append((id_, previous, type_, stamp))
    types: dict[str, list[str]] = {}
    for arn, events in by_execution.items():
        ids = [e[0] for e in events]
        assert ids == list(range(1, len(ids) + 1)), (arn, ids)
        assert all(0 <= e[1] < e[0] for e in events), arn
        kinds = [e[2] for e in events]
        assert kinds.count("ExecutionStarted") == 1, (arn, kinds)
        terminal = [k for k in kinds if k.startswith("Execution") and k != "ExecutionStarted"]
        assert len(terminal) == 1, (arn, kinds)
        types[arn] = kinds
    return types


def wait_seconds(db: str, arn: str) -> float:
    with psycopg.connect(db) as connection:
        rows = stored_events(connection, arn)
    stamps = {e[3]: e[4] for e in rows if e[3] in ("WaitStateEntered", "WaitStateExited")}
    return (stamps["WaitStateExited"] - stamps["WaitStateEntered"]) / 1e6


def outputs(db: str) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(db) as connection:
        rows = connection.execute("SELECT name, status, output FROM executions").fetchall()
    return {name: (status, output) for name, status, output in rows}


def tokens(workdir: Path) -> list[dict[str, Any]]:
    path = workdir / "tokens.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def journal(workdir: Path) -> list[dict[str, Any]]:
    path = workdir / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stuck_report(db: str, limit: int = 5) -> str:
    """What the executions still RUNNING are waiting for: owner, timers, tasks, last events."""
    lines = []
    with psycopg.connect(db) as connection:
        nodes = connection.execute(
            "SELECT node_id, endpoint, expires_at - (EXTRACT(EPOCH FROM now()) * 1e6)::BIGINT "
            "FROM nodes"
        ).fetchall()
        lines.append(f"nodes (id, endpoint, µs left): {nodes}")
        owners = connection.execute(
            "SELECT lease_owner, COUNT(*) FROM executions WHERE status = 'RUNNING' "
            "GROUP BY lease_owner"
        ).fetchall()
        lines.append(f"running by owner: {owners}")
        for arn, owner, generation in connection.execute(
            "SELECT arn, lease_owner, generation FROM executions WHERE status = 'RUNNING' "
            "ORDER BY arn LIMIT %s",
            (limit,),
        ).fetchall():
            timers = connection.execute(
                "SELECT timer_id, fire_at FROM timers WHERE execution_arn = %s", (arn,)
            ).fetchall()
            tasks = connection.execute(
                "SELECT task_id, state FROM tasks WHERE execution_arn = %s", (arn,)
            ).fetchall()
            events = [(e[1], e[3]) for e in stored_events(connection, arn)[-3:]]
            inbox = connection.execute(
                "SELECT COUNT(*) FROM inbox WHERE execution_arn = %s", (arn,)
            ).fetchone()
            lines.append(
                f"{arn.rsplit(':', 1)[1]} owner={owner} gen={generation} timers={timers} "
                f"tasks={tasks} last={events} inbox={inbox}"
            )
    return "\n".join(lines)
