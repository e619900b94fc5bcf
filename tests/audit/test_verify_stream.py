"""``hub audit verify`` streaming the log: each problem named, pages and workers, memory.

The log is written with one signed head per batch (tests/audit/logbuild.py), as the
group-commit writer signs them. Each tampering is checked through :func:`verify_store_log`
(pages of the store, optionally with worker processes) and through :func:`verify_log`
(the rows in memory), which must agree.
"""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, make_url, select, text, update

import hub.audit.verify as verify_module
from hub.audit.log import entry_leaf_hash
from hub.audit.verify import LogVerification, verify_log, verify_store_log
from hub.store import SqlStore, database_url_for_path
from hub.store.dialect import open_engine
from hub.store.tables import audit_heads, audit_log, audit_state
from tests.audit.logbuild import HUB_PUBLIC_KEY, entry_json, write_log
from tests.store.conftest import (
    postgres_url_or_skip,
    store,  # noqa: F401 (the SQLite and PostgreSQL fixture)
)

Tamper = Callable[[Any], Awaitable[None]]


async def _in_memory(store: SqlStore) -> LogVerification:  # noqa: F811
    async with store.read() as view:
        rows = await view.audit.rows(0, 2**62)
        heads = await view.audit.heads()
        size = await view.audit.size()
    return verify_log(rows, heads, state_size=size, hub_signing_key=HUB_PUBLIC_KEY)


async def _both(store: SqlStore, *, page: int = 64) -> LogVerification:  # noqa: F811
    """Verify inline, in memory and (on SQLite) by aligned pages in another thread: all agree."""
    streamed = await verify_store_log(store, HUB_PUBLIC_KEY, page=page)
    held = await _in_memory(store)
    assert (streamed.first_bad_index, streamed.problem) == (held.first_bad_index, held.problem)
    if store.dialect.name == "sqlite":
        # One thread for a window of five pages: this task checks pages itself too.
        with ThreadPoolExecutor(1) as thread:
            paged = await verify_store_log(
                store,
                HUB_PUBLIC_KEY,
                page=32,
                workers=2,
                database_url=store._engine.url.render_as_string(hide_password=False),
                executor=thread,
            )
        assert (paged.first_bad_index, paged.problem) == (held.first_bad_index, held.problem)
        assert paged.heads == streamed.heads
    return streamed


async def _tamper(store: SqlStore, *statements: Any) -> None:  # noqa: F811
    async with store._engine.begin() as conn:  # under the repositories on purpose
        for statement in statements:
            await conn.execute(statement)


def _edit(idx: int, **values: Any) -> Any:
    return update(audit_log).where(audit_log.c.idx == idx).values(**values)


