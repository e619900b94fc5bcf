"""The hub's node registry: enrol, suspend, reinstate and revoke nodes (``hub admin``),
and the history of each node's keys.

**Rotation and compromise are different things.** A routine rotation
(``POST /v1/keys/rotate``, :func:`install_keys` with reason ``rotated``) ends the old key's
period at the moment of rotation: the hub accepts nothing more signed with it, and every
signature it made before still verifies at the nodes (they check a signature against the
key valid when the hub received the message). Marking a key compromised
(:func:`mark_key_compromised`, ``hub admin compromise-key``) is for a key someone else may
hold: signatures it made from the given time on are not trusted anywhere, even those the
hub accepted before anyone knew, and a compromised current key is replaced at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, get_args

from hub.audit.log import AuditLog
from hub.crypto import PublicKeys, public_key_sha256
from hub.model import AgencyType, AuditEntry, KeyStatus, is_node_id
from hub.store import DuplicateRecord, NodeKeyRecord, NodeRecord, Store, UnitOfWork

__all__ = [
    "ACCREDITATIONS",
    "CompromiseOutcome",
    "RegistryError",
    "check_node_id",
    "enrol_node",
    "install_keys",
    "key_change_entry",
    "key_history",
    "key_status",
    "list_nodes",
    "mark_key_compromised",
    "node_key_history",
    "set_node_status",
    "with_current_key",
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
            await tx.node_keys.add(
                NodeKeyRecord(node_id, public_keys.signing, public_keys.encryption, valid_from=now)
            )
            if audit is not None:
                await audit.append(
                    tx,
                    key_change_entry(
                        node_id, "ENROLLED", now, keys=(public_keys.signing, public_keys.encryption)
                    ),
                )
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
            await audit.append(tx, key_change_entry(node_id, status.upper(), now))
    return updated


def key_change_entry(
    node_id: str, change: str, at: datetime, *, keys: Sequence[bytes] = ()
) -> AuditEntry:
    """Registry changes decide who may send and read: they go in the transparency log,
    with the SHA-256 of each public key concerned."""
    return AuditEntry(
        at=at,
        action="key_change",
        actor=node_id,
        outcome=change,
        keys=tuple(public_key_sha256(key) for key in keys),
    )


def with_current_key(node: NodeRecord, rows: Sequence[NodeKeyRecord]) -> list[NodeKeyRecord]:
    """The node's key history, ending with its current keys.

    A node enrolled before the hub kept key history has no row for its keys: its current
    keys then count from its enrolment (or from the end of the last key it has a row for).
    """
    # Oldest first and the current key last, even when two periods start at one instant.
    history = sorted(rows, key=lambda row: (row.valid_until is None, row.valid_from))
    if not any(row.signing_key == node.signing_key and row.valid_until is None for row in history):
        ends = [row.valid_until for row in history if row.valid_until is not None]
        history.append(
            NodeKeyRecord(
                node.id,
                node.signing_key,
                node.encryption_key,
                valid_from=max(ends) if ends else node.enrolled_at,
            )
        )
    return history


def key_status(key: NodeKeyRecord) -> KeyStatus:
    """current (no end), rotated (ended by a rotation) or compromised (marked so)."""
    if key.compromised_from is not None:
        return "compromised"
    return "current" if key.valid_until is None else "rotated"


async def node_key_history(view: UnitOfWork, node: NodeRecord) -> list[NodeKeyRecord]:
    """The node's key pairs, oldest first, the current one last."""
    return with_current_key(node, await view.node_keys.for_node(node.id))


async def key_history(store: Store, node_id: str) -> tuple[NodeRecord, list[NodeKeyRecord]]:
    """``hub admin keys``: the node and every key pair it has had."""
    async with store.read() as view:
        node = await view.nodes.get(node_id)
        if node is None:
            raise RegistryError(f"node {node_id} is not enrolled")
        return node, await node_key_history(view, node)


