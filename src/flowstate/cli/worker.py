"""``flowstate worker``: serve an activity from a Python function over the Step Functions API.

The loop is an activity worker's: GetActivityTask (a long poll of up to 60 s) → the handler,
called as ``handler(input, context)`` with the task's input parsed → SendTaskSuccess with its
return value, or SendTaskFailure with the exception's class name as error and Lambda's error
payload (``errorMessage``, ``errorType``, ``stackTrace``) as cause. While the handler runs, a
heartbeat goes out every ``--heartbeat-seconds`` (the worker cannot know the state's
HeartbeatSeconds). SIGTERM or Ctrl-C: an idle worker exits at once, a busy one after
answering its task; either way with status 0.

It speaks to any endpoint that serves the API (flowstate or AWS) through botocore.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import signal
import socket
import threading
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

import click

__all__ = ["ActivityWorker", "TaskContext", "worker"]

log = logging.getLogger("flowstate.worker")

Handler = Callable[[Any, Any], Any]


class _Stop(BaseException):
    """A signal arrived while the worker waited for a task (a BaseException, so that no
    ``except Exception`` on the HTTP path swallows it)."""


class TaskContext:
    """What a handler may want besides its input: the token, and a way to heartbeat."""

    def __init__(self, worker: ActivityWorker, task_token: str) -> None:
        self.task_token = task_token
        self.activity_arn = worker.activity_arn
        self.worker_name = worker.worker_name
        self._worker = worker

    def heartbeat(self) -> None:
        self._worker.client.send_task_heartbeat(taskToken=self.task_token)


def _error_payload(exc: BaseException) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # from the handler down
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_list(frames),
    }


class ActivityWorker:
    def __init__(
        self,
        client: Any,
        activity_arn: str,
        handler: Handler,
        *,
        worker_name: str,
        heartbeat_seconds: float = 10.0,
    ) -> None:
        self.client = client
        self.activity_arn = activity_arn
        self.handler = handler
        self.worker_name = worker_name
        self.heartbeat_seconds = heartbeat_seconds
        self.stopping = False
        self._polling = False
        self.tasks_done = 0

    # --- signals ---------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self._polling:
            raise _Stop  # interrupts the long poll; a task it was handed times out on AWS too

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    # --- the loop ----------------------------------------------------------------------

    def run(self) -> int:
        while not self.stopping:
            try:
                self._polling = True
                if self.stopping:
                    break
                task = self.client.get_activity_task(
                    activityArn=self.activity_arn, workerName=self.worker_name
                )
            except _Stop:
                break
            finally:
                self._polling = False
            token = task.get("taskToken")
            if token:
                self.handle(token, task.get("input") or "null")
        return 0

    def handle(self, token: str, input_text: str) -> None:
        stop_beating = threading.Event()
        beater = None
        if self.heartbeat_seconds > 0:
            beater = threading.Thread(
                target=self._beat, args=(token, stop_beating), daemon=True, name="heartbeat"
            )
            beater.start()
        try:
            try:
                event = json.loads(input_text)
                result = self.handler(event, TaskContext(self, token))
                if inspect.isawaitable(result):
                    result = asyncio.run(_awaited(result))
                output = json.dumps(result)
            except Exception as exc:
                log.info("task failed: %s: %s", type(exc).__name__, exc)
                self.client.send_task_failure(
                    taskToken=token,
                    error=type(exc).__name__[:256],
                    cause=json.dumps(_error_payload(exc))[:32768],
                )
            else:
                self.client.send_task_success(taskToken=token, output=output)
        except Exception as exc:  # the answer did not land (task timed out, endpoint down)
            log.warning("could not answer the task: %s", exc)
        finally:
            stop_beating.set()
            if beater is not None:
                beater.join()
            self.tasks_done += 1

    def _beat(self, token: str, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_seconds):
            try:
                self.client.send_task_heartbeat(taskToken=token)
            except Exception as exc:  # e.g. TaskTimedOut: nobody waits for this task now
                log.warning("heartbeat refused: %s", exc)
                return


async def _awaited(result: Any) -> Any:
    return await result


def make_client(endpoint: str, region: str) -> Any:
    """A botocore Step Functions client whose read timeout outlasts a 60 s long poll."""
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    return session.create_client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=session.get_config_variable("access_key") or "flowstate",
        aws_secret_access_key=session.get_config_variable("secret_key") or "flowstate",
        config=Config(read_timeout=75, connect_timeout=10, retries={"max_attempts": 2}),
    )


def pick_handler(functions: dict[str, Handler], name: str | None) -> Handler:
    if name is not None:
        if name not in functions:
            raise click.UsageError(
                f"--handler {name!r} is not among the functions loaded: {sorted(functions)}"
            )
        return functions[name]
    if len(functions) != 1:
        raise click.UsageError(
            f"--functions defines {len(functions)} functions {sorted(functions)}: "
            "name the handler with --handler"
        )
    return next(iter(functions.values()))


@click.command()
@click.option("--activity", "activity_arn", required=True, help="ARN of the activity to serve.")
@click.option(
    "--functions",
    "functions_spec",
    required=True,
    help="Python file or dotted module defining the handler.",
)
@click.option("--handler", default=None, help="Function name [default: the only function].")
@click.option(
    "--endpoint",
    default="http://127.0.0.1:8083",
    show_default=True,
    help="URL of the Step Functions API.",
)
@click.option("--name", "worker_name", default=None, help="workerName [default: host:pid].")
@click.option(
    "--heartbeat-seconds",
    type=float,
    default=10.0,
    show_default=True,
    help="Send a heartbeat this often while the handler runs (0: never).",
)
@click.option("--region", default=None, help="Region [default: the activity ARN's].")
def worker(
    activity_arn: str,
    functions_spec: str,
    handler: str | None,
    endpoint: str,
    worker_name: str | None,
    heartbeat_seconds: float,
    region: str | None,
) -> None:
    """Serve an activity: poll for its tasks and answer each with a Python function."""
    from flowstate.cli.functions import load_functions

    logging.basicConfig(level=logging.INFO, format="flowstate worker: %(message)s")
    try:
        functions = load_functions([functions_spec])
    except (ImportError, OSError, SyntaxError) as exc:
        raise click.UsageError(f"cannot load --functions: {exc}") from None
    chosen = pick_handler(functions, handler)
    parts = activity_arn.split(":")
    if len(parts) < 7 or parts[2] != "states" or parts[5] != "activity":
        raise click.UsageError(f"--activity {activity_arn!r} is not an activity ARN")
    name = worker_name or f"{socket.gethostname()}:{os.getpid()}"
    client = make_client(endpoint, region or parts[3])
    serving = ActivityWorker(
        client, activity_arn, chosen, worker_name=name[:80], heartbeat_seconds=heartbeat_seconds
    )
    serving.install_signal_handlers()
    log.info("serving %s at %s as %s", activity_arn, endpoint, serving.worker_name)
    code = serving.run()
    log.info("stopped after %d task(s)", serving.tasks_done)
    raise SystemExit(code)
