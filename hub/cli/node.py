"""``hub node``: act as an agency node from a node folder (see hub/client/profile.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from collections import Counter
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import ValidationError

from agency_adapters.health.disclosure_log import DisclosureLog, DisclosureLogError
from agency_adapters.health.release_builder import InvalidRecord, UnsupportedScope
from agency_adapters.node.checks import (
    check_draft_at_node,
    payload_bytes,
)
from agency_adapters.node.release import ReleasePlanError, disclosure_record, plan_release
from agency_adapters.node.store import (
    NodeStore,
    NodeStoreError,
    node_database_path,
    open_node_store,
)
from agency_adapters.node.sync import SyncResult, retire_legacy_files, sync_inbox
from hub.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    CommandError,
    add_json_flag,
    add_progress_flag,
    emit,
    fields,
    problem_text,
    progress_for,
    table,
)
from hub.cli.console import add_console_command
from hub.cli.drafts import add_draft_command
from hub.cli.outbox import discard, outcome_row, pending_row, resend_and_tell
from hub.cli.rotate import add_key_rotation_commands
from hub.cli.show import add_show_command
from hub.cli.users import add_users_commands
from hub.client import (
    HubProblem,
    NodeClient,
    NodeProfile,
    Outbox,
    OutboxConflict,
    OutboxError,
    PayloadSource,
    PreflightFailed,
    ProfileError,
    Progress,
    SendUnconfirmed,
    VerificationFailed,
    load_node_profile,
    write_node_profile,
)
from hub.crypto import (
    CryptoError,
    KeyFileError,
    NodeKeys,
    PublicKeys,
    key_fingerprint,
    write_key_file,
)
from hub.errors import HubError, Unprocessable
from hub.model import (
    Author,
    Draft,
    EnvelopeFields,
    Problem,
    StrictJSONError,
    loads_strict,
)
from hub.model.jsonio import without_comments
from hub.policy.marking_text import resolve_draft_marking
from hub.policy.registry import Registry, load_registry
from hub.registry import RegistryError, check_node_id
from hub.validation import parse_wire

__all__ = [
    "add_node_commands",
    "check_draft_at_node",
    "client_for",
    "load_draft",
    "node_profile",
    "payload_bytes",
    "problem_of",
    "receive_inbox",
    "run_against_hub",
    "submit_draft",
]


def node_profile(root: Path) -> NodeProfile:
    try:
        return load_node_profile(root)
    except ProfileError as exc:
        raise CommandError(str(exc)) from exc


def client_for(
    profile: NodeProfile, *, registry: Registry | None = None, progress: Progress | None = None
) -> NodeClient:
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
        progress=progress,
        # Sealed, signed messages wait here for their receipts (hub node outbox).
        outbox=Outbox(profile.outbox_dir),
    )


def problem_of(exc: HubError) -> dict[str, Any]:
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
    raw = without_comments(raw)  # a 'hub node draft' template keeps its // comments
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
    try:
        pending = await client.pending_draft(
            fields, payload, message_id=draft.envelope.id, created_at=draft.envelope.created_at
        )
    except OutboxConflict as exc:
        raise CommandError(str(exc)) from exc
    if pending is not None:
        # Sent before, and its answer never came: the kept bytes go again, unchecked and
        # unsealed (they were checked then), and the hub answers with its first receipt.
        print(
            f"outbox: this draft was sent as {pending.message_id} and not confirmed; "
            "resending the same sealed message",
            file=sys.stderr,
        )
    elif preflight:
        # The envelope rules and the payload rules, as the hub and the receiver run them.
        problems = await check_draft_at_node(client, fields, payload)
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
        emit(problem_of(exc), json_mode=args.json, human=problem_text)
        return EXIT_REFUSED
    async with client_for(profile, progress=progress_for(args)) as client:
        try:
            receipt = await submit_draft(client, draft, payload, preflight=not args.no_preflight)
        except PreflightFailed as exc:
            refused = exc.as_problem().model_dump(mode="json", exclude_none=True)
            emit(refused, json_mode=args.json, human=problem_text)
            return EXIT_REFUSED
        except SendUnconfirmed as exc:
            # Not refused: perhaps delivered. Kept in the outbox for the next run.
            emit(exc.problem.model_dump(mode="json", exclude_none=True), json_mode=args.json)
            return EXIT_ERROR
        except HubProblem as exc:
            emit(exc.problem.model_dump(mode="json", exclude_none=True), json_mode=args.json)
            return EXIT_REFUSED
        emit(receipt, json_mode=args.json, human=_receipt_text)
        # Then whatever an earlier run left unconfirmed (said on stderr only).
        await resend_and_tell(client)
    return EXIT_OK


def _receipt_text(receipt: dict[str, Any]) -> str:
    return "accepted by the hub; its signed receipt:\n" + fields(receipt, "  ")


async def receive_inbox(
    client: NodeClient,
    profile: NodeProfile,
    *,
    wait: float,
    limit: int,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Sync the inbox into the node's store (``agency_adapters.node.sync``); the summaries
    ``hub node inbox`` prints."""
    with open_node_store(profile) as store:
        results = await sync_inbox(client, profile, store, wait=wait, limit=limit, now=now)
    return [result.summary for result in results]


