"""Turn a definition (JSON text, YAML text or a mapping) into the compiled model.

``parse_definition`` validates as AWS CreateStateMachine does and raises ``DefinitionError`` with
AWS's message; otherwise it returns a ``StateMachine`` whose every path, template, intrinsic
function, JSONata expression and Choice rule is compiled. This is the one place where the
definition's PascalCase fields become the model's snake_case attributes.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from flowstate.asl import choice, intrinsics, paths, schema, templates
from flowstate.asl.errors import DefinitionError, Diagnostic, InvalidExpression
from flowstate.asl.model import (
    JSONATA,
    JSONPATH,
    Catcher,
    ChoiceBranch,
    ChoiceState,
    FailState,
    MapState,
    ParallelState,
    PassState,
    Retrier,
    State,
    StateMachine,
    SucceedState,
    TaskState,
    WaitState,
)
from flowstate.asl.validate import (
    INVALID_JSON_DESCRIPTION,
    INVALID_LABEL_NAME,
    SCHEMA_VALIDATION_FAILED,
    check_definition,
    is_jsonata_expression,
)

__all__ = ["Analysis", "analyse", "format_error", "parse_definition"]

_JACKSON_SOURCE_LIMIT = 500  # Jackson shortens the quoted source in its messages after this


@dataclass
class Analysis:
    """What validating a definition found: the compiled machine when there was no error."""

    machine: StateMachine | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    text: str = ""  # the definition's text, as AWS quotes it in some messages


def parse_definition(
    definition: str | Mapping[str, Any], *, state_machine_type: str = "STANDARD"
) -> StateMachine:
    """Validate ``definition`` as CreateStateMachine does and return the compiled model.

    Raises ``DefinitionError`` with AWS's message when AWS would refuse the definition.
    """
    text = definition if isinstance(definition, str) else json.dumps(definition)
    if len(text.encode()) > schema.MAX_DEFINITION_BYTES:
        # AWS refuses this at the API layer, before looking at the definition.
        error = DefinitionError(
            "1 validation error detected: Value at 'definition' failed to satisfy constraint:"
            f" Member must have length less than or equal to {schema.MAX_DEFINITION_BYTES}"
        )
        error.code = "ValidationException"
        raise error
    analysis = analyse(definition, state_machine_type=state_machine_type)
    if analysis.machine is None:
        raise DefinitionError(format_error(analysis), analysis.diagnostics)
    return analysis.machine


def format_error(analysis: Analysis) -> str:
    """AWS's InvalidDefinition message for the diagnostics of ``analysis``."""
    errors = [d for d in analysis.diagnostics if d.severity == "ERROR"]
    schema_errors = [d for d in errors if d.code != INVALID_LABEL_NAME]
    if not schema_errors and errors:
        # AWS checks Map labels in a later phase that reports a Python exception verbatim:
        # the exception's type, repr of its args, then the definition text.
        return f"Error=ValueError Args=[{errors[0].message!r}] in definition '{analysis.text}'."
    # AWS joins several problems with ", " and writes a missing location as "null".
    joined = ", ".join(f"{d.code}: {d.message} at {d.location or 'null'}" for d in schema_errors)
    return f"Invalid State Machine Definition: '{joined}'"


def analyse(
    definition: str | Mapping[str, Any], *, state_machine_type: str = "STANDARD"
) -> Analysis:
    """Decode, validate and compile ``definition``; never raises for a bad definition."""
    document, text, diagnostics = _decode(definition)
    analysis = Analysis(None, diagnostics, text)
    if diagnostics:
        return analysis
    found, labels = check_definition(document, state_machine_type=state_machine_type)
    analysis.diagnostics = found
    if found:
        return analysis
    builder = _Builder()
    machine = builder.machine(document, "", top_language=document.get("QueryLanguage", JSONPATH))
    analysis.diagnostics = builder.diagnostics + labels
    if not analysis.diagnostics:
        analysis.machine = machine
    return analysis


