"""A node's folder: its config (``node.toml``), key file, inbox cursor and received files.

::

    DIR/node.toml          node id, agency type, hub URL, the hub's pinned public key
    DIR/keys/node.key      the node's secret keys (0600)
    DIR/state/inbox.json   the inbox cursor, advanced only after an acknowledgement
    DIR/received/          decrypted payloads that are files rather than JSON
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hub.config import toml_string
from hub.crypto import NodeKeys, read_key_file

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

    def load_keys(self) -> NodeKeys:
        passphrase = None
        if self.passphrase_file is not None:
            passphrase = self.passphrase_file.read_bytes().strip()
        return read_key_file(self.key_file, passphrase=passphrase)

    @property
    def cursor_file(self) -> Path:
        return self.root / "state" / "inbox.json"

    @property
    def received_dir(self) -> Path:
        return self.root / "received"

    @property
    def spool_dir(self) -> Path:
        return self.root / "spool"

    @property
    def disclosure_log_path(self) -> Path:
        """The node's hash-chained log of what it disclosed (health releases)."""
        return self.root / "disclosure-log.jsonl"

    def read_cursor(self) -> int:
        try:
            doc = json.loads(self.cursor_file.read_text())
        except FileNotFoundError:
            return 0
        except ValueError as exc:
            raise ProfileError(f"{self.cursor_file} is not valid JSON") from exc
        after = doc.get("after") if isinstance(doc, dict) else None
        if not isinstance(after, int) or after < 0:
            raise ProfileError(f"{self.cursor_file} has no valid 'after' cursor")
        return after

    @property
    def expiry_file(self) -> Path:
        return self.root / "state" / "expiry.json"

    def _expiries(self) -> dict[str, dict[str, str]]:
        try:
            doc = json.loads(self.expiry_file.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ProfileError(f"{self.expiry_file} is not valid JSON") from exc
        if not isinstance(doc, dict):
            raise ProfileError(f"{self.expiry_file} is not an expiry index")
        return doc

    def keep_until(self, message_id: str, path: Path, expires_at: datetime) -> None:
        """Remember that ``path`` (a case pack's payload) must be purged at ``expires_at``."""
        index = self._expiries()
        index[message_id] = {"path": str(path), "expires_at": expires_at.isoformat()}
        self._write_json(self.expiry_file, index)

    def purge_expired(self, now: datetime) -> list[str]:
        """Delete every kept payload whose access has expired; the message ids purged."""
        index = self._expiries()
        purged = [
            message_id
            for message_id, entry in index.items()
            if datetime.fromisoformat(entry["expires_at"]) <= now
        ]
        for message_id in purged:
            Path(index.pop(message_id)["path"]).unlink(missing_ok=True)
        if purged:
            self._write_json(self.expiry_file, index)
        return purged

    def _write_json(self, path: Path, document: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(document))
        os.replace(tmp, path)

    def write_cursor(self, after: int) -> None:
        self.cursor_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cursor_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"after": after}))
        os.replace(tmp, self.cursor_file)


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