def inbox_tally(results: Sequence[SyncResult]) -> str:
    """The stderr line of ``hub node inbox``: "3 new message(s): 2 acknowledged, 1 rejected"."""
    counts = Counter(result.state for result in results)
    parts = [f"{counts[state]} {state}" for state in ("acknowledged", "rejected", "expired")]
    before = sum(1 for result in results if result.answered_before)
    tally = ", ".join(part for part in parts if not part.startswith("0 "))
    if before:
        tally += f" ({before} answered on an earlier run)"
    return f"{len(results)} new message(s)" + (f": {tally}" if tally else "")


async def _inbox(args: argparse.Namespace) -> int:
    profile = node_profile(args.node)
    with _store(profile) as store:
        async with client_for(profile, progress=progress_for(args)) as client:
            # First what an earlier run sealed and sent without getting its receipt.
            await resend_and_tell(client)
            results = await sync_inbox(client, profile, store, wait=args.wait, limit=args.limit)
    emit([result.summary for result in results], json_mode=args.json, human=_inbox_text)
    print(inbox_tally(results), file=sys.stderr)
    return EXIT_OK


_INBOX_COLUMNS = ("message_id", "kind", "sender", "marking", "received_at", "outcome")


def _inbox_text(messages: list[dict[str, Any]]) -> str:
    """One line per message: what it is and what this node did with it (--json: all)."""
    rows = []
    for message in messages:
        outcome = (
            "expired before it was fetched"
            if message.get("expired")
            else f"rejected: {'; '.join(message['rejected'])}"
            if message.get("rejected")
            else "answered before"
            if message.get("answered_before")
            else f"saved to {message['payload_file']}"
            if message.get("payload_file")
            else "acknowledged"
        )
        rows.append({**message, "outcome": outcome})
    return table(rows, _INBOX_COLUMNS)


def _store(profile: NodeProfile) -> NodeStore:
    try:
        return open_node_store(profile)
    except (NodeStoreError, ValueError, sqlite3.Error) as exc:
        raise CommandError(f"the node's store {node_database_path(profile)}: {exc}") from exc


def _purge(args: argparse.Namespace) -> int:
    profile = node_profile(args.node)
    now = datetime.now(UTC)
    with _store(profile) as store:
        purged = store.purge(now)
    retire_legacy_files(profile, now)
    emit(
        [
            {
                "message_id": p.message_id,
                "direction": p.direction,
                "kind": p.kind,
                "reason": p.reason,
                "purged_at": p.purged_at.isoformat(),
            }
            for p in purged
        ],
        json_mode=args.json,
    )
    print(f"{len(purged)} payload(s) purged", file=sys.stderr)
    return EXIT_OK


async def _requests(args: argparse.Namespace) -> int:
    profile = node_profile(args.node)
    async with client_for(profile) as client:
        listed = await client.requests(overdue=args.overdue)
    emit(listed, json_mode=args.json, human=_requests_text)
    label = "overdue request(s)" if args.overdue else "request(s)"
    print(f"{len(listed)} {label}", file=sys.stderr)
    return EXIT_OK