# -- decoding ----------------------------------------------------------------------------------


class _YamlLoader(yaml.SafeLoader):
    """YAML as SAM/Serverless users write definitions: timestamps stay strings, as in JSON."""


_YamlLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _decode(definition: str | Mapping[str, Any]) -> tuple[Any, str, list[Diagnostic]]:
    if isinstance(definition, Mapping):
        return definition, json.dumps(definition), []
    text = definition
    if not text.strip():
        return (
            None,
            text,
            [Diagnostic(SCHEMA_VALIDATION_FAILED, "Definition must be a valid JSON object")],
        )
    try:
        # Jackson, AWS's parser, ignores anything after the first complete value.
        document, _ = json.JSONDecoder().raw_decode(text, len(text) - len(text.lstrip()))
    except json.JSONDecodeError as exc:
        json_error = _jackson_error(text, exc)
        if text.lstrip().startswith(("{", "[")):
            return None, text, [json_error]  # meant as JSON: no second chance as YAML flow
        try:
            document = yaml.load(text, Loader=_YamlLoader)
        except yaml.YAMLError:
            return None, text, [json_error]
        if not isinstance(document, Mapping):
            return None, text, [json_error]
    return document, text, []


def _jackson_error(text: str, exc: json.JSONDecodeError) -> Diagnostic:
    """INVALID_JSON_DESCRIPTION in the words of Jackson, the JSON parser AWS uses."""
    pos = exc.pos
    expecting = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
    token = re.match(r"[A-Za-z0-9_$]*", text[pos:])
    if pos >= len(text):
        message, end = "Unexpected end-of-input", pos
        opener = _unclosed(text)
        if opener is not None:
            kind = "Object" if text[opener] == "{" else "Array"
            start = _jackson_source(text, *_line_column(text, opener + 1))
            message += f": expected close marker for {kind} (start marker at {start})"
    elif token and token.group():
        message = f"Unrecognized token '{token.group()}': was expecting {expecting}"
        end = pos + len(token.group())
    else:
        char = text[pos]
        wanted = {
            "Expecting property name enclosed in double quotes": (
                "was expecting double-quote to start field name"
            ),
            "Expecting ':' delimiter": "was expecting a colon to separate field name and value",
            "Expecting ',' delimiter": "was expecting comma to separate entries",
        }.get(exc.msg, f"expected a valid value {expecting}")
        message = f"Unexpected character ('{char}' (code {ord(char)})): {wanted}"
        end = pos + 1
    location = _jackson_source(text, *_line_column(text, end))
    return Diagnostic(INVALID_JSON_DESCRIPTION, f"{message}\n at {location}", location)


def _line_column(text: str, end: int) -> tuple[int, int]:
    """Jackson's 1-based line and column of the character after ``text[:end]``."""
    return text.count("\n", 0, end) + 1, end - (text.rfind("\n", 0, end) + 1) + 1


def _jackson_source(text: str, line: int, column: int) -> str:
    if len(text) > _JACKSON_SOURCE_LIMIT:
        extra = len(text) - _JACKSON_SOURCE_LIMIT
        quoted = f'"{text[:_JACKSON_SOURCE_LIMIT]}"[truncated {extra} chars]'
    else:
        quoted = f'"{text}"'
    return f"[Source: (String){quoted}; line: {line}, column: {column}]"


def _unclosed(text: str) -> int | None:
    """Index of the innermost ``{`` or ``[`` left open at the end of ``text``."""
    stack: list[int] = []
    in_string = escaped = False
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(i)
        elif char in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else None


# -- compilation -------------------------------------------------------------------------------


def _jsonata_compile_template(value: Any, *, field: str) -> Any:
    # asl.jsonata is written in parallel with this module; it is imported when a JSONata
    # field is first compiled, so that JSONPath definitions do not depend on it.
    jsonata = importlib.import_module("flowstate.asl.jsonata")
    return jsonata.compile_template(value, field=field)


