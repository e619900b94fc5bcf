"""The console's settings: where it listens, TLS, and how it syncs with the hub."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ConsoleSettings", "ConsoleSettingsError"]


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
