"""The control plane's rows beside the executions: versions, aliases, tags, activities.

``CatalogStore`` is the part of ``Store`` that holds them. The store keeps rows and enforces
only what must hold inside one transaction (the next version number, quotas counted under the
write lock, a version an alias routes to cannot go); what AWS calls the rules and the words of
each refusal belong to the service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from flowstate.storage.errors import StorageError
from flowstate.storage.records import DEFAULT_MAX_RESULTS, Page

__all__ = [
    "ActivityRecord",
    "AliasRecord",
    "CatalogStore",
    "LimitExceeded",
    "Route",
    "VersionInUse",
    "VersionRecord",
    "VersionsMissing",
]


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """A published, immutable snapshot of a state machine's revision."""

    state_machine_arn: str
    version: int
    revision_id: str
    definition: str
    role_arn: str
    created_at: datetime
    description: str | None = None
    # JSON object text: the revision's describe-only configuration (logging, tracing, ...).
    attributes: str = "{}"

    @property
    def arn(self) -> str:
        return f"{self.state_machine_arn}:{self.version}"


@dataclass(frozen=True, slots=True)
class Route:
    """One entry of an alias's routing: a version of the alias's machine and its weight (%)."""

    version: int
    weight: int


@dataclass(frozen=True, slots=True)
class AliasRecord:
    state_machine_arn: str
    name: str
    routes: tuple[Route, ...]
    created_at: datetime
    updated_at: datetime
    description: str | None = None

    @property
    def arn(self) -> str:
        return f"{self.state_machine_arn}:{self.name}"


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    arn: str
    name: str
    created_at: datetime
    attributes: str = "{}"  # JSON object text (encryptionConfiguration)


class LimitExceeded(StorageError):
    """A quota counted inside the write transaction would be exceeded; nothing was written."""

    def __init__(self, what: str, limit: int) -> None:
        self.limit = limit
        super().__init__(f"{what}: the limit of {limit} would be exceeded")


class VersionInUse(StorageError):
    """The version is routed to by aliases (``aliases``, sorted names); it was not deleted."""

    def __init__(self, version_arn: str, aliases: list[str]) -> None:
        self.aliases = aliases
        super().__init__(f"{version_arn} is routed to by aliases {aliases}")


class VersionsMissing(StorageError):
    """An alias would route to versions that do not exist (``versions``); nothing written."""

    def __init__(self, state_machine_arn: str, versions: list[int]) -> None:
        self.versions = versions
        super().__init__(f"{state_machine_arn}: no versions {versions}")


class CatalogStore(Protocol):
    # --- versions -------------------------------------------------------------------------

    def publish_version(self, draft: VersionRecord, limit: int) -> tuple[VersionRecord, bool]:
        """Store ``draft`` under its machine's next version number (``draft.version`` is
        ignored) and return it with True; if a version of ``draft.revision_id`` exists, return
        that one with False instead. Numbers are never reused, even after a delete.
        LimitExceeded when the machine already has ``limit`` versions."""
        ...

    def get_version(self, state_machine_arn: str, version: int) -> VersionRecord | None: ...

    def version_of_revision(
        self, state_machine_arn: str, revision_id: str
    ) -> VersionRecord | None: ...

    def list_versions(
        self,
        state_machine_arn: str,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
    ) -> Page[VersionRecord]:
        """Newest (highest number) first."""
        ...

    def delete_version(self, state_machine_arn: str, version: int) -> bool:
        """False if there was nothing to delete; VersionInUse while an alias routes to it."""
        ...

    # --- aliases --------------------------------------------------------------------------

    def create_alias(self, alias: AliasRecord, limit: int) -> tuple[AliasRecord, bool]:
        """Insert ``alias`` and return it with True, or return the stored alias of that name
        with False (nothing written). VersionsMissing if a routed version does not exist;
        LimitExceeded when the machine already has ``limit`` aliases."""
        ...

    def update_alias(self, alias: AliasRecord) -> bool:
        """Overwrite description, routes and updated_at; False if the alias does not exist.
        VersionsMissing if a routed version does not exist."""
        ...

    def get_alias(self, state_machine_arn: str, name: str) -> AliasRecord | None: ...

    def list_aliases(
        self,
        state_machine_arn: str,
        version: int | None = None,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
    ) -> Page[AliasRecord]:
        """Ordered by name; only those routing to ``version`` when it is given."""
        ...

    def delete_alias(self, state_machine_arn: str, name: str) -> bool: ...

    # --- tags -----------------------------------------------------------------------------

    def get_tags(self, resource_arn: str) -> dict[str, str]:
        """Ordered by key."""
        ...

    def add_tags(self, resource_arn: str, tags: Mapping[str, str], limit: int) -> None:
        """Set ``tags`` (overwriting values of existing keys). LimitExceeded, nothing written,
        if the resource would then have more than ``limit`` tags."""
        ...

    def remove_tags(self, resource_arn: str, keys: Sequence[str]) -> None: ...

    # --- activities -----------------------------------------------------------------------

    def create_activity(self, activity: ActivityRecord) -> tuple[ActivityRecord, bool]:
        """Insert and return it with True, or return the stored one of that ARN with False."""
        ...

    def get_activity(self, arn: str) -> ActivityRecord | None: ...

    def list_activities(
        self, max_results: int = DEFAULT_MAX_RESULTS, next_token: str | None = None
    ) -> Page[ActivityRecord]:
        """Ordered by ARN."""
        ...

    def delete_activity(self, arn: str) -> bool:
        """Remove the activity and its tags; False if there was nothing to delete."""
        ...

    # --- lifecycle ------------------------------------------------------------------------

    def delete_catalog(self, state_machine_arn: str) -> None:
        """Remove a machine's versions, aliases, version counter and tags (DeleteStateMachine;
        the machine row itself goes with ``delete_state_machine``)."""
        ...
