"""``CatalogStore`` in portable SQL, mixed into ``SQLStore``.

Every check that guards a write (the next version number, quotas, the aliases routing to a
version) runs inside the write transaction that makes the write, so concurrent requests on
other connections or nodes cannot slip past it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from flowstate.storage.catalog import (
    ActivityRecord,
    AliasRecord,
    LimitExceeded,
    Route,
    VersionInUse,
    VersionRecord,
    VersionsMissing,
)
from flowstate.storage.records import DEFAULT_MAX_RESULTS, Page
from flowstate.storage.timestamps import from_micros, micros
from flowstate.storage.tokens import decode_token, encode_token

if TYPE_CHECKING:
    from flowstate.storage.sql import Dialect

__all__ = ["SQLCatalog"]

_VERSION_COLUMNS = (
    "state_machine_arn, version, revision_id, definition, role_arn, description, attributes, "
    "created_at"
)
_ALIAS_COLUMNS = "state_machine_arn, name, description, created_at, updated_at"
_ACTIVITY_COLUMNS = "arn, name, attributes, created_at"


def _version(row: Sequence[Any]) -> VersionRecord:
    return VersionRecord(
        state_machine_arn=row[0],
        version=row[1],
        revision_id=row[2],
        definition=row[3],
        role_arn=row[4],
        description=row[5],
        attributes=row[6],
        created_at=from_micros(row[7]),
    )


def _activity(row: Sequence[Any]) -> ActivityRecord:
    return ActivityRecord(
        arn=row[0], name=row[1], attributes=row[2], created_at=from_micros(row[3])
    )


class SQLCatalog:
    # Provided by SQLStore and its backends.
    dialect: Dialect

    def _reading(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _select(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._reading() as connection:
            return list(connection.execute(self.dialect.sql(sql), params).fetchall())

    @staticmethod
    def _run(connection: Any, dialect: Dialect, sql: str, params: Sequence[Any]) -> Any:
        return connection.execute(dialect.sql(sql), params)

    # --- versions -------------------------------------------------------------------------

    def publish_version(self, draft: VersionRecord, limit: int) -> tuple[VersionRecord, bool]:
        arn, d = draft.state_machine_arn, self.dialect
        with self._writing() as connection, d.transaction(connection):
            same = self._run(
                connection,
                d,
                f"SELECT {_VERSION_COLUMNS} FROM state_machine_versions "
                "WHERE state_machine_arn = ? AND revision_id = ? ORDER BY version DESC LIMIT 1",
                (arn, draft.revision_id),
            ).fetchone()
            if same is not None:
                return _version(same), False
            count = self._run(
                connection,
                d,
                "SELECT COUNT(*) FROM state_machine_versions WHERE state_machine_arn = ?",
                (arn,),
            ).fetchone()[0]
            if count >= limit:
                raise LimitExceeded(f"versions of {arn}", limit)
            # UPDATE first: on PostgreSQL it locks the counter row, serialising publishers.
            bumped = self._run(
                connection,
                d,
                "UPDATE state_machine_version_counters SET last_version = last_version + 1 "
                "WHERE state_machine_arn = ?",
                (arn,),
            )
            if bumped.rowcount == 0:
                self._run(
                    connection,
                    d,
                    "INSERT INTO state_machine_version_counters (state_machine_arn, last_version)"
                    " VALUES (?, 1)",
                    (arn,),
                )
            number = self._run(
                connection,
                d,
                "SELECT last_version FROM state_machine_version_counters "
                "WHERE state_machine_arn = ?",
                (arn,),
            ).fetchone()[0]
            published = VersionRecord(
                state_machine_arn=arn,
                version=int(number),
                revision_id=draft.revision_id,
                definition=draft.definition,
                role_arn=draft.role_arn,
                created_at=draft.created_at,
                description=draft.description,
                attributes=draft.attributes,
            )
            self._run(
                connection,
                d,
                f"INSERT INTO state_machine_versions ({_VERSION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    arn,
                    published.version,
                    published.revision_id,
                    published.definition,
                    published.role_arn,
                    published.description,
                    published.attributes,
                    micros(published.created_at),
                ),
            )
        return published, True

    def get_version(self, state_machine_arn: str, version: int) -> VersionRecord | None:
        rows = self._select(
            f"SELECT {_VERSION_COLUMNS} FROM state_machine_versions "
            "WHERE state_machine_arn = ? AND version = ?",
            (state_machine_arn, version),
        )
        return _version(rows[0]) if rows else None

    def version_of_revision(self, state_machine_arn: str, revision_id: str) -> VersionRecord | None:
        rows = self._select(
            f"SELECT {_VERSION_COLUMNS} FROM state_machine_versions "
            "WHERE state_machine_arn = ? AND revision_id = ? ORDER BY version DESC LIMIT 1",
            (state_machine_arn, revision_id),
        )
        return _version(rows[0]) if rows else None

    def list_versions(
        self,
        state_machine_arn: str,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
    ) -> Page[VersionRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["versions", state_machine_arn]
        before = decode_token(next_token, query)[0] if next_token else None
        where = "state_machine_arn = ?" + ("" if before is None else " AND version < ?")
        params: list[Any] = [state_machine_arn] if before is None else [state_machine_arn, before]
        rows = self._select(
            f"SELECT {_VERSION_COLUMNS} FROM state_machine_versions WHERE {where} "
            "ORDER BY version DESC LIMIT ?",
            (*params, limit + 1),
        )
        items = [_version(row) for row in rows[:limit]]
        if len(rows) > limit:
            return Page(items, encode_token(query, [items[-1].version]))
        return Page(items)

    def delete_version(self, state_machine_arn: str, version: int) -> bool:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            routing = self._run(
                connection,
                d,
                "SELECT DISTINCT alias_name FROM state_machine_alias_routes "
                "WHERE state_machine_arn = ? AND version = ? ORDER BY alias_name",
                (state_machine_arn, version),
            ).fetchall()
            if routing:
                raise VersionInUse(f"{state_machine_arn}:{version}", [r[0] for r in routing])
            cursor = self._run(
                connection,
                d,
                "DELETE FROM state_machine_versions WHERE state_machine_arn = ? AND version = ?",
                (state_machine_arn, version),
            )
            return bool(cursor.rowcount)

    # --- aliases --------------------------------------------------------------------------

    def _alias_in(self, connection: Any, state_machine_arn: str, name: str) -> AliasRecord | None:
        d = self.dialect
        row = self._run(
            connection,
            d,
            f"SELECT {_ALIAS_COLUMNS} FROM state_machine_aliases "
            "WHERE state_machine_arn = ? AND name = ?",
            (state_machine_arn, name),
        ).fetchone()
        if row is None:
            return None
        routes = self._run(
            connection,
            d,
            "SELECT version, weight FROM state_machine_alias_routes "
            "WHERE state_machine_arn = ? AND alias_name = ? ORDER BY ordinal",
            (state_machine_arn, name),
        ).fetchall()
        return AliasRecord(
            state_machine_arn=row[0],
            name=row[1],
            description=row[2],
            created_at=from_micros(row[3]),
            updated_at=from_micros(row[4]),
            routes=tuple(Route(int(r[0]), int(r[1])) for r in routes),
        )

    def _check_routes(self, connection: Any, alias: AliasRecord) -> None:
        wanted = sorted({route.version for route in alias.routes})
        if not wanted:
            return
        found = {
            row[0]
            for row in self._run(
                connection,
                self.dialect,
                "SELECT version FROM state_machine_versions WHERE state_machine_arn = ? "
                f"AND version IN ({', '.join('?' for _ in wanted)})",
                (alias.state_machine_arn, *wanted),
            ).fetchall()
        }
        missing = [v for v in wanted if v not in found]
        if missing:
            raise VersionsMissing(alias.state_machine_arn, missing)

    def _write_routes(self, connection: Any, alias: AliasRecord) -> None:
        connection.cursor().executemany(
            self.dialect.sql(
                "INSERT INTO state_machine_alias_routes "
                "(state_machine_arn, alias_name, ordinal, version, weight) VALUES (?, ?, ?, ?, ?)"
            ),
            [
                (alias.state_machine_arn, alias.name, i, route.version, route.weight)
                for i, route in enumerate(alias.routes)
            ],
        )

    def create_alias(self, alias: AliasRecord, limit: int) -> tuple[AliasRecord, bool]:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            stored = self._alias_in(connection, alias.state_machine_arn, alias.name)
            if stored is not None:
                return stored, False
            self._check_routes(connection, alias)
            count = self._run(
                connection,
                d,
                "SELECT COUNT(*) FROM state_machine_aliases WHERE state_machine_arn = ?",
                (alias.state_machine_arn,),
            ).fetchone()[0]
            if count >= limit:
                raise LimitExceeded(f"aliases of {alias.state_machine_arn}", limit)
            self._run(
                connection,
                d,
                f"INSERT INTO state_machine_aliases ({_ALIAS_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (
                    alias.state_machine_arn,
                    alias.name,
                    alias.description,
                    micros(alias.created_at),
                    micros(alias.updated_at),
                ),
            )
            self._write_routes(connection, alias)
        return alias, True

    def update_alias(self, alias: AliasRecord) -> bool:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            cursor = self._run(
                connection,
                d,
                "UPDATE state_machine_aliases SET description = ?, updated_at = ? "
                "WHERE state_machine_arn = ? AND name = ?",
                (alias.description, micros(alias.updated_at), alias.state_machine_arn, alias.name),
            )
            if cursor.rowcount == 0:
                return False
            self._check_routes(connection, alias)
            self._run(
                connection,
                d,
                "DELETE FROM state_machine_alias_routes WHERE state_machine_arn = ? "
                "AND alias_name = ?",
                (alias.state_machine_arn, alias.name),
            )
            self._write_routes(connection, alias)
            return True

    def get_alias(self, state_machine_arn: str, name: str) -> AliasRecord | None:
        with self._reading() as connection:
            return self._alias_in(connection, state_machine_arn, name)

    def list_aliases(
        self,
        state_machine_arn: str,
        version: int | None = None,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
    ) -> Page[AliasRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["aliases", state_machine_arn, version]
        after = decode_token(next_token, query)[0] if next_token else ""
        if version is None:
            sql = (
                "SELECT name FROM state_machine_aliases WHERE state_machine_arn = ? "
                "AND name > ? ORDER BY name LIMIT ?"
            )
            params: tuple[Any, ...] = (state_machine_arn, after, limit + 1)
        else:
            sql = (
                "SELECT DISTINCT alias_name FROM state_machine_alias_routes "
                "WHERE state_machine_arn = ? AND version = ? AND alias_name > ? "
                "ORDER BY alias_name LIMIT ?"
            )
            params = (state_machine_arn, version, after, limit + 1)
        with self._reading() as connection:
            names = [row[0] for row in self._run(connection, self.dialect, sql, params)]
            found = (self._alias_in(connection, state_machine_arn, n) for n in names[:limit])
            items = [alias for alias in found if alias is not None]
        if len(names) > limit:
            return Page(items, encode_token(query, [names[limit - 1]]))
        return Page(items)

    def delete_alias(self, state_machine_arn: str, name: str) -> bool:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            self._run(
                connection,
                d,
                "DELETE FROM state_machine_alias_routes WHERE state_machine_arn = ? "
                "AND alias_name = ?",
                (state_machine_arn, name),
            )
            cursor = self._run(
                connection,
                d,
                "DELETE FROM state_machine_aliases WHERE state_machine_arn = ? AND name = ?",
                (state_machine_arn, name),
            )
            return bool(cursor.rowcount)

    # --- tags -----------------------------------------------------------------------------

    def get_tags(self, resource_arn: str) -> dict[str, str]:
        rows = self._select(
            "SELECT tag_key, tag_value FROM tags WHERE resource_arn = ? ORDER BY tag_key",
            (resource_arn,),
        )
        return {row[0]: row[1] for row in rows}

    def add_tags(self, resource_arn: str, tags: Mapping[str, str], limit: int) -> None:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            stored = {
                row[0]
                for row in self._run(
                    connection,
                    d,
                    "SELECT tag_key FROM tags WHERE resource_arn = ?",
                    (resource_arn,),
                ).fetchall()
            }
            if len(stored | tags.keys()) > limit:
                raise LimitExceeded(f"tags of {resource_arn}", limit)
            connection.cursor().executemany(
                d.upsert("tags", ("resource_arn", "tag_key"), ("tag_value",)),
                [(resource_arn, key, value) for key, value in tags.items()],
            )

    def remove_tags(self, resource_arn: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        with self._writing() as connection, self.dialect.transaction(connection):
            connection.cursor().executemany(
                self.dialect.sql("DELETE FROM tags WHERE resource_arn = ? AND tag_key = ?"),
                [(resource_arn, key) for key in keys],
            )

    # --- activities -----------------------------------------------------------------------

    def create_activity(self, activity: ActivityRecord) -> tuple[ActivityRecord, bool]:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            row = self._run(
                connection,
                d,
                f"SELECT {_ACTIVITY_COLUMNS} FROM activities WHERE arn = ?",
                (activity.arn,),
            ).fetchone()
            if row is not None:
                return _activity(row), False
            self._run(
                connection,
                d,
                f"INSERT INTO activities ({_ACTIVITY_COLUMNS}) VALUES (?, ?, ?, ?)",
                (activity.arn, activity.name, activity.attributes, micros(activity.created_at)),
            )
        return activity, True

    def get_activity(self, arn: str) -> ActivityRecord | None:
        rows = self._select(f"SELECT {_ACTIVITY_COLUMNS} FROM activities WHERE arn = ?", (arn,))
        return _activity(rows[0]) if rows else None

    def list_activities(
        self, max_results: int = DEFAULT_MAX_RESULTS, next_token: str | None = None
    ) -> Page[ActivityRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["activities"]
        after = decode_token(next_token, query)[0] if next_token else ""
        rows = self._select(
            f"SELECT {_ACTIVITY_COLUMNS} FROM activities WHERE arn > ? ORDER BY arn LIMIT ?",
            (after, limit + 1),
        )
        items = [_activity(row) for row in rows[:limit]]
        if len(rows) > limit:
            return Page(items, encode_token(query, [items[-1].arn]))
        return Page(items)

    def delete_activity(self, arn: str) -> bool:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            self._run(connection, d, "DELETE FROM tags WHERE resource_arn = ?", (arn,))
            cursor = self._run(connection, d, "DELETE FROM activities WHERE arn = ?", (arn,))
            return bool(cursor.rowcount)

    # --- lifecycle ------------------------------------------------------------------------

    def delete_catalog(self, state_machine_arn: str) -> None:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            for sql in _DELETE_CATALOG:
                self._run(connection, d, sql, (state_machine_arn,))


_DELETE_CATALOG = (
    "DELETE FROM state_machine_alias_routes WHERE state_machine_arn = ?",
    "DELETE FROM state_machine_aliases WHERE state_machine_arn = ?",
    "DELETE FROM state_machine_versions WHERE state_machine_arn = ?",
    "DELETE FROM state_machine_version_counters WHERE state_machine_arn = ?",
    "DELETE FROM tags WHERE resource_arn = ?",
)
