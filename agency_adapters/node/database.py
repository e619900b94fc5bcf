"""The node's own SQLite file, ``DIR/state/node.sqlite3``, shared by the node's modules.

Each module creates only its own tables (``CREATE TABLE IF NOT EXISTS``, named with its
prefix, e.g. ``console_``) over a connection from :func:`open_node_database`, which is the
one place the file is created: its folder 0700 and the file 0600 (it holds password hashes
and session digests), refused when someone else could read it, in WAL mode so the console's
readers do not wait on a writer.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["NodeDatabaseError", "immediate_transaction", "node_database_path", "open_node_database"]


class NodeDatabaseError(Exception):
    """The node database cannot be opened safely; the message says why and what to do."""


def node_database_path(node_root: Path) -> Path:
    """Where the node database lives in a node folder."""
    return node_root / "state" / "node.sqlite3"


def open_node_database(path: Path) -> sqlite3.Connection:
    """Open (creating if need be) the node database at ``path``, owner-only, WAL mode.

    The connection is in autocommit mode (``isolation_level=None``): callers open their
    own ``BEGIN IMMEDIATE`` transactions. It may be used from more than one thread, one
    at a time (callers hold a lock), so a web handler can hash passwords in an executor.
    """
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The node's state folder may predate this module (mkdir with the umask); it holds
        # only the node's own state, so it is tightened rather than refused.
        if stat.S_IMODE(folder.stat().st_mode) & 0o077:
            folder.chmod(0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
    except OSError as exc:
        raise NodeDatabaseError(f"cannot open the node database {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise NodeDatabaseError(
            f"the node database {path} is readable or writable by others (mode {mode:04o}); "
            "it holds password hashes: chmod 600 it"
        )
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA busy_timeout=5000")
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise NodeDatabaseError(f"{path} is not a usable SQLite database: {exc}") from exc
    return connection


@contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` on an autocommit connection: committed when the block ends,
    rolled back (and the error raised again) when it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
