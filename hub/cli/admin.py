"""``hub serve``, ``hub keys`` and ``hub admin``: run the hub and keep its node registry."""

from __future__ import annotations

import argparse
import asyncio
import base64
import errno
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from hub.audit.log import AuditLog
from hub.cli.common import EXIT_OK, CommandError, add_json_flag, emit, table
from hub.cli.workers import (
    listen_on_shared_port,
    refuse_workers_on_sqlite,
    reserve_shared_port,
    serve_workers,
    stop_when_orphaned,
    worker_count,
)
from hub.config import LOG_LEVELS, ConfigError, HubConfig, LogConfig, load_hub_config
from hub.crypto import (
    KeyFileError,
    NodeKeys,
    PublicKeys,
    key_fingerprint,
    read_key_file,
    write_key_file,
)
from hub.policy.registry import RegistryError as PolicyRegistryError
from hub.policy.registry import load_registry
from hub.registry import (
    ACCREDITATIONS,
    RegistryError,
    enrol_node,
    key_history,
    key_status,
    list_nodes,
    mark_key_compromised,
    set_node_status,
)
from hub.server import create_app
from hub.server.blobs import BlobFiles
from hub.server.logs import configure_logging
from hub.server.retention import PurgeReport, RetentionService
from hub.server.serving import limit_receive_buffer, serve
from hub.store import NodeKeyRecord, SqlStore
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
    if args.workers > 1:
        refuse_workers_on_sqlite(config.database_url, args.workers)
    configure_logging(_log_settings(config.logging, args))
    # An empty database is migrated to head here (and says so in the log); one behind or
    # ahead of the code is refused before anything listens (and, with workers, before
    # any is forked: they never migrate at the same time).
    asyncio.run(_database(prepare_database(config.database_url)))
    try:
        app = create_app(config)
    except KeyFileError as exc:
        raise CommandError(f"hub signing key: {exc}") from exc
    # Bind before saying "listening": a busy port is a clear message and exit 2, never a
    # "listening" line followed by a traceback.
    listener = _listen(config.host, config.port, shared=args.workers > 1)
    limit_receive_buffer(listener, config.limits)  # before the port is announced
    port = listener.getsockname()[1]
    workers = f" ({args.workers} workers)" if args.workers > 1 else ""
    print(f"hub {config.hub_id} listening on http://{config.host}:{port}{workers}", flush=True)
    logging.getLogger("hub.server").info(
        "listening on %s:%d",
        config.host,
        port,
        extra={"event": "listening", "hub_id": config.hub_id, "host": config.host, "port": port},
    )
    if args.workers > 1:

        def worker() -> int:
            # Each worker listens on the reserved port with a socket of its own, its
            # receive buffer limited before it listens.
            own = listen_on_shared_port(
                listener, prepare=lambda sock: limit_receive_buffer(sock, config.limits)
            )
            stop_when_orphaned(app, os.getppid())
            serve(app, own, config.limits)
            return EXIT_OK

        return serve_workers(args.workers, worker)
    serve(app, listener, config.limits)
    return EXIT_OK


def _log_settings(configured: LogConfig, args: argparse.Namespace) -> LogConfig:
    """``[logging]`` with ``--log-format`` and ``--log-level`` taking precedence."""
    if args.log_format is not None:
        configured = replace(configured, format=args.log_format)
    if args.log_level is not None:
        configured = replace(configured, level=args.log_level.upper())
    return configured


