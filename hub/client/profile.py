"""A node's folder: its config (``node.toml``), key file and what it keeps.

::

    DIR/node.toml             node id, agency type, hub URL, the hub's pinned public key,
                              and optionally [retention] (days per kind; LOCAL POLICY)
    DIR/keys/node.key         the node's secret keys (0600)
    DIR/keys/archive/*.key    its keys from before each rotation (0600): their X25519
                              secrets still open payloads sealed to the old keys
    DIR/keys/rotating.key     new keys while ``hub node rotate-keys`` waits for the hub
    DIR/keys/pending.key      replacement keys from ``hub node prepare-keys`` (compromise)
    DIR/state/node.sqlite3    what the node received and sent, its inbox cursor and access
                              log (agency_adapters.node.store; nothing decrypted)
    DIR/state/ciphertext/     blob payloads, as ciphertext (0600)
    DIR/outbox/               sent messages awaiting the hub's receipt, as the exact sealed
                              and signed bytes (0600; hub.client.outbox)

Older versions kept the cursor in ``state/inbox.json`` (taken over by the store when it
first opens) and plaintext case packs in ``received/`` with ``state/expiry.json``
(removed by ``hub node purge``, see ``agency_adapters.node.sync.retire_legacy_files``).
"""

from __future__ import annotations

import base64
import binascii
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hub.config import toml_string
from hub.crypto import NodeKeys, read_key_file
from hub.model import MESSAGE_KINDS

__all__ = ["NodeProfile", "ProfileError", "load_node_profile", "write_node_profile"]


class ProfileError(ValueError):
    """A node folder is missing, incomplete or malformed; the message names the key."""


@dataclass(frozen=True, slots=True)
class NodeProfile:
    root: Path
    node_id: str
    agency_type: str
    hub_url: str
    hub_id: str
    hub_signing_key: bytes
    key_file: Path
    passphrase_file: Path | None = None
    # ``[retention]`` in node.toml: ``default`` and per-kind periods, in days.
    retention_days: tuple[tuple[str, int], ...] = ()

    def passphrase(self) -> bytes | None:
        """The key files' passphrase (``keys.passphrase_file``), if they are encrypted."""
        if self.passphrase_file is None:
            return None
        return self.passphrase_file.read_bytes().strip()

    def load_keys(self) -> NodeKeys:
        """The node's current keys, also holding the X25519 secrets of its archived keys
        (so a payload sealed before a rotation still opens)."""
        passphrase = self.passphrase()
        current = read_key_file(self.key_file, passphrase=passphrase)
        earlier = tuple(
            read_key_file(path, passphrase=passphrase) for path in self.archived_key_files()
        )
        return current.with_previous(earlier) if earlier else current

    @property
    def key_archive_dir(self) -> Path:
        return self.key_file.parent / "archive"

    @property
    def rotating_key_file(self) -> Path:
        return self.key_file.parent / "rotating.key"

    @property
    def pending_key_file(self) -> Path:
        return self.key_file.parent / "pending.key"

    def archived_key_files(self) -> list[Path]:
        """The archived key files, newest first (their names start with the UTC time)."""
        if not self.key_archive_dir.is_dir():
            return []
        return sorted(self.key_archive_dir.glob("*.key"), reverse=True)

    @property
    def spool_dir(self) -> Path:
        return self.root / "spool"

    @property
    def outbox_dir(self) -> Path:
        """Messages sealed and signed but not yet receipted (``hub.client.outbox``)."""
        return self.root / "outbox"

    @property
    def disclosure_log_path(self) -> Path:
        """The node's hash-chained log of what it disclosed (health releases)."""
        return self.root / "disclosure-log.jsonl"


def _str(table: dict[str, object], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ProfileError(f"{where}.{key} is required and must be a non-empty string")
    return value


def load_node_profile(root: Path) -> NodeProfile:
    config = root / "node.toml"
    if root.exists() and not root.is_dir():
        raise ProfileError(f"{root} is not a node folder: it is a file, not a folder")
    try:
        doc = tomllib.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ProfileError(f"{config} does not exist; is {root} a node folder?") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{config} is not valid TOML: {exc}") from exc
    node_t, hub_t, keys_t = doc.get("node", {}), doc.get("hub", {}), doc.get("keys", {})
    for name, table in (("node", node_t), ("hub", hub_t), ("keys", keys_t)):
        if not isinstance(table, dict):
            raise ProfileError(f"[{name}] in {config} must be a table")
    try:
        hub_key = base64.b64decode(_str(hub_t, "signing_key", "hub"), validate=True)
    except binascii.Error as exc:
        raise ProfileError("hub.signing_key must be base64") from exc
    if len(hub_key) != 32:
        raise ProfileError("hub.signing_key must be a 32-byte Ed25519 public key")
    base = root.resolve()
    retention_t = doc.get("retention", {})
    if not isinstance(retention_t, dict):
        raise ProfileError(f"[retention] in {config} must be a table")
    retention: list[tuple[str, int]] = []
    for kind, days in retention_t.items():
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ProfileError(f"retention.{kind} must be a whole number of days, at least 1")
        if kind != "default" and kind not in MESSAGE_KINDS:
            raise ProfileError(f"retention.{kind} is not a message kind (or 'default')")
        retention.append((kind, days))
    passphrase = keys_t.get("passphrase_file")
    if passphrase is not None and not isinstance(passphrase, str):
        raise ProfileError("keys.passphrase_file must be a string path")
    return NodeProfile(
        root=base,
        node_id=_str(node_t, "id", "node"),
        agency_type=_str(node_t, "agency_type", "node"),
        hub_url=_str(hub_t, "url", "hub").rstrip("/"),
        hub_id=_str(hub_t, "id", "hub"),
        hub_signing_key=hub_key,
        key_file=base / _str(keys_t, "key_file", "keys"),
        passphrase_file=None if passphrase is None else base / passphrase,
        retention_days=tuple(sorted(retention)),
    )


def write_node_profile(
    root: Path,
    *,
    node_id: str,
    agency_type: str,
    hub_url: str,
    hub_id: str,
    hub_signing_key: bytes,
    key_file: str = "keys/node.key",
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "node.toml"
    config.write_text(
        "# Agency node configuration. Paths are relative to this folder.\n"
        f"[node]\nid = {toml_string(node_id)}\nagency_type = {toml_string(agency_type)}\n\n"
        f"[hub]\nurl = {toml_string(hub_url)}\nid = {toml_string(hub_id)}\n"
        "# The hub's Ed25519 public key, pinned: receipts and the directory must verify.\n"
        f'signing_key = "{base64.b64encode(hub_signing_key).decode()}"\n\n'
        f"[keys]\nkey_file = {toml_string(key_file)}\n",
        encoding="utf-8",
    )
    return config
