"""Every difference between SQLite and PostgreSQL lives here (STYLE.md rule 9)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Insert, Table, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["WRITE_TRANSACTION", "Dialect", "database_url_for_path", "open_engine"]

log = logging.getLogger("hub.store")


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


# Set on the engine that write transactions use (SqlStore.transaction): on SQLite their
# BEGIN takes the write lock at once, so everything they read is read under it.
WRITE_TRANSACTION = {"hub_write_transaction": True}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is switched off (it begins a transaction only
    # at the first INSERT, so the SELECTs before it, such as the audit log's size, would
    # run outside it); _sqlite_begin emits the BEGIN instead. SQLAlchemy's documented
    # recipe for pysqlite and aiosqlite ("Serializable isolation / Savepoints / Transactional
    # DDL"); the driver still commits and rolls back as before.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer. FULL: every commit is fsynced before it returns,
    # so a receipt the hub has answered with survives a power cut, not only a crash of the
    # process (NORMAL could lose the last commits, and the log would reuse their indexes).
    # Group commit makes that one fsync per batch, not per message.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # How long BEGIN IMMEDIATE waits for another process's write transaction to end.
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """BEGIN IMMEDIATE for a write transaction, a plain (deferred) BEGIN for a read view.

    IMMEDIATE takes SQLite's one write lock before the first statement, waiting up to the
    busy timeout for another process that holds it. So a write transaction reads the audit
    state it then updates under that lock, and two hub processes on one file can never
    append the same log index. A read view never takes the lock.
    """
    write = connection.get_execution_options().get("hub_write_transaction", False)
    # Straight to the driver, as SQLAlchemy itself begins, commits and rolls back: the
    # transaction's control is not one of its statements (nor in their events).
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    finally:
        cursor.close()


def _postgresql_commit_is_durable(dbapi_connection: Any, _record: Any) -> None:
    """Make sure a commit on this connection waits for its WAL flush.

    With ``synchronous_commit = off`` PostgreSQL acknowledges a commit before it is on
    disk, so a crash could lose messages whose receipts were already sent. Any other value
    (on, local, remote_write, remote_apply) waits at least for the local flush and is kept
    as the operator set it; off is turned on for the hub's own sessions.
    """
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # a SET outside any transaction the pool rolls back
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SHOW synchronous_commit")
        (value,) = cursor.fetchone()
        if value == "off":
            log.warning(
                "synchronous_commit is off (a server, database or role setting); the hub "
                "sets it to on for its own connections so that no receipt is sent before "
                "its message is on disk"
            )
            cursor.execute("SET SESSION synchronous_commit TO on")
    finally:
        cursor.close()
        dbapi_connection.autocommit = autocommit


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
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine, Dialect("sqlite")
    if url.startswith("postgresql"):
        if "+asyncpg" not in url:
            url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
        engine = create_async_engine(
            url, pool_size=16, max_overflow=8, pool_pre_ping=True, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", _postgresql_commit_is_durable)
        return engine, Dialect("postgresql")
    raise ValueError(f"unsupported database URL scheme in {url.split(':', 1)[0]!r}")
