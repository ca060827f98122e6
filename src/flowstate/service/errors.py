"""Errors every front end reports the same way: an AWS error code, a message, an HTTP status.

The service raises ``ServiceError``; the HTTP API turns it into ``{"__type", "message"}`` with
``status``, the CLI into a message and an exit code. Codes are AWS's own (botocore's Step
Functions model lists them); the message says what and where.
"""

from __future__ import annotations

__all__ = ["ServiceError"]


class ServiceError(Exception):
    """A request the service refuses, as AWS refuses it (``code`` is AWS's exception name)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


# The codes used across the service, named once so a typo is a NameError, not a wrong answer.
VALIDATION = "ValidationException"
INVALID_ARN = "InvalidArn"
INVALID_NAME = "InvalidName"
INVALID_DEFINITION = "InvalidDefinition"
INVALID_EXECUTION_INPUT = "InvalidExecutionInput"
INVALID_TOKEN = "InvalidToken"
INVALID_OUTPUT = "InvalidOutput"
STATE_MACHINE_DOES_NOT_EXIST = "StateMachineDoesNotExist"
STATE_MACHINE_ALREADY_EXISTS = "StateMachineAlreadyExists"
STATE_MACHINE_DELETING = "StateMachineDeleting"
STATE_MACHINE_TYPE_NOT_SUPPORTED = "StateMachineTypeNotSupported"
EXECUTION_DOES_NOT_EXIST = "ExecutionDoesNotExist"
EXECUTION_ALREADY_EXISTS = "ExecutionAlreadyExists"
EXECUTION_NOT_REDRIVABLE = "ExecutionNotRedrivable"
EXECUTION_LIMIT_EXCEEDED = "ExecutionLimitExceeded"
RESOURCE_NOT_FOUND = "ResourceNotFound"
CONFLICT = "ConflictException"
SERVICE_QUOTA_EXCEEDED = "ServiceQuotaExceededException"
TOO_MANY_TAGS = "TooManyTags"
ACTIVITY_DOES_NOT_EXIST = "ActivityDoesNotExist"
TASK_DOES_NOT_EXIST = "TaskDoesNotExist"
TASK_TIMED_OUT = "TaskTimedOut"
SERVICE_UNAVAILABLE = "ServiceUnavailable"

# The HTTP front end's own refusals (AWS JSON 1.0 protocol errors, before the service is asked).
SERIALIZATION = "SerializationException"
UNKNOWN_OPERATION = "UnknownOperationException"
INTERNAL_FAILURE = "InternalFailure"

# The control plane's refusals (state machines, versions, aliases, activities).
MISSING_REQUIRED_PARAMETER = "MissingRequiredParameter"
INVALID_LOGGING_CONFIGURATION = "InvalidLoggingConfiguration"
INVALID_ENCRYPTION_CONFIGURATION = "InvalidEncryptionConfiguration"
ACTIVITY_ALREADY_EXISTS = "ActivityAlreadyExists"
