"""``hub audit``: verify the transparency log; the disclosure register; ``hub report``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from hub.audit.verify import LogVerification, verify_log
from hub.cli.admin import hub_config, hub_public_signing_key
from hub.cli.common import EXIT_ERROR, EXIT_OK, print_json
from hub.config import HubConfig
from hub.store import SqlStore

__all__ = ["add_audit_commands", "verify_hub_log"]


async def verify_hub_log(config: HubConfig, hub_signing_key: bytes) -> LogVerification:
    """Recompute the whole log from the hub's store (see hub/audit/verify.py)."""
    store = SqlStore.open(config.database_url)
    try:
        await store.create_schema()
        async with store.read() as view:
            rows = await view.audit.rows(0, 2**62)
            heads = await view.audit.heads()
            size, _ = await view.audit.state_for_update()
    finally:
        await store.close()
    return verify_log(rows, heads, state_size=size, hub_signing_key=hub_signing_key)


def _verify(args: argparse.Namespace) -> int:
    config = hub_config(args.config)
    result = asyncio.run(verify_hub_log(config, hub_public_signing_key(config)))
    print_json(
        {
            "ok": result.ok,
            "entries": result.entries,
            "signed_tree_heads": result.heads,
            "first_bad_entry": result.first_bad_index,
            "problem": result.problem,
        }
    )
    return EXIT_OK if result.ok else EXIT_ERROR


def add_audit_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="verify the transparency log; what was shared about whom")
    audit_sub = audit.add_subparsers(dest="audit_action", required=True)
    verify = audit_sub.add_parser(
        "verify",
        help="recompute the log from the store and check every signed tree head",
        description=(
            "Exits 0 when every entry and tree head checks out; otherwise prints the first "
            "entry that does not match and exits 3."
        ),
    )
    verify.add_argument("--config", type=Path, required=True, help="hub TOML config file")
    verify.set_defaults(func=_verify)