# JSONPath-mode fields compiled as paths, and the model attribute each one fills.
_PATH_FIELDS = {
    "TimeoutSecondsPath": "timeout_seconds_path",
    "HeartbeatSecondsPath": "heartbeat_seconds_path",
    "SecondsPath": "seconds_path",
    "TimestampPath": "timestamp_path",
    "ItemsPath": "items_path",
    "MaxConcurrencyPath": "max_concurrency_path",
    "ToleratedFailureCountPath": "tolerated_failure_count_path",
    "ToleratedFailurePercentagePath": "tolerated_failure_percentage_path",
}
# JSONPath-mode payload templates.
_TEMPLATE_FIELDS = {
    "Parameters": "parameters",
    "ResultSelector": "result_selector",
    "ItemSelector": "item_selector",
    "Credentials": "credentials",
}
# Fields that hold a literal in JSONPath and may hold "{% %}" in JSONata: (literal, expression).
_EXPRESSION_FIELDS = {
    "TimeoutSeconds": ("timeout_seconds", "timeout_seconds_expr"),
    "HeartbeatSeconds": ("heartbeat_seconds", "heartbeat_seconds_expr"),
    "Seconds": ("seconds", "seconds_expr"),
    "Timestamp": ("timestamp", "timestamp_expr"),
    "MaxConcurrency": ("max_concurrency", "max_concurrency_expr"),
    "ToleratedFailureCount": ("tolerated_failure_count", "tolerated_failure_count_expr"),
    "ToleratedFailurePercentage": (
        "tolerated_failure_percentage",
        "tolerated_failure_percentage_expr",
    ),
    "Error": ("error", "error_expr"),
    "Cause": ("cause", "cause_expr"),
}
_STATE_CLASSES: dict[str, type[State]] = {
    "Pass": PassState,
    "Task": TaskState,
    "Choice": ChoiceState,
    "Wait": WaitState,
    "Succeed": SucceedState,
    "Fail": FailState,
    "Parallel": ParallelState,
    "Map": MapState,
}


