"""What the HTTP API needs from the engine behind it."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Backend"]


class Backend(Protocol):
    """The engine the HTTP API serves: one call per Step Functions operation.

    The API checks every request against botocore's Step Functions model before ``dispatch``
    sees it, so a backend receives only known operations, with members of the right types and
    within the model's constraints; unknown members are dropped and JSON ``null`` members are
    absent. Refusals are ``flowstate.service.errors.ServiceError``; any other exception
    becomes a 500 ``InternalFailure`` and is logged.
    """

    async def dispatch(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """Run ``operation`` (e.g. ``"StartExecution"``) and return its response members.

        Member names are AWS's (``executionArn``, ``startDate``); datetimes are aware UTC
        ``datetime`` objects, sent as epoch seconds.
        """
        ...

    async def startup(self) -> None:
        """Called once before the server accepts requests."""
        ...

    async def shutdown(self) -> None:
        """Called once after the server has stopped accepting requests."""
        ...

    def health(self) -> dict[str, Any]:
        """A JSON-able status; ``{"status": "ok", ...}`` when the backend can serve requests."""
        ...
