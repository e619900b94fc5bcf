"""``hub serve``, ``hub keys`` and ``hub admin``: run the hub and keep its node registry."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import socket
from collections.abc import Awaitable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from hub.audit.log import AuditLog
from hub.cli.common import EXIT_OK, CommandError, add_json_flag, emit, table
from hub.config import LOG_LEVELS, ConfigError, HubConfig, LogConfig, load_hub_config
from hub.crypto import KeyFileError, NodeKeys, PublicKeys, read_key_file, write_key_file
from hub.registry import ACCREDITATIONS, RegistryError, enrol_node, list_nodes, set_node_status
from hub.server import create_app
from hub.server.logs import configure_logging
from hub.server.serving import limit_receive_buffer, serve
from hub.store import SqlStore
from hub.store.migrate import (
    BASE_REVISION,
    SchemaError,
    SchemaState,
    prepare_database,
    revisions_text,
    schema_status,
    upgrade_sql,
    upgrade_to_head,
)

__all__ = ["add_admin_commands", "hub_config", "hub_public_signing_key", "open_hub_store"]


T = TypeVar("T")
# ``hub admin migrate --status``: the database is not at the code's head revision.
EXIT_BEHIND = 1


def _hub_keys(config: HubConfig) -> NodeKeys:
    passphrase = _passphrase(config.signing_key_passphrase_file)
    try:
        return read_key_file(config.signing_key_path, passphrase=passphrase)
    except KeyFileError as exc:
        raise CommandError(f"hub signing key: {exc}") from exc


def hub_public_signing_key(config: HubConfig) -> bytes:
    """The hub's Ed25519 public key, from its key file (for checking its signatures)."""
    return _hub_keys(config).public.signing


def hub_config(path: Path) -> HubConfig:
    try:
        return load_hub_config(path)
    except ConfigError as exc:
        raise CommandError(f"config: {exc}") from exc


def _passphrase(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise CommandError(f"cannot read passphrase file {path}: {exc.strerror}") from exc


def cmd_serve(args: argparse.Namespace) -> int:
    config = hub_config(args.config)
    configure_logging(_log_settings(config.logging, args))
    # An empty database is migrated to head here (and says so in the log); one behind or
    # ahead of the code is refused before anything listens.
    asyncio.run(_database(prepare_database(config.database_url)))
    try:
        app = create_app(config)
    except KeyFileError as exc:
        raise CommandError(f"hub signing key: {exc}") from exc
    # Bind before saying "listening": a busy port is a clear message and exit 2, never a
    # "listening" line followed by a traceback.
    listener = _listen(config.host, config.port)
    limit_receive_buffer(listener, config.limits)  # before the port is announced
    port = listener.getsockname()[1]
    print(f"hub {config.hub_id} listening on http://{config.host}:{port}", flush=True)
    logging.getLogger("hub.server").info(
        "listening on %s:%d",
        config.host,
        port,
        extra={"event": "listening", "hub_id": config.hub_id, "host": config.host, "port": port},
    )
    serve(app, listener, config.limits)
    return EXIT_OK


def _log_settings(configured: LogConfig, args: argparse.Namespace) -> LogConfig:
    """``[logging]`` with ``--log-format`` and ``--log-level`` taking precedence."""
    if args.log_format is not None:
        configured = replace(configured, format=args.log_format)
    if args.log_level is not None:
        configured = replace(configured, level=args.log_level.upper())
    return configured


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a :class:`CommandError` saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=1024)
    except socket.gaierror as exc:
        raise CommandError(f"cannot listen on {host}:{port}: unknown host ({exc})") from exc
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"cannot listen on {host}:{port}: the port is already in use (is another hub "
                "running? choose another port with [server] port)"
            ) from exc
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def cmd_keys_generate(args: argparse.Namespace) -> int:
    keys = NodeKeys.generate()
    try:
        write_key_file(args.out, keys, passphrase=_passphrase(args.passphrase_file))
    except KeyFileError as exc:
        raise CommandError(str(exc)) from exc
    public = keys.public.to_json()
    if args.public_out is not None:
        args.public_out.write_text(json.dumps(public, indent=2) + "\n")
    emit(public, json_mode=args.json)
    return EXIT_OK


