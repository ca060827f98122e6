"""The CatalogStore contract (versions, aliases, tags, activities), run on every backend."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from storage_rows import MACHINE_ARN, at

from flowstate.storage import InvalidToken, SQLiteStore, Store
from flowstate.storage.catalog import (
    ActivityRecord,
    AliasRecord,
    LimitExceeded,
    Route,
    VersionInUse,
    VersionRecord,
    VersionsMissing,
)

ACTIVITY_ARN = "arn:aws:states:us-east-1:123456789012:activity:charge"


def draft(revision: str, seconds: float = 0.0, description: str | None = None) -> VersionRecord:
    return VersionRecord(
        state_machine_arn=MACHINE_ARN,
        version=0,
        revision_id=revision,
        definition=f'{{"rev":"{revision}"}}',
        role_arn="arn:aws:iam::123456789012:role/flowstate",
        created_at=at(seconds),
        description=description,
        attributes='{"tracingConfiguration":{"enabled":false}}',
    )


def alias(name: str, *routes: tuple[int, int], seconds: float = 0.0) -> AliasRecord:
    return AliasRecord(
        state_machine_arn=MACHINE_ARN,
        name=name,
        routes=tuple(Route(v, w) for v, w in routes),
        created_at=at(seconds),
        updated_at=at(seconds),
        description=f"{name} alias",
    )


# --- versions ------------------------------------------------------------------------------


def test_published_versions_are_numbered_from_one_and_read_back(store: Store) -> None:
    first, created = store.publish_version(draft("r1", description="first"), limit=10)
    assert created and first.version == 1 and first.arn == f"{MACHINE_ARN}:1"
    second, _ = store.publish_version(draft("r2", 5), limit=10)
    assert second.version == 2

    assert store.get_version(MACHINE_ARN, 1) == first
    assert first.description == "first" and first.definition == '{"rev":"r1"}'
    assert store.get_version(MACHINE_ARN, 2) == replace(draft("r2", 5), version=2)
    assert store.get_version(MACHINE_ARN, 3) is None
    assert store.version_of_revision(MACHINE_ARN, "r2") == second
    assert store.version_of_revision(MACHINE_ARN, "r9") is None


def test_publishing_a_revision_again_returns_its_version(store: Store) -> None:
    first, _ = store.publish_version(draft("r1"), limit=10)
    again, created = store.publish_version(draft("r1", 60, description="other"), limit=10)
    assert created is False and again == first
    assert [v.version for v in store.list_versions(MACHINE_ARN).items] == [1]


def test_version_numbers_are_never_reused_after_a_delete(store: Store) -> None:
    store.publish_version(draft("r1"), limit=10)
    store.publish_version(draft("r2"), limit=10)
    assert store.delete_version(MACHINE_ARN, 2) is True
    assert store.delete_version(MACHINE_ARN, 2) is False
    third, _ = store.publish_version(draft("r2"), limit=10)
    assert third.version == 3


def test_version_quota_is_counted_in_the_transaction(store: Store) -> None:
    store.publish_version(draft("r1"), limit=2)
    store.publish_version(draft("r2"), limit=2)
    with pytest.raises(LimitExceeded):
        store.publish_version(draft("r3"), limit=2)
    assert store.version_of_revision(MACHINE_ARN, "r3") is None
    # The same revision is not a new version, so the quota does not apply.
    assert store.publish_version(draft("r2"), limit=2)[1] is False


def test_versions_list_newest_first_in_pages(store: Store) -> None:
    for n in range(1, 6):
        store.publish_version(draft(f"r{n}", n), limit=10)
    first = store.list_versions(MACHINE_ARN, max_results=2)
    assert [v.version for v in first.items] == [5, 4] and first.next_token
    second = store.list_versions(MACHINE_ARN, max_results=2, next_token=first.next_token)
    assert [v.version for v in second.items] == [3, 2]
    assert second.next_token is not None
    last = store.list_versions(MACHINE_ARN, max_results=2, next_token=second.next_token)
    assert [v.version for v in last.items] == [1] and last.next_token is None
    with pytest.raises(InvalidToken):
        store.list_versions(MACHINE_ARN + "-other", next_token=first.next_token)


def test_a_version_an_alias_routes_to_cannot_be_deleted(store: Store) -> None:
    store.publish_version(draft("r1"), limit=10)
    store.publish_version(draft("r2"), limit=10)
    store.create_alias(alias("prod", (1, 100)), limit=10)
    store.create_alias(alias("beta", (2, 60), (1, 40)), limit=10)
    with pytest.raises(VersionInUse) as refused:
        store.delete_version(MACHINE_ARN, 1)
    assert refused.value.aliases == ["beta", "prod"]
    assert store.get_version(MACHINE_ARN, 1) is not None
    store.update_alias(replace(alias("beta", (2, 100)), updated_at=at(9)))
    store.delete_alias(MACHINE_ARN, "prod")
    assert store.delete_version(MACHINE_ARN, 1) is True


# --- aliases -------------------------------------------------------------------------------


def test_alias_round_trip_keeps_route_order(store: Store) -> None:
    store.publish_version(draft("r1"), limit=10)
    store.publish_version(draft("r2"), limit=10)
    created, is_new = store.create_alias(alias("prod", (2, 70), (1, 30)), limit=10)
    assert is_new and created.arn == f"{MACHINE_ARN}:prod"
    assert store.get_alias(MACHINE_ARN, "prod") == alias("prod", (2, 70), (1, 30))
    assert store.get_alias(MACHINE_ARN, "beta") is None


def test_creating_an_existing_alias_returns_the_stored_one(store: Store) -> None:
    store.publish_version(draft("r1"), limit=10)
    store.create_alias(alias("prod", (1, 100)), limit=10)
    stored, is_new = store.create_alias(alias("prod", (1, 100), seconds=50), limit=1)
    assert is_new is False and stored.created_at == at(0)


def test_aliases_need_existing_versions(store: Store) -> None:
    store.publish_version(draft("r1"), limit=10)
    with pytest.raises(VersionsMissing) as missing:
        store.create_alias(alias("prod", (1, 50), (7, 50)), limit=10)
    assert missing.value.versions == [7]
    assert store.get_alias(MACHINE_ARN, "prod") is None
    store.create_alias(alias("prod", (1, 100)), limit=10)
    with pytest.raises(VersionsMissing):
        store.update_alias(alias("prod", (8, 100)))
    assert store.get_alias(MACHINE_ARN, "prod") == alias("prod", (1, 100))


def test_alias_quota(store: Store) -> None:
    store.publish_version(draft("r1"), limit=10)
    store.create_alias(alias("a", (1, 100)), limit=1)
    with pytest.raises(LimitExceeded):
        store.create_alias(alias("b", (1, 100)), limit=1)
    assert store.get_alias(MACHINE_ARN, "b") is None


def test_update_alias_keeps_its_creation_date(store: Store) -> None:
    store.publish_version(draft("r1"), limit=10)
    store.publish_version(draft("r2"), limit=10)
    store.create_alias(alias("prod", (1, 100)), limit=10)
    changed = replace(alias("prod", (1, 50), (2, 50)), updated_at=at(30), description=None)
    assert store.update_alias(replace(changed, created_at=at(99))) is True
    assert store.get_alias(MACHINE_ARN, "prod") == changed
    assert store.update_alias(alias("beta", (1, 100))) is False
    assert store.get_alias(MACHINE_ARN, "beta") is None


def test_aliases_list_by_name_and_by_version(store: Store) -> None:
    store.publish_version(draft("r1"), limit=10)
    store.publish_version(draft("r2"), limit=10)
    for name, routes in [("c", [(1, 100)]), ("a", [(2, 100)]), ("b", [(1, 10), (2, 90)])]:
        store.create_alias(alias(name, *routes), limit=10)
    first = store.list_aliases(MACHINE_ARN, max_results=2)
    assert [a.name for a in first.items] == ["a", "b"] and first.next_token
    rest = store.list_aliases(MACHINE_ARN, max_results=2, next_token=first.next_token)
    assert [a.name for a in rest.items] == ["c"] and rest.next_token is None
    assert rest.items[0].routes == (Route(1, 100),)
    assert [a.name for a in store.list_aliases(MACHINE_ARN, version=1).items] == ["b", "c"]
    assert [a.name for a in store.list_aliases(MACHINE_ARN, version=3).items] == []
    with pytest.raises(InvalidToken):
        store.list_aliases(MACHINE_ARN, version=1, next_token=first.next_token)


def test_delete_alias(store: Store) -> None:
    store.publish_version(draft("r1"), limit=10)
    store.create_alias(alias("prod", (1, 100)), limit=10)
    assert store.delete_alias(MACHINE_ARN, "prod") is True
    assert store.delete_alias(MACHINE_ARN, "prod") is False
    assert store.get_alias(MACHINE_ARN, "prod") is None
    assert store.list_aliases(MACHINE_ARN, version=1).items == []


# --- tags ----------------------------------------------------------------------------------


def test_tags_merge_overwrite_and_remove(store: Store) -> None:
    assert store.get_tags(MACHINE_ARN) == {}
    store.add_tags(MACHINE_ARN, {"team": "payments", "env": "dev"}, limit=50)
    store.add_tags(MACHINE_ARN, {"env": "prod"}, limit=50)
    assert list(store.get_tags(MACHINE_ARN).items()) == [("env", "prod"), ("team", "payments")]
    store.remove_tags(MACHINE_ARN, ["team", "absent"])
    assert store.get_tags(MACHINE_ARN) == {"env": "prod"}
    assert store.get_tags(ACTIVITY_ARN) == {}


def test_tag_quota_counts_the_merged_keys(store: Store) -> None:
    store.add_tags(MACHINE_ARN, {"a": "1", "b": "2"}, limit=3)
    store.add_tags(MACHINE_ARN, {"a": "x", "c": "3"}, limit=3)  # a is overwritten: 3 keys
    with pytest.raises(LimitExceeded):
        store.add_tags(MACHINE_ARN, {"d": "4"}, limit=3)
    assert store.get_tags(MACHINE_ARN) == {"a": "x", "b": "2", "c": "3"}


# --- activities ----------------------------------------------------------------------------


def test_activities_are_created_once(store: Store) -> None:
    activity = ActivityRecord(ACTIVITY_ARN, "charge", at(0), '{"x":1}')
    assert store.create_activity(activity) == (activity, True)
    again = ActivityRecord(ACTIVITY_ARN, "charge", at(60))
    assert store.create_activity(again) == (activity, False)
    assert store.get_activity(ACTIVITY_ARN) == activity
    assert store.get_activity(ACTIVITY_ARN + "x") is None


def test_activities_list_by_arn_in_pages(store: Store) -> None:
    for name in ["c", "a", "b"]:
        store.create_activity(ActivityRecord(f"{ACTIVITY_ARN[:-6]}{name}", name, at(0)))
    first = store.list_activities(max_results=2)
    assert [a.name for a in first.items] == ["a", "b"] and first.next_token
    rest = store.list_activities(max_results=2, next_token=first.next_token)
    assert [a.name for a in rest.items] == ["c"] and rest.next_token is None
    with pytest.raises(InvalidToken):
        store.list_activities(next_token="garbage")


def test_delete_activity_takes_its_tags(store: Store) -> None:
    store.create_activity(ActivityRecord(ACTIVITY_ARN, "charge", at(0)))
    store.add_tags(ACTIVITY_ARN, {"team": "payments"}, limit=50)
    assert store.delete_activity(ACTIVITY_ARN) is True
    assert store.delete_activity(ACTIVITY_ARN) is False
    assert store.get_tags(ACTIVITY_ARN) == {}
    assert store.get_activity(ACTIVITY_ARN) is None


# --- lifecycle -----------------------------------------------------------------------------


def test_delete_catalog_removes_everything_of_one_machine(store: Store) -> None:
    other = MACHINE_ARN + "-other"
    store.publish_version(draft("r1"), limit=10)
    store.publish_version(replace(draft("r1"), state_machine_arn=other), limit=10)
    store.create_alias(alias("prod", (1, 100)), limit=10)
    store.add_tags(MACHINE_ARN, {"a": "1"}, limit=50)
    store.add_tags(other, {"a": "1"}, limit=50)

    store.delete_catalog(MACHINE_ARN)

    assert store.get_version(MACHINE_ARN, 1) is None
    assert store.get_alias(MACHINE_ARN, "prod") is None
    assert store.list_aliases(MACHINE_ARN, version=1).items == []
    assert store.get_tags(MACHINE_ARN) == {}
    # A machine created again under the same name is a new resource: numbering restarts.
    assert store.publish_version(draft("r9"), limit=10)[0].version == 1
    assert store.get_version(other, 1) is not None and store.get_tags(other) == {"a": "1"}


def test_the_catalog_survives_reopening_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    store = SQLiteStore(path)
    store.publish_version(draft("r1"), limit=10)
    store.create_alias(alias("prod", (1, 100)), limit=10)
    store.add_tags(MACHINE_ARN, {"team": "payments"}, limit=50)
    store.create_activity(ActivityRecord(ACTIVITY_ARN, "charge", at(0)))
    store.close()

    reopened = SQLiteStore(path)
    try:
        assert reopened.get_version(MACHINE_ARN, 1) == replace(draft("r1"), version=1)
        assert reopened.get_alias(MACHINE_ARN, "prod") == alias("prod", (1, 100))
        assert reopened.get_tags(MACHINE_ARN) == {"team": "payments"}
        assert reopened.get_activity(ACTIVITY_ARN) is not None
        assert reopened.publish_version(draft("r2"), limit=10)[0].version == 2
    finally:
        reopened.close()
