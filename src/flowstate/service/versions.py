"""State machine versions: PublishStateMachineVersion, ListStateMachineVersions,
DeleteStateMachineVersion.

A version is an immutable snapshot of one revision, numbered from 1 per machine; numbers are
never reused after a delete (recorded AWS), and publishing a revision that already has a
version returns that version (AWS: PublishStateMachineVersion is idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowstate.service.errors import CONFLICT, VALIDATION, ServiceError
from flowstate.service.resources import (
    INITIAL_REVISION,
    Resources,
    does_not_exist,
    json_object,
    state_machine_ref,
)
from flowstate.storage.catalog import VersionInUse

__all__ = ["Versions"]


class Versions(Resources):
    def publish_state_machine_version(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["stateMachineArn"]
        ref = state_machine_ref(arn)
        if ref.version is not None or ref.alias is not None:
            raise does_not_exist(arn)
        machine = self._machine(arn)
        expected = request.get("revisionId")
        if expected is not None:
            attributes = json_object(machine.attributes)
            current = self._visible_revision(attributes, machine.revision_id) or INITIAL_REVISION
            if expected != current:
                # Recorded AWS.
                raise ServiceError(
                    CONFLICT,
                    f"Failed to publish the State Machine version for revision {expected}. "
                    f"The current State Machine revision is {current}.",
                )
        version = self._publish(machine, request.get("description"))
        return {"creationDate": version.created_at, "stateMachineVersionArn": version.arn}

    def list_state_machine_versions(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["stateMachineArn"]
        ref = state_machine_ref(arn)
        if ref.version is not None or ref.alias is not None:
            raise ServiceError(
                VALIDATION, f"'{arn}' is not a state machine ARN: versions belong to a machine"
            )
        # AWS lists no StateMachineDoesNotExist for this operation: an unknown machine simply
        # has no versions.
        page = self._page(
            lambda: self.store.list_versions(
                arn, request.get("maxResults") or 0, request.get("nextToken")
            )
        )
        response: dict[str, Any] = {
            "stateMachineVersions": [
                {"stateMachineVersionArn": v.arn, "creationDate": v.created_at} for v in page.items
            ]
        }
        if page.next_token is not None:
            response["nextToken"] = page.next_token
        return response

    def delete_state_machine_version(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["stateMachineVersionArn"]
        ref = state_machine_ref(arn)
        if ref.version is None:
            raise ServiceError(VALIDATION, f"'{arn}' is not a state machine version ARN")
        try:
            # Recorded AWS: deleting a version that does not exist (any more) is no error.
            self.store.delete_version(ref.state_machine_arn, ref.version)
        except VersionInUse as exc:
            # Recorded AWS.
            raise ServiceError(
                CONFLICT,
                "Version to be deleted must not be referenced by an alias. Current list of "
                f"aliases referencing this version: [{', '.join(exc.aliases)}]",
            ) from None
        return {}
