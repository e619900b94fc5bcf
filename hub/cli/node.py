"""``hub node``: act as an agency node from a node folder (see hub/client/profile.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from agency_adapters.node.release_check import check_release
from hub.cli.common import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, CommandError, print_json
from hub.client import (
    HubProblem,
    NodeClient,
    NodeProfile,
    PayloadSource,
    PreflightFailed,
    ProfileError,
    VerificationFailed,
    load_node_profile,
    write_node_profile,
)
from hub.crypto import CryptoError, KeyFileError, NodeKeys, PublicKeys, write_key_file
from hub.errors import HubError, Unprocessable
from hub.model import Draft, Envelope, EnvelopeFields, Problem
from hub.model.payload_checks import check_payload
from hub.policy.marking_text import resolve_draft_marking
from hub.policy.registry import Registry, load_registry
from hub.registry import RegistryError, check_node_id
from hub.validation import parse_wire

__all__ = [
    "add_node_commands",
    "client_for",
    "load_draft",
    "node_profile",
    "receive_inbox",
    "submit_draft",
]


def node_profile(root: Path) -> NodeProfile:
    try:
        return load_node_profile(root)
    except ProfileError as exc:
        raise CommandError(str(exc)) from exc


def client_for(profile: NodeProfile, *, registry: Registry | None = None) -> NodeClient:
    try:
        keys = profile.load_keys()
    except KeyFileError as exc:
        raise CommandError(f"node key: {exc}") from exc
    return NodeClient(
        hub_url=profile.hub_url,
        node_id=profile.node_id,
        keys=keys,
        hub_signing_key=profile.hub_signing_key,
        spool_dir=profile.spool_dir,
        registry=registry,
    )


def _problem_of(exc: HubError) -> dict[str, Any]:
    return Problem(
        type=exc.problem_type,
        title=exc.title,
        status=exc.status,
        detail=exc.detail,
        violations=tuple(exc.violations),
    ).model_dump(mode="json", exclude_none=True)


def load_draft(path: Path, registry: Registry | None = None) -> tuple[Draft, PayloadSource]:
    """Read and validate a draft; a problem JSON on failure (as the hub would answer).

    A marking written as text is read with the hub's marking parser (``registry``, by
    default the installed one); what it normalised is printed to stderr.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read draft {path}: {exc.strerror}") from exc
    _, draft = parse_wire(Draft, raw, what="draft")
    draft = _structured_marking(draft, registry)
    if draft.payload.file is not None:
        file_path = Path(draft.payload.file)
        if not file_path.is_absolute():
            file_path = path.parent / file_path
        if not file_path.is_file():
            raise CommandError(f"draft payload file {file_path} does not exist")
        return draft, PayloadSource.file(file_path, draft.payload.media_type)
    return draft, PayloadSource.json(draft.payload.content, draft.payload.media_type)


def _structured_marking(draft: Draft, registry: Registry | None) -> Draft:
    """The draft with a text marking read into its structured form (MK-14), said on stderr."""
    if draft.envelope.text_marking() is None:
        return draft
    try:
        resolution = resolve_draft_marking(draft.envelope, registry or load_registry())
    except ValueError as exc:  # the policy registry is invalid
        raise CommandError(str(exc)) from exc
    for note in resolution.notes:
        print(f"marking: {note}", file=sys.stderr)
    if resolution.envelope is None:
        raise Unprocessable(
            "The draft's marking cannot be read.",
            slug="invalid-draft",
            title="Invalid draft",
            violations=resolution.violations,
        )
    return draft.model_copy(update={"envelope": resolution.envelope})


async def submit_draft(
    client: NodeClient, draft: Draft, payload: PayloadSource, *, preflight: bool
) -> dict[str, Any]:
    if draft.envelope.sender is not None and draft.envelope.sender != client.node_id:
        raise CommandError(
            f"the draft's sender is {draft.envelope.sender} but this node is {client.node_id}"
        )
    fields = EnvelopeFields.model_validate_json(
        draft.envelope.model_dump_json(exclude={"id", "sender", "created_at"})
    )
    if preflight and payload.data is not None:
        # The hub cannot read the payload; the node checks it against its kind's model.
        problems = check_payload(fields, payload.data, today=datetime.now(UTC).date())
        if problems:
            raise PreflightFailed(problems)
    receipt = await client.send(
        fields,
        payload,
        message_id=draft.envelope.id,
        created_at=draft.envelope.created_at,
        preflight=preflight,
    )
    return receipt.model_dump(mode="json")