def cmd_keys_public(args: argparse.Namespace) -> int:
    try:
        keys = read_key_file(args.key, passphrase=_passphrase(args.passphrase_file))
    except KeyFileError as exc:
        raise CommandError(str(exc)) from exc
    emit(keys.public.to_json(), json_mode=args.json)
    return EXIT_OK


def _read_public_keys(path: Path) -> PublicKeys:
    try:
        return PublicKeys.from_json(json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise CommandError(f"public key file {path} does not exist") from exc
    except (ValueError, KeyFileError) as exc:
        raise CommandError(f"{path} is not a public key file: {exc}") from exc


async def _database(work: Awaitable[T]) -> T:
    """Await a schema operation; its refusal or a database error is one line (exit 2)."""
    try:
        return await work
    except SchemaError as exc:
        raise CommandError(f"database: {exc}") from exc
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CommandError(f"cannot open the database: {reason}") from exc


async def open_hub_store(config: HubConfig) -> SqlStore:
    """The hub's store, its schema current (an empty database is migrated to head first)."""
    await _database(prepare_database(config.database_url))
    return SqlStore.open(config.database_url)


def cmd_migrate(args: argparse.Namespace) -> int:
    url = hub_config(args.config).database_url
    status = asyncio.run(_database(schema_status(url)))
    if args.sql:
        if status.state is SchemaState.AHEAD:
            raise CommandError(f"database: revision {status.current} is unknown to this hub")
        start = BASE_REVISION if status.state is SchemaState.LEGACY else status.current
        if status.state is SchemaState.LEGACY:
            print(f"-- the database predates migrations: it would be stamped {BASE_REVISION}")
        print(upgrade_sql(url, start), end="")
        return EXIT_OK
    if args.status:
        current = status.current or (
            "none (tables from before migrations)"
            if status.state is SchemaState.LEGACY
            else "none (empty database)"
        )
        print(f"current revision: {current}")
        print(f"head revision:    {status.head}")
        print(f"state:            {status.state.value}")
        print(f"pending:          {revisions_text(status.pending)}")
        return EXIT_OK if status.state is SchemaState.CURRENT else EXIT_BEHIND
    done = asyncio.run(_database(upgrade_to_head(url)))
    if done.stamped is not None:
        print(f"stamped {done.stamped} (the database predates migrations and matches it)")
    for revision in done.applied:
        print(f"applied {revision}")
    print(f"the database is at {status.head}" + ("" if done.applied else " (nothing to do)"))
    return EXIT_OK


async def _with_store(config: HubConfig, action: str, args: argparse.Namespace) -> int:
    audit = None if action == "list" else AuditLog(hub_keys=_hub_keys(config))
    store = await open_hub_store(config)
    try:
        now = datetime.now(UTC)
        if action == "enrol":
            record = await enrol_node(
                store,
                node_id=args.node_id,
                agency_type=args.agency_type,
                display_name=args.display_name or args.node_id,
                public_keys=_read_public_keys(args.public_keys),
                accreditation=args.accreditation,
                now=now,
                audit=audit,
            )
            print(f"enrolled {record.id} ({record.agency_type}, {record.accreditation})")
        elif action == "list":
            nodes = [
                {
                    "id": node.id,
                    "agency_type": node.agency_type,
                    "display_name": node.display_name,
                    "accreditation": node.accreditation,
                    "status": node.status,
                    "enrolled_at": node.enrolled_at.isoformat(),
                }
                for node in await list_nodes(store)
            ]
            emit(nodes, json_mode=args.json, human=_node_table)
        else:
            status = {"suspend": "suspended", "reinstate": "active", "revoke": "revoked"}[action]
            record = await set_node_status(store, args.node_id, status, now=now, audit=audit)
            print(f"{record.id} is now {record.status}")
    except RegistryError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        await store.close()
    return EXIT_OK


def _node_table(nodes: list[dict[str, str]]) -> str:
    return table(nodes, ("id", "agency_type", "accreditation", "status", "display_name"))


def cmd_admin(args: argparse.Namespace) -> int:
    return asyncio.run(_with_store(hub_config(args.config), args.admin_action, args))


def add_admin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the hub", description="Run the hub's HTTP service.")
    serve.add_argument("--config", type=Path, required=True, help="hub TOML config file")
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log lines as text or as one JSON object per line (default: [logging] format)",
    )
    serve.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        help="least severe level logged (default: [logging] level, INFO)",
    )
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="generate and inspect key files")
    keys_sub = keys.add_subparsers(dest="keys_action", required=True)
    gen = keys_sub.add_parser(
        "generate",
        help="create a new key file (Ed25519 + X25519), mode 0600",
        description="Create a key file; prints the public keys as JSON for enrolment.",
    )
    gen.add_argument(
        "--out", type=Path, required=True, help="key file to create (never overwritten)"
    )
    gen.add_argument(
        "--passphrase-file", type=Path, help="encrypt at rest with this passphrase (Argon2id)"
    )
    gen.add_argument("--public-out", type=Path, help="also write the public keys JSON here")
    add_json_flag(gen)
    gen.set_defaults(func=cmd_keys_generate)
    pub = keys_sub.add_parser("public", help="print the public keys of a key file")
    pub.add_argument("--key", type=Path, required=True, help="the key file")
    pub.add_argument(
        "--passphrase-file", type=Path, help="the passphrase file, if the key is encrypted"
    )
    add_json_flag(pub)
    pub.set_defaults(func=cmd_keys_public)

    admin = sub.add_parser("admin", help="manage the hub's node registry")
    admin_sub = admin.add_subparsers(dest="admin_action", required=True)
    enrol = admin_sub.add_parser("enrol", help="enrol a node with its public keys")
    enrol.add_argument("--config", type=Path, required=True, help="hub TOML config file")
    enrol.add_argument("--node-id", required=True, help="e.g. health.bsw-icb")
    enrol.add_argument("--agency-type", required=True, help="police, local_authority, health, ...")
    enrol.add_argument(
        "--public-keys", type=Path, required=True, help="JSON from 'hub keys generate'"
    )
    enrol.add_argument(
        "--display-name", default="", help="name shown in the directory (default: the node id)"
    )
    enrol.add_argument(
        "--accreditation",
        default="OFFICIAL-SENSITIVE",
        choices=ACCREDITATIONS,
        help="the highest marking the node may receive (default: OFFICIAL-SENSITIVE)",
    )
    for action, text in (
        ("suspend", "stop a node sending and receiving (reversible)"),
        ("reinstate", "make a suspended node active again"),
        ("revoke", "permanently revoke a node (e.g. compromised keys)"),
    ):
        p = admin_sub.add_parser(action, help=text)
        p.add_argument("--config", type=Path, required=True, help="hub TOML config file")
        p.add_argument("--node-id", required=True, help="the enrolled node")
    migrate = admin_sub.add_parser(
        "migrate",
        help="upgrade the hub's database to this version's schema",
        description=(
            "Upgrade the configured database to the newest schema revision, printing each "
            "revision applied. A database made before migrations existed is stamped "
            "0001_initial first if it matches that revision exactly, and refused otherwise. "
            "Back the database up first (deploy/migrations.md)."
        ),
    )
    migrate.add_argument("--config", type=Path, required=True, help="hub TOML config file")
    mode = migrate.add_mutually_exclusive_group()
    mode.add_argument(
        "--status",
        action="store_true",
        help="print the current and head revisions and change nothing (exit 1 if behind)",
    )
    mode.add_argument(
        "--sql",
        "--dry-run",
        dest="sql",
        action="store_true",
        help="print the SQL an upgrade would run and change nothing",
    )
    migrate.set_defaults(func=cmd_migrate)
    lister = admin_sub.add_parser("list", help="list enrolled nodes")
    lister.add_argument("--config", type=Path, required=True, help="hub TOML config file")
    add_json_flag(lister)
    admin.set_defaults(func=cmd_admin)
