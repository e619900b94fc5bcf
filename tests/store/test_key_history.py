"""Node key history on SQLite and PostgreSQL: enrolment, rotation, compromise, locking."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub.crypto import NodeKeys
from hub.registry import (
    RegistryError,
    enrol_node,
    install_keys,
    key_history,
    mark_key_compromised,
)
from hub.store import NodeKeyRecord, NodeRecord, SqlStore

T0 = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
T1 = T0 + timedelta(days=30)
# Fixed public seeds: INSECURE, for tests only.
FIRST = NodeKeys.from_seed(b"insecure-test-history-key-000001").public
SECOND = NodeKeys.from_seed(b"insecure-test-history-key-000002").public
THIRD = NodeKeys.from_seed(b"insecure-test-history-key-000003").public
NODE = "health.bsw-icb"


async def _enrol(store: SqlStore) -> NodeRecord:
    return await enrol_node(
        store,
        node_id=NODE,
        agency_type="health",
        display_name="Health",
        public_keys=FIRST,
        accreditation="OFFICIAL-SENSITIVE",
        now=T0,
    )


async def _rotate(store: SqlStore, keys: object, at: datetime) -> NodeRecord:
    async with store.transaction() as tx:
        node = await tx.nodes.get_for_update(NODE)
        assert node is not None
        return await install_keys(tx, node, keys, at=at, reason="rotated")  # type: ignore[arg-type]


async def test_enrolment_records_the_first_key(store: SqlStore) -> None:
    await _enrol(store)
    _, history = await key_history(store, NODE)
    assert history == [NodeKeyRecord(NODE, FIRST.signing, FIRST.encryption, valid_from=T0)]


async def test_rotation_ends_the_old_key_and_makes_the_new_one_current(store: SqlStore) -> None:
    await _enrol(store)
    updated = await _rotate(store, SECOND, T1)
    assert (updated.signing_key, updated.encryption_key, updated.updated_at) == (
        SECOND.signing,
        SECOND.encryption,
        T1,
    )
    node, history = await key_history(store, NODE)
    assert node == updated
    assert history == [
        NodeKeyRecord(NODE, FIRST.signing, FIRST.encryption, T0, T1, "rotated"),
        NodeKeyRecord(NODE, SECOND.signing, SECOND.encryption, T1),
    ]


async def test_a_key_is_never_used_twice(store: SqlStore) -> None:
    await _enrol(store)
    await _rotate(store, SECOND, T1)
    with pytest.raises(RegistryError, match="used this signing key before"):
        await _rotate(store, FIRST, T1 + timedelta(days=1))
    _, history = await key_history(store, NODE)
    assert len(history) == 2


async def test_a_node_enrolled_before_key_history_gets_its_current_key_from_enrolment(
    store: SqlStore,
) -> None:
    legacy = NodeRecord(
        id=NODE,
        agency_type="health",
        display_name="Health",
        signing_key=FIRST.signing,
        encryption_key=FIRST.encryption,
        accreditation="OFFICIAL-SENSITIVE",
        status="active",
        enrolled_at=T0,
        updated_at=T0,
    )
    async with store.transaction() as tx:
        await tx.nodes.add(legacy)  # no node_keys row, as before the table existed
    _, history = await key_history(store, NODE)
    assert history == [NodeKeyRecord(NODE, FIRST.signing, FIRST.encryption, valid_from=T0)]
    await _rotate(store, SECOND, T1)
    async with store.read() as view:
        stored = await view.node_keys.for_node(NODE)
    assert [(k.signing_key, k.valid_from, k.valid_until) for k in stored] == [
        (FIRST.signing, T0, T1),
        (SECOND.signing, T1, None),
    ]


async def test_compromise_marks_one_key_from_a_time_and_keeps_its_period(
    store: SqlStore,
) -> None:
    await _enrol(store)
    await _rotate(store, SECOND, T1)
    leak = T0 + timedelta(days=10)
    outcome = await mark_key_compromised(store, NODE, FIRST.signing, since=leak, now=T1)
    assert not outcome.replaced
    _, history = await key_history(store, NODE)
    assert history[0] == NodeKeyRecord(
        NODE, FIRST.signing, FIRST.encryption, T0, T1, "compromised", leak
    )
    assert history[1].valid_until is None  # the current key is untouched


async def test_compromise_of_the_current_key_installs_the_replacement(store: SqlStore) -> None:
    await _enrol(store)
    outcome = await mark_key_compromised(
        store, NODE, FIRST.signing, since=T0, now=T1, replacement=THIRD
    )
    assert outcome.replaced
    assert outcome.node.signing_key == THIRD.signing
    _, history = await key_history(store, NODE)
    assert [(k.signing_key, k.reason, k.compromised_from, k.valid_until) for k in history] == [
        (FIRST.signing, "compromised", T0, T1),
        (THIRD.signing, None, None, None),
    ]


async def test_a_signature_check_waits_for_a_key_change_in_progress(store: SqlStore) -> None:
    """The submit's locked read of the node's key (ExchangeService.submit) cannot slip
    between a rotation's lock and its commit: it sees the key the rotation left."""
    await _enrol(store)
    locked = asyncio.Event()
    release = asyncio.Event()

    async def rotation() -> None:
        async with store.transaction() as tx:
            node = await tx.nodes.get_for_update(NODE)
            assert node is not None
            locked.set()
            await release.wait()
            await install_keys(tx, node, SECOND, at=T1, reason="rotated")

    async def check() -> bytes | None:
        async with store.transaction() as tx:
            return await tx.nodes.signing_key_locked(NODE)

    rotating = asyncio.create_task(rotation())
    try:
        await locked.wait()
        checking = asyncio.create_task(check())
        await asyncio.sleep(0.2)
        waited = not checking.done()  # held back by the rotation's lock
    finally:
        release.set()  # never leave the rotation holding its lock, even on failure
        await rotating
    assert await checking == SECOND.signing
    assert waited


async def test_two_rotations_at_one_instant_leave_the_newest_keys_current(
    store: SqlStore,
) -> None:
    await _enrol(store)
    await _rotate(store, SECOND, T1)
    await _rotate(store, THIRD, T1)
    node, history = await key_history(store, NODE)
    assert node.signing_key == THIRD.signing
    assert [(k.signing_key, k.valid_from, k.valid_until) for k in history] == [
        (FIRST.signing, T0, T1),
        (SECOND.signing, T1, T1),
        (THIRD.signing, T1, None),
    ]
