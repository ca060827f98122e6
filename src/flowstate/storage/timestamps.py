"""Instants as integer microseconds since the Unix epoch (UTC).

One integer column type works the same on SQLite and PostgreSQL, sorts and indexes cheaply,
and converts exactly (no float rounding).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["from_micros", "micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: the store needs aware UTC times")
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)
