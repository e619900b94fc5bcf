"""The ``store`` fixture: every store test runs on SQLite and on PostgreSQL (STYLE.md rule 9).

PostgreSQL runs only when ``HUB_TEST_POSTGRES_URL`` names a database, e.g.
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``; otherwise those variants are skipped
with the reason shown in ``pytest -ra``. Each PostgreSQL test gets a schema of its own,
named uniquely and dropped afterwards, so runs can repeat and overlap on one database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from hub.store import SqlStore, database_url_for_path
from hub.store.dialect import open_engine

POSTGRES_URL_VARIABLE = "HUB_TEST_POSTGRES_URL"
_SCHEMA_PREFIX = "hub_test_"


def postgres_url_or_skip() -> str:
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set: PostgreSQL store tests skipped")
    return url


async def _run_admin(url: str, statement: str) -> None:
    engine, _ = open_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _pin_search_path(store_engine: Any, schema: str) -> None:
    """Point every new connection of the engine at ``schema`` (and only there).

    The SQLAlchemy-documented recipe: autocommit for the SET so that it is not part of a
    transaction the pool could roll back.
    """

    @event.listens_for(store_engine.sync_engine, "connect", insert=True)
    def set_search_path(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET SESSION search_path TO "{schema}"')
        cursor.close()
        dbapi_connection.autocommit = autocommit


@asynccontextmanager
async def _postgres_store() -> AsyncIterator[SqlStore]:
    url = postgres_url_or_skip()
    schema = f"{_SCHEMA_PREFIX}{uuid.uuid4().hex}"
    await _run_admin(url, f'CREATE SCHEMA "{schema}"')
    try:
        engine, dialect = open_engine(url)
        _pin_search_path(engine, schema)
        store = SqlStore(engine, dialect)
        try:
            await store.create_schema()
            yield store
        finally:
            await store.close()
    finally:
        await _run_admin(url, f'DROP SCHEMA "{schema}" CASCADE')


@asynccontextmanager
async def _sqlite_store(path: Path) -> AsyncIterator[SqlStore]:
    store = SqlStore.open(database_url_for_path(path))
    try:
        await store.create_schema()
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """An ``SqlStore`` with the hub's schema created, on each engine in turn."""
    opening: AbstractAsyncContextManager[SqlStore]
    if request.param == "sqlite":
        opening = _sqlite_store(tmp_path / "hub.sqlite3")
    else:
        opening = _postgres_store()
    async with opening as opened:
        yield opened
