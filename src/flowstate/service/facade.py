"""``Service``: the one object every front end talks to.

It owns the engine (the durable loop) and the catalog over one store, and maps each Step
Functions operation to the method that implements it. Catalog operations are plain
synchronous store calls and run on the engine's reader threads, so the event loop never waits
on the disk; execution operations are coroutines that answer after the engine's commit.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowstate.asl.errors import StatesError
from flowstate.integrations.connections import ConnectionRegistry
from flowstate.integrations.functions import (
    FunctionRegistry,
    invoke_function,
    is_lambda_resource,
    lambda_function_name,
    unhosted_resource,
)
from flowstate.integrations.http import (
    HttpInvoker,
    HttpRequest,
    inspection_data,
    is_http_resource,
)
from flowstate.integrations.mocks import MockConfig
from flowstate.runtime.clock import Clock
from flowstate.runtime.cluster import Ownership
from flowstate.runtime.engine import Engine, EngineSettings
from flowstate.service.arns import Partition
from flowstate.service.catalog import Catalog
from flowstate.service.errors import ServiceError
from flowstate.service.executions import Executions
from flowstate.service.mapruns import MapRuns
from flowstate.service.nested import NestedExecutions
from flowstate.service.tasks import TaskTokens
from flowstate.service.test_state import test_state as run_test_state
from flowstate.storage import Store

__all__ = ["Service", "ServiceSettings", "deployable_files"]

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def snake_case(operation: str) -> str:
    return _SNAKE.sub("_", operation).lower()


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    account_id: str = "123456789012"
    region: str = "us-east-1"
    retention_days: int = 90
    max_history_events: int = 25_000
    express_timeout_seconds: int = 300
    redrive_window_days: int = 14
    group_commit_max: int = 512
    task_threads: int = 32


class Service:
    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        functions: FunctionRegistry | None = None,
        settings: ServiceSettings | None = None,
        deploy: Iterable[Path] = (),
        connections: ConnectionRegistry | None = None,
        mocks: MockConfig | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        self.settings = settings or ServiceSettings()
        s = self.settings
        self.store = store
        self.partition = Partition(region=s.region, account_id=s.account_id)
        self.engine = Engine(
            store,
            clock=clock,
            functions=functions,
            mocks=mocks,
            ownership=ownership,
            settings=EngineSettings(
                account_id=s.account_id,
                region=s.region,
                group_commit_max=s.group_commit_max,
                max_history_events=s.max_history_events,
                express_timeout_seconds=s.express_timeout_seconds,
                retention_days=s.retention_days,
                task_threads=s.task_threads,
            ),
            http=HttpInvoker(connections, region=s.region),
        )
        self.catalog = Catalog(store, self.partition, now=clock.now)
        self.executions = Executions(
            self.engine, self.catalog, self.partition, redrive_window_days=s.redrive_window_days
        )
        self.tasks = TaskTokens(self.engine, self.catalog)
        self.engine.external.children = NestedExecutions(self.engine, self.executions)
        self.tester = StateTester(self.engine, self.partition)
        self.map_runs = MapRuns(self.engine)
        self._deploy = list(deploy)
        self._state = "starting"
        self._async: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {}
        self._sync: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        for operation in OPERATIONS:
            method = snake_case(operation)
            for owner in (self.executions, self.tasks, self.tester, self.map_runs):
                handler = getattr(owner, method, None)
                if handler is not None:
                    self._async[operation] = handler
                    break
            else:
                self._sync[operation] = getattr(self.catalog, method)

    async def dispatch(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        handler = self._async.get(operation)
        if handler is not None:
            return await handler(request)
        sync = self._sync.get(operation)
        if sync is None:
            raise ServiceError("UnknownOperationException", f"Unknown operation {operation}")
        return await self.engine.read(sync, request)

    async def startup(self) -> None:
        for path in deployable_files(self._deploy):
            await self.engine.read(self._deploy_file, path)
        await self.engine.start()
        self._state = "ok"

    def drain(self) -> None:
        """A stop was asked for: health reports draining and activity long polls end now
        (the HTTP server waits for open requests before ``shutdown``)."""
        self._state = "draining"
        self.engine.external.close()

    async def shutdown(self) -> None:
        self._state = "draining"
        await self.engine.stop()
        self.store.close()
        self._state = "stopped"

    def health(self) -> dict[str, Any]:
        return {
            "status": self._state,
            "executionsInMemory": len(self.engine._live),
            "commits": self.engine.commits,
        }

    def _deploy_file(self, path: Path) -> None:
        """Create the state machine named after ``path``, or update it if it changed."""
        name = path.name.split(".")[0]
        definition = path.read_text(encoding="utf-8")
        arn = self.partition.state_machine_arn(name)
        role = f"arn:aws:iam::{self.partition.account_id}:role/flowstate"
        current = self.store.get_state_machine(arn)
        if current is None:
            self.catalog.create_state_machine(
                {"name": name, "definition": definition, "roleArn": role, "type": "STANDARD"}
            )
        elif current.definition != definition:
            self.catalog.update_state_machine({"stateMachineArn": arn, "definition": definition})


class StateTester:
    """TestState: one state, run off the event loop; Lambda tasks without a mock call the
    server's local functions, as an execution would."""

    def __init__(self, engine: Engine, partition: Partition) -> None:
        self.engine = engine
        self.partition = partition

    def _invoke(self, target: str, payload: Any) -> Any:
        if target.startswith("arn:") and not is_lambda_resource(target):
            raise unhosted_resource(target)
        name = lambda_function_name(target)
        handler = self.engine.functions.get(name)
        if handler is None:
            raise StatesError(
                "Lambda.ResourceNotFoundException", f"Function not found: {target} (flowstate)"
            )
        return invoke_function(
            handler,
            name,
            payload,
            idempotency_key=f"test-state/{uuid.uuid4()}",
            region=self.partition.region,
            account=self.partition.account_id,
        )

    async def test_state(self, request: dict[str, Any]) -> dict[str, Any]:
        now = self.engine.clock.now()
        loop = asyncio.get_running_loop()
        traced: list[tuple[HttpRequest, dict[str, Any]]] = []

        def invoke(target: str, payload: Any) -> Any:
            if not is_http_resource(target):
                return self._invoke(target, payload)
            # An HTTP Task runs on the engine's loop; this reader thread waits for it.
            call = self.engine.http.invoke(target, payload, lambda q, r: traced.append((q, r)))
            return asyncio.run_coroutine_threadsafe(call, loop).result()

        response = await self.engine.read(
            lambda: run_test_state(
                request,
                invoke=invoke,
                account_id=self.partition.account_id,
                region=self.partition.region,
                now=now,
            )
        )
        if traced and request.get("inspectionLevel") == "TRACE" and "inspectionData" in response:
            # AWS: TRACE shows the HTTP request and response; revealSecrets the connection's.
            reveal = bool(request.get("revealSecrets"))
            response["inspectionData"].update(inspection_data(*traced[-1], reveal_secrets=reveal))
        return response


