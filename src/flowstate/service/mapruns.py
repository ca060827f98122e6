"""The map run side of the API: DescribeMapRun, ListMapRuns, UpdateMapRun.

A Distributed Map's iterations run inside their parent execution here (silent child frames,
``interpreter.fanout``), so a map run has no child executions of its own: it is found by its
row (written with its MapRunStarted event) and its figures come from the parent's committed
snapshot — the FanOut of a run still in progress, or the figures kept when it ended. Every
item is one iteration, so ``executionCounts`` equal ``itemCounts``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flowstate.interpreter.fanout import FanOut, map_run_figures
from flowstate.interpreter.frames import Phase
from flowstate.interpreter.messages import MapRunUpdated
from flowstate.runtime.engine import Engine, EngineClosed
from flowstate.runtime.live import MAP_RUNS
from flowstate.service.errors import (
    EXECUTION_DOES_NOT_EXIST,
    INVALID_ARN,
    INVALID_TOKEN,
    RESOURCE_NOT_FOUND,
    SERVICE_UNAVAILABLE,
    VALIDATION,
    ServiceError,
)
from flowstate.service.executions import parse_execution_arn
from flowstate.service.resources import check_arn_prefix
from flowstate.storage import ExecutionRecord, InvalidToken, MapRunRecord

__all__ = ["MapRuns", "parse_map_run_arn"]

# ...:mapRun:<state machine>/<map label>:<run id>
_MAP_RUN_ARN = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:mapRun:[^:/]+/[^:]+:[^:]+$")


def parse_map_run_arn(arn: str) -> None:
    """InvalidArn unless ``arn`` is shaped like a map run's ARN."""
    check_arn_prefix(arn)
    if _MAP_RUN_ARN.match(arn) is None:
        raise ServiceError(
            INVALID_ARN, f"Invalid Arn: 'Resource type not valid in this context: {arn}'"
        )


def _map_state_machine_arn(map_run_arn: str) -> str:
    """Recorded AWS: a run's "state machine" is its Distributed Map's,
    ``...:stateMachine:<machine>/<label>``."""
    return map_run_arn.replace(":mapRun:", ":stateMachine:", 1).rsplit(":", 1)[0]


def _not_found(arn: str) -> ServiceError:
    return ServiceError(RESOURCE_NOT_FOUND, f"Resource not found: '{arn}'")


def _snapshot(record: ExecutionRecord) -> dict[str, Any]:
    return json.loads(record.snapshot) if record.snapshot is not None else {}


def _figures(record: ExecutionRecord, data: Mapping[str, Any], arn: str) -> dict[str, Any] | None:
    """A run in progress (its FanOut in a frame waiting on it) or one that has ended."""
    for frame in data.get("frames", ()):
        raw = frame.get("fan")
        if raw and raw.get("map_run_arn") == arn and frame.get("phase") == Phase.CHILDREN:
            fan = FanOut(0)
            for name, value in raw.items():
                setattr(fan, name, value)
            if record.status == "RUNNING":
                return map_run_figures(fan, "RUNNING", None)
            # The execution stopped (StopExecution, a time-out) while the run was going.
            return map_run_figures(fan, "ABORTED", record.stop_at)
    ended = data.get(MAP_RUNS, {}).get(arn)
    return ended if isinstance(ended, dict) else None


def _stop_date(figures: Mapping[str, Any]) -> datetime | None:
    stopped = figures.get("stopped_at")
    return datetime.fromisoformat(stopped) if stopped is not None else None


def _counts(figures: Mapping[str, Any]) -> dict[str, int]:
    succeeded = figures["succeeded"]
    return {
        "pending": figures["pending"],
        "running": figures["running"],
        "succeeded": succeeded,
        "failed": figures["failed"],
        "timedOut": 0,
        "aborted": figures["aborted"],
        "total": figures["total"],
        # Recorded AWS (LocalStack's map run snapshot): a succeeded run without a ResultWriter
        # reports its succeeded items as written; 0 while RUNNING was measured on AWS by
        # floci-io/floci#2694. 0 for a failed or aborted run is our guess.
        "resultsWritten": succeeded if figures["status"] == "SUCCEEDED" else 0,
        "failuresNotRedrivable": 0,
        "pendingRedrive": 0,
    }


