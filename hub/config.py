"""The hub's configuration: one frozen object built at start-up and passed in (STYLE.md 8).

Read from TOML. Relative paths are resolved against the config file's folder. Every error
names the key at fault. Secrets (the hub's key passphrase) are referenced by path.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hub.policy.registry import DEFAULT_REGISTRY_DIR
from hub.store import database_url_for_path

__all__ = [
    "LOG_LEVELS",
    "ConfigError",
    "HubConfig",
    "Limits",
    "LogConfig",
    "MetricsConfig",
    "load_hub_config",
    "render_hub_config",
    "toml_string",
]


class ConfigError(ValueError):
    """The configuration is missing a key, has a wrong type, or names a bad value."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Body limits, windows and timeouts (DESIGN.md section 9). Defaults are documented here."""

    # POST /v1/messages: a 64 KiB inline ciphertext is ~88 KiB in base64, plus the envelope.
    message_body_bytes: int = 256 * 1024
    # Small JSON bodies: acks, blob announcements.
    small_body_bytes: int = 16 * 1024
    # Chunk size for blob uploads, assigned by the hub; each PUT carries one chunk.
    blob_chunk_bytes: int = 8 * 1024 * 1024
    # Largest single payload accepted through /v1/blobs.
    blob_max_bytes: int = 16 * 1024 * 1024 * 1024
    # RFC 9421 'created' may differ from the hub clock by this much either way.
    signature_window_seconds: int = 300
    # A request body must arrive within this long once its headers are authenticated;
    # a client that stalls mid-body gets 408 and its connection is closed.
    body_read_seconds: float = 30.0
    # Longest inbox long-poll.
    inbox_wait_max_seconds: float = 30.0
    inbox_page_max: int = 500
    # How stale the hub's in-memory view of the node registry may be; 0 reads it on every
    # request. A suspension or revocation takes effect within this time.
    node_cache_seconds: float = 1.0
    # What a connection may cost before it has authenticated (deploy/limits.md): the kernel
    # receive buffer of each accepted socket and aiohttp's read-ahead per request, so a
    # stranger's unread body occupies at most a few times this many bytes of the hub's memory.
    receive_buffer_bytes: int = 16 * 1024
    # Connections open at once that have not yet sent a request that authenticates; a new
    # connection beyond this is answered 503 (Retry-After) and closed at once.
    max_unauthenticated_connections: int = 256
    # A connection that has sent no request that authenticates within this long is closed.
    unauthenticated_connection_seconds: float = 10.0
    # Requests one node may have in progress at once; one more is answered 429 (Retry-After).
    per_node_concurrent_requests: int = 32
    # Blobs (deploy/retention.md). Per node: the bytes of its unfinished and stored blobs
    # together, and how many unfinished uploads it may have at once (BLOB-01, BLOB-02).
    blob_quota_bytes: int = 64 * 1024 * 1024 * 1024
    max_pending_uploads: int = 32
    # An upload not finished this long after its announcement is deleted, file and rows;
    # its chunks are answered 410 from then on (BLOB-03).
    blob_upload_expiry_seconds: float = 24 * 3600.0
    # How often `hub serve` expires uploads and purges ciphertext due for it (the same
    # work as `hub admin purge`).
    retention_sweep_seconds: float = 600.0


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Loopback only: a Prometheus on the hub's own machine (deploy/monitoring.md).
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``[metrics]``: whether ``GET /metrics`` is served, and to which peer addresses."""

    enabled: bool = True
    # The direct peer's address is checked (never X-Forwarded-For, which anyone can send).
    allow: tuple[IPNetwork, ...] = _LOOPBACK


@dataclass(frozen=True, slots=True)
class LogConfig:
    """``[logging]``: ``text`` for people, ``json`` (one object per line) for collectors."""

    format: Literal["text", "json"] = "text"
    level: str = "INFO"


@dataclass(frozen=True, slots=True)
class HubConfig:
    hub_id: str
    database_url: str
    blob_dir: Path
    signing_key_path: Path
    signing_key_passphrase_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8443
    limits: Limits = field(default_factory=Limits)
    # The policy registries (schemas/registry/ in the repository by default).
    registry_dir: Path = DEFAULT_REGISTRY_DIR
    # Nodes that may read every transparency-log entry (others see their own).
    auditors: tuple[str, ...] = ()
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logging: LogConfig = field(default_factory=LogConfig)


def _get(table: dict[str, Any], key: str, kind: type, where: str, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}.{key} is required")
        return default
    value = table[key]
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{where}.{key} must be an integer")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{key} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _table(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{key}] must be a table")
    return value


# Below this a socket's buffer is all bookkeeping and reading a body a syscall per packet.
_MIN_RECEIVE_BUFFER = 4096

# The keys each section takes ([limits] takes the fields of Limits, checked below).
_KNOWN_KEYS: dict[str, frozenset[str]] = {
    "hub": frozenset({"id"}),
    "server": frozenset({"host", "port"}),
    "storage": frozenset({"url", "database", "blob_dir"}),
    "keys": frozenset({"signing_key", "passphrase_file"}),
    "policy": frozenset({"registry"}),
    "audit": frozenset({"auditors"}),
    "metrics": frozenset({"enabled", "allow"}),
    "logging": frozenset({"format", "level"}),
}


def load_hub_config(path: Path) -> HubConfig:
    """Parse and check a hub TOML config; raise :class:`ConfigError` naming the key at fault."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    base = path.parent.resolve()
    known = {"hub", "server", "storage", "keys", "limits", "policy", "audit", "metrics", "logging"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(unknown)}")

    def resolve(p: str) -> Path:
        candidate = Path(p)
        return candidate if candidate.is_absolute() else base / candidate

    hub_t, server_t, storage_t = _table(doc, "hub"), _table(doc, "server"), _table(doc, "storage")
    keys_t, limits_t = _table(doc, "keys"), _table(doc, "limits")
    policy_t = _table(doc, "policy")
    # A misspelt key is refused, never ignored (`prot = 9999` would start on the default).
    for section, keys in _KNOWN_KEYS.items():
        misspelt = sorted(set(_table(doc, section)) - keys)
        if misspelt:
            raise ConfigError(
                f"unknown key(s) in [{section}]: {', '.join(misspelt)} "
                f"(known: {', '.join(sorted(keys))})"
            )
    registry = _get(policy_t, "registry", str, "policy", None)
    auditors = _get(_table(doc, "audit"), "auditors", list, "audit", [])
    if not all(isinstance(a, str) for a in auditors):
        raise ConfigError("audit.auditors must be a list of node ids")
    if "url" in storage_t and "database" in storage_t:
        raise ConfigError("storage.url and storage.database are exclusive; give one")
    if "url" in storage_t:
        database_url = _get(storage_t, "url", str, "storage")
    else:
        database_url = database_url_for_path(resolve(_get(storage_t, "database", str, "storage")))
    defaults = Limits()
    limit_values: dict[str, Any] = {}
    for name in Limits.__dataclass_fields__:
        default = getattr(defaults, name)
        value = _get(limits_t, name, type(default), "limits", default)
        if value < 0 or (value == 0 and name != "node_cache_seconds"):
            raise ConfigError(f"limits.{name} must be positive")
        if name == "receive_buffer_bytes" and value < _MIN_RECEIVE_BUFFER:
            raise ConfigError(f"limits.{name} must be at least {_MIN_RECEIVE_BUFFER}")
        limit_values[name] = value
    unknown_limits = sorted(set(limits_t) - set(Limits.__dataclass_fields__))
    if unknown_limits:
        raise ConfigError(f"unknown key(s) in [limits]: {', '.join(unknown_limits)}")
    passphrase = _get(keys_t, "passphrase_file", str, "keys", None)
    port = _get(server_t, "port", int, "server", 8443)
    if not 0 <= port <= 65535:
        raise ConfigError("server.port must be between 0 and 65535")
    return HubConfig(
        hub_id=_get(hub_t, "id", str, "hub"),
        database_url=database_url,
        blob_dir=resolve(_get(storage_t, "blob_dir", str, "storage")),
        signing_key_path=resolve(_get(keys_t, "signing_key", str, "keys")),
        signing_key_passphrase_file=None if passphrase is None else resolve(passphrase),
        host=_get(server_t, "host", str, "server", "127.0.0.1"),
        port=port,
        limits=Limits(**limit_values),
        registry_dir=DEFAULT_REGISTRY_DIR if registry is None else resolve(registry),
        auditors=tuple(auditors),
        metrics=_metrics_config(_table(doc, "metrics")),
        logging=_log_config(_table(doc, "logging")),
    )


