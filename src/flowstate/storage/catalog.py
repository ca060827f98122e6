"""The control plane's rows beside the executions: versions, aliases, tags, activities.

``CatalogStore`` is the part of ``Store`` that holds them (filled in by the catalog work).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["CatalogStore"]


class CatalogStore(Protocol):
    pass
