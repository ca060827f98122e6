"""``flowstate worker``: its usage errors (in process) and its task loop over a fake client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from flowstate.cli.main import main
from flowstate.cli.worker import ActivityWorker

ACTIVITY = "arn:aws:states:us-east-1:123456789012:activity:pack"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_handler_must_be_named_when_the_file_has_several(tmp_path: Path) -> None:
    handlers = tmp_path / "handlers.py"
    handlers.write_text("def a(event, context):\n    pass\n\ndef b(event, context):\n    pass\n")
    result = invoke("worker", "--activity", ACTIVITY, "--functions", str(handlers))
    assert result.exit_code == 2
    assert "name the handler with --handler" in result.output
    result = invoke(
        "worker", "--activity", ACTIVITY, "--functions", str(handlers), "--handler", "c"
    )
    assert result.exit_code == 2 and "'c' is not among" in result.output
    result = invoke(
        "worker", "--activity", "arn:nope", "--functions", str(handlers), "--handler", "a"
    )
    assert result.exit_code == 2 and "not an activity ARN" in result.output


class FakeClient:
    """Hands out the tasks it is given, then stops the worker; records the answers."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = tasks
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.worker: ActivityWorker | None = None

    def get_activity_task(self, **kwargs: Any) -> dict[str, Any]:
        if not self.tasks:
            assert self.worker is not None
            self.worker.stopping = True
            return {}
        return self.tasks.pop(0)

    def send_task_success(self, **kwargs: Any) -> None:
        self.calls.append(("success", kwargs))

    def send_task_failure(self, **kwargs: Any) -> None:
        self.calls.append(("failure", kwargs))

    def send_task_heartbeat(self, **kwargs: Any) -> None:
        self.calls.append(("heartbeat", kwargs))


class Broken(Exception):
    pass


def handler(event: Any, context: Any) -> Any:
    if event.get("fail"):
        raise Broken("it broke")
    return {"got": event["n"], "token": context.task_token}


def test_each_task_is_answered_with_the_result_or_the_error() -> None:
    fake = FakeClient(
        [
            {"taskToken": "t1", "input": '{"n": 1}'},
            {"taskToken": "t2", "input": '{"fail": true}'},
        ]
    )
    worker = ActivityWorker(fake, ACTIVITY, handler, worker_name="w", heartbeat_seconds=0)
    fake.worker = worker
    assert worker.run() == 0
    assert fake.calls[0] == ("success", {"taskToken": "t1", "output": '{"got": 1, "token": "t1"}'})
    kind, failure = fake.calls[1]
    assert (kind, failure["taskToken"], failure["error"]) == ("failure", "t2", "Broken")
    cause = json.loads(failure["cause"])
    assert cause["errorMessage"] == "it broke" and cause["errorType"] == "Broken"
    assert "in handler" in cause["stackTrace"][0]
    assert worker.tasks_done == 2
