"""The node registry (``hub admin``) on SQLite and PostgreSQL: refusals say why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.crypto import NodeKeys, PublicKeys
from hub.registry import RegistryError, enrol_node, list_nodes, set_node_status
from hub.store import NodeRecord, SqlStore

T0 = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
# Fixed public seed: INSECURE, for tests only.
INSECURE_TEST_KEYS = NodeKeys.from_seed(b"insecure-test-registry-key-00000").public
OTHER_INSECURE_TEST_KEYS = NodeKeys.from_seed(b"insecure-test-registry-key-11111").public


async def enrol(
    store: SqlStore,
    node_id: str = "health.bsw-icb",
    *,
    agency_type: str = "health",
    display_name: str = "BSW Integrated Care Board",
    public_keys: PublicKeys = INSECURE_TEST_KEYS,
    accreditation: str = "OFFICIAL-SENSITIVE",
    now: datetime = T0,
) -> NodeRecord:
    return await enrol_node(
        store,
        node_id=node_id,
        agency_type=agency_type,
        display_name=display_name,
        public_keys=public_keys,
        accreditation=accreditation,
        now=now,
    )


async def test_enrol_stores_an_active_node(store: SqlStore) -> None:
    record = await enrol(store)

    assert record.status == "active"
    assert record.signing_key == INSECURE_TEST_KEYS.signing
    assert record.encryption_key == INSECURE_TEST_KEYS.encryption
    assert (record.enrolled_at, record.updated_at) == (T0, T0)
    assert await list_nodes(store) == [record]


async def test_enrol_defaults_display_name_to_node_id(store: SqlStore) -> None:
    record = await enrol(store, display_name="")
    assert record.display_name == "health.bsw-icb"


@pytest.mark.parametrize(
    "node_id",
    ["health", "Health.bsw-icb", "health.bsw_icb", "health.bsw-icb.extra", " health.bsw-icb", ""],
)
async def test_enrol_refuses_a_bad_node_id(store: SqlStore, node_id: str) -> None:
    with pytest.raises(RegistryError, match=r"must look like '<agency>\.<organisation>'"):
        await enrol(store, node_id)
    assert await list_nodes(store) == []


async def test_enrol_refuses_an_unknown_agency_type(store: SqlStore) -> None:
    with pytest.raises(RegistryError, match="agency type 'spies' is not one of: police, "):
        await enrol(store, agency_type="spies")
    assert await list_nodes(store) == []


@pytest.mark.parametrize("accreditation", ["SECRET", "official", ""])
async def test_enrol_refuses_a_bad_accreditation(store: SqlStore, accreditation: str) -> None:
    with pytest.raises(
        RegistryError, match="accreditation must be one of: OFFICIAL, OFFICIAL-SENSITIVE"
    ):
        await enrol(store, accreditation=accreditation)
    assert await list_nodes(store) == []


async def test_enrol_refuses_a_duplicate_and_keeps_the_original(store: SqlStore) -> None:
    original = await enrol(store)

    with pytest.raises(RegistryError, match=r"node health\.bsw-icb is already enrolled"):
        await enrol(
            store,
            public_keys=OTHER_INSECURE_TEST_KEYS,
            display_name="Impostor",
            now=T0 + timedelta(hours=1),
        )

    assert await list_nodes(store) == [original]


async def test_suspend_then_reinstate(store: SqlStore) -> None:
    original = await enrol(store)
    suspended_at = T0 + timedelta(days=1)
    reinstated_at = T0 + timedelta(days=2)

    suspended = await set_node_status(store, "health.bsw-icb", "suspended", now=suspended_at)
    assert (suspended.status, suspended.updated_at) == ("suspended", suspended_at)
    assert await list_nodes(store) == [suspended]

    reinstated = await set_node_status(store, "health.bsw-icb", "active", now=reinstated_at)
    assert (reinstated.status, reinstated.updated_at) == ("active", reinstated_at)
    assert reinstated.enrolled_at == original.enrolled_at
    assert reinstated.signing_key == original.signing_key
    assert await list_nodes(store) == [reinstated]


@pytest.mark.parametrize("status", ["active", "suspended"])
async def test_revoked_cannot_be_reinstated(store: SqlStore, status: str) -> None:
    await enrol(store)
    revoked = await set_node_status(store, "health.bsw-icb", "revoked", now=T0)

    with pytest.raises(RegistryError, match=r"node health\.bsw-icb is revoked"):
        await set_node_status(store, "health.bsw-icb", status, now=T0 + timedelta(days=1))

    assert await list_nodes(store) == [revoked]
    # Revoking again is allowed and changes nothing but the timestamp.
    again = await set_node_status(store, "health.bsw-icb", "revoked", now=T0 + timedelta(days=2))
    assert again.status == "revoked"


async def test_status_change_refuses_unknown_status_and_unknown_node(store: SqlStore) -> None:
    await enrol(store)

    with pytest.raises(RegistryError, match="unknown status 'paused'"):
        await set_node_status(store, "health.bsw-icb", "paused", now=T0)
    with pytest.raises(RegistryError, match=r"node police\.nowhere is not enrolled"):
        await set_node_status(store, "police.nowhere", "suspended", now=T0)

    [node] = await list_nodes(store)
    assert node.status == "active"
