"""The node's inbox sync: fetch, verify, check, answer, keep; the cursor after each.

For each new inbox entry: fetch and verify the message (sender signature, hub receipt);
for a blob payload, download its *ciphertext* into the store's folder (hash and size
checked against the envelope); decrypt it only to check it (in memory for JSON up to
16 MiB, otherwise into a temporary 0600 file deleted straight after); run the envelope
and payload rules (:func:`received_violations`); reject or acknowledge at the hub; then
keep the message, with the answer it got, in the :class:`NodeStore`; then advance the
cursor in the same database.

The answer goes first and the keeping after: if this node answered otherwise on an
earlier run (its first answer stands, the hub says 409), what is kept records that
answer. A failure part-way loses nothing: the cursor has not moved, so the next run
starts with the same message, and a message already kept is skipped without being shown
again. Nothing decrypted is written to the node's folder.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from agency_adapters.node.checks import payload_violations, rejection_summary
from agency_adapters.node.store import (
    IN_MEMORY_PAYLOAD_BYTES,
    NodeStore,
    decrypt_payload,
)
from hub.client import (
    HubProblem,
    NodeClient,
    NodeProfile,
    ReceivedMessage,
    UntrustedSender,
    VerificationFailed,
)
from hub.crypto import CryptoError
from hub.model import RecipientStatus, StrictJSONError, Violation, loads_strict
from hub.policy.engine import evaluate, ordered

__all__ = [
    "SyncResult",
    "background_sync",
    "keep_fetched",
    "received_violations",
    "retire_legacy_files",
    "sync_inbox",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """One inbox entry dealt with: ``state`` is what the node's answer left it in
    (``acknowledged``, ``rejected``) or ``expired`` (a case pack past its access expiry
    before this node fetched it: nothing to keep). ``summary`` is what ``hub node inbox``
    prints for it."""

    message_id: str
    kind: str
    state: str
    summary: dict[str, Any]
    answered_before: bool = False


async def sync_inbox(
    client: NodeClient,
    profile: NodeProfile,
    store: NodeStore,
    *,
    wait: float = 0.0,
    limit: int = 100,
    now: datetime | None = None,
) -> list[SyncResult]:
    """Deal with every new inbox entry (module docstring); the results in inbox order."""
    moment = now or datetime.now(UTC)
    store.purge(moment)
    retire_legacy_files(profile, moment)
    page = await client.inbox(after=store.cursor(), limit=limit, wait=wait)
    results: list[SyncResult] = []
    for entry in page.entries:
        if store.get(entry.message_id) is not None:
            # Kept on an earlier run (or by the demo's story): never shown twice.
            store.set_cursor(entry.cursor)
            continue
        try:
            message = await client.fetch(entry.message_id)
        except UntrustedSender as untrusted:
            # Signed with a key marked compromised from before the hub received it: not
            # trusted, not kept; rejected so the inbox moves on and the sender's status
            # and the log say why.
            results.append(await _reject_untrusted(client, untrusted))
            store.set_cursor(entry.cursor)
            continue
        except HubProblem as problem:
            if problem.problem.status != 410:
                raise
            # A case pack whose access expired before this node fetched it: nothing to
            # keep, and the cursor moves on so the inbox never sticks on it.
            results.append(
                SyncResult(
                    message_id=entry.message_id,
                    kind=entry.kind,
                    state="expired",
                    summary={"message_id": entry.message_id, "kind": entry.kind, "expired": True},
                )
            )
            store.set_cursor(entry.cursor)
            continue
        results.append(await _receive(client, store, message))
        store.set_cursor(entry.cursor)
    return results


async def _reject_untrusted(client: NodeClient, untrusted: UntrustedSender) -> SyncResult:
    message = untrusted.message
    summary = _summary(message)
    summary["rejected"] = [f"RECV-02 $.signature: {untrusted}"]
    first = await _answer_once(client.reject(message, ["RECV-02"], [str(untrusted)]), summary)
    return SyncResult(
        message_id=message.envelope.id,
        kind=message.envelope.kind,
        state="rejected" if first else "acknowledged",
        summary={k: v for k, v in summary.items() if v is not None},
        answered_before=not first,
    )


def _summary(message: ReceivedMessage) -> dict[str, Any]:
    envelope = message.envelope
    return {
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


def _in_memory(message: ReceivedMessage) -> bool:
    payload = message.envelope.payload
    return payload.media_type.endswith("json") and payload.size <= IN_MEMORY_PAYLOAD_BYTES


async def _receive(client: NodeClient, store: NodeStore, message: ReceivedMessage) -> SyncResult:
    envelope = message.envelope
    summary = _summary(message)
    staged = await _download(client, store, message)
    try:
        async with _plaintext(client, store, message, staged) as payload:
            try:
                rejected = await received_violations(client, message, payload)
            except VerificationFailed as exc:
                # The sender has left the directory: nothing here can vouch for it.
                rejected = [Violation(rule="RECV-01", path="$.sender", message=str(exc))]
            plaintext = payload if isinstance(payload, bytes) else None
        rules: list[str] = []
        if rejected:
            # Rejected, not acknowledged: the hub records the rule ids and the sender
            # sees them in its status; the findings stay here.
            rules, reasons = rejection_summary(rejected)
            summary["rejected"] = [f"{v.rule} {v.path}: {v.message}" for v in rejected]
            first = await _answer_once(client.reject(message, rules, reasons), summary)
            state = "rejected" if first else "acknowledged"
        else:
            first = await _answer_once(client.acknowledge(message), summary)
            state = "acknowledged" if first else "rejected"
        # Answered: now keep it, ciphertext only, with the answer that stands.
        store.keep_received(
            message, state=state, rejection_rules=rules if first else (), ciphertext=staged
        )
        staged = None
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
    if first and state == "acknowledged":
        if plaintext is not None:
            summary["payload"] = json.loads(plaintext)
        else:
            summary["payload_out"] = f"hub node show {envelope.id} --payload-out FILE"
        if envelope.kind == "case_pack" and envelope.access_expires_at is not None:
            # Kept (encrypted) until the access expiry, then purged (DESIGN.md section 6).
            summary["kept_until"] = envelope.access_expires_at.isoformat()
    return SyncResult(
        message_id=envelope.id,
        kind=envelope.kind,
        state=state,
        summary={k: v for k, v in summary.items() if v is not None},
        answered_before=not first,
    )


async def _download(client: NodeClient, store: NodeStore, message: ReceivedMessage) -> Path | None:
    """A blob payload's ciphertext, streamed into a 0600 file in the store's folder."""
    if message.envelope.payload.transport != "blob":
        return None
    fd, staged = _staging_file(store.ciphertext_dir)
    try:
        with os.fdopen(fd, "wb") as sink:
            await client.download_ciphertext(message, sink)
    except BaseException:
        _discard(staged)
        raise
    return staged


def _staging_file(folder: Path) -> tuple[int, Path]:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix="incoming-", suffix=".part", dir=folder)  # 0600
    return fd, Path(name)


def _discard(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


@asynccontextmanager
async def _plaintext(
    client: NodeClient, store: NodeStore, message: ReceivedMessage, staged: Path | None
) -> AsyncIterator[bytes | Path]:
    """The plaintext to check: in memory, or a temporary 0600 file deleted after."""
    payload = message.envelope.payload
    sealed = payload.sealed_keys.get(client.node_id)
    if sealed is None:
        raise VerificationFailed("the payload has no key sealed to this node")
    source: bytes | Path = payload.inline_bytes() if staged is None else staged
    if _in_memory(message):
        yield b"".join(decrypt_payload(payload, sealed, client.keys, source))
        return
    with _scratch_file(store) as (scratch, handle):

        def decrypt() -> None:
            for chunk in decrypt_payload(payload, sealed, client.keys, source):
                handle.write(chunk)
            handle.flush()

        # Decryption of a large payload is CPU and disk work: off the event loop.
        await asyncio.to_thread(decrypt)
        yield scratch


@contextmanager
def _scratch_file(store: NodeStore) -> Iterator[tuple[Path, Any]]:
    folder = store.path.parent / "scratch"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix="checking-", dir=folder)  # 0600
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield path, handle
    finally:
        path.unlink(missing_ok=True)


async def keep_fetched(
    client: NodeClient, store: NodeStore, message: ReceivedMessage, *, state: str
) -> bytes | None:
    """Keep a message fetched and answered outside the sync (the demo's story does this).

    Downloads a blob's ciphertext into the store; returns the plaintext of a JSON payload
    up to 16 MiB, decrypted in memory from what was kept.
    """
    staged = await _download(client, store, message)
    try:
        store.keep_received(message, state=state, ciphertext=staged)
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    if not _in_memory(message):
        return None
    return store.open_payload(message.envelope.id, client.keys, client.node_id)


async def _answer_once(answer: Awaitable[RecipientStatus], summary: dict[str, Any]) -> bool:
    """Send this node's acknowledgement or rejection; False if it answered otherwise before.

    The hub keeps a recipient's first answer and repeats it for the same answer again; a
    409 means an earlier run answered the other way (and then stopped before keeping it):
    that answer stands, and the inbox moves on rather than sticking.
    """
    try:
        await answer
    except HubProblem as problem:
        if problem.problem.status != 409:
            raise
        summary["answered_before"] = problem.problem.detail
        return False
    return True


async def received_violations(
    client: NodeClient, message: ReceivedMessage, payload: bytes | Path
) -> list[Violation]:
    """Why a received message is rejected: the envelope rules and the payload rules.

    Judged as of the day the hub received it (its signed receipt; the sender's own
    ``created_at`` could be anything). The envelope rules run only where this node knows
    what the hub knew: a reply to a message this node may not read (a release copied to
    someone who was not party to the request) was judged by the hub with that message,
    and here only the payload rules apply.
    """
    envelope = message.envelope
    on = message.receipt.received_at.date()
    facts = await client.policy_facts(envelope, sender=envelope.sender, today=on, received=True)
    violations: list[Violation] = []
    if envelope.in_reply_to is None or facts.answers is not None:
        violations += evaluate(envelope, facts, client.policy_registry())
    try:
        violations += payload_violations(envelope, payload, envelope.payload.media_type, today=on)
        if isinstance(payload, bytes):
            loads_strict(payload)
    except StrictJSONError as exc:
        violations.append(Violation(rule="PAYLOAD-04", path="$.payload", message=str(exc)))
    return ordered(violations)


def retire_legacy_files(profile: NodeProfile, now: datetime) -> list[str]:
    """Delete plaintext case packs an older version kept, once their access expired.

    Older versions wrote case packs as plaintext to ``DIR/received`` and listed them in
    ``DIR/state/expiry.json``; the store keeps ciphertext only. Returns the message ids
    whose files were deleted; the index goes when it lists nothing more.
    """
    index_file = profile.root / "state" / "expiry.json"
    try:
        index = json.loads(index_file.read_text())
    except FileNotFoundError:
        return []
    except ValueError:
        _log.warning("%s is not valid JSON; left as it is", index_file)
        return []
    if not isinstance(index, dict):
        return []
    retired: list[str] = []
    for message_id, entry in list(index.items()):
        try:
            expired = datetime.fromisoformat(entry["expires_at"]) <= now
            path = Path(entry["path"])
        except (KeyError, TypeError, ValueError):
            continue
        if expired:
            path.unlink(missing_ok=True)
            del index[message_id]
            retired.append(message_id)
    if not index:
        index_file.unlink()
    elif retired:
        tmp = index_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(index))
        os.replace(tmp, index_file)
    return retired


# What a failed round of the background sync may raise: the hub unreachable or refusing,
# or an answer that does not verify. Anything else is a bug and ends the loop.
_TRANSIENT = (HubProblem, aiohttp.ClientError, OSError, VerificationFailed, CryptoError)


async def background_sync(
    client: NodeClient,
    profile: NodeProfile,
    store: NodeStore,
    *,
    wait: float = 25.0,
    limit: int = 100,
    idle: float = 1.0,
    min_backoff: float = 1.0,
    max_backoff: float = 60.0,
    on_results: Callable[[list[SyncResult]], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Sync forever: long-poll with ``wait``, back off (doubling, to ``max_backoff``) on
    errors the hub or network cause, and stop when cancelled (the console runs this in its
    ``cleanup_ctx`` and cancels it on shutdown)."""
    backoff = min_backoff
    while True:
        try:
            results = await sync_inbox(client, profile, store, wait=wait, limit=limit)
        except asyncio.CancelledError:
            raise
        except _TRANSIENT as exc:
            # The type only: a problem's detail or a URL may name a message or a subject.
            _log.warning("inbox sync failed (%s); retrying in %.0fs", type(exc).__name__, backoff)
            await sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
            continue
        backoff = min_backoff
        if on_results is not None and results:
            on_results(results)
        if not results and wait <= 0:
            await sleep(idle)
