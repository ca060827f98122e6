"""Error vocabulary of the States Language.

Two kinds of failure exist and they never mix:

* ``StatesError`` is an ASL failure *value*: it has an error name (``States.Runtime``,
  ``States.TaskFailed``, a user's ``CustomError``) and a cause, and it is handled by Retry and
  Catch. Raised while a state runs, it is caught by the interpreter and becomes history.
* ``DefinitionError`` is raised when a definition is refused (AWS ``InvalidDefinition``).
"""

from __future__ import annotations

__all__ = [
    "ALL",
    "BRANCH_FAILED",
    "DATA_LIMIT_EXCEEDED",
    "EXCEED_TOLERATED_FAILURE_THRESHOLD",
    "HEARTBEAT_TIMEOUT",
    "INTRINSIC_FAILURE",
    "ITEM_READER_FAILED",
    "NO_CHOICE_MATCHED",
    "PARAMETER_PATH_FAILURE",
    "PERMISSIONS",
    "QUERY_EVALUATION_ERROR",
    "RESULT_PATH_MATCH_FAILURE",
    "RESULT_WRITER_FAILED",
    "RUNTIME",
    "TASK_FAILED",
    "TIMEOUT",
    "DefinitionError",
    "Diagnostic",
    "EvaluationError",
    "InvalidExpression",
    "StatesError",
]

ALL = "States.ALL"
BRANCH_FAILED = "States.BranchFailed"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
ITEM_READER_FAILED = "States.ItemReaderFailed"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
PERMISSIONS = "States.Permissions"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
RESULT_WRITER_FAILED = "States.ResultWriterFailed"
RUNTIME = "States.Runtime"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"


class StatesError(Exception):
    """An ASL failure: an error name and a cause, handled by Retry/Catch.

    The cause is used verbatim in history and in the execution's failure.
    """

    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(error, cause)
        self.error = error
        self.cause = cause

    def __repr__(self) -> str:
        return f"StatesError({self.error!r}, {self.cause!r})"


class EvaluationError(StatesError):
    """A failure while evaluating a path, template, intrinsic or expression of a state.

    ``cause`` holds only the specific part of the message (e.g. ``Invalid path '$.x' : No
    results for path: $['x']``). The interpreter prefixes it with the location AWS reports:
    ``An error occurred while executing the state 'S' (entered at the event id #2). ``.
    ``location`` names the field for JSONata failures (``Output/result``), as AWS records it
    in the ``EvaluationFailed`` history event.
    """

    def __init__(self, error: str, cause: str | None = None, *, location: str | None = None):
        super().__init__(error, cause)
        self.location = location


class Diagnostic:
    """One finding of definition validation, as ValidateStateMachineDefinition reports it."""

    __slots__ = ("code", "location", "message", "severity")

    def __init__(
        self,
        code: str,
        message: str,
        location: str | None = None,
        severity: str = "ERROR",
    ) -> None:
        self.code = code
        self.message = message
        self.location = location
        self.severity = severity

    def to_json(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message, "severity": self.severity}
        if self.location is not None:
            out["location"] = self.location
        return out

    def __repr__(self) -> str:
        return f"Diagnostic({self.code!r}, {self.message!r}, {self.location!r})"


class DefinitionError(Exception):
    """A definition AWS would refuse: ``code`` (``InvalidDefinition``) and AWS's message."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.code = "InvalidDefinition"
        self.message = message
        self.diagnostics = diagnostics or []


class InvalidExpression(ValueError):
    """A path, template, intrinsic function, JSONata expression or Choice rule that does not
    compile. ``message`` is AWS's text *without* the location; the parser appends
    `` at /States/...`` (the JSON Pointer of the field).
    """

    def __init__(self, message: str, *, code: str = "SCHEMA_VALIDATION_FAILED") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
