"""What only the SQLite backend has: a file, WAL readers, durability levels, driver failures."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from storage_rows import at, events, execution, start, task, timer

from flowstate.storage import ExecutionDelta, SQLiteStore, StorageError


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "flowstate.db"


def test_commits_survive_closing_and_reopening(db: Path) -> None:
    a = execution("a")
    first = SQLiteStore(db)
    first.commit([start(a, events=events(1, 3), timers_added=[timer(a, "t", 5)])])
    first.close()

    again = SQLiteStore(db)
    try:
        assert again.get_execution(a.arn) == a
        assert [e.id for e in again.get_history(a.arn).items] == [1, 2, 3]
        assert again.next_timer_at() == at(5)
    finally:
        again.close()


def test_creates_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "flowstate.db"
    SQLiteStore(path).close()
    assert path.is_file()


@pytest.mark.parametrize(("level", "pragma"), [("NORMAL", 1), ("full", 2)])
def test_wal_and_synchronous_level(db: Path, level: str, pragma: int) -> None:
    store = SQLiteStore(db, synchronous=level)
    try:
        assert store.synchronous == level.upper()
        with store._writing() as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert connection.execute("PRAGMA synchronous").fetchone()[0] == pragma
    finally:
        store.close()


def test_unknown_synchronous_level_is_refused(db: Path) -> None:
    with pytest.raises(ValueError, match="synchronous='OFF'"):
        SQLiteStore(db, synchronous="OFF")
    assert not db.exists()


def test_a_file_that_is_not_a_database_is_refused_untouched(db: Path) -> None:
    db.write_bytes(b"not a database, just some bytes" * 100)
    with pytest.raises(StorageError, match="cannot open as a flowstate database"):
        SQLiteStore(db)
    assert db.read_bytes() == b"not a database, just some bytes" * 100


def test_a_driver_failure_mid_transaction_leaves_nothing(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(db)
    a, b = execution("a"), execution("b")
    store.commit([start(a)])
    # The task write is the last statement of a commit: fail it after the execution rows,
    # events and timers of the same transaction have been written.
    monkeypatch.setattr(store, "_upsert_task", "INSERT INTO no_such_table VALUES (?)")
    with pytest.raises(StorageError, match="nothing written: no such table"):
        store.commit(
            [
                ExecutionDelta(a.arn, events=events(2, 4), timers_added=[timer(a, "t", 1)]),
                start(b, tasks_added=[task(b, "t1")]),
            ]
        )
    monkeypatch.undo()

    assert store.get_execution(b.arn) is None
    assert [e.id for e in store.get_history(a.arn).items] == [1]
    assert store.due_timers(at(10)) == []
    # The store is still usable: the transaction was rolled back, not left open.
    store.commit([start(b, tasks_added=[task(b, "t1")])])
    assert store.get_execution(b.arn) == b
    store.close()


def test_readers_see_the_last_commit_while_another_connection_writes(db: Path) -> None:
    store = SQLiteStore(db)
    a, b = execution("a"), execution("b")
    store.commit([start(a)])

    # Another process holds the write lock with an uncommitted transaction.
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "UPDATE executions SET status = 'SUCCEEDED' WHERE arn = ?",
        (a.arn,),
    )
    other.execute(
        "INSERT INTO history_events VALUES (?, 2, 1, 'ExecutionSucceeded', 0, NULL)", (a.arn,)
    )
    # Reads neither block nor see the uncommitted rows (WAL snapshot isolation).
    stored = store.get_execution(a.arn)
    assert stored is not None and stored.status == "RUNNING"
    assert [e.id for e in store.get_history(a.arn).items] == [1]

    other.execute("COMMIT")
    other.close()
    stored = store.get_execution(a.arn)
    assert stored is not None and stored.status == "SUCCEEDED"
    assert [e.id for e in store.get_history(a.arn).items] == [1, 2]
    store.commit([start(b)])
    store.close()


def test_readers_in_other_threads_see_all_or_nothing_of_a_commit_in_flight(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(db)
    records = [execution(f"e{i}") for i in range(20)]
    written = threading.Event()
    read = threading.Event()
    original = store._write

    def write_then_pause(connection: sqlite3.Connection, rows: object) -> None:
        original(connection, rows)  # type: ignore[arg-type]
        written.set()  # every row is written, the transaction is not committed yet
        assert read.wait(5)

    monkeypatch.setattr(store, "_write", write_then_pause)
    writer = threading.Thread(target=store.commit, args=([start(r) for r in records],))
    writer.start()
    assert written.wait(5)
    seen_during = [store.get_execution(r.arn) for r in records]
    listed_during = store.list_executions(records[0].state_machine_arn).items
    read.set()
    writer.join(5)
    assert not writer.is_alive()

    assert seen_during == [None] * 20
    assert listed_during == []
    assert [store.get_execution(r.arn) for r in records] == records
    store.close()


def test_a_closed_store_refuses_work(db: Path) -> None:
    store = SQLiteStore(db)
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.get_execution("arn")
    with pytest.raises(StorageError, match="closed"):
        store.commit([start(execution("a"))])