def _listen(host: str, port: int, *, shared: bool = False) -> socket.socket:
    """A listening socket on ``host:port`` (``shared``: the workers' port, reserved),
    or a :class:`CommandError` saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        if shared:
            return reserve_shared_port(family, host, port)
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
    _say_fingerprints(keys.public)
    return EXIT_OK


def _say_fingerprints(public: PublicKeys) -> None:
    """On stderr (stdout stays the public keys): what to publish and read aloud."""
    print(
        f"fingerprints: signing {key_fingerprint(public.signing)}; "
        f"encryption {key_fingerprint(public.encryption)}",
        file=sys.stderr,
    )


def cmd_keys_public(args: argparse.Namespace) -> int:
    try:
        keys = read_key_file(args.key, passphrase=_passphrase(args.passphrase_file))
    except KeyFileError as exc:
        raise CommandError(str(exc)) from exc
    emit(keys.public.to_json(), json_mode=args.json)
    _say_fingerprints(keys.public)
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
    audit = None if action in ("list", "keys") else AuditLog(hub_keys=_hub_keys(config))
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
            # The fingerprints to confirm with the node out of band (deploy/key-ceremony.md).
            print(f"  signing key fingerprint:    {key_fingerprint(record.signing_key)}")
            print(f"  encryption key fingerprint: {key_fingerprint(record.encryption_key)}")
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
        elif action == "keys":
            await _show_keys(store, args)
        elif action == "compromise-key":
            await _compromise(store, args, audit, now)
        else:
            status = {"suspend": "suspended", "reinstate": "active", "revoke": "revoked"}[action]
            record = await set_node_status(store, args.node_id, status, now=now, audit=audit)
            print(f"{record.id} is now {record.status}")
    except RegistryError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        await store.close()
    return EXIT_OK


async def _show_keys(store: SqlStore, args: argparse.Namespace) -> None:
    node, history = await key_history(store, args.node_id)
    rows = [
        {
            "signing_fingerprint": key_fingerprint(key.signing_key),
            "encryption_fingerprint": key_fingerprint(key.encryption_key),
            "status": key_status(key),
            "valid_from": key.valid_from.isoformat(),
            "valid_until": None if key.valid_until is None else key.valid_until.isoformat(),
            "compromised_from": None
            if key.compromised_from is None
            else key.compromised_from.isoformat(),
            "signing_key": base64.b64encode(key.signing_key).decode("ascii"),
        }
        for key in history
    ]
    emit(rows, json_mode=args.json, human=_key_table)
    print(f"{len(rows)} key pair(s) of {node.id} ({node.status})", file=sys.stderr)


def _key_table(rows: list[dict[str, str]]) -> str:
    return table(
        rows, ("signing_fingerprint", "status", "valid_from", "valid_until", "compromised_from")
    )


def _signing_key_named(text: str, node_id: str, history: Sequence[NodeKeyRecord]) -> bytes:
    """The node's signing key named by its fingerprint (any spacing) or its base64."""
    compact = "".join(text.split()).lower()
    for key in history:
        if compact == key_fingerprint(key.signing_key).replace(" ", ""):
            return key.signing_key
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raw = b""
    if any(key.signing_key == raw for key in history):
        return raw
    raise CommandError(
        f"--key {text!r} is none of {node_id}'s signing keys: give its fingerprint "
        "as 'hub admin keys' prints it, or its base64 public key"
    )


def _since(text: str | None, now: datetime) -> datetime:
    if text is None:
        return now
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CommandError(f"--since {text!r} is not an RFC 3339 time: {exc}") from exc
    if moment.tzinfo is None:
        raise CommandError(f"--since {text!r} needs a time zone, e.g. 2026-03-01T09:00:00Z")
    return moment.astimezone(UTC)


async def _compromise(
    store: SqlStore, args: argparse.Namespace, audit: AuditLog | None, now: datetime
) -> None:
    _, history = await key_history(store, args.node_id)
    named = _signing_key_named(args.key, args.node_id, history)
    replacement = None
    if args.new_public_keys is not None:
        replacement = _read_public_keys(args.new_public_keys)
    outcome = await mark_key_compromised(
        store,
        args.node_id,
        named,
        since=_since(args.since, now),
        now=now,
        replacement=replacement,
        audit=audit,
    )
    print(
        f"{args.node_id}: key {key_fingerprint(named)} marked compromised from "
        f"{outcome.key.compromised_from.isoformat() if outcome.key.compromised_from else '-'}"
    )
    if outcome.replaced:
        print(f"  replacement signing key:    {key_fingerprint(outcome.node.signing_key)}")
        print(f"  replacement encryption key: {key_fingerprint(outcome.node.encryption_key)}")
        print("  the node now runs 'hub node adopt-keys'")
    if outcome.untrusted_messages:
        print(
            f"  {len(outcome.untrusted_messages)} message(s) the hub accepted signed with this "
            "key since then no longer verify at the nodes; review them:"
        )
        for message_id in outcome.untrusted_messages:
            print(f"    {message_id}")


def _node_table(nodes: list[dict[str, str]]) -> str:
    return table(nodes, ("id", "agency_type", "accreditation", "status", "display_name"))


