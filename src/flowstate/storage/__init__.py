"""Durable storage: one ``Store`` protocol over memory, SQLite and PostgreSQL.

The store holds rows, not workflow logic: snapshots are opaque bytes and payloads JSON text.
The one write is ``Store.commit(batch)``: many executions' deltas in one transaction.
"""

from flowstate.storage.errors import (
    ExecutionAlreadyExists,
    HistoryConflict,
    InvalidToken,
    LeaseLost,
    SchemaTooNew,
    StateMachineAlreadyExists,
    StateMachineDoesNotExist,
    StorageError,
)
from flowstate.storage.leases import InboxMessage, Leases, NodeLease
from flowstate.storage.memory import MemoryStore
from flowstate.storage.protocol import Store
from flowstate.storage.records import (
    DEFAULT_MAX_RESULTS,
    EventRecord,
    ExecutionDelta,
    ExecutionRecord,
    ExecutionSummary,
    HistoryChunk,
    MapRunRecord,
    Page,
    RevisionRecord,
    StateMachineRecord,
    TaskRecord,
    TimerRecord,
)
from flowstate.storage.schema import LATEST_VERSION
from flowstate.storage.sqlite import SQLiteStore
from flowstate.storage.url import DEFAULT_DB, Location, open_store, parse_db

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_MAX_RESULTS",
    "LATEST_VERSION",
    "EventRecord",
    "ExecutionAlreadyExists",
    "ExecutionDelta",
    "ExecutionRecord",
    "ExecutionSummary",
    "HistoryChunk",
    "HistoryConflict",
    "InboxMessage",
    "InvalidToken",
    "LeaseLost",
    "Leases",
    "Location",
    "MapRunRecord",
    "MemoryStore",
    "NodeLease",
    "Page",
    "RevisionRecord",
    "SQLiteStore",
    "SchemaTooNew",
    "StateMachineAlreadyExists",
    "StateMachineDoesNotExist",
    "StateMachineRecord",
    "StorageError",
    "Store",
    "TaskRecord",
    "TimerRecord",
    "open_store",
    "parse_db",
]