async def test_a_clean_log_verifies_in_pages_with_each_head_checked_once(
    store: SqlStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = await write_log(store, 1000, batch=16)
    checked: list[int] = []
    real = verify_module.verify_tree_head

    def counting(head: Any, key: bytes) -> bool:
        checked.append(head.size)
        return real(head, key)

    monkeypatch.setattr(verify_module, "verify_tree_head", counting)
    for page in (5, 16, 64, 1000, 5000):
        checked.clear()
        result = await verify_store_log(store, HUB_PUBLIC_KEY, page=page)
        assert result.ok, result.problem
        assert (result.entries, result.heads) == (1000, len(built.head_sizes))
        assert checked == built.head_sizes  # every head, once, in order


@pytest.mark.parametrize("idx", [0, 63, 64, 65, 500, 999])
async def test_an_edited_entry_is_named(store: SqlStore, idx: int) -> None:  # noqa: F811
    await write_log(store, 1000, batch=16)
    edited = entry_json(idx).replace('"referral"', '"note"')
    await _tamper(store, _edit(idx, entry_json=edited))
    result = await _both(store)
    assert result.first_bad_index == idx
    assert result.problem == f"entry {idx} was changed: its leaf hash does not match"


async def test_a_rewritten_entry_with_its_leaf_hash_is_caught_by_its_batch_head(
    store: SqlStore,  # noqa: F811
) -> None:
    await write_log(store, 1000, batch=16)
    forged = entry_json(300).replace('"submitted"', '"refused"')
    assert forged != entry_json(300)
    await _tamper(store, _edit(300, entry_json=forged, leaf_hash=entry_leaf_hash(forged)))
    result = await _both(store)
    # Heads at 16, 32, ...: the head of size 304 is the first that fails, and every entry
    # up to 288 matches the head of size 288.
    assert result.first_bad_index == 288
    assert result.problem is not None
    assert "an entry from 288 to 303 does not match the signed tree head of size 304" in (
        result.problem
    )


async def test_a_tampered_head_is_not_signed_by_the_hub(store: SqlStore) -> None:  # noqa: F811
    await write_log(store, 200, batch=16)
    root = bytes(32)
    await _tamper(store, update(audit_heads).where(audit_heads.c.size == 96).values(root_hash=root))
    result = await _both(store)
    assert result.first_bad_index is None
    assert result.problem == "the tree head of size 96 is not signed by the hub"


async def test_a_head_signature_moved_from_another_head_is_refused(
    store: SqlStore,  # noqa: F811
) -> None:
    await write_log(store, 200, batch=16)
    async with store.read() as view:
        heads = {head.size: head for head in await view.audit.heads()}
    await _tamper(
        store,
        update(audit_heads).where(audit_heads.c.size == 160).values(signature=heads[144].signature),
    )
    result = await _both(store)
    assert result.problem == "the tree head of size 160 is not signed by the hub"


@pytest.mark.parametrize("idx", [0, 1, 63, 64, 640])
async def test_a_deleted_row_is_named_missing(store: SqlStore, idx: int) -> None:  # noqa: F811
    await write_log(store, 700, batch=16)
    await _tamper(store, delete(audit_log).where(audit_log.c.idx == idx))
    result = await _both(store)
    assert result.first_bad_index == idx
    assert result.problem == f"entry {idx} is missing (the next row is entry {idx + 1})"


async def test_rows_deleted_from_the_end_are_found_by_the_state_row(
    store: SqlStore,  # noqa: F811
) -> None:
    await write_log(store, 200, batch=16)
    await _tamper(store, delete(audit_log).where(audit_log.c.idx >= 190))
    result = await _both(store)
    assert result.first_bad_index == 190
    assert result.problem == "the log says it holds 200 entries but 190 are stored"


async def test_a_row_added_at_the_end_is_found_by_the_state_row(store: SqlStore) -> None:  # noqa: F811
    await write_log(store, 200, batch=16)
    async with store._engine.begin() as conn:
        row = (await conn.execute(select(audit_log).where(audit_log.c.idx == 199))).one()
        await conn.execute(audit_log.insert().values({**row._asdict(), "idx": 200}))
    result = await _both(store)
    assert result.first_bad_index == 200
    assert result.problem == "the log says it holds 200 entries but 201 are stored"


async def test_a_head_beyond_the_rows_is_named(store: SqlStore) -> None:  # noqa: F811
    await write_log(store, 200, batch=16)
    # The last rows and the state row cut back together: the head of size 200 remains.
    await _tamper(
        store,
        delete(audit_log).where(audit_log.c.idx >= 195),
        update(audit_state).values(size=195),
    )
    result = await _both(store)
    assert result.first_bad_index == 195
    assert result.problem == "a signed tree head covers 200 entries; 195 remain"


async def test_an_invalid_entry_with_a_matching_leaf_is_named_before_its_head(
    store: SqlStore,  # noqa: F811
) -> None:
    await write_log(store, 300, batch=16)
    invalid = entry_json(100).replace('"actor":"', '"actor":"NOT A NODE ')
    await _tamper(store, _edit(100, entry_json=invalid, leaf_hash=entry_leaf_hash(invalid)))
    result = await _both(store)
    assert result.first_bad_index == 100
    assert result.problem == "entry 100 is not a valid log entry"


async def test_the_first_problem_in_index_order_wins(store: SqlStore) -> None:  # noqa: F811
    await write_log(store, 400, batch=16)
    forged = entry_json(42).replace('"submitted"', '"refused"')
    assert forged != entry_json(42)
    await _tamper(
        store,
        _edit(350, entry_json="{}"),  # a later problem of another kind
        _edit(42, entry_json=forged, leaf_hash=entry_leaf_hash(forged)),
    )
    result = await _both(store)
    assert result.first_bad_index == 32
    assert "signed tree head of size 48" in (result.problem or "")


@asynccontextmanager
async def _own_database(engine: str, tmp_path: Path) -> AsyncIterator[tuple[SqlStore, str]]:
    """A store that other processes can open by URL: a file, or a database of its own."""
    if engine == "sqlite":
        url = database_url_for_path(tmp_path / "own.sqlite3")
        own = SqlStore.open(url)
        await own.create_schema()
        try:
            yield own, url
        finally:
            await own.close()
        return
    admin_url = postgres_url_or_skip()
    name = f"x_auditscale_{uuid.uuid4().hex[:12]}"
    admin, _ = open_engine(admin_url)
    try:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        own = SqlStore.open(url)
        try:
            await own.create_schema()
            yield own, url
        finally:
            await own.close()
    finally:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_worker_processes_give_the_same_answers(engine: str, tmp_path: Path) -> None:
    assert verify_module._PROCESSES_FROM_PAGES <= 3000 // 64  # enough pages for processes
    async with _own_database(engine, tmp_path) as (own, url):
        await write_log(own, 3000, batch=32)
        clean = await verify_store_log(own, HUB_PUBLIC_KEY, page=64, workers=2, database_url=url)
        assert clean.ok, clean.problem
        assert (clean.entries, clean.heads) == (3000, 3000 // 32 + 1)
        forged = entry_json(2100).replace('"submitted"', '"refused"')
        assert forged != entry_json(2100)
        await _tamper(
            own,
            _edit(2500, entry_json=entry_json(2500).replace("referral", "note")),
            _edit(2100, entry_json=forged, leaf_hash=entry_leaf_hash(forged)),
        )
        inline = await verify_store_log(own, HUB_PUBLIC_KEY, page=64)
        pooled = await verify_store_log(own, HUB_PUBLIC_KEY, page=64, workers=2, database_url=url)
        assert (pooled.first_bad_index, pooled.problem) == (inline.first_bad_index, inline.problem)
        assert pooled.first_bad_index == 2080  # the batch of the rewritten entry 2100
        await _tamper(own, delete(audit_log).where(audit_log.c.idx == 700))
        pooled = await verify_store_log(own, HUB_PUBLIC_KEY, page=64, workers=2, database_url=url)
        assert (pooled.first_bad_index, pooled.problem) == (
            700,
            "entry 700 is missing (the next row is entry 701)",
        )


async def test_entries_appended_while_verifying_are_not_a_problem(store: SqlStore) -> None:  # noqa: F811
    """The hub keeps appending: rows, head and state land together, after some pages."""
    await write_log(store, 500, batch=16)

    class Appending:
        """The store, with 100 entries appended once the verifier has read two pages."""

        def __init__(self) -> None:
            self.pages = 0

        def read(self) -> Any:
            return _AppendingView(self, store.read())

        async def after_page(self) -> None:
            self.pages += 1
            if self.pages == 2:
                await write_log(store, 100, batch=16)

    result = await verify_store_log(Appending(), HUB_PUBLIC_KEY, page=100)  # type: ignore[arg-type]
    assert result.ok, result.problem
    # A read view on SQLite is one snapshot, taken at its first read: the log as it was
    # then. On PostgreSQL each statement sees the latest commits: verify goes on to them.
    assert result.entries == (500 if store.dialect.name == "sqlite" else 600)


class _AppendingView:
    def __init__(self, owner: Any, inner: Any) -> None:
        self._owner, self._inner = owner, inner

    async def __aenter__(self) -> Any:
        view = await self._inner.__aenter__()
        owner = self._owner

        class Audit:
            def __getattr__(self, name: str) -> Any:
                return getattr(view.audit, name)

            async def leaves_from(self, start: int, limit: int) -> Any:
                rows = await view.audit.leaves_from(start, limit)
                await owner.after_page()
                return rows

        class View:
            audit = Audit()

        return View()

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


async def _peak_bytes(store: SqlStore, page: int) -> int:  # noqa: F811
    tracemalloc.start()
    try:
        result = await verify_store_log(store, HUB_PUBLIC_KEY, page=page)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok, result.problem
    return peak


async def test_memory_follows_the_page_not_the_log(store: SqlStore) -> None:  # noqa: F811
    await write_log(store, 12_000, batch=64)
    # First use fills what is filled once: imports, compiled statements, and
    # pydantic-core's string cache (a fixed number of slots, full after a few thousand
    # entries).
    await _peak_bytes(store, 250)
    before = await _peak_bytes(store, 250)
    await write_log(store, 12_000, batch=64)  # twice the log
    async with store._engine.connect() as conn:
        total = (await conn.execute(text("SELECT sum(length(entry_json)) FROM audit_log"))).scalar()
    assert total > 8_000_000  # the log's text alone is over 8 MB
    after = await _peak_bytes(store, 250)
    assert after < 1.25 * before, (before, after)
    assert after < total / 4, (after, total)
    assert await _peak_bytes(store, 4000) > 2 * after  # bigger pages, more memory


@pytest.mark.parametrize(("cores", "workers"), [(1, 0), (2, 1), (4, 3), (16, 4)])
def test_default_workers_are_the_cores_but_one(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int
) -> None:
    monkeypatch.setattr(verify_module.os, "cpu_count", lambda: cores)
    assert verify_module.default_workers() == workers
