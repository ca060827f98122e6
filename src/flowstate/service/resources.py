"""What every catalog operation shares: the store, the clock, finding a resource by its ARN,
publishing a version, and AWS's words for "no such thing".

The catalog's operations live in one class per concept (``machines``, ``versions``,
``aliases``, ``tags``, ``activities``), each a ``Resources``; ``catalog.Catalog`` joins them.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from flowstate.service.arns import Partition, StateMachineRef, parse_state_machine_arn
from flowstate.service.configuration import DEFAULT_LOGGING, DEFAULT_TRACING
from flowstate.service.errors import (
    INVALID_ARN,
    INVALID_TOKEN,
    RESOURCE_NOT_FOUND,
    SERVICE_QUOTA_EXCEEDED,
    STATE_MACHINE_DOES_NOT_EXIST,
    TOO_MANY_TAGS,
    VALIDATION,
    ServiceError,
)
from flowstate.storage import InvalidToken, Page, StateMachineRecord, Store
from flowstate.storage.catalog import LimitExceeded, VersionRecord

__all__ = [
    "INITIAL_REVISION",
    "MAX_ALIASES",
    "MAX_TAGS",
    "MAX_VERSIONS",
    "Resources",
    "activity_name",
    "check_arn_prefix",
    "does_not_exist",
    "json_object",
    "not_found",
    "state_machine_ref",
    "too_many_tags",
]

# AWS quotas: 50 tags per resource, 1000 versions and 100 aliases per state machine.
MAX_TAGS = 50
MAX_VERSIONS = 1000
MAX_ALIASES = 100

# AWS: PublishStateMachineVersion's revisionId for a machine never updated since its creation.
INITIAL_REVISION = "INITIAL"

T = TypeVar("T")

_ACTIVITY_ARN = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:activity:(?P<name>[^:]+)$")


def check_arn_prefix(arn: str) -> None:
    # Recorded AWS: a string that is not an ARN at all is refused before its resource type.
    if not arn.startswith("arn:"):
        raise ServiceError(INVALID_ARN, f"Invalid Arn: 'Invalid ARN prefix: {arn}'")


def state_machine_ref(arn: str) -> StateMachineRef:
    """The machine, version or alias ``arn`` names; InvalidArn otherwise."""
    check_arn_prefix(arn)
    ref = parse_state_machine_arn(arn)
    if "/" in ref.name:
        # AWS: "If you provide a qualified state machine ARN that refers to a Distributed Map
        # state, the request fails with ValidationException."
        raise ServiceError(
            VALIDATION, f"'{arn}' refers to a Distributed Map state, not to a state machine"
        )
    return ref


def activity_name(arn: str) -> str:
    check_arn_prefix(arn)
    match = _ACTIVITY_ARN.match(arn)
    if match is None:
        raise ServiceError(
            INVALID_ARN, f"Invalid Arn: 'Resource type not valid in this context: {arn}'"
        )
    return match["name"]


def does_not_exist(arn: str) -> ServiceError:
    return ServiceError(STATE_MACHINE_DOES_NOT_EXIST, f"State Machine Does Not Exist: '{arn}'")


def not_found(arn: str) -> ServiceError:
    return ServiceError(RESOURCE_NOT_FOUND, f"Resource not found: '{arn}'")


def json_object(text: str) -> dict[str, Any]:
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {}


class Resources:
    def __init__(
        self,
        store: Store,
        partition: Partition,
        *,
        now: Callable[[], datetime],
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.partition = partition
        self._clock = now
        self._rng = rng if rng is not None else random.Random()

    def _now(self) -> datetime:
        moment = self._clock()
        if moment.tzinfo is None:
            raise ValueError(f"the clock gave a naive datetime {moment.isoformat()}")
        return moment.astimezone(UTC)

    @staticmethod
    def _new_revision_id() -> str:
        return str(uuid.uuid4())

    def _machine(self, arn: str, shown: str | None = None) -> StateMachineRecord:
        machine = self.store.get_state_machine(arn)
        if machine is None:
            raise does_not_exist(shown or arn)
        return machine

    @staticmethod
    def _page(read: Callable[[], Page[T]]) -> Page[T]:
        try:
            return read()
        except InvalidToken as exc:
            raise ServiceError(INVALID_TOKEN, str(exc)) from None

    # --- the configuration a machine or version describes ----------------------------------

    @staticmethod
    def _visible_revision(attributes: Mapping[str, Any], revision_id: str) -> str | None:
        """The revisionId AWS shows: none until the machine's first effective update."""
        return None if revision_id == attributes.get("initialRevisionId") else revision_id

    @staticmethod
    def _configuration(attributes: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "loggingConfiguration": attributes.get("loggingConfiguration", DEFAULT_LOGGING),
            "tracingConfiguration": attributes.get("tracingConfiguration", DEFAULT_TRACING),
        }

    # --- shared writes --------------------------------------------------------------------

    def _publish(self, machine: StateMachineRecord, description: str | None) -> VersionRecord:
        """The version of ``machine``'s current revision, published now unless it exists."""
        attributes = json_object(machine.attributes)
        snapshot = {
            key: attributes[key]
            for key in (
                "loggingConfiguration",
                "tracingConfiguration",
                "encryptionConfiguration",
                "initialRevisionId",
            )
            if key in attributes
        }
        draft = VersionRecord(
            state_machine_arn=machine.arn,
            version=0,
            revision_id=machine.revision_id,
            definition=machine.definition,
            role_arn=machine.role_arn,
            created_at=self._now(),
            description=description,
            attributes=json.dumps(snapshot, separators=(",", ":")),
        )
        try:
            version, _ = self.store.publish_version(draft, MAX_VERSIONS)
        except LimitExceeded as exc:
            raise ServiceError(
                SERVICE_QUOTA_EXCEEDED,
                f"Cannot publish a version of '{machine.arn}': it already has {exc.limit} "
                "versions, the maximum. Delete unused ones with DeleteStateMachineVersion.",
            ) from None
        return version

    @staticmethod
    def _tag_map(tags: Sequence[Mapping[str, Any]], resource_arn: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for i, tag in enumerate(tags, start=1):
            if tag.get("key") is None:
                raise ServiceError(
                    VALIDATION,
                    f"1 validation error detected: Value null at 'tags.{i}.member.key' failed "
                    "to satisfy constraint: Member must not be null",
                )
            found[str(tag["key"])] = str(tag.get("value") or "")
        if len(found) > MAX_TAGS:
            raise too_many_tags(resource_arn, len(found))
        return found

    def _add_tags(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        try:
            self.store.add_tags(resource_arn, tags, MAX_TAGS)
        except LimitExceeded:
            known = self.store.get_tags(resource_arn).keys()
            raise too_many_tags(resource_arn, len(known | tags.keys())) from None


def too_many_tags(resource_arn: str, count: int) -> ServiceError:
    return ServiceError(
        TOO_MANY_TAGS,
        f"Too many tags: '{resource_arn}' would have {count} tags; the limit is {MAX_TAGS}.",
    )
