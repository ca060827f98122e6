"""State machines: Create, Describe, Update, Delete, List, ValidateStateMachineDefinition.

Revisions: every effective update gives the machine a new ``revisionId`` (an update that changes
nothing keeps it); a machine never updated since its creation shows none (recorded AWS), and
PublishStateMachineVersion calls that revision ``INITIAL``. Internally every revision, the
first included, has a UUID, which running executions keep pointing at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flowstate.asl import DefinitionError, parse_definition, validate_definition
from flowstate.service.arns import check_name
from flowstate.service.configuration import (
    encryption_configuration,
    logging_configuration,
    tracing_configuration,
)
from flowstate.service.errors import (
    MISSING_REQUIRED_PARAMETER,
    STATE_MACHINE_ALREADY_EXISTS,
    VALIDATION,
    ServiceError,
)
from flowstate.service.resources import (
    Resources,
    check_arn_prefix,
    does_not_exist,
    json_object,
    state_machine_ref,
)
from flowstate.storage import StateMachineAlreadyExists, StateMachineDoesNotExist
from flowstate.storage.records import StateMachineRecord

__all__ = ["StateMachines"]

# AWS: ValidateStateMachineDefinition returns at most 100 diagnostics (0 means 100).
_MAX_DIAGNOSTICS = 100


def _parse(definition: str, machine_type: str) -> None:
    try:
        parse_definition(definition, state_machine_type=machine_type)
    except DefinitionError as exc:
        raise ServiceError(exc.code, exc.message) from None


def _check_version_description(request: Mapping[str, Any]) -> None:
    if request.get("versionDescription") is not None and not request.get("publish"):
        # Recorded AWS (CreateStateMachine).
        raise ServiceError(VALIDATION, "Version description can only be set when publish is true")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class StateMachines(Resources):
    def create_state_machine(self, request: Mapping[str, Any]) -> dict[str, Any]:
        name = request["name"]
        definition = request["definition"]
        role_arn = request["roleArn"]
        machine_type = request.get("type") or "STANDARD"
        publish = bool(request.get("publish", False))
        version_description = request.get("versionDescription")
        check_name(name)
        check_arn_prefix(role_arn)
        _check_version_description(request)
        arn = self.partition.state_machine_arn(name)
        configuration: dict[str, Any] = {
            "loggingConfiguration": logging_configuration(request.get("loggingConfiguration")),
            "tracingConfiguration": tracing_configuration(request.get("tracingConfiguration")),
        }
        encryption = encryption_configuration(request.get("encryptionConfiguration"))
        if encryption is not None:
            configuration["encryptionConfiguration"] = encryption
        tags = self._tag_map(request.get("tags") or (), arn)
        _parse(definition, machine_type)
        # AWS: idempotent on name, definition, type, logging, tracing, encryption, publish and
        # versionDescription; a different roleArn or tags are ignored, not updated.
        created_with = {"publish": publish, "versionDescription": version_description}
        wanted = (machine_type, definition, configuration, created_with)

        existing = self.store.get_state_machine(arn)
        if existing is None:
            now = self._now()
            revision_id = self._new_revision_id()
            attributes = {
                **configuration,
                "initialRevisionId": revision_id,
                "createdWith": created_with,
            }
            record = StateMachineRecord(
                arn=arn,
                name=name,
                type=machine_type,
                definition=definition,
                role_arn=role_arn,
                revision_id=revision_id,
                created_at=now,
                updated_at=now,
                attributes=_dumps(attributes),
            )
            try:
                self.store.create_state_machine(record)
            except StateMachineAlreadyExists:
                existing = self.store.get_state_machine(arn)
            else:
                self._add_tags(arn, tags)
                existing = record
            if existing is None:  # created and deleted again by someone else meanwhile
                raise does_not_exist(arn)
        if self._create_request_of(existing) != wanted:
            raise ServiceError(
                STATE_MACHINE_ALREADY_EXISTS, f"State Machine Already Exists: '{arn}'"
            )
        response: dict[str, Any] = {"stateMachineArn": arn, "creationDate": existing.created_at}
        if publish:
            version = self._publish(existing, version_description)
            response["stateMachineVersionArn"] = version.arn
        return response

    @staticmethod
    def _create_request_of(machine: StateMachineRecord) -> tuple[Any, ...]:
        attributes = json_object(machine.attributes)
        configuration = {
            key: attributes[key]
            for key in ("loggingConfiguration", "tracingConfiguration", "encryptionConfiguration")
            if key in attributes
        }
        return (machine.type, machine.definition, configuration, attributes.get("createdWith"))

    def describe_state_machine(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["stateMachineArn"]
        metadata_only = request.get("includedData") == "METADATA_ONLY"
        ref = state_machine_ref(arn)
        machine = self._machine(ref.state_machine_arn, shown=arn)
        if ref.alias is not None and self.store.get_alias(machine.arn, ref.alias) is None:
            raise does_not_exist(arn)
        if ref.version is None:
            # An alias ARN (which AWS lists among the ARNs this operation takes, without
            # saying what it answers) describes the alias's state machine.
            attributes = json_object(machine.attributes)
            described: dict[str, Any] = {
                "stateMachineArn": machine.arn,
                "name": machine.name,
                "status": "ACTIVE",
                "definition": machine.definition,
                "roleArn": machine.role_arn,
                "type": machine.type,
                "creationDate": machine.created_at,
                **self._configuration(attributes),
            }
            revision_id = self._visible_revision(attributes, machine.revision_id)
            description = None
        else:
            version = self.store.get_version(machine.arn, ref.version)
            if version is None:
                raise does_not_exist(arn)
            attributes = json_object(version.attributes)
            # AWS: a version ARN describes that version, dated when it was published.
            described = {
                "stateMachineArn": version.arn,
                "name": machine.name,
                "status": "ACTIVE",
                "definition": version.definition,
                "roleArn": version.role_arn,
                "type": machine.type,
                "creationDate": version.created_at,
                **self._configuration(attributes),
            }
            revision_id = self._visible_revision(attributes, version.revision_id)
            description = version.description
        if revision_id is not None:
            described["revisionId"] = revision_id
        if description is not None:
            described["description"] = description
        if "encryptionConfiguration" in attributes:
            described["encryptionConfiguration"] = attributes["encryptionConfiguration"]
        if metadata_only:
            # AWS: "If called with includedData = METADATA_ONLY, the returned definition will
            # be {}."
            described["definition"] = "{}"
        return described

    def describe_state_machine_for_revision(
        self, state_machine_arn: str, revision_id: str
    ) -> dict[str, Any]:
        """The state machine as an execution of ``revision_id`` ran it (the shape of
        DescribeStateMachineForExecution), even after updates or the machine's deletion."""
        revision = self.store.get_revision(state_machine_arn, revision_id)
        if revision is None:
            raise ServiceError(
                does_not_exist(state_machine_arn).code,
                f"State Machine Does Not Exist: '{state_machine_arn}' (revision {revision_id})",
            )
        machine = self.store.get_state_machine(state_machine_arn)
        version = None
        if machine is None or machine.revision_id != revision_id:
            version = self.store.version_of_revision(state_machine_arn, revision_id)
        if version is not None:
            attributes = json_object(version.attributes)
        elif machine is not None:
            # An older revision without a version: its logging and tracing were not kept, so
            # the machine's current ones stand in for them.
            attributes = json_object(machine.attributes)
        else:
            attributes = {}
        described: dict[str, Any] = {
            "stateMachineArn": state_machine_arn,
            "name": state_machine_arn.rsplit(":", 1)[-1],
            "definition": revision.definition,
            "roleArn": revision.role_arn,
            "updateDate": revision.created_at,
            **self._configuration(attributes),
        }
        visible = self._visible_revision(attributes, revision_id)
        if visible is not None:
            described["revisionId"] = visible
        if "encryptionConfiguration" in attributes:
            described["encryptionConfiguration"] = attributes["encryptionConfiguration"]
        return described

    def update_state_machine(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["stateMachineArn"]
        publish = bool(request.get("publish", False))
        ref = state_machine_ref(arn)
        _check_version_description(request)
        changes = ("definition", "roleArn", "loggingConfiguration", "tracingConfiguration")
        if all(request.get(key) is None for key in (*changes, "encryptionConfiguration")):
            # Recorded AWS.
            raise ServiceError(
                MISSING_REQUIRED_PARAMETER,
                "Either the definition, the role ARN, the LoggingConfiguration, or the "
                "TracingConfiguration must be specified",
            )
        if ref.version is not None or ref.alias is not None:
            # Recorded AWS: a version ARN is not a state machine that can be updated.
            raise does_not_exist(arn)
        machine = self._machine(arn)
        definition = request.get("definition")
        if definition is None:
            definition = machine.definition
        else:
            _parse(definition, machine.type)
        role_arn = request.get("roleArn")
        if role_arn is None:
            role_arn = machine.role_arn
        else:
            check_arn_prefix(role_arn)
        attributes = json_object(machine.attributes)
        updated = dict(attributes)
        if request.get("loggingConfiguration") is not None:
            updated["loggingConfiguration"] = logging_configuration(request["loggingConfiguration"])
        if request.get("tracingConfiguration") is not None:
            updated["tracingConfiguration"] = tracing_configuration(request["tracingConfiguration"])
        encryption = encryption_configuration(request.get("encryptionConfiguration"))
        if encryption is not None:
            updated["encryptionConfiguration"] = encryption
        now = self._now()
        if (definition, role_arn, updated) != (machine.definition, machine.role_arn, attributes):
            machine = replace(
                machine,
                definition=definition,
                role_arn=role_arn,
                revision_id=self._new_revision_id(),
                updated_at=now,
                attributes=_dumps(updated),
            )
            try:
                self.store.update_state_machine(machine)
            except StateMachineDoesNotExist:
                raise does_not_exist(arn) from None
        response: dict[str, Any] = {"updateDate": now}
        revision_id = self._visible_revision(updated, machine.revision_id)
        if revision_id is not None:
            response["revisionId"] = revision_id
        if publish:
            version = self._publish(machine, request.get("versionDescription"))
            response["stateMachineVersionArn"] = version.arn
        return response

    def delete_state_machine(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["stateMachineArn"]
        ref = state_machine_ref(arn)
        if ref.version is not None or ref.alias is not None:
            raise ServiceError(
                VALIDATION,
                f"'{arn}' is a state machine version or alias ARN; delete it with "
                "DeleteStateMachineVersion or DeleteStateMachineAlias",
            )
        # AWS: deleting a machine deletes its versions and aliases too. Running executions go
        # on: the revisions they run stay in the store. The catalog goes first so that a
        # crash in between never leaves a new machine of the same name with old versions.
        self.store.delete_catalog(arn)
        self.store.delete_state_machine(arn)  # recorded AWS: deleting twice is no error
        return {}

    def list_state_machines(self, request: Mapping[str, Any]) -> dict[str, Any]:
        page = self._page(
            lambda: self.store.list_state_machines(
                request.get("maxResults") or 0, request.get("nextToken")
            )
        )
        response: dict[str, Any] = {
            "stateMachines": [
                {
                    "stateMachineArn": m.arn,
                    "name": m.name,
                    "type": m.type,
                    "creationDate": m.created_at,
                }
                for m in page.items
            ]
        }
        if page.next_token is not None:
            response["nextToken"] = page.next_token
        return response

    def validate_state_machine_definition(self, request: Mapping[str, Any]) -> dict[str, Any]:
        diagnostics = validate_definition(
            request["definition"], state_machine_type=request.get("type") or "STANDARD"
        )
        failed = any(d.severity == "ERROR" for d in diagnostics)
        # AWS: severity ERROR (the default) returns only errors; WARNING returns both.
        if (request.get("severity") or "ERROR") == "ERROR":
            diagnostics = [d for d in diagnostics if d.severity == "ERROR"]
        limit = request.get("maxResults") or _MAX_DIAGNOSTICS
        return {
            "result": "FAIL" if failed else "OK",
            "diagnostics": [d.to_json() for d in diagnostics[:limit]],
            "truncated": len(diagnostics) > limit,
        }
