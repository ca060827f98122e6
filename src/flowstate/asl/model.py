"""The compiled model of a state machine: one frozen class per state type.

The parser (``asl.parse``) turns a definition's PascalCase JSON into these snake_case objects
once, with every path, template, intrinsic function, JSONata expression and Choice rule already
compiled. The interpreter only ever reads them.

Dynamic fields are typed by small protocols so that the model does not depend on how paths or
expressions are implemented:

* ``Evaluable``: JSONPath-mode values (paths, payload templates, intrinsic functions):
  ``evaluate(input, scope)``.
* ``Expression``: JSONata-mode values (an expression or a JSON template holding ``{% %}``):
  ``evaluate(states, variables)``, where ``states`` is the ``$states`` binding.
* ``ReferencePath``: a ResultPath, ``assign(document, value) -> new document``.
* ``Condition``: a compiled Choice rule, ``matches(input, scope) -> bool``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from flowstate.asl.scope import Scope

__all__ = [
    "JSONATA",
    "JSONPATH",
    "Catcher",
    "ChoiceBranch",
    "ChoiceState",
    "Condition",
    "Evaluable",
    "Expression",
    "FailState",
    "MapState",
    "ParallelState",
    "PassState",
    "ReferencePath",
    "Retrier",
    "State",
    "StateMachine",
    "SucceedState",
    "TaskState",
    "WaitState",
]

JSONPATH = "JSONPath"
JSONATA = "JSONata"
QueryLanguage = Literal["JSONPath", "JSONata"]


class Evaluable(Protocol):
    """A JSONPath-mode dynamic value: a path, a payload template or an intrinsic function."""

    text: str

    def evaluate(self, input: Any, scope: Scope) -> Any: ...


class Expression(Protocol):
    """A JSONata-mode dynamic value: ``{% expr %}`` or a JSON template holding such strings."""

    def evaluate(self, states: Mapping[str, Any], variables: Mapping[str, Any] | None) -> Any: ...


class ReferencePath(Protocol):
    """A ResultPath: where in the state input a result is placed."""

    text: str

    def assign(self, document: Any, value: Any) -> Any: ...


class Condition(Protocol):
    """A compiled Choice rule (JSONPath rule tree or JSONata ``Condition``)."""

    def matches(self, input: Any, scope: Scope) -> bool: ...


@dataclass(frozen=True, slots=True)
class Retrier:
    error_equals: tuple[str, ...]
    interval_seconds: int = 1
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: int | None = None
    jitter_strategy: str = "NONE"  # "NONE" | "FULL"


@dataclass(frozen=True, slots=True)
class Catcher:
    error_equals: tuple[str, ...]
    next: str
    # JSONPath: where the error output goes; None means ResultPath null (discard).
    # Absent ResultPath defaults to "$" (replace the input by the error output).
    result_path: ReferencePath | None = None
    result_path_is_null: bool = False
    # JSONata: Output of the catcher ({% %} template) and Assign.
    output: Expression | None = None
    assign: Any = None  # compiled Assign (see State.assign)


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """Fields common to every state type.

    ``input_path``/``output_path``: ``None`` when absent (AWS default ``$``);
    ``*_is_null`` when the definition set them to JSON ``null`` (the state sees ``{}``).
    ``assign``: compiled ``Assign`` block; for JSONPath an ``Evaluable`` template whose
    evaluation gives the dict of variables to set, for JSONata an ``Expression``.
    """

    name: str
    type: str
    query_language: str = JSONPATH
    comment: str | None = None
    next: str | None = None
    end: bool = False
    input_path: Evaluable | None = None
    input_path_is_null: bool = False
    output_path: Evaluable | None = None
    output_path_is_null: bool = False
    output: Expression | None = None  # JSONata Output
    assign: Any = None
    # The definition's JSON for this state, for tools (TestState, console) that show it.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PassState(State):
    has_result: bool = False
    result: Any = None
    result_size: int = 0  # the length of Result's JSON text (its quota is checked if large)
    parameters: Evaluable | None = None
    result_path: ReferencePath | None = None
    result_path_is_null: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskState(State):
    resource: str = ""
    parameters: Evaluable | None = None
    arguments: Expression | None = None
    result_selector: Evaluable | None = None
    result_path: ReferencePath | None = None
    result_path_is_null: bool = False
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    timeout_seconds: int | None = None
    timeout_seconds_path: Evaluable | None = None
    timeout_seconds_expr: Expression | None = None  # JSONata "{% %}"
    heartbeat_seconds: int | None = None
    heartbeat_seconds_path: Evaluable | None = None
    heartbeat_seconds_expr: Expression | None = None
    credentials: Any = None


@dataclass(frozen=True, slots=True)
class ChoiceBranch:
    next: str
    condition: Condition | None = None  # JSONPath rule tree
    condition_expr: Expression | None = None  # JSONata "Condition"
    # JSONata choice rules may carry their own Output and Assign.
    output: Expression | None = None
    assign: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChoiceState(State):
    choices: tuple[ChoiceBranch, ...] = ()
    default: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitState(State):
    seconds: int | None = None
    seconds_path: Evaluable | None = None
    timestamp: str | None = None
    timestamp_path: Evaluable | None = None
    seconds_expr: Expression | None = None  # JSONata "{% %}"
    timestamp_expr: Expression | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SucceedState(State):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class FailState(State):
    error: str | None = None
    error_path: Evaluable | None = None
    cause: str | None = None
    cause_path: Evaluable | None = None
    error_expr: Expression | None = None  # JSONata "{% %}"
    cause_expr: Expression | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParallelState(State):
    branches: tuple[StateMachine, ...] = ()
    parameters: Evaluable | None = None
    arguments: Expression | None = None
    result_selector: Evaluable | None = None
    result_path: ReferencePath | None = None
    result_path_is_null: bool = False
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MapState(State):
    item_processor: StateMachine | None = None
    processor_mode: str = "INLINE"  # "INLINE" | "DISTRIBUTED"
    execution_type: str | None = None  # DISTRIBUTED: "STANDARD" | "EXPRESS"
    uses_iterator_field: bool = False  # legacy "Iterator" instead of "ItemProcessor"
    items_path: Evaluable | None = None  # JSONPath ItemsPath (default "$")
    items_expr: Expression | None = None  # JSONata Items: an expression or a JSON array
    item_selector: Evaluable | None = None  # JSONPath ItemSelector or legacy Parameters
    item_selector_expr: Expression | None = None  # JSONata ItemSelector
    item_reader: Mapping[str, Any] | None = None
    item_batcher: Mapping[str, Any] | None = None
    result_writer: Mapping[str, Any] | None = None
    max_concurrency: int = 0
    max_concurrency_path: Evaluable | None = None
    max_concurrency_expr: Expression | None = None
    tolerated_failure_count: int | None = None
    tolerated_failure_count_path: Evaluable | None = None
    tolerated_failure_count_expr: Expression | None = None
    tolerated_failure_percentage: float | None = None
    tolerated_failure_percentage_path: Evaluable | None = None
    tolerated_failure_percentage_expr: Expression | None = None
    label: str | None = None
    result_selector: Evaluable | None = None
    result_path: ReferencePath | None = None
    result_path_is_null: bool = False
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StateMachine:
    """A state machine, or a Parallel branch, or a Map's ItemProcessor."""

    start_at: str
    states: Mapping[str, State]
    query_language: str = JSONPATH
    comment: str | None = None
    timeout_seconds: int | None = None
    version: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
