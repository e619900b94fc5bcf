"""The store fixture of tests/store (SQLite, and PostgreSQL when HUB_TEST_POSTGRES_URL is set)."""

from tests.store.conftest import store

__all__ = ["store"]
