"""``hub bridge``: the secure-email bridge for partners without a node (docs/email-bridge.md).

::

    hub bridge init --node DIR --config bridge.toml        # folder, keyring, bridge key
    hub bridge key --node DIR                              # the bridge's public key
    hub bridge partners add --node DIR --config bridge.toml --node-id ID --email ADDRESS \\
        --name NAME --organisation ORG --agency-type TYPE --key KEY.asc --fingerprint FPR
    hub bridge partners list --node DIR
    hub bridge partners disable --node DIR --node-id ID
    hub bridge partners key --node DIR --node-id ID --key KEY.asc   # revocation, new expiry
    hub bridge deliver --node DIR --config bridge.toml      # one run: fetch and mail
    hub bridge deliveries --node DIR [--state failed]       # every delivery and its outcome
    hub bridge inbound --node DIR                           # every mail received, and why
    hub bridge serve --node DIR --config bridge.toml        # listen, and deliver every 30 s
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agency_adapters.email_pgp import (
    BridgeConfigError,
    BridgeFolder,
    BridgeStore,
    DeliveryReport,
    EnrolmentError,
    SmtpTransport,
    add_partner,
    deliver_once,
    disable_partner,
    init_bridge,
    list_partners,
    load_bridge_config,
    open_keyring,
    update_partner_key,
)
from agency_adapters.email_pgp.config import BridgeConfig
from agency_adapters.email_pgp.inbound import InboundOutcome, receive_mail
from agency_adapters.email_pgp.listener import start_listener
from agency_adapters.email_pgp.outbound import default_clients
from hub.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    CommandError,
    add_json_flag,
    emit,
    write_output,
)
from hub.crypto.openpgp import OpenPGPError
from hub.policy.registry import RegistryError, load_registry

__all__ = ["add_bridge_commands"]

HELP = "the secure-email bridge for partners without a node"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _config(path: Path) -> BridgeConfig:
    try:
        return load_bridge_config(path)
    except BridgeConfigError as exc:
        raise CommandError(str(exc)) from None


def _folder(path: Path, *, must_exist: bool = True) -> BridgeFolder:
    folder = BridgeFolder(path.resolve())
    if must_exist and not folder.passphrase_file.exists():
        raise CommandError(f"{path} is not a bridge folder; create it with: hub bridge init")
    return folder


def _read_key(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"--key {path}: cannot read an ASCII-armoured key: {exc}") from None


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _init(args: argparse.Namespace) -> int:
    config = _config(args.config)
    folder = _folder(args.node, must_exist=False)
    try:
        fingerprint = init_bridge(folder, config)
    except (EnrolmentError, OpenPGPError) as exc:
        raise CommandError(str(exc)) from None
    emit(
        {
            "bridge": str(folder.root),
            "address": config.address,
            "fingerprint": fingerprint,
            "next": "give partners the bridge's public key (hub bridge key) and read them "
            "this fingerprint out of band",
        },
        json_mode=args.json,
    )
    return EXIT_OK


def _key(args: argparse.Namespace) -> int:
    folder = _folder(args.node)
    try:
        keyring = open_keyring(folder)
        public = keyring.export_own_public_key()
    except (EnrolmentError, OpenPGPError) as exc:
        raise CommandError(str(exc)) from None
    write_output(public, args.out)
    return EXIT_OK


def _add(args: argparse.Namespace) -> int:
    config = _config(args.config)
    folder = _folder(args.node)
    try:
        registry = load_registry()
    except RegistryError as exc:
        raise CommandError(str(exc)) from None
    try:
        partner, public_keys = add_partner(
            folder,
            config,
            registry,
            node_id=args.node_id,
            email=args.email,
            name=args.name,
            organisation=args.organisation,
            agency_type=args.agency_type,
            armored_key=_read_key(args.key),
            fingerprint=args.fingerprint,
            now=_now(),
        )
    except EnrolmentError as exc:
        raise CommandError(str(exc), EXIT_REFUSED) from None
    emit(
        {
            "node_id": partner.node_id,
            "email": partner.email,
            "fingerprint": partner.fingerprint,
            "public_keys": str(public_keys),
            "next": (
                f"enrol the partner at the hub: hub admin enrol --config HUB.toml --node-id "
                f"{partner.node_id} --agency-type {partner.agency_type} --public-keys "
                f"{public_keys} --display-name '{partner.organisation}'"
            ),
        },
        json_mode=args.json,
    )
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    folder = _folder(args.node)
    try:
        views = list_partners(folder, _now())
    except EnrolmentError as exc:
        raise CommandError(str(exc)) from None
    emit(
        [
            {
                "node_id": v.partner.node_id,
                "email": v.partner.email,
                "name": v.partner.name,
                "organisation": v.partner.organisation,
                "agency_type": v.partner.agency_type,
                "status": v.partner.status,
                "key": v.key_state,
                "fingerprint": v.partner.fingerprint,
            }
            for v in views
        ],
        json_mode=args.json,
    )
    return EXIT_OK


def _disable(args: argparse.Namespace) -> int:
    folder = _folder(args.node)
    try:
        partner = disable_partner(folder, args.node_id, _now())
    except EnrolmentError as exc:
        raise CommandError(str(exc)) from None
    emit(
        {
            "node_id": partner.node_id,
            "status": partner.status,
            "next": f"also suspend it at the hub: hub admin suspend --config HUB.toml "
            f"--node-id {partner.node_id}",
        },
        json_mode=args.json,
    )
    return EXIT_OK


def _update_key(args: argparse.Namespace) -> int:
    folder = _folder(args.node)
    try:
        view = update_partner_key(folder, args.node_id, _read_key(args.key), _now())
    except EnrolmentError as exc:
        raise CommandError(str(exc), EXIT_REFUSED) from None
    emit(
        {
            "node_id": view.partner.node_id,
            "fingerprint": view.partner.fingerprint,
            "key": view.key_state,
        },
        json_mode=args.json,
    )
    return EXIT_OK


def _report(report: DeliveryReport) -> dict[str, Any]:
    return {
        "queued": report.queued,
        "sent": report.sent,
        "failed": [{"message_id": m, "reason": r} for m, r in report.failed],
        "retrying": [{"message_id": m, "reason": r} for m, r in report.retrying],
        "sync_errors": [{"node_id": n, "error": e} for n, e in report.sync_errors],
        "reminded": report.reminded,
    }


async def _deliver_run(folder: BridgeFolder, config: BridgeConfig) -> DeliveryReport:
    try:
        registry = load_registry()
    except RegistryError as exc:
        raise CommandError(str(exc)) from None
    try:
        keyring = open_keyring(folder)
    except EnrolmentError as exc:
        raise CommandError(str(exc)) from None
    return await deliver_once(
        folder, config, registry, keyring, SmtpTransport(config.smtp), clock=_now
    )


def _deliver(args: argparse.Namespace) -> int:
    config = _config(args.config)
    folder = _folder(args.node)
    report = asyncio.run(_deliver_run(folder, config))
    emit(_report(report), json_mode=args.json)
    return EXIT_REFUSED if report.failed else EXIT_OK


def _deliveries(args: argparse.Namespace) -> int:
    folder = _folder(args.node)
    with BridgeStore.open(folder) as store:
        rows = store.deliveries(state=args.state)
    emit(
        [
            {
                "message_id": d.message_id,
                "partner": d.node_id,
                "kind": d.kind,
                "marking": d.marking,
                "state": d.state,
                "attempts": d.attempts,
                "updated_at": _ts(d.updated_at),
                "reminded_at": None if d.reminded_at is None else _ts(d.reminded_at),
                "detail": d.detail,
            }
            for d in rows
        ],
        json_mode=args.json,
    )
    return EXIT_OK


def _inbound(args: argparse.Namespace) -> int:
    folder = _folder(args.node)
    with BridgeStore.open(folder) as store:
        rows = store.inbound()
    emit(
        [
            {
                "received_at": _ts(r.received_at),
                "from": r.mail_from,
                "partner": r.node_id,
                "outcome": r.outcome,
                "reason": r.reason,
                "rules": r.rules,
                "message_id": r.message_id,
            }
            for r in rows
        ],
        json_mode=args.json,
    )
    return EXIT_OK


async def _serve_loop(folder: BridgeFolder, config: BridgeConfig, interval: float) -> None:
    log = logging.getLogger("seh.bridge")
    try:
        registry = load_registry()
        keyring = open_keyring(folder)
    except (RegistryError, EnrolmentError) as exc:
        raise CommandError(str(exc)) from None
    listener = None
    if config.listen is None:
        log.warning("bridge: no [listen] in the config: partners' mail is not received")
    else:
        transport = SmtpTransport(config.smtp)

        async def process(raw: bytes, mail_from: str) -> InboundOutcome:
            return await receive_mail(
                raw,
                mail_from=mail_from,
                folder=folder,
                config=config,
                registry=registry,
                keyring=keyring,
                transport=transport,
                clock=_now,
                clients=default_clients(config),
            )

        try:
            listener = await start_listener(config.listen, process)
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {config.listen.host}:{config.listen.port}: {exc.strerror}"
            ) from None
    log.info("bridge: delivering for %s every %s s", folder.root, interval)
    try:
        await _deliver_forever(folder, config, interval, log)
    finally:
        if listener is not None:
            listener.close()


async def _deliver_forever(
    folder: BridgeFolder, config: BridgeConfig, interval: float, log: logging.Logger
) -> None:
    while True:
        report = await _deliver_run(folder, config)
        if report.queued or report.sent or report.failed or report.retrying:
            log.info(
                "bridge: %d queued, %d sent, %d failed, %d to retry",
                len(report.queued),
                len(report.sent),
                len(report.failed),
                len(report.retrying),
            )
        await asyncio.sleep(interval)


def _serve(args: argparse.Namespace) -> int:
    config = _config(args.config)
    folder = _folder(args.node)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("gnupg").setLevel(logging.WARNING)  # it logs command lines at INFO
    asyncio.run(_serve_loop(folder, config, args.interval))
    return EXIT_OK


def add_bridge_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bridge = sub.add_parser("bridge", help=HELP, description=__doc__.split("::")[0].strip())
    bridge_sub = bridge.add_subparsers(dest="bridge_action", required=True)

    def node_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--node", type=Path, required=True, help="the bridge's folder")

    def config_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, required=True, help="bridge.toml")

    init = bridge_sub.add_parser("init", help="create the bridge's folder, keyring and key pair")
    node_arg(init)
    config_arg(init)
    add_json_flag(init)
    init.set_defaults(func=_init)

    key = bridge_sub.add_parser("key", help="print the bridge's OpenPGP public key")
    node_arg(key)
    key.add_argument("--out", type=Path, help="write the key to this file")
    key.set_defaults(func=_key)

    partners = bridge_sub.add_parser("partners", help="enrol, list and disable email partners")
    partners_sub = partners.add_subparsers(dest="partners_action", required=True)
    add = partners_sub.add_parser(
        "add",
        help="enrol a partner with its OpenPGP key, confirmed by fingerprint",
        description=(
            "Enrol a partner: its address (on the secure email list), its name and "
            "organisation (printed on every page of its case packs), its agency type, and "
            "its OpenPGP public key, which is imported only if its fingerprint is the one "
            "--fingerprint gives, as confirmed with the partner out of band."
        ),
    )
    node_arg(add)
    config_arg(add)
    add.add_argument(
        "--node-id", required=True, help="the partner's node id, e.g. education.uni-bath"
    )
    add.add_argument("--email", required=True, help="the partner's secure mail address")
    add.add_argument("--name", required=True, help="the person, as their case packs name them")
    add.add_argument("--organisation", required=True, help="the partner's organisation")
    add.add_argument("--agency-type", required=True, help="education, voluntary, health, ...")
    add.add_argument("--key", type=Path, required=True, help="the partner's public key (.asc)")
    add.add_argument(
        "--fingerprint", required=True, help="the key's full fingerprint, confirmed out of band"
    )
    add_json_flag(add)
    add.set_defaults(func=_add)

    lister = partners_sub.add_parser("list", help="every partner, its status and its key's state")
    node_arg(lister)
    add_json_flag(lister)
    lister.set_defaults(func=_list)

    disable = partners_sub.add_parser("disable", help="stop sending to and fetching for a partner")
    node_arg(disable)
    disable.add_argument("--node-id", required=True, help="the partner's node id")
    add_json_flag(disable)
    disable.set_defaults(func=_disable)

    update = partners_sub.add_parser(
        "key", help="import a newer copy of a partner's enrolled key (a revocation, a new expiry)"
    )
    node_arg(update)
    update.add_argument("--node-id", required=True, help="the partner's node id")
    update.add_argument("--key", type=Path, required=True, help="the key (.asc)")
    add_json_flag(update)
    update.set_defaults(func=_update_key)

    deliver = bridge_sub.add_parser(
        "deliver", help="one run: fetch every partner's messages and mail them"
    )
    node_arg(deliver)
    config_arg(deliver)
    add_json_flag(deliver)
    deliver.set_defaults(func=_deliver)

    deliveries = bridge_sub.add_parser("deliveries", help="every delivery and its outcome")
    node_arg(deliveries)
    deliveries.add_argument("--state", choices=("pending", "sent", "failed"), help="only these")
    add_json_flag(deliveries)
    deliveries.set_defaults(func=_deliveries)

    inbound = bridge_sub.add_parser(
        "inbound", help="every mail partners sent: accepted or refused, and why"
    )
    node_arg(inbound)
    add_json_flag(inbound)
    inbound.set_defaults(func=_inbound)

    serve = bridge_sub.add_parser(
        "serve",
        help="run the bridge: receive partners' mail ([listen]) and deliver every --interval s",
    )
    node_arg(serve)
    config_arg(serve)
    serve.add_argument("--interval", type=float, default=30.0, help="seconds between runs (30)")
    serve.set_defaults(func=_serve)
