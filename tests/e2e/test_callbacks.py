"""Activities, task-token callbacks and nested executions against real ``flowstate serve``
processes, with boto3 and ``flowstate worker`` subprocesses."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_client import (
    ACCOUNT,
    REGION,
    aws_error,
    client,
    create,
    full_history,
    wait_until,
    wait_until_done,
)
from e2e_server import Servers

pytestmark = pytest.mark.slow

HANDLERS = Path(__file__).with_name("e2e_activity.py")
FLOWSTATE = str(Path(sys.executable).with_name("flowstate"))


def activity_machine(activity_arn: str, **task_fields: Any) -> str:
    task = {"Type": "Task", "Resource": activity_arn, "End": True, **task_fields}
    return json.dumps({"StartAt": "Pack", "States": {"Pack": task}})


class Workers:
    """``flowstate worker`` subprocesses, each logging to its own file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def __call__(self, endpoint: str, activity_arn: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.root / f"worker-{len(self.started)}.log"
        command = [FLOWSTATE, "worker", "--activity", activity_arn, "--functions", str(HANDLERS)]
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command, "--endpoint", endpoint, *args], stdout=out, stderr=subprocess.STDOUT
            )
        self.started.append((process, log))
        return process

    def logs(self) -> str:
        return "\n".join(log.read_text(errors="replace") for _, log in self.started)

    def stop_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    yield started
    started.stop_all()


def test_callback_token_answered_after_a_sigkill_and_restart(servers: Servers) -> None:
    server = servers()
    sfn = client(server.endpoint)
    definition = {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "echo", "Payload": {"token.$": "$$.Task.Token"}},
                "ResultPath": "$.answer",
                "End": True,
            }
        },
    }
    arn = create(sfn, json.dumps(definition))
    execution = sfn.start_execution(stateMachineArn=arn, input='{"order": 1}')["executionArn"]

    def submitted() -> list[dict[str, Any]]:
        events = full_history(sfn, execution)
        return [e for e in events if e["type"] == "TaskSubmitted"]

    event = wait_until(submitted, "the callback task waiting for its token")[0]
    token = json.loads(event["taskSubmittedEventDetails"]["output"])["Payload"]["token"]

    server.kill()
    server.start()
    sfn = client(server.endpoint)
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    sfn.send_task_success(taskToken=token, output='{"approved": true}')
    done = wait_until_done(sfn, execution)
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"order": 1, "answer": {"approved": True}}
    with aws_error("TaskTimedOut"):
        sfn.send_task_success(taskToken=token, output="{}")
    with aws_error("InvalidToken"):
        sfn.send_task_heartbeat(taskToken="garbage")


def test_activity_served_by_a_worker_process(servers: Servers, workers: Workers) -> None:
    server = servers()
    sfn = client(server.endpoint)
    activity = sfn.create_activity(name="pack")["activityArn"]
    arn = create(sfn, activity_machine(activity))
    worker = workers(server.endpoint, activity, "--handler", "pack", "--name", "packer-1")
    good = [
        sfn.start_execution(stateMachineArn=arn, input=json.dumps({"item": i}))["executionArn"]
        for i in range(3)
    ]
    bad = sfn.start_execution(stateMachineArn=arn, input='{"item": 9, "boxes": 0}')
    for i, execution in enumerate(good):
        done = wait_until_done(sfn, execution)
        assert done["status"] == "SUCCEEDED", workers.logs()
        assert json.loads(done["output"]) == {"packed": i, "by": "packer-1"}
    failed = wait_until_done(sfn, bad["executionArn"])
    assert failed["error"] == "OutOfBoxes"
    assert json.loads(failed["cause"])["errorMessage"] == "no boxes left"
    started = [e for e in full_history(sfn, good[0]) if e["type"] == "ActivityStarted"]
    assert started[0]["activityStartedEventDetails"] == {"workerName": "packer-1"}

    worker.send_signal(signal.SIGTERM)  # idle in its long poll: it stops at once
    assert worker.wait(timeout=30) == 0, workers.logs()


def test_heartbeats_keep_a_slow_task_alive_and_silence_times_it_out(
    servers: Servers, workers: Workers
) -> None:
    server = servers(clock="real")
    sfn = client(server.endpoint)
    activity = sfn.create_activity(name="slow")["activityArn"]
    arn = create(sfn, activity_machine(activity, HeartbeatSeconds=2, TimeoutSeconds=60))
    quiet = workers(server.endpoint, activity, "--handler", "slow_pack", "--heartbeat-seconds", "0")
    silent = sfn.start_execution(stateMachineArn=arn, input='{"item": 1, "seconds": 4}')
    done = wait_until_done(sfn, silent["executionArn"])
    assert (done["status"], done["error"]) == ("FAILED", "States.HeartbeatTimeout")
    quiet.send_signal(signal.SIGTERM)  # busy or idle: it exits 0
    assert quiet.wait(timeout=30) == 0, workers.logs()

    workers(server.endpoint, activity, "--handler", "slow_pack", "--heartbeat-seconds", "0.3")
    beating = sfn.start_execution(stateMachineArn=arn, input='{"item": 2, "seconds": 4}')
    done = wait_until_done(sfn, beating["executionArn"])
    assert done["status"] == "SUCCEEDED", workers.logs()
    assert json.loads(done["output"]) == {"packed": 2}


def test_standard_parent_runs_an_express_child_synchronously(servers: Servers) -> None:
    server = servers()
    sfn = client(server.endpoint)
    child = json.dumps(
        {
            "StartAt": "Add",
            "States": {
                "Add": {
                    "Type": "Pass",
                    "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"},
                    "End": True,
                }
            },
        }
    )
    child_arn = create(sfn, child, type="EXPRESS")
    parent = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution.sync:2",
                "Parameters": {"StateMachineArn": child_arn, "Input.$": "$"},
                "OutputPath": "$.Output",
                "End": True,
            }
        },
    }
    arn = create(sfn, json.dumps(parent))
    execution = sfn.start_execution(stateMachineArn=arn, input='{"a": 2, "b": 3}')
    done = wait_until_done(sfn, execution["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"sum": 5}
    types = [e["type"] for e in full_history(sfn, execution["executionArn"])]
    assert "TaskSubmitted" in types and f"{REGION}:{ACCOUNT}" in child_arn
