"""The PostgreSQL backend (psycopg 3 + psycopg_pool): the scale-out store.

A thin dialect over the portable SQL of ``sql.py``, ``sql_catalog.py`` and ``leases.py``: the
same schema and the same migration sequence as SQLite. Connections come from a pool and run in
autocommit mode; every write is one explicit ``BEGIN``/``COMMIT`` (the group commit lands many
executions' deltas in one), and psycopg sends ``executemany`` as one pipeline, so a batch costs
a handful of round trips, not one per row.

Several ``flowstate serve`` processes may share one database (see ``leases`` and
docs/postgres.md): a store bound to a node (``fence_node``) refuses a commit once that node's
lease has expired, on the database's clock, inside the commit's own transaction.
``listen`` keeps one dedicated connection in ``LISTEN`` so idle nodes wake on ``NOTIFY``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from flowstate.storage.errors import LeaseLost, StorageError
from flowstate.storage.leases import SQLLeases
from flowstate.storage.migrations import migrate
from flowstate.storage.schema import MIGRATIONS, Migration
from flowstate.storage.sql import Dialect, SQLStore, _BatchRows

__all__ = ["CHANNEL", "PostgresDialect", "PostgresStore", "redact"]

log = logging.getLogger("flowstate.storage.postgres")

# The one NOTIFY channel; payloads say what for ("inbox:<node>", "left:<node>").
CHANNEL = "flowstate"
# Any fixed 64-bit number: serialises concurrent migrations of one database.
_MIGRATION_LOCK = 0x666C6F7773746174
# A node frozen in the middle of a transaction (SIGSTOP, a long GC pause) holds the row locks
# of the executions it was writing, which claimers skip: the server ends such a session after
# this long, so those executions become claimable too.
IDLE_IN_TRANSACTION_SECONDS = 10


class PostgresDialect(Dialect):
    name = "postgresql"
    placeholder = "%s"
    ddl_words: ClassVar[dict[str, str]] = {"blob": "BYTEA", "clustered": ""}
    begin_write = "BEGIN"
    integrity_errors = (psycopg.errors.IntegrityError,)
    driver_errors = (psycopg.Error,)
    # statement_timestamp(): the server's clock, fixed for one statement.
    now_micros = "(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000)::BIGINT"
    skip_locked = "FOR UPDATE SKIP LOCKED"

    def has_table(self, connection: Any, name: str) -> bool:
        row = connection.execute("SELECT to_regclass(%s)", (name,)).fetchone()
        return row is not None and row[0] is not None

    def lock_schema(self, connection: Any) -> None:
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK - (1 << 63),))


def redact(dsn: str) -> str:
    """``dsn`` without its password, for messages and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresStore(SQLStore, SQLLeases):
    """``Store`` (and ``Leases``) in a PostgreSQL database; migrated on open."""

    shared = True  # several nodes may use it at once

    def __init__(
        self,
        dsn: str,
        *,
        min_connections: int = 1,
        max_connections: int = 6,
        connect_timeout_seconds: float = 10.0,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        super().__init__(PostgresDialect())
        self.dsn = dsn
        self.where = redact(dsn)
        # The node whose lease every commit checks (set by the runtime when it joins).
        self.fence_node: str | None = None
        self._fence = (
            f"SELECT 1 FROM nodes WHERE node_id = %s AND expires_at > {self.dialect.now_micros}"
        )
        self._listeners: list[_Listener] = []
        self._closed = False
        # One plain connection first: a clear error at once if the server is unreachable
        # (the pool would retry in the background), and the migration runs on it.
        try:
            first = psycopg.connect(
                dsn, autocommit=True, connect_timeout=max(1, round(connect_timeout_seconds))
            )
        except psycopg.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else error
            raise StorageError(f"{self.where}: cannot connect to PostgreSQL: {reason}") from None
        with first:
            self.schema_version = migrate(first, self.dialect, self.where, migrations)
        self._pool = ConnectionPool(
            dsn,
            min_size=min_connections,
            max_size=max_connections,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            name="flowstate",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_seconds)
        except Exception as error:
            self._pool.close()
            raise StorageError(f"{self.where}: cannot connect to PostgreSQL: {error}") from None

    # --- connections ----------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise StorageError(f"{self.where}: the store is closed")
        with self._pool.connection() as connection:
            yield connection

    _writing = _reading  # PostgreSQL takes concurrent writers: each gets its own connection

    # --- fencing --------------------------------------------------------------------------

    def _write(self, connection: Any, rows: _BatchRows) -> None:
        node = self.fence_node
        if node is not None and connection.execute(self._fence, (node,)).fetchone() is None:
            # This node's lease has expired: whatever it holds may be another node's now.
            arns = [r[0] for r in rows.inserts] + [r[-2] for r in rows.updates]
            raise LeaseLost(arns)
        super()._write(connection, rows)

    # --- wake-ups -------------------------------------------------------------------------

    def _notify(self, connection: Any, payload: str) -> None:
        connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    def listen(self, callback: Callable[[str | None], None]) -> Callable[[], None]:
        """Call ``callback(payload)`` from a thread for every NOTIFY on the channel, and
        ``callback(None)`` whenever the listening connection is (re)established (anything
        sent meanwhile was missed). Returns a function that stops listening."""
        listener = _Listener(self.dsn, callback)
        self._listeners.append(listener)
        listener.start()
        return listener.stop

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        for listener in self._listeners:
            listener.stop()
        self._listeners = []
        self._pool.close()


def _configure(connection: psycopg.Connection[Any]) -> None:
    connection.execute(
        f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_SECONDS}s'"
    )


class _Listener:
    """One dedicated connection in LISTEN, read by a daemon thread; reconnects on failure."""

    def __init__(self, dsn: str, callback: Callable[[str | None], None]) -> None:
        self._dsn = dsn
        self._callback = callback
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flowstate-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._callback(None)
                    while not self._stopped.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self._callback(note.payload)
            except psycopg.Error as error:
                if self._stopped.is_set():
                    return
                log.warning("LISTEN connection lost (%s); reconnecting", error)
                self._stopped.wait(1.0)
            except Exception:  # a callback that broke: keep listening
                log.exception("flowstate NOTIFY handler failed")
                self._stopped.wait(0.1)
