"""SQLite store: every sample and judgment is written the moment it exists."""

from trustdiff.store.sqlite import Store

__all__ = ["Store"]