class MapRuns:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store

    def _find(self, arn: str) -> tuple[MapRunRecord, ExecutionRecord, dict[str, Any]]:
        """The run's row, its execution's row and its figures (on a reader thread)."""
        row = self.store.get_map_run(arn)
        record = self.store.get_execution(row.execution_arn) if row is not None else None
        if row is None or record is None:
            raise _not_found(arn)
        figures = _figures(record, _snapshot(record), arn)
        if figures is None:  # an Express execution's run: nothing of it is stored
            raise _not_found(arn)
        return row, record, figures

    async def describe_map_run(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["mapRunArn"]
        parse_map_run_arn(arn)
        row, record, figures = await self.engine.read(self._find, arn)
        out: dict[str, Any] = {
            "mapRunArn": row.arn,
            "executionArn": record.arn,
            "status": figures["status"],
            "startDate": row.start_at,
        }
        stop = _stop_date(figures)
        if stop is not None:
            out["stopDate"] = stop
        # Recorded AWS: a Map without tolerated-failure fields reports 0 and 0.0.
        out["maxConcurrency"] = figures["max_concurrency"] or 0
        out["toleratedFailurePercentage"] = float(figures["tolerated_percentage"] or 0)
        out["toleratedFailureCount"] = figures["tolerated_count"] or 0
        out["itemCounts"] = _counts(figures)
        out["executionCounts"] = _counts(figures)
        out["redriveCount"] = 0
        return out

    async def list_map_runs(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["executionArn"]
        parse_execution_arn(arn)

        def read() -> tuple[list[dict[str, Any]], str | None]:
            record = self.store.get_execution(arn)
            if record is None:
                raise ServiceError(EXECUTION_DOES_NOT_EXIST, f"Execution Does Not Exist: '{arn}'")
            try:
                page = self.store.list_map_runs(
                    arn, request.get("maxResults") or 100, request.get("nextToken")
                )
            except InvalidToken as error:
                raise ServiceError(INVALID_TOKEN, f"Invalid Token: '{error}'") from None
            data = _snapshot(record) if page.items else {}
            items = []
            for row in page.items:
                item: dict[str, Any] = {
                    "executionArn": row.execution_arn,
                    "mapRunArn": row.arn,
                    "stateMachineArn": _map_state_machine_arn(row.arn),
                    "startDate": row.start_at,
                }
                figures = _figures(record, data, row.arn)
                stop = _stop_date(figures) if figures is not None else None
                if stop is not None:
                    item["stopDate"] = stop
                items.append(item)
            return items, page.next_token

        items, token = await self.engine.read(read)
        out: dict[str, Any] = {"mapRuns": items}
        if token:
            out["nextToken"] = token
        return out

    async def update_map_run(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["mapRunArn"]
        parse_map_run_arn(arn)
        update = MapRunUpdated(
            arn,
            max_concurrency=request.get("maxConcurrency"),
            tolerated_failure_percentage=request.get("toleratedFailurePercentage"),
            tolerated_failure_count=request.get("toleratedFailureCount"),
        )
        if (
            update.max_concurrency is None
            and update.tolerated_failure_percentage is None
            and update.tolerated_failure_count is None
        ):
            raise ServiceError(
                VALIDATION,
                "At least one of maxConcurrency, toleratedFailurePercentage or "
                "toleratedFailureCount must be given",
            )
        _, record, figures = await self.engine.read(self._find, arn)
        if figures["status"] != "RUNNING":
            # AWS documents UpdateMapRun for in-progress runs only.
            raise ServiceError(
                VALIDATION, f"Map Run '{arn}' is {figures['status']}; only a RUNNING one changes"
            )
        try:
            await self.engine.update_map_run(record.arn, update)
        except EngineClosed as error:
            raise ServiceError(SERVICE_UNAVAILABLE, str(error), 503) from None
        return {}
