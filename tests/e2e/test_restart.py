"""Stop a real server (SIGTERM, then SIGKILL) while executions wait on the real clock,
restart it on the same database, and check that every execution ends exactly once and that
the control plane (machines, versions, aliases, tags, activities) is as it was."""

from __future__ import annotations

import json
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from e2e_client import (
    ROLE,
    TERMINAL,
    check_history,
    client,
    full_history,
    lambda_arn,
    wait_until,
    wait_until_done,
)
from e2e_server import GRACEFUL_EXIT_CODES, Servers

pytestmark = pytest.mark.slow

MACHINE = "restart-e2e"
ACTIVITY = "restart-activity"

WAITING = json.dumps(
    {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": "ready", "ResultPath": "$.prep", "Next": "Hold"},
            "Hold": {"Type": "Wait", "SecondsPath": "$.seconds", "Next": "Record"},
            # Journals each call, so a task run twice would show.
            "Record": {
                "Type": "Task",
                "Resource": lambda_arn("journal"),
                "ResultPath": None,
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
)


def build_control_plane(sfn: Any) -> dict[str, str]:
    """A machine with a published version, an alias to it, tags, and a tagged activity."""
    machine = sfn.create_state_machine(
        name=MACHINE,
        definition=WAITING,
        roleArn=ROLE,
        tags=[{"key": "team", "value": "durability"}],
        publish=True,
        versionDescription="first",
    )
    alias = sfn.create_state_machine_alias(
        name="live",
        description="all traffic",
        routingConfiguration=[
            {"stateMachineVersionArn": machine["stateMachineVersionArn"], "weight": 100}
        ],
    )
    activity = sfn.create_activity(name=ACTIVITY, tags=[{"key": "kind", "value": "worker"}])
    return {
        "machine": machine["stateMachineArn"],
        "version": machine["stateMachineVersionArn"],
        "alias": alias["stateMachineAliasArn"],
        "activity": activity["activityArn"],
    }


def control_plane(sfn: Any, arns: dict[str, str]) -> dict[str, Any]:
    """Everything the API says about the control plane, without per-request metadata."""

    def answer(operation: str, **kwargs: Any) -> Any:
        reply = getattr(sfn, operation)(**kwargs)
        reply.pop("ResponseMetadata", None)
        return reply

    return {
        "machines": answer("list_state_machines"),
        "machine": answer("describe_state_machine", stateMachineArn=arns["machine"]),
        "version": answer("describe_state_machine", stateMachineArn=arns["version"]),
        "versions": answer("list_state_machine_versions", stateMachineArn=arns["machine"]),
        "alias": answer("describe_state_machine_alias", stateMachineAliasArn=arns["alias"]),
        "aliases": answer("list_state_machine_aliases", stateMachineArn=arns["machine"]),
        "machine tags": answer("list_tags_for_resource", resourceArn=arns["machine"]),
        "activity": answer("describe_activity", activityArn=arns["activity"]),
        "activities": answer("list_activities"),
        "activity tags": answer("list_tags_for_resource", resourceArn=arns["activity"]),
    }


def has_entered_wait(sfn: Any, execution: str) -> bool:
    return any(e["type"] == "WaitStateEntered" for e in full_history(sfn, execution))


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_executions_end_exactly_once_across_a_restart(
    servers: Servers, tmp_path: Path, stop: str
) -> None:
    server = servers(clock="real")
    sfn = client(server.endpoint)
    arns = build_control_plane(sfn)
    before = control_plane(sfn, arns)
    journal = tmp_path / "journal.txt"

    # id -> (the ARN to start, seconds to wait): through the machine, its version, its alias.
    plan = {
        "done-before": (arns["machine"], 0),
        "machine": (arns["machine"], 2),
        "version": (arns["version"], 3),
        "alias": (arns["alias"], 3),
    }
    executions = {
        key: sfn.start_execution(
            stateMachineArn=target,
            name=key,
            input=json.dumps({"id": key, "seconds": seconds, "journal": str(journal)}),
        )["executionArn"]
        for key, (target, seconds) in plan.items()
    }
    assert wait_until_done(sfn, executions["done-before"])["status"] == "SUCCEEDED"
    waiting = [arn for key, arn in executions.items() if key != "done-before"]
    for arn in waiting:
        wait_until(lambda arn=arn: has_entered_wait(sfn, arn), f"{arn} in its Wait")
    statuses = {arn: sfn.describe_execution(executionArn=arn)["status"] for arn in waiting}
    assert set(statuses.values()) == {"RUNNING"}, (
        f"the Waits ended before the server was stopped; nothing was tested: {statuses}"
    )

    if stop == "sigterm":
        assert server.terminate() in GRACEFUL_EXIT_CODES
        assert "Application shutdown complete" in server.log(tail=None)
    else:
        assert server.kill() == -signal.SIGKILL
    server.start()  # same database, same port

    for key, arn in executions.items():
        described = wait_until_done(sfn, arn)
        assert described["status"] == "SUCCEEDED", described
        assert json.loads(described["output"])["prep"] == "ready"
        events = full_history(sfn, arn)
        check_history(events)
        types = Counter(e["type"] for e in events)
        for event_type in ("WaitStateEntered", "WaitStateExited", "LambdaFunctionSucceeded"):
            assert types[event_type] == 1, (key, types)
        assert types["LambdaFunctionScheduled"] == 1, (key, types)
        by_type = {e["type"]: e for e in events}
        waited = by_type["WaitStateExited"]["timestamp"] - by_type["WaitStateEntered"]["timestamp"]
        seconds = plan[key][1]
        assert waited >= timedelta(seconds=seconds), f"{key}: a resumed Wait ended early"

    by_alias = sfn.describe_execution(executionArn=executions["alias"])
    assert by_alias["stateMachineAliasArn"] == arns["alias"]
    assert by_alias["stateMachineVersionArn"] == arns["version"]
    by_version = sfn.describe_execution(executionArn=executions["version"])
    assert by_version["stateMachineVersionArn"] == arns["version"]

    # Each task ran once: none before the stop was lost, none was run again after it.
    assert sorted(journal.read_text().split()) == sorted(plan)
    listed = sfn.list_executions(stateMachineArn=arns["machine"])["executions"]
    assert sorted(e["name"] for e in listed) == sorted(plan)
    assert {e["status"] for e in listed} <= set(TERMINAL) and len(listed) == len(plan)
    assert control_plane(sfn, arns) == before


def test_sigterm_exits_0(servers: Servers) -> None:
    server = servers(clock="virtual")
    code = server.terminate()
    assert "Application shutdown complete" in server.log(tail=None)
    assert code == 0
