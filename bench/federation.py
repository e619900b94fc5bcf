"""A bench federation: a hub config, its key, enrolled nodes, and ``hub serve``.

Built with the hub's own functions (the ones ``hub demo`` uses), on SQLite or on a
PostgreSQL database made for the run and dropped after it: the demo's three nodes and
three more health nodes that send too (:data:`SENDERS`). No story is played: the nodes
start with empty inboxes and the log holds only their enrolments.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import make_url

from bench.processes import ServerProcess, free_port
from hub.audit.log import AuditLog
from hub.cli.admin import open_hub_store
from hub.cli.demo import DEMO_NODES
from hub.client import NodeProfile, load_node_profile, write_node_profile
from hub.config import load_hub_config, toml_string
from hub.crypto import NodeKeys, write_key_file
from hub.registry import enrol_node

__all__ = [
    "RECIPIENTS",
    "SENDER",
    "SENDERS",
    "Federation",
    "create_federation",
    "postgres_database",
    "serve_supports_workers",
]

HUB_ID = "hub.bench"
# The hub limits the requests one node may have in progress (limits.per_node_concurrent_
# requests, 32 by default): 64 concurrent submissions come from four health nodes, 16 each,
# as a hub serving many agencies sees them, with the hub's limits left as they ship.
SENDERS = ("health.bsw-icb", "health.bench-2", "health.bench-3", "health.bench-4")
SENDER = SENDERS[0]
RECIPIENTS = ("la.wiltshire", "police.ctp-sw")
NODES = (
    *DEMO_NODES,
    *((node, "health", f"Bench sender {node[-1]}") for node in SENDERS if node != SENDER),
)
HUB = [sys.executable, "-m", "hub.cli.main"]


def _hub_toml(*, port: int, database_url: str | None) -> str:
    storage = (
        f"url = {toml_string(database_url)}"
        if database_url is not None
        else 'database = "hub.sqlite3"'
    )
    return (
        "# A bench federation's hub (python -m bench). Paths are relative to this file.\n"
        f"[hub]\nid = {toml_string(HUB_ID)}\n\n"
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n\n'
        f'[storage]\n{storage}\nblob_dir = "blobs"\n\n'
        '[keys]\nsigning_key = "keys/hub.key"\n'
    )


@dataclass(frozen=True)
class Federation:
    root: Path
    config_path: Path
    port: int
    hub_keys: NodeKeys
    database_url: str | None

    @property
    def engine(self) -> str:
        return "SQLite" if self.database_url is None else "PostgreSQL"

    def node_dir(self, node_id: str) -> Path:
        return self.root / "nodes" / node_id

    def profile(self, node_id: str) -> NodeProfile:
        return load_node_profile(self.node_dir(node_id))

    def config_for_port(self, port: int) -> Path:
        """Another config for the same hub (same database, blobs and key) on ``port``."""
        if port == self.port:
            return self.config_path
        path = self.root / f"hub-{port}.toml"
        path.write_text(_hub_toml(port=port, database_url=self.database_url))
        return path

    def serve(
        self, name: str, *, port: int | None = None, workers: int | None = None
    ) -> ServerProcess:
        port = port or self.port
        command = [*HUB, "serve", "--config", str(self.config_for_port(port))]
        if workers is not None:
            command += ["--workers", str(workers)]
        return ServerProcess(
            name,
            command,
            log=self.root / f"{name}.log",
            health_url=f"http://127.0.0.1:{port}/v1/health",
        )


async def _enrol(config_path: Path, root: Path, hub_keys: NodeKeys, port: int) -> None:
    config = load_hub_config(config_path)
    store = await open_hub_store(config)
    try:
        now = datetime.now(UTC)
        for node_id, agency, name in NODES:
            keys = NodeKeys.generate()
            write_key_file(root / "nodes" / node_id / "keys" / "node.key", keys)
            write_node_profile(
                root / "nodes" / node_id,
                node_id=node_id,
                agency_type=agency,
                hub_url=f"http://127.0.0.1:{port}",
                hub_id=HUB_ID,
                hub_signing_key=hub_keys.public.signing,
            )
            await enrol_node(
                store,
                node_id=node_id,
                agency_type=agency,
                display_name=name,
                public_keys=keys.public,
                accreditation="OFFICIAL-SENSITIVE",
                now=now,
                audit=AuditLog(hub_keys=hub_keys),
            )
    finally:
        await store.close()


def create_federation(root: Path, *, database_url: str | None = None) -> Federation:
    """A hub and the three demo nodes under ``root``, enrolled, ready for ``serve``."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    hub_keys = NodeKeys.generate()
    write_key_file(root / "keys" / "hub.key", hub_keys)
    config_path = root / "hub.toml"
    config_path.write_text(_hub_toml(port=port, database_url=database_url))
    asyncio.run(_enrol(config_path, root, hub_keys, port))
    return Federation(root, config_path, port, hub_keys, database_url)


def _asyncpg_dsn(url: str) -> str:
    # asyncpg takes a libpq URL: the SQLAlchemy driver suffix (+asyncpg) goes.
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A database of its own (``bench_<random>``) on the server of ``admin_url``, dropped
    afterwards; yields its SQLAlchemy URL. Never touches the database ``admin_url`` names."""
    import asyncpg  # type: ignore[import-untyped]

    name = f"bench_{secrets.token_hex(6)}"
    dsn = _asyncpg_dsn(admin_url)

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def serve_supports_workers() -> bool:
    """Whether this hub's ``hub serve`` takes ``--workers N``."""
    result = subprocess.run(
        [*HUB, "serve", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    return "--workers" in result.stdout
