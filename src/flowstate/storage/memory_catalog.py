"""``CatalogStore`` in memory, mixed into ``MemoryStore``."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from flowstate.storage.catalog import (
    ActivityRecord,
    AliasRecord,
    LimitExceeded,
    VersionInUse,
    VersionRecord,
    VersionsMissing,
)
from flowstate.storage.records import DEFAULT_MAX_RESULTS, Page
from flowstate.storage.tokens import decode_token, encode_token

__all__ = ["MemoryCatalog"]


@dataclass(slots=True)
class _Catalog:
    versions: dict[str, dict[int, VersionRecord]] = field(default_factory=dict)
    last_version: dict[str, int] = field(default_factory=dict)
    aliases: dict[str, dict[str, AliasRecord]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    activities: dict[str, ActivityRecord] = field(default_factory=dict)


class MemoryCatalog:
    # Provided by MemoryStore.__init__ (which does not call ours): the catalog's dicts are
    # created on first use, always under the lock.
    _lock: threading.RLock

    @property
    def _catalog(self) -> _Catalog:
        state: _Catalog | None = self.__dict__.get("_catalog_state")
        if state is None:
            state = self.__dict__["_catalog_state"] = _Catalog()
        return state

    # --- versions -------------------------------------------------------------------------

    def publish_version(self, draft: VersionRecord, limit: int) -> tuple[VersionRecord, bool]:
        arn = draft.state_machine_arn
        with self._lock:
            catalog = self._catalog
            versions = catalog.versions.setdefault(arn, {})
            for stored in versions.values():
                if stored.revision_id == draft.revision_id:
                    return stored, False
            if len(versions) >= limit:
                raise LimitExceeded(f"versions of {arn}", limit)
            number = catalog.last_version.get(arn, 0) + 1
            catalog.last_version[arn] = number
            published = VersionRecord(
                state_machine_arn=arn,
                version=number,
                revision_id=draft.revision_id,
                definition=draft.definition,
                role_arn=draft.role_arn,
                created_at=draft.created_at,
                description=draft.description,
                attributes=draft.attributes,
            )
            versions[number] = published
            return published, True

    def get_version(self, state_machine_arn: str, version: int) -> VersionRecord | None:
        with self._lock:
            return self._catalog.versions.get(state_machine_arn, {}).get(version)

    def version_of_revision(self, state_machine_arn: str, revision_id: str) -> VersionRecord | None:
        with self._lock:
            found = [
                v
                for v in self._catalog.versions.get(state_machine_arn, {}).values()
                if v.revision_id == revision_id
            ]
        return max(found, key=lambda v: v.version) if found else None

    def list_versions(
        self,
        state_machine_arn: str,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
    ) -> Page[VersionRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["versions", state_machine_arn]
        before = decode_token(next_token, query)[0] if next_token else None
        with self._lock:
            versions = self._catalog.versions.get(state_machine_arn, {})
            numbers = sorted((n for n in versions if before is None or n < before), reverse=True)
            items = [versions[n] for n in numbers[: limit + 1]]
        if len(items) > limit:
            items = items[:limit]
            return Page(items, encode_token(query, [items[-1].version]))
        return Page(items)

    def delete_version(self, state_machine_arn: str, version: int) -> bool:
        with self._lock:
            versions = self._catalog.versions.get(state_machine_arn, {})
            if version not in versions:
                return False
            routing = sorted(
                alias.name
                for alias in self._catalog.aliases.get(state_machine_arn, {}).values()
                if any(route.version == version for route in alias.routes)
            )
            if routing:
                raise VersionInUse(versions[version].arn, routing)
            del versions[version]
            return True

    # --- aliases --------------------------------------------------------------------------

    def _check_routes(self, alias: AliasRecord) -> None:
        versions = self._catalog.versions.get(alias.state_machine_arn, {})
        missing = sorted({r.version for r in alias.routes if r.version not in versions})
        if missing:
            raise VersionsMissing(alias.state_machine_arn, missing)

    def create_alias(self, alias: AliasRecord, limit: int) -> tuple[AliasRecord, bool]:
        with self._lock:
            aliases = self._catalog.aliases.setdefault(alias.state_machine_arn, {})
            stored = aliases.get(alias.name)
            if stored is not None:
                return stored, False
            self._check_routes(alias)
            if len(aliases) >= limit:
                raise LimitExceeded(f"aliases of {alias.state_machine_arn}", limit)
            aliases[alias.name] = alias
            return alias, True

    def update_alias(self, alias: AliasRecord) -> bool:
        with self._lock:
            aliases = self._catalog.aliases.get(alias.state_machine_arn, {})
            stored = aliases.get(alias.name)
            if stored is None:
                return False
            self._check_routes(alias)
            aliases[alias.name] = AliasRecord(
                state_machine_arn=stored.state_machine_arn,
                name=stored.name,
                routes=alias.routes,
                created_at=stored.created_at,
                updated_at=alias.updated_at,
                description=alias.description,
            )
            return True

    def get_alias(self, state_machine_arn: str, name: str) -> AliasRecord | None:
        with self._lock:
            return self._catalog.aliases.get(state_machine_arn, {}).get(name)

    def list_aliases(
        self,
        state_machine_arn: str,
        version: int | None = None,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
    ) -> Page[AliasRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["aliases", state_machine_arn, version]
        after = decode_token(next_token, query)[0] if next_token else None
        with self._lock:
            aliases = self._catalog.aliases.get(state_machine_arn, {})
            names = sorted(
                name
                for name, alias in aliases.items()
                if (after is None or name > after)
                and (version is None or any(r.version == version for r in alias.routes))
            )
            items = [aliases[name] for name in names[: limit + 1]]
        if len(items) > limit:
            items = items[:limit]
            return Page(items, encode_token(query, [items[-1].name]))
        return Page(items)

    def delete_alias(self, state_machine_arn: str, name: str) -> bool:
        with self._lock:
            return self._catalog.aliases.get(state_machine_arn, {}).pop(name, None) is not None

    # --- tags -----------------------------------------------------------------------------

    def get_tags(self, resource_arn: str) -> dict[str, str]:
        with self._lock:
            tags = self._catalog.tags.get(resource_arn, {})
            return {key: tags[key] for key in sorted(tags)}

    def add_tags(self, resource_arn: str, tags: Mapping[str, str], limit: int) -> None:
        with self._lock:
            stored = self._catalog.tags.get(resource_arn, {})
            if len(stored.keys() | tags.keys()) > limit:
                raise LimitExceeded(f"tags of {resource_arn}", limit)
            self._catalog.tags[resource_arn] = {**stored, **tags}

    def remove_tags(self, resource_arn: str, keys: Sequence[str]) -> None:
        with self._lock:
            stored = self._catalog.tags.get(resource_arn, {})
            for key in keys:
                stored.pop(key, None)

    # --- activities -----------------------------------------------------------------------

    def create_activity(self, activity: ActivityRecord) -> tuple[ActivityRecord, bool]:
        with self._lock:
            stored = self._catalog.activities.get(activity.arn)
            if stored is not None:
                return stored, False
            self._catalog.activities[activity.arn] = activity
            return activity, True

    def get_activity(self, arn: str) -> ActivityRecord | None:
        with self._lock:
            return self._catalog.activities.get(arn)

    def list_activities(
        self, max_results: int = DEFAULT_MAX_RESULTS, next_token: str | None = None
    ) -> Page[ActivityRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["activities"]
        after = decode_token(next_token, query)[0] if next_token else None
        with self._lock:
            activities = self._catalog.activities
            arns = sorted(arn for arn in activities if after is None or arn > after)
            items = [activities[arn] for arn in arns[: limit + 1]]
        if len(items) > limit:
            items = items[:limit]
            return Page(items, encode_token(query, [items[-1].arn]))
        return Page(items)

    def delete_activity(self, arn: str) -> bool:
        with self._lock:
            self._catalog.tags.pop(arn, None)
            return self._catalog.activities.pop(arn, None) is not None

    # --- lifecycle ------------------------------------------------------------------------

    def delete_catalog(self, state_machine_arn: str) -> None:
        with self._lock:
            catalog = self._catalog
            catalog.versions.pop(state_machine_arn, None)
            catalog.last_version.pop(state_machine_arn, None)
            catalog.aliases.pop(state_machine_arn, None)
            catalog.tags.pop(state_machine_arn, None)