def _metrics_config(table: dict[str, Any]) -> MetricsConfig:
    enabled = _get(table, "enabled", bool, "metrics", True)
    raw = _get(table, "allow", list, "metrics", None)
    if raw is None:
        return MetricsConfig(enabled=enabled)
    if not raw:
        raise ConfigError(
            "metrics.allow must name at least one network (to turn /metrics off, set "
            "metrics.enabled = false)"
        )
    networks: list[IPNetwork] = []
    for index, value in enumerate(raw):
        if not isinstance(value, str):
            raise ConfigError(f"metrics.allow[{index}] must be a string such as '127.0.0.1/32'")
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ConfigError(f"metrics.allow[{index}] is not an IP network: {exc}") from exc
    return MetricsConfig(enabled=enabled, allow=tuple(networks))


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_config(table: dict[str, Any]) -> LogConfig:
    log_format = _get(table, "format", str, "logging", "text")
    if log_format not in ("text", "json"):
        raise ConfigError(f"logging.format must be 'text' or 'json', got {log_format!r}")
    level = _get(table, "level", str, "logging", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"logging.level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return LogConfig(format="json" if log_format == "json" else "text", level=level)


def toml_string(value: str) -> str:
    """A TOML basic string: quoted, with backslashes and quotes escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render_hub_config(
    *, hub_id: str, database: str, blob_dir: str, signing_key: str, host: str, port: int
) -> str:
    """A minimal hub.toml (paths relative to the file's folder)."""
    return (
        "# Safeguarding Exchange Hub configuration. Paths are relative to this file.\n"
        f"[hub]\nid = {toml_string(hub_id)}\n\n"
        f"[server]\nhost = {toml_string(host)}\nport = {port}\n\n"
        f'[storage]\n# SQLite (WAL); use url = "postgresql://..." for PostgreSQL.\n'
        f"database = {toml_string(database)}\nblob_dir = {toml_string(blob_dir)}\n\n"
        f"[keys]\nsigning_key = {toml_string(signing_key)}\n"
    )
