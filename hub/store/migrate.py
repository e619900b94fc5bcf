"""Schema migrations: which revision a database is at, and bringing it to the code's head.

The hub's schema is defined in hub/store/tables.py and built, revision by revision, by the
Alembic scripts in hub/store/migrations/versions/ (one head; a test keeps head equal to
tables.py on SQLite and PostgreSQL). Alembic is configured here in code, so an installed
hub needs no alembic.ini.

Each operation opens its own short-lived engine and does its work in ONE transaction that
first takes a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory transaction lock on
PostgreSQL): two processes starting on one empty database cannot both create it, and a
failed upgrade leaves the database at the revision it had (both engines run DDL
transactionally here).

A database is in one of five states (:class:`SchemaState`):
- ``empty``: no tables; ``hub serve`` and the other commands migrate it to head.
- ``current``: at head.
- ``behind``: at an older revision; ``hub admin migrate`` upgrades it, nothing else will.
- ``ahead``: at a revision this code does not know (a newer hub ran on it); refused.
- ``legacy``: tables but no ``alembic_version`` (made by ``metadata.create_all`` before
  migrations existed); ``hub admin migrate`` stamps it 0001_initial if it equals that
  revision exactly, and refuses it otherwise.
"""

from __future__ import annotations

import enum
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError as AlembicCommandError
from sqlalchemy import Connection, MetaData, Table, inspect, make_url, text

from hub.store.dialect import WRITE_TRANSACTION, open_engine
from hub.store.errors import StoreError

__all__ = [
    "BASE_REVISION",
    "SchemaError",
    "SchemaState",
    "SchemaStatus",
    "Upgrade",
    "alembic_config",
    "head_revision",
    "prepare_database",
    "schema_status",
    "upgrade_sql",
    "upgrade_to_head",
]

log = logging.getLogger("hub.store.migrate")

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
# The revision a database made by create_all before migrations existed is equal to.
BASE_REVISION = "0001_initial"
VERSION_TABLE = "alembic_version"
# Any constant: the key of the PostgreSQL advisory lock that serialises migrations.
_PG_LOCK_KEY = 7_150_010

T = TypeVar("T")


class SchemaError(StoreError):
    """The database's schema is not one this code may use (or migrate); says what to do."""


class SchemaState(enum.Enum):
    EMPTY = "empty"
    CURRENT = "current"
    BEHIND = "behind"
    AHEAD = "ahead"
    LEGACY = "legacy"


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade did: a pre-migrations database stamped, then revisions applied."""

    stamped: str | None
    applied: tuple[str, ...]


@dataclass(frozen=True)
class SchemaStatus:
    state: SchemaState
    current: str | None  # the database's revision (None if it has none)
    head: str  # the code's revision
    pending: tuple[str, ...]  # revisions an upgrade would apply, oldest first


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for the hub's scripts (and ``url`` for offline SQL)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # New revision files are named r<revision id>.py: a module name mypy and ruff accept.
    config.set_main_option("file_template", "r%%(rev)s")
    if url is not None:
        # Config values are interpolated: a % in a password must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "hub/store/migrations/versions has no revision"
    return head


def _pending(scripts: ScriptDirectory, current: str | None) -> tuple[str, ...]:
    newest_first = scripts.iterate_revisions("head", current or "base")
    return tuple(reversed([script.revision for script in newest_first]))


def _status(conn: Connection) -> SchemaStatus:
    scripts = _scripts()
    head = head_revision()
    tables = set(inspect(conn).get_table_names())
    if VERSION_TABLE not in tables:
        state = SchemaState.LEGACY if tables else SchemaState.EMPTY
        return SchemaStatus(state, None, head, _pending(scripts, None))
    revisions = MigrationContext.configure(conn).get_current_heads()
    if not revisions:
        # alembic_version exists but is empty: stamped to base, i.e. nothing applied.
        state = SchemaState.LEGACY if tables - {VERSION_TABLE} else SchemaState.EMPTY
        return SchemaStatus(state, None, head, _pending(scripts, None))
    if len(revisions) > 1:
        raise SchemaError(f"the database has several revisions {', '.join(revisions)}")
    current = revisions[0]
    if current == head:
        return SchemaStatus(SchemaState.CURRENT, current, head, ())
    try:
        scripts.get_revision(current)
    except AlembicCommandError:
        return SchemaStatus(SchemaState.AHEAD, current, head, ())
    return SchemaStatus(SchemaState.BEHIND, current, head, _pending(scripts, current))


def _exclude_version_table(name: str | None, type_: str, _parent: Any) -> bool:
    return not (type_ == "table" and name == VERSION_TABLE)


def schema_differences(conn: Connection, target: MetaData) -> list[Any]:
    """What Alembic's autogenerate sees between the database and ``target`` (empty: equal)."""
    context = MigrationContext.configure(
        conn, opts={"include_name": _exclude_version_table, "compare_type": True}
    )
    return list(compare_metadata(context, target))


def base_revision_metadata() -> MetaData:
    """The schema of revision 0001_initial, as tables (built by that revision's own code)."""
    module = _scripts().get_revision(BASE_REVISION).module
    schema = MetaData()

    def table(name: str, *items: Any) -> Table:
        return Table(name, schema, *items)

    module.create_tables(table)
    return schema


