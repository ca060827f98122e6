"""Throw-away PostgreSQL databases for the ``postgres``-marked tests.

``FLOWSTATE_TEST_PG`` names a server and a database to connect to for administration
(default ``postgresql://postgres@127.0.0.1:5432/postgres``); each test session creates its own
database there and drops it at the end. Without a reachable server the tests skip with a
message saying so, unless ``REQUIRE_PG=1`` (CI), which turns that into a failure.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

__all__ = ["PG_ENV", "admin_url", "create_database", "drop_database", "require_server"]

PG_ENV = "FLOWSTATE_TEST_PG"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# Every table a store writes, emptied between tests (schema_version stays).
TABLES = (
    "state_machines, state_machine_revisions, executions, history_events, history_chunks, "
    "timers, tasks, map_runs, state_machine_versions, state_machine_version_counters, "
    "state_machine_aliases, state_machine_alias_routes, tags, activities, nodes, inbox"
)


def admin_url() -> str:
    return os.environ.get(PG_ENV, "").strip() or DEFAULT_URL


def require_server() -> str:
    """The admin URL, once the server answers; skips (or fails under REQUIRE_PG=1)."""
    url = admin_url()
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as error:
        message = (
            f"PostgreSQL is not reachable at {url} ({str(error).strip()}); set {PG_ENV} to a "
            "server where this user may create databases (README: 'Running the PostgreSQL "
            "tests')"
        )
        if os.environ.get("REQUIRE_PG") == "1":
            pytest.fail(f"REQUIRE_PG=1: {message}", pytrace=False)
        pytest.skip(message)
    return url


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def create_database(prefix: str = "flowstate_test") -> str:
    """A new, empty database; returns its URL."""
    admin = require_server()
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return _with_database(admin, name)


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty(url: str) -> None:
    """Delete every row a store wrote (a database not migrated yet is left alone)."""
    with psycopg.connect(url, autocommit=True) as connection:
        found = connection.execute("SELECT to_regclass('inbox') IS NOT NULL").fetchone()
        if found is not None and found[0]:
            connection.execute(f"TRUNCATE {TABLES}")
