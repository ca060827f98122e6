"""The portable SQL implementation of ``Store``; backends are thin ``Dialect`` subclasses.

Every statement is a constant string (so drivers prepare it once and reuse it) run with
``executemany`` over plain tuples built before the write lock is taken. A commit is one
write transaction whatever the batch size: that is the group commit.

Dialect differences live in ``Dialect`` only: placeholders, DDL type words, the statement that
opens a write transaction, the schema lock, the driver's integrity error, and (for scale-out,
later) row claiming with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar

from flowstate.storage.chunks import unpack_chunk
from flowstate.storage.errors import (
    ExecutionAlreadyExists,
    HistoryConflict,
    LeaseLost,
    StateMachineAlreadyExists,
    StateMachineDoesNotExist,
    StorageError,
)
from flowstate.storage.records import (
    DEFAULT_MAX_RESULTS,
    EventRecord,
    ExecutionDelta,
    ExecutionRecord,
    ExecutionSummary,
    MapRunRecord,
    Page,
    RevisionRecord,
    StateMachineRecord,
    TaskRecord,
    TimerRecord,
    check_batch,
)
from flowstate.storage.sql_catalog import SQLCatalog
from flowstate.storage.timestamps import from_micros, micros
from flowstate.storage.tokens import decode_token, encode_token

__all__ = ["Dialect", "SQLStore"]

_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1


class Dialect:
    """What differs between SQL databases. Statements are written with ``?`` placeholders."""

    name = "sql"
    placeholder = "?"
    ddl_words: ClassVar[dict[str, str]] = {"blob": "BLOB", "clustered": ""}
    begin_write = "BEGIN"
    integrity_errors: tuple[type[BaseException], ...] = ()
    # Everything else the driver raises (disk full, I/O error, lock timeout).
    driver_errors: tuple[type[BaseException], ...] = ()
    # The database's clock as integer microseconds since the epoch, constant within one
    # statement: leases and takeover compare against it, never against a node's clock.
    now_micros = "0"
    # Appended to the SELECT that picks rows to claim: concurrent claimers skip each other's
    # rows instead of queueing behind them. Empty where one writer is all there is (SQLite).
    skip_locked = ""

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def ddl(self, text: str) -> str:
        return self.sql(text.format(**self.ddl_words))

    def upsert(self, table: str, keys: Sequence[str], columns: Sequence[str]) -> str:
        """INSERT that overwrites ``columns`` of the row with the same ``keys``."""
        names = [*keys, *columns]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
        action = f"DO UPDATE SET {updates}" if columns else "DO NOTHING"
        return self.sql(
            f"INSERT INTO {table} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)}) "
            f"ON CONFLICT ({', '.join(keys)}) {action}"
        )

    def has_table(self, connection: Any, name: str) -> bool:
        raise NotImplementedError

    def lock_schema(self, connection: Any) -> None:
        """Serialise concurrent migrations (inside the migration's transaction)."""
        return None

    @contextmanager
    def transaction(self, connection: Any) -> Iterator[None]:
        connection.execute(self.begin_write)
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


# --- column lists and row conversion ---------------------------------------------------------

_MACHINE_COLUMNS = (
    "arn, name, type, definition, role_arn, revision_id, attributes, created_at, updated_at"
)
_EXECUTION_COLUMNS = (
    "arn, state_machine_arn, name, type, status, input, revision_id, seed, output, error, "
    "cause, start_at, stop_at, snapshot, redrive_count, redrive_at, lease_owner, "
    "lease_expires_at, generation, version_arn, alias_arn, map_run_arn, attributes"
)
_SUMMARY_COLUMNS = (
    "arn, state_machine_arn, name, status, start_at, stop_at, redrive_count, redrive_at, "
    "version_arn, alias_arn, map_run_arn"
)


def _event_id(event: EventRecord) -> int:
    return event.id


def _opt_micros(moment: datetime | None) -> int | None:
    return None if moment is None else micros(moment)


def _opt_time(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


def _signed(seed: int) -> int:
    # The interpreter's seed is unsigned 64-bit; SQL integers are signed 64-bit.
    return seed - _U64 if seed > _I64_MAX else seed


def _machine_row(m: StateMachineRecord) -> tuple[Any, ...]:
    return (
        m.arn,
        m.name,
        m.type,
        m.definition,
        m.role_arn,
        m.revision_id,
        m.attributes,
        micros(m.created_at),
        micros(m.updated_at),
    )


def _machine(row: Sequence[Any]) -> StateMachineRecord:
    return StateMachineRecord(
        arn=row[0],
        name=row[1],
        type=row[2],
        definition=row[3],
        role_arn=row[4],
        revision_id=row[5],
        attributes=row[6],
        created_at=from_micros(row[7]),
        updated_at=from_micros(row[8]),
    )


def _execution_row(e: ExecutionRecord) -> tuple[Any, ...]:
    return (
        e.arn,
        e.state_machine_arn,
        e.name,
        e.type,
        e.status,
        e.input,
        e.revision_id,
        _signed(e.seed),
        e.output,
        e.error,
        e.cause,
        micros(e.start_at),
        _opt_micros(e.stop_at),
        e.snapshot,
        e.redrive_count,
        _opt_micros(e.redrive_at),
        e.lease_owner,
        _opt_micros(e.lease_expires_at),
        e.generation,
        e.version_arn,
        e.alias_arn,
        e.map_run_arn,
        e.attributes,
    )


def _execution(row: Sequence[Any]) -> ExecutionRecord:
    return ExecutionRecord(
        arn=row[0],
        state_machine_arn=row[1],
        name=row[2],
        type=row[3],
        status=row[4],
        input=row[5],
        revision_id=row[6],
        seed=row[7] % _U64,
        output=row[8],
        error=row[9],
        cause=row[10],
        start_at=from_micros(row[11]),
        stop_at=_opt_time(row[12]),
        snapshot=None if row[13] is None else bytes(row[13]),
        redrive_count=row[14],
        redrive_at=_opt_time(row[15]),
        lease_owner=row[16],
        lease_expires_at=_opt_time(row[17]),
        generation=row[18],
        version_arn=row[19],
        alias_arn=row[20],
        map_run_arn=row[21],
        attributes=row[22] or "{}",
    )


def _summary(row: Sequence[Any]) -> ExecutionSummary:
    return ExecutionSummary(
        arn=row[0],
        state_machine_arn=row[1],
        name=row[2],
        status=row[3],
        start_at=from_micros(row[4]),
        stop_at=_opt_time(row[5]),
        redrive_count=row[6],
        redrive_at=_opt_time(row[7]),
        version_arn=row[8],
        alias_arn=row[9],
        map_run_arn=row[10],
    )


def _task(row: Sequence[Any]) -> TaskRecord:
    return TaskRecord(
        execution_arn=row[0],
        task_id=row[1],
        resource=row[2],
        input=row[3],
        idempotency_key=row[4],
        state=row[5],
        task_token=row[6],
        created_at=from_micros(row[7]),
    )


_TASK_COLUMNS = (
    "execution_arn, task_id, resource, input, idempotency_key, state, task_token, created_at"
)


@dataclass(slots=True)
class _BatchRows:
    """A batch flattened into one parameter list per statement."""

    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    chunks: list[tuple[str, int, int, str]] = field(default_factory=list)
    timers_removed: list[tuple[str, str]] = field(default_factory=list)
    timers_added: list[tuple[str, str, int]] = field(default_factory=list)
    tasks_removed: list[tuple[str, str]] = field(default_factory=list)
    tasks_added: list[tuple[Any, ...]] = field(default_factory=list)
    map_runs_added: list[tuple[str, str, int]] = field(default_factory=list)

    @classmethod
    def of(cls, batch: Sequence[ExecutionDelta]) -> _BatchRows:
        rows = cls()
        for delta in batch:
            arn = delta.execution_arn
            e = delta.execution
            if e is not None:
                if delta.is_new:
                    rows.inserts.append(_execution_row(e))
                else:
                    rows.updates.append(
                        (
                            e.status,
                            e.output,
                            e.error,
                            e.cause,
                            _opt_micros(e.stop_at),
                            e.snapshot,
                            e.redrive_count,
                            _opt_micros(e.redrive_at),
                            arn,
                            e.generation,
                        )
                    )
            # Most deltas carry events and a timer, few carry tasks: skip empty generators.
            if delta.events:
                rows.events.extend(
                    (arn, ev.id, ev.previous_event_id, ev.type, micros(ev.timestamp), ev.details)
                    for ev in delta.events
                )
            if delta.history is not None:
                chunk = delta.history
                rows.chunks.append((arn, chunk.first_id, chunk.last_id, chunk.body))
            if delta.timers_removed:
                rows.timers_removed.extend((arn, timer_id) for timer_id in delta.timers_removed)
            if delta.timers_added:
                rows.timers_added.extend(
                    (arn, t.timer_id, micros(t.fire_at)) for t in delta.timers_added
                )
            if delta.tasks_removed:
                rows.tasks_removed.extend((arn, task_id) for task_id in delta.tasks_removed)
            if delta.tasks_added:
                rows.tasks_added.extend(
                    (
                        arn,
                        t.task_id,
                        t.resource,
                        t.input,
                        t.idempotency_key,
                        t.state,
                        t.task_token,
                        micros(t.created_at),
                    )
                    for t in delta.tasks_added
                )
            if delta.map_runs_added:
                rows.map_runs_added.extend(
                    (arn, run.arn, micros(run.start_at)) for run in delta.map_runs_added
                )
        return rows


class SQLStore(SQLCatalog):
    """``Store`` over a DB-API connection. Subclasses provide the connections."""

    blocking = True

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        q = dialect.sql
        self._insert_machine = q(
            f"INSERT INTO state_machines ({_MACHINE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self._update_machine = q(
            "UPDATE state_machines SET name = ?, type = ?, definition = ?, role_arn = ?, "
            "revision_id = ?, attributes = ?, created_at = ?, updated_at = ? WHERE arn = ?"
        )
        # A revision is immutable: keep the first write.
        self._keep_revision = self.dialect.sql(
            "INSERT INTO state_machine_revisions "
            "(state_machine_arn, revision_id, definition, role_arn, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (state_machine_arn, revision_id) DO NOTHING"
        )
        self._insert_execution = q(
            f"INSERT INTO executions ({_EXECUTION_COLUMNS}) VALUES ({', '.join('?' * 23)})"
        )
        self._update_execution = q(
            "UPDATE executions SET status = ?, output = ?, error = ?, cause = ?, stop_at = ?, "
            "snapshot = ?, redrive_count = ?, redrive_at = ? WHERE arn = ? AND generation = ?"
        )
        self._insert_event = q(
            "INSERT INTO history_events (execution_arn, id, previous_id, type, timestamp, "
            "details) VALUES (?, ?, ?, ?, ?, ?)"
        )
        self._insert_chunk = q(
            "INSERT INTO history_chunks (execution_arn, first_id, last_id, body) "
            "VALUES (?, ?, ?, ?)"
        )
        self._delete_timer = q("DELETE FROM timers WHERE execution_arn = ? AND timer_id = ?")
        self._upsert_timer = dialect.upsert("timers", ("execution_arn", "timer_id"), ("fire_at",))
        self._delete_task = q("DELETE FROM tasks WHERE execution_arn = ? AND task_id = ?")
        self._upsert_task = dialect.upsert(
            "tasks",
            ("execution_arn", "task_id"),
            ("resource", "input", "idempotency_key", "state", "task_token", "created_at"),
        )
        # A map run row is written once, with the MapRunStarted event; a replay keeps it.
        self._insert_map_run = q(
            "INSERT INTO map_runs (execution_arn, arn, start_at) VALUES (?, ?, ?) "
            "ON CONFLICT (execution_arn, arn) DO NOTHING"
        )

    # --- connections: provided by the backend ---------------------------------------------

    def _reading(self) -> AbstractContextManager[Any]:
        """A connection for autocommitted reads (each statement sees committed data)."""
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Any]:
        """The connection that writes, held exclusively; the caller opens the transaction."""
        raise NotImplementedError

    def _read_all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._reading() as connection:
            return list(connection.execute(self.dialect.sql(sql), params).fetchall())

    def _read_one(self, sql: str, params: Sequence[Any]) -> Any:
        with self._reading() as connection:
            return connection.execute(self.dialect.sql(sql), params).fetchone()

    # --- state machines -------------------------------------------------------------------

    def create_state_machine(self, machine: StateMachineRecord) -> None:
        with self._writing() as connection:
            try:
                with self.dialect.transaction(connection):
                    connection.execute(self._insert_machine, _machine_row(machine))
                    self._write_revision(connection, machine)
            except self.dialect.integrity_errors:
                raise StateMachineAlreadyExists(
                    f"state machine already exists: {machine.arn}"
                ) from None

    def get_state_machine(self, arn: str) -> StateMachineRecord | None:
        row = self._read_one(f"SELECT {_MACHINE_COLUMNS} FROM state_machines WHERE arn = ?", (arn,))
        return None if row is None else _machine(row)

    def list_state_machines(
        self, max_results: int = DEFAULT_MAX_RESULTS, next_token: str | None = None
    ) -> Page[StateMachineRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["state_machines"]
        after = decode_token(next_token, query)[0] if next_token else ""
        rows = self._read_all(
            f"SELECT {_MACHINE_COLUMNS} FROM state_machines WHERE arn > ? ORDER BY arn LIMIT ?",
            (after, limit + 1),
        )
        items = [_machine(row) for row in rows[:limit]]
        if len(rows) > limit:
            return Page(items, encode_token(query, [items[-1].arn]))
        return Page(items)

    def update_state_machine(self, machine: StateMachineRecord) -> None:
        row = _machine_row(machine)
        with self._writing() as connection, self.dialect.transaction(connection):
            cursor = connection.execute(self._update_machine, (*row[1:], machine.arn))
            if cursor.rowcount == 0:
                raise StateMachineDoesNotExist(f"state machine does not exist: {machine.arn}")
            self._write_revision(connection, machine)

    def delete_state_machine(self, arn: str) -> bool:
        with self._writing() as connection, self.dialect.transaction(connection):
            cursor = connection.execute(
                self.dialect.sql("DELETE FROM state_machines WHERE arn = ?"), (arn,)
            )
            return bool(cursor.rowcount)

    def get_revision(self, state_machine_arn: str, revision_id: str) -> RevisionRecord | None:
        row = self._read_one(
            "SELECT definition, role_arn, created_at FROM state_machine_revisions "
            "WHERE state_machine_arn = ? AND revision_id = ?",
            (state_machine_arn, revision_id),
        )
        if row is None:
            return None
        return RevisionRecord(state_machine_arn, revision_id, row[0], row[1], from_micros(row[2]))

    def _write_revision(self, connection: Any, machine: StateMachineRecord) -> None:
        connection.execute(
            self._keep_revision,
            (
                machine.arn,
                machine.revision_id,
                machine.definition,
                machine.role_arn,
                micros(machine.updated_at),
            ),
        )

    # --- commit ---------------------------------------------------------------------------

    def commit(self, batch: Sequence[ExecutionDelta]) -> None:
        if not batch:
            return
        check_batch(batch)
        rows = _BatchRows.of(batch)
        try:
            with self._writing() as connection, self.dialect.transaction(connection):
                self._write(connection, rows)
        except self.dialect.integrity_errors as error:
            raise self._explain_conflict(batch, error) from error
        except self.dialect.driver_errors as error:
            raise StorageError(f"commit failed, nothing written: {error}") from error

    def _write(self, connection: Any, rows: _BatchRows) -> None:
        cursor = connection.cursor()
        if rows.inserts:
            cursor.executemany(self._insert_execution, rows.inserts)
        if rows.updates:
            cursor.executemany(self._update_execution, rows.updates)
            if cursor.rowcount != len(rows.updates):
                raise LeaseLost(self._stale(connection, rows.updates))
        if rows.events:
            cursor.executemany(self._insert_event, rows.events)
        if rows.chunks:
            cursor.executemany(self._insert_chunk, rows.chunks)
        if rows.timers_removed:
            cursor.executemany(self._delete_timer, rows.timers_removed)
        if rows.timers_added:
            cursor.executemany(self._upsert_timer, rows.timers_added)
        if rows.tasks_removed:
            cursor.executemany(self._delete_task, rows.tasks_removed)
        if rows.tasks_added:
            cursor.executemany(self._upsert_task, rows.tasks_added)
        if rows.map_runs_added:
            cursor.executemany(self._insert_map_run, rows.map_runs_added)

    def _stale(self, connection: Any, updates: list[tuple[Any, ...]]) -> list[str]:
        select = self.dialect.sql("SELECT generation FROM executions WHERE arn = ?")
        stale = []
        for row in updates:
            arn, generation = row[-2], row[-1]
            found = connection.execute(select, (arn,)).fetchone()
            if found is None or found[0] != generation:
                stale.append(arn)
        return stale

    def _explain_conflict(
        self, batch: Sequence[ExecutionDelta], error: BaseException
    ) -> StorageError:
        """Name what collided; the transaction is already rolled back."""
        new = [d.execution_arn for d in batch if d.is_new]
        if new:
            taken = [arn for arn in new if self.get_execution(arn) is not None]
            if taken:
                return ExecutionAlreadyExists(taken)
        for delta in batch:
            if delta.events:
                ids = [e.id for e in delta.events]
            elif delta.history is not None:
                ids = list(range(delta.history.first_id, delta.history.last_id + 1))
            else:
                continue
            stored = {e.id for e in self.get_events(delta.execution_arn, ids)}
            clashing = sorted(stored.intersection(ids))
            if clashing or len(set(ids)) != len(ids):
                return HistoryConflict(
                    f"history of {delta.execution_arn}: event ids already stored or repeated: "
                    f"{clashing or 'repeated in the batch'}"
                )
        return StorageError(f"commit refused by the database: {error}")

    # --- reads ----------------------------------------------------------------------------

    def get_execution(self, arn: str) -> ExecutionRecord | None:
        row = self._read_one(f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE arn = ?", (arn,))
        return None if row is None else _execution(row)

    def list_executions(
        self,
        state_machine_arn: str,
        status: str | None = None,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
        *,
        version_arn: str | None = None,
        alias_arn: str | None = None,
        redriven: bool | None = None,
    ) -> Page[ExecutionSummary]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = [
            "executions",
            state_machine_arn,
            status,
            version_arn,
            alias_arn,
            redriven,
        ]
        where = ["state_machine_arn = ?"]
        params: list[Any] = [state_machine_arn]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if version_arn is not None:
            where.append("version_arn = ?")
            params.append(version_arn)
        if alias_arn is not None:
            where.append("alias_arn = ?")
            params.append(alias_arn)
        if redriven is not None:
            where.append("redrive_count > 0" if redriven else "redrive_count = 0")
        if next_token:
            start_at, arn = decode_token(next_token, query)
            where.append("(start_at, arn) < (?, ?)")
            params += [start_at, arn]
        rows = self._read_all(
            f"SELECT {_SUMMARY_COLUMNS} FROM executions WHERE {' AND '.join(where)} "
            "ORDER BY start_at DESC, arn DESC LIMIT ?",
            (*params, limit + 1),
        )
        items = [_summary(row) for row in rows[:limit]]
        if len(rows) > limit:
            last = rows[limit - 1]
            return Page(items, encode_token(query, [last[4], last[0]]))
        return Page(items)

    def get_history(
        self,
        execution_arn: str,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
        reverse_order: bool = False,
    ) -> Page[EventRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["history", execution_arn, reverse_order]
        if next_token:
            after = decode_token(next_token, query)[0]
        else:
            after = _I64_MAX if reverse_order else -1
        order = "id < ? ORDER BY id DESC" if reverse_order else "id > ? ORDER BY id"
        rows = self._read_all(
            "SELECT id, previous_id, type, timestamp, details FROM history_events "
            f"WHERE execution_arn = ? AND {order} LIMIT ?",
            (execution_arn, after, limit + 1),
        )
        found = [EventRecord(r[0], r[1], r[2], from_micros(r[3]), r[4]) for r in rows]
        found.extend(self._chunk_events(execution_arn, after, limit + 1, reverse_order))
        found.sort(key=_event_id, reverse=reverse_order)
        items = found[:limit]
        if len(found) > limit:
            return Page(items, encode_token(query, [items[-1].id]))
        return Page(items)

    def _chunk_events(
        self, execution_arn: str, after: int, wanted: int, reverse_order: bool
    ) -> list[EventRecord]:
        """The first ``wanted`` chunked events past ``after`` in the page's order."""
        if reverse_order:
            select = (
                "SELECT first_id, body FROM history_chunks WHERE execution_arn = ? "
                "AND first_id < ? ORDER BY first_id DESC LIMIT 8"
            )
        else:
            select = (
                "SELECT first_id, body FROM history_chunks WHERE execution_arn = ? "
                "AND last_id > ? AND first_id > ? ORDER BY first_id LIMIT 8"
            )
        out: list[EventRecord] = []
        cursor = _I64_MAX if reverse_order else -1
        while len(out) < wanted:
            if reverse_order:
                args: tuple[Any, ...] = (execution_arn, min(cursor, after))
            else:
                args = (execution_arn, after, cursor)
            chunks = self._read_all(select, args)
            for first_id, body in chunks:
                events = unpack_chunk(body)
                if reverse_order:
                    out.extend(e for e in reversed(events) if e.id < after)
                else:
                    out.extend(e for e in events if e.id > after)
                cursor = first_id
            if len(chunks) < 8:
                break
        return out[:wanted]

    def get_events(self, execution_arn: str, ids: Sequence[int]) -> list[EventRecord]:
        wanted = sorted(set(ids))
        if not wanted:
            return []
        rows = self._read_all(
            "SELECT id, previous_id, type, timestamp, details FROM history_events "
            f"WHERE execution_arn = ? AND id IN ({', '.join('?' * len(wanted))}) ORDER BY id",
            (execution_arn, *wanted),
        )
        found = [EventRecord(r[0], r[1], r[2], from_micros(r[3]), r[4]) for r in rows]
        chunks = self._read_all(
            "SELECT body FROM history_chunks WHERE execution_arn = ? AND first_id <= ? "
            "AND last_id >= ? ORDER BY first_id",
            (execution_arn, wanted[-1], wanted[0]),
        )
        keep = set(wanted)
        for (body,) in chunks:
            found.extend(e for e in unpack_chunk(body) if e.id in keep)
        found.sort(key=_event_id)
        return found

    def get_map_run(self, arn: str) -> MapRunRecord | None:
        row = self._read_one(
            "SELECT execution_arn, arn, start_at FROM map_runs WHERE arn = ?", (arn,)
        )
        return None if row is None else MapRunRecord(row[0], row[1], from_micros(row[2]))

    def list_map_runs(
        self,
        execution_arn: str,
        max_results: int = DEFAULT_MAX_RESULTS,
        next_token: str | None = None,
    ) -> Page[MapRunRecord]:
        limit = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        query: list[object] = ["map_runs", execution_arn]
        where = "execution_arn = ?"
        params: list[Any] = [execution_arn]
        if next_token:
            start_at, arn = decode_token(next_token, query)
            where += " AND (start_at, arn) < (?, ?)"
            params += [start_at, arn]
        rows = self._read_all(
            f"SELECT execution_arn, arn, start_at FROM map_runs WHERE {where} "
            "ORDER BY start_at DESC, arn DESC LIMIT ?",
            (*params, limit + 1),
        )
        items = [MapRunRecord(r[0], r[1], from_micros(r[2])) for r in rows[:limit]]
        if len(rows) > limit:
            last = rows[limit - 1]
            return Page(items, encode_token(query, [last[2], last[1]]))
        return Page(items)

    def running_executions(
        self, after_arn: str | None = None, limit: int = 1000
    ) -> list[ExecutionRecord]:
        rows = self._read_all(
            f"SELECT {_EXECUTION_COLUMNS} FROM executions "
            "WHERE status = 'RUNNING' AND arn > ? ORDER BY arn LIMIT ?",
            (after_arn or "", limit),
        )
        return [_execution(row) for row in rows]

    def due_timers(self, now: datetime, limit: int = 1000) -> list[TimerRecord]:
        rows = self._read_all(
            "SELECT execution_arn, timer_id, fire_at FROM timers WHERE fire_at <= ? "
            "ORDER BY fire_at, execution_arn, timer_id LIMIT ?",
            (micros(now), limit),
        )
        return [TimerRecord(r[0], r[1], from_micros(r[2])) for r in rows]

    def next_timer_at(self) -> datetime | None:
        row = self._read_one("SELECT MIN(fire_at) FROM timers", ())
        return _opt_time(row[0])

    def pending_tasks(self, execution_arn: str) -> list[TaskRecord]:
        rows = self._read_all(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE execution_arn = ? "
            "ORDER BY created_at, task_id",
            (execution_arn,),
        )
        return [_task(row) for row in rows]

    def claim_activity_task(
        self, activity_arn: str, key: tuple[str, str] | None = None
    ) -> TaskRecord | None:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            if key is not None:
                row = connection.execute(
                    d.sql(
                        f"SELECT {_TASK_COLUMNS} FROM tasks WHERE execution_arn = ? "
                        f"AND task_id = ? AND resource = ? AND state = 'SCHEDULED' {d.skip_locked}"
                    ),
                    (key[0], key[1], activity_arn),
                ).fetchone()
            else:
                row = connection.execute(
                    d.sql(
                        f"SELECT {_TASK_COLUMNS} FROM tasks WHERE resource = ? "
                        "AND state = 'SCHEDULED' ORDER BY created_at, execution_arn, task_id "
                        f"LIMIT 1 {d.skip_locked}"
                    ),
                    (activity_arn,),
                ).fetchone()
            if row is None:
                return None
            task = _task(row)
            cursor = connection.execute(
                d.sql(
                    "UPDATE tasks SET state = 'STARTED' WHERE execution_arn = ? AND task_id = ? "
                    "AND state = 'SCHEDULED'"
                ),
                (task.execution_arn, task.task_id),
            )
            if cursor.rowcount != 1:
                return None
            return replace(task, state="STARTED")

    def release_activity_task(self, execution_arn: str, task_id: str) -> None:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            connection.execute(
                d.sql(
                    "UPDATE tasks SET state = 'SCHEDULED' WHERE execution_arn = ? "
                    "AND task_id = ? AND state = 'STARTED'"
                ),
                (execution_arn, task_id),
            )

    def task_by_token(self, task_token: str) -> TaskRecord | None:
        row = self._read_one(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE task_token = ?", (task_token,)
        )
        return None if row is None else _task(row)

    def all_tasks(
        self, after: tuple[str, str] | None = None, limit: int = 1000
    ) -> list[TaskRecord]:
        arn, task_id = after if after is not None else ("", "")
        rows = self._read_all(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE execution_arn > ? "
            "OR (execution_arn = ? AND task_id > ?) ORDER BY execution_arn, task_id LIMIT ?",
            (arn, arn, task_id, limit),
        )
        return [_task(row) for row in rows]

    # --- retention ------------------------------------------------------------------------

    def expire_executions(self, older_than: datetime, limit: int = 1000) -> int:
        q = self.dialect.sql
        with self._writing() as connection, self.dialect.transaction(connection):
            arns = [
                (row[0],)
                for row in connection.execute(
                    q(
                        "SELECT arn FROM executions WHERE stop_at IS NOT NULL AND stop_at < ? "
                        "ORDER BY stop_at LIMIT ?"
                    ),
                    (micros(older_than), limit),
                ).fetchall()
            ]
            if arns:
                cursor = connection.cursor()
                for table in ("history_events", "history_chunks", "timers", "tasks", "map_runs"):
                    cursor.executemany(q(f"DELETE FROM {table} WHERE execution_arn = ?"), arns)
                cursor.executemany(q("DELETE FROM executions WHERE arn = ?"), arns)
        return len(arns)

    def close(self) -> None:
        raise NotImplementedError
