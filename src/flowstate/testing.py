"""Test state machines from pytest: run a definition on the virtual clock, with local
functions and Step Functions Local mocks, and look at its output and history.

    from flowstate.testing import run_workflow

    def test_happy_path():
        result = run_workflow(
            "statemachine.asl.json",
            {"order": 7},
            mocks="MockConfigFile.json",
            test_case="HappyPath",
            state_machine_name="LambdaSQSIntegration",
        )
        assert result.status == "SUCCEEDED"
        assert result.output == {"ok": True}
        assert "LambdaFunctionSucceeded" in result.event_types

A one-year Wait takes microseconds; nothing is written to disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowstate.integrations.functions import FunctionRegistry
from flowstate.integrations.mocks import MockConfig
from flowstate.runtime.local import run_definition

__all__ = ["Result", "run_workflow"]


@dataclass(frozen=True, slots=True)
class Result:
    """How the execution ended: ``output`` parsed from JSON, ``history`` as
    GetExecutionHistory's ``events``."""

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def event_types(self) -> list[str]:
        return [event["type"] for event in self.history]

    def events(self, type: str) -> list[dict[str, Any]]:
        """The history events of one ``type`` (e.g. ``"TaskStateEntered"``)."""
        return [event for event in self.history if event["type"] == type]


def run_workflow(
    definition: str | Path | Mapping[str, Any],
    input: Any = None,
    *,
    functions: FunctionRegistry | Mapping[str, Callable[[Any, Any], Any]] | None = None,
    mocks: MockConfig | Mapping[str, Any] | str | Path | None = None,
    test_case: str | None = None,
    state_machine_name: str | None = None,
    state_machine_type: str = "STANDARD",
    execution_name: str | None = None,
) -> Result:
    """Run ``definition`` (a dict, JSON/YAML text, or a file path) once on ``input``.

    ``functions``: name → ``handler(event, context)`` for Lambda tasks. ``mocks``: a Step
    Functions Local mock configuration (a ``MockConfig``, its dict, or a file path) and
    ``test_case`` the test case to run; the state machine's name in it is
    ``state_machine_name`` (default: the definition file's stem, else ``"StateMachine"``).
    An invalid definition raises ``DefinitionError``; an unknown test case,
    ``UnknownTestCase``.
    """
    name = state_machine_name
    if isinstance(definition, Path) or (
        isinstance(definition, str) and not definition.lstrip().startswith(("{", "StartAt"))
    ):
        path = Path(definition)
        if path.is_file():
            name = name or path.stem
            definition = path.read_text(encoding="utf-8")
    if isinstance(definition, Path):
        raise FileNotFoundError(str(definition))
    outcome = run_definition(
        definition,
        json.dumps({} if input is None else input),
        state_machine_name=name or "StateMachine",
        execution_name=execution_name,
        state_machine_type=state_machine_type,
        clock="virtual",
        functions=functions,
        mocks=_mock_config(mocks),
        test_case=test_case,
    )
    return Result(
        status=outcome.status,
        output=json.loads(outcome.output) if outcome.output is not None else None,
        error=outcome.error,
        cause=outcome.cause,
        history=outcome.history,
    )


def _mock_config(mocks: MockConfig | Mapping[str, Any] | str | Path | None) -> MockConfig | None:
    if mocks is None or isinstance(mocks, MockConfig):
        return mocks
    if isinstance(mocks, (str, Path)):
        return MockConfig.load(mocks)
    return MockConfig.parse(dict(mocks))
