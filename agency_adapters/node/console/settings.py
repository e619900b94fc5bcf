"""The console's settings: where it listens, TLS, and how it syncs with the hub."""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.model.base import is_node_id

__all__ = [
    "CONSOLE_TOML",
    "ConsoleSettings",
    "ConsoleSettingsError",
    "load_console_toml",
    "render_referral_routes",
]

# The node-local console settings file in the node folder (local policy, not hub state).
CONSOLE_TOML = "console.toml"
_CONSOLE_TABLES = frozenset({"referral_routes"})


class ConsoleSettingsError(ValueError):
    """A console setting is missing or wrong; the message names the setting."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """One frozen object built at start-up (STYLE.md rule 8).

    The console listens on loopback by default: it shows case data, so anything that can
    be reached from another machine must be TLS (``tls_cert`` and ``tls_key``), and its
    cookies are then ``Secure`` with the ``__Host-`` prefix and HSTS is sent.
    """

    node_dir: Path
    host: str = "127.0.0.1"
    port: int = 8470
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Long-poll the hub for new messages this many seconds at a time (0 turns it off;
    # the inbox page's "Check for new messages" button then fetches on demand).
    sync_wait: float = 20.0
    # Local policy, not law: how long a case pack stays readable at the member nodes by
    # default (the chair may choose another expiry per pack). No source sets a period and
    # the registry has no setting for it; 14 days covers a monthly panel's preparation.
    case_pack_access_days: int = 14
    # Local policy (the hub directory has no areas): the subject's area -> the nodes a new
    # referral goes to, from [referral_routes] in the node folder's console.toml. None
    # reads that file; the referral form falls back to every LA and police node.
    referral_routes: Mapping[str, tuple[str, ...]] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConsoleSettingsError(f"port: {self.port} is not a TCP port (1-65535)")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConsoleSettingsError("tls_cert and tls_key: give both or neither")
        for name in ("tls_cert", "tls_key"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ConsoleSettingsError(f"{name}: {path} is not a file")
        if not _is_loopback(self.host) and not self.tls:
            raise ConsoleSettingsError(
                f"host: {self.host} is reachable from other machines; the console shows "
                "case data, so serve it there only with TLS (tls_cert and tls_key)"
            )
        if self.sync_wait < 0 or self.sync_wait > 60:
            raise ConsoleSettingsError("sync_wait: must be between 0 and 60 seconds")
        if not 1 <= self.case_pack_access_days <= 365:
            raise ConsoleSettingsError("case_pack_access_days: must be between 1 and 365 days")
        if self.referral_routes is None:
            routes = load_console_toml(self.node_dir / CONSOLE_TOML)
            object.__setattr__(self, "referral_routes", routes)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def session_cookie(self) -> str:
        # The __Host- prefix needs Secure, which a browser refuses over plain http.
        return "__Host-seh_session" if self.tls else "seh_session"

    @property
    def origin(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"


def _routes(table: Any, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(table, dict):
        raise ConsoleSettingsError(f"{where}: must be a table of area = [node ids]")
    routes: dict[str, tuple[str, ...]] = {}
    for area, nodes in table.items():
        key = f"{where}.{area}"
        if not area.strip():
            raise ConsoleSettingsError(f"{key}: an area needs a name")
        if not isinstance(nodes, list) or not nodes:
            raise ConsoleSettingsError(f"{key}: must be a non-empty list of node ids")
        for node in nodes:
            if not isinstance(node, str) or not is_node_id(node):
                raise ConsoleSettingsError(
                    f'{key}: {node!r} is not a node id (like "la.wiltshire")'
                )
        if len(set(nodes)) != len(nodes):
            raise ConsoleSettingsError(f"{key}: names a node more than once")
        routes[area] = tuple(nodes)
    return routes


def load_console_toml(path: Path) -> dict[str, tuple[str, ...]]:
    """The ``[referral_routes]`` of a node's ``console.toml`` (none if there is no file).

    Each key is an area's name and its value the node ids a referral about a person in
    that area goes to. Anything else in the file, or a malformed value, is refused with
    the key's name, so a typing mistake never routes a referral silently elsewhere.
    """
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConsoleSettingsError(f"{path.name}: cannot read it: {exc}") from exc
    unknown = sorted(set(document) - _CONSOLE_TABLES)
    if unknown:
        raise ConsoleSettingsError(
            f"{unknown[0]}: not a console setting in {path.name} (known: referral_routes)"
        )
    return _routes(document.get("referral_routes", {}), "referral_routes")


def render_referral_routes(routes: Mapping[str, tuple[str, ...] | list[str]]) -> str:
    """A ``console.toml`` holding ``routes`` as its ``[referral_routes]`` table."""
    lines = [
        "# Node-local console settings (local policy). [referral_routes]: the subject's",
        "# area -> the nodes a new referral goes to (the LA Prevent lead or MASH and the",
        "# police Prevent team together).",
        "[referral_routes]",
    ]
    for area, nodes in routes.items():
        listed = ", ".join(f'"{node}"' for node in nodes)
        lines.append(f'"{area}" = [{listed}]')
    return "\n".join(lines) + "\n"
