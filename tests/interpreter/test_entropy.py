"""SeededEntropy: a deterministic, restart-safe source of randomness for the interpreter."""

from __future__ import annotations

import uuid

import pytest

from flowstate.interpreter.entropy import SeededEntropy


@pytest.mark.parametrize("seed", [0, 1, 42, 2**63, 2**64 - 1])
def test_uuid4_is_a_valid_version_4_rfc4122_uuid(seed: int) -> None:
    entropy = SeededEntropy(seed)
    for _ in range(50):
        text = entropy.uuid4()
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical, lower-case, 8-4-4-4-12
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_uuids_do_not_repeat() -> None:
    entropy = SeededEntropy(7)
    assert len({entropy.uuid4() for _ in range(1000)}) == 1000


def test_random_floats_are_in_the_unit_interval() -> None:
    entropy = SeededEntropy(123)
    draws = [entropy.random() for _ in range(5000)]
    assert all(0.0 <= x < 1.0 for x in draws)
    # Roughly uniform: the mean of 5000 draws sits near 0.5, both halves are used.
    assert 0.45 < sum(draws) / len(draws) < 0.55
    assert min(draws) < 0.05
    assert max(draws) > 0.95


def test_same_seed_same_sequence() -> None:
    a, b = SeededEntropy(99), SeededEntropy(99)
    assert [a.random() for _ in range(20)] == [b.random() for _ in range(20)]
    assert [a.uuid4() for _ in range(5)] == [b.uuid4() for _ in range(5)]


def test_different_seeds_differ() -> None:
    a, b = SeededEntropy(1), SeededEntropy(2)
    assert [a.random() for _ in range(5)] != [b.random() for _ in range(5)]


def test_state_survives_a_restart() -> None:
    # The stored state is all a restarted execution needs to continue the same sequence.
    original = SeededEntropy(5)
    for _ in range(3):
        original.random()
    resumed = SeededEntropy(0)
    resumed.state = original.state
    assert [resumed.random() for _ in range(5)] == [original.random() for _ in range(5)]


def test_seed_is_reduced_to_64_bits() -> None:
    assert SeededEntropy(2**64 + 3).state == 3
    assert SeededEntropy(-1).state == 2**64 - 1