_REQUEST_COLUMNS = (
    "request_id",
    "state",
    "requester",
    "disclosers",
    "due_at",
    "overdue",
    "decision_outcome",
    "decision_id",
)


def _requests_text(listed: list[dict[str, Any]]) -> str:
    return table(listed, _REQUEST_COLUMNS)


async def _status(args: argparse.Namespace) -> int:
    profile = node_profile(args.node)
    async with client_for(profile) as client:
        status = await client.status(args.message_id)
    emit(status.model_dump(mode="json"), json_mode=args.json)
    for recipient in status.recipients:
        if recipient.state == "rejected":
            print(
                f"{recipient.node} rejected the message: {', '.join(recipient.rejection_rules)}",
                file=sys.stderr,
            )
    return EXIT_OK


async def _release(args: argparse.Namespace) -> int:
    profile = node_profile(args.node)
    try:
        record = loads_strict(args.records.read_bytes())
    except OSError as exc:
        raise CommandError(f"cannot read the records {args.records}: {exc.strerror}") from exc
    except StrictJSONError as exc:
        raise CommandError(f"the records {args.records} are not valid JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise CommandError(f"the records {args.records} are not a FHIR Bundle (a JSON object)")
    author = None
    if args.author is not None:
        try:
            author = Author.model_validate(
                {"user_ref": args.author, "role": args.role, "vetting": args.vetting}
            )
        except ValidationError as exc:
            raise CommandError(f"--author/--role/--vetting: {exc}") from exc
    async with client_for(profile) as client:
        try:
            plan = await plan_release(client, args.decision, record, author=author)
        except (ReleasePlanError, InvalidRecord, UnsupportedScope) as exc:
            raise CommandError(str(exc)) from exc
        summary = plan.summary()
        problems = await check_draft_at_node(client, plan.fields, plan.payload())
        if problems:
            refused = PreflightFailed(problems).as_problem().model_dump(mode="json")
            emit(refused, json_mode=args.json, human=problem_text)
            print("the release was not sent: it breaks the rules above", file=sys.stderr)
            return EXIT_REFUSED
        if args.dry_run:
            emit({"dry_run": True, **summary}, json_mode=args.json)
            print("dry run: checked, nothing sent and nothing logged", file=sys.stderr)
            return EXIT_OK
        receipt = await client.send(plan.fields, plan.payload())
    # Only now, with the hub's signed receipt, does the disclosure enter the local log.
    log = DisclosureLog(profile.disclosure_log_path)
    try:
        line = log.record(disclosure_record(plan, receipt, receipt.received_at))
    except (DisclosureLogError, OSError) as exc:
        # The release has gone: say so loudly, with the receipt to record it by hand.
        emit({**plan.summary(), "receipt": receipt.model_dump(mode="json")}, json_mode=args.json)
        raise CommandError(
            f"the release was SENT (message {receipt.message_id}) but the disclosure log "
            f"{log.path} could not be written: {exc}. Record this disclosure by hand.",
            EXIT_ERROR,
        ) from exc
    emit(
        {
            **summary,
            "receipt": receipt.model_dump(mode="json"),
            "disclosure_log": {"path": str(log.path), "line": line},
        },
        json_mode=args.json,
    )
    print(
        f"released {plan.manifest.resource_count} resource(s) to "
        f"{', '.join(plan.fields.recipients)}; disclosure logged at line {line}",
        file=sys.stderr,
    )
    return EXIT_OK


async def _outbox(args: argparse.Namespace) -> int:
    """List, resend or discard the messages waiting for their receipts (hub.cli.outbox)."""
    profile = node_profile(args.node)
    outbox = Outbox(profile.outbox_dir)
    if args.discard is not None:
        try:
            dropped = discard(outbox, args.discard)
        except OutboxError as exc:
            raise CommandError(str(exc)) from exc
        if dropped is None:
            raise CommandError(f"no message {args.discard} is waiting in the outbox")
        emit(pending_row(dropped), json_mode=args.json)
        print(
            f"discarded {args.discard}; if it reached the hub, 'hub node status "
            f"{args.discard}' still shows it",
            file=sys.stderr,
        )
        return EXIT_OK
    if args.list:
        rows = [pending_row(pending) for pending in outbox.pending()]
        emit(rows, json_mode=args.json, human=lambda r: table(r, _OUTBOX_COLUMNS))
        print(f"{len(rows)} message(s) waiting for a receipt", file=sys.stderr)
        return EXIT_OK
    async with client_for(profile) as client:
        outcomes = await client.resend_pending()
    rows = [outcome_row(outcome) for outcome in outcomes]
    emit(rows, json_mode=args.json, human=lambda r: table(r, ("message_id", "kind", "outcome")))
    left = outbox.pending()
    print(
        f"{len(outcomes)} message(s) resent; {len(left)} still waiting for a receipt",
        file=sys.stderr,
    )
    if any(outcome.kept for outcome in outcomes):
        return EXIT_ERROR
    if any(outcome.receipt is None for outcome in outcomes):
        return EXIT_REFUSED
    return EXIT_OK


_OUTBOX_COLUMNS = ("message_id", "kind", "recipients", "kept_at", "transport")


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
    # Read to the hub operator out of band; they see the same at enrolment.
    print(f"  signing key fingerprint:    {key_fingerprint(keys.public.signing)}")
    print(f"  encryption key fingerprint: {key_fingerprint(keys.public.encryption)}")
    return EXIT_OK


def run_against_hub(command: Coroutine[Any, Any, int], *, json_mode: bool = False) -> int:
    """Run a command that talks to the hub; its failures as one line and an exit code.

    The hub's refusal is printed (exit 1); a hub that cannot be reached or an answer that
    does not verify is exit 3; a local file that cannot be read or written is exit 2.
    """
    try:
        return asyncio.run(command)
    except SendUnconfirmed as exc:
        # Perhaps delivered, perhaps not; kept in the outbox for the next run.
        emit(exc.problem.model_dump(mode="json", exclude_none=True), json_mode=json_mode)
        return EXIT_ERROR
    except HubProblem as exc:
        problem = exc.problem.model_dump(mode="json", exclude_none=True)
        emit(problem, json_mode=json_mode, human=problem_text)
        return EXIT_REFUSED
    except (VerificationFailed, CryptoError) as exc:
        raise CommandError(f"verification failed: {exc}", EXIT_ERROR) from exc
    except (OutboxConflict, OutboxError) as exc:
        raise CommandError(str(exc)) from exc
    except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
        raise CommandError(f"cannot reach the hub: {exc}", EXIT_ERROR) from exc
    except OSError as exc:
        raise CommandError(f"{exc.filename or 'file'}: {exc.strerror or exc}") from exc


def _run(coro_fn: Any) -> Any:
    def runner(args: argparse.Namespace) -> int:
        return run_against_hub(coro_fn(args), json_mode=args.json)

    return runner


def add_node_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = sub.add_parser("node", help="act as an agency node")
    node_sub = node.add_subparsers(dest="node_action", required=True)
    add_console_command(node_sub)

    init = node_sub.add_parser("init", help="create a node folder with fresh keys")
    init.add_argument("--node", type=Path, required=True, help="node folder to create")
    init.add_argument("--node-id", required=True, help="e.g. la.example (AGENCY.ORGANISATION)")
    init.add_argument("--agency-type", required=True, help="police, local_authority, health, ...")
    init.add_argument("--hub-url", required=True, help="the hub's base URL")
    init.add_argument("--hub-id", required=True, help="the hub's id (hub.id in its config)")
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
            "or prints the problem JSON and exits 1. When the hub's answer is lost the "
            "submission is retried with the same bytes; if it stays unconfirmed the message "
            "waits in the node's outbox (exit 3) and is resent by the next submit, inbox or "
            "'hub node outbox'. Submitting the same draft again resends that message."
        ),
    )
    submit.add_argument("--node", type=Path, required=True, help="node folder")
    submit.add_argument("--no-preflight", action="store_true", help="skip the node's own checks")
    submit.add_argument("draft", type=Path, help="DRAFT.json")
    add_json_flag(submit)
    add_progress_flag(submit)
    submit.set_defaults(func=_run(_submit))

    inbox = node_sub.add_parser("inbox", help="fetch, verify, decrypt, acknowledge and print")
    inbox.add_argument("--node", type=Path, required=True, help="node folder")
    inbox.add_argument("--wait", type=float, default=0.0, help="long-poll up to this many seconds")
    inbox.add_argument(
        "--limit", type=int, default=100, help="at most this many messages (default 100)"
    )
    add_json_flag(inbox)
    add_progress_flag(inbox)
    inbox.set_defaults(func=_run(_inbox))

    outbox = node_sub.add_parser(
        "outbox",
        help="resend messages sent without a receipt (or --list, --discard ID)",
        description=(
            "A message whose answer from the hub never came (a lost connection, a hub that "
            "was down, a crash) waits in DIR/outbox/ as the exact bytes that were sent. "
            "This resends them: the hub answers with the original receipt if it already "
            "has the message, so nothing is delivered twice. 'hub node submit', 'hub node "
            "inbox' and the console do the same on their own. Exits 0 when every message "
            "was accepted, 1 when the hub refused one, 3 when one is still not confirmed."
        ),
    )
    outbox.add_argument("--node", type=Path, required=True, help="node folder")
    outbox_mode = outbox.add_mutually_exclusive_group()
    outbox_mode.add_argument("--list", action="store_true", help="list only; send nothing")
    outbox_mode.add_argument(
        "--discard", metavar="ID", help="forget one waiting message without sending it"
    )
    add_json_flag(outbox)
    outbox.set_defaults(func=_run(_outbox))

    release = node_sub.add_parser(
        "release",
        help="build, check and send a health release against an approved decision",
        description=(
            "Runs the release builder over the patient's FHIR record for the categories and "
            "periods the decision approved, prints what goes (by category, with resource "
            "counts) and what is withheld, checks it with the same rules as the hub and the "
            "receiving node (the manifest against the approval, the bundle against the "
            "manifest), sends it, and writes the disclosure log entry once the hub has "
            "accepted it. Exits 0 when sent (or, with --dry-run, when it would be), 1 when "
            "the rules refuse it."
        ),
    )
    release.add_argument("--node", type=Path, required=True, help="node folder")
    release.add_argument("--decision", required=True, help="id of this node's approving decision")
    release.add_argument(
        "--records", type=Path, required=True, help="the patient's record, a FHIR R4 Bundle"
    )
    release.add_argument(
        "--dry-run", action="store_true", help="build and check only: send and log nothing"
    )
    release.add_argument(
        "--author", help="user reference of the releasing person (default: the decider)"
    )
    release.add_argument("--role", default="SAFEGUARDING_LEAD", help="their role, with --author")
    release.add_argument("--vetting", default="BPSS", help="their vetting level, with --author")
    add_json_flag(release)
    release.set_defaults(func=_run(_release))

    purge = node_sub.add_parser("purge", help="delete kept case packs whose access has expired")
    purge.add_argument("--node", type=Path, required=True, help="node folder")
    add_json_flag(purge)
    purge.set_defaults(func=_purge)

    requests = node_sub.add_parser(
        "requests", help="information requests this node is party to, with deadlines"
    )
    requests.add_argument("--node", type=Path, required=True, help="node folder")
    requests.add_argument("--overdue", action="store_true", help="only those past their deadline")
    add_json_flag(requests)
    requests.set_defaults(func=_run(_requests))

    status = node_sub.add_parser("status", help="per-recipient delivery state of a sent message")
    status.add_argument("--node", type=Path, required=True, help="node folder")
    status.add_argument("message_id", help="id of a message this node sent")
    add_json_flag(status)
    status.set_defaults(func=_run(_status))

    add_users_commands(node_sub)
    add_show_command(node_sub)
    add_draft_command(node_sub)
    add_key_rotation_commands(node_sub, _run)
