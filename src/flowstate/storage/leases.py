"""Ownership of executions when several nodes share one database: node leases, takeover,
owner-scoped timers and the inbox. Portable SQL, mixed into the SQL stores.

* A **node** holds one lease (a ``nodes`` row whose ``expires_at`` is on the database's
  clock) and renews it with one small UPDATE; a lease that has expired is never renewed (the
  node must join again under a new id). The executions a node owns name it in
  ``lease_owner``: renewing costs one row, however many executions the node owns.
* **Fencing**: every claim bumps the execution's ``generation``; ``commit`` updates a row only
  at the generation the node loaded, so a node that lost an execution cannot write to it,
  even if it wakes up much later. The PostgreSQL store also refuses a whole commit from a
  node whose lease has expired.
* **Takeover**: RUNNING executions whose owner's lease expired are claimed in batches with
  ``FOR UPDATE SKIP LOCKED`` (concurrent claimers split them instead of queueing).
* **Inbox**: an event for an execution another node owns (StopExecution, a task-token
  callback) is a row the owner reads, applies, and deletes once applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from flowstate.storage.records import ExecutionRecord, TimerRecord
from flowstate.storage.sql import _EXECUTION_COLUMNS, Dialect, _execution
from flowstate.storage.timestamps import from_micros, micros

__all__ = ["InboxMessage", "Leases", "NodeLease", "SQLLeases"]

_MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class NodeLease:
    node_id: str
    now: datetime  # the database's clock when the lease was taken or renewed
    expires_at: datetime
    dead_nodes: int = 0  # nodes whose lease has expired (their executions can be claimed)


@dataclass(frozen=True, slots=True)
class InboxMessage:
    execution_arn: str
    message_id: str
    body: str  # JSON text; the runtime knows what it means
    created_at: datetime


class Leases(Protocol):
    """What the runtime's cluster membership needs from a shared store."""

    def db_now(self) -> datetime: ...

    def join(self, node_id: str, lease_seconds: float, endpoint: str | None = None) -> NodeLease:
        """Register ``node_id`` with a fresh lease."""
        ...

    def renew(self, node_id: str, lease_seconds: float) -> NodeLease | None:
        """Extend the lease; None if it had already expired (the node has lost everything)."""
        ...

    def leave(self, node_id: str) -> None:
        """Expire the lease now, so others take over at once (a clean shutdown)."""
        ...

    def claim_orphans(self, node_id: str, limit: int = 100) -> list[ExecutionRecord]:
        """Take over up to ``limit`` RUNNING executions whose owner's lease has expired (or
        that have no owner); their ``generation`` moves on. Returns them as now stored."""
        ...

    def claim_execution(self, node_id: str, arn: str, *, stopped: bool) -> ExecutionRecord | None:
        """Take over one execution: an orphan RUNNING one, or (``stopped``) one that has
        stopped, about to be redriven. None if it is not claimable."""
        ...

    def forget_dead_nodes(self) -> int:
        """Delete expired nodes that own no RUNNING execution any more."""
        ...

    def owned_due_timers(self, node_id: str, now: datetime, limit: int = 1000) -> list[TimerRecord]:
        """``due_timers`` restricted to the executions ``node_id`` owns."""
        ...

    def owned_next_timer_at(self, node_id: str) -> datetime | None: ...

    def send(self, execution_arn: str, message_id: str, body: str) -> str | None:
        """Queue ``body`` for the owner of a RUNNING execution and wake it; returns the owner
        (or "" if none), None if the execution is not running (nothing queued)."""
        ...

    def owned_inbox(self, node_id: str, limit: int = 100) -> list[InboxMessage]:
        """Oldest first, for the executions ``node_id`` owns."""
        ...

    def delete_inbox(self, keys: Sequence[tuple[str, str]]) -> None: ...

    def in_inbox(self, execution_arn: str, message_id: str) -> bool: ...


