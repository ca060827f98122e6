"""The embedded SQLite backend (stdlib ``sqlite3``), the default.

WAL journal: readers never block the writer nor each other, and see the last commit.
Durability (``synchronous``):

* ``NORMAL`` (default): a commit is atomic and survives a crash of the process (SIGKILL, an
  exception, OOM): the WAL is written before ``commit`` returns. An operating-system crash or
  power loss may lose the last few commits (the WAL is fsynced at checkpoints, not at every
  commit) but never corrupts the database.
* ``FULL``: the WAL is fsynced at every commit, so a returned commit also survives a power
  loss (given a disk that honours fsync). Costs one fsync per commit, which group commit
  amortises over the whole batch.

One writer connection, serialised by a lock; one reader connection per thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from flowstate.storage.errors import StorageError
from flowstate.storage.leases import SQLLeases
from flowstate.storage.migrations import migrate
from flowstate.storage.schema import MIGRATIONS, Migration
from flowstate.storage.sql import Dialect, SQLStore

__all__ = ["SYNCHRONOUS_LEVELS", "SQLiteDialect", "SQLiteStore"]

SYNCHRONOUS_LEVELS = ("NORMAL", "FULL")


class SQLiteDialect(Dialect):
    name = "sqlite"
    placeholder = "?"
    ddl_words: ClassVar[dict[str, str]] = {"blob": "BLOB", "clustered": "WITHOUT ROWID"}
    # Take the write lock at BEGIN, so a transaction never fails half-way on SQLITE_BUSY.
    begin_write = "BEGIN IMMEDIATE"
    integrity_errors = (sqlite3.IntegrityError,)
    driver_errors = (sqlite3.Error,)
    # julianday('now') is fixed for the duration of one statement (SQLite docs, "now").
    now_micros = "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"

    def has_table(self, connection: Any, name: str) -> bool:
        row = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None


class SQLiteStore(SQLStore, SQLLeases):
    """``Store`` in one SQLite file; created (with its directory) and migrated on open.

    One process owns the file, so the runtime needs no leases here (``shared`` is False);
    the lease statements still work, which keeps them tested on both SQL backends."""

    shared = False

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "NORMAL",
        busy_timeout_seconds: float = 5.0,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        level = synchronous.upper()
        if level not in SYNCHRONOUS_LEVELS:
            raise ValueError(f"synchronous={synchronous!r}: expected one of {SYNCHRONOUS_LEVELS}")
        super().__init__(SQLiteDialect())
        self.path = Path(path)
        self.synchronous = level
        self._busy_timeout_seconds = busy_timeout_seconds
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        try:
            self._writer = self._connect()
            # The writer touches index pages of every table per commit: give it room, and
            # checkpoint the WAL less often (each checkpoint is an fsync, even with NORMAL).
            self._writer.execute("PRAGMA cache_size = -32768")
            self._writer.execute("PRAGMA wal_autocheckpoint = 8192")
            mode = self._writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StorageError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
            self.schema_version = migrate(self._writer, self.dialect, str(self.path), migrations)
        except sqlite3.DatabaseError as error:
            self.close()
            raise StorageError(
                f"{self.path}: cannot open as a flowstate database: {error}"
            ) from error
        except BaseException:
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; the store issues BEGIN/COMMIT itself.
        # check_same_thread=False: each connection is used by one thread at a time (the
        # writer under its lock, readers per thread) but close() may run anywhere.
        connection = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_seconds,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )
        with self._connections_lock:
            self._connections.append(connection)
        connection.execute(f"PRAGMA synchronous = {self.synchronous}")
        connection.execute("PRAGMA foreign_keys = OFF")
        return connection

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise StorageError(f"{self.path}: the store is closed")
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        yield connection

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            if self._closed:
                raise StorageError(f"{self.path}: the store is closed")
            yield self._writer

    def close(self) -> None:
        with self._write_lock:
            self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
