"""One migration sequence: forward on open, refuse a newer database, all or nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from storage_rows import execution, machine, start

from flowstate.storage import LATEST_VERSION, SchemaTooNew, SQLiteStore, StorageError
from flowstate.storage.migrations import current_version, migrate
from flowstate.storage.schema import MIGRATIONS, Migration
from flowstate.storage.sqlite import SQLiteDialect

# A realistic next step: a new column with a default and an index, as a later release adds.
NEXT = Migration(
    LATEST_VERSION + 1,
    "executions.trace_header",
    (
        "ALTER TABLE executions ADD COLUMN trace_header TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX executions_trace ON executions (trace_header)",
    ),
)


def _versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT version FROM schema_version")]


def _columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


def test_a_new_database_gets_every_step(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = SQLiteStore(path)
    store.close()
    assert store.schema_version == LATEST_VERSION
    assert _versions(path) == [m.version for m in MIGRATIONS]
    for table in ["state_machines", "executions", "history_events", "timers", "tasks"]:
        assert _columns(path, table), table


def test_an_empty_existing_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    SQLiteStore(path).close()
    assert _versions(path) == [m.version for m in MIGRATIONS]


def test_an_older_database_is_migrated_forward_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = SQLiteStore(path)
    a = execution("a")
    old.create_state_machine(machine())
    old.commit([start(a)])
    old.close()

    newer = SQLiteStore(path, migrations=(*MIGRATIONS, NEXT))
    try:
        assert newer.schema_version == NEXT.version
        assert _versions(path) == [*[m.version for m in MIGRATIONS], NEXT.version]
        assert "trace_header" in _columns(path, "executions")
        assert newer.get_execution(a.arn) == a
        assert newer.get_state_machine(machine().arn) == machine()
    finally:
        newer.close()


def test_a_newer_database_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SQLiteStore(path, migrations=(*MIGRATIONS, NEXT)).close()
    before = path.read_bytes()

    with pytest.raises(SchemaTooNew) as caught:
        SQLiteStore(path)
    message = str(caught.value)
    assert f"version {NEXT.version}" in message
    assert f"up to {LATEST_VERSION}" in message
    assert str(path) in message
    assert (caught.value.found, caught.value.known) == (NEXT.version, LATEST_VERSION)
    assert path.read_bytes() == before
    assert _versions(path)[-1] == NEXT.version


def test_a_failing_step_rolls_back_the_whole_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SQLiteStore(path).close()
    broken = Migration(
        LATEST_VERSION + 2,
        "broken",
        ("CREATE TABLE half_done (x INTEGER)", "CREATE TABLE nonsense ("),
    )
    with pytest.raises(StorageError, match="cannot open"):
        SQLiteStore(path, migrations=(*MIGRATIONS, NEXT, broken))
    assert _versions(path) == [m.version for m in MIGRATIONS]
    assert "trace_header" not in _columns(path, "executions")
    assert _columns(path, "half_done") == []


def test_migrate_stops_at_a_target(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    dialect = SQLiteDialect()
    steps = (*MIGRATIONS, NEXT)
    assert migrate(connection, dialect, "t.db", steps, target=LATEST_VERSION) == LATEST_VERSION
    assert current_version(connection, dialect) == LATEST_VERSION
    assert migrate(connection, dialect, "t.db", steps) == NEXT.version
    assert migrate(connection, dialect, "t.db", steps) == NEXT.version  # idempotent
    connection.close()
