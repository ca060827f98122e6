"""Clocks: real time, or a virtual clock that jumps to the next timer when nothing can run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "RealClock", "VirtualClock", "make_clock"]


class Clock(Protocol):
    is_virtual: bool

    def now(self) -> datetime: ...

    def advance_to(self, moment: datetime) -> None:
        """Virtual clocks jump; a real clock cannot (the runtime sleeps instead)."""
        ...


class RealClock:
    is_virtual = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def advance_to(self, moment: datetime) -> None:
        return None


class VirtualClock:
    """Starts at the real time (or ``start``) and only moves when told to.

    A timer fires as soon as nothing else can run, in deadline order, so a one-year Wait
    finishes at once and deterministically.
    """

    is_virtual = True

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start if start is not None else datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> None:
        if moment > self._now:
            self._now = moment

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


def make_clock(kind: str) -> Clock:
    if kind == "virtual":
        return VirtualClock()
    if kind == "real":
        return RealClock()
    raise ValueError(f"unknown clock {kind!r}: expected 'real' or 'virtual'")
