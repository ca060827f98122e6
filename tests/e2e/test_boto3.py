"""An unmodified boto3 client against a real ``flowstate serve``: the control plane (state
machines, versions, aliases, tags, activities, task tokens) and TestState, with the AWS error
code of each refusal. Executions are in test_boto3_executions.py.

One server (virtual clock) serves the whole module; every test names its resources uniquely.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from e2e_client import (
    ROLE,
    all_pages,
    aws_error,
    create,
    lambda_arn,
    machine_arn,
    pass_machine,
    unique,
    versioned,
    wait_until,
    wait_until_done,
)
from e2e_server import ACCOUNT, REGION

pytestmark = pytest.mark.slow


# --- state machines ---------------------------------------------------------------------


def test_create_then_describe_state_machine(sfn: Any) -> None:
    name = unique()
    definition = pass_machine(Result={"ok": True})
    created = sfn.create_state_machine(
        name=name, definition=definition, roleArn=ROLE, type="STANDARD"
    )
    assert created["stateMachineArn"] == machine_arn(name)
    assert isinstance(created["creationDate"], datetime)

    described = sfn.describe_state_machine(stateMachineArn=created["stateMachineArn"])
    described.pop("ResponseMetadata")
    assert described == {
        "stateMachineArn": machine_arn(name),
        "name": name,
        "status": "ACTIVE",
        "definition": definition,  # verbatim, not re-serialized
        "roleArn": ROLE,
        "type": "STANDARD",
        "creationDate": created["creationDate"],
        "loggingConfiguration": {"level": "OFF", "includeExecutionData": False},
        "tracingConfiguration": {"enabled": False},
    }


def test_create_state_machine_is_idempotent_for_the_same_request(sfn: Any) -> None:
    name = unique()
    first = sfn.create_state_machine(name=name, definition=pass_machine(), roleArn=ROLE)
    again = sfn.create_state_machine(name=name, definition=pass_machine(), roleArn=ROLE)
    assert again["stateMachineArn"] == first["stateMachineArn"]
    assert again["creationDate"] == first["creationDate"]


def test_create_state_machine_with_another_definition_already_exists(sfn: Any) -> None:
    name = unique()
    create(sfn, pass_machine(), name=name)
    with aws_error("StateMachineAlreadyExists"):
        create(sfn, pass_machine(Result=2), name=name)


@pytest.mark.parametrize(
    ("definition", "diagnostic"),
    [
        ("{}", "SCHEMA_VALIDATION_FAILED"),
        ("not json", "INVALID_JSON_DESCRIPTION"),
        (
            json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}),
            "MISSING_TRANSITION_TARGET",
        ),
    ],
    ids=["no-states", "not-json", "missing-target"],
)
def test_create_state_machine_refuses_an_invalid_definition(
    sfn: Any, definition: str, diagnostic: str
) -> None:
    with aws_error("InvalidDefinition") as info:
        create(sfn, definition)
    assert diagnostic in info.value.response["Error"]["Message"]


@pytest.mark.parametrize("name", ["has space", "colon:in", "star*", "slash/in"])
def test_create_state_machine_refuses_an_invalid_name(sfn: Any, name: str) -> None:
    with aws_error("InvalidName"):
        create(sfn, pass_machine(), name=name)


def test_a_name_longer_than_80_characters_is_a_validation_exception(sfn: Any) -> None:
    with aws_error("ValidationException") as info:
        create(sfn, pass_machine(), name="n" * 81)
    assert "'name'" in info.value.response["Error"]["Message"]


@pytest.mark.parametrize("operation", ["list_state_machines", "list_activities"])
def test_max_results_over_1000_is_a_validation_exception(sfn: Any, operation: str) -> None:
    with aws_error("ValidationException"):
        getattr(sfn, operation)(maxResults=1001)


def test_update_state_machine(sfn: Any) -> None:
    arn = create(sfn, pass_machine(Result=1))
    changed = pass_machine(Result=2)
    updated = sfn.update_state_machine(stateMachineArn=arn, definition=changed)
    assert isinstance(updated["updateDate"], datetime)
    described = sfn.describe_state_machine(stateMachineArn=arn)
    assert described["definition"] == changed
    assert described["revisionId"] == updated["revisionId"]

    published = sfn.update_state_machine(
        stateMachineArn=arn,
        definition=pass_machine(Result=3),
        publish=True,
        versionDescription="three",
    )
    assert published["stateMachineVersionArn"] == f"{arn}:1"
    version = sfn.describe_state_machine(stateMachineArn=f"{arn}:1")
    assert json.loads(version["definition"])["States"]["Only"]["Result"] == 3
    assert version["description"] == "three"


def test_update_state_machine_refusals(sfn: Any) -> None:
    arn = create(sfn, pass_machine())
    with aws_error("MissingRequiredParameter"):
        sfn.update_state_machine(stateMachineArn=arn)
    with aws_error("InvalidDefinition"):
        sfn.update_state_machine(stateMachineArn=arn, definition="{}")
    with aws_error("StateMachineDoesNotExist"):
        sfn.update_state_machine(stateMachineArn=machine_arn(unique()), definition=pass_machine())


def test_delete_state_machine(sfn: Any) -> None:
    arn = create(sfn, pass_machine())
    sfn.delete_state_machine(stateMachineArn=arn)

    def gone() -> bool:
        try:
            sfn.describe_state_machine(stateMachineArn=arn)
        except sfn.exceptions.StateMachineDoesNotExist:
            return True
        return False

    wait_until(gone, f"{arn} deleted")
    listed = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]
    assert arn not in listed
    sfn.delete_state_machine(stateMachineArn=arn)  # AWS: deleting twice is no error


def test_list_state_machines_pages_through_every_machine(sfn: Any) -> None:
    prefix = unique("page")
    mine = {create(sfn, pass_machine(), name=f"{prefix}-{i}") for i in range(5)}
    pages = all_pages(sfn.list_state_machines, "stateMachines", maxResults=2)
    assert all(len(page) <= 2 for page in pages)
    paged = [m["stateMachineArn"] for page in pages for m in page]
    assert len(paged) == len(set(paged)), "a machine listed twice"
    everything = {
        m["stateMachineArn"]
        for page in all_pages(sfn.list_state_machines, "stateMachines")
        for m in page
    }
    assert set(paged) == everything
    assert mine <= everything
    listed = {m["name"]: m for page in pages for m in page}
    assert listed[f"{prefix}-0"]["type"] == "STANDARD"


def test_list_state_machines_refuses_a_token_it_did_not_issue(sfn: Any) -> None:
    with aws_error("InvalidToken"):
        sfn.list_state_machines(nextToken="not-a-token-of-ours")


def test_validate_state_machine_definition(sfn: Any) -> None:
    ok = sfn.validate_state_machine_definition(definition=pass_machine(), type="STANDARD")
    assert ok["result"] == "OK"
    assert ok["diagnostics"] == []

    missing = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}})
    failed = sfn.validate_state_machine_definition(definition=missing)
    assert failed["result"] == "FAIL"
    first = failed["diagnostics"][0]
    assert (first["severity"], first["code"], first["location"]) == (
        "ERROR",
        "MISSING_TRANSITION_TARGET",
        "/States/A/Next",
    )


# --- versions and aliases ------------------------------------------------------------------


def test_publish_list_describe_and_delete_versions(sfn: Any) -> None:
    arn = create(sfn, pass_machine(Result=1))
    v1 = sfn.publish_state_machine_version(stateMachineArn=arn, description="first")
    assert v1["stateMachineVersionArn"] == f"{arn}:1"
    # The same revision published again is the same version.
    again = sfn.publish_state_machine_version(stateMachineArn=arn)
    assert again["stateMachineVersionArn"] == f"{arn}:1"

    revision = sfn.update_state_machine(stateMachineArn=arn, definition=pass_machine(Result=2))
    with aws_error("ConflictException"):
        sfn.publish_state_machine_version(stateMachineArn=arn, revisionId="not-the-revision")
    v2 = sfn.publish_state_machine_version(stateMachineArn=arn, revisionId=revision["revisionId"])
    assert v2["stateMachineVersionArn"] == f"{arn}:2"

    # AWS: versions are listed newest first.
    pages = all_pages(
        sfn.list_state_machine_versions, "stateMachineVersions", stateMachineArn=arn, maxResults=1
    )
    assert all(len(page) <= 1 for page in pages)
    assert [v["stateMachineVersionArn"] for page in pages for v in page] == [
        f"{arn}:2",
        f"{arn}:1",
    ]

    first = sfn.describe_state_machine(stateMachineArn=f"{arn}:1")
    assert first["stateMachineArn"] == f"{arn}:1"
    assert first["description"] == "first"
    assert json.loads(first["definition"])["States"]["Only"]["Result"] == 1

    sfn.delete_state_machine_version(stateMachineVersionArn=f"{arn}:1")
    listed = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in listed] == [f"{arn}:2"]
    with aws_error("StateMachineDoesNotExist"):
        sfn.describe_state_machine(stateMachineArn=f"{arn}:1")
    with aws_error("ValidationException"):  # a machine ARN is not a version ARN
        sfn.delete_state_machine_version(stateMachineVersionArn=arn)


def test_alias_lifecycle(sfn: Any) -> None:
    arn, (v1, v2) = versioned(sfn, 2)
    routing = [{"stateMachineVersionArn": v1, "weight": 100}]
    created = sfn.create_state_machine_alias(
        name="live", routingConfiguration=routing, description="production"
    )
    alias = created["stateMachineAliasArn"]
    assert alias == f"{arn}:live"
    # Idempotent for the same name, routing and description; anything else conflicts.
    again = sfn.create_state_machine_alias(
        name="live", routingConfiguration=routing, description="production"
    )
    assert again["stateMachineAliasArn"] == alias
    with aws_error("ConflictException"):
        sfn.create_state_machine_alias(
            name="live", routingConfiguration=[{"stateMachineVersionArn": v2, "weight": 100}]
        )

    described = sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    assert described["name"] == "live"
    assert described["description"] == "production"
    assert described["routingConfiguration"] == routing
    assert described["creationDate"] == created["creationDate"]

    split = [
        {"stateMachineVersionArn": v1, "weight": 10},
        {"stateMachineVersionArn": v2, "weight": 90},
    ]
    sfn.update_state_machine_alias(stateMachineAliasArn=alias, routingConfiguration=split)
    assert (
        sfn.describe_state_machine_alias(stateMachineAliasArn=alias)["routingConfiguration"]
        == split
    )
    with aws_error("ConflictException"):  # AWS: a version an alias routes to stays
        sfn.delete_state_machine_version(stateMachineVersionArn=v1)

    listed = sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"]
    assert [a["stateMachineAliasArn"] for a in listed] == [alias]

    sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
    with aws_error("ResourceNotFound"):
        sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    assert sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"] == []


def test_alias_refusals(sfn: Any) -> None:
    arn, (v1,) = versioned(sfn, 1)
    with aws_error("ValidationException"):  # weights must add up to 100
        sfn.create_state_machine_alias(
            name="half", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 50}]
        )
    with aws_error("ResourceNotFound"):
        sfn.create_state_machine_alias(
            name="ghost",
            routingConfiguration=[{"stateMachineVersionArn": f"{arn}:9", "weight": 100}],
        )
    with aws_error("ResourceNotFound"):
        sfn.describe_state_machine_alias(stateMachineAliasArn=f"{arn}:nope")


def test_start_execution_through_an_alias_follows_its_weights(sfn: Any) -> None:
    _, (v1, v2) = versioned(sfn, 2)
    alias = sfn.create_state_machine_alias(
        name="canary",
        routingConfiguration=[
            {"stateMachineVersionArn": v1, "weight": 70},
            {"stateMachineVersionArn": v2, "weight": 30},
        ],
    )["stateMachineAliasArn"]
    starts = 200
    arns = [
        sfn.start_execution(stateMachineArn=alias, input="{}")["executionArn"]
        for _ in range(starts)
    ]
    last = wait_until_done(sfn, arns[-1])
    assert last["stateMachineAliasArn"] == alias
    assert last["stateMachineVersionArn"] in (v1, v2)
    assert json.loads(last["output"]) == (1 if last["stateMachineVersionArn"] == v1 else 2)

    counts = Counter(
        e["stateMachineVersionArn"]
        for version in (v1, v2)
        for page in all_pages(sfn.list_executions, "executions", stateMachineArn=version)
        for e in page
    )
    assert counts[v1] + counts[v2] == starts
    # Binomial(200, 0.7): mean 140, standard deviation 6.5; 5 deviations either side fail
    # about once in a million runs.
    assert 108 <= counts[v1] <= 172, counts


# --- tags ----------------------------------------------------------------------------------


def tag_map(sfn: Any, arn: str) -> dict[str, str]:
    return {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}


def test_tag_untag_and_list_tags(sfn: Any) -> None:
    arn = create(sfn, pass_machine(), tags=[{"key": "team", "value": "payments"}])
    assert tag_map(sfn, arn) == {"team": "payments"}
    sfn.tag_resource(
        resourceArn=arn, tags=[{"key": "env", "value": "dev"}, {"key": "team", "value": "ops"}]
    )
    assert tag_map(sfn, arn) == {"team": "ops", "env": "dev"}
    sfn.untag_resource(resourceArn=arn, tagKeys=["team", "never-set"])
    assert tag_map(sfn, arn) == {"env": "dev"}

    activity = sfn.create_activity(name=unique(), tags=[{"key": "k", "value": "v"}])
    assert tag_map(sfn, activity["activityArn"]) == {"k": "v"}


def test_tag_refusals(sfn: Any) -> None:
    arn = create(sfn, pass_machine())
    with aws_error("TooManyTags"):  # AWS: at most 50 tags per resource
        sfn.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    unknown = machine_arn(unique())
    with aws_error("ResourceNotFound"):
        sfn.tag_resource(resourceArn=unknown, tags=[{"key": "k", "value": "v"}])
    with aws_error("ResourceNotFound"):
        sfn.untag_resource(resourceArn=unknown, tagKeys=["k"])
    with aws_error("ResourceNotFound"):
        sfn.list_tags_for_resource(resourceArn=unknown)


# --- activities and task tokens -------------------------------------------------------------


def activity_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:activity:{name}"


def test_activity_lifecycle(sfn: Any) -> None:
    name = unique()
    created = sfn.create_activity(name=name)
    assert created["activityArn"] == activity_arn(name)
    again = sfn.create_activity(name=name)  # AWS: idempotent on the name
    assert again["activityArn"] == created["activityArn"]

    described = sfn.describe_activity(activityArn=created["activityArn"])
    assert described["name"] == name
    assert described["creationDate"] == created["creationDate"]
    listed = [
        a["activityArn"] for page in all_pages(sfn.list_activities, "activities") for a in page
    ]
    assert created["activityArn"] in listed

    sfn.delete_activity(activityArn=created["activityArn"])
    with aws_error("ActivityDoesNotExist"):
        sfn.describe_activity(activityArn=created["activityArn"])


def test_activity_refusals(sfn: Any) -> None:
    with aws_error("InvalidName"):
        sfn.create_activity(name="has space")
    with aws_error("ActivityDoesNotExist"):
        sfn.get_activity_task(activityArn=activity_arn(unique()), workerName="w")
    with aws_error("InvalidArn"):
        sfn.describe_activity(activityArn="not-an-arn")


@pytest.mark.parametrize(
    ("operation", "extra"),
    [
        ("send_task_success", {"output": "{}"}),
        ("send_task_failure", {"error": "E", "cause": "C"}),
        ("send_task_heartbeat", {}),
    ],
)
def test_an_unknown_task_token_is_invalid_token(
    sfn: Any, operation: str, extra: dict[str, str]
) -> None:
    with aws_error("InvalidToken"):
        getattr(sfn, operation)(taskToken="not-a-task-token", **extra)


# --- TestState ---------------------------------------------------------------------------


def test_test_state_runs_a_pass_state_and_shows_each_stage(sfn_sync: Any) -> None:
    state = {
        "Type": "Pass",
        "InputPath": "$.numbers",
        "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"},
        "ResultPath": "$.total",
        "Next": "After",
    }
    answer = sfn_sync.test_state(
        definition=json.dumps(state),
        input=json.dumps({"numbers": {"a": 1, "b": 2}}),
        inspectionLevel="DEBUG",
    )
    assert answer["status"] == "SUCCEEDED"
    assert answer["nextState"] == "After"
    # ASL: ResultPath places the result into the state's raw input, not InputPath's selection.
    output = {"numbers": {"a": 1, "b": 2}, "total": {"sum": 3}}
    assert json.loads(answer["output"]) == output
    inspection = {
        k: json.loads(v)
        for k, v in answer["inspectionData"].items()
        if k in ("input", "afterInputPath", "afterParameters", "afterResultPath")
    }
    assert inspection == {
        "input": {"numbers": {"a": 1, "b": 2}},
        "afterInputPath": {"a": 1, "b": 2},
        "afterParameters": {"sum": 3},
        "afterResultPath": output,
    }

    info = sfn_sync.test_state(definition=json.dumps(state), input='{"numbers": {"a": 1, "b": 1}}')
    assert "inspectionData" not in info


def test_test_state_reports_a_fail_state(sfn_sync: Any) -> None:
    answer = sfn_sync.test_state(
        definition=json.dumps({"Type": "Fail", "Error": "Oops", "Cause": "on purpose"}),
        input="{}",
    )
    assert (answer["status"], answer["error"], answer["cause"]) == ("FAILED", "Oops", "on purpose")


def test_test_state_calls_the_lambda_function(sfn_sync: Any) -> None:
    task = {"Type": "Task", "Resource": lambda_arn("echo"), "End": True}
    answer = sfn_sync.test_state(definition=json.dumps(task), roleArn=ROLE, input='{"x": 1}')
    assert answer["status"] == "SUCCEEDED"
    assert json.loads(answer["output"]) == {"x": 1}
    assert "nextState" not in answer


@pytest.mark.parametrize(
    ("definition", "input_text", "code"),
    [
        ('{"Type": "NoSuchType"}', "{}", "InvalidDefinition"),
        ('{"Type": "Pass", "End": true}', "{not json", "InvalidExecutionInput"),
    ],
    ids=["bad-definition", "bad-input"],
)
def test_test_state_refusals(sfn_sync: Any, definition: str, input_text: str, code: str) -> None:
    with aws_error(code):
        sfn_sync.test_state(definition=definition, input=input_text)
