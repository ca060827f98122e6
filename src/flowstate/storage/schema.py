"""The one schema, as the one numbered migration sequence shared by every SQL backend.

Append a step to change the schema; never edit a released one. Statements are portable SQL;
the only dialect words are ``{blob}`` (BLOB / BYTEA) and ``{clustered}`` (SQLite's
``WITHOUT ROWID`` for tables read by primary-key prefix; nothing on PostgreSQL). No
auto-increment keys: ids are made by the caller, so the sequence is the same everywhere.

Conventions: every ``*_at`` column is BIGINT microseconds since the Unix epoch, UTC (see
``timestamps``); JSON payloads are TEXT written once; ``snapshot`` is the interpreter's opaque
frame tree. Execution-scoped tables lead their primary key with ``execution_arn`` and have no
foreign keys, so executions can be partitioned by ARN (distributed SQL) without a
cross-partition chain; the only global index is ``timers (fire_at)``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Migration"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


_V1 = (
    """CREATE TABLE state_machines (
        arn TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        definition TEXT NOT NULL,
        role_arn TEXT NOT NULL,
        revision_id TEXT NOT NULL,
        attributes TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )""",
    # Definitions that running executions may still use after an update or a delete.
    """CREATE TABLE state_machine_revisions (
        state_machine_arn TEXT NOT NULL,
        revision_id TEXT NOT NULL,
        definition TEXT NOT NULL,
        role_arn TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (state_machine_arn, revision_id)
    ) {clustered}""",
    """CREATE TABLE executions (
        arn TEXT PRIMARY KEY,
        state_machine_arn TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        input TEXT NOT NULL,
        revision_id TEXT NOT NULL,
        seed BIGINT NOT NULL,
        output TEXT,
        error TEXT,
        cause TEXT,
        start_at BIGINT NOT NULL,
        stop_at BIGINT,
        snapshot {blob},
        redrive_count INTEGER NOT NULL,
        redrive_at BIGINT,
        lease_owner TEXT,
        lease_expires_at BIGINT,
        generation BIGINT NOT NULL
    )""",
    # ListExecutions, newest first, with and without a status filter.
    "CREATE INDEX executions_by_machine ON executions (state_machine_arn, start_at, arn)",
    """CREATE INDEX executions_by_machine_status
        ON executions (state_machine_arn, status, start_at, arn)""",
    # Recovery walks the running ones; retention finds the old stopped ones.
    "CREATE INDEX executions_running ON executions (arn) WHERE status = 'RUNNING'",
    "CREATE INDEX executions_stopped ON executions (stop_at) WHERE stop_at IS NOT NULL",
    """CREATE TABLE history_events (
        execution_arn TEXT NOT NULL,
        id INTEGER NOT NULL,
        previous_id INTEGER NOT NULL,
        type TEXT NOT NULL,
        timestamp BIGINT NOT NULL,
        details TEXT,
        PRIMARY KEY (execution_arn, id)
    ) {clustered}""",
    """CREATE TABLE timers (
        execution_arn TEXT NOT NULL,
        timer_id TEXT NOT NULL,
        fire_at BIGINT NOT NULL,
        PRIMARY KEY (execution_arn, timer_id)
    )""",
    "CREATE INDEX timers_due ON timers (fire_at, execution_arn, timer_id)",
    """CREATE TABLE tasks (
        execution_arn TEXT NOT NULL,
        task_id TEXT NOT NULL,
        resource TEXT NOT NULL,
        input TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        state TEXT NOT NULL,
        task_token TEXT,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (execution_arn, task_id)
    ) {clustered}""",
    # SendTaskSuccess/Failure/Heartbeat arrive with only the token, on any node.
    "CREATE UNIQUE INDEX tasks_by_token ON tasks (task_token) WHERE task_token IS NOT NULL",
)

# Executions started through a version or an alias (ListExecutions filters on them), the map
# run a child execution belongs to, and describe-only fields (JSON object text).
_V2 = (
    "ALTER TABLE executions ADD COLUMN version_arn TEXT",
    "ALTER TABLE executions ADD COLUMN alias_arn TEXT",
    "ALTER TABLE executions ADD COLUMN map_run_arn TEXT",
    "ALTER TABLE executions ADD COLUMN attributes TEXT",
    """CREATE INDEX executions_by_version ON executions (version_arn, start_at, arn)
        WHERE version_arn IS NOT NULL""",
    """CREATE INDEX executions_by_alias ON executions (alias_arn, start_at, arn)
        WHERE alias_arn IS NOT NULL""",
    # Map runs of an execution (ListMapRuns) and by their own ARN (Describe/UpdateMapRun).
    """CREATE TABLE map_runs (
        execution_arn TEXT NOT NULL,
        arn TEXT NOT NULL,
        start_at BIGINT NOT NULL,
        PRIMARY KEY (execution_arn, arn)
    ) {clustered}""",
    "CREATE UNIQUE INDEX map_runs_by_arn ON map_runs (arn)",
)

# The control plane. Versions are immutable snapshots numbered per machine by a counter that
# survives their deletion (AWS never reuses a number); an alias's routes are rows so that "which
# aliases route to version n" is an indexed read; tags belong to a machine or an activity.
_V3 = (
    """CREATE TABLE state_machine_versions (
        state_machine_arn TEXT NOT NULL,
        version BIGINT NOT NULL,
        revision_id TEXT NOT NULL,
        definition TEXT NOT NULL,
        role_arn TEXT NOT NULL,
        description TEXT,
        attributes TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (state_machine_arn, version)
    ) {clustered}""",
    """CREATE INDEX state_machine_versions_by_revision
        ON state_machine_versions (state_machine_arn, revision_id)""",
    """CREATE TABLE state_machine_version_counters (
        state_machine_arn TEXT PRIMARY KEY,
        last_version BIGINT NOT NULL
    )""",
    """CREATE TABLE state_machine_aliases (
        state_machine_arn TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (state_machine_arn, name)
    ) {clustered}""",
    """CREATE TABLE state_machine_alias_routes (
        state_machine_arn TEXT NOT NULL,
        alias_name TEXT NOT NULL,
        ordinal INTEGER NOT NULL,
        version BIGINT NOT NULL,
        weight INTEGER NOT NULL,
        PRIMARY KEY (state_machine_arn, alias_name, ordinal)
    ) {clustered}""",
    """CREATE INDEX state_machine_alias_routes_by_version
        ON state_machine_alias_routes (state_machine_arn, version, alias_name)""",
    """CREATE TABLE tags (
        resource_arn TEXT NOT NULL,
        tag_key TEXT NOT NULL,
        tag_value TEXT NOT NULL,
        PRIMARY KEY (resource_arn, tag_key)
    ) {clustered}""",
    """CREATE TABLE activities (
        arn TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        attributes TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )""",
)

# Scale-out (PostgreSQL, several nodes): the members and their leases, the running executions
# of each owner (takeover finds a dead node's executions by index), and the inbox that carries
# an event (StopExecution, a task-token callback) to the node owning its execution. Every
# ``expires_at``/``created_at`` here is on the database's clock, never a node's.
_V4 = (
    """CREATE TABLE nodes (
        node_id TEXT PRIMARY KEY,
        endpoint TEXT,
        started_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    )""",
    """CREATE INDEX executions_by_owner ON executions (lease_owner, arn)
        WHERE status = 'RUNNING'""",
    """CREATE TABLE inbox (
        execution_arn TEXT NOT NULL,
        message_id TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (execution_arn, message_id)
    ) {clustered}""",
    "CREATE INDEX inbox_by_time ON inbox (created_at, execution_arn, message_id)",
)

# History as chunks: the events one commit adds to one execution, in one row (see
# ``flowstate.storage.chunks``). Rows of ``history_events`` written before stay readable.
# A chunk can be large: an ordinary table (a B-tree keyed by rowid, with the key as an
# index), not a clustered one.
_V5 = (
    """CREATE TABLE history_chunks (
        execution_arn TEXT NOT NULL,
        first_id INTEGER NOT NULL,
        last_id INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (execution_arn, first_id)
    )""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "state machines, revisions, executions, history, timers, tasks", _V1),
    Migration(2, "executions by version and alias; map runs", _V2),
    Migration(3, "control plane: versions, aliases, tags, activities", _V3),
    Migration(4, "scale-out: nodes, executions by owner, inbox", _V4),
    Migration(5, "history written as one chunk per commit", _V5),
)

LATEST_VERSION = MIGRATIONS[-1].version
