"""``bridge.toml``: the email bridge's one frozen config object, built at start-up.

::

    [hub]                 # the hub every partner's node talks to, as in node.toml
    url = "https://hub.example.org"
    id = "hub.example"
    signing_key = "<base64 Ed25519 public key of the hub, pinned>"

    [bridge]
    address = "prevent-bridge@wiltshire.gov.uk"   # From: of every mail; the key's user id
    name = "Wiltshire Council Prevent email bridge"

    [smtp]                # where outbound mail goes: always with STARTTLS
    host = "smtp.wiltshire.gov.uk"
    port = 587
    username = "prevent-bridge"                   # optional
    password_file = "secrets/smtp-password"       # optional; 0600, relative to this file
    ca_file = "secrets/smtp-ca.pem"               # optional; default: the system CAs
    timeout_seconds = 30

    [listen]              # optional: where partners' mail arrives (STARTTLS required)
    host = "0.0.0.0"
    port = 8025
    cert_file = "secrets/mx-cert.pem"              # the certificate partners' servers see
    key_file = "secrets/mx-key.pem"                # 0600

Unknown tables and keys are refused by name (a misspelt ``prot`` never falls back to a
default port); secrets are referenced by path, never written in the file (STYLE.md 8).
"""

from __future__ import annotations

import base64
import binascii
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.policy.secure_email import email_domain

__all__ = [
    "BridgeConfig",
    "BridgeConfigError",
    "HubLink",
    "ListenSettings",
    "SmtpSettings",
    "load_bridge_config",
]


class BridgeConfigError(ValueError):
    """bridge.toml is missing, malformed or names an unknown key; the message names it."""


@dataclass(frozen=True, slots=True)
class HubLink:
    url: str
    id: str
    signing_key: bytes


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 587
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    timeout_seconds: float = 30.0

    def password(self) -> str | None:
        if self.password_file is None:
            return None
        mode = self.password_file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise BridgeConfigError(
                f"smtp.password_file {self.password_file} must be readable by its owner only "
                "(chmod 600)"
            )
        return self.password_file.read_text(encoding="utf-8").strip()


@dataclass(frozen=True, slots=True)
class ListenSettings:
    host: str
    port: int
    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    hub: HubLink
    address: str
    name: str
    smtp: SmtpSettings
    listen: ListenSettings | None = None


_KEYS: dict[str, tuple[set[str], set[str]]] = {
    # table: (required keys, optional keys)
    "hub": ({"url", "id", "signing_key"}, set()),
    "bridge": ({"address", "name"}, set()),
    "smtp": ({"host"}, {"port", "username", "password_file", "ca_file", "timeout_seconds"}),
    "listen": ({"host", "port", "cert_file", "key_file"}, set()),
}


def _table(doc: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    table = doc.get(name)
    if not isinstance(table, dict):
        raise BridgeConfigError(f"{path}: [{name}] is required and must be a table")
    required, optional = _KEYS[name]
    unknown = sorted(set(table) - required - optional)
    if unknown:
        raise BridgeConfigError(
            f"{path}: [{name}] has unknown key(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(required | optional))}"
        )
    missing = sorted(required - set(table))
    if missing:
        raise BridgeConfigError(f"{path}: {name}.{missing[0]} is required")
    return table


def _text(table: dict[str, Any], table_name: str, key: str) -> str:
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise BridgeConfigError(f"{table_name}.{key} must be a non-empty string")
    return value.strip()


def _optional_path(table: dict[str, Any], key: str, base: Path) -> Path | None:
    if key not in table:
        return None
    return base / _text(table, "smtp", key)


def _port(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise BridgeConfigError(f"{key} must be a port number, 1 to 65535")
    return value


def _listen(doc: dict[str, Any], path: Path, base: Path) -> ListenSettings | None:
    if "listen" not in doc:
        return None
    table = _table(doc, "listen", path)
    key_file = base / _text(table, "listen", "key_file")
    if key_file.exists() and key_file.stat().st_mode & 0o077:
        raise BridgeConfigError(
            f"listen.key_file {key_file} must be readable by its owner only (chmod 600)"
        )
    return ListenSettings(
        host=_text(table, "listen", "host"),
        port=_port(table["port"], "listen.port"),
        cert_file=base / _text(table, "listen", "cert_file"),
        key_file=key_file,
    )


def load_bridge_config(path: Path) -> BridgeConfig:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BridgeConfigError(f"{path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BridgeConfigError(f"{path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(doc) - set(_KEYS))
    if unknown:
        raise BridgeConfigError(
            f"{path}: unknown table(s) {', '.join(unknown)}; it takes {', '.join(sorted(_KEYS))}"
        )
    hub_t, bridge_t, smtp_t = (_table(doc, name, path) for name in ("hub", "bridge", "smtp"))
    try:
        hub_key = base64.b64decode(_text(hub_t, "hub", "signing_key"), validate=True)
    except binascii.Error as exc:
        raise BridgeConfigError("hub.signing_key must be base64") from exc
    if len(hub_key) != 32:
        raise BridgeConfigError("hub.signing_key must be a 32-byte Ed25519 public key")
    address = _text(bridge_t, "bridge", "address")
    if email_domain(address) is None:
        raise BridgeConfigError(f"bridge.address {address!r} is not one plain email address")
    port = _port(smtp_t.get("port", 587), "smtp.port")
    timeout = smtp_t.get("timeout_seconds", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise BridgeConfigError("smtp.timeout_seconds must be a positive number")
    username = smtp_t.get("username")
    if username is not None and (not isinstance(username, str) or not username):
        raise BridgeConfigError("smtp.username must be a non-empty string")
    base = path.resolve().parent
    return BridgeConfig(
        hub=HubLink(
            url=_text(hub_t, "hub", "url").rstrip("/"),
            id=_text(hub_t, "hub", "id"),
            signing_key=hub_key,
        ),
        address=address,
        name=_text(bridge_t, "bridge", "name"),
        smtp=SmtpSettings(
            host=_text(smtp_t, "smtp", "host"),
            port=port,
            username=username,
            password_file=_optional_path(smtp_t, "password_file", base),
            ca_file=_optional_path(smtp_t, "ca_file", base),
            timeout_seconds=float(timeout),
        ),
        listen=_listen(doc, path, base),
    )
