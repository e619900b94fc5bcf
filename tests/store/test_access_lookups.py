"""Access-checked lookups by id: one statement, the same one for another's record and a
missing one, on SQLite and PostgreSQL (the hub's constant-shape 404s rest on these)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event

from hub.store import SqlStore, WorkflowRecord
from tests.store.test_repositories import (
    LA,
    PAYLOAD_SHA256,
    POLICE,
    SENDER,
    STRANGER,
    T0,
    blob,
    enrol,
    message,
)

OTHER_SHA256 = "c" * 64


@pytest.fixture
async def populated(store: SqlStore) -> SqlStore:
    """m-1 from SENDER to LA; a request SENDER asked of POLICE; SENDER's complete blob
    carried by m-1; STRANGER's own upload in progress."""
    await enrol(store, SENDER, LA, POLICE, STRANGER)
    async with store.transaction() as tx:
        await tx.messages.add(message("m-1"), [LA])
        await tx.messages.add(message("m-2", sender=POLICE, payload_sha256=OTHER_SHA256), [LA])
        await tx.workflows.save(
            WorkflowRecord("request", "r-1", '{"state":"SUBMITTED"}', T0),
            parties=[SENDER, POLICE],
            message_id="r-1",
            created=True,
        )
        await tx.blobs.create(replace(blob("u-1", sha256=PAYLOAD_SHA256), state="uploading"))
        await tx.blobs.mark_complete("u-1", T0)
        await tx.blobs.create(replace(blob("u-2", sha256=OTHER_SHA256), owner=STRANGER))
    return store


@contextmanager
def _statements(store: SqlStore) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = store._engine.sync_engine  # tests reach under the repositories on purpose

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _same_one_statement(
    store: SqlStore, lookup: Callable[[Any, str], Awaitable[Any]], foreign: str, missing: str
) -> None:
    """``lookup(view, ref)`` finds nothing for ``foreign`` and ``missing``, in one identical
    statement each."""
    async with store.read() as view:
        with _statements(store) as foreign_sql:
            assert not await lookup(view, foreign)
        with _statements(store) as missing_sql:
            assert not await lookup(view, missing)
    assert len(foreign_sql) == 1
    assert foreign_sql == missing_sql


async def test_a_message_is_readable_by_its_sender_and_recipients_only(
    populated: SqlStore,
) -> None:
    async with populated.read() as view:
        as_sender = await view.messages.readable("m-1", SENDER)
        as_recipient = await view.messages.readable("m-1", LA)
        as_stranger = await view.messages.readable("m-1", POLICE)
    assert as_sender == (message("m-1"), None)
    assert as_recipient is not None
    assert as_recipient[0] == message("m-1")
    assert as_recipient[1] is not None
    assert (as_recipient[1].recipient, as_recipient[1].state) == (LA, "pending")
    assert as_stranger is None
    await _same_one_statement(
        populated, lambda view, ref: view.messages.readable(ref, POLICE), "m-1", "m-9"
    )


async def test_a_message_is_addressed_to_its_recipients_only(populated: SqlStore) -> None:
    async with populated.read() as view:
        to_la = await view.messages.addressed("m-1", LA)
        to_sender = await view.messages.addressed("m-1", SENDER)
    assert to_la is not None
    assert (to_la[0].id, to_la[1].recipient) == ("m-1", LA)
    assert to_sender is None  # the sender is not a recipient: it does not acknowledge
    await _same_one_statement(
        populated, lambda view, ref: view.messages.addressed(ref, STRANGER), "m-1", "m-9"
    )


async def test_a_message_is_sent_by_its_sender_only(populated: SqlStore) -> None:
    async with populated.read() as view:
        assert await view.messages.sent_by("m-1", SENDER) == message("m-1")
        assert await view.messages.sent_by("m-1", LA) is None
    await _same_one_statement(
        populated, lambda view, ref: view.messages.sent_by(ref, LA), "m-1", "m-9"
    )


async def test_a_workflow_is_visible_to_its_parties_only(populated: SqlStore) -> None:
    async with populated.read() as view:
        for party in (SENDER, POLICE):
            record = await view.workflows.visible("request", "r-1", party)
            assert record == WorkflowRecord("request", "r-1", '{"state":"SUBMITTED"}', T0)
        assert await view.workflows.visible("request", "r-1", LA) is None
        assert await view.workflows.visible("case", "r-1", SENDER) is None
    await _same_one_statement(
        populated, lambda view, ref: view.workflows.visible("request", ref, LA), "r-1", "r-9"
    )


async def test_a_blob_is_readable_by_its_owner_and_the_readers_of_its_messages(
    populated: SqlStore,
) -> None:
    async with populated.read() as view:
        readers = {
            n
            for n in (SENDER, LA, POLICE, STRANGER)
            if await view.blobs.readable_by(PAYLOAD_SHA256, n)
        }
        # STRANGER's upload of OTHER_SHA256 is not complete: nobody reads it yet, not even
        # the readers of m-2, which names that hash.
        unfinished = {
            n for n in (POLICE, LA, STRANGER) if await view.blobs.readable_by(OTHER_SHA256, n)
        }
    assert readers == {SENDER, LA}
    assert unfinished == set()
    await _same_one_statement(
        populated,
        lambda view, ref: view.blobs.readable_by(ref, POLICE),
        PAYLOAD_SHA256,
        "d" * 64,
    )


async def test_an_upload_is_found_for_its_owner_only(populated: SqlStore) -> None:
    async with populated.read() as view:
        mine = await view.blobs.get("u-2", owner=STRANGER)
        assert mine is not None
        assert mine.owner == STRANGER
        assert await view.blobs.get("u-2", owner=SENDER) is None
    await _same_one_statement(
        populated, lambda view, ref: view.blobs.get(ref, owner=SENDER), "u-2", "u-9"
    )
