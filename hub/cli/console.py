"""``hub node console``: serve the node console for one agency node."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import ssl
import sys
from pathlib import Path

from hub.cli.common import EXIT_OK, CommandError

__all__ = ["add_console_command"]


def _serve(args: argparse.Namespace) -> int:
    # Imported here: `hub --help` and other commands need none of the web stack.
    from aiohttp import web

    from agency_adapters.node.console import (
        ConsoleSettings,
        ConsoleSettingsError,
        NodeServices,
        create_console_app,
    )
    from agency_adapters.node.console.app import ConsoleAccessLogger
    from hub.client import ProfileError
    from hub.crypto import KeyFileError

    try:
        settings = ConsoleSettings(
            node_dir=args.node,
            host=args.host,
            port=args.port,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            sync_wait=args.sync_wait,
        )
    except ConsoleSettingsError as exc:
        raise CommandError(str(exc)) from exc
    try:
        services = NodeServices.open(args.node)
    except ProfileError as exc:
        raise CommandError(str(exc)) from exc
    except KeyFileError as exc:
        raise CommandError(f"node key: {exc}") from exc
    if not services.users.list_users():
        services.users.close()
        services.store.close()
        raise CommandError(
            f"{args.node} has no console users yet; add one first with "
            f'\'hub node users add --node {args.node} --username NAME --name "Full Name" '
            "--role NODE_ADMIN --vetting BPSS'"
        )
    ssl_context = None
    if settings.tls:
        assert settings.tls_cert is not None
        assert settings.tls_key is not None
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ssl_context.load_cert_chain(settings.tls_cert, settings.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise CommandError(f"tls_cert/tls_key: cannot load them: {exc}") from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_console_app(settings, services)

    async def run() -> None:
        runner = web.AppRunner(app, access_log_class=ConsoleAccessLogger)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {settings.port} on {settings.host} is already in use; "
                    "choose another with --port"
                ) from exc
            raise CommandError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from exc
        print(
            f"console for {services.node_id} at {settings.origin}/ (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return EXIT_OK


def add_console_command(node_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    console = node_sub.add_parser(
        "console",
        help="serve the node console: the web application for the agency's people",
        description=(
            "Serve the node console for one agency node. It runs at the node, because only "
            "the node holds the keys that open its messages. Loopback only unless TLS is "
            "configured. Add users first with 'hub node users add'."
        ),
    )
    console.add_argument("--node", type=Path, required=True, help="the node folder")
    console.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: loopback only)"
    )
    console.add_argument("--port", type=int, default=8470, help="port (default: 8470)")
    console.add_argument("--tls-cert", type=Path, help="TLS certificate chain (PEM)")
    console.add_argument("--tls-key", type=Path, help="TLS private key (PEM)")
    console.add_argument(
        "--sync-wait",
        type=float,
        default=20.0,
        help="long-poll the hub for new messages this many seconds at a time (0: off)",
    )
    console.set_defaults(func=_serve)
