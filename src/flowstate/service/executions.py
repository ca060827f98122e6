"""The execution side of the API: start (async and sync), stop, redrive, describe, list,
history.

Every method takes the request dict (AWS member names, already checked against botocore's
model) and returns the response dict AWS returns; refusals raise ``ServiceError``. Starting
or stopping answers only after the engine has committed the change.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from flowstate.asl.errors import DefinitionError
from flowstate.integrations.mocks import TEST_CASE_ATTRIBUTE, split_test_case
from flowstate.interpreter.history import dump_json
from flowstate.interpreter.redrive import REDRIVABLE_STATUSES
from flowstate.runtime.engine import (
    DuplicateStart,
    Engine,
    EngineClosed,
    NotRedrivable,
    StartRequest,
)
from flowstate.runtime.local import InvalidExecutionInput, parse_execution_input
from flowstate.runtime.stored_history import decode_events
from flowstate.service.arns import Partition, check_name
from flowstate.service.catalog import Catalog, ExecutionTarget
from flowstate.service.errors import (
    EXECUTION_ALREADY_EXISTS,
    EXECUTION_DOES_NOT_EXIST,
    EXECUTION_NOT_REDRIVABLE,
    INVALID_ARN,
    INVALID_DEFINITION,
    INVALID_EXECUTION_INPUT,
    INVALID_TOKEN,
    SERVICE_UNAVAILABLE,
    STATE_MACHINE_TYPE_NOT_SUPPORTED,
    ServiceError,
)
from flowstate.service.resources import check_arn_prefix, state_machine_ref
from flowstate.storage import ExecutionRecord, InvalidToken

__all__ = ["Executions", "parse_execution_arn"]

_EXECUTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:states:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<kind>execution|express):(?P<machine>[^:]+):(?P<name>[^:]+)(?::(?P<run>[^:]+))?$"
)
_TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# AWS (RedriveExecution): client tokens answer idempotently for 15 minutes after their first
# use, the last 10 per execution.
_TOKEN_LIFETIME = timedelta(minutes=15)
_TOKENS_PER_EXECUTION = 10
# AWS: an execution stays open at most one year, and one older than that is not redriven.
_MAX_OPEN = timedelta(days=365)


def parse_execution_arn(arn: str) -> tuple[str, str]:
    """(state machine name, execution name); InvalidArn for anything else."""
    check_arn_prefix(arn)
    match = _EXECUTION_ARN.match(arn)
    if match is None or (match["kind"] == "express") != (match["run"] is not None):
        raise ServiceError(
            INVALID_ARN, f"Invalid Arn: 'Resource type not valid in this context: {arn}'"
        )
    if match["kind"] == "express":
        # AWS (recorded): Express executions are not described, listed, stopped or read
        # through the API; their results go to CloudWatch Logs.
        raise ServiceError(
            INVALID_ARN, "Invalid Arn: 'Resource type not valid in this context: express'"
        )
    return match["machine"], match["name"]


def _unavailable(error: EngineClosed) -> ServiceError:
    return ServiceError(SERVICE_UNAVAILABLE, str(error), 503)


class Executions:
    def __init__(
        self,
        engine: Engine,
        catalog: Catalog,
        partition: Partition,
        *,
        redrive_window_days: int = 14,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.catalog = catalog
        self.partition = partition
        self.redrive_window = timedelta(days=redrive_window_days)
        # (execution ARN, client token) -> (first used at, the answer), oldest first
        self._redrive_tokens: OrderedDict[
            tuple[str, str], tuple[datetime, asyncio.Future[dict[str, Any]]]
        ] = OrderedDict()

    # --- starting ------------------------------------------------------------------------

    def _prepare(
        self, request: Mapping[str, Any], target: ExecutionTarget, test_case: str | None = None
    ) -> StartRequest:
        machine = target.state_machine
        name = request.get("name")
        if name is None:
            name = str(uuid.uuid4())
        check_name(name)
        text = request.get("input")
        if text is None:
            text = "{}"
        try:
            value = parse_execution_input(text)
        except InvalidExecutionInput as error:
            raise ServiceError(INVALID_EXECUTION_INPUT, str(error)) from None
        if machine.type == "EXPRESS":
            arn = self.partition.express_execution_arn(machine.name, name, str(uuid.uuid4()))
        else:
            arn = self.partition.execution_arn(machine.name, name)
        attributes: dict[str, Any] = {"roleArn": target.role_arn}
        if request.get("traceHeader") is not None:
            attributes["traceHeader"] = request["traceHeader"]
        if test_case is not None:
            # Remembered with the execution, so its mocks survive a restart.
            attributes[TEST_CASE_ATTRIBUTE] = test_case
        return StartRequest(
            definition=target.definition,
            state_machine_arn=machine.arn,
            state_machine_name=machine.name,
            revision_id=target.revision_id,
            role_arn=target.role_arn,
            type=machine.type,
            name=name,
            arn=arn,
            input=text,
            input_value=value,
            version_arn=target.version_arn,
            alias_arn=target.alias_arn,
            attributes=dump_json(attributes),
        )

    async def _target(self, arn: str) -> ExecutionTarget:
        return await self.engine.read(self.catalog.resolve_target, arn)

    async def _mocked_target(self, given: str) -> tuple[ExecutionTarget, str | None]:
        """Step Functions Local: ``<stateMachineArn>#<CASE>`` runs test case CASE of the
        mock configuration."""
        arn, test_case = split_test_case(given)
        target = await self._target(arn)
        if test_case is not None:
            mocks = self.engine.mocks
            name = target.state_machine.name
            if mocks is None or mocks.test_case(name, test_case) is None:
                raise ServiceError(
                    INVALID_ARN,
                    f"Invalid Arn: 'no test case {test_case!r} for state machine {name!r} in "
                    "the mock configuration'",
                )
        return target, test_case

    async def start_execution(self, request: Mapping[str, Any]) -> dict[str, Any]:
        target, test_case = await self._mocked_target(request["stateMachineArn"])
        start = self._prepare(request, target, test_case)
        existing = await self.engine.read(self.store.get_execution, start.arn)
        if existing is not None:
            return self._same_start(existing, start)
        try:
            record = await self.engine.start_execution(start)
        except DuplicateStart as duplicate:
            if duplicate.record is None:
                raise ServiceError(
                    EXECUTION_ALREADY_EXISTS, f"Execution Already Exists: '{start.arn}'"
                ) from None
            return self._same_start(duplicate.record, start)
        except EngineClosed as error:
            raise _unavailable(error) from None
        except DefinitionError as error:  # a stored definition this version refuses
            raise ServiceError(INVALID_DEFINITION, str(error)) from None
        return {"executionArn": record.arn, "startDate": record.start_at}

    @staticmethod
    def _same_start(existing: ExecutionRecord, start: StartRequest) -> dict[str, Any]:
        # AWS: the same name and input as a running execution returns that execution;
        # a closed one, or different input, is ExecutionAlreadyExists.
        if existing.status == "RUNNING" and existing.input == start.input:
            return {"executionArn": existing.arn, "startDate": existing.start_at}
        raise ServiceError(EXECUTION_ALREADY_EXISTS, f"Execution Already Exists: '{start.arn}'")

    async def start_sync_execution(self, request: Mapping[str, Any]) -> dict[str, Any]:
        target, test_case = await self._mocked_target(request["stateMachineArn"])
        if target.state_machine.type != "EXPRESS":
            raise ServiceError(
                STATE_MACHINE_TYPE_NOT_SUPPORTED,
                "This operation is not supported by this type of state machine: "
                f"'{target.state_machine.arn}' is STANDARD",
            )
        start = self._prepare(request, target, test_case)
        try:
            live = await self.engine.run_sync(start)
        except EngineClosed as error:
            raise _unavailable(error) from None
        execution = live.execution
        stop = execution.stop_time or live.record.start_at
        out: dict[str, Any] = {
            "executionArn": start.arn,
            "stateMachineArn": target.state_machine.arn,
            "name": start.name,
            "startDate": live.record.start_at,
            "stopDate": stop,
            "status": execution.status,
            "input": start.input,
            "inputDetails": {"included": True},
        }
        if execution.status == "SUCCEEDED":
            out["output"] = dump_json(execution.output)
            out["outputDetails"] = {"included": True}
        else:
            if execution.error is not None:
                out["error"] = execution.error
            if execution.cause is not None:
                out["cause"] = execution.cause
        if request.get("traceHeader") is not None:
            out["traceHeader"] = request["traceHeader"]
        elapsed = (stop - live.record.start_at).total_seconds() * 1000
        out["billingDetails"] = {
            "billedMemoryUsedInMB": 64,
            # AWS bills Express in 100 ms increments.
            "billedDurationInMilliseconds": max(100, int(-(-elapsed // 100) * 100)),
        }
        return out

    # --- stopping ------------------------------------------------------------------------

    async def _execution(self, arn: str) -> ExecutionRecord:
        parse_execution_arn(arn)
        record = await self.engine.read(self.store.get_execution, arn)
        if record is None:
            raise ServiceError(EXECUTION_DOES_NOT_EXIST, f"Execution Does Not Exist: '{arn}'")
        return record

    async def stop_execution(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["executionArn"]
        record = await self._execution(arn)
        if record.status == "RUNNING":
            try:
                await self.engine.stop_execution(arn, request.get("error"), request.get("cause"))
            except EngineClosed as error:
                raise _unavailable(error) from None
            record = await self._execution(arn)
        return {"stopDate": record.stop_at or self.engine.clock.now()}

    # --- reading -------------------------------------------------------------------------

    async def describe_execution(self, request: Mapping[str, Any]) -> dict[str, Any]:
        record = await self._execution(request["executionArn"])
        attributes = json.loads(record.attributes or "{}")
        out: dict[str, Any] = {
            "executionArn": record.arn,
            "stateMachineArn": record.state_machine_arn,
            "name": record.name,
            "status": record.status,
            "startDate": record.start_at,
        }
        if record.stop_at is not None:
            out["stopDate"] = record.stop_at
        out["input"] = record.input
        out["inputDetails"] = {"included": True}
        if record.status == "SUCCEEDED" and record.output is not None:
            out["output"] = record.output
            out["outputDetails"] = {"included": True}
        if "traceHeader" in attributes:
            out["traceHeader"] = attributes["traceHeader"]
        if record.map_run_arn is not None:
            out["mapRunArn"] = record.map_run_arn
        if record.error is not None:
            out["error"] = record.error
        if record.cause is not None:
            out["cause"] = record.cause
        if record.version_arn is not None:
            out["stateMachineVersionArn"] = record.version_arn
        if record.alias_arn is not None:
            out["stateMachineAliasArn"] = record.alias_arn
        out["redriveCount"] = record.redrive_count
        if record.redrive_at is not None:
            out["redriveDate"] = record.redrive_at
        status, reason = await self._redrive_status(record)
        out["redriveStatus"] = status
        if reason is not None:
            out["redriveStatusReason"] = reason
        return out

    async def _redrive_status(self, record: ExecutionRecord) -> tuple[str, str | None]:
        """``redriveStatus`` and ``redriveStatusReason``: NOT_REDRIVABLE exactly when
        RedriveExecution would answer ExecutionNotRedrivable (the reasons are AWS's texts)."""
        stopped = record.status in REDRIVABLE_STATUSES
        if record.type == "EXPRESS":
            # AWS: an unsuccessful Express child of a Distributed Map is redriven with its Map
            # Run, never on its own.
            if stopped and record.map_run_arn is not None:
                return "REDRIVABLE_BY_MAP_RUN", None
            return "NOT_REDRIVABLE", "Express executions cannot be redriven"
        if not stopped:
            return "NOT_REDRIVABLE", f"Execution is {record.status} and cannot be redriven"
        now = self.engine.clock.now()
        if now - record.start_at > _MAX_OPEN:
            return "NOT_REDRIVABLE", "Execution has exceeded the max execution time"
        if now - (record.stop_at or record.start_at) > self.redrive_window:
            return "NOT_REDRIVABLE", "Execution redrivable period exceeded"
        machine = await self.engine.read(self.store.get_state_machine, record.state_machine_arn)
        if machine is None:
            return "NOT_REDRIVABLE", "State machine is in DELETING status"
        # AWS: fewer than 24,999 events, to leave room for ExecutionRedriven and one more.
        if await self.engine.read(self._event_count, record.arn) >= (
            self.engine.settings.max_history_events - 1
        ):
            return "NOT_REDRIVABLE", "Execution history event limit exceeded"
        return "REDRIVABLE", None

    def _event_count(self, arn: str) -> int:
        last = self.store.get_history(arn, 1, None, True).items
        return last[0].id if last else 0

    # --- redriving -------------------------------------------------------------------------

    async def redrive_execution(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """RedriveExecution: answers ``redriveDate`` once the redrive is committed. The same
        ``clientToken`` within 15 minutes gets the same answer and redrives nothing."""
        arn = request["executionArn"]
        record = await self._execution(arn)
        token = request.get("clientToken")
        if token is None:
            return await self._redrive(record)
        now = self.engine.clock.now()
        while self._redrive_tokens:
            key, (first_used, _) = next(iter(self._redrive_tokens.items()))
            if now - first_used <= _TOKEN_LIFETIME:
                break
            del self._redrive_tokens[key]
        known = self._redrive_tokens.get((arn, token))
        if known is not None:
            return await asyncio.shield(known[1])
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._redrive_tokens[(arn, token)] = (now, answer)
        try:
            response = await self._redrive(record)
        except BaseException as error:
            # Only a successful redrive is remembered; a twin waiting meanwhile gets the same.
            self._redrive_tokens.pop((arn, token), None)
            if isinstance(error, Exception):
                answer.set_exception(error)
                answer.exception()  # retrieved: nobody else may be waiting for it
            else:
                answer.cancel()
            raise
        answer.set_result(response)
        mine = [key for key in self._redrive_tokens if key[0] == arn]
        for key in mine[: max(0, len(mine) - _TOKENS_PER_EXECUTION)]:
            del self._redrive_tokens[key]
        return response

    async def _redrive(self, record: ExecutionRecord) -> dict[str, Any]:
        status, reason = await self._redrive_status(record)
        if status != "REDRIVABLE":
            raise ServiceError(EXECUTION_NOT_REDRIVABLE, reason or "Execution cannot be redriven")
        try:
            redriven = await self.engine.redrive_execution(record.arn)
        except NotRedrivable as error:
            raise ServiceError(EXECUTION_NOT_REDRIVABLE, str(error)) from None
        except EngineClosed as error:
            raise _unavailable(error) from None
        return {"redriveDate": redriven.redrive_at}

    async def describe_state_machine_for_execution(
        self, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        record = await self._execution(request["executionArn"])
        out = await self.engine.read(
            self.catalog.describe_state_machine_for_revision,
            record.state_machine_arn,
            record.revision_id,
        )
        if record.map_run_arn is not None:
            out["mapRunArn"] = record.map_run_arn
        return out

    async def list_executions(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request.get("stateMachineArn")
        map_run = request.get("mapRunArn")
        if (arn is None) == (map_run is None):
            raise ServiceError(
                "ValidationException",
                "Exactly one of stateMachineArn and mapRunArn must be given",
            )
        if map_run is not None:
            # Distributed Map iterations run inside their parent execution here: a map run
            # has no child executions to list.
            return {"executions": []}
        assert arn is not None
        ref = state_machine_ref(arn)
        target = await self.engine.read(
            self.catalog.describe_state_machine, {"stateMachineArn": arn}
        )
        if target.get("type") == "EXPRESS":
            raise ServiceError(
                STATE_MACHINE_TYPE_NOT_SUPPORTED,
                "This operation is not supported by this type of state machine: "
                f"'{ref.state_machine_arn}' is EXPRESS",
            )
        version_arn = arn if ref.version is not None else None
        alias_arn = arn if ref.alias is not None else None
        redrive = request.get("redriveFilter")
        redriven = None if redrive is None else redrive == "REDRIVEN"
        try:
            page = await self.engine.read(
                lambda: self.store.list_executions(
                    ref.state_machine_arn,
                    request.get("statusFilter"),
                    request.get("maxResults") or 100,
                    request.get("nextToken"),
                    version_arn=version_arn,
                    alias_arn=alias_arn,
                    redriven=redriven,
                )
            )
        except InvalidToken as error:
            raise ServiceError(INVALID_TOKEN, f"Invalid Token: '{error}'") from None
        items = []
        for row in page.items:
            item: dict[str, Any] = {
                "executionArn": row.arn,
                "stateMachineArn": row.state_machine_arn,
                "name": row.name,
                "status": row.status,
                "startDate": row.start_at,
            }
            if row.stop_at is not None:
                item["stopDate"] = row.stop_at
            if row.map_run_arn is not None:
                item["mapRunArn"] = row.map_run_arn
            if row.version_arn is not None:
                item["stateMachineVersionArn"] = row.version_arn
            if row.alias_arn is not None:
                item["stateMachineAliasArn"] = row.alias_arn
            item["redriveCount"] = row.redrive_count
            if row.redrive_at is not None:
                item["redriveDate"] = row.redrive_at
            items.append(item)
        out: dict[str, Any] = {"executions": items}
        if page.next_token:
            out["nextToken"] = page.next_token
        return out

    async def get_execution_history(self, request: Mapping[str, Any]) -> dict[str, Any]:
        record = await self._execution(request["executionArn"])
        include_data = request.get("includeExecutionData", True)
        try:
            page = await self.engine.read(
                lambda: self.store.get_history(
                    record.arn,
                    request.get("maxResults") or 100,
                    request.get("nextToken"),
                    bool(request.get("reverseOrder", False)),
                )
            )
        except InvalidToken as error:
            raise ServiceError(INVALID_TOKEN, f"Invalid Token: '{error}'") from None
        events = await self.engine.read(
            lambda: decode_events(
                page.items,
                lambda ids: self.store.get_events(record.arn, ids),
                include_data=include_data,
            )
        )
        out: dict[str, Any] = {"events": events}
        if page.next_token:
            out["nextToken"] = page.next_token
        return out
