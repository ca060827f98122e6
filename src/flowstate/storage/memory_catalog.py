"""``CatalogStore`` in memory, mixed into ``MemoryStore``."""

from __future__ import annotations

__all__ = ["MemoryCatalog"]


class MemoryCatalog:
    pass
