"""Kill a real ``flowstate serve`` with SIGKILL many times while it runs a few hundred
Standard executions on SQLite; restart it each time. Nothing may be lost or done twice.

The executions mix a chain of Pass states, a Wait of a few seconds (real clock: a resumed
timer must keep its deadline), and a Task served by a local function that fails its first
attempt for a third of them (retried after a back-off). The function journals every call with
its idempotency key, fsynced, so a call re-run after a crash is visible as the same key.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402

pytestmark = pytest.mark.slow

EXECUTIONS = 300
KILLS = 12
MACHINE = "crashy"

FUNCTIONS = """
import json, os

JOURNAL = os.environ["CRASH_JOURNAL"]

class Transient(Exception):
    pass

def work(event, context):
    key = context.idempotency_key
    with open(JOURNAL, "a") as journal:
        journal.write(json.dumps({"key": key, "i": event["i"]}) + "\\n")
        journal.flush()
        os.fsync(journal.fileno())
    if event["fail_first"] and key.endswith("/0"):
        raise Transient("first attempt fails")
    return {"done": event["i"]}
"""

DEFINITION = {
    "StartAt": "P1",
    "States": {
        **{f"P{n}": {"Type": "Pass", "Next": f"P{n + 1}"} for n in range(1, 5)},
        "P5": {"Type": "Pass", "Result": "prepared", "ResultPath": "$.prep", "Next": "Hold"},
        "Hold": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Work"},
        "Work": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:work",
            "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "MaxAttempts": 3}],
            "ResultPath": "$.result",
            "Next": "Done",
        },
        "Done": {"Type": "Pass", "End": True},
    },
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp_path / "server.log"
        (tmp_path / "fns.py").write_text(FUNCTIONS)
        (tmp_path / f"{MACHINE}.json").write_text(json.dumps(DEFINITION))

    def start(self) -> None:
        flowstate = Path(sys.executable).with_name("flowstate")
        env = dict(os.environ, CRASH_JOURNAL=str(self.tmp_path / "journal.jsonl"))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(flowstate),
                    "serve",
                    "--port",
                    str(self.port),
                    "--db",
                    str(self.tmp_path / "flowstate.db"),
                    "--functions",
                    str(self.tmp_path / "fns.py"),
                    "--deploy",
                    str(self.tmp_path / f"{MACHINE}.json"),
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + 30
        import urllib.request

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited at start:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/health", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"server never became healthy:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM: drain and exit. uvicorn re-raises the signal once it has shut down
        cleanly, so a drained server ends with -SIGTERM (or 0)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(20)
        return 0 if code == -signal.SIGTERM else code


def _client(endpoint: str) -> Any:
    return boto3.client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )


def _input(i: int) -> dict[str, Any]:
    return {"i": i, "wait": 1 + i % 3, "fail_first": i % 3 == 0}


def test_sigkill_many_times_loses_nothing_and_does_nothing_twice(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    server = Server(tmp_path)
    server.start()
    machine_arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{MACHINE}"
    pending = list(range(EXECUTIONS))
    kills = 0
    # Start every execution; kill the server part-way through the starts, twice. A start
    # whose answer was lost is simply repeated: same name and input is idempotent.
    while pending:
        client = _client(server.endpoint)
        kill_after = rng.randrange(20, 80) if kills < 2 else None
        for n, i in enumerate(list(pending)):
            if kill_after is not None and n == kill_after:
                server.kill()
                kills += 1
                server.start()
                break
            client.start_execution(
                stateMachineArn=machine_arn, name=f"x{i}", input=json.dumps(_input(i))
            )
            pending.remove(i)
    # Then kill at random moments while they run: mid-tick, mid-commit, mid-task.
    while kills < KILLS:
        time.sleep(rng.uniform(0.05, 0.9))
        server.kill()
        kills += 1
        server.start()
    client = _client(server.endpoint)
    deadline = time.monotonic() + 90
    statuses: dict[int, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(statuses) < EXECUTIONS:
        for i in range(EXECUTIONS):
            if i in statuses:
                continue
            arn = f"arn:aws:states:us-east-1:123456789012:execution:{MACHINE}:x{i}"
            described = client.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                statuses[i] = described
        time.sleep(0.2)
    assert server.stop() == 0, server.log.read_text()[-3000:]
    assert len(statuses) == EXECUTIONS, (
        f"still running: {sorted(set(range(EXECUTIONS)) - set(statuses))}"
    )

    # every execution: the right terminal status and output
    for i, described in statuses.items():
        assert described["status"] == "SUCCEEDED", (i, described)
        expected = {**_input(i), "prep": "prepared", "result": {"done": i}}
        assert json.loads(described["output"]) == expected

    # histories: contiguous ids, one terminal event, each state entered once, Waits kept
    # their deadline (never early; entered once, so never restarted from scratch)
    server.start()
    client = _client(server.endpoint)
    for i in range(EXECUTIONS):
        arn = f"arn:aws:states:us-east-1:123456789012:execution:{MACHINE}:x{i}"
        events: list[dict[str, Any]] = []
        token = None
        while True:
            page = client.get_execution_history(
                executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                break
        assert [e["id"] for e in events] == list(range(1, len(events) + 1)), i
        types = [e["type"] for e in events]
        terminal = [t for t in types if t.startswith("Execution") and t != "ExecutionStarted"]
        assert terminal == ["ExecutionSucceeded"], (i, types)
        assert types.count("WaitStateEntered") == 1 and types.count("ExecutionStarted") == 1
        entered = next(e for e in events if e["type"] == "WaitStateEntered")
        exited = next(e for e in events if e["type"] == "WaitStateExited")
        wait = timedelta(seconds=_input(i)["wait"])
        # botocore parses timestamps to milliseconds
        assert exited["timestamp"] - entered["timestamp"] >= wait - timedelta(milliseconds=1)
        attempts = 2 if _input(i)["fail_first"] else 1
        assert types.count("LambdaFunctionScheduled") == attempts, (i, types)
    assert server.stop() == 0

    # side effects: each attempt's key was called at least once; a key called more than
    # once is a re-run of the same attempt after a crash, never a new attempt
    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    keys_by_execution: dict[int, set[str]] = defaultdict(set)
    for entry in journal:
        keys_by_execution[entry["i"]].add(entry["key"])
    for i in range(EXECUTIONS):
        attempts = 2 if _input(i)["fail_first"] else 1
        suffixes = sorted(key.rsplit("/", 1)[1] for key in keys_by_execution[i])
        assert suffixes == [str(n) for n in range(attempts)], (i, keys_by_execution[i])
    reruns = sum(n - 1 for n in Counter(e["key"] for e in journal).values())
    # at most the calls in flight at each kill can be re-run
    assert reruns <= KILLS * 64, reruns
