"""Bring a database to the schema this code knows, forward only, in numbered steps.

The missing steps and their ``schema_version`` rows commit in one write transaction, taken
only when something is missing. A database newer than the code is refused before anything is
written: old code must never write rows that a newer schema gives another meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flowstate.storage.errors import SchemaTooNew
from flowstate.storage.schema import MIGRATIONS, Migration
from flowstate.storage.timestamps import micros

if TYPE_CHECKING:
    from flowstate.storage.sql import Dialect

__all__ = ["current_version", "migrate"]

_CREATE_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)"""

_RECORD_VERSION = "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)"


def current_version(connection: Any, dialect: Dialect) -> int:
    """The highest applied step; 0 for a database without flowstate tables."""
    if not dialect.has_table(connection, "schema_version"):
        return 0
    row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(
    connection: Any,
    dialect: Dialect,
    where: str,
    migrations: Sequence[Migration] = MIGRATIONS,
    target: int | None = None,
) -> int:
    """Apply the missing steps up to ``target`` (default: the last known); returns the version
    the database is at. ``where`` names the database in errors."""
    known = migrations[-1].version if migrations else 0
    goal = known if target is None else min(target, known)
    found = current_version(connection, dialect)
    if found > known:
        raise SchemaTooNew(where, found, known)
    if found >= goal:
        return found
    with dialect.transaction(connection):
        dialect.lock_schema(connection)
        # Another process may have migrated between the read above and the lock.
        found = current_version(connection, dialect)
        if found > known:
            raise SchemaTooNew(where, found, known)
        connection.execute(_CREATE_VERSION_TABLE)
        stamp = micros(datetime.now(UTC))
        for step in migrations:
            if found < step.version <= goal:
                for statement in step.statements:
                    connection.execute(dialect.ddl(statement))
                connection.execute(
                    dialect.sql(_RECORD_VERSION), (step.version, step.description, stamp)
                )
                found = step.version
    return found
