"""Structural validation of a definition, as AWS CreateStateMachine and
ValidateStateMachineDefinition perform it.

``check_definition`` walks the decoded JSON document and reports every problem as a
``Diagnostic`` with AWS's code, message and JSON Pointer location. It does not compile
expressions: ``asl.parse`` does that and adds its own diagnostics.

Messages marked "AWS verbatim" were recorded against AWS; the others follow the same style.
Locations follow AWS: array elements are written ``Choices[0]`` (not ``Choices/0``), and
messages about a field a state may not carry point at the state, not the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flowstate.asl import schema
from flowstate.asl.errors import ALL, Diagnostic
from flowstate.asl.model import JSONATA, JSONPATH

__all__ = [
    "DUPLICATE_STATE_NAME",
    "INVALID_JSON_DESCRIPTION",
    "INVALID_LABEL_NAME",
    "MISSING_END_STATE",
    "MISSING_TRANSITION_TARGET",
    "SCHEMA_VALIDATION_FAILED",
    "check_definition",
    "is_jsonata_expression",
    "validate_definition",
]

SCHEMA_VALIDATION_FAILED = "SCHEMA_VALIDATION_FAILED"
INVALID_JSON_DESCRIPTION = "INVALID_JSON_DESCRIPTION"
MISSING_TRANSITION_TARGET = "MISSING_TRANSITION_TARGET"
MISSING_END_STATE = "MISSING_END_STATE"
DUPLICATE_STATE_NAME = "DUPLICATE_STATE_NAME"
INVALID_LABEL_NAME = "INVALID_LABEL_NAME"

_TYPE_NAMES = {
    str: "STRING",
    bool: "BOOLEAN",
    int: "INTEGER",
    float: "NUMBER",
    dict: "OBJECT",
    list: "ARRAY",
}

# RFC 3339 date-time; the calendar itself is checked with datetime below.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def validate_definition(
    definition: str, *, state_machine_type: str = "STANDARD"
) -> list[Diagnostic]:
    """Diagnostics for ``definition`` as ValidateStateMachineDefinition reports them.

    An empty list means AWS would accept the definition.
    """
    # parse imports this module for check_definition; importing it here avoids the cycle.
    from flowstate.asl.parse import analyse

    return analyse(definition, state_machine_type=state_machine_type).diagnostics


def is_jsonata_expression(value: Any) -> bool:
    """``{% ... %}``: AWS treats a string as a JSONata expression only in exactly this form."""
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}")


def check_definition(
    document: Any, *, state_machine_type: str = "STANDARD"
) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """Structural diagnostics of a decoded definition.

    Returns ``(diagnostics, label_errors)``. Map ``Label`` problems are reported by AWS in a
    later phase with a message of their own (see ``asl.parse``), so they are kept apart.
    """
    checker = _Checker(state_machine_type)
    if not isinstance(document, Mapping):
        checker.error("Definition must be a valid JSON object", None)
        return checker.diagnostics, []
    top = document.get("QueryLanguage", JSONPATH)
    if top not in (JSONPATH, JSONATA):
        top = JSONPATH  # the enum error is reported by _machine
    checker.machine(document, "", top_language=top, kind="root")
    return checker.diagnostics + checker.graph, checker.labels


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, Mapping):
        return "OBJECT"
    if isinstance(value, list):
        return "ARRAY"
    return _TYPE_NAMES.get(type(value), "NULL")


def _fields_list(names: list[str]) -> str:
    return "[" + ", ".join(names) + "]"


class _Checker:
    def __init__(self, state_machine_type: str) -> None:
        self.is_express = state_machine_type == "EXPRESS"
        self.diagnostics: list[Diagnostic] = []
        self.graph: list[Diagnostic] = []  # transition and naming problems come after schema
        self.labels: list[Diagnostic] = []
        self.seen_names: set[str] = set()

    # -- reporting ---------------------------------------------------------------------------

    def error(
        self, message: str, location: str | None, code: str = SCHEMA_VALIDATION_FAILED
    ) -> None:
        self.diagnostics.append(Diagnostic(code, message, location))

    def expect(self, value: Any, kind: str, location: str) -> bool:
        """Report ``Expected value of type [KIND]`` unless ``value`` is of that JSON type."""
        actual = _kind(value)
        if actual == kind or (kind == "NUMBER" and actual == "INTEGER"):
            return True
        self.error(f"Expected value of type [{kind}]", location)
        return False

    def integer(
        self, value: Any, location: str, *, minimum: int, maximum: int = 99_999_999
    ) -> None:
        if self.expect(value, "INTEGER", location):
            self.range(value, location, minimum, maximum)

    def number(self, value: Any, location: str, *, minimum: float, maximum: float) -> None:
        if self.expect(value, "NUMBER", location):
            self.range(value, location, minimum, maximum)

    def range(self, value: float, location: str, minimum: float, maximum: float) -> None:
        if value < minimum:
            self.error(f"Number must be greater than or equal to {minimum}", location)
        elif value > maximum:
            self.error(f"Number must be less than or equal to {maximum}", location)

    def required(self, obj: Mapping[str, Any], names: list[str], location: str) -> bool:
        missing = [n for n in names if n not in obj]
        if missing:
            # AWS verbatim: "These fields are required: [States, StartAt] at /"
            self.error(f"These fields are required: {_fields_list(missing)}", location or "/")
        return not missing

    def unsupported(self, obj: Mapping[str, Any], allowed: frozenset[str], location: str) -> None:
        for name in obj:
            if name not in allowed:
                self.error(f"Field '{name}' is not supported", location or "/")

    def exclusive(self, obj: Mapping[str, Any], names: tuple[str, ...], location: str) -> None:
        present = [n for n in names if n in obj]
        if len(present) > 1:
            self.error(
                f"Only one of the fields {_fields_list(list(names))} can be set",
                f"{location}/{present[0]}",
            )

    # -- machines (top level, Parallel branches, Map processors) -----------------------------

    def machine(self, doc: Mapping[str, Any], ptr: str, *, top_language: str, kind: str) -> None:
        if kind == "root":
            allowed = schema.MACHINE_FIELDS
        elif kind == "processor":
            allowed = frozenset({"Comment", "StartAt", "States", "ProcessorConfig"})
        else:
            allowed = frozenset({"Comment", "StartAt", "States"})
        self.unsupported(doc, allowed, ptr)
        # AWS verbatim order: "These fields are required: [States, StartAt]".
        self.required(doc, ["States", "StartAt"], ptr)
        if kind == "root":
            if "QueryLanguage" in doc and self.expect(
                doc["QueryLanguage"], "STRING", "/QueryLanguage"
            ):
                self.enum(doc["QueryLanguage"], (JSONPATH, JSONATA), "/QueryLanguage")
            for name in ("Comment", "Version"):
                if name in doc:
                    self.expect(doc[name], "STRING", f"/{name}")
            if "TimeoutSeconds" in doc:
                self.integer(doc["TimeoutSeconds"], "/TimeoutSeconds", minimum=0)
        if "ProcessorConfig" in doc:
            self.processor_config(doc["ProcessorConfig"], f"{ptr}/ProcessorConfig")
        start_at = doc.get("StartAt")
        if "StartAt" in doc:
            self.expect(start_at, "STRING", f"{ptr}/StartAt")
        states = doc.get("States")
        if states is None or not self.expect(states, "OBJECT", f"{ptr}/States"):
            return
        transitions: dict[str, list[tuple[str, str]]] = {}
        terminals = 0
        for name, state in states.items():
            state_ptr = f"{ptr}/States/{name}"
            if name in self.seen_names:
                # AWS: state names are unique across the whole machine, branches included.
                self.graph.append(
                    Diagnostic(DUPLICATE_STATE_NAME, f"Duplicate State name: {name}", state_ptr)
                )
            self.seen_names.add(name)
            if len(name) > schema.MAX_STATE_NAME_LENGTH:
                self.error(
                    f"State name exceeds the maximum length of {schema.MAX_STATE_NAME_LENGTH}"
                    " characters",
                    state_ptr,
                )
            if not self.expect(state, "OBJECT", state_ptr):
                continue
            transitions[name] = self.state(state, state_ptr, top_language)
            if state.get("End") is True or state.get("Type") in ("Succeed", "Fail"):
                terminals += 1
        self.check_graph(ptr, start_at, states, transitions, terminals)

    def check_graph(
        self,
        ptr: str,
        start_at: Any,
        states: Mapping[str, Any],
        transitions: dict[str, list[tuple[str, str]]],
        terminals: int,
    ) -> None:
        # AWS verbatim: "MISSING_TRANSITION_TARGET: Missing 'Next' target: pass3 at
        # /States/pass1/Next" -- the word is 'Next' whatever field (Default, Catch) named it.
        if isinstance(start_at, str) and start_at not in states:
            self.graph.append(
                Diagnostic(
                    MISSING_TRANSITION_TARGET,
                    f"Missing 'Next' target: {start_at}",
                    f"{ptr}/StartAt",
                )
            )
        for targets in transitions.values():
            for target, location in targets:
                if target not in states:
                    self.graph.append(
                        Diagnostic(
                            MISSING_TRANSITION_TARGET, f"Missing 'Next' target: {target}", location
                        )
                    )
        if not states:
            return
        if terminals == 0:
            # AWS reports this without a location, and then skips the reachability walk.
            self.graph.append(Diagnostic(MISSING_END_STATE, "Workflow has no terminal state"))
            return
        if not isinstance(start_at, str) or start_at not in states:
            return
        reached = {start_at}
        pending = [start_at]
        while pending:
            for target, _ in transitions.get(pending.pop(), ()):
                if target in states and target not in reached:
                    reached.add(target)
                    pending.append(target)
        for name in states:
            if name not in reached:
                # AWS verbatim: 'State "pass2" is not reachable.'
                self.graph.append(
                    Diagnostic(
                        MISSING_TRANSITION_TARGET,
                        f'State "{name}" is not reachable.',
                        f"{ptr}/States/{name}",
                    )
                )

    def processor_config(self, config: Any, ptr: str) -> None:
        if not self.expect(config, "OBJECT", ptr):
            return
        self.unsupported(config, frozenset({"Mode", "ExecutionType"}), ptr)
        if "Mode" in config:
            self.enum(config["Mode"], ("INLINE", "DISTRIBUTED"), f"{ptr}/Mode")
        if "ExecutionType" in config:
            self.enum(config["ExecutionType"], ("STANDARD", "EXPRESS"), f"{ptr}/ExecutionType")

    def enum(self, value: Any, allowed: tuple[str, ...], location: str) -> None:
        if value not in allowed:
            self.error(
                f"Value should be one of the following: {_fields_list(list(allowed))}", location
            )

    # -- states ------------------------------------------------------------------------------

    def state(self, state: Mapping[str, Any], ptr: str, top_language: str) -> list[tuple[str, str]]:
        """Check one state; return its transitions as ``(target, location)`` pairs."""
        if not self.required(state, ["Type"], ptr):
            return []
        kind = state["Type"]
        if kind not in schema.STATE_TYPES:
            self.enum(kind, schema.STATE_TYPES, f"{ptr}/Type")
            return []
        language = top_language
        if "QueryLanguage" in state:
            value = state["QueryLanguage"]
            if self.expect(value, "STRING", f"{ptr}/QueryLanguage"):
                self.enum(value, (JSONPATH, JSONATA), f"{ptr}/QueryLanguage")
            if value == JSONPATH and top_language == JSONATA:
                # AWS: a JSONata machine cannot be reverted to JSONPath one state at a time.
                self.error(
                    "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state"
                    " machine",
                    ptr,
                )
                return self.transitions(state, ptr)
            if value in (JSONPATH, JSONATA):
                language = value
        self.fields(state, kind, language, ptr)
        self.expect_strings(state, ("Comment", "Next", "Default"), ptr)
        self.next_or_end(state, kind, ptr)
        getattr(self, f"state_{kind.lower()}")(state, ptr, language, top_language)
        if "Retry" in state:
            self.retriers(state["Retry"], f"{ptr}/Retry")
        if "Catch" in state:
            self.catchers(state["Catch"], f"{ptr}/Catch", language)
        return self.transitions(state, ptr)

    def fields(self, state: Mapping[str, Any], kind: str, language: str, ptr: str) -> None:
        other = schema.JSONATA_ONLY[kind] if language == JSONPATH else schema.JSONPATH_ONLY[kind]
        other_name = JSONATA if language == JSONPATH else JSONPATH
        for name in state:
            if name in other:
                # AWS verbatim, located at the state rather than the field.
                self.error(
                    f"The QueryLanguage is set to '{language}', but field '{name}' is only"
                    f" supported for the '{other_name}' QueryLanguage",
                    ptr,
                )
            elif name not in schema.STATE_FIELDS[kind]:
                self.error(f"Field '{name}' is not supported", ptr)

    def expect_strings(self, obj: Mapping[str, Any], names: tuple[str, ...], ptr: str) -> None:
        for name in names:
            if name in obj:
                self.expect(obj[name], "STRING", f"{ptr}/{name}")

    def next_or_end(self, state: Mapping[str, Any], kind: str, ptr: str) -> None:
        if kind in ("Choice", "Succeed", "Fail"):
            return
        if "End" in state:
            self.expect(state["End"], "BOOLEAN", f"{ptr}/End")
        has_next = "Next" in state
        has_end = state.get("End") is True
        if has_next == has_end:
            self.error("Exactly one of the fields [Next, End] is required", ptr)

    def transitions(self, state: Mapping[str, Any], ptr: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if isinstance(state.get("Next"), str):
            found.append((state["Next"], f"{ptr}/Next"))
        if isinstance(state.get("Default"), str):
            found.append((state["Default"], f"{ptr}/Default"))
        for field in ("Choices", "Catch"):
            items = state.get(field)
            if isinstance(items, list):
                for i, item in enumerate(items):
                    if isinstance(item, Mapping) and isinstance(item.get("Next"), str):
                        found.append((item["Next"], f"{ptr}/{field}[{i}]/Next"))
        return found

    def jsonata_or_integer(
        self, state: Mapping[str, Any], name: str, ptr: str, language: str, *, minimum: int
    ) -> None:
        """A field that is an integer, or in a JSONata state also a ``{% %}`` expression."""
        if name not in state:
            return
        value = state[name]
        if language == JSONATA and is_jsonata_expression(value):
            return
        self.integer(value, f"{ptr}/{name}", minimum=minimum)

    def state_pass(self, state: Mapping[str, Any], ptr: str, language: str, top: str) -> None:
        pass

    def state_succeed(self, state: Mapping[str, Any], ptr: str, language: str, top: str) -> None:
        pass

    def state_task(self, state: Mapping[str, Any], ptr: str, language: str, top: str) -> None:
        self.required(state, ["Resource"], ptr)
        if "Resource" in state and self.expect(state["Resource"], "STRING", f"{ptr}/Resource"):
            self.resource(state["Resource"], f"{ptr}/Resource")
        self.jsonata_or_integer(state, "TimeoutSeconds", ptr, language, minimum=1)
        self.jsonata_or_integer(state, "HeartbeatSeconds", ptr, language, minimum=1)
        self.exclusive(state, ("TimeoutSeconds", "TimeoutSecondsPath"), ptr)
        self.exclusive(state, ("HeartbeatSeconds", "HeartbeatSecondsPath"), ptr)
        self.expect_strings(state, ("TimeoutSecondsPath", "HeartbeatSecondsPath"), ptr)
        if "Credentials" in state:
            credentials = state["Credentials"]
            location = f"{ptr}/Credentials"
            if self.expect(credentials, "OBJECT", location) and not (
                "RoleArn" in credentials or "RoleArn.$" in credentials
            ):
                # AWS verbatim.
                self.error("The field 'RoleArn' is required but was missing", location)

    def resource(self, resource: str, location: str) -> None:
        if schema.ACTIVITY_ARN.match(resource):
            if self.is_express:
                # AWS verbatim.
                self.error("Express state machine does not support Activity ARN", location)
            return
        match = schema.TASK_RESOURCE.match(resource)
        if match and match["service"] != "aws-sdk" and ":" not in match["action"]:
            service, action = match["service"], match["action"]
            if action not in schema.OPTIMIZED_INTEGRATIONS.get(service, ()):
                # AWS verbatim, with the ARN as written.
                self.error(
                    f"The resource provided {resource} is not recognized. The value is not a"
                    " valid resource ARN, or the resource is not available in this region.",
                    location,
                )
                return
        suffix = match["suffix"] if match else None
        if self.is_express and suffix:
            pattern = ".sync" if suffix.startswith(".sync") else suffix
            # AWS verbatim, trailing space included.
            self.error(
                f"Express state machine does not support '{pattern}' service integration ",
                location,
            )

    def state_choice(self, state: Mapping[str, Any], ptr: str, language: str, top: str) -> None:
        if not self.required(state, ["Choices"], ptr):
            return
        choices = state["Choices"]
        if not self.expect(choices, "ARRAY", f"{ptr}/Choices"):
            return
        if not choices:
            self.error("Array must contain at least 1 element", f"{ptr}/Choices")
        for i, rule in enumerate(choices):
            rule_ptr = f"{ptr}/Choices[{i}]"
            if not self.expect(rule, "OBJECT", rule_ptr):
                continue
            self.required(rule, ["Next"], rule_ptr)
            self.expect_strings(rule, ("Next", "Comment"), rule_ptr)
            if language == JSONATA:
                allowed = frozenset({"Condition", "Next", "Output", "Assign", "Comment"})
                self.required(rule, ["Condition"], rule_ptr)
                for name in rule:
                    if name not in allowed:
                        self.error(
                            f"The QueryLanguage is set to 'JSONata', but field '{name}' is only"
                            " supported for the 'JSONPath' QueryLanguage"
                            if name != "Condition"
                            else f"Field '{name}' is not supported",
                            rule_ptr,
                        )
            else:
                for name in ("Condition", "Output"):
                    if name in rule:
                        self.error(
                            f"The QueryLanguage is set to 'JSONPath', but field '{name}' is only"
                            " supported for the 'JSONata' QueryLanguage",
                            rule_ptr,
                        )
            # The comparison operators themselves are checked when the rule is compiled.

    def state_wait(self, state: Mapping[str, Any], ptr: str, language: str, top: str) -> None:
        present = [
            n for n in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if n in state
        ]
        if len(present) != 1:
            self.error(
                "Exactly one of the fields [Seconds, SecondsPath, Timestamp, TimestampPath] is"
                " required",
                ptr,
            )
        self.jsonata_or_integer(state, "Seconds", ptr, language, minimum=0)
        self.expect_strings(state, ("SecondsPath", "TimestampPath"), ptr)
        if "Timestamp" in state:
            value = state["Timestamp"]
            location = f"{ptr}/Timestamp"
            # AWS: in a JSONPath state "{% %}" is just a string, and not a timestamp.
            if (
                not (language == JSONATA and is_jsonata_expression(value))
                and self.expect(value, "STRING", location)
                and not _is_rfc3339(value)
            ):
                self.error("String does not match RFC3339 timestamp", location)  # AWS verbatim

    def state_fail(self, state: Mapping[str, Any], ptr: str, language: str, top: str) -> None:
        self.exclusive(state, ("Error", "ErrorPath"), ptr)
        self.exclusive(state, ("Cause", "CausePath"), ptr)
        self.expect_strings(state, ("Error", "ErrorPath", "Cause", "CausePath"), ptr)

    def state_parallel(self, state: Mapping[str, Any], ptr: str, language: str, top: str) -> None:
        if not self.required(state, ["Branches"], ptr):
            return
        branches = state["Branches"]
        if not self.expect(branches, "ARRAY", f"{ptr}/Branches"):
            return
        if not branches:
            self.error("Array must contain at least 1 element", f"{ptr}/Branches")
        for i, branch in enumerate(branches):
            branch_ptr = f"{ptr}/Branches[{i}]"
            if self.expect(branch, "OBJECT", branch_ptr):
                # AWS: branches take the machine's query language, not the Parallel state's.
                self.machine(branch, branch_ptr, top_language=top, kind="branch")

    def state_map(self, state: Mapping[str, Any], ptr: str, language: str, top: str) -> None:
        processor_field = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        self.exclusive(state, ("ItemProcessor", "Iterator"), ptr)
        self.exclusive(state, ("ItemSelector", "Parameters"), ptr)
        if processor_field not in state:
            self.required(state, ["ItemProcessor"], ptr)
        else:
            processor = state[processor_field]
            processor_ptr = f"{ptr}/{processor_field}"
            if self.expect(processor, "OBJECT", processor_ptr):
                # AWS: the processor's states take the machine's query language.
                self.machine(processor, processor_ptr, top_language=top, kind="processor")
        self.jsonata_or_integer(state, "MaxConcurrency", ptr, language, minimum=0)
        self.jsonata_or_integer(state, "ToleratedFailureCount", ptr, language, minimum=0)
        if "ToleratedFailurePercentage" in state:
            value = state["ToleratedFailurePercentage"]
            if not (language == JSONATA and is_jsonata_expression(value)):
                self.number(value, f"{ptr}/ToleratedFailurePercentage", minimum=0, maximum=100)
        for name in ("MaxConcurrency", "ToleratedFailureCount", "ToleratedFailurePercentage"):
            self.exclusive(state, (name, f"{name}Path"), ptr)
        self.expect_strings(
            state,
            (
                "ItemsPath",
                "MaxConcurrencyPath",
                "ToleratedFailureCountPath",
                "ToleratedFailurePercentagePath",
            ),
            ptr,
        )
        for name in ("ItemReader", "ItemBatcher", "ResultWriter"):
            if name in state:
                self.expect(state[name], "OBJECT", f"{ptr}/{name}")
        if "Label" in state and self.expect(state["Label"], "STRING", f"{ptr}/Label"):
            self.label(state["Label"], f"{ptr}/Label")

    def label(self, label: str, location: str) -> None:
        if not label:
            message = "Label cannot be empty"
        elif len(label) > schema.LABEL_MAX_LENGTH:
            message = f"Label cannot exceed {schema.LABEL_MAX_LENGTH} characters"
        else:
            bad = next((c for c in label if c in schema.LABEL_INVALID_CHARACTERS), None)
            if bad is None:
                return
            message = f"Label contains invalid character: {bad!r}"
        self.labels.append(Diagnostic(INVALID_LABEL_NAME, message, location))

    # -- Retry and Catch ---------------------------------------------------------------------

    def error_equals(self, item: Mapping[str, Any], ptr: str, *, is_last: bool, what: str) -> None:
        location = f"{ptr}/ErrorEquals"
        errors = item.get("ErrorEquals")
        if errors is None or not self.expect(errors, "ARRAY", location):
            return
        if not errors:
            self.error("Array must contain at least 1 element", location)
        for i, name in enumerate(errors):
            self.expect(name, "STRING", f"{location}[{i}]")
        if ALL in errors:
            if len(errors) > 1:
                self.error(f"'{ALL}' must appear alone in the ErrorEquals array", location)
            if not is_last:
                self.error(f"A {what} with '{ALL}' must be the last {what} in the array", ptr)

    def retriers(self, retry: Any, ptr: str) -> None:
        if not self.expect(retry, "ARRAY", ptr):
            return
        for i, retrier in enumerate(retry):
            item_ptr = f"{ptr}[{i}]"
            if not self.expect(retrier, "OBJECT", item_ptr):
                continue
            self.unsupported(retrier, schema.RETRIER_FIELDS, item_ptr)
            self.required(retrier, ["ErrorEquals"], item_ptr)
            self.error_equals(retrier, item_ptr, is_last=i == len(retry) - 1, what="retrier")
            if "IntervalSeconds" in retrier:
                self.integer(retrier["IntervalSeconds"], f"{item_ptr}/IntervalSeconds", minimum=1)
            if "MaxAttempts" in retrier:
                self.integer(retrier["MaxAttempts"], f"{item_ptr}/MaxAttempts", minimum=0)
            if "MaxDelaySeconds" in retrier:
                self.integer(
                    retrier["MaxDelaySeconds"],
                    f"{item_ptr}/MaxDelaySeconds",
                    minimum=1,
                    maximum=31_622_400,
                )
            if "BackoffRate" in retrier:
                self.number(
                    retrier["BackoffRate"], f"{item_ptr}/BackoffRate", minimum=1.0, maximum=1e9
                )
            if "JitterStrategy" in retrier:
                self.enum(retrier["JitterStrategy"], ("FULL", "NONE"), f"{item_ptr}/JitterStrategy")

    def catchers(self, catch: Any, ptr: str, language: str) -> None:
        if not self.expect(catch, "ARRAY", ptr):
            return
        for i, catcher in enumerate(catch):
            item_ptr = f"{ptr}[{i}]"
            if not self.expect(catcher, "OBJECT", item_ptr):
                continue
            for name in catcher:
                if name == "ResultPath" and language == JSONATA:
                    self.error(
                        "The QueryLanguage is set to 'JSONata', but field 'ResultPath' is only"
                        " supported for the 'JSONPath' QueryLanguage",
                        item_ptr,
                    )
                elif name == "Output" and language == JSONPATH:
                    self.error(
                        "The QueryLanguage is set to 'JSONPath', but field 'Output' is only"
                        " supported for the 'JSONata' QueryLanguage",
                        item_ptr,
                    )
                elif name not in schema.CATCHER_FIELDS:
                    self.error(f"Field '{name}' is not supported", item_ptr)
            self.required(catcher, ["ErrorEquals", "Next"], item_ptr)
            self.expect_strings(catcher, ("Next",), item_ptr)
            self.error_equals(catcher, item_ptr, is_last=i == len(catch) - 1, what="catcher")


def _is_rfc3339(text: str) -> bool:
    match = _RFC3339.match(text)
    if not match:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        # RFC 3339 allows a leap second (60); datetime does not, so check it as 59.
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return True
