"""``hub node outbox``: the messages this node sealed and signed but holds no receipt for.

The node client keeps each message's exact bytes in ``DIR/outbox/`` until the hub's
signed receipt for them is verified (``hub.client.outbox``): a lost answer, a hub that was
down or a crash leaves the message there, and resending it sends those very bytes, so the
hub answers with the original receipt when it already has the message, and never
receives it twice. Pending messages are resent by ``hub node submit`` (after its own
draft), by ``hub node inbox`` (before it syncs) and when the console starts; this command
lists them (``--list``), resends them now, or forgets one (``--discard ID``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import aiohttp

from hub.client import ClientError, NodeClient, Outbox, OutboxError, PendingMessage, ResendOutcome

__all__ = ["discard", "outcome_row", "pending_row", "resend_and_tell", "tell"]


def pending_row(pending: PendingMessage) -> dict[str, Any]:
    """One waiting message as ``hub node outbox --list`` shows it (no payload content)."""
    envelope = pending.envelope()
    payload = envelope.get("payload")
    return {
        "message_id": pending.message_id,
        "kind": envelope.get("kind"),
        "recipients": envelope.get("recipients"),
        "kept_at": pending.kept_at.isoformat(),
        "transport": payload.get("transport") if isinstance(payload, dict) else None,
    }


def outcome_row(outcome: ResendOutcome) -> dict[str, Any]:
    """What the hub said to one resent message."""
    row: dict[str, Any] = {
        "message_id": outcome.message_id,
        "kind": outcome.envelope.get("kind"),
    }
    if outcome.receipt is not None:
        row["outcome"] = "accepted"
        row["receipt"] = outcome.receipt.model_dump(mode="json")
    elif outcome.kept:
        row["outcome"] = "not confirmed; still in the outbox"
    else:
        row["outcome"] = "refused; removed from the outbox"
    if outcome.problem is not None:
        row["problem"] = outcome.problem.model_dump(mode="json", exclude_none=True)
    return row


def tell(outcomes: Sequence[ResendOutcome]) -> None:
    """One stderr line per resent message (what ``hub node submit`` and ``inbox`` say)."""
    for outcome in outcomes:
        row = outcome_row(outcome)
        print(f"outbox: {row['message_id']} ({row['kind']}): {row['outcome']}", file=sys.stderr)


async def resend_and_tell(client: NodeClient) -> list[ResendOutcome]:
    """Resend whatever waits in the client's outbox, saying what became of each.

    On the side of another command: a failure here is one stderr line, never that
    command's failure (the messages stay in the outbox for the next run).
    """
    try:
        outcomes = await client.resend_pending()
    except (ClientError, OutboxError, aiohttp.ClientError, OSError) as exc:
        print(f"outbox: not resent this time ({type(exc).__name__}: {exc})", file=sys.stderr)
        return []
    tell(outcomes)
    return outcomes


def discard(outbox: Outbox, message_id: str) -> PendingMessage | None:
    """Forget one waiting message; the entry it was, or None if there was none."""
    pending = outbox.get(message_id)
    if pending is not None:
        outbox.remove(message_id)
    return pending
