"""``--db`` values: where the store lives, parsed before anything is opened.

* ``PATH.db`` (or ``.sqlite``/``.sqlite3``) or ``sqlite:///PATH``: an SQLite file
  (``sqlite:////abs/path`` for an absolute path; ``sqlite:///rel/path`` is relative);
  an optional ``?synchronous=FULL`` chooses the durability level;
* ``memory:``: nothing persisted (tests, throw-away runs);
* ``postgresql://...`` (or ``postgres://``): a PostgreSQL database (libpq URL), shared by any
  number of ``flowstate serve`` processes.

No value means ``./.flowstate/flowstate.db``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from flowstate.storage.protocol import Store
from flowstate.storage.sqlite import SYNCHRONOUS_LEVELS

__all__ = ["DEFAULT_DB", "Location", "open_store", "parse_db"]

DEFAULT_DB = "./.flowstate/flowstate.db"

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


@dataclass(frozen=True, slots=True)
class Location:
    kind: str  # sqlite | memory | postgresql
    path: Path | None = None  # sqlite
    dsn: str | None = None  # postgresql
    synchronous: str = "NORMAL"  # sqlite

    def open(self) -> Store:
        if self.kind == "memory":
            from flowstate.storage.memory import MemoryStore

            return MemoryStore()
        if self.kind == "sqlite":
            from flowstate.storage.sqlite import SQLiteStore

            assert self.path is not None
            return SQLiteStore(self.path, synchronous=self.synchronous)
        from flowstate.storage.postgres import PostgresStore

        assert self.dsn is not None
        return PostgresStore(self.dsn)


def parse_db(value: str | None) -> Location:
    """The store a ``--db`` value names; ValueError with the accepted forms otherwise."""
    text = (value or DEFAULT_DB).strip()
    if text == "memory:":
        return Location("memory")
    if text.startswith(("postgresql://", "postgres://")):
        return Location("postgresql", dsn=text)
    if text.startswith("sqlite://"):
        parts = urlsplit(text)
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise ValueError(f"--db {text!r}: write sqlite:///relative/path or sqlite:////abs/path")
        query = parse_qs(parts.query)
        unknown = set(query) - {"synchronous"}
        if unknown:
            raise ValueError(f"--db {text!r}: unknown option(s) {', '.join(sorted(unknown))}")
        synchronous = query.get("synchronous", ["NORMAL"])[-1].upper()
        if synchronous not in SYNCHRONOUS_LEVELS:
            raise ValueError(
                f"--db {text!r}: synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}"
            )
        return Location("sqlite", path=Path(parts.path[1:]), synchronous=synchronous)
    if "://" not in text and text.lower().endswith(_SQLITE_SUFFIXES):
        return Location("sqlite", path=Path(text))
    raise ValueError(
        f"--db {text!r}: expected PATH.db, sqlite:///PATH, memory: or postgresql://..."
    )


def open_store(value: str | None = None) -> Store:
    """Parse ``value`` and open that store (SQLite files and directories are created)."""
    return parse_db(value).open()
