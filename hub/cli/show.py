"""``hub node show ID``: one message from the node's own store, opened on view.

The payload is kept as ciphertext (``agency_adapters.node.store``) and decrypted here, in
memory, with the node's keys, exactly as the console's message page opens it; the view is
written to the node's access log (who, what, when, never any content), as the console
writes it. A purged payload says why and when it went; an unknown id exits 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agency_adapters.node.console.presenting import gateway_rows
from agency_adapters.node.store import (
    NodeStoreError,
    PayloadPurged,
    StoredMessage,
)
from hub.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    CommandError,
    add_json_flag,
    emit,
    fields,
)
from hub.crypto import KeyFileError
from hub.policy.registry import load_registry

__all__ = ["add_show_command", "cli_user_ref", "message_view"]


def cli_user_ref() -> str:
    """Who is looking, for the access log: the operating-system account at the CLI."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        name = "unknown"
    return f"cli:{name}"[:200]


def message_view(stored: StoredMessage, payload: dict[str, Any]) -> dict[str, Any]:
    """What ``hub node show --json`` prints: the kept facts, the gateways, the payload."""
    registry = load_registry()
    purpose = registry.purpose(stored.purpose)
    envelope = stored.envelope
    return {
        "message": {
            "id": stored.id,
            "direction": "received" if stored.direction == "in" else "sent",
            "kind": stored.kind,
            "sender": stored.sender,
            "recipients": list(stored.recipients),
            "marking": stored.marking,
            "purpose": stored.purpose,
            "purpose_name": purpose.name if purpose is not None else None,
            "subject_ref": stored.subject_ref,
            "case_ref": stored.case_ref,
            "in_reply_to": stored.in_reply_to,
            "request_id": stored.request_id,
            "author": envelope.author.model_dump(mode="json"),
            "created_at": stored.created_at.isoformat(),
            "received_at": stored.received_at.isoformat(),
            "state": stored.state,
            "rejection_rules": list(stored.rejection_rules),
            "access_expires_at": None
            if stored.access_expires_at is None
            else stored.access_expires_at.isoformat(),
            "media_type": stored.media_type,
            "size": stored.size,
        },
        "gateways": [
            {
                "layer": row.layer,
                "id": row.gateway_id,
                "title": row.title,
                "summary": row.summary,
            }
            for row in gateway_rows(envelope.legal_basis, registry)
        ],
        "consent": None if envelope.consent is None else envelope.consent.model_dump(mode="json"),
        **payload,
    }


def _open(stored: StoredMessage, store: Any, keys: Any, node_id: str) -> dict[str, Any]:
    """The payload part of the view: the content, or why it cannot be shown."""
    if (
        stored.kind == "case_pack"
        and stored.access_expires_at is not None
        and stored.access_expires_at <= datetime.now(UTC)
        and not stored.purged
    ):
        return {
            "payload": None,
            "withheld": f"the case pack's access expired at "
            f"{stored.access_expires_at:%Y-%m-%d %H:%M}Z (hub node purge deletes it)",
        }
    try:
        raw = store.open_payload(stored.id, keys, node_id)
    except PayloadPurged as gone:
        return {
            "payload": None,
            "purged": {"reason": gone.reason, "purged_at": gone.purged_at.isoformat()},
        }
    except NodeStoreError as exc:
        return {"payload": None, "unreadable": str(exc)}
    try:
        return {"payload": json.loads(raw)}
    except ValueError:
        return {"payload": None, "unreadable": "the content is not JSON"}


def show_text(view: dict[str, Any]) -> str:
    """The view in sections for people: the message, its gateways, its content."""
    message = view["message"]
    out = [f"== {message['marking']} ==\n", "\nMessage\n", fields(message, "  ")]
    if view["gateways"]:
        out.append("\nLegal gateways\n")
        for row in view["gateways"]:
            out.append(f"  {row['layer']}: {row['id']} - {row['title']}\n")
            if row["summary"]:
                out.append(f"      {' '.join(row['summary'].split())}\n")
    if view.get("consent"):
        out += ["\nConsent\n", fields(view["consent"], "  ")]
    out.append("\nContent\n")
    if "purged" in view:
        gone = view["purged"]
        out.append(f"  purged at {gone['purged_at']}: {gone['reason']}\n")
    elif "withheld" in view:
        out.append(f"  not shown: {view['withheld']}\n")
    elif "unreadable" in view:
        out.append(f"  cannot be opened: {view['unreadable']}\n")
    elif isinstance(view["payload"], dict):
        out.append(fields(view["payload"], "  "))
    else:
        out.append(f"  {json.dumps(view['payload'], ensure_ascii=False)}\n")
    out.append(f"\n== {message['marking']} ==\n")
    return "".join(out)


def _show(args: argparse.Namespace) -> int:
    # Imported here: hub.cli.node imports this module to register the command.
    from hub.cli.node import _store, node_profile

    profile = node_profile(args.node)
    try:
        keys = profile.load_keys()
    except KeyFileError as exc:
        raise CommandError(f"node key: {exc}") from exc
    with _store(profile) as store:
        stored = store.get(args.message_id)
        if stored is None:
            print(
                f"this node ({profile.node_id}) has kept no message {args.message_id}; "
                "'hub node inbox' fetches new ones",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        user = cli_user_ref()
        store.log_access(user, user, "view", "message", stored.id, datetime.now(UTC))
        view = message_view(stored, _open(stored, store, keys, profile.node_id))
    emit(view, json_mode=args.json, human=show_text)
    return EXIT_OK


def add_show_command(node_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    show = node_sub.add_parser(
        "show",
        help="one message from this node's store, its content opened on view",
        description=(
            "Prints one kept message (received or sent): its envelope facts, the legal "
            "gateways it cites in plain English, and its content, decrypted in memory with "
            "the node's keys. The view is written to the node's access log. Exits 1 when "
            "the node has kept no such message; a purged payload says why and when."
        ),
    )
    show.add_argument("--node", type=Path, required=True, help="node folder")
    show.add_argument("message_id", help="id of a message this node received or sent")
    add_json_flag(show)
    show.set_defaults(func=_show)
