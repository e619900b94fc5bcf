"""Every difference between SQLite and PostgreSQL lives here (STYLE.md rule 9)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Insert, Table, event, make_url
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


def _private_database_file(url: str) -> None:
    """Create the SQLite file readable by its owner only (0600), or make it so.

    The database holds every envelope's metadata and the audit log: never world-readable.
    SQLite gives its -wal and -shm files the main file's permissions, so they follow.
    """
    name = make_url(url).database
    if not name or name == ":memory:":
        return
    path = Path(name)
    if not path.parent.is_dir():
        return  # SQLite says the folder is missing, in its own words
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        mode = os.fstat(fd).st_mode
        if mode & 0o077:
            # Another owner's file stays as it is (its owner decides); ours is tightened.
            with contextlib.suppress(PermissionError):
                os.fchmod(fd, stat.S_IMODE(mode) & 0o700)
    finally:
        os.close(fd)


def open_engine(url: str) -> tuple[AsyncEngine, Dialect]:
    """Create the async engine for ``url`` and the dialect helper that goes with it."""
    if url.startswith("sqlite"):
        _private_database_file(url)
        # hide_parameters: an error's text must not quote envelopes or ciphertext into a log.
        engine = create_async_engine(url, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine, Dialect("sqlite")
    if url.startswith("postgresql"):
        if "+asyncpg" not in url:
            url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
        engine = create_async_engine(
            url, pool_size=16, max_overflow=8, pool_pre_ping=True, hide_parameters=True
        )
        return engine, Dialect("postgresql")
    raise ValueError(f"unsupported database URL scheme in {url.split(':', 1)[0]!r}")