async def _purge(config: HubConfig, *, dry_run: bool) -> PurgeReport:
    """``hub admin purge``: the retention sweep ``hub serve`` runs (deploy/retention.md)."""
    try:
        registry = load_registry(config.registry_dir)
    except PolicyRegistryError as exc:
        raise CommandError(f"policy registry: {exc}") from exc
    if registry.retention is None:  # pragma: no cover - the loader requires the file
        raise CommandError("policy registry: retention.yaml is missing")
    # A dry run writes nothing, so it needs no key to sign the log with.
    audit = None if dry_run else AuditLog(hub_keys=_hub_keys(config))
    store = await open_hub_store(config)
    try:
        service = RetentionService(
            store=store,
            files=BlobFiles(config.blob_dir),
            policy=registry.retention,
            limits=config.limits,
            clock=lambda: datetime.now(UTC),
            audit=audit,
        )
        return await service.sweep(dry_run=dry_run)
    finally:
        await store.close()


def _purge_text(report: dict[str, Any]) -> str:
    head = (
        "would purge (dry run: nothing was changed)"
        if report["dry_run"]
        else f"purged at {report['at']}"
    )
    if not report["lines"]:
        return f"{head}: nothing is due\n"
    rows = [{**line, "kind": line["kind"] or "-"} for line in report["lines"]]
    entries = "log entries that would be written" if report["dry_run"] else "log entries written"
    return (
        f"{head}:\n{table(rows, ('what', 'kind', 'reason', 'count', 'bytes'))}"
        f"{entries}: {report['log_entries']}\n"
    )


def cmd_purge(args: argparse.Namespace) -> int:
    report = asyncio.run(_purge(hub_config(args.config), dry_run=args.dry_run))
    emit(report.to_json(), json_mode=args.json, human=_purge_text)
    return EXIT_OK


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
    serve.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        help="hub processes sharing the port (default 1; more than 1 needs PostgreSQL)",
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
        ("revoke", "permanently revoke a node: it never comes back under this id"),
    ):
        p = admin_sub.add_parser(action, help=text)
        p.add_argument("--config", type=Path, required=True, help="hub TOML config file")
        p.add_argument("--node-id", required=True, help="the enrolled node")
    keys_of = admin_sub.add_parser(
        "keys",
        help="list a node's keys: current, rotated and compromised, with their periods",
    )
    keys_of.add_argument("--config", type=Path, required=True, help="hub TOML config file")
    keys_of.add_argument("--node-id", required=True, help="the enrolled node")
    add_json_flag(keys_of)
    compromise = admin_sub.add_parser(
        "compromise-key",
        help="mark one of a node's keys compromised from a time (not a rotation)",
        description=(
            "For a key someone else may hold. Signatures by the key from --since on are no "
            "longer trusted: the hub accepts nothing signed with it and nodes refuse what "
            "it signed from then on, even messages the hub accepted before anyone knew "
            "(they are listed for review). Signatures from before --since stay valid. The "
            "node's current key needs --new-public-keys, the replacement keys the node "
            "made with 'hub node prepare-keys' (check their fingerprints with the node out "
            "of band); they become current at once. A routine change of keys is not this: "
            "the node runs 'hub node rotate-keys', and every signature of the old key stays "
            "valid. To stop a node altogether, suspend or revoke it."
        ),
    )
    compromise.add_argument("--config", type=Path, required=True, help="hub TOML config file")
    compromise.add_argument("--node-id", required=True, help="the enrolled node")
    compromise.add_argument(
        "--key",
        required=True,
        help="the signing key: its fingerprint as 'hub admin keys' prints it, or base64",
    )
    compromise.add_argument(
        "--since",
        help="RFC 3339 time from which its signatures are not trusted (default: now); "
        "when it may have leaked, not when it was found out",
    )
    compromise.add_argument(
        "--new-public-keys",
        type=Path,
        help="replacement public keys JSON (needed when the key is the node's current one)",
    )
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
    purge = admin_sub.add_parser(
        "purge",
        help="expire unfinished uploads and purge ciphertext that is due",
        description="Expire uploads never finished and purge the ciphertext retention.yaml "
        "says is due, writing a 'purged' log entry for each message (deploy/retention.md). "
        "`hub serve` does the same every limits.retention_sweep_seconds.",
    )
    purge.add_argument("--config", type=Path, required=True, help="hub TOML config file")
    purge.add_argument(
        "--dry-run", action="store_true", help="list what would be purged; change nothing"
    )
    add_json_flag(purge)
    purge.set_defaults(func=cmd_purge)
