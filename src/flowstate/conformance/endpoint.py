"""The corpus run through the Step Functions HTTP API of a running server (``flowstate
serve``, or anything that speaks the API), with boto3 as a user would.

``EndpointEngine`` satisfies the runner's ``Engine`` protocol: per case it creates a state
machine, starts the execution, waits for its end, reads the result and deletes the machine.
``run_endpoint_conformance`` is ``run_conformance`` with several cases in flight at once.

Rules that belong to the API layer, not to a case:

- Names: the state machine is named after the recorded name plus a fixed-length suffix (a
  token of the run and a counter), so that cases which recorded the same name can run at once
  and runs can share a server; the recorded name stays its prefix, so the case's normalisation
  still finds it. The suffix has letters and digits only, because definitions split names on
  separators (``States.StringSplit($$.StateMachine.Name, '-')``). The execution keeps its
  recorded name: names need only be unique per state machine.
- Account and region are the server's, not the runner's: results are rebased onto the
  runner's account and region before scoring, as README step 3 does for any account.
- Lambda cases are skipped (``LAMBDA_API_SKIP_REASON``): the corpus gives one function name
  different behaviours in different cases, which the runner registers per case in process;
  a server has one set of ``--functions``.
- ``start_sync_execution`` cases run through StartSyncExecution. Asynchronous Express
  executions are skipped (``ASYNC_EXPRESS_SKIP_REASON``): AWS's API does not show their end
  (DescribeExecution and GetExecutionHistory answer InvalidArn for an ``express:`` ARN,
  recorded in ``test_sfn_api_express.py``); the recordings read it from CloudWatch Logs.
- Standard executions: StartExecution, DescribeExecution until the end, then every page of
  GetExecutionHistory. The end is read from both, and DescribeExecution must agree with the
  terminal history event (where most recordings took it) or the case fails.
- ``functions`` and ``clock`` are the server's own (``flowstate serve --functions``,
  ``--clock virtual``); the corpus needs the virtual clock for its long Waits.
"""

from __future__ import annotations

import importlib
import itertools
import json
import secrets
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from flowstate.asl.errors import DefinitionError, Diagnostic
from flowstate.conformance.case import Case, load_cases, load_skip_table
from flowstate.conformance.compare import ACCOUNT_ID, REGION
from flowstate.conformance.runner import (
    CaseResult,
    _empty_actual,
    _json_default,
    _summary_lines,
    run_cases,
)

__all__ = [
    "ASYNC_EXPRESS_SKIP_REASON",
    "DEFAULT_ROLE_ARN",
    "EndpointEngine",
    "EndpointError",
    "EndpointResult",
    "api_skip_reason",
    "run_cases_concurrently",
    "run_endpoint_conformance",
]

# The role the corpus recorded (its normalisation maps it to a placeholder).
DEFAULT_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sfn-conformance-role"
ASYNC_EXPRESS_SKIP_REASON = (
    "asynchronous Express: AWS's API does not show the end of the execution (DescribeExecution "
    "and GetExecutionHistory answer InvalidArn for express: ARNs); the recording read it from "
    "CloudWatch Logs"
)
_NAME_MAX = 80
_TERMINAL_EVENTS = {
    "SUCCEEDED": ("ExecutionSucceeded", "executionSucceededEventDetails"),
    "FAILED": ("ExecutionFailed", "executionFailedEventDetails"),
    "TIMED_OUT": ("ExecutionTimedOut", "executionTimedOutEventDetails"),
    "ABORTED": ("ExecutionAborted", "executionAbortedEventDetails"),
}
_RUNNING = ("RUNNING", "PENDING_REDRIVE")


class EndpointError(Exception):
    """The server answered something the engine cannot turn into a result."""


@dataclass(slots=True)
class EndpointResult:
    """An execution's end as the API showed it, in ``ExecutionResult``'s shape."""

    status: str
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    execution_arn: str = ""


def _boto3() -> Any:
    try:
        return importlib.import_module("boto3")
    except ImportError:
        raise EndpointError(
            "--endpoint needs boto3: pip install boto3 (or flowstate[dev])"
        ) from None


def _client_error(error: Exception) -> tuple[str, str] | None:
    """(code, message) of a botocore ``ClientError``, else None."""
    response = getattr(error, "response", None)
    if not isinstance(response, Mapping) or "Error" not in response:
        return None
    details = response["Error"]
    return str(details.get("Code", "")), str(details.get("Message", ""))


