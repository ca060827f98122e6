"""``aws stepfunctions ... --endpoint-url`` against a real ``flowstate serve`` (virtual clock)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from e2e_client import ROLE, lambda_arn, pass_machine, unique, wait_until
from e2e_server import REGION, FlowstateServer, Gate

pytestmark = pytest.mark.slow

AWS = str(Path(sys.executable).with_name("aws"))
CLI_TIMEOUT_SECONDS = 60
HOSTS = Path("/etc/hosts")
SYNC_HOST_LINE = "127.0.0.1 sync-localhost"


class CliError(AssertionError):
    pass


def cli_env(tmp: Path) -> dict[str, str]:
    """Credentials and region from the environment; no profile or config file of the user."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(tmp / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
    )
    return env


class Cli:
    def __init__(self, endpoint: str, env: dict[str, str]) -> None:
        self.endpoint = endpoint
        self.env = env

    def run(self, *args: str, endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
        command = [AWS, "stepfunctions", *args]
        command += ["--endpoint-url", endpoint or self.endpoint, "--output", "json"]
        return subprocess.run(
            command,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )

    def __call__(self, *args: str, endpoint: str | None = None) -> Any:
        """Runs ``aws stepfunctions *args``; its JSON output (``{}`` when it prints nothing)."""
        done = self.run(*args, endpoint=endpoint)
        if done.returncode != 0:
            raise CliError(f"aws {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return json.loads(done.stdout) if done.stdout.strip() else {}


@pytest.fixture(scope="module")
def aws(flowstate_server: FlowstateServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(flowstate_server.endpoint, cli_env(tmp_path_factory.mktemp("aws")))


CHAIN = {
    "StartAt": "Greet",
    "States": {
        "Greet": {"Type": "Pass", "Parameters": {"hello.$": "$.who"}, "Next": "Echo"},
        "Echo": {"Type": "Task", "Resource": lambda_arn("echo"), "End": True},
    },
}


@pytest.fixture(scope="module")
def finished(aws: Cli, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A machine created from a file and one execution of it, both through the CLI."""
    definition = tmp_path_factory.mktemp("definition") / "chain.json"
    definition.write_text(json.dumps(CHAIN, indent=2))
    name = unique()
    created = aws(
        "create-state-machine",
        "--name",
        name,
        "--definition",
        f"file://{definition}",
        "--role-arn",
        ROLE,
    )
    started = aws(
        "start-execution",
        "--state-machine-arn",
        created["stateMachineArn"],
        "--name",
        "first",
        "--input",
        '{"who": "cli"}',
    )
    return {"name": name, "definition": definition, **created, **started}


def test_create_state_machine_from_a_file(aws: Cli, finished: dict[str, Any]) -> None:
    assert finished["stateMachineArn"].endswith(f":stateMachine:{finished['name']}")
    described = aws("describe-state-machine", "--state-machine-arn", finished["stateMachineArn"])
    assert described["definition"] == finished["definition"].read_text()
    assert described["status"] == "ACTIVE"


def ended(described: dict[str, Any]) -> dict[str, Any] | None:
    return None if described["status"] == "RUNNING" else described


def test_start_then_describe_execution(aws: Cli, finished: dict[str, Any]) -> None:
    assert finished["executionArn"].endswith(f":execution:{finished['name']}:first")
    described = wait_until(
        lambda: ended(aws("describe-execution", "--execution-arn", finished["executionArn"])),
        "the CLI execution ending",
    )
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"hello": "cli"}
    assert isinstance(described["startDate"], float | int)  # epoch seconds, as AWS sends


def test_list_executions(aws: Cli, finished: dict[str, Any]) -> None:
    listed = aws("list-executions", "--state-machine-arn", finished["stateMachineArn"])
    assert [e["executionArn"] for e in listed["executions"]] == [finished["executionArn"]]
    failed = aws(
        "list-executions",
        "--state-machine-arn",
        finished["stateMachineArn"],
        "--status-filter",
        "FAILED",
    )
    assert failed["executions"] == []


def test_get_execution_history(aws: Cli, finished: dict[str, Any]) -> None:
    history = aws("get-execution-history", "--execution-arn", finished["executionArn"])
    types = [e["type"] for e in history["events"]]
    assert types[0] == "ExecutionStarted"
    assert "LambdaFunctionSucceeded" in types
    assert types[-1] == "ExecutionSucceeded"
    assert [e["id"] for e in history["events"]] == list(range(1, len(types) + 1))
    reverse = aws(
        "get-execution-history", "--execution-arn", finished["executionArn"], "--reverse-order"
    )
    assert [e["type"] for e in reverse["events"]] == types[::-1]


def test_stop_execution(aws: Cli, sfn: Any, gate: Gate) -> None:
    hold = {"Type": "Task", "Resource": lambda_arn("gate"), "End": True}
    held = {"StartAt": "Hold", "States": {"Hold": hold}}
    arn = sfn.create_state_machine(name=unique(), definition=json.dumps(held), roleArn=ROLE)[
        "stateMachineArn"
    ]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"gate": gate.path}))[
        "executionArn"
    ]
    stopped = aws(
        "stop-execution",
        "--execution-arn",
        execution,
        "--error",
        "Cli.Stop",
        "--cause",
        "stopped from the CLI",
    )
    assert "stopDate" in stopped
    described = aws("describe-execution", "--execution-arn", execution)
    assert (described["status"], described["error"], described["cause"]) == (
        "ABORTED",
        "Cli.Stop",
        "stopped from the CLI",
    )


def test_a_refusal_exits_non_zero_with_the_aws_error_code(aws: Cli, tmp_path: Path) -> None:
    unknown = f"arn:aws:states:{REGION}:123456789012:execution:nothing-{uuid.uuid4().hex}:x"
    done = aws.run("describe-execution", "--execution-arn", unknown)
    # awscli v1 exits 255 on a service error, v2 254.
    assert done.returncode in (254, 255), done
    assert "(ExecutionDoesNotExist)" in done.stderr
    assert done.stdout == ""

    broken = tmp_path / "broken.json"
    broken.write_text('{"StartAt": "Missing", "States": {}}')
    done = aws.run(
        "create-state-machine",
        "--name",
        unique(),
        "--definition",
        f"file://{broken}",
        "--role-arn",
        ROLE,
    )
    assert done.returncode in (254, 255), done
    assert "(InvalidDefinition)" in done.stderr


def test_list_state_machines_in_pages(aws: Cli, sfn: Any) -> None:
    for _ in range(3):
        sfn.create_state_machine(name=unique("page"), definition=pass_machine(), roleArn=ROLE)
    everything = [m["stateMachineArn"] for m in aws("list-state-machines")["stateMachines"]]
    assert len(everything) >= 3
    assert len(everything) == len(set(everything))

    # --page-size: the CLI asks for one machine per request and follows the server's tokens.
    one_by_one = aws("list-state-machines", "--page-size", "1")["stateMachines"]
    assert [m["stateMachineArn"] for m in one_by_one] == everything

    # --max-items / --starting-token: the CLI's own pagination over the server's.
    first = aws("list-state-machines", "--max-items", "2")
    assert len(first["stateMachines"]) == 2
    rest = aws("list-state-machines", "--starting-token", first["NextToken"])
    assert [m["stateMachineArn"] for m in first["stateMachines"] + rest["stateMachines"]] == (
        everything
    )


@pytest.fixture(scope="module")
def sync_localhost() -> None:
    """``sync-localhost`` resolving to 127.0.0.1: the CLI sends StartSyncExecution to
    ``sync-<host>`` and has no setting to turn that off."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root to add '{SYNC_HOST_LINE}' to {HOSTS}")
    lines = HOSTS.read_text().splitlines()
    if not any(line.split()[:2] == SYNC_HOST_LINE.split() for line in lines if line.strip()):
        try:
            with HOSTS.open("a") as hosts:  # appended once, left in place
                hosts.write(f"\n{SYNC_HOST_LINE}\n")
        except OSError as error:
            pytest.skip(f"cannot add '{SYNC_HOST_LINE}' to {HOSTS}: {error}")
    try:
        address = socket.gethostbyname("sync-localhost")
    except OSError as error:
        pytest.skip(f"sync-localhost does not resolve despite {HOSTS}: {error}")
    if address != "127.0.0.1":
        pytest.skip(f"sync-localhost resolves to {address}, not 127.0.0.1")


@pytest.mark.usefixtures("sync_localhost")
def test_start_sync_execution(aws: Cli, sfn: Any, flowstate_server: FlowstateServer) -> None:
    arn = sfn.create_state_machine(
        name=unique(),
        definition=pass_machine(Parameters={"twice.$": "States.MathAdd($.n, $.n)"}),
        roleArn=ROLE,
        type="EXPRESS",
    )["stateMachineArn"]
    answer = aws(
        "start-sync-execution",
        "--state-machine-arn",
        arn,
        "--input",
        '{"n": 21}',
        endpoint=f"http://localhost:{flowstate_server.port}",
    )
    assert answer["status"] == "SUCCEEDED"
    assert json.loads(answer["output"]) == {"twice": 42}
    assert ":express:" in answer["executionArn"]
