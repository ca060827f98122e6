"""``CatalogStore`` in portable SQL, mixed into ``SQLStore``."""

from __future__ import annotations

__all__ = ["SQLCatalog"]


class SQLCatalog:
    pass
