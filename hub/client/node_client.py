"""The node SDK: signs requests, seals payloads, pre-flights policy, verifies what it gets.

Memory stays bounded for any payload size: large payloads are encrypted chunk by chunk to
a spool file, uploaded chunk by chunk, and downloaded and decrypted chunk by chunk.

Sending is retry-safe: the sealed, signed bytes of a message are kept (in the node's
:class:`~hub.client.outbox.Outbox` when it has one, on disk) until the hub's verified
receipt for them is in hand, and a retry, after a lost answer, a timeout or a 5xx, in the
same call or on a later run, resends exactly those bytes (:meth:`NodeClient.send`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import random
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import urlencode

import aiohttp
from pydantic import ValidationError
from yarl import URL

from hub.audit.entries import audit_entry
from hub.audit.log import verify_receipt_inclusion, verify_tree_head
from hub.audit.merkle import verify_consistency
from hub.client.errors import (
    HubProblem,
    OutboxConflict,
    PreflightFailed,
    SendUnconfirmed,
    VerificationFailed,
)
from hub.client.ids import uuid7
from hub.client.keys import rotation_statement, signing_key_at
from hub.client.outbox import Outbox, PendingMessage
from hub.crypto import (
    CHUNK_SIZE,
    ContentKey,
    CryptoError,
    NodeKeys,
    PayloadDecryptor,
    PayloadEncryptor,
    SignatureContext,
    canonical_json,
    canonical_sha256,
    ciphertext_size,
    open_content_key,
    seal_content_key,
    seal_payload_bytes,
    sign_document,
    verify_document,
)
from hub.crypto.httpsig import ContentDigester, content_digest_header, sign_request
from hub.model import (
    INLINE_PAYLOAD_MAX_BYTES,
    Acknowledgement,
    BlobUpload,
    Directory,
    DirectoryEntry,
    Envelope,
    EnvelopeFields,
    InboxPage,
    MessageStatus,
    Problem,
    Receipt,
    RecipientStatus,
    Rejection,
    TreeHead,
    Violation,
    rfc3339,
)
from hub.policy.engine import evaluate
from hub.policy.facts import Party, PolicyFacts
from hub.policy.manifest import check_record_kind
from hub.policy.registry import Registry, load_registry
from hub.policy.routing import check_recipients
from hub.validation import violations_from

__all__ = [
    "NodeClient",
    "PayloadSource",
    "Progress",
    "ReceivedMessage",
    "ResendOutcome",
    "RetryPolicy",
    "UntrustedSender",
]

Clock = Callable[[], datetime]
# Called as a large payload's ciphertext moves: ("upload" | "download", bytes done, total),
# once per chunk (at most a few hundred calls for a large file), so it may write to a TTY.
Progress = Callable[[str, int, int], None]
_IO_CHUNK = 64 * 1024
# Answers that say nothing about the message: the hub (or a proxy before it) was busy,
# timed out or failed. A submission is retried on these; any other 4xx is the hub's
# verdict on the bytes, and resending them cannot change it.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Connection failures and timeouts: the request may or may not have reached the hub.
_LOST = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PayloadSource:
    """What to send: a document in memory or a file streamed from disk."""

    media_type: str
    data: bytes | None = None
    path: Path | None = None

    @classmethod
    def json(cls, document: Any, media_type: str = "application/json") -> PayloadSource:
        return cls(media_type=media_type, data=json.dumps(document, ensure_ascii=False).encode())

    @classmethod
    def file(cls, path: Path, media_type: str = "application/octet-stream") -> PayloadSource:
        return cls(media_type=media_type, path=path)

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and how patiently, a submission is retried when its answer is lost.

    ``attempts`` in all; before attempt *n* + 1 the client waits ``first_delay`` doubled
    *n* - 1 times, at most ``max_delay``, less up to half at random (so nodes that lost the
    hub together do not return together). The defaults wait about 7.5 s in all.
    """

    attempts: int = 5
    first_delay: float = 0.5
    max_delay: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if self.first_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def delay(self, attempt: int, jitter: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        full = min(self.max_delay, self.first_delay * 2.0 ** (attempt - 1))
        return full * (0.5 + 0.5 * jitter.random())


@dataclass(frozen=True, slots=True)
class ResendOutcome:
    """What the hub said to one message resent from the outbox.

    ``receipt`` when it was accepted (now or before: the original receipt); ``problem``
    when it was refused (the entry is gone) or not confirmed (``kept``: still pending).
    """

    message_id: str
    envelope: dict[str, Any]
    receipt: Receipt | None = None
    problem: Problem | None = None
    kept: bool = False


# Called with a receipted message before its outbox entry goes: the envelope document, the
# receipt and, for a blob payload, its ciphertext file (the sender's copy, sealed to it too).
Receipted = Callable[[dict[str, Any], Receipt, Path | None], None]


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A fetched message whose sender signature and hub receipt have been verified."""

    envelope: Envelope
    envelope_document: dict[str, Any]
    receipt: Receipt


class UntrustedSender(VerificationFailed):
    """The hub accepted the message, but its sender's key was not trusted at the time the
    hub received it (the key was marked compromised from before then).

    ``message`` is what the hub served, with the hub's verified receipt but an envelope
    whose signature counts for nothing: enough to reject it (``NodeClient.reject``), never
    to act on it.
    """

    def __init__(self, reason: str, message: ReceivedMessage) -> None:
        super().__init__(reason)
        self.message = message


class NodeClient:
    def __init__(
        self,
        *,
        hub_url: str,
        node_id: str,
        keys: NodeKeys,
        hub_signing_key: bytes,
        spool_dir: Path | None = None,
        clock: Clock = _utc_now,
        session: aiohttp.ClientSession | None = None,
        registry: Registry | None = None,
        progress: Progress | None = None,
        outbox: Outbox | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.outbox = outbox
        self._retry = retry or RetryPolicy()
        self._jitter = random.Random()  # noqa: S311 - spreads retries; not a secret
        self.node_id = node_id
        self._keys = keys
        self._hub_key = hub_signing_key
        self._spool = spool_dir
        self._clock = clock
        self._session = session
        self._own_session = session is None
        self._directory: dict[str, DirectoryEntry] = {}
        self._registry = registry
        self._progress = progress

    async def __aenter__(self) -> NodeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
            )
        return self._session

    # -- signed HTTP --------------------------------------------------------------------

    def _sign(self, method: str, path: str, query: str, digest_header: str) -> dict[str, str]:
        return sign_request(
            method=method,
            path=path,
            query=query,
            body_digest_header=digest_header,
            key=self._keys.signing,
            keyid=self.node_id,
            created=int(self._clock().timestamp()),
            nonce=secrets.token_urlsafe(18),
        )

    def _url(self, path: str, query: str) -> URL:
        return URL(self.hub_url + path + (f"?{query}" if query else ""), encoded=True)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | float] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> tuple[int, Any]:
        query = urlencode(params or {})
        headers = self._sign(method, path, query, content_digest_header(body))
        if content_type is not None:
            headers["Content-Type"] = content_type
        async with self._http().request(
            method, self._url(path, query), data=body if body else None, headers=headers
        ) as response:
            raw = await response.read()
            return response.status, self._decode(response.status, response.content_type, raw)

    @staticmethod
    def _decode(status: int, content_type: str, raw: bytes) -> Any:
        if status >= 400:
            try:
                problem = Problem.model_validate_json(raw)
            except ValidationError:
                problem = Problem(
                    type="about:blank",
                    title=f"HTTP {status}",
                    status=status,
                    detail=raw[:200].decode("utf-8", "replace") or None,
                )
            raise HubProblem(problem)
        if content_type != "application/json":
            raise VerificationFailed(f"expected JSON from the hub, got {content_type}")
        return json.loads(raw)

    # -- directory ----------------------------------------------------------------------

    async def directory(self, *, refresh: bool = False) -> dict[str, DirectoryEntry]:
        """The hub-signed directory, verified against the pinned hub key."""
        if self._directory and not refresh:
            return self._directory
        _, doc = await self._call("GET", "/v1/directory")
        try:
            verify_document(doc, self._hub_key, SignatureContext.DIRECTORY)
        except CryptoError as exc:
            raise VerificationFailed("the directory is not signed by the pinned hub key") from exc
        directory = Directory.model_validate_json(json.dumps(doc))
        self._directory = {entry.id: entry for entry in directory.nodes}
        return self._directory

    # -- sending ------------------------------------------------------------------------

    async def send(
        self,
        fields: EnvelopeFields,
        payload: PayloadSource,
        *,
        message_id: str | None = None,
        created_at: datetime | None = None,
        preflight: bool = True,
    ) -> Receipt:
        """Encrypt ``payload`` to every recipient, sign the envelope, submit, check the receipt.

        With ``preflight`` (the default) the node's own checks run first, with the same
        policy code the hub runs; without it the hub's enforcement is all there is.
        Retry-safe: see :meth:`send_with_envelope`.
        """
        _, receipt = await self.send_with_envelope(
            fields, payload, message_id=message_id, created_at=created_at, preflight=preflight
        )
        return receipt

    async def send_with_envelope(
        self,
        fields: EnvelopeFields,
        payload: PayloadSource,
        *,
        message_id: str | None = None,
        created_at: datetime | None = None,
        preflight: bool = True,
        receipted: Receipted | None = None,
    ) -> tuple[dict[str, Any], Receipt]:
        """:meth:`send`, also giving the signed envelope document as submitted (what the
        sender keeps, ``agency_adapters.node.store.NodeStore.keep_sent``).

        Retry-safe. The signed body is kept (in the outbox, if the client has one) before
        it is first submitted, and resent as it is on connection errors, timeouts, 408,
        429 and 5xx, with backoff (:class:`RetryPolicy`); the hub answers an identical
        resubmission with the original receipt. When the retries run out, or the hub
        will not authenticate the request (401), :class:`SendUnconfirmed` is raised and
        the message stays in the outbox. Sending the same draft again while it is there
        (the same ``message_id``, or without one the same fields and payload) resends the
        kept bytes instead of sealing anew; another draft under a kept id is refused
        (:class:`OutboxConflict`). ``receipted`` is called with the receipt before the
        outbox entry is removed.
        """
        digest = None
        if self.outbox is not None:
            digest = await self.draft_digest(
                fields, payload, message_id=message_id, created_at=created_at
            )
            pending = self._pending_for(digest, message_id)
            if pending is not None:
                # Sealed and checked when it was first sent: the same bytes go again.
                return await self._deliver(pending, reannounce=True, receipted=receipted)
        directory = await self.directory()
        if preflight:
            # The envelope rules, and the one payload rule the hub also sees (MAN-06, on
            # the media type); the other payload rules need the plaintext and run in
            # agency_adapters.node.checks (hub node submit, hub policy check, the receiver).
            refused = await self.preflight(fields)
            refused += check_record_kind(fields.kind, payload.media_type)
            if refused:
                raise PreflightFailed(refused)
        readers: dict[str, bytes] = {}
        for node_id in [*fields.recipients, self.node_id]:
            entry = directory.get(node_id)
            if entry is not None:
                readers[node_id] = base64.b64decode(entry.encryption_key)
            else:
                # Only reachable without pre-flight: seal to a throwaway key so the
                # message is well formed and the hub's routing check can refuse it.
                readers[node_id] = NodeKeys.generate().public.encryption
        moment = created_at or self._clock()
        envelope: dict[str, Any] = {
            **fields.model_dump(mode="json", exclude_none=True),
            "version": 1,
            "id": message_id or uuid7(moment),
            "sender": self.node_id,
            "created_at": rfc3339(moment),
        }
        ciphertext: Path | None = None
        if ciphertext_size(payload.size()) <= INLINE_PAYLOAD_MAX_BYTES:
            envelope["payload"] = self._inline_payload(payload, readers)
        else:
            envelope["payload"], ciphertext = await self._blob_payload(
                payload, readers, keep=self.outbox is not None
            )
        envelope["signature"] = sign_document(
            envelope, self._keys.signing, SignatureContext.ENVELOPE
        )
        body = json.dumps(envelope, separators=(",", ":")).encode()
        try:
            if preflight:
                try:
                    Envelope.model_validate_json(body)
                except ValidationError as exc:
                    raise PreflightFailed(violations_from(exc)) from exc
            if self.outbox is not None:
                assert digest is not None
                pending = await asyncio.to_thread(
                    self.outbox.keep,
                    envelope["id"],
                    body,
                    draft_digest=digest,
                    ciphertext=ciphertext,
                )
            else:
                pending = PendingMessage(
                    message_id=envelope["id"], body=body, draft_digest="", kept_at=moment
                )
        finally:
            if ciphertext is not None and self.outbox is not None:
                ciphertext.unlink(missing_ok=True)  # moved into the outbox unless it failed
        return await self._deliver(pending, reannounce=False, receipted=receipted)

    async def draft_digest(
        self,
        fields: EnvelopeFields,
        payload: PayloadSource,
        *,
        message_id: str | None = None,
        created_at: datetime | None = None,
    ) -> str:
        """What identifies a draft before it is sealed: its fields, id and creation time if
        given, and the media type and SHA-256 of its plaintext. The same draft sent twice
        has the same digest; its sealed envelopes never do (fresh content keys)."""
        plaintext = await asyncio.to_thread(_sha256_of_source, payload)
        return canonical_sha256(
            {
                "sender": self.node_id,
                "fields": fields.model_dump(mode="json", exclude_none=True),
                "id": message_id,
                "created_at": None if created_at is None else rfc3339(created_at),
                "media_type": payload.media_type,
                "plaintext_sha256": plaintext,
            }
        )

    async def pending_draft(
        self,
        fields: EnvelopeFields,
        payload: PayloadSource,
        *,
        message_id: str | None = None,
        created_at: datetime | None = None,
    ) -> PendingMessage | None:
        """The outbox entry sealed from this draft, if it still waits for its receipt
        (:meth:`send` would resend it); :class:`OutboxConflict` for another draft under a
        kept id."""
        if self.outbox is None:
            return None
        digest = await self.draft_digest(
            fields, payload, message_id=message_id, created_at=created_at
        )
        return self._pending_for(digest, message_id)

    def _pending_for(self, digest: str, message_id: str | None) -> PendingMessage | None:
        assert self.outbox is not None
        if message_id is None:
            return self.outbox.find_draft(digest)
        pending = self.outbox.get(message_id)
        if pending is not None and pending.draft_digest != digest:
            raise OutboxConflict(message_id)
        return pending

    async def _deliver(
        self, pending: PendingMessage, *, reannounce: bool, receipted: Receipted | None
    ) -> tuple[dict[str, Any], Receipt]:
        """Submit a kept message until the hub answers it; forget it once that answer is
        its receipt or its refusal."""
        envelope = pending.envelope()
        payload = envelope.get("payload")
        if reannounce and pending.ciphertext is not None and isinstance(payload, dict):
            # A later run: make sure the hub still holds the ciphertext (announcing a
            # finished blob again uploads nothing).
            try:
                await self._upload_blob(pending.ciphertext, payload["sha256"], payload["size"])
            except (*_LOST, HubProblem) as exc:
                raise SendUnconfirmed(
                    pending.message_id,
                    f"its payload could not be uploaded again: {exc}",
                    kept=self.outbox is not None,
                ) from exc
        try:
            doc = await self._submit(pending)
        except SendUnconfirmed:
            raise
        except HubProblem:
            # The hub judged these bytes and refused them: resending cannot change that.
            self._forget(pending)
            raise
        receipt = self._verified_receipt(doc)
        if receipt.message_id != pending.message_id or receipt.envelope_sha256 != (
            canonical_sha256(envelope)
        ):
            raise VerificationFailed("the receipt does not describe the message that was sent")
        if receipted is not None:
            receipted(envelope, receipt, pending.ciphertext)
        self._forget(pending)
        return envelope, receipt

    def _forget(self, pending: PendingMessage) -> None:
        if self.outbox is not None:
            self.outbox.remove(pending.message_id)

    async def _submit(self, pending: PendingMessage) -> Any:
        """POST the kept body, re-signing each request (a fresh nonce and time), retrying
        while the answer says nothing about the message."""
        kept = self.outbox is not None
        cause = "no answer"
        for attempt in range(1, self._retry.attempts + 1):
            try:
                _, doc = await self._call(
                    "POST", "/v1/messages", body=pending.body, content_type="application/json"
                )
                return doc
            except HubProblem as problem:
                status = problem.problem.status
                if status == 401:
                    # Not authenticated, so not looked at: the message stays pending.
                    raise SendUnconfirmed(
                        pending.message_id, "the hub did not authenticate the request", kept=kept
                    ) from problem
                if status not in _RETRY_STATUSES:
                    raise
                cause = f"HTTP {status} {problem.problem.title}"
            except _LOST as exc:
                cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if attempt < self._retry.attempts:
                await asyncio.sleep(self._retry.delay(attempt, self._jitter))
        raise SendUnconfirmed(
            pending.message_id, f"{cause}, after {self._retry.attempts} attempt(s)", kept=kept
        )

    async def resend_pending(self, receipted: Receipted | None = None) -> list[ResendOutcome]:
        """Resend every message waiting in the outbox, oldest first, exactly as kept.

        A message the hub has already accepted gets its original receipt back. Stops at
        the first message the hub does not confirm (it is probably unreachable): that one
        and the rest stay pending, for the next run.
        """
        if self.outbox is None:
            return []
        outcomes: list[ResendOutcome] = []
        for pending in await asyncio.to_thread(self.outbox.pending):
            envelope = pending.envelope()
            try:
                _, receipt = await self._deliver(pending, reannounce=True, receipted=receipted)
            except SendUnconfirmed as unconfirmed:
                outcomes.append(
                    ResendOutcome(
                        pending.message_id, envelope, problem=unconfirmed.problem, kept=True
                    )
                )
                break
            except HubProblem as refusal:
                outcomes.append(
                    ResendOutcome(pending.message_id, envelope, problem=refusal.problem)
                )
                continue
            outcomes.append(ResendOutcome(pending.message_id, envelope, receipt=receipt))
        return outcomes

    async def preflight(self, fields: EnvelopeFields) -> list[Violation]:
        """The hub's own checks, run here first: routing, then every policy rule.

        Uses the same :func:`hub.policy.engine.evaluate` as the hub, with facts from the
        hub-signed directory and, for a reply, the message it answers. The payload rules
        run beside these in :func:`agency_adapters.node.checks.check_draft`.
        """
        directory = await self.directory()
        violations = check_recipients(
            fields.recipients,
            {
                node: None if (e := directory.get(node)) is None else e.status
                for node in fields.recipients
            },
        )
        facts = await self.policy_facts(fields, sender=self.node_id)
        violations += evaluate(fields, facts, self._policy_registry())
        return violations

    async def policy_facts(
        self,
        fields: EnvelopeFields,
        *,
        sender: str,
        today: date | None = None,
        received: bool = False,
    ) -> PolicyFacts:
        """The facts the policy rules need about ``fields`` sent by ``sender``.

        From the hub-signed directory (active recipients only, as the hub judges a new
        message) and, for a reply, the message it answers when this node may read it. A
        receiving node passes ``received``: the message was accepted, so every recipient
        the directory knows counts, whatever its status since.
        """
        directory = await self.directory()
        recipients: dict[str, Party] = {
            node: _party(entry)
            for node in fields.recipients
            if (entry := directory.get(node)) is not None and (received or entry.status == "active")
        }
        me = directory.get(sender)
        if me is None:
            raise VerificationFailed(f"node {sender} is not in the hub directory")
        answers: Envelope | None = None
        answers_sender: str | None = None
        if fields.in_reply_to is not None:
            try:
                earlier = await self.fetch(fields.in_reply_to)
            except HubProblem as problem:
                # Not readable here (404), or a case pack past its access expiry (410).
                if problem.problem.status not in (404, 410):
                    raise
            else:
                answers, answers_sender = earlier.envelope, earlier.envelope.sender
        return PolicyFacts(
            sender=_party(me),
            recipients=recipients,
            today=today or self._clock().date(),
            answers=answers,
            answers_sender=answers_sender,
        )

    def today(self) -> date:
        """Today's date by this client's clock (the date the policy rules judge by)."""
        return self._clock().date()

    def policy_registry(self) -> Registry:
        """The policy registry this node checks with (the packaged one unless given)."""
        return self._policy_registry()

    def _policy_registry(self) -> Registry:
        if self._registry is None:
            self._registry = load_registry()
        return self._registry

    @staticmethod
    def _inline_payload(payload: PayloadSource, readers: Mapping[str, bytes]) -> dict[str, Any]:
        data = payload.data if payload.data is not None else (payload.path or Path()).read_bytes()
        sealed = seal_payload_bytes(data, readers)
        return {
            "media_type": payload.media_type,
            "cipher": "xchacha20poly1305-secretstream/64k",
            "sha256": sealed.sha256,
            "size": len(sealed.ciphertext),
            "transport": "inline",
            "inline": base64.b64encode(sealed.ciphertext).decode("ascii"),
            "sealed_keys": sealed.sealed_keys,
        }

    async def _blob_payload(
        self, payload: PayloadSource, readers: Mapping[str, bytes], *, keep: bool
    ) -> tuple[dict[str, Any], Path | None]:
        """Encrypt and upload a large payload; with ``keep``, also give back the spooled
        ciphertext (for the outbox) instead of deleting it."""
        key = ContentKey.generate()
        encryptor = PayloadEncryptor(key)
        # Encryption is CPU and disk work: a worker thread keeps the event loop free.
        spool = await asyncio.to_thread(_encrypt_to_spool, payload, encryptor, self._spool)
        try:
            await self._upload_blob(spool, encryptor.sha256, encryptor.size)
        except BaseException:
            await asyncio.to_thread(spool.unlink, missing_ok=True)
            raise
        if not keep:
            await asyncio.to_thread(spool.unlink, missing_ok=True)
        return {
            "media_type": payload.media_type,
            "cipher": "xchacha20poly1305-secretstream/64k",
            "sha256": encryptor.sha256,
            "size": encryptor.size,
            "transport": "blob",
            "sealed_keys": seal_content_key(key, readers),
        }, spool if keep else None

    async def _upload_blob(self, path: Path, sha256: str, size: int) -> BlobUpload:
        announce = json.dumps({"sha256": sha256, "size": size}).encode()
        _, doc = await self._call(
            "POST", "/v1/blobs", body=announce, content_type="application/json"
        )
        upload = BlobUpload.model_validate_json(json.dumps(doc))
        # Resumable: chunks the hub already holds are skipped.
        done = 0
        for index in range(upload.chunk_count):
            offset = index * upload.chunk_size
            length = min(upload.chunk_size, size - offset)
            if not (upload.complete or index in upload.received_chunks):
                upload = await self._put_chunk(path, upload.upload_id, index, offset, length)
            done += length
            if self._progress is not None:
                self._progress("upload", done, size)
        if not upload.complete:
            raise VerificationFailed("the hub did not confirm the completed upload")
        return upload

    async def _put_chunk(
        self, path: Path, upload_id: str, index: int, offset: int, length: int
    ) -> BlobUpload:
        digester = ContentDigester()
        for piece in _file_range(path, offset, length):
            digester.update(piece)
        route = f"/v1/blobs/{upload_id}/{index}"
        headers = self._sign("PUT", route, "", digester.header_value())
        headers["Content-Type"] = "application/octet-stream"
        headers["Content-Length"] = str(length)
        async with self._http().put(
            self._url(route, ""), data=_aiter_file_range(path, offset, length), headers=headers
        ) as response:
            raw = await response.read()
            doc = self._decode(response.status, response.content_type, raw)
        return BlobUpload.model_validate_json(json.dumps(doc))

    def _verified_receipt(self, doc: Any) -> Receipt:
        try:
            verify_document(doc, self._hub_key, SignatureContext.RECEIPT)
        except CryptoError as exc:
            raise VerificationFailed("the receipt is not signed by the pinned hub key") from exc
        return Receipt.model_validate_json(json.dumps(doc))

    # -- receiving ----------------------------------------------------------------------

    async def inbox(self, *, after: int = 0, limit: int = 100, wait: float = 0) -> InboxPage:
        _, doc = await self._call(
            "GET", "/v1/inbox", params={"after": after, "limit": limit, "wait": wait}
        )
        return InboxPage.model_validate_json(json.dumps(doc))

    async def fetch(self, message_id: str) -> ReceivedMessage:
        """Fetch a message and verify its sender's signature and the hub's receipt."""
        _, doc = await self._call("GET", f"/v1/messages/{message_id}")
        envelope_doc, receipt_doc = doc.get("envelope"), doc.get("receipt")
        if not isinstance(envelope_doc, dict) or not isinstance(receipt_doc, dict):
            raise VerificationFailed("the hub's answer lacks the envelope or its receipt")
        envelope = Envelope.model_validate_json(json.dumps(envelope_doc))
        if envelope.id != message_id:
            raise VerificationFailed(f"asked for message {message_id}, got {envelope.id}")
        # The receipt first: its hub-signed received_at says which sender key to trust.
        receipt = self._verified_receipt(receipt_doc)
        if receipt.message_id != envelope.id or receipt.envelope_sha256 != canonical_sha256(
            envelope_doc
        ):
            raise VerificationFailed("the hub's receipt does not match the envelope")
        received = ReceivedMessage(
            envelope=envelope, envelope_document=envelope_doc, receipt=receipt
        )
        if self.node_id not in envelope.readers():
            raise VerificationFailed("this node is not a reader of the message")
        await self._verify_sender(received)
        return received

    async def _verify_sender(self, message: ReceivedMessage) -> None:
        """The envelope is signed by the key that was its sender's when the hub received
        it (``hub.client.keys``); with a fresh directory if the cached one cannot say."""
        sender_id, received_at = message.envelope.sender, message.receipt.received_at
        problem: VerificationFailed = VerificationFailed(
            f"sender {sender_id} is not in the directory"
        )
        for refresh in (False, True):
            entry = (await self.directory(refresh=refresh)).get(sender_id)
            if entry is None:
                continue
            key = signing_key_at(entry, received_at)
            if key is None:
                problem = UntrustedSender(
                    f"no key of {sender_id} was trusted when the hub received the message "
                    f"({rfc3339(received_at)}): it was marked compromised",
                    message,
                )
                continue
            try:
                verify_document(message.envelope_document, key, SignatureContext.ENVELOPE)
            except CryptoError:
                problem = VerificationFailed("the envelope is not signed by its sender")
                continue
            return
        raise problem

    async def rotate_keys(self, new_keys: NodeKeys) -> DirectoryEntry:
        """Replace this node's keys at the hub (``POST /v1/keys/rotate``) with ``new_keys``.

        The request is signed by the current keys and carries the new keys' proof of
        possession. Once the hub has answered, this client signs with the new keys and
        still opens what was sealed to the old ones; the hub-signed directory, fetched
        with the new key, must list the new keys as current (VerificationFailed if not).
        A refusal (HubProblem, only ever for the rotation request itself) leaves this
        client with its old keys.
        """
        statement = rotation_statement(self.node_id, self._keys, new_keys, at=self._clock())
        _, doc = await self._call(
            "POST",
            "/v1/keys/rotate",
            body=json.dumps(statement).encode(),
            content_type="application/json",
        )
        # The hub took the keys (it answered 200): from here on only the check can fail.
        self._keys = new_keys.with_previous((self._keys,))
        try:
            answered = DirectoryEntry.model_validate_json(json.dumps(doc))
            entry = (await self.directory(refresh=True)).get(self.node_id)
        except (HubProblem, ValidationError) as exc:
            raise VerificationFailed(
                f"the hub took the new keys but they could not be checked in its directory: {exc}"
            ) from exc
        expected = new_keys.public.to_json()
        for listed in (answered, entry):
            if listed is None or (listed.signing_key, listed.encryption_key) != (
                expected["signing_key"],
                expected["encryption_key"],
            ):
                raise VerificationFailed("the hub's directory does not list the new keys")
        assert entry is not None
        return entry

    async def open_payload(
        self, message: ReceivedMessage, sink: BinaryIO | None = None
    ) -> bytes | None:
        """Decrypt the payload into ``sink`` (streamed) or, without a sink, into memory.

        Raises :class:`hub.crypto.DecryptionFailed` for a wrong key, any tampering,
        truncation or a hash that does not match the signed envelope.
        """
        payload = message.envelope.payload
        sealed = payload.sealed_keys.get(self.node_id)
        if sealed is None:
            raise VerificationFailed("the payload has no key sealed to this node")
        decryptor = PayloadDecryptor(
            open_content_key(self._keys, sealed), expected_sha256=payload.sha256
        )
        collected: list[bytes] = []

        def emit(chunks: Iterable[bytes]) -> None:
            for chunk in chunks:
                if sink is not None:
                    sink.write(chunk)
                else:
                    collected.append(chunk)

        if payload.transport == "inline":
            emit(decryptor.feed(payload.inline_bytes()))
        else:
            route = f"/v1/blobs/{payload.sha256}"
            headers = self._sign("GET", route, "", content_digest_header(b""))
            async with self._http().get(self._url(route, ""), headers=headers) as response:
                if response.status >= 400:
                    self._decode(response.status, response.content_type, await response.read())
                done = 0
                async for piece in response.content.iter_chunked(CHUNK_SIZE):
                    emit(decryptor.feed(piece))
                    done += len(piece)
                    if self._progress is not None:
                        self._progress("download", done, payload.size)
        emit(decryptor.finish())
        return None if sink is not None else b"".join(collected)

    async def download_ciphertext(self, message: ReceivedMessage, sink: BinaryIO) -> int:
        """Stream a blob payload's ciphertext, as the hub holds it, into ``sink``.

        Nothing is decrypted: this is what a node keeps at rest. The hash and length are
        checked against the signed envelope (:class:`VerificationFailed` otherwise, and
        the caller discards what it wrote). Returns the bytes written.
        """
        payload = message.envelope.payload
        if payload.transport != "blob":
            raise VerificationFailed("an inline payload's ciphertext is in its envelope")
        route = f"/v1/blobs/{payload.sha256}"
        headers = self._sign("GET", route, "", content_digest_header(b""))
        digest, written = hashlib.sha256(), 0
        async with self._http().get(self._url(route, ""), headers=headers) as response:
            if response.status >= 400:
                self._decode(response.status, response.content_type, await response.read())
            async for piece in response.content.iter_chunked(CHUNK_SIZE):
                written += len(piece)
                if written > payload.size:
                    raise VerificationFailed("the blob is longer than the envelope says")
                digest.update(piece)
                sink.write(piece)
                if self._progress is not None:
                    self._progress("download", written, payload.size)
        if written != payload.size or digest.hexdigest() != payload.sha256:
            raise VerificationFailed("the blob does not match the envelope's sha256 and size")
        return written

    @property
    def keys(self) -> NodeKeys:
        """This node's keys, for opening what it kept (``agency_adapters.node.store``)."""
        return self._keys

    async def acknowledge(self, message: ReceivedMessage) -> RecipientStatus:
        ack: dict[str, Any] = {
            "message_id": message.envelope.id,
            "node": self.node_id,
            "envelope_sha256": message.receipt.envelope_sha256,
            "acknowledged_at": rfc3339(self._clock()),
        }
        ack["signature"] = sign_document(ack, self._keys.signing, SignatureContext.ACK)
        Acknowledgement.model_validate_json(json.dumps(ack))
        _, doc = await self._call(
            "POST",
            f"/v1/messages/{message.envelope.id}/ack",
            body=json.dumps(ack).encode(),
            content_type="application/json",
        )
        return RecipientStatus.model_validate_json(json.dumps(doc))

    async def reject(
        self, message: ReceivedMessage, rules: Iterable[str], reasons: Iterable[str] = ()
    ) -> RecipientStatus:
        """Refuse a message whose payload this node opened and found wrong, instead of
        acknowledging it: the sender sees the rule ids and reasons in its status.

        ``reasons`` go to the hub in the clear: never anything from the payload (see
        ``agency_adapters.node.checks.rejection_summary``, which gives rule ids and counts).
        """
        rejection: dict[str, Any] = {
            "message_id": message.envelope.id,
            "node": self.node_id,
            "envelope_sha256": message.receipt.envelope_sha256,
            "rejected_at": rfc3339(self._clock()),
            "rules": sorted(set(rules)),
            "reasons": [reason[:300] for reason in reasons][:32],
        }
        rejection["signature"] = sign_document(
            rejection, self._keys.signing, SignatureContext.REJECTION
        )
        Rejection.model_validate_json(json.dumps(rejection))
        _, doc = await self._call(
            "POST",
            f"/v1/messages/{message.envelope.id}/reject",
            body=json.dumps(rejection).encode(),
            content_type="application/json",
        )
        return RecipientStatus.model_validate_json(json.dumps(doc))

    async def request_state(self, request_id: str) -> dict[str, Any]:
        """An information request's state, deadline and history (parties only)."""
        _, doc = await self._call("GET", f"/v1/requests/{request_id}")
        result: dict[str, Any] = doc
        return result

    async def requests(self, *, overdue: bool = False) -> list[dict[str, Any]]:
        _, doc = await self._call(
            "GET", "/v1/requests", params={"overdue": "true" if overdue else "false"}
        )
        result: list[dict[str, Any]] = doc["requests"]
        return result

    async def case_state(self, case_ref: str) -> dict[str, Any]:
        """A Channel case's stage, panel and history (members only)."""
        _, doc = await self._call("GET", f"/v1/cases/{case_ref}")
        result: dict[str, Any] = doc
        return result

    async def audit_head(self) -> TreeHead:
        """The log's latest tree head, checked against the pinned hub key."""
        _, doc = await self._call("GET", "/v1/audit/head")
        head = TreeHead.model_validate_json(json.dumps(doc))
        if not verify_tree_head(head, self._hub_key):
            raise VerificationFailed("the tree head is not signed by the pinned hub key")
        return head

    async def audit_entries(self, start: int, end: int) -> list[dict[str, Any]]:
        """Log entries in [start, end) this node may see (its own; all for an auditor)."""
        _, doc = await self._call("GET", "/v1/audit/entries", params={"start": start, "end": end})
        entries: list[dict[str, Any]] = doc["entries"]
        return entries

    async def disclosures(self, subject_ref: str) -> list[dict[str, Any]]:
        """The disclosure register for a subject: those this node took part in."""
        _, doc = await self._call(
            "GET", "/v1/audit/disclosures", params={"subject_ref": subject_ref}
        )
        found: list[dict[str, Any]] = doc["disclosures"]
        return found

    async def assurance_report(self, period: str) -> dict[str, Any]:
        """The assurance report for a period (auditor nodes only)."""
        _, doc = await self._call("GET", "/v1/reports/assurance", params={"period": period})
        report: dict[str, Any] = doc
        return report

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        _, doc = await self._call(
            "GET", "/v1/audit/proof/inclusion", params={"index": index, "size": size}
        )
        return [bytes.fromhex(node) for node in doc["proof"]]

    async def verify_logged(self, envelope: Envelope, receipt: Receipt) -> list[bytes]:
        """Check that the hub logged this message as the receipt says; return the proof.

        The node rebuilds the log entry from the envelope and receipt itself, so the proof
        (kept with the receipt) can be checked again offline, with no trust in the hub.
        """
        if receipt.log is None:
            raise VerificationFailed("the receipt carries no log position")
        entry = audit_entry(envelope, receipt.envelope_sha256, receipt.received_at, "submitted")
        entry_json = canonical_json(entry.model_dump(mode="json", exclude_none=True)).decode()
        proof = await self.inclusion_proof(receipt.log.index, receipt.log.tree_head.size)
        if not verify_receipt_inclusion(receipt.log, entry_json, proof, self._hub_key):
            raise VerificationFailed("the message is not in the log under the receipt's tree head")
        return proof

    async def verify_consistency(self, earlier: TreeHead, later: TreeHead) -> None:
        """The log only grew between two heads this node has seen (RFC 9162 2.1.4)."""
        for head in (earlier, later):
            if not verify_tree_head(head, self._hub_key):
                raise VerificationFailed("a tree head is not signed by the pinned hub key")
        _, doc = await self._call(
            "GET",
            "/v1/audit/proof/consistency",
            params={"first": earlier.size, "second": later.size},
        )
        proof = [bytes.fromhex(node) for node in doc["proof"]]
        if not verify_consistency(
            earlier.size,
            later.size,
            bytes.fromhex(earlier.root_hash),
            bytes.fromhex(later.root_hash),
            proof,
        ):
            raise VerificationFailed("the log was rewritten between the two tree heads")

    async def status(self, message_id: str) -> MessageStatus:
        _, doc = await self._call("GET", f"/v1/messages/{message_id}/status")
        return MessageStatus.model_validate_json(json.dumps(doc))


def _party(entry: DirectoryEntry) -> Party:
    return Party(node_id=entry.id, agency_type=entry.agency_type, accreditation=entry.accreditation)


def _sha256_of_source(payload: PayloadSource) -> str:
    if payload.data is not None:
        return hashlib.sha256(payload.data).hexdigest()
    assert payload.path is not None
    digest = hashlib.sha256()
    with payload.path.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _encrypt_to_spool(
    payload: PayloadSource, encryptor: PayloadEncryptor, spool_dir: Path | None
) -> Path:
    if spool_dir is not None:
        spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix="outgoing-", suffix=".ct", dir=spool_dir)
    spool = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            if payload.path is not None:
                with payload.path.open("rb") as source:
                    for piece in encryptor.encrypt_stream(source):
                        out.write(piece)
            else:
                for piece in encryptor.encrypt_stream(io.BytesIO(payload.data or b"")):
                    out.write(piece)
    except BaseException:
        spool.unlink(missing_ok=True)
        raise
    return spool


def _file_range(path: Path, offset: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(offset)
        remaining = length
        while remaining > 0:
            piece = handle.read(min(_IO_CHUNK, remaining))
            if not piece:
                raise VerificationFailed(f"{path} ended early")
            remaining -= len(piece)
            yield piece


async def _aiter_file_range(path: Path, offset: int, length: int) -> AsyncIterator[bytes]:
    for piece in _file_range(path, offset, length):
        yield piece