async def _submit(args: argparse.Namespace) -> int:
    profile = node_profile(args.node)
    try:
        draft, payload = load_draft(args.draft)
    except HubError as exc:
        print_json(_problem_of(exc))
        return EXIT_REFUSED
    async with client_for(profile) as client:
        try:
            print_json(await submit_draft(client, draft, payload, preflight=not args.no_preflight))
        except PreflightFailed as exc:
            print_json(exc.as_problem().model_dump(mode="json", exclude_none=True))
            return EXIT_REFUSED
        except HubProblem as exc:
            print_json(exc.problem.model_dump(mode="json", exclude_none=True))
            return EXIT_REFUSED
    return EXIT_OK


async def receive_inbox(
    client: NodeClient,
    profile: NodeProfile,
    *,
    wait: float,
    limit: int,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Fetch, verify, decrypt and acknowledge new messages; advance the cursor after each.

    The cursor moves only after a message's acknowledgement, so a failure part-way loses
    nothing: the next run starts with the message that failed.
    """
    profile.purge_expired(now or datetime.now(UTC))
    after = profile.read_cursor()
    page = await client.inbox(after=after, limit=limit, wait=wait)
    received: list[dict[str, Any]] = []
    for entry in page.entries:
        try:
            message = await client.fetch(entry.message_id)
        except HubProblem as problem:
            if problem.problem.status != 410:
                raise
            # A case pack whose access expired before this node fetched it: nothing to
            # keep, and the cursor moves on so the inbox never sticks on it.
            received.append({"message_id": entry.message_id, "kind": entry.kind, "expired": True})
            profile.write_cursor(entry.cursor)
            continue
        envelope = message.envelope
        summary: dict[str, Any] = {
            "message_id": envelope.id,
            "kind": envelope.kind,
            "sender": envelope.sender,
            "recipients": envelope.recipients,
            "marking": envelope.marking.render(),
            "purpose": envelope.purpose,
            "subject_ref": envelope.subject_ref,
            "case_ref": envelope.case_ref,
            "received_at": message.receipt.received_at.isoformat(),
        }
        if envelope.payload.media_type.endswith("json") and envelope.payload.size <= 16 << 20:
            plaintext = await client.open_payload(message)
            assert plaintext is not None
            rejected = _received_payload_problems(envelope, plaintext, now)
            if rejected:
                # Not acknowledged: the sender's status shows it was not accepted here.
                received.append({**summary, "rejected": rejected})
                profile.write_cursor(entry.cursor)
                continue
            summary["payload"] = json.loads(plaintext)
            if envelope.kind == "case_pack" and envelope.access_expires_at is not None:
                # Kept only until the access expiry, then purged (DESIGN.md section 6).
                profile.received_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                kept = profile.received_dir / f"{envelope.id}.json"
                fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(plaintext)
                profile.keep_until(envelope.id, kept, envelope.access_expires_at)
                summary["kept_until"] = envelope.access_expires_at.isoformat()
        else:
            profile.received_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            target = profile.received_dir / f"{envelope.id}.bin"
            partial = target.with_suffix(".part")
            try:
                with partial.open("wb") as sink:
                    await client.open_payload(message, sink)
                partial.replace(target)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            summary["payload_file"] = str(target)
        await client.acknowledge(message)
        profile.write_cursor(entry.cursor)
        received.append({k: v for k, v in summary.items() if v is not None})
    return received


def _received_payload_problems(
    envelope: Envelope, plaintext: bytes, now: datetime | None
) -> list[str]:
    """Why a received payload is rejected: its kind's model, or (a release) its envelope."""
    if envelope.kind == "release" and envelope.payload.media_type == "application/fhir+json":
        return check_release(envelope, plaintext)
    today = (now or datetime.now(UTC)).date()
    return [
        f"{v.rule} {v.path}: {v.message}" for v in check_payload(envelope, plaintext, today=today)
    ]


async def _inbox(args: argparse.Namespace) -> int:
    profile = node_profile(args.node)
    async with client_for(profile) as client:
        messages = await receive_inbox(client, profile, wait=args.wait, limit=args.limit)
    print_json(messages)
    print(f"{len(messages)} message(s) received and acknowledged", file=sys.stderr)
    return EXIT_OK


def _purge(args: argparse.Namespace) -> int:
    purged = node_profile(args.node).purge_expired(datetime.now(UTC))
    print_json(purged)
    print(f"{len(purged)} expired case pack(s) purged", file=sys.stderr)
    return EXIT_OK


async def _requests(args: argparse.Namespace) -> int:
    profile = node_profile(args.node)
    async with client_for(profile) as client:
        listed = await client.requests(overdue=args.overdue)
    print_json(listed)
    label = "overdue request(s)" if args.overdue else "request(s)"
    print(f"{len(listed)} {label}", file=sys.stderr)
    return EXIT_OK


async def _status(args: argparse.Namespace) -> int:
    profile = node_profile(args.node)
    async with client_for(profile) as client:
        status = await client.status(args.message_id)
    print_json(status.model_dump(mode="json"))
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    root: Path = args.node
    try:
        check_node_id(args.node_id)
    except RegistryError as exc:
        raise CommandError(str(exc)) from exc
    if (root / "node.toml").exists():
        raise CommandError(f"{root} is already a node folder")
    try:
        hub_keys = PublicKeys.from_json(json.loads(args.hub_public_keys.read_text()))
    except (OSError, ValueError, KeyFileError) as exc:
        raise CommandError(f"hub public keys {args.hub_public_keys}: {exc}") from exc
    keys = NodeKeys.generate()
    write_key_file(root / "keys" / "node.key", keys)
    write_node_profile(
        root,
        node_id=args.node_id,
        agency_type=args.agency_type,
        hub_url=args.hub_url,
        hub_id=args.hub_id,
        hub_signing_key=hub_keys.signing,
    )
    (root / "node.pub.json").write_text(json.dumps(keys.public.to_json(), indent=2) + "\n")
    print(f"node folder {root} ready; enrol it at the hub with {root / 'node.pub.json'}")
    return EXIT_OK


def _run(coro_fn: Any) -> Any:
    def runner(args: argparse.Namespace) -> int:
        try:
            result: int = asyncio.run(coro_fn(args))
        except HubProblem as exc:
            print_json(exc.problem.model_dump(mode="json", exclude_none=True))
            return EXIT_REFUSED
        except (VerificationFailed, CryptoError) as exc:
            raise CommandError(f"verification failed: {exc}", EXIT_ERROR) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise CommandError(f"cannot reach the hub: {exc}", EXIT_ERROR) from exc
        return result

    return runner


def add_node_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = sub.add_parser("node", help="act as an agency node")
    node_sub = node.add_subparsers(dest="node_action", required=True)

    init = node_sub.add_parser("init", help="create a node folder with fresh keys")
    init.add_argument("--node", type=Path, required=True, help="node folder to create")
    init.add_argument("--node-id", required=True)
    init.add_argument("--agency-type", required=True)
    init.add_argument("--hub-url", required=True)
    init.add_argument("--hub-id", required=True)
    init.add_argument(
        "--hub-public-keys", type=Path, required=True, help="the hub's public keys JSON"
    )
    init.set_defaults(func=_init)

    submit = node_sub.add_parser(
        "submit",
        help="validate, encrypt, sign and submit a draft",
        description=(
            "A draft is an unsigned envelope plus a plaintext payload "
            "(schemas/json/draft.schema.json). Prints the hub's receipt as JSON and exits 0, "
            "or prints the problem JSON and exits 1."
        ),
    )
    submit.add_argument("--node", type=Path, required=True, help="node folder")
    submit.add_argument("--no-preflight", action="store_true", help="skip the node's own checks")
    submit.add_argument("draft", type=Path, help="DRAFT.json")
    submit.set_defaults(func=_run(_submit))

    inbox = node_sub.add_parser("inbox", help="fetch, verify, decrypt, acknowledge and print")
    inbox.add_argument("--node", type=Path, required=True, help="node folder")
    inbox.add_argument("--wait", type=float, default=0.0, help="long-poll up to this many seconds")
    inbox.add_argument("--limit", type=int, default=100)
    inbox.set_defaults(func=_run(_inbox))

    purge = node_sub.add_parser("purge", help="delete kept case packs whose access has expired")
    purge.add_argument("--node", type=Path, required=True)
    purge.set_defaults(func=_purge)

    requests = node_sub.add_parser(
        "requests", help="information requests this node is party to, with deadlines"
    )
    requests.add_argument("--node", type=Path, required=True)
    requests.add_argument("--overdue", action="store_true", help="only those past their deadline")
    requests.set_defaults(func=_run(_requests))

    status = node_sub.add_parser("status", help="per-recipient delivery state of a sent message")
    status.add_argument("--node", type=Path, required=True)
    status.add_argument("message_id")
    status.set_defaults(func=_run(_status))
