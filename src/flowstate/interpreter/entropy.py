"""A seeded, deterministic source of randomness (SplitMix64).

The interpreter may not draw randomness from the machine: a re-run of the same execution from
the same frame must make the same decisions (jitter, ``States.UUID``, ``$random()``). The runtime
hands in a seed per execution; every draw advances the stored state, so it survives a restart.
"""

from __future__ import annotations

__all__ = ["SeededEntropy"]

_MASK = (1 << 64) - 1


class SeededEntropy:
    """SplitMix64 over a 64-bit state; implements ``asl.scope.Entropy``."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = seed & _MASK

    def _next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        return (self._next() >> 11) / float(1 << 53)

    def uuid4(self) -> str:
        value = (self._next() << 64) | self._next()
        value &= ~(0xF000 << 64)
        value |= 0x4000 << 64  # version 4
        value &= ~(0xC000 << 48)
        value |= 0x8000 << 48  # RFC 4122 variant
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
