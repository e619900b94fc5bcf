"""The migrations build exactly the schema of hub/store/tables.py, on SQLite and PostgreSQL.

``test_migrations_build_exactly_the_models_schema`` is the test that fails when someone
changes tables.py without adding a revision (deploy/migrations.md). Each PostgreSQL test
creates a database of its own (``CREATE DATABASE hub_migrations_<random>``) and drops it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import (
    Column,
    Connection,
    Index,
    MetaData,
    String,
    inspect,
    make_url,
    text,
)
from sqlalchemy.ext.asyncio import create_async_engine

from hub.crypto import NodeKeys
from hub.store import NodeKeyRecord, SqlStore, database_url_for_path, migrate
from hub.store.dialect import open_engine
from hub.store.migrate import (
    BASE_REVISION,
    SchemaError,
    SchemaState,
    alembic_config,
    base_revision_metadata,
    head_revision,
    prepare_database,
    schema_differences,
    schema_status,
    upgrade_to_head,
)
from hub.store.tables import metadata
from tests.store.conftest import postgres_url_or_skip

NewDatabase = Callable[[], Awaitable[str]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def new_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[NewDatabase]:
    """Make empty databases on one engine; each is removed after the test."""
    created: list[str] = []
    admin_url = postgres_url_or_skip() if request.param == "postgresql" else ""

    async def make() -> str:
        if request.param == "sqlite":
            return database_url_for_path(tmp_path / f"hub-{uuid.uuid4().hex}.db")
        name = f"hub_migrations_{uuid.uuid4().hex[:20]}"
        await _autocommit(admin_url, f'CREATE DATABASE "{name}"')
        created.append(name)
        url = make_url(admin_url).set(database=name)
        return url.render_as_string(hide_password=False)

    yield make
    for name in created:
        await _autocommit(admin_url, f'DROP DATABASE "{name}" WITH (FORCE)')


async def _autocommit(url: str, statement: str) -> None:
    if "+asyncpg" not in url:
        url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _on(url: str, work: Callable[[Connection], Any]) -> Any:
    engine, _ = open_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


async def _create_legacy(url: str) -> None:
    """A database as the hub made it before migrations: the tables of 0001_initial,
    which were tables.py then (metadata.create_all of that time)."""
    await _on(url, base_revision_metadata().create_all)


async def _create_all(url: str) -> None:
    """A database as the models make it today: metadata.create_all."""
    engine, dialect = open_engine(url)
    store = SqlStore(engine, dialect)
    try:
        await store.create_schema()
    finally:
        await store.close()


def _reflected(conn: Connection) -> dict[str, Any]:
    """Tables, columns (type, nullability, default), keys, indexes, as the engine reports."""
    found = inspect(conn)
    schema: dict[str, Any] = {}
    for name in sorted(set(found.get_table_names()) - {"alembic_version"}):
        pk = found.get_pk_constraint(name)
        schema[name] = {
            "columns": [
                (c["name"], repr(c["type"]), c["nullable"], c.get("default"))
                for c in found.get_columns(name)
            ],
            "primary_key": (pk.get("name"), tuple(pk["constrained_columns"])),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in found.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in found.get_indexes(name)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"])) for u in found.get_unique_constraints(name)
            ),
        }
    return schema


def test_the_revisions_form_one_line_from_0001_initial() -> None:
    """One head, and every revision on the line from it back to 0001_initial."""
    scripts = migrate._scripts()
    assert scripts.get_heads() == [head_revision()]
    line = [s.revision for s in scripts.iterate_revisions("head", "base")]
    assert line[-1] == BASE_REVISION
    assert sorted(line) == sorted(s.revision for s in scripts.walk_revisions())
    assert all(len(revision) <= 32 for revision in line)  # alembic_version.version_num


async def test_migrations_build_exactly_the_models_schema(new_database: NewDatabase) -> None:
    migrated, created = await new_database(), await new_database()
    await prepare_database(migrated)
    await _create_all(created)

    # Alembic's own comparison against the models: nothing to add, drop or alter.
    assert await _on(migrated, lambda c: schema_differences(c, metadata)) == []
    # And independently: what the engine reflects equals what create_all of the models makes.
    from_migrations, from_models = await _on(migrated, _reflected), await _on(created, _reflected)
    assert set(from_migrations) == set(metadata.tables)
    assert from_migrations == from_models


async def test_a_utc_datetime_column_is_timezone_aware_on_postgresql(
    new_database: NewDatabase,
) -> None:
    url = await new_database()
    await prepare_database(url)
    columns = await _on(url, lambda c: inspect(c).get_columns("nodes"))
    enrolled = next(c for c in columns if c["name"] == "enrolled_at")
    if url.startswith("postgresql"):
        assert enrolled["type"].timezone is True
    else:
        assert type(enrolled["type"]).__name__ == "DATETIME"


def _with_extra_column(models: MetaData) -> None:
    models.tables["nodes"].append_column(Column("extra", String(10)))


def _with_longer_string(models: MetaData) -> None:
    models.tables["nodes"].c.agency_type.type = String(33)


def _with_nullable_column(models: MetaData) -> None:
    models.tables["messages"].c.kind.nullable = True


def _with_extra_index(models: MetaData) -> None:
    Index("ix_nodes_status", models.tables["nodes"].c.status)


def _with_extra_table(models: MetaData) -> None:
    from sqlalchemy import Integer, Table

    Table("retention", models, Column("id", Integer, primary_key=True))


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (_with_extra_column, "add_column"),
        (_with_longer_string, "modify_type"),
        (_with_nullable_column, "modify_nullable"),
        (_with_extra_index, "add_index"),
        (_with_extra_table, "add_table"),
    ],
)
async def test_a_change_to_the_models_without_a_revision_is_caught(
    new_database: NewDatabase, change: Callable[[MetaData], None], found: str
) -> None:
    """The equality test above would fail: each kind of drift shows as a difference."""
    url = await new_database()
    await prepare_database(url)
    models = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(models)
    change(models)
    differences = await _on(url, lambda c: schema_differences(c, models))
    kinds = [(d[0] if isinstance(d, list) else d)[0] for d in differences]
    assert kinds == [found]


def _downgrade_to_base(url: str) -> Callable[[Connection], None]:
    def work(conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")

    return work


async def test_upgrade_downgrade_upgrade_round_trip(new_database: NewDatabase) -> None:
    url = await new_database()
    assert (await upgrade_to_head(url)).applied == (await _pending_from_empty())
    await _on(url, _downgrade_to_base(url))
    tables = await _on(url, lambda c: set(inspect(c).get_table_names()))
    assert tables == {"alembic_version"}
    status = await schema_status(url)
    assert status.state is SchemaState.EMPTY
    await upgrade_to_head(url)
    assert await _on(url, lambda c: schema_differences(c, metadata)) == []
    assert (await schema_status(url)).state is SchemaState.CURRENT


async def _pending_from_empty() -> tuple[str, ...]:
    scripts = migrate._scripts()
    return tuple(reversed([s.revision for s in scripts.iterate_revisions("head", "base")]))


async def test_an_empty_database_is_empty_then_current(new_database: NewDatabase) -> None:
    url = await new_database()
    before = await schema_status(url)
    assert (before.state, before.current, before.head) == (
        SchemaState.EMPTY,
        None,
        head_revision(),
    )
    assert before.pending[0] == BASE_REVISION
    assert before.pending[-1] == head_revision()
    assert await prepare_database(url) == before.pending
    after = await schema_status(url)
    assert (after.state, after.current, after.pending) == (
        SchemaState.CURRENT,
        head_revision(),
        (),
    )
    assert await prepare_database(url) == ()  # nothing more to do


async def test_a_database_from_before_migrations_is_stamped_and_keeps_its_rows(
    new_database: NewDatabase,
) -> None:
    url = await new_database()
    await _create_legacy(url)
    await _on(
        url,
        lambda c: c.execute(
            text("INSERT INTO audit_state (id, size, frontier_json) VALUES (1, 7, '[]')")
        ),
    )
    assert (await schema_status(url)).state is SchemaState.LEGACY
    with pytest.raises(SchemaError, match=r"created before migrations.*hub admin migrate"):
        await prepare_database(url)  # hub serve does not stamp; the operator migrates

    done = await upgrade_to_head(url)
    assert done.stamped == BASE_REVISION
    assert done.applied == (await _pending_from_empty())[1:]
    assert (await schema_status(url)).state is SchemaState.CURRENT
    rows = await _on(url, lambda c: c.execute(text("SELECT size FROM audit_state")).all())
    assert [tuple(r) for r in rows] == [(7,)]


@pytest.mark.parametrize(
    ("alteration", "named"),
    [
        ("ALTER TABLE nodes ADD COLUMN extra VARCHAR(10)", "unexpected column nodes.extra"),
        ("DROP INDEX ix_blobs_sha256", "missing index ix_blobs_sha256"),
        ("CREATE TABLE scratch (id INTEGER PRIMARY KEY)", "unexpected table scratch"),
    ],
)
async def test_a_database_from_before_migrations_that_differs_is_refused_unchanged(
    new_database: NewDatabase, alteration: str, named: str
) -> None:
    url = await new_database()
    await _create_legacy(url)
    await _on(url, lambda c: c.execute(text(alteration)))
    before = await _on(url, _reflected)
    with pytest.raises(SchemaError) as refused:
        await upgrade_to_head(url)
    message = str(refused.value)
    assert "not the schema of revision 0001_initial" in message
    assert named in message
    assert await _on(url, lambda c: set(inspect(c).get_table_names())) == set(before)
    assert await _on(url, _reflected) == before
    assert (await schema_status(url)).state is SchemaState.LEGACY


async def test_a_database_ahead_of_the_code_is_refused(new_database: NewDatabase) -> None:
    url = await new_database()
    await prepare_database(url)
    await _on(url, lambda c: c.execute(text("UPDATE alembic_version SET version_num = '9999_x'")))
    status = await schema_status(url)
    assert (status.state, status.current) == (SchemaState.AHEAD, "9999_x")
    with pytest.raises(SchemaError, match=r"revision 9999_x, which this hub does not know"):
        await prepare_database(url)
    with pytest.raises(SchemaError, match=r"revision 9999_x, which this hub does not know"):
        await upgrade_to_head(url)


EXTRA_REVISION = "0999_test_extra"


def add_extra_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the code one revision ahead of any database at the real head (for tests)."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.SCRIPT_LOCATION, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "r0999_test_extra.py").write_text(
        "import sqlalchemy as sa\n"
        "from alembic import op\n"
        f"revision = {EXTRA_REVISION!r}\n"
        f"down_revision = {head_revision()!r}\n"
        "def upgrade():\n"
        "    op.create_table('test_extra', sa.Column('id', sa.Integer, primary_key=True))\n"
        "def downgrade():\n"
        "    op.drop_table('test_extra')\n"
    )
    monkeypatch.setattr(migrate, "SCRIPT_LOCATION", scripts)


async def test_a_database_behind_the_code_is_refused_and_then_upgraded(
    new_database: NewDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await new_database()
    await prepare_database(url)
    real_head = head_revision()
    add_extra_revision(tmp_path, monkeypatch)
    status = await schema_status(url)
    assert (status.state, status.current, status.head, status.pending) == (
        SchemaState.BEHIND,
        real_head,
        EXTRA_REVISION,
        (EXTRA_REVISION,),
    )
    with pytest.raises(SchemaError, match=r"needs 0999_test_extra.*hub admin migrate"):
        await prepare_database(url)
    assert "test_extra" not in await _on(url, lambda c: inspect(c).get_table_names())
    assert (await upgrade_to_head(url)).applied == (EXTRA_REVISION,)
    assert "test_extra" in await _on(url, lambda c: inspect(c).get_table_names())
    assert (await schema_status(url)).state is SchemaState.CURRENT


async def test_a_failed_upgrade_leaves_the_database_at_its_revision(
    new_database: NewDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await new_database()
    await prepare_database(url)
    real_head = head_revision()
    add_extra_revision(tmp_path, monkeypatch)
    broken = migrate.SCRIPT_LOCATION / "versions" / "r0999_test_extra.py"
    broken.write_text(
        broken.read_text().replace(
            "def downgrade():",
            "    op.execute('SELECT no_such_column FROM nodes')\ndef downgrade():",
        )
    )
    with pytest.raises(Exception, match="no_such_column"):
        await upgrade_to_head(url)
    # Its first statement (the table) was rolled back with the rest, on both engines.
    assert "test_extra" not in await _on(url, lambda c: inspect(c).get_table_names())
    assert (await schema_status(url)).current == real_head


async def test_0002_node_keys_records_each_enrolled_nodes_keys_from_its_enrolment(
    new_database: NewDatabase,
) -> None:
    """Before key rotation a node's keys were those it enrolled with: the history starts so."""
    url = await new_database()
    await _create_legacy(url)
    enrolled = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    keys = NodeKeys.from_seed(b"insecure-test-migration-key-0000").public
    nodes_0001 = base_revision_metadata().tables["nodes"]
    await _on(
        url,
        lambda c: c.execute(
            nodes_0001.insert().values(
                id="health.bsw-icb",
                agency_type="health",
                display_name="Health",
                signing_key=keys.signing,
                encryption_key=keys.encryption,
                accreditation="OFFICIAL-SENSITIVE",
                status="active",
                enrolled_at=enrolled,
                updated_at=enrolled,
            )
        ),
    )
    assert "0002_node_keys" in (await upgrade_to_head(url)).applied
    store = SqlStore.open(url)
    try:
        async with store.read() as view:
            rows = await view.node_keys.for_node("health.bsw-icb")
    finally:
        await store.close()
    assert rows == [
        NodeKeyRecord("health.bsw-icb", keys.signing, keys.encryption, valid_from=enrolled)
    ]
