"""Key rotation in a node folder: stage new keys, switch to them, keep the old ones.

The folder changes in an order that leaves nothing half-done (``hub node rotate-keys``):

1. the new keys are written to ``keys/rotating.key`` (0600, under the same passphrase as
   the current keys) *before* the hub hears of them, so a crash after the hub took them
   cannot lose them;
2. the hub is asked (``NodeClient.rotate_keys``), signed with the current keys;
3. only once the hub-signed directory lists the new keys does :func:`switch_keys` copy the
   current key file into ``keys/archive/`` (0600) and move the staged file over
   ``keys/node.key`` (one atomic rename).

If the hub refuses, the staged file is deleted and the node goes on with its old keys. If
the answer is lost, the staged file stays, and the next run asks the hub's directory
(with the staged key) whether it took them (:func:`hub_lists_keys`), then finishes or
starts afresh. Archived keys are read back by ``NodeProfile.load_keys``, so payloads
sealed to an old encryption key stay readable.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from hub.client.errors import HubProblem
from hub.client.node_client import NodeClient
from hub.client.profile import NodeProfile
from hub.crypto import NodeKeys, public_key_sha256, read_key_file, write_key_file

__all__ = ["hub_lists_keys", "read_staged_keys", "stage_keys", "switch_keys"]


def stage_keys(profile: NodeProfile, path: Path, keys: NodeKeys) -> None:
    """Write ``keys`` to ``path`` (0600, never over an existing file), encrypted like the
    node's key file when it has a passphrase."""
    write_key_file(path, keys, passphrase=profile.passphrase())


def read_staged_keys(profile: NodeProfile, path: Path) -> NodeKeys:
    return read_key_file(path, passphrase=profile.passphrase())


async def hub_lists_keys(profile: NodeProfile, keys: NodeKeys) -> bool:
    """Whether the hub has ``keys`` as this node's current keys: its signed directory,
    fetched with a request signed by them, lists them (a 401 means it does not)."""
    client = NodeClient(
        hub_url=profile.hub_url,
        node_id=profile.node_id,
        keys=keys,
        hub_signing_key=profile.hub_signing_key,
        spool_dir=profile.spool_dir,
    )
    async with client:
        try:
            entry = (await client.directory(refresh=True)).get(profile.node_id)
        except HubProblem as problem:
            if problem.problem.status == 401:
                return False
            raise
    expected = keys.public.to_json()
    return entry is not None and (entry.signing_key, entry.encryption_key) == (
        expected["signing_key"],
        expected["encryption_key"],
    )


def switch_keys(
    profile: NodeProfile, staged: Path, *, current: NodeKeys, new: NodeKeys, now: datetime
) -> Path:
    """Archive the current key file (holding ``current``), then make ``staged`` (holding
    ``new``) the node's key file; the path of the archived copy. Also rewrites
    ``node.pub.json`` (the enrolment file) if present.
    """
    archive = profile.key_archive_dir
    archive.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    archived = archive / f"{stamp}-{public_key_sha256(current.public.signing)[:16]}.key"
    fd = os.open(archived, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(profile.key_file.read_bytes())
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(archive)
    os.replace(staged, profile.key_file)
    _fsync_dir(profile.key_file.parent)
    public = profile.root / "node.pub.json"
    if public.exists():
        public.write_text(json.dumps(new.public.to_json(), indent=2) + "\n")
    return archived


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
