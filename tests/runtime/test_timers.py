"""MemoryTimers: Express executions' in-memory deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowstate.runtime.timers import MemoryTimers

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_due_timers_come_out_in_deadline_order_once() -> None:
    timers = MemoryTimers()
    timers.push(at(3), "b", "t")
    timers.push(at(1), "a", "t")
    timers.push(at(2), "a", "u")
    assert timers.next_at() == at(1)
    assert timers.pop_due(at(2)) == [("a", "t"), ("a", "u")]
    assert timers.pop_due(at(2)) == []
    assert timers.pop_due(at(10)) == [("b", "t")]
    assert len(timers) == 0 and timers.next_at() is None


def test_a_rearmed_timer_fires_at_its_new_deadline_only() -> None:
    timers = MemoryTimers()
    timers.push(at(1), "a", "t")
    timers.push(at(5), "a", "t")
    assert timers.pop_due(at(4)) == []
    assert timers.pop_due(at(5)) == [("a", "t")]


def test_cancel_and_forget_remove_only_their_timers() -> None:
    timers = MemoryTimers()
    timers.push(at(1), "a", "t1")
    timers.push(at(1), "a", "t2")
    timers.push(at(1), "b", "t1")
    timers.cancel("a", "t1")
    timers.cancel("a", "missing")
    assert len(timers) == 2
    timers.forget("b")
    timers.forget("nobody")
    assert timers.pop_due(at(2)) == [("a", "t2")]


def test_cancelled_entries_do_not_pile_up_until_their_deadline() -> None:
    # Each Express execution arms a 5-minute limit and usually ends long before it.
    timers = MemoryTimers()
    timers.push(at(600), "keeper", "t")
    for n in range(10_000):
        timers.push(at(300), f"e{n}", "timeout")
        timers.forget(f"e{n}")
    assert len(timers) == 1
    assert timers.heap_size() < 200
    assert timers.next_at() == at(600)
    assert timers.pop_due(at(600)) == [("keeper", "t")]
