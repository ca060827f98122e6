"""Storage failures. Names follow the AWS error codes the service turns them into."""

from __future__ import annotations

__all__ = [
    "ExecutionAlreadyExists",
    "HistoryConflict",
    "InvalidToken",
    "LeaseLost",
    "SchemaTooNew",
    "StateMachineAlreadyExists",
    "StateMachineDoesNotExist",
    "StorageError",
]


class StorageError(Exception):
    """Base class: the store refused or failed an operation; nothing was written."""


class InvalidToken(StorageError, ValueError):
    """A ``next_token`` this store did not issue for this query."""


class StateMachineAlreadyExists(StorageError):
    pass


class StateMachineDoesNotExist(StorageError):
    pass


class ExecutionAlreadyExists(StorageError):
    def __init__(self, arns: list[str]) -> None:
        self.arns = arns
        super().__init__(f"execution already exists: {', '.join(arns)}")


class LeaseLost(StorageError):
    """The batch tried to update executions that no longer exist or whose ``generation``
    moved on (another node owns them). Nothing in the batch was written."""

    def __init__(self, arns: list[str]) -> None:
        self.arns = arns
        super().__init__(
            "commit refused: these executions no longer exist or are owned by a newer lease "
            f"generation: {', '.join(arns)}"
        )


class HistoryConflict(StorageError):
    """A history event id was written twice: an execution stepped from a stale frame."""


class SchemaTooNew(StorageError):
    def __init__(self, where: str, found: int, known: int) -> None:
        self.found = found
        self.known = known
        super().__init__(
            f"{where}: the database schema is version {found}, but this flowstate knows "
            f"versions up to {known}. Upgrade flowstate to open it; the database was not "
            "modified."
        )
