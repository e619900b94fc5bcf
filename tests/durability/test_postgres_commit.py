"""PostgreSQL: the hub's commits wait for their WAL flush, whatever the database says.

Each test creates a database of its own (beside HUB_TEST_POSTGRES_URL's) and drops it.
"""

from __future__ import annotations

import logging

import pytest

from hub.store.dialect import open_engine
from tests.durability.live import admin_statement, own_postgres_database
from tests.store.conftest import postgres_url_or_skip


async def _hub_connection_setting(url: str) -> list[str]:
    """synchronous_commit on a new hub connection, then on it again back from the pool and
    in a transaction (the setting is the session's, so the pool's rollback keeps it)."""
    engine, _ = open_engine(url)
    try:
        seen = []
        async with engine.connect() as conn:
            seen.append(str((await conn.exec_driver_sql("SHOW synchronous_commit")).scalar()))
        async with engine.begin() as conn:
            seen.append(str((await conn.exec_driver_sql("SHOW synchronous_commit")).scalar()))
        return seen
    finally:
        await engine.dispose()


async def test_synchronous_commit_off_is_turned_on_for_the_hubs_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with own_postgres_database(postgres_url_or_skip()) as url:
        name = url.rsplit("/", 1)[1]
        await admin_statement(url, f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        with caplog.at_level(logging.WARNING, logger="hub.store"):
            assert await _hub_connection_setting(url) == ["on", "on"]
        assert "synchronous_commit is off" in caplog.text
        assert "sets it to on for its own connections" in caplog.text


async def test_an_operators_durable_synchronous_commit_is_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with own_postgres_database(postgres_url_or_skip()) as url:
        name = url.rsplit("/", 1)[1]
        # 'local' (like remote_write and remote_apply) waits for the local flush at least.
        await admin_statement(url, f'ALTER DATABASE "{name}" SET synchronous_commit = local')
        with caplog.at_level(logging.WARNING, logger="hub.store"):
            assert await _hub_connection_setting(url) == ["local", "local"]
        assert "synchronous_commit" not in caplog.text