def deployable_files(paths: Iterable[Path]) -> list[Path]:
    """Definition files named by ``--deploy``: files as given, directories' ``*.json``,
    ``*.yaml`` and ``*.yml`` (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.iterdir() if p.suffix in (".json", ".yaml", ".yml"))
            )
        else:
            found.append(path)
    return found


OPERATIONS = (
    "CreateActivity",
    "CreateStateMachine",
    "CreateStateMachineAlias",
    "DeleteActivity",
    "DeleteStateMachine",
    "DeleteStateMachineAlias",
    "DeleteStateMachineVersion",
    "DescribeActivity",
    "DescribeExecution",
    "DescribeMapRun",
    "DescribeStateMachine",
    "DescribeStateMachineAlias",
    "DescribeStateMachineForExecution",
    "GetActivityTask",
    "GetExecutionHistory",
    "ListActivities",
    "ListExecutions",
    "ListMapRuns",
    "ListStateMachineAliases",
    "ListStateMachineVersions",
    "ListStateMachines",
    "ListTagsForResource",
    "PublishStateMachineVersion",
    "RedriveExecution",
    "SendTaskFailure",
    "SendTaskHeartbeat",
    "SendTaskSuccess",
    "StartExecution",
    "StartSyncExecution",
    "StopExecution",
    "TagResource",
    "TestState",
    "UntagResource",
    "UpdateMapRun",
    "UpdateStateMachine",
    "UpdateStateMachineAlias",
    "ValidateStateMachineDefinition",
)
