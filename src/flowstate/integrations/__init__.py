"""Task resources: local Python functions as Lambda (HTTP, activities and callbacks to come)."""