def _describe(difference: Any) -> str:
    if isinstance(difference, list):  # column changes come grouped per column
        difference = difference[0]
    # e.g. ("add_table", Table), ("modify_type", schema, table, column, ...)
    kind = str(difference[0])
    if kind in ("add_table", "remove_table"):
        table = difference[1]
        return f"{'missing' if kind == 'add_table' else 'unexpected'} table {table.name}"
    if kind in ("add_column", "remove_column"):
        word = "missing" if kind == "add_column" else "unexpected"
        return f"{word} column {difference[2]}.{difference[3].name}"
    if kind in ("add_index", "remove_index"):
        word = "missing" if kind == "add_index" else "unexpected"
        return f"{word} index {difference[1].name}"
    if kind.startswith("modify_"):
        return f"column {difference[2]}.{difference[3]} differs ({kind[len('modify_') :]})"
    return kind.replace("_", " ")


def _upgrade(conn: Connection) -> Upgrade:
    status = _status(conn)
    config = alembic_config()
    config.attributes["connection"] = conn
    if status.state is SchemaState.AHEAD:
        raise _ahead(status)
    if status.state is SchemaState.CURRENT:
        return Upgrade(None, ())
    stamped = None
    pending = status.pending
    if status.state is SchemaState.LEGACY:
        differences = schema_differences(conn, base_revision_metadata())
        if differences:
            shown = "; ".join(_describe(d) for d in differences[:5])
            more = f" (and {len(differences) - 5} more)" if len(differences) > 5 else ""
            raise SchemaError(
                "the database has tables but no migration revision, and they are not the "
                f"schema of revision {BASE_REVISION}: {shown}{more}; refusing to migrate it "
                "(restore a backup, or migrate it by hand and stamp it)"
            )
        command.stamp(config, BASE_REVISION)
        log.info("stamped a database made before migrations at %s", BASE_REVISION)
        stamped = BASE_REVISION
        pending = _pending(_scripts(), BASE_REVISION)
    command.upgrade(config, "head")
    return Upgrade(stamped, pending)


def _ahead(status: SchemaStatus) -> SchemaError:
    return SchemaError(
        f"the database is at revision {status.current}, which this hub does not know (its "
        f"newest is {status.head}): a newer hub has migrated it; run that version"
    )


async def _locked(url: str, work: Callable[[Connection], T]) -> T:
    _require_sqlite_folder(url)
    engine, _ = open_engine(url)
    try:
        # A write transaction: on SQLite it begins IMMEDIATE, taking the write lock before
        # the revision is read (hub/store/dialect.py).
        async with engine.execution_options(**WRITE_TRANSACTION).begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
                )
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def _require_sqlite_folder(url: str) -> None:
    """Say so when a SQLite file's folder is missing, before aiosqlite tries to open it.

    (aiosqlite's failed connection thread can outlive the event loop and print a
    traceback on the way out; this, the usual cause, is caught first.)
    """
    if not url.startswith("sqlite"):
        return
    name = make_url(url).database
    if name and name != ":memory:" and not Path(name).parent.is_dir():
        raise FileNotFoundError(f"the folder {Path(name).parent} does not exist")


async def schema_status(url: str) -> SchemaStatus:
    return await _locked(url, _status)


async def upgrade_to_head(url: str) -> Upgrade:
    """Upgrade the database to head; the revisions applied, oldest first (may be none).

    A legacy database equal to 0001_initial is stamped first; one that differs, or one
    ahead of the code, raises :class:`SchemaError` and is left as it was.
    """
    return await _locked(url, _upgrade)


def _prepare(conn: Connection) -> tuple[str, ...]:
    status = _status(conn)
    if status.state is SchemaState.CURRENT:
        return ()
    if status.state is SchemaState.EMPTY:
        return _upgrade(conn).applied
    if status.state is SchemaState.AHEAD:
        raise _ahead(status)
    if status.state is SchemaState.LEGACY:
        raise SchemaError(
            "the database was created before migrations (it has no revision): back it up "
            "and run 'hub admin migrate --config ...' first"
        )
    raise SchemaError(
        f"the database is at revision {status.current} but this hub needs {status.head} "
        f"({len(status.pending)} migration(s) pending): back it up and run "
        "'hub admin migrate --config ...' first"
    )


async def prepare_database(url: str) -> tuple[str, ...]:
    """Make an empty database current; require any other to be current already.

    What ``hub serve`` (and the commands that open the hub's database) do at start: the
    revisions applied to an empty database, or none. A database behind, ahead or from
    before migrations raises :class:`SchemaError` naming what to do; it is never changed.
    """
    applied = await _locked(url, _prepare)
    if applied:
        log.info("empty database: created the schema at %s", applied[-1])
    return applied


def upgrade_sql(url: str, current: str | None) -> str:
    """The SQL an upgrade from ``current`` to head would run (Alembic's offline mode)."""
    buffer = io.StringIO()
    config = alembic_config(url)
    config.output_buffer = buffer
    command.upgrade(config, f"{current}:head" if current else "head", sql=True)
    return buffer.getvalue()


def revisions_text(revisions: Sequence[str]) -> str:
    return ", ".join(revisions) if revisions else "none"
