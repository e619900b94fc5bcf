"""Storage errors services may catch without importing SQLAlchemy."""

from __future__ import annotations

__all__ = ["DuplicateRecord", "StoreError"]


class StoreError(Exception):
    """Base class for errors raised by the store."""


class DuplicateRecord(StoreError):
    """A record with this key exists already (possibly written concurrently)."""
