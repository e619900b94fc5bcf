"""Every difference between SQLite and PostgreSQL lives here (STYLE.md rule 9)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Insert, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["Dialect", "database_url_for_path", "open_engine"]


def database_url_for_path(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.resolve()}"


class Dialect:
    """What differs per engine: connection set-up, write serialisation, upserts."""

    def __init__(self, name: str) -> None:
        self.name = name
        # SQLite allows one writer at a time. Serialising writers in the process avoids
        # SQLITE_BUSY on lock upgrade; PostgreSQL takes row locks and needs none of it.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if name == "sqlite" else None

    @contextlib.asynccontextmanager
    async def writer(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield

    def insert_ignore_many(self, table: Table) -> Insert:
        """INSERT (for executemany) that skips rows whose primary key exists."""
        if self.name == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing()
        if self.name == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        raise NotImplementedError(f"no insert-ignore for dialect {self.name}")

    def insert_ignore(self, table: Table, values: dict[str, Any]) -> Insert:
        """INSERT that does nothing on a primary-key conflict (rowcount 0)."""
        if self.name == "sqlite":
            return sqlite.insert(table).values(**values).on_conflict_do_nothing()
        if self.name == "postgresql":
            return postgresql.insert(table).values(**values).on_conflict_do_nothing()
        raise NotImplementedError(f"no insert-ignore for dialect {self.name}")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; NORMAL is durable across crashes of the
    # process in WAL mode (only an OS crash can lose the last commits).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_engine(url: str) -> tuple[AsyncEngine, Dialect]:
    """Create the async engine for ``url`` and the dialect helper that goes with it."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine, Dialect("sqlite")
    if url.startswith("postgresql"):
        if "+asyncpg" not in url:
            url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
        engine = create_async_engine(url, pool_size=16, max_overflow=8, pool_pre_ping=True)
        return engine, Dialect("postgresql")
    raise ValueError(f"unsupported database URL scheme in {url.split(':', 1)[0]!r}")