def _json_size(value: Any) -> int:
    """The length of ``value``'s JSON text in UTF-8 (a value JSON cannot hold: too large to
    say, so that the quota check measures it)."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return 1 << 62
    return len(text.encode("utf-8", "surrogatepass"))


class _Builder:
    """Builds the model from a structurally valid document, compiling dynamic fields.

    Each ``InvalidExpression`` becomes a diagnostic at the field's location.
    """

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def compile(
        self, compiler: Callable[..., Any], value: Any, location: str, **kwargs: Any
    ) -> Any:
        try:
            return compiler(value, **kwargs)
        except InvalidExpression as exc:
            self.diagnostics.append(Diagnostic(exc.code, exc.message, location))
            return None

    def machine(self, doc: Mapping[str, Any], ptr: str, *, top_language: str) -> StateMachine:
        states = {
            name: self.state(name, state, f"{ptr}/States/{name}", top_language)
            for name, state in doc["States"].items()
        }
        return StateMachine(
            start_at=doc["StartAt"],
            states=states,
            query_language=top_language,
            comment=doc.get("Comment"),
            timeout_seconds=doc.get("TimeoutSeconds"),
            version=doc.get("Version"),
            raw=doc,
        )

    def state(self, name: str, state: Mapping[str, Any], ptr: str, top_language: str) -> State:
        kind = state["Type"]
        language = state.get("QueryLanguage", top_language)
        fields: dict[str, Any] = {
            "name": name,
            "type": kind,
            "query_language": language,
            "comment": state.get("Comment"),
            "next": state.get("Next"),
            "end": state.get("End") is True,
            "raw": state,
        }
        if language == JSONATA:
            self.jsonata_fields(state, ptr, fields)
        else:
            self.jsonpath_fields(state, ptr, fields)
        if "Retry" in state:
            fields["retry"] = tuple(self.retrier(r) for r in state["Retry"])
        if "Catch" in state:
            fields["catch"] = tuple(
                self.catcher(c, f"{ptr}/Catch[{i}]", language) for i, c in enumerate(state["Catch"])
            )
        if kind == "Task":
            fields["resource"] = state["Resource"]
        elif kind == "Choice":
            fields["default"] = state.get("Default")
            fields["choices"] = tuple(
                self.choice(rule, f"{ptr}/Choices[{i}]", language)
                for i, rule in enumerate(state["Choices"])
            )
        elif kind == "Parallel":
            fields["branches"] = tuple(
                self.machine(b, f"{ptr}/Branches[{i}]", top_language=top_language)
                for i, b in enumerate(state["Branches"])
            )
        elif kind == "Map":
            self.map_fields(state, ptr, top_language, fields)
        cls = _STATE_CLASSES[kind]
        # Fields that do not apply to this state type stay out (the checker refused them).
        allowed = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in fields.items() if k in allowed})

    def jsonpath_fields(self, state: Mapping[str, Any], ptr: str, fields: dict[str, Any]) -> None:
        for name, attribute in (("InputPath", "input_path"), ("OutputPath", "output_path")):
            if name in state:
                if state[name] is None:
                    # AWS: a null InputPath/OutputPath gives the state (or next state) {}.
                    fields[f"{attribute}_is_null"] = True
                else:
                    fields[attribute] = self.compile(
                        paths.compile_path, state[name], f"{ptr}/{name}"
                    )
        if "ResultPath" in state:
            if state["ResultPath"] is None:
                fields["result_path_is_null"] = True  # AWS: the result is discarded
            else:
                fields["result_path"] = self.compile(
                    paths.compile_reference_path, state["ResultPath"], f"{ptr}/ResultPath"
                )
        for name, attribute in _PATH_FIELDS.items():
            if name in state:
                fields[attribute] = self.compile(paths.compile_path, state[name], f"{ptr}/{name}")
        for name in ("ErrorPath", "CausePath"):
            # AWS: ErrorPath and CausePath take a reference path or an intrinsic function.
            if name in state:
                attribute = "error_path" if name == "ErrorPath" else "cause_path"
                fields[attribute] = self.path_or_intrinsic(state[name], f"{ptr}/{name}")
        for name, attribute in _TEMPLATE_FIELDS.items():
            if name in state:
                fields[attribute] = self.template(state[name], name, f"{ptr}/{name}")
        if "Assign" in state:
            fields["assign"] = self.template(state["Assign"], "Assign", f"{ptr}/Assign")
        if "Result" in state:
            fields["has_result"] = True
            fields["result"] = state["Result"]
            if state.get("Type") == "Pass":
                fields["result_size"] = _json_size(state["Result"])
        for name, (literal, _) in _EXPRESSION_FIELDS.items():
            if name in state:
                fields[literal] = state[name]

    def jsonata_fields(self, state: Mapping[str, Any], ptr: str, fields: dict[str, Any]) -> None:
        for name, attribute in (
            ("Arguments", "arguments"),
            ("Output", "output"),
            ("Assign", "assign"),
            ("Credentials", "credentials"),
        ):
            if name in state:
                fields[attribute] = self.expression(state[name], name, f"{ptr}/{name}")
        for name, (literal, expression) in _EXPRESSION_FIELDS.items():
            if name not in state:
                continue
            if is_jsonata_expression(state[name]):
                fields[expression] = self.expression(state[name], name, f"{ptr}/{name}")
            else:
                fields[literal] = state[name]

    def map_fields(
        self, state: Mapping[str, Any], ptr: str, top_language: str, fields: dict[str, Any]
    ) -> None:
        language = fields["query_language"]
        processor_field = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        processor = state[processor_field]
        fields["uses_iterator_field"] = processor_field == "Iterator"
        fields["item_processor"] = self.machine(
            processor, f"{ptr}/{processor_field}", top_language=top_language
        )
        config = processor.get("ProcessorConfig") or {}
        fields["processor_mode"] = config.get("Mode", "INLINE")
        fields["execution_type"] = config.get("ExecutionType")
        fields["label"] = state.get("Label")
        for name in ("ItemReader", "ItemBatcher", "ResultWriter"):
            if name in state:
                fields[re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()] = state[name]
        if fields.get("max_concurrency") is None:
            fields.pop("max_concurrency", None)  # the model's default, 0, means unbounded
        if language == JSONATA:
            if "Items" in state:
                # An expression, or a JSON array whose elements may hold expressions.
                fields["items_expr"] = self.expression(state["Items"], "Items", f"{ptr}/Items")
            if "ItemSelector" in state:
                fields["item_selector_expr"] = self.expression(
                    state["ItemSelector"], "ItemSelector", f"{ptr}/ItemSelector"
                )
            fields.pop("item_selector", None)
        elif "Parameters" in state:
            # AWS: in a Map state the legacy Parameters field is what ItemSelector is now.
            fields["item_selector"] = fields.pop("parameters")

    def path_or_intrinsic(self, text: Any, location: str) -> Any:
        if isinstance(text, str) and intrinsics.is_intrinsic(text):
            return self.compile(intrinsics.compile_intrinsic, text, location)
        return self.compile(paths.compile_path, text, location)

    def template(self, value: Any, name: str, location: str) -> Any:
        return self.compile(templates.compile_template, value, location, field=name)

    def expression(self, value: Any, name: str, location: str) -> Any:
        return self.compile(_jsonata_compile_template, value, location, field=name)

    def retrier(self, retrier: Mapping[str, Any]) -> Retrier:
        return Retrier(
            error_equals=tuple(retrier["ErrorEquals"]),
            interval_seconds=retrier.get("IntervalSeconds", 1),
            max_attempts=retrier.get("MaxAttempts", 3),
            backoff_rate=float(retrier.get("BackoffRate", 2.0)),
            max_delay_seconds=retrier.get("MaxDelaySeconds"),
            jitter_strategy=retrier.get("JitterStrategy", "NONE"),
        )

    def catcher(self, catcher: Mapping[str, Any], ptr: str, language: str) -> Catcher:
        fields: dict[str, Any] = {
            "error_equals": tuple(catcher["ErrorEquals"]),
            "next": catcher["Next"],
        }
        if language == JSONATA:
            if "Output" in catcher:
                fields["output"] = self.expression(catcher["Output"], "Output", f"{ptr}/Output")
            if "Assign" in catcher:
                fields["assign"] = self.expression(catcher["Assign"], "Assign", f"{ptr}/Assign")
        else:
            if "ResultPath" in catcher:
                if catcher["ResultPath"] is None:
                    fields["result_path_is_null"] = True
                else:
                    fields["result_path"] = self.compile(
                        paths.compile_reference_path,
                        catcher["ResultPath"],
                        f"{ptr}/ResultPath",
                    )
            if "Assign" in catcher:
                fields["assign"] = self.template(catcher["Assign"], "Assign", f"{ptr}/Assign")
        return Catcher(**fields)

    def choice(self, rule: Mapping[str, Any], ptr: str, language: str) -> ChoiceBranch:
        if language == JSONATA:
            return ChoiceBranch(
                next=rule["Next"],
                condition_expr=self.expression(rule["Condition"], "Condition", f"{ptr}/Condition"),
                output=(
                    self.expression(rule["Output"], "Output", f"{ptr}/Output")
                    if "Output" in rule
                    else None
                ),
                assign=(
                    self.expression(rule["Assign"], "Assign", f"{ptr}/Assign")
                    if "Assign" in rule
                    else None
                ),
            )
        # compile_rule takes the condition alone; the transition and its Assign stay here.
        condition = {k: v for k, v in rule.items() if k not in ("Next", "Assign", "Output")}
        return ChoiceBranch(
            next=rule["Next"],
            condition=self.compile(choice.compile_rule, condition, ptr),
            assign=(
                self.template(rule["Assign"], "Assign", f"{ptr}/Assign")
                if "Assign" in rule
                else None
            ),
        )