class EndpointEngine:
    """Runs cases through the Step Functions API at ``endpoint_url``; thread-safe."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        timeout_seconds: float = 60.0,
        max_connections: int = 16,
        client: Any = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.timeout_seconds = timeout_seconds
        if client is None:
            config = importlib.import_module("botocore.config").Config(
                # StartSyncExecution's model sends it to host "sync-<endpoint>".
                inject_host_prefix=False,
                # No retries: a 5xx or a throttle is something to see, not to hide.
                retries={"total_max_attempts": 1},
                max_pool_connections=max_connections,
                connect_timeout=5,
                read_timeout=timeout_seconds + 5,
            )
            # A local server checks no signature; fixed keys keep botocore from looking
            # for real ones.
            client = (
                _boto3()
                .session.Session()
                .client(
                    "stepfunctions",
                    endpoint_url=endpoint_url,
                    region_name=REGION,
                    aws_access_key_id="flowstate",
                    aws_secret_access_key="flowstate",
                    config=config,
                )
            )
        self.client = client
        self._run_token = secrets.token_hex(3)
        self._counter = itertools.count(1)
        self._counter_lock = threading.Lock()

    # --- the Engine protocol ---------------------------------------------------------------

    def run_definition(
        self,
        definition: Any,
        input_json: str,
        *,
        state_machine_name: str,
        execution_name: str,
        state_machine_type: str,
        account_id: str,
        region: str,
        clock: str,
        functions: Mapping[str, Callable[..., Any]] | None,
        role_arn: str | None,
        synchronous: bool = False,
    ) -> EndpointResult:
        """Create, start, wait, read, delete. A refused definition raises ``DefinitionError``
        with the server's code; other refusals raise ``EndpointError``."""
        if functions:
            raise EndpointError("the server's functions are its own (flowstate serve --functions)")
        text = definition if isinstance(definition, str) else json.dumps(definition)
        machine_arn = self._create(
            text, self._unique_name(state_machine_name), state_machine_type, role_arn
        )
        try:
            if state_machine_type == "EXPRESS" and not synchronous:
                # Created first: a definition AWS refuses is still scored.
                raise EndpointError(ASYNC_EXPRESS_SKIP_REASON)
            if synchronous:
                result = self._run_sync(machine_arn, execution_name, input_json)
            else:
                result = self._run_standard(machine_arn, execution_name, input_json)
        except BaseException:
            self._delete(machine_arn, quiet=True)
            raise
        self._delete(machine_arn)
        return _rebased(result, machine_arn, account_id, region)

    def validate_definition(self, text: str, *, state_machine_type: str) -> list[Diagnostic]:
        # As the recordings called it: default severity (ERROR), default maxResults.
        answer = self._call(
            "validate_state_machine_definition", definition=text, type=state_machine_type
        )
        return [
            Diagnostic(d["code"], d["message"], d.get("location"), d.get("severity", "ERROR"))
            for d in answer.get("diagnostics", [])
        ]

    def close(self) -> None:
        """Close the client's connections."""
        close = getattr(self.client, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> EndpointEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check(self) -> None:
        """Raise ``EndpointError`` unless the Step Functions API answers at the endpoint."""
        try:
            self._call("list_state_machines", maxResults=1)
        except EndpointError:
            raise
        except Exception as error:
            raise EndpointError(f"no Step Functions API at {self.endpoint_url}: {error}") from None

    # --- steps ---------------------------------------------------------------------------

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = getattr(self.client, operation)(**request)
        except Exception as error:
            refused = _client_error(error)
            if refused is None:
                raise
            raise EndpointError(f"{operation}: {refused[0]}: {refused[1]}") from None
        return answer

    def _unique_name(self, recorded: str) -> str:
        with self._counter_lock:
            number = next(self._counter)
        suffix = f"{self._run_token}{number:05d}"
        return recorded[: _NAME_MAX - len(suffix)] + suffix

    def _create(self, text: str, name: str, machine_type: str, role_arn: str | None) -> str:
        try:
            answer = self.client.create_state_machine(
                name=name,
                definition=text,
                roleArn=role_arn or DEFAULT_ROLE_ARN,
                type=machine_type,
            )
        except Exception as error:
            refused = _client_error(error)
            if refused is None:
                raise
            # The runner scores create errors from DefinitionError; keep the server's code
            # so that a wrong one shows as a difference, not as InvalidDefinition.
            definition_error = DefinitionError(refused[1])
            definition_error.code = refused[0]
            raise definition_error from None
        return str(answer["stateMachineArn"])

    def _delete(self, machine_arn: str, *, quiet: bool = False) -> None:
        try:
            self._call("delete_state_machine", stateMachineArn=machine_arn)
        except EndpointError:
            if not quiet:
                raise

    def _run_sync(self, machine_arn: str, name: str, input_json: str) -> EndpointResult:
        answer = self._call(
            "start_sync_execution", stateMachineArn=machine_arn, name=name, input=input_json
        )
        return EndpointResult(
            status=str(answer["status"]),
            output=answer.get("output"),
            error=answer.get("error"),
            cause=answer.get("cause"),
            execution_arn=str(answer.get("executionArn", "")),
        )

    def _run_standard(self, machine_arn: str, name: str, input_json: str) -> EndpointResult:
        started = self._call(
            "start_execution", stateMachineArn=machine_arn, name=name, input=input_json
        )
        arn = str(started["executionArn"])
        described = self._wait(arn)
        result = EndpointResult(
            status=str(described["status"]),
            output=described.get("output"),
            error=described.get("error"),
            cause=described.get("cause"),
            execution_arn=arn,
            history=self._history(arn),
        )
        _check_terminal_event(result)
        return result

    def _wait(self, execution_arn: str) -> dict[str, Any]:
        """DescribeExecution until the execution ends: 5 ms doubling to 200 ms, bounded by
        ``timeout_seconds``; an execution still running then is stopped and reported."""
        deadline = time.monotonic() + self.timeout_seconds
        delay = 0.005
        while True:
            described = self._call("describe_execution", executionArn=execution_arn)
            if described["status"] not in _RUNNING:
                return described
            if time.monotonic() >= deadline:
                self._call("stop_execution", executionArn=execution_arn)
                raise EndpointError(
                    f"execution still {described['status']} after {self.timeout_seconds:g} s "
                    f"(stopped): {execution_arn}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        request: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = self._call("get_execution_history", **request)
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events
            request["nextToken"] = token


def _check_terminal_event(result: EndpointResult) -> None:
    """DescribeExecution and the last history event must tell the same end."""
    event_type, details_key = _TERMINAL_EVENTS.get(result.status, ("?", "?"))
    last = result.history[-1] if result.history else {}
    if last.get("type") != event_type:
        raise EndpointError(
            f"DescribeExecution says {result.status} but the last history event is "
            f"{last.get('type')!r} (expected {event_type})"
        )
    details = last.get(details_key) or {}
    for key in ("output", "error", "cause"):
        described = getattr(result, key)
        recorded = details.get(key)
        if key == "output" and result.status != "SUCCEEDED":
            continue
        if described != recorded:
            raise EndpointError(
                f"DescribeExecution {key} {described!r} != {event_type} event {key} {recorded!r}"
            )


def _rebased(
    result: EndpointResult, machine_arn: str, account_id: str, region: str
) -> EndpointResult:
    """The result with the server's account and region replaced by the runner's."""
    parts = machine_arn.split(":")
    if len(parts) < 5:
        return result
    pairs = [(parts[4], account_id), (parts[3], region)]
    pairs = [(old, new) for old, new in pairs if old and old != new]
    if not pairs:
        return result

    def rebase(value: Any) -> Any:
        if isinstance(value, str):
            for old, new in pairs:
                value = value.replace(old, new)
            return value
        if isinstance(value, dict):
            return {key: rebase(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rebase(item) for item in value]
        return value

    return EndpointResult(
        status=result.status,
        output=rebase(result.output),
        error=rebase(result.error),
        cause=rebase(result.cause),
        history=rebase(result.history),
        execution_arn=rebase(result.execution_arn),
    )


# --------------------------------------------------------------------------------------------
# Whole runs


LAMBDA_API_SKIP_REASON = (
    "the corpus binds one function name to different behaviours per case; in process the "
    "runner registers them per case, a server has one set of --functions"
)


def api_skip_reason(case: Case) -> str | None:
    """Why the API cannot show this case's result (None: it can)."""
    if any(need.startswith("lambda:") for need in case.needs):
        return LAMBDA_API_SKIP_REASON
    if (
        case.kind == "execution"
        and case.state_machine_type == "EXPRESS"
        and "start_sync_execution" not in case.expected_from
    ):
        return ASYNC_EXPRESS_SKIP_REASON
    return None


def _run_one(case: Case, engine: Any, skip_table: Mapping[str, str]) -> CaseResult:
    reason = api_skip_reason(case)
    if reason is None:
        return run_cases([case], engine, skip_table)[0]
    result = CaseResult(case.case_id, case.category, "skip", reason, _empty_actual())
    result.skip_listed = case.case_id in skip_table
    return result


def run_cases_concurrently(
    cases: Sequence[Case],
    engine: Any,
    skip_table: Mapping[str, str] | None = None,
    *,
    workers: int = 8,
) -> list[CaseResult]:
    """``run_cases`` with up to ``workers`` cases in flight, and ``api_skip_reason`` applied;
    results keep the cases' order."""
    table = skip_table or {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="conformance") as pool:
        return list(pool.map(lambda case: _run_one(case, engine, table), cases))


def run_endpoint_conformance(
    dir: str | Path,
    filter: str | None = None,
    skip_file: str | Path | None = None,
    json_report: str | Path | None = None,
    out: TextIO | None = None,
    *,
    endpoint_url: str,
    workers: int = 8,
    timeout_seconds: float = 60.0,
) -> int:
    """``run_conformance`` through the API at ``endpoint_url``: the same report and exit code.

    Raises ``EndpointError`` when nothing answers at ``endpoint_url``.
    """
    out = out if out is not None else sys.stdout
    cases = load_cases(dir, filter)
    skip_table = load_skip_table(skip_file)
    with EndpointEngine(
        endpoint_url, timeout_seconds=timeout_seconds, max_connections=2 * workers
    ) as engine:
        engine.check()
        results = run_cases_concurrently(cases, engine, skip_table, workers=workers)
    for line in _summary_lines(results):
        print(line, file=out)
    if json_report is not None:
        report = {
            "summary": {
                kind: sum(1 for r in results if r.result == kind)
                for kind in ("pass", "fail", "skip")
            },
            "cases": [r.to_json() for r in results],
        }
        Path(json_report).write_text(
            json.dumps(report, indent=1, ensure_ascii=False, default=_json_default),
            encoding="utf-8",
        )
    return 1 if any(r.result == "fail" for r in results) else 0
