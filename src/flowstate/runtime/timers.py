"""Timers that live only in memory: those of Express executions (never written)."""

from __future__ import annotations

import heapq
from datetime import datetime

__all__ = ["MemoryTimers"]


class MemoryTimers:
    """A deadline heap with lazy cancellation: an entry counts only while ``_armed`` still
    maps its key to its deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, str, str]] = []
        self._armed: dict[tuple[str, str], datetime] = {}
        self._seq = 0

    def push(self, fire_at: datetime, arn: str, timer_id: str) -> None:
        self._seq += 1
        self._armed[(arn, timer_id)] = fire_at
        heapq.heappush(self._heap, (fire_at, self._seq, arn, timer_id))

    def cancel(self, arn: str, timer_id: str) -> None:
        self._armed.pop((arn, timer_id), None)

    def forget(self, arn: str) -> None:
        for key in [k for k in self._armed if k[0] == arn]:
            del self._armed[key]

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and self._armed.get((heap[0][2], heap[0][3])) != heap[0][0]:
            heapq.heappop(heap)

    def next_at(self) -> datetime | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> list[tuple[str, str]]:
        due: list[tuple[str, str]] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return due
            _, _, arn, timer_id = heapq.heappop(self._heap)
            del self._armed[(arn, timer_id)]
            due.append((arn, timer_id))

    def __len__(self) -> int:
        return len(self._armed)
