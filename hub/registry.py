"""The hub's node registry: enrol, suspend, reinstate and revoke nodes (``hub admin``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import get_args

from hub.audit.log import AuditLog
from hub.crypto import PublicKeys
from hub.model import AgencyType, AuditEntry, is_node_id
from hub.store import DuplicateRecord, NodeRecord, Store

__all__ = [
    "ACCREDITATIONS",
    "RegistryError",
    "check_node_id",
    "enrol_node",
    "list_nodes",
    "set_node_status",
]

ACCREDITATIONS = ("OFFICIAL", "OFFICIAL-SENSITIVE")
_AGENCY_TYPES: tuple[str, ...] = get_args(AgencyType)


class RegistryError(ValueError):
    """An enrolment or status change that the registry refuses, with the reason."""


def check_node_id(node_id: str) -> None:
    """Refuse a node id that is not ``<agency>.<organisation>`` (RegistryError says how)."""
    if not is_node_id(node_id):
        raise RegistryError(
            f"node id {node_id!r} must look like '<agency>.<organisation>', lower case, "
            "e.g. 'health.bsw-icb'"
        )


async def enrol_node(
    store: Store,
    *,
    node_id: str,
    agency_type: str,
    display_name: str,
    public_keys: PublicKeys,
    accreditation: str,
    now: datetime,
    audit: AuditLog | None = None,
) -> NodeRecord:
    check_node_id(node_id)
    if agency_type not in _AGENCY_TYPES:
        raise RegistryError(
            f"agency type {agency_type!r} is not one of: {', '.join(_AGENCY_TYPES)}"
        )
    if accreditation not in ACCREDITATIONS:
        raise RegistryError(f"accreditation must be one of: {', '.join(ACCREDITATIONS)}")
    record = NodeRecord(
        id=node_id,
        agency_type=agency_type,
        display_name=display_name or node_id,
        signing_key=public_keys.signing,
        encryption_key=public_keys.encryption,
        accreditation=accreditation,
        status="active",
        enrolled_at=now,
        updated_at=now,
    )
    try:
        async with store.transaction() as tx:
            if await tx.nodes.get(node_id) is not None:
                raise RegistryError(f"node {node_id} is already enrolled")
            await tx.nodes.add(record)
            if audit is not None:
                await audit.append(tx, _key_change(node_id, "ENROLLED", now))
    except DuplicateRecord as exc:  # enrolled concurrently by another process
        raise RegistryError(f"node {node_id} is already enrolled") from exc
    return record


async def set_node_status(
    store: Store, node_id: str, status: str, *, now: datetime, audit: AuditLog | None = None
) -> NodeRecord:
    """Suspend (reversible), reinstate ('active') or revoke (final) a node."""
    if status not in ("active", "suspended", "revoked"):
        raise RegistryError(f"unknown status {status!r}")
    async with store.transaction() as tx:
        current = await tx.nodes.get(node_id)
        if current is None:
            raise RegistryError(f"node {node_id} is not enrolled")
        if current.status == "revoked" and status != "revoked":
            raise RegistryError(
                f"node {node_id} is revoked for good; enrol a new node id with new keys"
            )
        updated = NodeRecord(
            id=current.id,
            agency_type=current.agency_type,
            display_name=current.display_name,
            signing_key=current.signing_key,
            encryption_key=current.encryption_key,
            accreditation=current.accreditation,
            status=status,
            enrolled_at=current.enrolled_at,
            updated_at=now,
        )
        await tx.nodes.update(updated)
        if audit is not None:
            await audit.append(tx, _key_change(node_id, status.upper(), now))
    return updated


def _key_change(node_id: str, change: str, at: datetime) -> AuditEntry:
    """Registry changes decide who may send and read: they go in the transparency log."""
    return AuditEntry(at=at, action="key_change", actor=node_id, outcome=change)


async def list_nodes(store: Store) -> Sequence[NodeRecord]:
    async with store.read() as view:
        return await view.nodes.list_all()
