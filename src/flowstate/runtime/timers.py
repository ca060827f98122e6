"""Timers that live only in memory: those of Express executions (never written)."""

from __future__ import annotations

import heapq
from datetime import datetime

__all__ = ["MemoryTimers"]


class MemoryTimers:
    """A deadline heap with lazy cancellation: an entry counts only while ``_armed`` still
    maps its key to its deadline.

    Every Express execution arms its 5-minute limit and most end long before it, so the
    cancelled entries are counted and the heap is rebuilt from the armed ones once they
    outnumber them: memory follows the armed timers, not the executions of the last five
    minutes. ``forget`` costs the execution's own timers, not all of them."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, str, str]] = []
        self._armed: dict[tuple[str, str], tuple[datetime, int]] = {}
        self._of: dict[str, set[str]] = {}  # arn -> its armed timer ids
        self._seq = 0
        self._stale = 0  # heap entries no longer armed

    def push(self, fire_at: datetime, arn: str, timer_id: str) -> None:
        self._seq += 1
        key = (arn, timer_id)
        if key in self._armed:
            self._stale += 1  # the earlier entry is superseded
        self._armed[key] = (fire_at, self._seq)
        self._of.setdefault(arn, set()).add(timer_id)
        heapq.heappush(self._heap, (fire_at, self._seq, arn, timer_id))

    def cancel(self, arn: str, timer_id: str) -> None:
        if self._armed.pop((arn, timer_id), None) is None:
            return
        ids = self._of.get(arn)
        if ids is not None:
            ids.discard(timer_id)
            if not ids:
                del self._of[arn]
        self._stale += 1
        self._compact()

    def forget(self, arn: str) -> None:
        ids = self._of.pop(arn, None)
        if not ids:
            return
        for timer_id in ids:
            del self._armed[(arn, timer_id)]
        self._stale += len(ids)
        self._compact()

    def _compact(self) -> None:
        if self._stale <= 64 or self._stale <= len(self._armed):
            return
        self._heap = [
            (fire_at, seq, arn, timer_id) for (arn, timer_id), (fire_at, seq) in self._armed.items()
        ]
        heapq.heapify(self._heap)
        self._stale = 0

    def _live(self, entry: tuple[datetime, int, str, str]) -> bool:
        return self._armed.get((entry[2], entry[3]), (None, None))[1] == entry[1]

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
            self._stale = max(0, self._stale - 1)

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
            ids = self._of.get(arn)
            if ids is not None:
                ids.discard(timer_id)
                if not ids:
                    del self._of[arn]
            due.append((arn, timer_id))

    def heap_size(self) -> int:
        """Entries held, cancelled ones included (for tests of the compaction)."""
        return len(self._heap)

    def __len__(self) -> int:
        return len(self._armed)
