"""Mocked service integrations in Step Functions Local's format.

``{"StateMachines": {MACHINE: {"TestCases": {CASE: {STATE: RESPONSE}}}},
"MockedResponses": {RESPONSE: {"0": {"Return": ...}, "1-2": {"Throw": {"Error", "Cause"}}}}}``

An execution started as ``<stateMachineArn>#<CASE>`` runs test case CASE: a Task state named
in it (at any depth: inside Map and Parallel too) never calls its resource; its N-th
invocation in the execution (counting from 0, retries and Map iterations included, as Step
Functions Local counts) gets the response whose key is N or a range ``"lo-hi"`` holding N.
``Return`` is the task's result, ``Throw`` fails the attempt with its Error and Cause. A state
the test case does not name calls its resource for real. An invocation with no response
fails the execution (AWS: "you must specify a mocked response for every invocation").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowstate.asl.errors import RUNTIME, StatesError

__all__ = [
    "TEST_CASE_ATTRIBUTE",
    "MockConfig",
    "MockConfigError",
    "MockSession",
    "MockTestCase",
    "MockedResponse",
    "split_test_case",
]

# Where an execution's record remembers its test case (its ``attributes`` JSON).
TEST_CASE_ATTRIBUTE = "mockTestCase"

_KEY = re.compile(r"^(\d+)(?:-(\d+))?$")


class MockConfigError(ValueError):
    """The mock configuration is not in Step Functions Local's format."""


@dataclass(frozen=True, slots=True)
class MockedResponse:
    name: str
    # (first, last, kind, value): kind "Return" (value: the result) or "Throw" (Error, Cause)
    entries: tuple[tuple[int, int, str, Any], ...]

    def outcome(self, invocation: int) -> Any:
        """The result of invocation ``invocation``; a ``Throw`` raises its StatesError."""
        for first, last, kind, value in self.entries:
            if first <= invocation <= last:
                if kind == "Return":
                    return value
                raise StatesError(value.get("Error"), value.get("Cause"))
        raise StatesError(
            RUNTIME,
            f"the mocked response '{self.name}' has no response for invocation {invocation}",
        )


def _parse_response(name: str, value: Any) -> MockedResponse:
    if not isinstance(value, dict) or not value:
        raise MockConfigError(f"MockedResponses.{name}: expected an object of responses")
    entries = []
    for key, response in value.items():
        match = _KEY.match(key)
        if match is None:
            raise MockConfigError(
                f"MockedResponses.{name}: key {key!r} is not an invocation number or 'lo-hi'"
            )
        first = int(match[1])
        last = int(match[2]) if match[2] is not None else first
        if last < first:
            raise MockConfigError(f"MockedResponses.{name}: range {key!r} is empty")
        if not isinstance(response, dict) or len(response) != 1:
            raise MockConfigError(
                f"MockedResponses.{name}.{key}: expected exactly one of Return or Throw"
            )
        kind, body = next(iter(response.items()))
        if kind == "Throw":
            if not isinstance(body, dict) or not all(
                isinstance(body.get(f), str) for f in ("Error", "Cause")
            ):
                raise MockConfigError(
                    f"MockedResponses.{name}.{key}.Throw: expected string Error and Cause"
                )
        elif kind != "Return":
            raise MockConfigError(
                f"MockedResponses.{name}.{key}: expected Return or Throw, got {kind!r}"
            )
        entries.append((first, last, kind, body))
    entries.sort(key=lambda e: e[0])
    return MockedResponse(name, tuple(entries))


@dataclass(frozen=True, slots=True)
class MockTestCase:
    state_machine: str
    name: str
    states: Mapping[str, MockedResponse]


@dataclass(frozen=True, slots=True)
class MockConfig:
    test_cases: Mapping[tuple[str, str], MockTestCase]

    @classmethod
    def parse(cls, document: Any) -> MockConfig:
        if not isinstance(document, dict):
            raise MockConfigError("a mock configuration is a JSON object")
        responses_raw = document.get("MockedResponses", {})
        machines = document.get("StateMachines", {})
        if not isinstance(responses_raw, dict) or not isinstance(machines, dict):
            raise MockConfigError("StateMachines and MockedResponses must be objects")
        responses = {name: _parse_response(name, v) for name, v in responses_raw.items()}
        cases: dict[tuple[str, str], MockTestCase] = {}
        for machine, config in machines.items():
            test_cases = config.get("TestCases") if isinstance(config, dict) else None
            if not isinstance(test_cases, dict):
                raise MockConfigError(f"StateMachines.{machine}: expected TestCases")
            for case, states in test_cases.items():
                if not isinstance(states, dict):
                    raise MockConfigError(
                        f"StateMachines.{machine}.TestCases.{case}: not an object"
                    )
                mapped = {}
                for state, response in states.items():
                    if response not in responses:
                        raise MockConfigError(
                            f"StateMachines.{machine}.TestCases.{case}.{state}: no mocked "
                            f"response named {response!r}"
                        )
                    mapped[state] = responses[response]
                cases[(machine, case)] = MockTestCase(machine, case, mapped)
        return cls(cases)

    @classmethod
    def load(cls, path: str | Path) -> MockConfig:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise MockConfigError(f"{path}: not JSON: {exc}") from None
        return cls.parse(document)

    def test_case(self, state_machine: str, case: str) -> MockTestCase | None:
        return self.test_cases.get((state_machine, case))


def split_test_case(state_machine_arn: str) -> tuple[str, str | None]:
    """``<arn>#<CASE>`` → (arn, CASE); a plain ARN → (arn, None)."""
    arn, hash_sign, case = state_machine_arn.partition("#")
    return (arn, case) if hash_sign else (arn, None)


@dataclass(slots=True)
class MockSession:
    """One execution's test case and how many times each mocked state has been invoked."""

    test_case: MockTestCase
    invocations: dict[str, int] = field(default_factory=dict)

    def mocks(self, state_name: str) -> bool:
        return state_name in self.test_case.states

    def respond(self, state_name: str, attempt: int = 0) -> Any:
        """The mocked result of the state's next invocation (a ``Throw`` raises).

        ``attempt`` is the retry count of this visit: after a restart (the counts are kept
        in memory) it stands in for the count, which is right for a state entered once.
        """
        invocation = max(self.invocations.get(state_name, 0), attempt)
        self.invocations[state_name] = invocation + 1
        return self.test_case.states[state_name].outcome(invocation)


def attempt_of(idempotency_key: str) -> int:
    """The retry count a ``ScheduleTask``'s idempotency key ends with (``.../<attempt>``)."""
    tail = idempotency_key.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def session_for(
    config: MockConfig | None, state_machine_name: str, attributes: Mapping[str, Any]
) -> MockSession | None:
    case = attributes.get(TEST_CASE_ATTRIBUTE)
    if config is None or not isinstance(case, str):
        return None
    test_case = config.test_case(state_machine_name, case)
    return MockSession(test_case) if test_case is not None else None
