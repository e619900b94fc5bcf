"""``hub audit``: verify the transparency log; the disclosure register; ``hub report``."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hub.audit.verify import LogVerification, default_workers, verify_store_log
from hub.cli.admin import hub_config, hub_public_signing_key, open_hub_store
from hub.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    CommandError,
    add_json_flag,
    emit,
    fields,
    print_json,
    write_output,
)
from hub.config import HubConfig

if TYPE_CHECKING:
    from hub.audit.register import Disclosure
    from hub.audit.report import AssuranceReport

__all__ = ["add_audit_commands", "verify_hub_log"]


async def verify_hub_log(
    config: HubConfig, hub_signing_key: bytes, *, workers: int = 0
) -> LogVerification:
    """Recompute the whole log from the hub's store, page by page (see hub/audit/verify.py)."""
    store = await open_hub_store(config)
    try:
        # Streams, and copes with hub processes appending meanwhile (on PostgreSQL each
        # statement sees the latest commits): see verify_store_log.
        return await verify_store_log(
            store, hub_signing_key, workers=workers, database_url=config.database_url
        )
    finally:
        await store.close()


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--workers must be a whole number, got {text!r}"
        ) from None
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError(f"--workers must be from 0 to 64, got {value}")
    return value


def _verify(args: argparse.Namespace) -> int:
    config = hub_config(args.config)
    workers = default_workers() if args.workers is None else args.workers
    result = asyncio.run(verify_hub_log(config, hub_public_signing_key(config), workers=workers))
    emit(
        {
            "ok": result.ok,
            "entries": result.entries,
            "signed_tree_heads": result.heads,
            "first_bad_entry": result.first_bad_index,
            "problem": result.problem,
        },
        json_mode=args.json,
    )
    return EXIT_OK if result.ok else EXIT_ERROR


def _disclosures(args: argparse.Namespace) -> int:
    # Imported here: ``hub audit verify`` needs none of the reports (nor the server).
    from hub.audit.register import render_register_text
    from hub.server.reports import load_register

    config = hub_config(args.config)

    async def load() -> list[Disclosure]:
        store = await open_hub_store(config)
        try:
            return await load_register(store, args.subject_ref, node_id=None)
        finally:
            await store.close()

    disclosures = asyncio.run(load())
    if args.json:
        print_json([d.to_json() for d in disclosures])
    else:
        print(render_register_text(disclosures), end="")
    return EXIT_OK


def _assurance(args: argparse.Namespace) -> int:
    from hub.audit.report import quarter_of
    from hub.policy.registry import RegistryError, load_registry
    from hub.server.reports import load_assurance

    config = hub_config(args.config)
    try:
        registry = load_registry(config.registry_dir)
    except RegistryError as exc:
        raise CommandError(str(exc)) from exc

    now = datetime.now(UTC)
    # "current" is the quarter today falls in (UTC), so the same command always reports now.
    period = quarter_of(now) if args.period.strip().lower() == "current" else args.period

    async def load() -> AssuranceReport:
        store = await open_hub_store(config)
        try:
            return await load_assurance(store, registry, period, now)
        finally:
            await store.close()

    try:
        report = asyncio.run(load())
    except ValueError as exc:
        raise CommandError(f"--period: {exc}") from exc
    if args.json or args.format == "json":
        text = json.dumps(report.to_json(), indent=2) + "\n"
    elif args.format == "csv":
        text = report.to_csv()
    elif args.format == "svg":
        text = report.to_svg()
    else:
        text = fields(report.to_json())
    write_output(text, args.out)
    return EXIT_OK


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
    verify.add_argument(
        "--workers",
        type=_workers,
        help="processes that read and check pages of the log alongside this one "
        "(default: one per CPU core but one, at most 4; 0: none)",
    )
    add_json_flag(verify)
    verify.set_defaults(func=_verify)
    disclosures = audit_sub.add_parser(
        "disclosures",
        help="what was shared about a subject: by whom, with whom, when, under which gateways",
    )
    disclosures.add_argument("subject_ref", help="the opaque subject reference")
    disclosures.add_argument("--config", type=Path, required=True, help="hub TOML config file")
    disclosures.add_argument("--json", action="store_true", help="JSON instead of a table")
    disclosures.set_defaults(func=_disclosures)

    report = sub.add_parser("report", help="reports for information governance and boards")
    report_sub = report.add_subparsers(dest="report_action", required=True)
    assurance = report_sub.add_parser(
        "assurance",
        help="referrals, triage, requests, decisions, releases and Channel cases for a period",
    )
    assurance.add_argument("--config", type=Path, required=True, help="hub TOML config file")
    assurance.add_argument(
        "--period",
        default="current",
        help="a quarter (2026Q4), a month (2026-07), a year (2026) or 'current' (the default: "
        "this quarter)",
    )
    assurance.add_argument(
        "--format",
        choices=("text", "json", "csv", "svg"),
        default="text",
        help="text (for people, the default), json, csv or svg",
    )
    assurance.add_argument("--json", action="store_true", help="the same as --format json")
    assurance.add_argument("--out", type=Path, help="write to this file")
    assurance.set_defaults(func=_assurance)