class SQLLeases:
    """``Leases`` in portable SQL; the dialect supplies the clock and ``SKIP LOCKED``."""

    dialect: Dialect

    def _reading(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _notify(self, connection: Any, payload: str) -> None:
        """Wake the other nodes (PostgreSQL NOTIFY, delivered at commit)."""
        return None

    def db_now(self) -> datetime:
        with self._reading() as connection:
            row = connection.execute(f"SELECT {self.dialect.now_micros}").fetchone()
        return from_micros(int(row[0]))

    def join(self, node_id: str, lease_seconds: float, endpoint: str | None = None) -> NodeLease:
        d, now = self.dialect, self.dialect.now_micros
        span = round(lease_seconds * _MICROS)
        with self._writing() as connection, d.transaction(connection):
            row = connection.execute(
                d.sql(
                    "INSERT INTO nodes (node_id, endpoint, started_at, expires_at) "
                    f"VALUES (?, ?, {now}, {now} + ?) RETURNING expires_at"
                ),
                (node_id, endpoint, span),
            ).fetchone()
        expires = int(row[0])
        return NodeLease(node_id, from_micros(expires - span), from_micros(expires))

    def renew(self, node_id: str, lease_seconds: float) -> NodeLease | None:
        d, now = self.dialect, self.dialect.now_micros
        span = round(lease_seconds * _MICROS)
        with self._writing() as connection:
            row = connection.execute(
                d.sql(
                    f"UPDATE nodes SET expires_at = {now} + ? "
                    f"WHERE node_id = ? AND expires_at > {now} RETURNING expires_at, "
                    f"(SELECT COUNT(*) FROM nodes WHERE expires_at <= {now})"
                ),
                (span, node_id),
            ).fetchone()
        if row is None:
            return None
        expires = int(row[0])
        return NodeLease(node_id, from_micros(expires - span), from_micros(expires), int(row[1]))

    def leave(self, node_id: str) -> None:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            connection.execute(
                d.sql("UPDATE nodes SET expires_at = 0 WHERE node_id = ?"), (node_id,)
            )
            self._notify(connection, "left:" + node_id)

    def claim_orphans(self, node_id: str, limit: int = 100) -> list[ExecutionRecord]:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            rows = connection.execute(
                d.sql(
                    "UPDATE executions SET lease_owner = ?, generation = generation + 1 "
                    "WHERE arn IN (SELECT arn FROM executions WHERE status = 'RUNNING' AND "
                    "(lease_owner IS NULL OR lease_owner IN "
                    f"(SELECT node_id FROM nodes WHERE expires_at <= {d.now_micros})) "
                    f"ORDER BY arn LIMIT ? {d.skip_locked}) "
                    f"RETURNING {_EXECUTION_COLUMNS}"
                ),
                (node_id, limit),
            ).fetchall()
        return [_execution(row) for row in rows]

    def claim_execution(self, node_id: str, arn: str, *, stopped: bool) -> ExecutionRecord | None:
        d = self.dialect
        if stopped:
            condition = "status <> 'RUNNING'"
        else:
            condition = (
                "status = 'RUNNING' AND (lease_owner IS NULL OR lease_owner IN "
                f"(SELECT node_id FROM nodes WHERE expires_at <= {d.now_micros}))"
            )
        with self._writing() as connection, d.transaction(connection):
            row = connection.execute(
                d.sql(
                    "UPDATE executions SET lease_owner = ?, generation = generation + 1 "
                    f"WHERE arn = ? AND {condition} RETURNING {_EXECUTION_COLUMNS}"
                ),
                (node_id, arn),
            ).fetchone()
        return None if row is None else _execution(row)

    def forget_dead_nodes(self) -> int:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            cursor = connection.execute(
                d.sql(
                    f"DELETE FROM nodes WHERE expires_at <= {d.now_micros} AND NOT EXISTS "
                    "(SELECT 1 FROM executions WHERE lease_owner = nodes.node_id "
                    "AND status = 'RUNNING')"
                )
            )
            return int(cursor.rowcount or 0)

    def owned_due_timers(self, node_id: str, now: datetime, limit: int = 1000) -> list[TimerRecord]:
        # Walks due timers in deadline order (timers_due) and probes each owner by primary
        # key: the due timers of other live nodes are few, they fire them themselves.
        with self._reading() as connection:
            rows = connection.execute(
                self.dialect.sql(
                    "SELECT t.execution_arn, t.timer_id, t.fire_at FROM timers t "
                    "JOIN executions e ON e.arn = t.execution_arn "
                    "WHERE t.fire_at <= ? AND e.lease_owner = ? "
                    "ORDER BY t.fire_at, t.execution_arn, t.timer_id LIMIT ?"
                ),
                (micros(now), node_id, limit),
            ).fetchall()
        return [TimerRecord(r[0], r[1], from_micros(r[2])) for r in rows]

    def owned_next_timer_at(self, node_id: str) -> datetime | None:
        with self._reading() as connection:
            row = connection.execute(
                self.dialect.sql(
                    "SELECT t.fire_at FROM timers t JOIN executions e ON e.arn = t.execution_arn "
                    "WHERE e.lease_owner = ? ORDER BY t.fire_at LIMIT 1"
                ),
                (node_id,),
            ).fetchone()
        return None if row is None else from_micros(row[0])

    def send(self, execution_arn: str, message_id: str, body: str) -> str | None:
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            row = connection.execute(
                d.sql("SELECT lease_owner FROM executions WHERE arn = ? AND status = 'RUNNING'"),
                (execution_arn,),
            ).fetchone()
            if row is None:
                return None
            connection.execute(
                d.sql(
                    "INSERT INTO inbox (execution_arn, message_id, body, created_at) "
                    f"VALUES (?, ?, ?, {d.now_micros})"
                ),
                (execution_arn, message_id, body),
            )
            owner = row[0] or ""
            self._notify(connection, "inbox:" + owner)
        return owner

    def owned_inbox(self, node_id: str, limit: int = 100) -> list[InboxMessage]:
        with self._reading() as connection:
            rows = connection.execute(
                self.dialect.sql(
                    "SELECT i.execution_arn, i.message_id, i.body, i.created_at FROM inbox i "
                    "JOIN executions e ON e.arn = i.execution_arn WHERE e.lease_owner = ? "
                    "ORDER BY i.created_at, i.execution_arn, i.message_id LIMIT ?"
                ),
                (node_id, limit),
            ).fetchall()
        return [InboxMessage(r[0], r[1], r[2], from_micros(r[3])) for r in rows]

    def delete_inbox(self, keys: Sequence[tuple[str, str]]) -> None:
        if not keys:
            return
        d = self.dialect
        with self._writing() as connection, d.transaction(connection):
            connection.cursor().executemany(
                d.sql("DELETE FROM inbox WHERE execution_arn = ? AND message_id = ?"),
                list(keys),
            )

    def in_inbox(self, execution_arn: str, message_id: str) -> bool:
        with self._reading() as connection:
            row = connection.execute(
                self.dialect.sql("SELECT 1 FROM inbox WHERE execution_arn = ? AND message_id = ?"),
                (execution_arn, message_id),
            ).fetchone()
        return row is not None
