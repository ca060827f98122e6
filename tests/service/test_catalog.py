"""The control plane: state machines, versions, aliases, tags and activities, as AWS answers."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowstate.asl import DefinitionError, parse_definition
from flowstate.service.arns import Partition
from flowstate.service.catalog import Catalog
from flowstate.service.errors import ServiceError
from flowstate.storage import MemoryStore, SQLiteStore

T0 = datetime(2024, 1, 1, tzinfo=UTC)
PREFIX = "arn:aws:states:us-east-1:123456789012"
ROLE = "arn:aws:iam::123456789012:role/flowstate"
OTHER_ROLE = "arn:aws:iam::123456789012:role/other"
PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
PASS_2 = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 2, "End": True}}})
PASS_3 = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 3, "End": True}}})
LOG_GROUP = "arn:aws:logs:us-east-1:123456789012:log-group:flows:*"


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at

    def tick(self, seconds: float = 1.0) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catalog(clock: Clock) -> Catalog:
    return Catalog(MemoryStore(), Partition(), now=clock, rng=random.Random(7))


def refused(code: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """The message of the ServiceError ``call(*args, **kwargs)`` raises, checking its code."""
    with pytest.raises(ServiceError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


def create(catalog: Catalog, name: str = "orders", **more: Any) -> dict[str, Any]:
    return catalog.create_state_machine({"name": name, "definition": PASS, "roleArn": ROLE, **more})


def machine_arn(name: str = "orders") -> str:
    return f"{PREFIX}:stateMachine:{name}"


# --- CreateStateMachine / DescribeStateMachine ---------------------------------------------


def test_create_then_describe(catalog: Catalog) -> None:
    created = create(catalog)
    assert created == {"stateMachineArn": machine_arn(), "creationDate": T0}
    described = catalog.describe_state_machine({"stateMachineArn": machine_arn()})
    # Recorded AWS: no revisionId before the first update; logging and tracing defaults.
    assert described == {
        "stateMachineArn": machine_arn(),
        "name": "orders",
        "status": "ACTIVE",
        "definition": PASS,
        "roleArn": ROLE,
        "type": "STANDARD",
        "creationDate": T0,
        "loggingConfiguration": {"level": "OFF", "includeExecutionData": False},
        "tracingConfiguration": {"enabled": False},
    }
    assert described["creationDate"].tzinfo is not None


def test_describe_metadata_only_hides_the_definition(catalog: Catalog) -> None:
    create(catalog)
    described = catalog.describe_state_machine(
        {"stateMachineArn": machine_arn(), "includedData": "METADATA_ONLY"}
    )
    assert described["definition"] == "{}"


def test_describe_refusals(catalog: Catalog) -> None:
    message = refused(
        "StateMachineDoesNotExist",
        catalog.describe_state_machine,
        {"stateMachineArn": machine_arn()},
    )
    assert message == f"State Machine Does Not Exist: '{machine_arn()}'"
    message = refused("InvalidArn", catalog.describe_state_machine, {"stateMachineArn": "nope"})
    assert message == "Invalid Arn: 'Invalid ARN prefix: nope'"
    activity = f"{PREFIX}:activity:work"
    refused("InvalidArn", catalog.describe_state_machine, {"stateMachineArn": activity})
    refused(
        "ValidationException",
        catalog.describe_state_machine,
        {"stateMachineArn": machine_arn("orders/MapLabel")},
    )


def test_invalid_definition_is_refused_with_the_asl_message(catalog: Catalog) -> None:
    bad = '{"StartAt": "P"}'
    with pytest.raises(DefinitionError) as expected:
        parse_definition(bad)
    message = refused(
        "InvalidDefinition",
        catalog.create_state_machine,
        {"name": "orders", "definition": bad, "roleArn": ROLE},
    )
    assert message == expected.value.message
    # Recorded AWS wording.
    assert message == (
        "Invalid State Machine Definition: "
        "'SCHEMA_VALIDATION_FAILED: These fields are required: [States] at /'"
    )
    assert catalog.store.get_state_machine(machine_arn()) is None


def test_express_restrictions_follow_the_type(catalog: Catalog) -> None:
    wait_for_token = json.dumps(
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": "q", "MessageBody": {"t.$": "$$.Task.Token"}},
                    "End": True,
                }
            },
        }
    )
    request = {"name": "fast", "definition": wait_for_token, "roleArn": ROLE}
    message = refused(
        "InvalidDefinition", catalog.create_state_machine, {**request, "type": "EXPRESS"}
    )
    assert "waitForTaskToken" in message and "/States/T/Resource" in message
    assert catalog.create_state_machine(request)["stateMachineArn"] == machine_arn("fast")
    described = catalog.describe_state_machine({"stateMachineArn": machine_arn("fast")})
    assert described["type"] == "STANDARD"


def test_names_are_checked(catalog: Catalog) -> None:
    message = refused("InvalidName", create, catalog, "bad name")
    assert message == "Invalid Name: 'bad name'"
    refused("InvalidName", create, catalog, "x" * 81)


def test_create_is_idempotent_for_an_identical_request(catalog: Catalog, clock: Clock) -> None:
    create(catalog, tags=[{"key": "team", "value": "a"}])
    clock.tick(60)
    # AWS: a different roleArn or tags are ignored, not applied.
    again = catalog.create_state_machine(
        {"name": "orders", "definition": PASS, "roleArn": OTHER_ROLE, "tags": []}
    )
    assert again == {"stateMachineArn": machine_arn(), "creationDate": T0}
    described = catalog.describe_state_machine({"stateMachineArn": machine_arn()})
    assert described["roleArn"] == ROLE
    tags = catalog.list_tags_for_resource({"resourceArn": machine_arn()})
    assert tags == {"tags": [{"key": "team", "value": "a"}]}


@pytest.mark.parametrize(
    "difference",
    [
        {"definition": PASS_2},
        {"definition": json.dumps(json.loads(PASS), indent=2)},  # recorded AWS: text compares
        {"type": "EXPRESS"},
        {"loggingConfiguration": {"level": "OFF", "includeExecutionData": True}},
        {"tracingConfiguration": {"enabled": True}},
        {"publish": True},
    ],
)
def test_create_with_a_different_request_is_refused(
    catalog: Catalog, difference: dict[str, Any]
) -> None:
    create(catalog)
    message = refused("StateMachineAlreadyExists", create, catalog, "orders", **difference)
    assert message == f"State Machine Already Exists: '{machine_arn()}'"


def test_version_description_needs_publish(catalog: Catalog) -> None:
    message = refused("ValidationException", create, catalog, "orders", versionDescription="v")
    assert message == "Version description can only be set when publish is true"


def test_create_with_publish_publishes_version_one(catalog: Catalog, clock: Clock) -> None:
    created = create(catalog, publish=True, versionDescription="first")
    assert created["stateMachineVersionArn"] == f"{machine_arn()}:1"
    clock.tick()
    assert create(catalog, publish=True, versionDescription="first") == created
    described = catalog.describe_state_machine({"stateMachineArn": f"{machine_arn()}:1"})
    assert described["stateMachineArn"] == f"{machine_arn()}:1"
    assert described["description"] == "first"
    assert described["creationDate"] == T0 and "revisionId" not in described
    versions = catalog.list_state_machine_versions({"stateMachineArn": machine_arn()})
    assert [v["stateMachineVersionArn"] for v in versions["stateMachineVersions"]] == [
        f"{machine_arn()}:1"
    ]


def test_configurations_are_stored_and_described(catalog: Catalog) -> None:
    logging = {
        "level": "ERROR",
        "includeExecutionData": True,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": LOG_GROUP}}],
    }
    encryption = {"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsKeyId": "alias/flows"}
    create(
        catalog,
        loggingConfiguration=logging,
        tracingConfiguration={"enabled": True},
        encryptionConfiguration=encryption,
    )
    described = catalog.describe_state_machine({"stateMachineArn": machine_arn()})
    assert described["loggingConfiguration"] == logging
    assert described["tracingConfiguration"] == {"enabled": True}
    assert described["encryptionConfiguration"] == {
        **encryption,
        "kmsDataKeyReusePeriodSeconds": 300,
    }


@pytest.mark.parametrize(
    "logging",
    [
        {"level": "ALL"},
        {"level": "ERROR", "destinations": []},
        {
            "level": "ALL",
            "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": LOG_GROUP}}] * 2,
        },
    ],
)
def test_logging_needs_exactly_one_destination(catalog: Catalog, logging: dict[str, Any]) -> None:
    message = refused(
        "InvalidLoggingConfiguration", create, catalog, "orders", loggingConfiguration=logging
    )
    assert message == "Invalid Logging Configuration: Must specify exactly one Log Destination."


def test_encryption_configuration_is_checked(catalog: Catalog) -> None:
    refused(
        "InvalidEncryptionConfiguration",
        create,
        catalog,
        "orders",
        encryptionConfiguration={"type": "CUSTOMER_MANAGED_KMS_KEY"},
    )
    refused(
        "InvalidEncryptionConfiguration",
        create,
        catalog,
        "orders",
        encryptionConfiguration={"type": "AWS_OWNED_KEY", "kmsKeyId": "k"},
    )


# --- UpdateStateMachine --------------------------------------------------------------------


def test_update_gives_a_new_revision_only_when_something_changes(
    catalog: Catalog, clock: Clock
) -> None:
    create(catalog)
    clock.tick(10)
    first = catalog.update_state_machine({"stateMachineArn": machine_arn(), "definition": PASS_2})
    assert first["updateDate"] == T0 + timedelta(seconds=10)
    revision = first["revisionId"]
    described = catalog.describe_state_machine({"stateMachineArn": machine_arn()})
    assert (described["definition"], described["revisionId"]) == (PASS_2, revision)
    assert described["creationDate"] == T0

    clock.tick(10)
    same = catalog.update_state_machine({"stateMachineArn": machine_arn(), "definition": PASS_2})
    assert same["revisionId"] == revision  # recorded AWS

    role = catalog.update_state_machine({"stateMachineArn": machine_arn(), "roleArn": OTHER_ROLE})
    assert role["revisionId"] not in (None, revision)
    logging = catalog.update_state_machine(
        {"stateMachineArn": machine_arn(), "loggingConfiguration": {"includeExecutionData": True}}
    )
    assert logging["revisionId"] != role["revisionId"]
    described = catalog.describe_state_machine({"stateMachineArn": machine_arn()})
    assert described["roleArn"] == OTHER_ROLE
    assert described["loggingConfiguration"] == {"level": "OFF", "includeExecutionData": True}


def test_update_refusals(catalog: Catalog) -> None:
    create(catalog, publish=True)
    message = refused(
        "MissingRequiredParameter", catalog.update_state_machine, {"stateMachineArn": machine_arn()}
    )
    assert message.startswith("Either the definition, the role ARN")
    # Recorded AWS: a version ARN is not a machine to update.
    message = refused(
        "StateMachineDoesNotExist",
        catalog.update_state_machine,
        {"stateMachineArn": f"{machine_arn()}:1", "definition": PASS_2},
    )
    assert message == f"State Machine Does Not Exist: '{machine_arn()}:1'"
    refused(
        "StateMachineDoesNotExist",
        catalog.update_state_machine,
        {"stateMachineArn": machine_arn("absent"), "definition": PASS_2},
    )
    refused(
        "InvalidDefinition",
        catalog.update_state_machine,
        {"stateMachineArn": machine_arn(), "definition": '{"StartAt": "P"}'},
    )
    refused(
        "ValidationException",
        catalog.update_state_machine,
        {"stateMachineArn": machine_arn(), "definition": PASS_2, "versionDescription": "v"},
    )
    assert catalog.describe_state_machine({"stateMachineArn": machine_arn()})["definition"] == PASS


def test_update_with_publish(catalog: Catalog) -> None:
    create(catalog)
    # Recorded AWS: publishing an unchanged machine publishes its initial revision, once.
    unchanged = catalog.update_state_machine(
        {"stateMachineArn": machine_arn(), "definition": PASS, "publish": True}
    )
    assert unchanged["stateMachineVersionArn"] == f"{machine_arn()}:1"
    assert "revisionId" not in unchanged
    again = catalog.update_state_machine(
        {"stateMachineArn": machine_arn(), "definition": PASS, "publish": True}
    )
    assert again["stateMachineVersionArn"] == f"{machine_arn()}:1"
    changed = catalog.update_state_machine(
        {
            "stateMachineArn": machine_arn(),
            "definition": PASS_2,
            "publish": True,
            "versionDescription": "two",
        }
    )
    assert changed["stateMachineVersionArn"] == f"{machine_arn()}:2"
    version = catalog.describe_state_machine({"stateMachineArn": f"{machine_arn()}:2"})
    assert version["revisionId"] == changed["revisionId"]
    assert (version["definition"], version["description"]) == (PASS_2, "two")
    first = catalog.describe_state_machine({"stateMachineArn": f"{machine_arn()}:1"})
    assert first["definition"] == PASS and "revisionId" not in first


# --- DeleteStateMachine --------------------------------------------------------------------


def test_delete_takes_versions_aliases_and_tags(catalog: Catalog) -> None:
    create(catalog, publish=True, tags=[{"key": "team", "value": "a"}])
    alias = catalog.create_state_machine_alias(
        {
            "name": "prod",
            "routingConfiguration": [
                {"stateMachineVersionArn": f"{machine_arn()}:1", "weight": 100}
            ],
        }
    )
    revision_id = catalog.resolve_target(machine_arn()).revision_id

    assert catalog.delete_state_machine({"stateMachineArn": machine_arn()}) == {}
    assert catalog.delete_state_machine({"stateMachineArn": machine_arn()}) == {}  # recorded AWS

    refused(
        "StateMachineDoesNotExist",
        catalog.describe_state_machine,
        {"stateMachineArn": machine_arn()},
    )
    refused("StateMachineDoesNotExist", catalog.resolve_target, f"{machine_arn()}:1")
    refused("StateMachineDoesNotExist", catalog.resolve_target, alias["stateMachineAliasArn"])
    assert catalog.store.get_tags(machine_arn()) == {}
    # Executions still running it can describe what they run.
    described = catalog.describe_state_machine_for_revision(machine_arn(), revision_id)
    assert described["definition"] == PASS
    # A new machine of the same name is a new resource.
    assert create(catalog, publish=True)["stateMachineVersionArn"] == f"{machine_arn()}:1"
    assert catalog.list_tags_for_resource({"resourceArn": machine_arn()}) == {"tags": []}


def test_delete_refuses_a_version_arn(catalog: Catalog) -> None:
    create(catalog, publish=True)
    refused(
        "ValidationException",
        catalog.delete_state_machine,
        {"stateMachineArn": f"{machine_arn()}:1"},
    )
    assert catalog.describe_state_machine({"stateMachineArn": f"{machine_arn()}:1"})


# --- ListStateMachines ---------------------------------------------------------------------


def test_list_state_machines_in_pages_by_name(catalog: Catalog) -> None:
    for name in ["c", "a", "e", "b", "d"]:
        create(catalog, name)
    first = catalog.list_state_machines({"maxResults": 2})
    assert [m["name"] for m in first["stateMachines"]] == ["a", "b"]
    assert first["stateMachines"][0] == {
        "stateMachineArn": machine_arn("a"),
        "name": "a",
        "type": "STANDARD",
        "creationDate": T0,
    }
    second = catalog.list_state_machines({"maxResults": 2, "nextToken": first["nextToken"]})
    third = catalog.list_state_machines({"maxResults": 2, "nextToken": second["nextToken"]})
    assert [m["name"] for m in second["stateMachines"] + third["stateMachines"]] == ["c", "d", "e"]
    assert "nextToken" not in third
    assert len(catalog.list_state_machines({"maxResults": 0})["stateMachines"]) == 5
    refused("InvalidToken", catalog.list_state_machines, {"nextToken": "garbage"})
    catalog.create_activity({"name": "a"})
    catalog.create_activity({"name": "b"})
    other = catalog.list_activities({"maxResults": 1})["nextToken"]
    refused("InvalidToken", catalog.list_state_machines, {"nextToken": other})


# --- ValidateStateMachineDefinition --------------------------------------------------------


def test_validate_state_machine_definition(catalog: Catalog) -> None:
    ok = catalog.validate_state_machine_definition({"definition": PASS})
    assert ok == {"result": "OK", "diagnostics": [], "truncated": False}
    bad = json.dumps(
        {
            "StartAt": "A",
            "States": {"A": {"Type": "Pass", "Next": "X"}, "B": {"Type": "Pass", "Next": "Y"}},
        }
    )
    failed = catalog.validate_state_machine_definition({"definition": bad})
    assert failed["result"] == "FAIL" and failed["truncated"] is False
    assert failed["diagnostics"][0] == {
        "code": "MISSING_TRANSITION_TARGET",
        "message": "Missing 'Next' target: X",
        "severity": "ERROR",
        "location": "/States/A/Next",
    }
    assert len(failed["diagnostics"]) == 3
    cut = catalog.validate_state_machine_definition({"definition": bad, "maxResults": 1})
    assert len(cut["diagnostics"]) == 1 and cut["truncated"] is True
    express = catalog.validate_state_machine_definition(
        {"definition": PASS, "type": "EXPRESS", "severity": "WARNING"}
    )
    assert express["result"] == "OK"


# --- versions ------------------------------------------------------------------------------


def test_publish_is_idempotent_per_revision(catalog: Catalog, clock: Clock) -> None:
    create(catalog)
    first = catalog.publish_state_machine_version({"stateMachineArn": machine_arn()})
    assert first == {"creationDate": T0, "stateMachineVersionArn": f"{machine_arn()}:1"}
    clock.tick()
    assert catalog.publish_state_machine_version({"stateMachineArn": machine_arn()}) == first
    # AWS: INITIAL names the revision of a machine never updated.
    initial = catalog.publish_state_machine_version(
        {"stateMachineArn": machine_arn(), "revisionId": "INITIAL"}
    )
    assert initial == first


def test_publish_with_a_stale_revision_is_a_conflict(catalog: Catalog) -> None:
    create(catalog)
    r2 = catalog.update_state_machine({"stateMachineArn": machine_arn(), "definition": PASS_2})
    r3 = catalog.update_state_machine({"stateMachineArn": machine_arn(), "definition": PASS_3})
    message = refused(
        "ConflictException",
        catalog.publish_state_machine_version,
        {"stateMachineArn": machine_arn(), "revisionId": r2["revisionId"]},
    )
    assert message == (
        f"Failed to publish the State Machine version for revision {r2['revisionId']}. "
        f"The current State Machine revision is {r3['revisionId']}."
    )
    refused(
        "ConflictException",
        catalog.publish_state_machine_version,
        {"stateMachineArn": machine_arn(), "revisionId": "INITIAL"},
    )
    published = catalog.publish_state_machine_version(
        {"stateMachineArn": machine_arn(), "revisionId": r3["revisionId"], "description": "d"}
    )
    version = catalog.describe_state_machine(
        {"stateMachineArn": published["stateMachineVersionArn"]}
    )
    assert (version["definition"], version["revisionId"], version["description"]) == (
        PASS_3,
        r3["revisionId"],
        "d",
    )


def test_publish_refusals(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    refused(
        "StateMachineDoesNotExist",
        catalog.publish_state_machine_version,
        {"stateMachineArn": machine_arn()},
    )
    create(catalog, publish=True)
    refused(
        "StateMachineDoesNotExist",
        catalog.publish_state_machine_version,
        {"stateMachineArn": f"{machine_arn()}:1"},
    )
    monkeypatch.setattr("flowstate.service.resources.MAX_VERSIONS", 1)
    catalog.update_state_machine({"stateMachineArn": machine_arn(), "definition": PASS_2})
    message = refused(
        "ServiceQuotaExceededException",
        catalog.publish_state_machine_version,
        {"stateMachineArn": machine_arn()},
    )
    assert "1 versions" in message


def test_version_numbers_are_never_reused(catalog: Catalog) -> None:
    create(catalog, publish=True)
    catalog.update_state_machine(
        {"stateMachineArn": machine_arn(), "definition": PASS_2, "publish": True}
    )
    catalog.delete_state_machine_version({"stateMachineVersionArn": f"{machine_arn()}:2"})
    # Recorded AWS: the revision of the deleted version 2 is published again as version 3.
    again = catalog.publish_state_machine_version({"stateMachineArn": machine_arn()})
    assert again["stateMachineVersionArn"] == f"{machine_arn()}:3"


def test_list_versions_newest_first_in_pages(catalog: Catalog, clock: Clock) -> None:
    create(catalog, publish=True)
    for n in range(2, 6):
        clock.tick()
        catalog.update_state_machine(
            {
                "stateMachineArn": machine_arn(),
                "definition": PASS.replace('"End"', f'"Comment": "{n}", "End"'),
                "publish": True,
            }
        )
    first = catalog.list_state_machine_versions({"stateMachineArn": machine_arn(), "maxResults": 3})
    assert [v["stateMachineVersionArn"][-1] for v in first["stateMachineVersions"]] == [
        "5",
        "4",
        "3",
    ]
    assert first["stateMachineVersions"][0]["creationDate"] == T0 + timedelta(seconds=4)
    rest = catalog.list_state_machine_versions(
        {"stateMachineArn": machine_arn(), "maxResults": 3, "nextToken": first["nextToken"]}
    )
    assert [v["stateMachineVersionArn"][-1] for v in rest["stateMachineVersions"]] == ["2", "1"]
    assert "nextToken" not in rest
    refused(
        "InvalidToken",
        catalog.list_state_machine_versions,
        {"stateMachineArn": machine_arn("x"), "nextToken": first["nextToken"]},
    )
    empty = catalog.list_state_machine_versions({"stateMachineArn": machine_arn("absent")})
    assert empty == {"stateMachineVersions": []}


def test_delete_version(catalog: Catalog) -> None:
    create(catalog, publish=True)
    version_arn = f"{machine_arn()}:1"
    catalog.create_state_machine_alias(
        {
            "name": "prod",
            "routingConfiguration": [{"stateMachineVersionArn": version_arn, "weight": 100}],
        }
    )
    catalog.create_state_machine_alias(
        {
            "name": "beta",
            "routingConfiguration": [{"stateMachineVersionArn": version_arn, "weight": 100}],
        }
    )
    message = refused(
        "ConflictException",
        catalog.delete_state_machine_version,
        {"stateMachineVersionArn": version_arn},
    )
    assert message == (
        "Version to be deleted must not be referenced by an alias. "
        "Current list of aliases referencing this version: [beta, prod]"
    )
    for alias in ("prod", "beta"):
        catalog.delete_state_machine_alias({"stateMachineAliasArn": f"{machine_arn()}:{alias}"})
    assert catalog.delete_state_machine_version({"stateMachineVersionArn": version_arn}) == {}
    # Recorded AWS: deleting it again is no error.
    assert catalog.delete_state_machine_version({"stateMachineVersionArn": version_arn}) == {}
    refused(
        "StateMachineDoesNotExist", catalog.describe_state_machine, {"stateMachineArn": version_arn}
    )
    refused(
        "ValidationException",
        catalog.delete_state_machine_version,
        {"stateMachineVersionArn": machine_arn()},
    )


# --- aliases -------------------------------------------------------------------------------


def two_versions(catalog: Catalog) -> tuple[str, str]:
    create(catalog, publish=True)
    catalog.update_state_machine(
        {"stateMachineArn": machine_arn(), "definition": PASS_2, "publish": True}
    )
    return f"{machine_arn()}:1", f"{machine_arn()}:2"


def routing(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"stateMachineVersionArn": arn, "weight": weight} for arn, weight in pairs]


def test_alias_create_describe_update(catalog: Catalog, clock: Clock) -> None:
    v1, v2 = two_versions(catalog)
    created = catalog.create_state_machine_alias(
        {"name": "prod", "description": "live", "routingConfiguration": routing((v1, 100))}
    )
    alias_arn = f"{machine_arn()}:prod"
    assert created == {"stateMachineAliasArn": alias_arn, "creationDate": T0}
    described = catalog.describe_state_machine_alias({"stateMachineAliasArn": alias_arn})
    assert described == {
        "stateMachineAliasArn": alias_arn,
        "name": "prod",
        "description": "live",
        "routingConfiguration": routing((v1, 100)),
        "creationDate": T0,
        "updateDate": T0,
    }
    clock.tick(30)
    updated = catalog.update_state_machine_alias(
        {"stateMachineAliasArn": alias_arn, "routingConfiguration": routing((v2, 80), (v1, 20))}
    )
    assert updated == {"updateDate": T0 + timedelta(seconds=30)}
    clock.tick(30)
    # AWS: idempotent; the description stays when only the routing is given.
    assert (
        catalog.update_state_machine_alias(
            {"stateMachineAliasArn": alias_arn, "routingConfiguration": routing((v2, 80), (v1, 20))}
        )
        == updated
    )
    described = catalog.describe_state_machine_alias({"stateMachineAliasArn": alias_arn})
    assert described["routingConfiguration"] == routing((v2, 80), (v1, 20))
    assert (described["description"], described["creationDate"]) == ("live", T0)
    catalog.update_state_machine_alias({"stateMachineAliasArn": alias_arn, "description": "new"})
    assert (
        catalog.describe_state_machine_alias({"stateMachineAliasArn": alias_arn})["description"]
        == "new"
    )


def test_alias_create_is_idempotent(catalog: Catalog, clock: Clock) -> None:
    v1, v2 = two_versions(catalog)
    request = {"name": "prod", "routingConfiguration": routing((v1, 100))}
    first = catalog.create_state_machine_alias(request)
    clock.tick()
    assert catalog.create_state_machine_alias(request) == first
    for different in (
        {**request, "routingConfiguration": routing((v2, 100))},
        {**request, "description": "other"},
    ):
        message = refused("ConflictException", catalog.create_state_machine_alias, different)
        assert message == (
            "Failed to create alias because an alias with the same name and a different "
            "routing configuration already exists."
        )


def test_alias_routing_is_checked(catalog: Catalog) -> None:
    v1, v2 = two_versions(catalog)
    create(catalog, "other", publish=True)

    def message_for(configuration: list[dict[str, Any]]) -> str:
        request = {"name": "prod", "routingConfiguration": configuration}
        return refused("ValidationException", catalog.create_state_machine_alias, request)

    # Recorded AWS messages.
    assert message_for(routing((machine_arn(), 100))) == (
        f"Routing configuration must contain state machine version ARNs. Received: [{machine_arn()}]"
    )
    assert message_for(routing((v1, 50), (v1, 50))) == (
        "Routing configuration must contain distinct state machine version ARNs. "
        f"Received: [{v1}, {v1}]"
    )
    assert message_for(routing((v1, 70), (v2, 29))) == (
        "Sum of routing configuration weights must equal 100. Received: [70, 29]"
    )
    assert "same state machine" in message_for(routing((v1, 50), (f"{machine_arn('other')}:1", 50)))
    assert "length" in message_for(routing((v1, 50), (v2, 50), (v1, 0)))
    assert message_for([]).startswith("1 validation error")
    missing = refused(
        "ResourceNotFound",
        catalog.create_state_machine_alias,
        {"name": "prod", "routingConfiguration": routing((f"{machine_arn()}:9", 100))},
    )
    assert missing == f"Resource not found: '{machine_arn()}:9'"
    refused(
        "ValidationException",
        catalog.create_state_machine_alias,
        {"name": "123", "routingConfiguration": routing((v1, 100))},
    )
    assert catalog.list_state_machine_aliases({"stateMachineArn": machine_arn()}) == {
        "stateMachineAliases": []
    }


def test_alias_quota(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    v1, _ = two_versions(catalog)
    monkeypatch.setattr("flowstate.service.aliases.MAX_ALIASES", 1)
    catalog.create_state_machine_alias({"name": "a", "routingConfiguration": routing((v1, 100))})
    refused(
        "ServiceQuotaExceededException",
        catalog.create_state_machine_alias,
        {"name": "b", "routingConfiguration": routing((v1, 100))},
    )


def test_alias_update_and_describe_refusals(catalog: Catalog) -> None:
    v1, _ = two_versions(catalog)
    create(catalog, "other", publish=True)
    alias_arn = f"{machine_arn()}:prod"
    message = refused(
        "ResourceNotFound",
        catalog.update_state_machine_alias,
        {"stateMachineAliasArn": alias_arn, "description": "x"},
    )
    assert message == "Request references a resource that does not exist."  # recorded AWS
    refused(
        "ResourceNotFound",
        catalog.describe_state_machine_alias,
        {"stateMachineAliasArn": alias_arn},
    )
    refused("InvalidArn", catalog.describe_state_machine_alias, {"stateMachineAliasArn": v1})
    catalog.create_state_machine_alias({"name": "prod", "routingConfiguration": routing((v1, 100))})
    refused(
        "ValidationException",
        catalog.update_state_machine_alias,
        {"stateMachineAliasArn": alias_arn},
    )
    refused(
        "ValidationException",
        catalog.update_state_machine_alias,
        {
            "stateMachineAliasArn": alias_arn,
            "routingConfiguration": routing((f"{machine_arn('other')}:1", 100)),
        },
    )
    refused(
        "ResourceNotFound",
        catalog.update_state_machine_alias,
        {
            "stateMachineAliasArn": alias_arn,
            "routingConfiguration": routing((f"{machine_arn()}:7", 100)),
        },
    )
    assert catalog.describe_state_machine_alias({"stateMachineAliasArn": alias_arn})[
        "routingConfiguration"
    ] == routing((v1, 100))


def test_list_and_delete_aliases(catalog: Catalog, clock: Clock) -> None:
    v1, v2 = two_versions(catalog)
    for name, config in [
        ("c", routing((v1, 100))),
        ("a", routing((v2, 100))),
        ("b", routing((v1, 10), (v2, 90))),
    ]:
        clock.tick()
        catalog.create_state_machine_alias({"name": name, "routingConfiguration": config})
    first = catalog.list_state_machine_aliases({"stateMachineArn": machine_arn(), "maxResults": 2})
    assert first["stateMachineAliases"] == [
        {"stateMachineAliasArn": f"{machine_arn()}:a", "creationDate": T0 + timedelta(seconds=2)},
        {"stateMachineAliasArn": f"{machine_arn()}:b", "creationDate": T0 + timedelta(seconds=3)},
    ]
    rest = catalog.list_state_machine_aliases(
        {"stateMachineArn": machine_arn(), "maxResults": 2, "nextToken": first["nextToken"]}
    )
    assert [a["stateMachineAliasArn"][-1] for a in rest["stateMachineAliases"]] == ["c"]
    # AWS: given a version ARN, the aliases routing to that version.
    by_version = catalog.list_state_machine_aliases({"stateMachineArn": v1})
    assert [a["stateMachineAliasArn"][-1] for a in by_version["stateMachineAliases"]] == ["b", "c"]
    refused(
        "ResourceNotFound",
        catalog.list_state_machine_aliases,
        {"stateMachineArn": f"{machine_arn()}:9"},
    )
    refused(
        "StateMachineDoesNotExist",
        catalog.list_state_machine_aliases,
        {"stateMachineArn": machine_arn("absent")},
    )

    assert catalog.delete_state_machine_alias({"stateMachineAliasArn": f"{machine_arn()}:b"}) == {}
    # Recorded AWS: deleting an alias that does not exist is no error.
    assert catalog.delete_state_machine_alias({"stateMachineAliasArn": f"{machine_arn()}:b"}) == {}
    remaining = catalog.list_state_machine_aliases({"stateMachineArn": machine_arn()})
    assert [a["stateMachineAliasArn"][-1] for a in remaining["stateMachineAliases"]] == ["a", "c"]


# --- resolve_target ------------------------------------------------------------------------


def test_resolve_target_of_machine_version_and_alias(catalog: Catalog) -> None:
    v1, _ = two_versions(catalog)
    machine = catalog.resolve_target(machine_arn())
    assert (machine.definition, machine.version_arn, machine.alias_arn) == (PASS_2, None, None)
    assert machine.state_machine.arn == machine_arn()
    assert machine.revision_id == machine.state_machine.revision_id
    version = catalog.resolve_target(v1)
    assert (version.definition, version.version_arn, version.alias_arn) == (PASS, v1, None)
    assert version.revision_id != machine.revision_id and version.role_arn == ROLE
    catalog.create_state_machine_alias({"name": "prod", "routingConfiguration": routing((v1, 100))})
    through = catalog.resolve_target(f"{machine_arn()}:prod")
    assert (through.definition, through.version_arn, through.alias_arn) == (
        PASS,
        v1,
        f"{machine_arn()}:prod",
    )
    assert through.state_machine.definition == PASS_2
    described = catalog.describe_state_machine({"stateMachineArn": f"{machine_arn()}:prod"})
    assert (described["stateMachineArn"], described["definition"]) == (machine_arn(), PASS_2)
    refused(
        "StateMachineDoesNotExist",
        catalog.describe_state_machine,
        {"stateMachineArn": f"{machine_arn()}:beta"},
    )
    for missing in (f"{machine_arn()}:9", f"{machine_arn()}:beta", machine_arn("absent")):
        message = refused("StateMachineDoesNotExist", catalog.resolve_target, missing)
        assert message == f"State Machine Does Not Exist: '{missing}'"
    refused("InvalidArn", catalog.resolve_target, "orders")


def test_alias_routing_follows_the_weights(catalog: Catalog) -> None:
    v1, v2 = two_versions(catalog)
    catalog.create_state_machine_alias(
        {"name": "canary", "routingConfiguration": routing((v1, 70), (v2, 30))}
    )
    catalog.create_state_machine_alias(
        {"name": "all", "routingConfiguration": routing((v2, 100), (v1, 0))}
    )
    draws = [catalog.resolve_target(f"{machine_arn()}:canary").version_arn for _ in range(4000)]
    share = draws.count(v1) / len(draws)
    assert 0.67 < share < 0.73, share
    assert {catalog.resolve_target(f"{machine_arn()}:all").version_arn for _ in range(200)} == {v2}


# --- tags ----------------------------------------------------------------------------------


def test_tag_untag_list(catalog: Catalog) -> None:
    create(catalog, tags=[{"key": "team", "value": "payments"}])
    catalog.tag_resource(
        {
            "resourceArn": machine_arn(),
            "tags": [{"key": "env", "value": "dev"}, {"key": "x", "value": ""}],
        }
    )
    catalog.tag_resource({"resourceArn": machine_arn(), "tags": [{"key": "env", "value": "prod"}]})
    listed = catalog.list_tags_for_resource({"resourceArn": machine_arn()})
    assert listed == {
        "tags": [
            {"key": "env", "value": "prod"},
            {"key": "team", "value": "payments"},
            {"key": "x", "value": ""},
        ]
    }
    assert catalog.untag_resource({"resourceArn": machine_arn(), "tagKeys": ["team", "nope"]}) == {}
    keys = [
        t["key"] for t in catalog.list_tags_for_resource({"resourceArn": machine_arn()})["tags"]
    ]
    assert keys == ["env", "x"]


def test_tag_limits_and_unknown_resources(catalog: Catalog) -> None:
    many = [{"key": f"k{i}", "value": "v"} for i in range(51)]
    refused("TooManyTags", create, catalog, "orders", tags=many)
    assert catalog.store.get_state_machine(machine_arn()) is None
    create(catalog, publish=True, tags=many[:49])
    message = refused(
        "TooManyTags", catalog.tag_resource, {"resourceArn": machine_arn(), "tags": many[48:]}
    )
    assert machine_arn() in message and "50" in message
    assert len(catalog.list_tags_for_resource({"resourceArn": machine_arn()})["tags"]) == 49
    catalog.tag_resource({"resourceArn": machine_arn(), "tags": many[48:50]})  # exactly 50

    # Recorded AWS: a version is not a taggable resource.
    message = refused(
        "ResourceNotFound",
        catalog.tag_resource,
        {"resourceArn": f"{machine_arn()}:1", "tags": [{"key": "a", "value": "b"}]},
    )
    assert message == f"Resource not found: '{machine_arn()}:1'"
    for arn in (machine_arn("absent"), f"{PREFIX}:activity:absent", f"{PREFIX}:execution:a:b"):
        refused("ResourceNotFound", catalog.list_tags_for_resource, {"resourceArn": arn})
        refused("ResourceNotFound", catalog.untag_resource, {"resourceArn": arn, "tagKeys": ["a"]})
    refused("InvalidArn", catalog.list_tags_for_resource, {"resourceArn": "orders"})
    message = refused(
        "ValidationException",
        catalog.tag_resource,
        {"resourceArn": machine_arn(), "tags": [{"key": "a"}, {"value": "v"}]},
    )
    assert "'tags.2.member.key'" in message


# --- activities ----------------------------------------------------------------------------


def test_activity_lifecycle(catalog: Catalog, clock: Clock) -> None:
    arn = f"{PREFIX}:activity:charge"
    created = catalog.create_activity({"name": "charge", "tags": [{"key": "team", "value": "a"}]})
    assert created == {"activityArn": arn, "creationDate": T0}
    clock.tick()
    # AWS: idempotent by name; different tags are ignored.
    assert catalog.create_activity({"name": "charge", "tags": []}) == created
    assert catalog.describe_activity({"activityArn": arn}) == {
        "activityArn": arn,
        "name": "charge",
        "creationDate": T0,
    }
    assert catalog.list_tags_for_resource({"resourceArn": arn}) == {
        "tags": [{"key": "team", "value": "a"}]
    }
    assert catalog.delete_activity({"activityArn": arn}) == {}
    assert catalog.delete_activity({"activityArn": arn}) == {}  # recorded AWS
    message = refused("ActivityDoesNotExist", catalog.describe_activity, {"activityArn": arn})
    assert message == f"Activity Does Not Exist: '{arn}'"  # recorded AWS
    refused("ResourceNotFound", catalog.list_tags_for_resource, {"resourceArn": arn})


def test_activity_refusals(catalog: Catalog) -> None:
    # Recorded AWS.
    assert refused("InvalidName", catalog.create_activity, {"name": "Test Activity$"}) == (
        "Invalid Name: 'Test Activity$'"
    )
    refused("InvalidArn", catalog.describe_activity, {"activityArn": machine_arn()})
    refused("InvalidArn", catalog.delete_activity, {"activityArn": "charge"})
    refused(
        "TooManyTags",
        catalog.create_activity,
        {"name": "a", "tags": [{"key": f"{i}"} for i in range(51)]},
    )
    encrypted = {
        "type": "CUSTOMER_MANAGED_KMS_KEY",
        "kmsKeyId": "alias/k",
        "kmsDataKeyReusePeriodSeconds": 60,
    }
    catalog.create_activity({"name": "secret", "encryptionConfiguration": encrypted})
    described = catalog.describe_activity({"activityArn": f"{PREFIX}:activity:secret"})
    assert described["encryptionConfiguration"] == encrypted
    refused("ActivityAlreadyExists", catalog.create_activity, {"name": "secret"})


def test_list_activities_in_pages(catalog: Catalog) -> None:
    for name in ["c", "a", "b"]:
        catalog.create_activity({"name": name})
    first = catalog.list_activities({"maxResults": 2})
    assert first["activities"][0] == {
        "activityArn": f"{PREFIX}:activity:a",
        "name": "a",
        "creationDate": T0,
    }
    rest = catalog.list_activities({"maxResults": 2, "nextToken": first["nextToken"]})
    assert [a["name"] for a in first["activities"] + rest["activities"]] == ["a", "b", "c"]
    assert "nextToken" not in rest
    refused("InvalidToken", catalog.list_activities, {"nextToken": "x" * 30})


# --- what executions ran -------------------------------------------------------------------


def test_describe_state_machine_for_revision(catalog: Catalog, clock: Clock) -> None:
    create(catalog)
    initial = catalog.resolve_target(machine_arn()).revision_id
    clock.tick(5)
    update = catalog.update_state_machine(
        {
            "stateMachineArn": machine_arn(),
            "definition": PASS_2,
            "tracingConfiguration": {"enabled": True},
        }
    )
    old = catalog.describe_state_machine_for_revision(machine_arn(), initial)
    # Recorded AWS shape of DescribeStateMachineForExecution: no status, type or creationDate.
    assert old == {
        "stateMachineArn": machine_arn(),
        "name": "orders",
        "definition": PASS,
        "roleArn": ROLE,
        "updateDate": T0,
        "loggingConfiguration": {"level": "OFF", "includeExecutionData": False},
        "tracingConfiguration": {"enabled": True},
    }
    new = catalog.describe_state_machine_for_revision(machine_arn(), update["revisionId"])
    assert (new["definition"], new["revisionId"]) == (PASS_2, update["revisionId"])
    assert new["updateDate"] == T0 + timedelta(seconds=5)
    refused(
        "StateMachineDoesNotExist", catalog.describe_state_machine_for_revision, machine_arn(), "r0"
    )


# --- persistence ---------------------------------------------------------------------------


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "flowstate.db"


def test_the_catalog_survives_reopening_the_database(sqlite_path: Path, clock: Clock) -> None:
    store = SQLiteStore(sqlite_path)
    catalog = Catalog(store, Partition(), now=clock)
    v1 = create(catalog, publish=True, tags=[{"key": "team", "value": "a"}])[
        "stateMachineVersionArn"
    ]
    catalog.create_state_machine_alias({"name": "prod", "routingConfiguration": routing((v1, 100))})
    catalog.create_activity({"name": "charge"})
    store.close()

    reopened = SQLiteStore(sqlite_path)
    try:
        again = Catalog(reopened, Partition(), now=clock)
        assert (
            again.describe_state_machine({"stateMachineArn": machine_arn()})["definition"] == PASS
        )
        assert again.describe_state_machine({"stateMachineArn": v1})["creationDate"] == T0
        assert again.resolve_target(f"{machine_arn()}:prod").version_arn == v1
        assert again.list_tags_for_resource({"resourceArn": machine_arn()})["tags"] == [
            {"key": "team", "value": "a"}
        ]
        assert (
            again.describe_activity({"activityArn": f"{PREFIX}:activity:charge"})["name"]
            == "charge"
        )
        assert create(again, publish=True)["stateMachineVersionArn"] == v1  # still idempotent
        updated = again.update_state_machine(
            {"stateMachineArn": machine_arn(), "definition": PASS_2, "publish": True}
        )
        assert updated["stateMachineVersionArn"] == f"{machine_arn()}:2"
    finally:
        reopened.close()
