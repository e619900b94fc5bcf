"""``hub policy``: check a draft against the rules, or explain the registry."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from agency_adapters.node.checks import check_draft
from hub.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    CommandError,
    add_json_flag,
    emit,
    problem_text,
    violations_text,
    write_output,
)
from hub.cli.node import (
    check_draft_at_node,
    client_for,
    load_draft,
    node_profile,
    payload_bytes,
    problem_of,
    run_against_hub,
)
from hub.client import NodeProfile, PayloadSource
from hub.errors import HubError
from hub.model import Draft, EnvelopeFields, Violation
from hub.policy.explain import explain_markdown
from hub.policy.facts import Party, PolicyFacts
from hub.policy.registry import DEFAULT_REGISTRY_DIR, Registry, RegistryError, load_registry

__all__ = ["add_policy_commands"]

# Node ids read "<agency>.<organisation>"; offline checks infer the agency type from it.
_PREFIX_AGENCY = {
    "police": "police",
    "la": "local_authority",
    "health": "health",
    "nhs": "health",
    "probation": "probation",
    "education": "education",
    "school": "education",
    "yjs": "youth_justice",
    "yot": "youth_justice",
    "prison": "prison",
    "voluntary": "voluntary",
}


def _registry(path: Path) -> Registry:
    try:
        return load_registry(path)
    except RegistryError as exc:
        raise CommandError(str(exc)) from exc


def _fields(draft: Draft) -> EnvelopeFields:
    return EnvelopeFields.model_validate_json(
        draft.envelope.model_dump_json(exclude={"id", "sender", "created_at"})
    )


def _offline_party(node_id: str, overrides: dict[str, str]) -> Party:
    agency = overrides.get(node_id) or _PREFIX_AGENCY.get(node_id.split(".", 1)[0])
    if agency is None:
        raise CommandError(
            f"cannot tell the agency type of {node_id}; give --party {node_id}=AGENCY_TYPE "
            "or check against a hub with --node"
        )
    return Party(node_id=node_id, agency_type=agency, accreditation="OFFICIAL-SENSITIVE")


def _check(args: argparse.Namespace) -> int:
    registry = _registry(args.registry)
    # The node folder is read first: a wrong --node is a usage error, whatever the draft.
    profile = None if args.node is None else node_profile(args.node)
    try:
        draft, payload = load_draft(args.draft, registry)
    except HubError as exc:
        # The same problem, with the same detail, as 'hub node submit' prints.
        emit(problem_of(exc), json_mode=args.json, human=problem_text)
        return EXIT_REFUSED
    fields = _fields(draft)
    if profile is not None:
        return run_against_hub(_check_online(profile, fields, payload, registry, args.json))
    overrides = dict(_party_arg(p) for p in args.party)
    sender = draft.envelope.sender or args.sender
    if sender is None:
        raise CommandError(
            "offline checks need the sender: set envelope.sender, give --sender NODE_ID, "
            "or check as a node with --node DIR"
        )
    facts = PolicyFacts(
        sender=_offline_party(sender, overrides),
        recipients={r: _offline_party(r, overrides) for r in fields.recipients},
        today=datetime.now(UTC).date(),
    )
    if fields.in_reply_to is not None:
        print(
            "offline check: the message this answers is not known here, so the rules "
            "that compare a reply with it (DEC-*, REL-*, MAN-03) cannot pass; check "
            "with --node for the verdict 'hub node submit' will give",
            file=sys.stderr,
        )
    violations = check_draft(fields, payload_bytes(payload), payload.media_type, facts, registry)
    return _verdict(violations, json_mode=args.json)


def _verdict(violations: list[Violation], *, json_mode: bool) -> int:
    emit([v.model_dump() for v in violations], json_mode=json_mode, human=violations_text)
    return EXIT_REFUSED if violations else EXIT_OK


async def _check_online(
    profile: NodeProfile,
    fields: EnvelopeFields,
    payload: PayloadSource,
    registry: Registry,
    json_mode: bool,
) -> int:
    async with client_for(profile, registry=registry) as client:
        violations = await check_draft_at_node(client, fields, payload)
    return _verdict(violations, json_mode=json_mode)


def _party_arg(text: str) -> tuple[str, str]:
    node_id, sep, agency = text.partition("=")
    if not sep or not node_id or not agency:
        raise CommandError(f"--party takes NODE_ID=AGENCY_TYPE, not {text!r}")
    return node_id, agency


def _explain(args: argparse.Namespace) -> int:
    write_output(explain_markdown(_registry(args.registry)), args.out)
    return EXIT_OK


def add_policy_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="check drafts against the rules; explain the registry")
    policy_sub = policy.add_subparsers(dest="policy_action", required=True)
    check = policy_sub.add_parser(
        "check",
        help="print every rule a draft breaks, without sending it",
        description=(
            "Prints every rule the draft breaks (with --json, a JSON list, empty when there are "
            "none) and exits 0 "
            "when the draft passes, 1 when it does not. Runs the hub's envelope rules and the "
            "payload rules the nodes run (PAYLOAD-*, MAN-*, REL-03), as 'hub node submit' "
            "does. With --node the parties come from the hub's directory; otherwise from the "
            "node ids (override with --party)."
        ),
    )
    check.add_argument("draft", type=Path, help="DRAFT.json")
    check.add_argument("--node", type=Path, help="check as this node, against its hub")
    check.add_argument("--sender", help="sender node id, if the draft does not name one")
    check.add_argument(
        "--party", action="append", default=[], metavar="NODE=AGENCY", help="agency type of a node"
    )
    check.add_argument(
        "--registry", type=Path, default=DEFAULT_REGISTRY_DIR, help="registry folder"
    )
    add_json_flag(check)
    check.set_defaults(func=_check)
    explain = policy_sub.add_parser(
        "explain", help="print the registry as readable tables (markdown)"
    )
    explain.add_argument(
        "--registry", type=Path, default=DEFAULT_REGISTRY_DIR, help="registry folder"
    )
    explain.add_argument("--out", type=Path, help="write to this file (e.g. docs/policy.md)")
    explain.set_defaults(func=_explain)
