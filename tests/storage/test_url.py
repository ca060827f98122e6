"""``--db`` values."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowstate.storage import DEFAULT_DB, MemoryStore, SQLiteStore, parse_db
from flowstate.storage.url import Location, open_store


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("runs.db", Location("sqlite", path=Path("runs.db"))),
        ("data/runs.sqlite3", Location("sqlite", path=Path("data/runs.sqlite3"))),
        ("sqlite:///rel/runs.db", Location("sqlite", path=Path("rel/runs.db"))),
        ("sqlite:////abs/runs", Location("sqlite", path=Path("/abs/runs"))),
        (
            "sqlite:///runs.db?synchronous=full",
            Location("sqlite", path=Path("runs.db"), synchronous="FULL"),
        ),
        ("memory:", Location("memory")),
        (
            "postgresql://postgres@127.0.0.1:5432/flowstate",
            Location("postgresql", dsn="postgresql://postgres@127.0.0.1:5432/flowstate"),
        ),
        ("postgres://h/db", Location("postgresql", dsn="postgres://h/db")),
        (None, Location("sqlite", path=Path(DEFAULT_DB))),
    ],
)
def test_parse_db(value: str | None, expected: Location) -> None:
    assert parse_db(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("runs.txt", "expected PATH.db, sqlite:///PATH, memory: or postgresql://"),
        ("mysql://h/db", "expected PATH.db"),
        ("sqlite://host/runs.db", "sqlite:///relative/path"),
        ("sqlite:///", "sqlite:///relative/path"),
        ("sqlite:///runs.db?synchronous=OFF", "synchronous must be one of NORMAL, FULL"),
        ("sqlite:///runs.db?cache=1", "unknown option"),
    ],
)
def test_bad_values_say_what_is_accepted(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?").replace(".", r"\.")):
        parse_db(value)


def test_default_creates_the_flowstate_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store()
    try:
        assert isinstance(store, SQLiteStore)
        assert (tmp_path / ".flowstate" / "flowstate.db").is_file()
    finally:
        store.close()


def test_sqlite_url_opens_with_its_durability(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/x.db?synchronous=FULL")
    try:
        assert isinstance(store, SQLiteStore)
        assert store.synchronous == "FULL" and store.path == tmp_path / "x.db"
    finally:
        store.close()


def test_memory_opens_a_memory_store() -> None:
    assert isinstance(open_store("memory:"), MemoryStore)


def test_postgresql_urls_name_a_postgres_location() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/flowstate"
    assert parse_db(url) == Location("postgresql", dsn=url)
    assert parse_db("postgres://u@h/db").kind == "postgresql"


def test_an_unreachable_postgresql_is_a_storage_error() -> None:
    from flowstate.storage import StorageError

    with pytest.raises(StorageError, match=r"u:\*\*\*@127.*cannot connect to PostgreSQL"):
        open_store("postgresql://u:secret@127.0.0.1:1/nowhere?connect_timeout=1")