async def install_keys(
    tx: UnitOfWork,
    node: NodeRecord,
    new_keys: PublicKeys,
    *,
    at: datetime,
    reason: Literal["rotated", "compromised"],
) -> NodeRecord:
    """Make ``new_keys`` the node's keys from ``at``; the current keys' period ends there.

    Run inside the transaction that holds the node's row locked
    (:meth:`~hub.store.NodeRepository.get_for_update`). A key the node has had before is
    refused (RegistryError): a key's period is one span of time, never two.
    """
    history = with_current_key(node, await tx.node_keys.for_node(node.id))
    for row in history:
        if row.signing_key == new_keys.signing:
            raise RegistryError(f"node {node.id} has used this signing key before")
        if row.encryption_key == new_keys.encryption:
            raise RegistryError(f"node {node.id} has used this encryption key before")
    current = next(row for row in history if row.valid_until is None)
    ended = replace(current, valid_until=at, reason=current.reason or reason)
    stored = {row.signing_key for row in await tx.node_keys.for_node(node.id)}
    if current.signing_key in stored:
        await tx.node_keys.update(ended)
    else:
        await tx.node_keys.add(ended)
    await tx.node_keys.add(
        NodeKeyRecord(node.id, new_keys.signing, new_keys.encryption, valid_from=at)
    )
    updated = replace(
        node, signing_key=new_keys.signing, encryption_key=new_keys.encryption, updated_at=at
    )
    await tx.nodes.update(updated)
    return updated


@dataclass(frozen=True, slots=True)
class CompromiseOutcome:
    """What :func:`mark_key_compromised` did."""

    node: NodeRecord
    key: NodeKeyRecord  # the compromised key, as now recorded
    replaced: bool  # it was the current key and the replacement keys are now current
    # Messages the hub accepted from the node signed with this key since the compromise
    # began: their signatures are no longer trusted; review them.
    untrusted_messages: tuple[str, ...]


async def mark_key_compromised(
    store: Store,
    node_id: str,
    signing_key: bytes,
    *,
    since: datetime,
    now: datetime,
    replacement: PublicKeys | None = None,
    audit: AuditLog | None = None,
) -> CompromiseOutcome:
    """Mark one of a node's signing keys compromised from ``since`` (``hub admin
    compromise-key``); not a rotation (module docstring).

    The node's current key needs ``replacement`` keys, which become current at once, so
    the compromised key cannot be used for another request; an earlier key is only
    marked. ``since`` may lie in the past (when the key is thought to have leaked), not in
    the future, and not before the key's own period began.
    """
    if since > now:
        raise RegistryError("the compromise cannot start in the future (--since)")
    async with store.transaction() as tx:
        node = await tx.nodes.get_for_update(node_id)
        if node is None:
            raise RegistryError(f"node {node_id} is not enrolled")
        history = with_current_key(node, await tx.node_keys.for_node(node_id))
        found = [row for row in history if row.signing_key == signing_key]
        if not found:
            raise RegistryError(f"node {node_id} has never had this signing key")
        key = found[0]
        if key.compromised_from is not None:
            raise RegistryError(
                f"this key of {node_id} is already marked compromised from "
                f"{key.compromised_from.isoformat()}"
            )
        if since < key.valid_from:
            raise RegistryError(
                f"--since is before this key was {node_id}'s (from {key.valid_from.isoformat()})"
            )
        is_current = key.valid_until is None
        if is_current and replacement is None:
            raise RegistryError(
                f"this is {node_id}'s current signing key: give the replacement keys the node "
                "prepared (--new-public-keys, from 'hub node prepare-keys', fingerprints checked "
                "out of band), or suspend the node first (hub admin suspend) until it has them"
            )
        if is_current:
            assert replacement is not None
            node = await install_keys(tx, node, replacement, at=now, reason="compromised")
        marked = replace(key, reason="compromised", compromised_from=since)
        if is_current:
            marked = replace(marked, valid_until=now)
        stored = {row.signing_key for row in await tx.node_keys.for_node(node_id)}
        if key.signing_key in stored:
            await tx.node_keys.update(marked)
        else:
            await tx.node_keys.add(marked)
        # The hub accepted these with the key before anyone knew; from now on they do not
        # verify at the nodes. The log says which they are (metadata only).
        untrusted = tuple(
            AuditEntry.model_validate_json(row.entry_json).message_id or ""
            for row in await tx.audit.rows_between(since, marked.valid_until or now)
            if row.actor == node_id and row.action == "submitted"
        )
        if audit is not None:
            concerned = [key.signing_key]
            if replacement is not None and is_current:
                concerned += [replacement.signing, replacement.encryption]
            entry = key_change_entry(node_id, "KEY_COMPROMISED", now, keys=concerned)
            await audit.append(tx, entry)
    return CompromiseOutcome(
        node=node,
        key=marked,
        replaced=is_current,
        untrusted_messages=untrusted,
    )


async def list_nodes(store: Store) -> Sequence[NodeRecord]:
    async with store.read() as view:
        return await view.nodes.list_all()
