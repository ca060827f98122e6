"""Clocks: the virtual clock only moves forward and only when told; the real one is UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowstate.asl.parse import parse_definition
from flowstate.runtime.clock import RealClock, VirtualClock, make_clock
from flowstate.runtime.local import LocalRuntime

START = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def test_virtual_clock_starts_where_told_and_stands_still() -> None:
    clock = VirtualClock(START)
    assert clock.is_virtual
    assert clock.now() == START
    assert clock.now() == START


def test_virtual_clock_advance_to_moves_forward_only() -> None:
    clock = VirtualClock(START)
    later = START + timedelta(days=365)
    clock.advance_to(later)
    assert clock.now() == later
    clock.advance_to(START)  # never backwards
    assert clock.now() == later


def test_virtual_clock_advance_by_seconds() -> None:
    clock = VirtualClock(START)
    clock.advance(1.5)
    assert clock.now() == START + timedelta(seconds=1.5)


def test_virtual_clock_defaults_to_the_current_utc_time() -> None:
    before = datetime.now(UTC)
    clock = VirtualClock()
    after = datetime.now(UTC)
    assert before <= clock.now() <= after
    assert clock.now().tzinfo is not None


def test_real_clock_is_aware_utc_and_cannot_jump() -> None:
    clock = RealClock()
    assert not clock.is_virtual
    now = clock.now()
    assert now.utcoffset() == timedelta(0)
    clock.advance_to(now + timedelta(days=1))
    assert clock.now() - now < timedelta(hours=1)


def test_make_clock() -> None:
    assert isinstance(make_clock("virtual"), VirtualClock)
    assert isinstance(make_clock("real"), RealClock)
    with pytest.raises(ValueError, match="unknown clock"):
        make_clock("sundial")


def test_a_run_leaves_the_virtual_clock_at_the_last_timer() -> None:

    clock = VirtualClock(START)
    runtime = LocalRuntime(clock=clock)
    machine = parse_definition(
        '{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":3600,"End":true}}}'
    )
    execution = runtime.start(machine, {}, state_machine_name="M")
    runtime.run_until_idle()
    assert execution.status == "SUCCEEDED"
    assert clock.now() == START + timedelta(hours=1)
